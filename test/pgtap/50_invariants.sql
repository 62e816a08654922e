--
-- 50_invariants: check_invariants on healthy and corrupted data
--
-- quantum_flow.check_invariants() returns one row per inconsistency
-- between the engine's counters, states and rows, and nothing when the
-- data is consistent.  First, runs in every state the engine can leave
-- them in (just started, half done, retrying, completed, completed over an
-- empty map, failed by a task, by a timeout and by a map over a non-array,
-- cancelled) pass the check.  Then each kind of corruption is introduced
-- by hand with an UPDATE or a DELETE, inside a subtransaction that is
-- rolled back afterwards, and the check must name exactly the invariants
-- that the corruption breaks.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET LOCAL timezone = 'UTC';
SELECT quantum_flow.set_clock();
SELECT plan(33);

-- The invariants that a corruption breaks.  The corruption runs in a
-- subtransaction that an exception undoes, so that every case starts from
-- the same healthy data.
CREATE FUNCTION pg_temp.broken_by(corruption text)
RETURNS text[]
LANGUAGE plpgsql
AS $$
DECLARE
    v_found text[];
BEGIN
    BEGIN
        EXECUTE corruption;
        SELECT coalesce(array_agg(DISTINCT c.invariant
                                  ORDER BY c.invariant), '{}')
          INTO v_found
          FROM quantum_flow.check_invariants() AS c;
        RAISE EXCEPTION 'undo the corruption';
    EXCEPTION
        WHEN raise_exception THEN
            NULL;
    END;
    RETURN v_found;
END
$$;

-- Complete the claimed task of a run and step with the given output.
CREATE FUNCTION pg_temp.finish(p_run uuid, p_step text, p_index integer,
                               p_output jsonb)
RETURNS void
LANGUAGE sql
AS $$
    SELECT quantum_flow.complete_task(p_run, p_step, p_index, p_output)
$$;

-- ----------------------------------------------------------------------
-- Healthy runs in every state
-- ----------------------------------------------------------------------

-- A diamond with a map step: root -> left (map) and right -> join.
SELECT quantum_flow.define_workflow('inv', jsonb_build_object(
    'max_attempts', 2, 'timeout', 30,
    'steps', jsonb_build_array(
        jsonb_build_object('slug', 'root'),
        jsonb_build_object('slug', 'left', 'type', 'map',
                           'depends_on', jsonb_build_array('root')),
        jsonb_build_object('slug', 'right',
                           'depends_on', jsonb_build_array('root')),
        jsonb_build_object('slug', 'join',
                           'depends_on', jsonb_build_array('left',
                                                           'right')))));

-- A workflow whose root step maps over the run input.
SELECT quantum_flow.define_workflow('invmap', jsonb_build_object(
    'steps', jsonb_build_array(
        jsonb_build_object('slug', 'each', 'type', 'map'))));

-- A workflow whose one task has one attempt and a short lease.
SELECT quantum_flow.define_workflow('invto', jsonb_build_object(
    'max_attempts', 1, 'timeout', 5,
    'steps', jsonb_build_array(jsonb_build_object('slug', 'only'))));

-- Runs 2 to 7 and 9 of inv, run 8 of invto, run 10 of invmap; run 1 comes
-- last.  At the end, run 1 has just started, run 2 is half done with
-- tasks running, 3 has completed, 4 has completed over an empty map, 5
-- has failed on its last attempt, 6 is cancelled half done, 7 has failed
-- on a map over a non-array, 8 has timed out, 9 has a task queued again
-- after a failure, and 10 has completed a map over its input.
SELECT quantum_flow.start_run(
           'inv', '{}', ('e0000000-0000-0000-0000-00000000000' || i)::uuid)
  FROM unnest(ARRAY[2, 3, 4, 5, 6, 7, 9]) AS i;
SELECT quantum_flow.start_run('invto', '{}',
                              'e0000000-0000-0000-0000-000000000008');
SELECT quantum_flow.start_run('invmap', '[1, 2]',
                              'e0000000-0000-0000-0000-000000000010');

-- First round: every root task is claimed and most are reported.
SELECT count(*) FROM quantum_flow.poll_tasks('inv', 'w', 100);
SELECT count(*) FROM quantum_flow.poll_tasks('invto', 'w', 100);
SELECT count(*) FROM quantum_flow.poll_tasks('invmap', 'w', 100);
SELECT pg_temp.finish(('e0000000-0000-0000-0000-00000000000' || i)::uuid,
                      'root', 0, '[1, 2]')
  FROM unnest(ARRAY[2, 3, 6]) AS i;
SELECT pg_temp.finish('e0000000-0000-0000-0000-000000000004', 'root', 0,
                      '[]');
SELECT pg_temp.finish('e0000000-0000-0000-0000-000000000007', 'root', 0,
                      '{"not": "an array"}');
SELECT quantum_flow.fail_task('e0000000-0000-0000-0000-000000000005', 'root',
                              0, 'boom');
SELECT pg_temp.finish('e0000000-0000-0000-0000-000000000010', 'each', i,
                      to_jsonb(i))
  FROM generate_series(0, 1) AS i;

-- Second round, after run 8's lease and run 5's backoff ran out.
SELECT quantum_flow.advance_clock('10 seconds');
SELECT count(*) FROM quantum_flow.poll_tasks('invto', 'w', 100);
SELECT count(*) FROM quantum_flow.poll_tasks('inv', 'w', 100);
SELECT pg_temp.finish('e0000000-0000-0000-0000-000000000003', 'left', i, '10')
  FROM generate_series(0, 1) AS i;
SELECT pg_temp.finish(('e0000000-0000-0000-0000-00000000000' || i)::uuid,
                      'right', 0, '"r"')
  FROM unnest(ARRAY[3, 4]) AS i;
SELECT pg_temp.finish('e0000000-0000-0000-0000-000000000002', 'left', 0,
                      '10');
SELECT quantum_flow.fail_task('e0000000-0000-0000-0000-000000000005', 'root',
                              0, 'boom again');
SELECT quantum_flow.fail_task('e0000000-0000-0000-0000-000000000009', 'root',
                              0, 'boom');
SELECT quantum_flow.cancel_run('e0000000-0000-0000-0000-000000000006');

-- Third round: the join steps of runs 3 and 4.
SELECT count(*) FROM quantum_flow.poll_tasks('inv', 'w', 100);
SELECT pg_temp.finish(('e0000000-0000-0000-0000-00000000000' || i)::uuid,
                      'join', 0, '"done"')
  FROM unnest(ARRAY[3, 4]) AS i;

SELECT quantum_flow.start_run('inv', '{}',
                              'e0000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT run_id::text, status FROM quantum_flow.workflow_runs
       ORDER BY run_id$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000001', 'started'),
             ('e0000000-0000-0000-0000-000000000002', 'started'),
             ('e0000000-0000-0000-0000-000000000003', 'completed'),
             ('e0000000-0000-0000-0000-000000000004', 'completed'),
             ('e0000000-0000-0000-0000-000000000005', 'failed'),
             ('e0000000-0000-0000-0000-000000000006', 'cancelled'),
             ('e0000000-0000-0000-0000-000000000007', 'failed'),
             ('e0000000-0000-0000-0000-000000000008', 'failed'),
             ('e0000000-0000-0000-0000-000000000009', 'started'),
             ('e0000000-0000-0000-0000-000000000010', 'completed')$$,
    'healthy: runs in every state');

SELECT results_eq(
    $$SELECT status, count(*)::integer FROM quantum_flow.workflow_step_tasks
       GROUP BY status ORDER BY status$$,
    $$VALUES ('cancelled', 3), ('completed', 14), ('failed', 2),
             ('queued', 2), ('started', 2)$$,
    'healthy: tasks in every state');

SELECT is_empty($$SELECT * FROM quantum_flow.check_invariants()$$,
                'healthy: no invariant is broken');

SELECT is((SELECT error_message ~ 'timed out'
             FROM quantum_flow.workflow_step_tasks
            WHERE run_id = 'e0000000-0000-0000-0000-000000000008'),
          true, 'healthy: run 8 failed by a timeout');

-- ----------------------------------------------------------------------
-- Runs
-- ----------------------------------------------------------------------

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_runs SET remaining_steps = remaining_steps + 1
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'$$),
    '{run_remaining_steps}',
    'runs: a started run counting a step too many');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_runs SET remaining_steps = 1
     WHERE run_id = 'e0000000-0000-0000-0000-000000000003'$$),
    '{run_remaining_steps}',
    'runs: a completed run with a step remaining');

SELECT is(pg_temp.broken_by($$
    DELETE FROM quantum_flow.workflow_step_states
     WHERE run_id = 'e0000000-0000-0000-0000-000000000001'
       AND step_slug = 'join'$$),
    '{run_remaining_steps}',
    'runs: a started run that lost a step state');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_runs SET output = '{"join": "other"}'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000003'$$),
    '{run_output}',
    'runs: a completed run whose output is not its leaf outputs');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states SET status = 'created'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000005'
       AND step_slug = 'join'$$),
    '{terminal_run_open_work}',
    'runs: a failed run with a created step');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET status = 'queued'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000006'
       AND step_slug = 'right'$$),
    '{step_open_tasks,terminal_run_open_work}',
    'runs: a cancelled run with a queued task');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks
       SET status = 'cancelled', cancelled_at = quantum_flow.now()
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'right'$$),
    '{started_run_closed_work}',
    'runs: a started run with a cancelled task');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states
       SET status = 'cancelled', cancelled_at = failed_at
     WHERE run_id = 'e0000000-0000-0000-0000-000000000005'
       AND status = 'failed'$$),
    '{failed_run_step}',
    'runs: a failed run without a failed step');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_runs SET completed_at = NULL
     WHERE run_id = 'e0000000-0000-0000-0000-000000000004'$$),
    '{missing_timestamp}',
    'runs: a completed run without completed_at');

-- ----------------------------------------------------------------------
-- Step states
-- ----------------------------------------------------------------------

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states SET remaining_deps = 1
     WHERE run_id = 'e0000000-0000-0000-0000-000000000001'
       AND step_slug = 'join'$$),
    '{step_remaining_deps}',
    'steps: a created step waiting for one dependency of two');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states SET remaining_deps = 0
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'join'$$),
    '{step_remaining_deps}',
    'steps: a created step ready before its dependencies completed');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states SET remaining_deps = 1
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'left'$$),
    '{step_started_early}',
    'steps: a started step with a dependency remaining');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states
       SET status = 'created', started_at = NULL,
           remaining_tasks = NULL, initial_tasks = NULL
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'right'$$),
    '{step_task_count}',
    'steps: a created step that has tasks');

SELECT is(pg_temp.broken_by($$
    DELETE FROM quantum_flow.workflow_step_tasks
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'left' AND task_index = 1$$),
    '{step_task_count}',
    'steps: a map step that lost a task');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states
       SET initial_tasks = 3, remaining_tasks = 2
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'left'$$),
    '{map_initial_tasks,step_task_count}',
    'steps: a map step counting more tasks than its array has');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states
       SET remaining_tasks = remaining_tasks - 1
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'left'$$),
    '{step_remaining_tasks}',
    'steps: a started step counting a task too few');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states SET remaining_tasks = 1
     WHERE run_id = 'e0000000-0000-0000-0000-000000000003'
       AND step_slug = 'left'$$),
    '{step_completed_tasks}',
    'steps: a completed step with a task remaining');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET status = 'started'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'root'$$),
    '{step_completed_tasks,step_open_tasks}',
    'steps: a completed step with a running task');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states SET output = '[10]'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000003'
       AND step_slug = 'left'$$),
    '{step_output}',
    'steps: a map step output shorter than its tasks');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET output = '11'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000010'
       AND task_index = 1$$),
    '{step_output}',
    'steps: a map step output that is not its task outputs in order');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_states SET output = '[1, 2, 3]'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'root'$$),
    '{map_initial_tasks,step_output}',
    'steps: a map step over an array that changed under it');

-- ----------------------------------------------------------------------
-- Tasks
-- ----------------------------------------------------------------------

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET attempts_count = 0
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'right'$$),
    '{task_attempts}',
    'tasks: a started task that was never attempted');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET attempts_count = 3
     WHERE run_id = 'e0000000-0000-0000-0000-000000000003'
       AND step_slug = 'root'$$),
    '{task_attempts}',
    'tasks: a completed task with more attempts than allowed');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET attempts_count = 2
     WHERE run_id = 'e0000000-0000-0000-0000-000000000009'$$),
    '{task_attempts}',
    'tasks: a queued task with no attempt left');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET completed_at = NULL
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'root'$$),
    '{missing_timestamp}',
    'tasks: a completed task without completed_at');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks
       SET idempotency_key = md5('something else')
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'right'$$),
    '{task_idempotency_key}',
    'tasks: an engine-made task whose key is not its computed key');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks
       SET idempotency_key = 'order-1234'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'right'$$),
    '{}',
    'tasks: a custom key, not of the engine''s form, is left alone');

SELECT is(pg_temp.broken_by($$
    UPDATE quantum_flow.workflow_step_tasks SET workflow_slug = 'invmap'
     WHERE run_id = 'e0000000-0000-0000-0000-000000000002'
       AND step_slug = 'right'$$),
    '{task_idempotency_key,workflow_mismatch}',
    'tasks: a task filed under another workflow than its run''s');

-- ----------------------------------------------------------------------
-- Every corruption was undone
-- ----------------------------------------------------------------------

SELECT is_empty($$SELECT * FROM quantum_flow.check_invariants()$$,
                'undone: no invariant is broken');

SELECT * FROM finish();
ROLLBACK;
