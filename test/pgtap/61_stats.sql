--
-- 61_stats: workflow_stats, run_status and tally_runs
--
-- workflow_stats has one row per workflow: open runs and tasks counted
-- now, finished ones counted cumulatively (tallied totals plus what ended
-- since the last tally), and the age of the oldest claimable task as
-- poll_tasks sees it.  A small scenario checks every count against the
-- rows themselves at each step, before and after tally_runs and
-- prune_runs.  run_status gives a run's task counts per step.
--
-- Then the cost: with 200,000 finished tasks in the tables, analyzed,
-- neither the plan of workflow_stats nor run_status scans the runs, step
-- states or tasks sequentially.  The clock is frozen: ages are exact.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET LOCAL timezone = 'UTC';
SELECT quantum_flow.set_clock('2025-01-01 00:00:00+00');
SELECT plan(34);

-- The counts of workflow_stats, taken from the rows themselves.
CREATE FUNCTION pg_temp.counted(p_workflow text)
RETURNS TABLE (runs_started bigint, runs_completed bigint,
               runs_failed bigint, runs_cancelled bigint,
               tasks_queued bigint, tasks_started bigint,
               tasks_completed bigint, tasks_failed bigint,
               tasks_cancelled bigint)
LANGUAGE sql
AS $$
    SELECT count(*) FILTER (WHERE r.status = 'started'),
           count(*) FILTER (WHERE r.status = 'completed'),
           count(*) FILTER (WHERE r.status = 'failed'),
           count(*) FILTER (WHERE r.status = 'cancelled'),
           t.queued, t.started, t.completed, t.failed, t.cancelled
      FROM quantum_flow.workflow_runs AS r
     RIGHT JOIN (SELECT count(*) FILTER (WHERE status = 'queued'),
                        count(*) FILTER (WHERE status = 'started'),
                        count(*) FILTER (WHERE status = 'completed'),
                        count(*) FILTER (WHERE status = 'failed'),
                        count(*) FILTER (WHERE status = 'cancelled')
                   FROM quantum_flow.workflow_step_tasks
                  WHERE workflow_slug = p_workflow)
                AS t(queued, started, completed, failed, cancelled)
        ON r.workflow_slug = p_workflow
     GROUP BY t.queued, t.started, t.completed, t.failed, t.cancelled
$$;

-- The same counts from workflow_stats.
CREATE FUNCTION pg_temp.stats(p_workflow text)
RETURNS TABLE (runs_started bigint, runs_completed bigint,
               runs_failed bigint, runs_cancelled bigint,
               tasks_queued bigint, tasks_started bigint,
               tasks_completed bigint, tasks_failed bigint,
               tasks_cancelled bigint)
LANGUAGE sql
AS $$
    SELECT runs_started, runs_completed, runs_failed, runs_cancelled,
           tasks_queued, tasks_started, tasks_completed, tasks_failed,
           tasks_cancelled
      FROM quantum_flow.workflow_stats
     WHERE workflow_slug = p_workflow
$$;

-- The age of the oldest claimable task.
CREATE FUNCTION pg_temp.age(p_workflow text)
RETURNS interval
LANGUAGE sql
AS $$
    SELECT oldest_claimable_age FROM quantum_flow.workflow_stats
     WHERE workflow_slug = p_workflow
$$;

-- The task counts per step of a run_status document.
CREATE FUNCTION pg_temp.step_tasks(p_run uuid)
RETURNS jsonb
LANGUAGE sql
AS $$
    SELECT jsonb_object_agg(s ->> 'step_slug', s -> 'tasks')
      FROM jsonb_array_elements(quantum_flow.run_status(p_run) -> 'steps')
           AS s
$$;

-- One of the runs below, by number.
CREATE FUNCTION pg_temp.run(p_n integer)
RETURNS uuid
LANGUAGE sql IMMUTABLE
AS $$
    SELECT ('d0000000-0000-0000-0000-00000000000' || p_n)::uuid
$$;

-- ----------------------------------------------------------------------
-- A small scenario, counted at every step
-- ----------------------------------------------------------------------

SELECT quantum_flow.create_workflow('stats', max_attempts => 2,
                                    base_delay => 10);
SELECT quantum_flow.add_step('stats', 'a');
SELECT quantum_flow.add_step('stats', 'b', ARRAY['a'], 'map');
SELECT quantum_flow.create_workflow('idle');
SELECT quantum_flow.add_step('idle', 'only');

SELECT results_eq(
    $$SELECT * FROM quantum_flow.workflow_stats WHERE workflow_slug = 'idle'$$,
    $$VALUES ('idle'::text, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
              0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
              NULL::interval)$$,
    'idle: a workflow without runs has a row of zeros and no age');

-- 00:00:00: four runs start; their root tasks are claimable at once.
SELECT quantum_flow.start_run('stats', jsonb_build_object('i', i),
                              pg_temp.run(i))
  FROM generate_series(1, 4) AS i;
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$VALUES (4::bigint, 0::bigint, 0::bigint, 0::bigint,
                            4::bigint, 0::bigint, 0::bigint, 0::bigint,
                            0::bigint)$$,
                  'start: four open runs, four queued tasks');
SELECT is(pg_temp.age('stats'), interval '0',
          'start: the oldest claimable task has just become claimable');

-- 00:01:30: they have waited 90 seconds.
SELECT quantum_flow.advance_clock('90 seconds');
SELECT is(pg_temp.age('stats'), interval '90 seconds',
          'wait: the oldest claimable task has waited 90 seconds');

-- The four root tasks complete with three elements each: 12 map tasks.
SELECT count(quantum_flow.complete_task(run_id, step_slug, task_index,
                                        '[1, 2, 3]'))
  FROM quantum_flow.poll_tasks('stats', 'w', 10, '1 minute');
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$VALUES (4::bigint, 0::bigint, 0::bigint, 0::bigint,
                            12::bigint, 0::bigint, 4::bigint, 0::bigint,
                            0::bigint)$$,
                  'map: four root tasks completed, twelve map tasks queued');

-- 00:02:30: all twelve are claimed with a lease of one minute.  Run 1
-- completes; run 2 completes b[0] and fails b[1] (retried at 00:02:40);
-- run 3 is cancelled; run 4 fails b[0] (retried at 00:02:40).
SELECT quantum_flow.advance_clock('60 seconds');
SELECT count(*) FROM quantum_flow.poll_tasks('stats', 'w', 12, '1 minute');
SELECT quantum_flow.complete_task(pg_temp.run(1), 'b', i, to_jsonb(i))
  FROM generate_series(0, 2) AS i;
SELECT quantum_flow.complete_task(pg_temp.run(2), 'b', 0, '0');
SELECT quantum_flow.fail_task(pg_temp.run(2), 'b', 1, 'flaky');
SELECT quantum_flow.cancel_run(pg_temp.run(3));
SELECT quantum_flow.fail_task(pg_temp.run(4), 'b', 0, 'flaky');

SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$VALUES (2::bigint, 1::bigint, 0::bigint, 1::bigint,
                            2::bigint, 3::bigint, 8::bigint, 0::bigint,
                            3::bigint)$$,
                  'mixed: runs and tasks in every open and finished status');
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$SELECT * FROM pg_temp.counted('stats')$$,
                  'mixed: the counts are those of the rows');
SELECT is(pg_temp.age('stats'), NULL,
          'mixed: nothing is claimable while retries wait and leases hold');

SELECT is(pg_temp.step_tasks(pg_temp.run(1)),
          '{"a": {"completed": 1}, "b": {"completed": 3}}',
          'run_status: a completed run');
SELECT is(pg_temp.step_tasks(pg_temp.run(2)),
          '{"a": {"completed": 1},
            "b": {"queued": 1, "started": 1, "completed": 1}}',
          'run_status: an open run with a task retrying');
SELECT is(pg_temp.step_tasks(pg_temp.run(3)),
          '{"a": {"completed": 1}, "b": {"cancelled": 3}}',
          'run_status: a cancelled run');

-- 00:02:50: the retries have been claimable for ten seconds.
SELECT quantum_flow.advance_clock('20 seconds');
SELECT is(pg_temp.age('stats'), interval '10 seconds',
          'retry: a retried task is claimable from the end of its backoff');

-- 00:03:50: the leases ran out at 00:03:30, but the retries are older.
SELECT quantum_flow.advance_clock('60 seconds');
SELECT is(pg_temp.age('stats'), interval '70 seconds',
          'lease: expired leases are claimable, the retries are older');
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$SELECT * FROM pg_temp.counted('stats')$$,
                  'lease: the counts are those of the rows');

-- All five are claimed again (attempt 2 of 2).  Run 2 completes; run 4
-- fails for good, which cancels its two other tasks.  Run 5 starts.
SELECT count(*) FROM quantum_flow.poll_tasks('stats', 'w', 10, '1 minute');
SELECT quantum_flow.complete_task(pg_temp.run(2), 'b', i, to_jsonb(i))
  FROM generate_series(1, 2) AS i;
SELECT quantum_flow.fail_task(pg_temp.run(4), 'b', 0, 'broken');
SELECT quantum_flow.start_run('stats', '{}', pg_temp.run(5));

SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$VALUES (1::bigint, 2::bigint, 1::bigint, 1::bigint,
                            1::bigint, 0::bigint, 10::bigint, 1::bigint,
                            5::bigint)$$,
                  'ended: four runs finished, one open');
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$SELECT * FROM pg_temp.counted('stats')$$,
                  'ended: the counts are those of the rows');
SELECT is(pg_temp.step_tasks(pg_temp.run(4)),
          '{"a": {"completed": 1}, "b": {"failed": 1, "cancelled": 2}}',
          'run_status: a failed run');
SELECT is(pg_temp.step_tasks(pg_temp.run(5)),
          '{"a": {"queued": 1}, "b": {}}',
          'run_status: a run that just started');

-- ----------------------------------------------------------------------
-- Tallying and pruning leave the counts where they are
-- ----------------------------------------------------------------------

SELECT is(quantum_flow.tally_runs(), 4::bigint,
          'tally: the four ended runs are counted into the totals');
SELECT results_eq(
    $$SELECT runs_completed, runs_failed, runs_cancelled, tasks_completed,
             tasks_failed, tasks_cancelled
        FROM quantum_flow.workflow_totals WHERE workflow_slug = 'stats'$$,
    $$VALUES (2::bigint, 1::bigint, 1::bigint, 10::bigint, 1::bigint,
              5::bigint)$$,
    'tally: the totals hold them and their tasks');
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$SELECT * FROM pg_temp.counted('stats')$$,
                  'tally: workflow_stats has not moved');
SELECT is(quantum_flow.tally_runs(), 0::bigint,
          'tally: a second tally finds nothing new');

-- A run deleted by hand before it was tallied is not counted.
SELECT quantum_flow.start_run('stats', '{}', pg_temp.run(6));
SELECT quantum_flow.cancel_run(pg_temp.run(6));
DELETE FROM quantum_flow.workflow_runs WHERE run_id = pg_temp.run(6);
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$SELECT * FROM pg_temp.counted('stats')$$,
                  'by hand: a run deleted before its tally does not count');
SELECT is(quantum_flow.tally_runs(), 0::bigint,
          'by hand: the tally discards it');
SELECT is((SELECT count(*) FROM quantum_flow.workflow_run_ends), 0::bigint,
          'by hand: and leaves nothing on the log');

-- Pruning lowers the rows, not the cumulative counts.
SELECT quantum_flow.advance_clock('1 hour');
SELECT is(quantum_flow.prune_runs('0 seconds'), 4::bigint,
          'prune: the four ended runs are deleted');
SELECT results_eq($$SELECT * FROM pg_temp.stats('stats')$$,
                  $$VALUES (1::bigint, 2::bigint, 1::bigint, 1::bigint,
                            1::bigint, 0::bigint, 10::bigint, 1::bigint,
                            5::bigint)$$,
                  'prune: the finished counts are cumulative');
SELECT is(pg_temp.age('stats'), interval '1 hour',
          'prune: run 5 has waited an hour');

-- ----------------------------------------------------------------------
-- Cost: 200,000 finished tasks, no sequential scan
-- ----------------------------------------------------------------------

-- 2,000 completed runs of one single and one map step of 99 tasks each,
-- written directly, as if the engine had run them an hour ago.
SELECT quantum_flow.create_workflow('big');
SELECT quantum_flow.add_step('big', 'one');
SELECT quantum_flow.add_step('big', 'many', ARRAY['one'], 'map');

INSERT INTO quantum_flow.workflow_runs
       (run_id, workflow_slug, status, remaining_steps, started_at,
        completed_at)
SELECT gen_random_uuid(), 'big', 'completed', 0,
       quantum_flow.now() - interval '1 hour', quantum_flow.now()
  FROM generate_series(1, 2000);
INSERT INTO quantum_flow.workflow_step_states
       (run_id, step_slug, workflow_slug, status, initial_tasks,
        remaining_tasks, started_at, completed_at)
SELECT r.run_id, s.step_slug, 'big', 'completed', s.n, 0,
       r.started_at, r.completed_at
  FROM quantum_flow.workflow_runs AS r,
       (VALUES ('one', 1), ('many', 99)) AS s(step_slug, n)
 WHERE r.workflow_slug = 'big';
INSERT INTO quantum_flow.workflow_step_tasks
       (run_id, step_slug, task_index, workflow_slug, status,
        attempts_count, started_at, completed_at)
SELECT ss.run_id, ss.step_slug, i, 'big', 'completed', 1,
       ss.started_at, ss.completed_at
  FROM quantum_flow.workflow_step_states AS ss,
       generate_series(0, ss.initial_tasks - 1) AS i
 WHERE ss.workflow_slug = 'big';
SELECT is(quantum_flow.tally_runs(), 2000::bigint,
          'cost: the 2,000 runs written directly are tallied');

-- Work in flight: three runs with five map tasks each, one of them
-- cancelled since the tally.
SELECT quantum_flow.start_run('big', '{}', pg_temp.run(i))
  FROM generate_series(7, 9) AS i;
SELECT count(quantum_flow.complete_task(run_id, step_slug, task_index,
                                        '[1, 2, 3, 4, 5]'))
  FROM quantum_flow.poll_tasks('big', 'w', 10);
SELECT quantum_flow.cancel_run(pg_temp.run(9));
ANALYZE quantum_flow.workflow_runs, quantum_flow.workflow_step_states,
        quantum_flow.workflow_step_tasks, quantum_flow.workflow_run_ends,
        quantum_flow.workflow_totals;

SELECT is((SELECT count(*) FROM quantum_flow.workflow_step_tasks
            WHERE status = 'completed'),
          200003::bigint,
          'cost: more than 200,000 finished tasks are in the table');
SELECT results_eq($$SELECT * FROM pg_temp.stats('big')$$,
                  $$VALUES (2::bigint, 2000::bigint, 0::bigint, 1::bigint,
                            10::bigint, 0::bigint, 200003::bigint,
                            0::bigint, 5::bigint)$$,
                  'cost: the counts are exact');

-- The relations that a plan reads with a sequential scan.
CREATE FUNCTION pg_temp.seq_scanned(p_query text)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    v_plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_query INTO v_plan;
    RETURN QUERY
    SELECT DISTINCT r #>> '{}'
      FROM jsonb_path_query(v_plan,
               'strict $.** ? (@."Node Type" == "Seq Scan")."Relation Name"')
           AS r;
END
$$;

SELECT is_empty(
    $$SELECT * FROM pg_temp.seq_scanned('SELECT * FROM quantum_flow.workflow_stats')
       WHERE seq_scanned IN ('workflow_runs', 'workflow_step_states',
                             'workflow_step_tasks')$$,
    'cost: the plan of workflow_stats has no sequential scan of runs, states or tasks');
SELECT ok(EXISTS (SELECT 1
                    FROM pg_temp.seq_scanned(
                             'SELECT count(*) FROM quantum_flow.workflow_step_tasks')),
          'cost: while counting every task is a sequential scan');

-- Sequential scans of the run tables so far in this transaction.
CREATE FUNCTION pg_temp.seq_scans()
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT sum(seq_scan)::bigint FROM pg_stat_xact_user_tables
     WHERE schemaname = 'quantum_flow'
       AND relname IN ('workflow_runs', 'workflow_step_states',
                       'workflow_step_tasks')
$$;

CREATE TEMP TABLE some_runs AS
SELECT run_id FROM quantum_flow.workflow_runs
 WHERE workflow_slug = 'big' ORDER BY run_id LIMIT 3;
CREATE TEMP TABLE scans AS SELECT pg_temp.seq_scans() AS before;
SELECT count(*) FROM quantum_flow.workflow_stats;
SELECT quantum_flow.run_status(run_id) FROM some_runs;
SELECT quantum_flow.run_status(pg_temp.run(7));
SELECT is(pg_temp.seq_scans() - (SELECT before FROM scans), 0::bigint,
          'cost: workflow_stats and run_status scan no run table sequentially');

SELECT * FROM finish();
ROLLBACK;
