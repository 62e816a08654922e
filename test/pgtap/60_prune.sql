--
-- 60_prune: retention with prune_runs
--
-- prune_runs(older_than) deletes the runs that ended (completed, failed
-- or cancelled) before now() - older_than, with their step states and
-- tasks, and returns how many runs it deleted.  A run that ended exactly
-- at the cutoff stays, an open run stays however old it is, and a second
-- call finds nothing more.  More than one batch of 1000 runs goes in one
-- call, and a map step's many tasks go with their run.  Pruning counts
-- what it deletes into the workflow totals first, so workflow_stats does
-- not change.  The clock is frozen: every cutoff below is exact.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET LOCAL timezone = 'UTC';
SELECT quantum_flow.set_clock('2025-01-01 00:00:00+00');
SELECT plan(27);

-- Rows of a workflow in the three run tables, for the checks below.
CREATE FUNCTION pg_temp.rows_of(p_workflow text)
RETURNS TABLE (runs bigint, states bigint, tasks bigint)
LANGUAGE sql
AS $$
    SELECT (SELECT count(*) FROM quantum_flow.workflow_runs
             WHERE workflow_slug = p_workflow),
           (SELECT count(*) FROM quantum_flow.workflow_step_states
             WHERE workflow_slug = p_workflow),
           (SELECT count(*) FROM quantum_flow.workflow_step_tasks
             WHERE workflow_slug = p_workflow)
$$;

-- ----------------------------------------------------------------------
-- Arguments
-- ----------------------------------------------------------------------

SELECT throws_ok($$SELECT quantum_flow.prune_runs(NULL)$$, '22004',
                 'older_than must not be null',
                 'arguments: a null interval is null_value_not_allowed');
SELECT throws_ok($$SELECT quantum_flow.prune_runs('-1 second')$$, '22023',
                 'older_than must not be negative',
                 'arguments: a negative interval is invalid_parameter_value');
SELECT is(quantum_flow.prune_runs('0 seconds'), 0::bigint,
          'arguments: nothing to prune in an empty database');
SELECT is(quantum_flow.prune_runs('300000 years'), 0::bigint,
          'arguments: an interval reaching before the first timestamp prunes nothing');

-- ----------------------------------------------------------------------
-- Which runs go: ended before the cutoff, never an open one
-- ----------------------------------------------------------------------

-- Six runs start at 00:00; r1 completes at 01:00, r2 fails at 02:00,
-- r3 is cancelled at 03:00, r4 never ends, r5 completes at 05:00 and
-- r6 at 10:00.
SELECT quantum_flow.create_workflow('keep', max_attempts => 1);
SELECT quantum_flow.add_step('keep', 'first');
SELECT quantum_flow.add_step('keep', 'second', ARRAY['first']);
SELECT quantum_flow.start_run('keep', '{}',
                              ('b0000000-0000-0000-0000-00000000000' || i)::uuid)
  FROM generate_series(1, 6) AS i;
SELECT count(*) FROM quantum_flow.poll_tasks('keep', 'w', 10, '1 day');

CREATE FUNCTION pg_temp.finish(p_run integer, p_how text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_run uuid := ('b0000000-0000-0000-0000-00000000000' || p_run)::uuid;
BEGIN
    IF p_how = 'complete' THEN
        PERFORM quantum_flow.complete_task(v_run, 'first', 0);
        PERFORM 1 FROM quantum_flow.poll_tasks('keep', 'w', 10, '1 day');
        PERFORM quantum_flow.complete_task(v_run, 'second', 0);
    ELSIF p_how = 'fail' THEN
        PERFORM quantum_flow.fail_task(v_run, 'first', 0, 'broken');
    ELSE
        PERFORM quantum_flow.cancel_run(v_run);
    END IF;
END
$$;

SELECT quantum_flow.set_clock('2025-01-01 01:00:00+00');
SELECT pg_temp.finish(1, 'complete');
SELECT quantum_flow.set_clock('2025-01-01 02:00:00+00');
SELECT pg_temp.finish(2, 'fail');
SELECT quantum_flow.set_clock('2025-01-01 03:00:00+00');
SELECT pg_temp.finish(3, 'cancel');
SELECT quantum_flow.set_clock('2025-01-01 05:00:00+00');
SELECT pg_temp.finish(5, 'complete');
SELECT quantum_flow.set_clock('2025-01-01 10:00:00+00');
SELECT pg_temp.finish(6, 'complete');

SELECT results_eq(
    $$SELECT run_id::text, status FROM quantum_flow.workflow_runs
       WHERE workflow_slug = 'keep' ORDER BY run_id$$,
    $$VALUES ('b0000000-0000-0000-0000-000000000001', 'completed'),
             ('b0000000-0000-0000-0000-000000000002', 'failed'),
             ('b0000000-0000-0000-0000-000000000003', 'cancelled'),
             ('b0000000-0000-0000-0000-000000000004', 'started'),
             ('b0000000-0000-0000-0000-000000000005', 'completed'),
             ('b0000000-0000-0000-0000-000000000006', 'completed')$$,
    'which: the six runs are in the statuses the scenario needs');
SELECT results_eq($$SELECT * FROM pg_temp.rows_of('keep')$$,
                  $$VALUES (6::bigint, 12::bigint, 9::bigint)$$,
                  'which: six runs, twelve step states, nine tasks');

CREATE TEMP TABLE stats_before AS
SELECT * FROM quantum_flow.workflow_stats WHERE workflow_slug = 'keep';

-- At 10:00, six hours back is 04:00: r1, r2 and r3 go.
SELECT is(quantum_flow.prune_runs('6 hours'), 3::bigint,
          'which: prune_runs(6 hours) deletes the three runs ended before 04:00');
SELECT results_eq(
    $$SELECT run_id::text FROM quantum_flow.workflow_runs
       WHERE workflow_slug = 'keep' ORDER BY run_id$$,
    $$VALUES ('b0000000-0000-0000-0000-000000000004'),
             ('b0000000-0000-0000-0000-000000000005'),
             ('b0000000-0000-0000-0000-000000000006')$$,
    'which: the open run and the runs ended after the cutoff remain');
SELECT results_eq($$SELECT * FROM pg_temp.rows_of('keep')$$,
                  $$VALUES (3::bigint, 6::bigint, 5::bigint)$$,
                  'which: the step states and tasks of the pruned runs are gone');
SELECT is(quantum_flow.prune_runs('6 hours'), 0::bigint,
          'which: a second call with the same cutoff deletes nothing');

-- r5 ended at 05:00 exactly: a cutoff of 05:00 keeps it, one second
-- later takes it.
SELECT is(quantum_flow.prune_runs('5 hours'), 0::bigint,
          'boundary: a run that ended exactly at the cutoff stays');
SELECT is(quantum_flow.prune_runs('4 hours 59 minutes 59 seconds'),
          1::bigint,
          'boundary: a cutoff one second later deletes it');

-- r6 ended now: older_than 0 keeps it until the clock moves on.
SELECT is(quantum_flow.prune_runs('0 seconds'), 0::bigint,
          'boundary: a run that ended at now() stays with older_than 0');
SELECT quantum_flow.advance_clock('1 second');
SELECT is(quantum_flow.prune_runs('0 seconds'), 1::bigint,
          'boundary: one second later older_than 0 deletes it');

-- r4 started at 00:00 and is still open.
SELECT quantum_flow.advance_clock('30 days');
SELECT is(quantum_flow.prune_runs('0 seconds'), 0::bigint,
          'open: a started run is never pruned, however old');
SELECT results_eq($$SELECT * FROM pg_temp.rows_of('keep')$$,
                  $$VALUES (1::bigint, 2::bigint, 1::bigint)$$,
                  'open: its run, step states and task remain');
SELECT is(quantum_flow.run_status('b0000000-0000-0000-0000-000000000004')
              ->> 'status', 'started',
          'open: and it can still be worked on');

-- Pruning counted before deleting: the statistics did not move.
SELECT results_eq(
    $$SELECT runs_started, runs_completed, runs_failed, runs_cancelled,
             tasks_queued, tasks_started, tasks_completed, tasks_failed,
             tasks_cancelled
        FROM quantum_flow.workflow_stats WHERE workflow_slug = 'keep'$$,
    $$SELECT runs_started, runs_completed, runs_failed, runs_cancelled,
             tasks_queued, tasks_started, tasks_completed, tasks_failed,
             tasks_cancelled
        FROM stats_before$$,
    'stats: workflow_stats is the same after pruning');
SELECT results_eq(
    $$SELECT runs_completed, runs_failed, runs_cancelled, tasks_completed,
             tasks_failed, tasks_cancelled
        FROM quantum_flow.workflow_stats WHERE workflow_slug = 'keep'$$,
    $$VALUES (3::bigint, 1::bigint, 1::bigint, 6::bigint, 1::bigint,
              1::bigint)$$,
    'stats: the pruned runs and tasks are still counted');
SELECT is((SELECT count(*) FROM quantum_flow.workflow_run_ends),
          0::bigint,
          'stats: every ended run was tallied');

-- ----------------------------------------------------------------------
-- Volume: more than one batch, and a map step with many tasks
-- ----------------------------------------------------------------------

SELECT quantum_flow.create_workflow('bulk');
SELECT quantum_flow.add_step('bulk', 'root');
SELECT quantum_flow.add_step('bulk', 'leaf', ARRAY['root']);
SELECT quantum_flow.set_clock('2025-03-01 00:00:00+00');
SELECT count(quantum_flow.cancel_run(
                 (quantum_flow.start_run('bulk', jsonb_build_object('i', i)))
                     .run_id))
  FROM generate_series(1, 2345) AS i;

SELECT quantum_flow.create_workflow('wide');
SELECT quantum_flow.add_step('wide', 'items', step_type => 'map');
SELECT quantum_flow.start_run('wide',
                              (SELECT jsonb_agg(i)
                                 FROM generate_series(1, 3000) AS i),
                              'c0000000-0000-0000-0000-000000000001');
SELECT quantum_flow.cancel_run('c0000000-0000-0000-0000-000000000001');

SELECT results_eq($$SELECT * FROM pg_temp.rows_of('bulk')$$,
                  $$VALUES (2345::bigint, 4690::bigint, 2345::bigint)$$,
                  'volume: 2345 cancelled runs with two steps each');
SELECT results_eq($$SELECT * FROM pg_temp.rows_of('wide')$$,
                  $$VALUES (1::bigint, 1::bigint, 3000::bigint)$$,
                  'volume: one cancelled run with 3000 tasks');

SELECT quantum_flow.advance_clock('1 hour');
SELECT is(quantum_flow.prune_runs('30 minutes'), 2346::bigint,
          'volume: one call prunes all 2346 runs, over three batches');
SELECT results_eq($$SELECT * FROM pg_temp.rows_of('bulk')$$,
                  $$VALUES (0::bigint, 0::bigint, 0::bigint)$$,
                  'volume: nothing of the bulk runs is left');
SELECT results_eq($$SELECT * FROM pg_temp.rows_of('wide')$$,
                  $$VALUES (0::bigint, 0::bigint, 0::bigint)$$,
                  'volume: nor of the wide run and its 3000 tasks');
SELECT results_eq(
    $$SELECT workflow_slug, runs_cancelled, tasks_cancelled
        FROM quantum_flow.workflow_stats
       WHERE workflow_slug IN ('bulk', 'wide') ORDER BY 1$$,
    $$VALUES ('bulk', 2345::bigint, 2345::bigint),
             ('wide', 1::bigint, 3000::bigint)$$,
    'volume: and all of it is counted');
SELECT is(quantum_flow.prune_runs('0 seconds'), 0::bigint,
          'volume: only the open run of keep is left, and it stays');

SELECT * FROM finish();
ROLLBACK;
