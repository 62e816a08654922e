--
-- 21_dags: workflows run end to end
--
-- Linear, diamond, fan-in and map DAGs, driven as a worker drives them:
-- poll_tasks hands out each task with its step input, complete_task
-- reports the output, and the engine starts what became ready.  Checks
-- the exact inputs (root single: the run input; dependent single:
-- {dep: output}; root map: input -> i; dependent map: dep_output -> i),
-- the step outputs, map outputs in task_index order whatever the order of
-- completion, run outputs over the leaf steps, empty maps that complete
-- and cascade in the call that starts them, a 10,000-task map, runs that
-- cannot complete twice, and start_delay on the frozen clock.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET LOCAL timezone = 'UTC';
SELECT quantum_flow.set_clock();
SELECT plan(56);

-- ----------------------------------------------------------------------
-- Linear: a -> b -> c
-- ----------------------------------------------------------------------

SELECT quantum_flow.define_workflow('lin', '{"steps": [
    {"slug": "c", "depends_on": ["b"]},
    {"slug": "b", "depends_on": ["a"]},
    {"slug": "a"}]}');

SELECT results_eq(
    $$SELECT run_id, workflow_slug, status, input, remaining_steps,
             started_at
        FROM quantum_flow.start_run('lin', '{"order": 42}',
                 '10000000-0000-0000-0000-000000000001')$$,
    $$VALUES ('10000000-0000-0000-0000-000000000001'::uuid, 'lin',
              'started', '{"order": 42}'::jsonb, 3,
              '2025-01-01 00:00:00+00'::timestamptz)$$,
    'linear: start_run returns the started run with one remaining step per step');

SELECT results_eq(
    $$SELECT step_slug, status, remaining_deps, initial_tasks
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '10000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('a', 'started', 0, 1), ('b', 'created', 1, NULL::int),
             ('c', 'created', 1, NULL)$$,
    'linear: only the root step is started');

SELECT results_eq(
    $$SELECT step_slug, task_index, attempt, idempotency_key::text, input,
             run_input, lease_expires_at
        FROM quantum_flow.poll_tasks('lin', 'w1')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('a', 0, 1,
              md5('lin::a::10000000-0000-0000-0000-000000000001::0'),
              '{"order": 42}'::jsonb, '{"order": 42}'::jsonb,
              '2025-01-01 00:01:00+00'::timestamptz)$$,
    'linear: the root single step gets the run input, a 60 s lease and its key');

SELECT quantum_flow.advance_clock('10 seconds');
SELECT quantum_flow.complete_task('10000000-0000-0000-0000-000000000001',
                                  'a', 0, '{"customer": "ada"}');

SELECT results_eq(
    $$SELECT step_slug, task_index, attempt, input, run_input
        FROM quantum_flow.poll_tasks('lin', 'w1')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('b', 0, 1, '{"a": {"customer": "ada"}}'::jsonb,
              '{"order": 42}'::jsonb)$$,
    'linear: a dependent single step gets {dep: output}');

SELECT quantum_flow.complete_task('10000000-0000-0000-0000-000000000001',
                                  'b', 0, '[1, 2]');

SELECT results_eq(
    $$SELECT step_slug, input
        FROM quantum_flow.poll_tasks('lin', 'w1')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('c', '{"b": [1, 2]}'::jsonb)$$,
    'linear: the third step gets the second one''s output');

SELECT is(
    (SELECT status FROM quantum_flow.workflow_runs
      WHERE run_id = '10000000-0000-0000-0000-000000000001'),
    'started',
    'linear: the run is open while its last task runs');

SELECT quantum_flow.advance_clock('5 seconds');
SELECT quantum_flow.complete_task('10000000-0000-0000-0000-000000000001',
                                  'c', 0, '"done"');

SELECT results_eq(
    $$SELECT step_slug, status, output, completed_at
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '10000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('a', 'completed', '{"customer": "ada"}'::jsonb,
              '2025-01-01 00:00:10+00'::timestamptz),
             ('b', 'completed', '[1, 2]', '2025-01-01 00:00:10+00'),
             ('c', 'completed', '"done"', '2025-01-01 00:00:15+00')$$,
    'linear: each step keeps its output');

SELECT results_eq(
    $$SELECT status, output, remaining_steps, completed_at
        FROM quantum_flow.workflow_runs
       WHERE run_id = '10000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('completed', '{"c": "done"}'::jsonb, 0,
              '2025-01-01 00:00:15+00'::timestamptz)$$,
    'linear: the run completes with {leaf: output}');

-- A run never completes twice.
SELECT quantum_flow.advance_clock('1 minute');

SELECT results_eq(
    $$SELECT status, output
        FROM quantum_flow.complete_task(
                 '10000000-0000-0000-0000-000000000001', 'c', 0,
                 '"again"')$$,
    $$VALUES ('completed', '"done"'::jsonb)$$,
    'linear: a duplicate completion returns the task unchanged');

SELECT is(
    quantum_flow.complete_tasks(
        ARRAY['10000000-0000-0000-0000-000000000001'::uuid],
        ARRAY['c'], ARRAY[0], ARRAY['"again"'::jsonb]),
    0,
    'linear: a duplicate batch completion applies nothing');

SELECT is(
    quantum_flow.start_ready_steps('10000000-0000-0000-0000-000000000001'),
    0,
    'linear: start_ready_steps on a completed run creates nothing');

SELECT results_eq(
    $$SELECT status, output, remaining_steps, completed_at
        FROM quantum_flow.workflow_runs
       WHERE run_id = '10000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('completed', '{"c": "done"}'::jsonb, 0,
              '2025-01-01 00:00:15+00'::timestamptz)$$,
    'linear: the run completed once, with its first output and time');

SELECT results_eq(
    $$SELECT step_slug, status, output FROM quantum_flow.workflow_step_tasks
       WHERE run_id = '10000000-0000-0000-0000-000000000001'
       ORDER BY step_slug, task_index$$,
    $$VALUES ('a', 'completed', '{"customer": "ada"}'::jsonb),
             ('b', 'completed', '[1, 2]'), ('c', 'completed', '"done"')$$,
    'linear: one task per step, each completed once');

-- ----------------------------------------------------------------------
-- Diamond: top -> left, right -> bottom
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-01-02 00:00:00+00');
SELECT quantum_flow.define_workflow('dia', '{"steps": [
    {"slug": "top"},
    {"slug": "left", "depends_on": ["top"]},
    {"slug": "right", "depends_on": ["top"]},
    {"slug": "bottom", "depends_on": ["left", "right"]}]}');
SELECT quantum_flow.start_run('dia', '{"n": 7}',
                              '20000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT step_slug, input FROM quantum_flow.poll_tasks('dia')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('top', '{"n": 7}'::jsonb)$$,
    'diamond: the top step gets the run input');

SELECT quantum_flow.complete_task('20000000-0000-0000-0000-000000000001',
                                  'top', 0, '{"v": 1}');

SELECT results_eq(
    $$SELECT step_slug, input FROM quantum_flow.poll_tasks('dia')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('left', '{"top": {"v": 1}}'::jsonb),
             ('right', '{"top": {"v": 1}}'::jsonb)$$,
    'diamond: both branches start with the top output');

SELECT quantum_flow.complete_task('20000000-0000-0000-0000-000000000001',
                                  'right', 0, '"R"');

SELECT results_eq(
    $$SELECT status, remaining_deps,
             (SELECT count(*) FROM quantum_flow.workflow_step_tasks AS t
               WHERE t.run_id = ss.run_id AND t.step_slug = ss.step_slug)
        FROM quantum_flow.workflow_step_states AS ss
       WHERE run_id = '20000000-0000-0000-0000-000000000001'
         AND step_slug = 'bottom'$$,
    $$VALUES ('created', 1, 0::bigint)$$,
    'diamond: the join waits for its second branch, with no task');

SELECT quantum_flow.complete_task('20000000-0000-0000-0000-000000000001',
                                  'left', 0, '"L"');

SELECT results_eq(
    $$SELECT step_slug, input FROM quantum_flow.poll_tasks('dia')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('bottom', '{"left": "L", "right": "R"}'::jsonb)$$,
    'diamond: the join gets both branch outputs');

SELECT quantum_flow.complete_task('20000000-0000-0000-0000-000000000001',
                                  'bottom', 0, '{"sum": 2}');

SELECT results_eq(
    $$SELECT status, output FROM quantum_flow.workflow_runs
       WHERE run_id = '20000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('completed', '{"bottom": {"sum": 2}}'::jsonb)$$,
    'diamond: the run output is the join''s output');

-- ----------------------------------------------------------------------
-- Fan-in: r1, r2, r3 -> sink; r1 -> side (two leaves)
-- ----------------------------------------------------------------------

SELECT quantum_flow.define_workflow('fan', '{"steps": [
    {"slug": "sink", "depends_on": ["r1", "r2", "r3"]},
    {"slug": "side", "depends_on": ["r1"]},
    {"slug": "r1"}, {"slug": "r2"}, {"slug": "r3"}]}');
SELECT quantum_flow.start_run('fan', '{"k": "v"}',
                              '30000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT step_slug, input FROM quantum_flow.poll_tasks('fan')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('r1', '{"k": "v"}'::jsonb), ('r2', '{"k": "v"}'::jsonb),
             ('r3', '{"k": "v"}'::jsonb)$$,
    'fan-in: every root step gets the run input');

SELECT quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                  'r1', 0, '1');

SELECT results_eq(
    $$SELECT step_slug, status, remaining_deps
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '30000000-0000-0000-0000-000000000001'
         AND step_slug IN ('side', 'sink')
       ORDER BY step_slug$$,
    $$VALUES ('side', 'started', 0), ('sink', 'created', 2)$$,
    'fan-in: one root done starts its only dependent, the sink waits for two');

SELECT quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                  'r3', 0, '3');
SELECT quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                  'r2', 0, '2');

SELECT results_eq(
    $$SELECT step_slug, input FROM quantum_flow.poll_tasks('fan')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('side', '{"r1": 1}'::jsonb),
             ('sink', '{"r1": 1, "r2": 2, "r3": 3}'::jsonb)$$,
    'fan-in: the sink gets every dependency''s output');

SELECT quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                  'sink', 0, '"t"');
SELECT quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                  'side', 0, '"s"');

SELECT results_eq(
    $$SELECT status, output FROM quantum_flow.workflow_runs
       WHERE run_id = '30000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('completed', '{"side": "s", "sink": "t"}'::jsonb)$$,
    'fan-in: the run output holds both leaves');

-- ----------------------------------------------------------------------
-- Maps: split (root map) -> double (map over split) -> total
-- ----------------------------------------------------------------------

SELECT quantum_flow.define_workflow('maps', '{"steps": [
    {"slug": "split", "type": "map"},
    {"slug": "double", "type": "map", "depends_on": ["split"]},
    {"slug": "total", "depends_on": ["double"]}]}');

SELECT results_eq(
    $$SELECT status, remaining_steps
        FROM quantum_flow.start_run('maps', '[10, 20, 30]',
                 '40000000-0000-0000-0000-000000000001')$$,
    $$VALUES ('started', 3)$$,
    'map: a run over a three-element array');

SELECT results_eq(
    $$SELECT initial_tasks, remaining_tasks
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '40000000-0000-0000-0000-000000000001'
         AND step_slug = 'split'$$,
    $$VALUES (3, 3)$$,
    'map: the root map step has one task per element');

SELECT results_eq(
    $$SELECT step_slug, task_index, input, run_input, idempotency_key::text
        FROM quantum_flow.poll_tasks('maps')
       ORDER BY step_slug, task_index$$,
    $$SELECT 'split', i, to_jsonb((i + 1) * 10), '[10, 20, 30]'::jsonb,
             md5(format('maps::split::%s::%s',
                        '40000000-0000-0000-0000-000000000001', i))
        FROM generate_series(0, 2) AS i ORDER BY i$$,
    'map: a root map task gets input -> task_index and its own key');

-- Completed out of order: 2, 0, then 1.
SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000001',
                                  'split', 2, '60');
SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000001',
                                  'split', 0, '20');

SELECT results_eq(
    $$SELECT step_slug, status, remaining_tasks
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '40000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('double', 'created', NULL::int), ('split', 'started', 1),
             ('total', 'created', NULL)$$,
    'map: the step waits for its last task');

SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000001',
                                  'split', 1, '40');

SELECT is(
    (SELECT output FROM quantum_flow.workflow_step_states
      WHERE run_id = '40000000-0000-0000-0000-000000000001'
        AND step_slug = 'split'),
    '[20, 40, 60]'::jsonb,
    'map: the output is in task_index order though completed out of order');

SELECT results_eq(
    $$SELECT step_slug, task_index, input
        FROM quantum_flow.poll_tasks('maps')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('double', 0, '20'::jsonb), ('double', 1, '40'::jsonb),
             ('double', 2, '60'::jsonb)$$,
    'map: a dependent map task gets dep_output -> task_index');

SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000001',
                                  'double', 1, '"b"');
SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000001',
                                  'double', 2, '"c"');
SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000001',
                                  'double', 0, '"a"');

SELECT results_eq(
    $$SELECT step_slug, input FROM quantum_flow.poll_tasks('maps')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('total', '{"double": ["a", "b", "c"]}'::jsonb)$$,
    'map: a single step after a map gets the array of task outputs');

SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000001',
                                  'total', 0, '3');

SELECT results_eq(
    $$SELECT status, output FROM quantum_flow.workflow_runs
       WHERE run_id = '40000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('completed', '{"total": 3}'::jsonb)$$,
    'map: the run completes with the last step''s output');

-- A map over the output of a single step.
SELECT quantum_flow.define_workflow('listing', '{"steps": [
    {"slug": "list"},
    {"slug": "each", "type": "map", "depends_on": ["list"]}]}');
SELECT quantum_flow.start_run('listing', '{"dir": "/tmp"}',
                              '40000000-0000-0000-0000-000000000002');
SELECT quantum_flow.complete_task(run_id, step_slug, task_index,
                                  '["x.txt", {"name": "y"}]')
  FROM quantum_flow.poll_tasks('listing');

SELECT results_eq(
    $$SELECT step_slug, task_index, input, run_input
        FROM quantum_flow.poll_tasks('listing')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('each', 0, '"x.txt"'::jsonb, '{"dir": "/tmp"}'::jsonb),
             ('each', 1, '{"name": "y"}'::jsonb, '{"dir": "/tmp"}'::jsonb)$$,
    'map: a map over a single step''s array output gets its elements');

SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000002',
                                  'each', 1, 'null');
SELECT quantum_flow.complete_task('40000000-0000-0000-0000-000000000002',
                                  'each', 0, '{"size": 3}');

SELECT results_eq(
    $$SELECT status, output FROM quantum_flow.workflow_runs
       WHERE run_id = '40000000-0000-0000-0000-000000000002'$$,
    $$VALUES ('completed', '{"each": [{"size": 3}, null]}'::jsonb)$$,
    'map: a map leaf puts its output array, nulls included, in the run output');

-- ----------------------------------------------------------------------
-- Empty maps
-- ----------------------------------------------------------------------

-- Root map over []: it and the map over it complete in start_run, and
-- the single step after them is started in that same call.
SELECT quantum_flow.define_workflow('empty_root', '{"steps": [
    {"slug": "m", "type": "map"},
    {"slug": "n", "type": "map", "depends_on": ["m"]},
    {"slug": "after", "depends_on": ["m"]}]}');

SELECT results_eq(
    $$SELECT status, remaining_steps
        FROM quantum_flow.start_run('empty_root', '[]',
                 '50000000-0000-0000-0000-000000000001')$$,
    $$VALUES ('started', 1)$$,
    'empty map: start_run over [] leaves only the single step open');

SELECT results_eq(
    $$SELECT step_slug, status, initial_tasks, output
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '50000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('after', 'started', 1, NULL::jsonb),
             ('m', 'completed', 0, '[]'),
             ('n', 'completed', 0, '[]')$$,
    'empty map: both maps completed with [], the cascade started the next step');

SELECT results_eq(
    $$SELECT step_slug, task_index, input
        FROM quantum_flow.poll_tasks('empty_root')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('after', 0, '{"m": []}'::jsonb)$$,
    'empty map: the dependent single step gets {m: []}');

SELECT quantum_flow.complete_task('50000000-0000-0000-0000-000000000001',
                                  'after', 0, '"ok"');

SELECT results_eq(
    $$SELECT status, output FROM quantum_flow.workflow_runs
       WHERE run_id = '50000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('completed', '{"after": "ok", "n": []}'::jsonb)$$,
    'empty map: the run output holds the empty map leaf');

-- A run whose steps are all empty maps completes inside start_run.
SELECT quantum_flow.define_workflow('all_empty', '{"steps": [
    {"slug": "m", "type": "map"},
    {"slug": "n", "type": "map", "depends_on": ["m"]}]}');

SELECT results_eq(
    $$SELECT status, output, remaining_steps, completed_at
        FROM quantum_flow.start_run('all_empty', '[]',
                 '50000000-0000-0000-0000-000000000002')$$,
    $$VALUES ('completed', '{"n": []}'::jsonb, 0,
              '2025-01-02 00:00:00+00'::timestamptz)$$,
    'empty map: a run of empty maps is completed by start_run itself');

SELECT is(
    (SELECT count(*) FROM quantum_flow.workflow_step_tasks
      WHERE run_id = '50000000-0000-0000-0000-000000000002'),
    0::bigint,
    'empty map: no task was created');

-- Dependent map over []: completing the step before it completes the map
-- and starts the step after it, in the same complete_task call.
SELECT quantum_flow.define_workflow('empty_dep', '{"steps": [
    {"slug": "src"},
    {"slug": "each", "type": "map", "depends_on": ["src"]},
    {"slug": "tail", "depends_on": ["each"]}]}');
SELECT quantum_flow.start_run('empty_dep', '{}',
                              '50000000-0000-0000-0000-000000000003');
SELECT count(*) FROM quantum_flow.poll_tasks('empty_dep');

SELECT results_eq(
    $$SELECT status FROM quantum_flow.complete_task(
                 '50000000-0000-0000-0000-000000000003', 'src', 0, '[]')$$,
    $$VALUES ('completed')$$,
    'empty map: the step feeding it completes with []');

SELECT results_eq(
    $$SELECT ss.step_slug, ss.status, ss.output, t.status, t.input
        FROM quantum_flow.workflow_step_states AS ss
        LEFT JOIN quantum_flow.workflow_step_tasks AS t
          ON t.run_id = ss.run_id AND t.step_slug = ss.step_slug
       WHERE ss.run_id = '50000000-0000-0000-0000-000000000003'
         AND ss.step_slug IN ('each', 'tail')
       ORDER BY ss.step_slug$$,
    $$VALUES ('each', 'completed', '[]'::jsonb, NULL::text, NULL::jsonb),
             ('tail', 'started', NULL, 'queued', '{"each": []}')$$,
    'empty map: the dependent map completed and the next step was queued in that call');

-- ----------------------------------------------------------------------
-- A large map: 10,000 tasks
-- ----------------------------------------------------------------------

SELECT quantum_flow.create_workflow('big');
SELECT quantum_flow.add_step('big', 'item', step_type => 'map');
SELECT quantum_flow.start_run('big',
                              (SELECT jsonb_agg(i ORDER BY i)
                                 FROM generate_series(0, 9999) AS i),
                              '60000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT count(*), count(DISTINCT idempotency_key),
             min(task_index), max(task_index),
             count(*) FILTER (WHERE input <> to_jsonb(task_index)),
             count(*) FILTER (WHERE idempotency_key <>
                 md5(format('big::item::%s::%s', run_id, task_index)))
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = '60000000-0000-0000-0000-000000000001'$$,
    $$VALUES (10000::bigint, 10000::bigint, 0, 9999, 0::bigint, 0::bigint)$$,
    'large map: 10,000 tasks, distinct keys, each with its element');

SELECT results_eq(
    $$SELECT initial_tasks, remaining_tasks
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '60000000-0000-0000-0000-000000000001'$$,
    $$VALUES (10000, 10000)$$,
    'large map: the step counts 10,000 tasks');

CREATE TEMP TABLE big_claims ON COMMIT DROP AS
SELECT * FROM quantum_flow.poll_tasks('big', 'w', 10000);

SELECT results_eq(
    $$SELECT count(*), count(DISTINCT task_index), min(attempt), max(attempt)
        FROM big_claims$$,
    $$VALUES (10000::bigint, 10000::bigint, 1, 1)$$,
    'large map: one poll claims all 10,000 tasks once');

-- Odd indexes first, in descending order, then the even ones.
SELECT is(
    quantum_flow.complete_tasks(
        array_agg(run_id ORDER BY task_index DESC),
        array_agg(step_slug ORDER BY task_index DESC),
        array_agg(task_index ORDER BY task_index DESC),
        array_agg(to_jsonb(task_index * 2) ORDER BY task_index DESC)),
    5000,
    'large map: complete_tasks applies the 5,000 odd tasks')
  FROM big_claims WHERE task_index % 2 = 1;

SELECT is(
    (SELECT status FROM quantum_flow.workflow_runs
      WHERE run_id = '60000000-0000-0000-0000-000000000001'),
    'started',
    'large map: half done, the run is still open');

SELECT is(
    quantum_flow.complete_tasks(
        array_agg(run_id ORDER BY task_index DESC),
        array_agg(step_slug ORDER BY task_index DESC),
        array_agg(task_index ORDER BY task_index DESC),
        array_agg(to_jsonb(task_index * 2) ORDER BY task_index DESC)),
    5000,
    'large map: complete_tasks applies the 5,000 even tasks')
  FROM big_claims WHERE task_index % 2 = 0;

SELECT results_eq(
    $$SELECT status, output -> 'item'
        FROM quantum_flow.workflow_runs
       WHERE run_id = '60000000-0000-0000-0000-000000000001'$$,
    $$SELECT 'completed', jsonb_agg(i * 2 ORDER BY i)
        FROM generate_series(0, 9999) AS i$$,
    'large map: the run output holds all 10,000 outputs in task_index order');

SELECT is(
    (SELECT output FROM quantum_flow.workflow_step_states
      WHERE run_id = '60000000-0000-0000-0000-000000000001'),
    (SELECT jsonb_agg(i * 2 ORDER BY i) FROM generate_series(0, 9999) AS i),
    'large map: the step output is in task_index order');

-- ----------------------------------------------------------------------
-- start_delay
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-01-03 00:00:00+00');
SELECT quantum_flow.create_workflow('later');
SELECT quantum_flow.add_step('later', 'a', start_delay => 30);
SELECT quantum_flow.add_step('later', 'b', ARRAY['a'], start_delay => 10);
SELECT quantum_flow.add_step('later', 'c', ARRAY['a']);
SELECT quantum_flow.start_run('later', '{}',
                              '70000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT step_slug, status, queued_at, visible_at
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = '70000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('a', 'queued', '2025-01-03 00:00:00+00'::timestamptz,
              '2025-01-03 00:00:30+00'::timestamptz)$$,
    'start_delay: the task is visible 30 s after it was queued');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('later')$$,
    'start_delay: not claimable at once');

SELECT quantum_flow.advance_clock('29 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('later')$$,
    'start_delay: not claimable one second early');

SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT step_slug, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('later')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('a', 1, '2025-01-03 00:01:30+00'::timestamptz)$$,
    'start_delay: claimable at now() + start_delay');

SELECT quantum_flow.advance_clock('5 seconds');
SELECT quantum_flow.complete_task('70000000-0000-0000-0000-000000000001',
                                  'a', 0, '1');

SELECT results_eq(
    $$SELECT step_slug, queued_at, visible_at
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = '70000000-0000-0000-0000-000000000001'
         AND step_slug IN ('b', 'c')
       ORDER BY step_slug$$,
    $$VALUES ('b', '2025-01-03 00:00:35+00'::timestamptz,
              '2025-01-03 00:00:45+00'::timestamptz),
             ('c', '2025-01-03 00:00:35+00', '2025-01-03 00:00:35+00')$$,
    'start_delay: a dependent step''s delay counts from when it starts');

SELECT results_eq(
    $$SELECT step_slug FROM quantum_flow.poll_tasks('later')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('c')$$,
    'start_delay: the undelayed sibling is claimable at once, the delayed one is not');

SELECT quantum_flow.advance_clock('9 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('later')$$,
    'start_delay: the dependent step is not claimable one second early');

SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT step_slug, input FROM quantum_flow.poll_tasks('later')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('b', '{"a": 1}'::jsonb)$$,
    'start_delay: the dependent step is claimable after its delay');

SELECT * FROM finish();
ROLLBACK;
