--
-- 23_cancel_isolation_queue: cancelling, run isolation and the queue
--
-- cancel_run cancels a run with its open steps and tasks and leaves a
-- finished run alone; callbacks that arrive afterwards are harmless.
-- What happens to one run never touches another, and task keys never
-- collide across runs.  The queue hands out the oldest visible task
-- first, across runs, and a claimed task to one worker only while its
-- lease holds.  start_run with an idempotency key starts one run per key,
-- and complete_tasks applies a batch with the same rules as complete_task.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET LOCAL timezone = 'UTC';
SELECT quantum_flow.set_clock();
SELECT plan(58);

-- ----------------------------------------------------------------------
-- cancel_run
-- ----------------------------------------------------------------------

-- first completes, busy is running, waiting is queued behind its delay,
-- next waits for busy.
SELECT quantum_flow.create_workflow('cx');
SELECT quantum_flow.add_step('cx', 'first');
SELECT quantum_flow.add_step('cx', 'busy');
SELECT quantum_flow.add_step('cx', 'waiting', start_delay => 600);
SELECT quantum_flow.add_step('cx', 'next', ARRAY['busy']);
SELECT quantum_flow.start_run('cx', '{}',
                              'c0000000-0000-0000-0000-000000000001');
SELECT count(*) FROM quantum_flow.poll_tasks('cx', 'w1');
SELECT quantum_flow.advance_clock('1 second');
SELECT quantum_flow.complete_task('c0000000-0000-0000-0000-000000000001',
                                  'first', 0, '"f"');
SELECT quantum_flow.advance_clock('9 seconds');

SELECT results_eq(
    $$SELECT run_id, status, cancelled_at, completed_at, failed_at,
             error_message
        FROM quantum_flow.cancel_run('c0000000-0000-0000-0000-000000000001',
                                     'operator request')$$,
    $$VALUES ('c0000000-0000-0000-0000-000000000001'::uuid, 'cancelled',
              '2025-01-01 00:00:10+00'::timestamptz, NULL::timestamptz,
              NULL::timestamptz, 'operator request')$$,
    'cancel_run: returns the cancelled run with its reason');

SELECT results_eq(
    $$SELECT step_slug, status, cancelled_at, output
        FROM quantum_flow.workflow_step_states
       WHERE run_id = 'c0000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('busy', 'cancelled', '2025-01-01 00:00:10+00'::timestamptz,
              NULL::jsonb),
             ('first', 'completed', NULL, '"f"'),
             ('next', 'cancelled', '2025-01-01 00:00:10+00', NULL),
             ('waiting', 'cancelled', '2025-01-01 00:00:10+00', NULL)$$,
    'cancel_run: open steps are cancelled, the completed one keeps its output');

SELECT results_eq(
    $$SELECT step_slug, status, cancelled_at
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = 'c0000000-0000-0000-0000-000000000001'
       ORDER BY step_slug, task_index$$,
    $$VALUES ('busy', 'cancelled', '2025-01-01 00:00:10+00'::timestamptz),
             ('first', 'completed', NULL),
             ('waiting', 'cancelled', '2025-01-01 00:00:10+00')$$,
    'cancel_run: started and queued tasks are cancelled, the completed one is kept');

SELECT quantum_flow.advance_clock('1 hour');

SELECT results_eq(
    $$SELECT status, cancelled_at, error_message
        FROM quantum_flow.cancel_run('c0000000-0000-0000-0000-000000000001',
                                     'second request')$$,
    $$VALUES ('cancelled', '2025-01-01 00:00:10+00'::timestamptz,
              'operator request')$$,
    'cancel_run: a cancelled run is returned unchanged');

SELECT results_eq(
    $$SELECT status, output, completed_at
        FROM quantum_flow.complete_task('c0000000-0000-0000-0000-000000000001',
                                        'busy', 0, '"late"', 1)$$,
    $$VALUES ('cancelled', NULL::jsonb, NULL::timestamptz)$$,
    'cancel_run: a late completion of a cancelled task changes nothing');

SELECT results_eq(
    $$SELECT status, error_message, attempts_count
        FROM quantum_flow.fail_task('c0000000-0000-0000-0000-000000000001',
                                    'busy', 0, 'late failure', 1)$$,
    $$VALUES ('cancelled', NULL::text, 1)$$,
    'cancel_run: a late failure of a cancelled task changes nothing');

SELECT is(
    quantum_flow.extend_lease('c0000000-0000-0000-0000-000000000001',
                              'busy', 0, 1, '1 minute'),
    false,
    'cancel_run: the worker''s heartbeat is refused');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('cx')$$,
    'cancel_run: nothing of the run is handed out, even after its delays');

SELECT is(
    quantum_flow.start_ready_steps('c0000000-0000-0000-0000-000000000001'),
    0,
    'cancel_run: start_ready_steps on a cancelled run creates nothing');

SELECT results_eq(
    $$SELECT status, remaining_steps, cancelled_at
        FROM quantum_flow.workflow_runs
       WHERE run_id = 'c0000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('cancelled', 3, '2025-01-01 00:00:10+00'::timestamptz)$$,
    'cancel_run: the late callbacks left the run as it was');

-- A completed run is not cancelled.
SELECT quantum_flow.create_workflow('cx_done');
SELECT quantum_flow.add_step('cx_done', 'only');
SELECT quantum_flow.start_run('cx_done', '{}',
                              'c0000000-0000-0000-0000-000000000002');
SELECT quantum_flow.complete_task(run_id, step_slug, task_index, '1')
  FROM quantum_flow.poll_tasks('cx_done');

SELECT results_eq(
    $$SELECT status, output, cancelled_at, error_message
        FROM quantum_flow.cancel_run('c0000000-0000-0000-0000-000000000002')$$,
    $$VALUES ('completed', '{"only": 1}'::jsonb, NULL::timestamptz,
              NULL::text)$$,
    'cancel_run: a completed run is returned unchanged');

SELECT throws_ok(
    $$SELECT quantum_flow.cancel_run('c0000000-0000-0000-0000-0000000000ff')$$,
    '42704', NULL,
    'cancel_run: an unknown run is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.cancel_run(NULL)$$,
    '22004', NULL,
    'cancel_run: a NULL run_id is 22004');

-- ----------------------------------------------------------------------
-- Run isolation
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-02-01 00:00:00+00');
SELECT quantum_flow.define_workflow('iso', '{
    "max_attempts": 1, "timeout": 3600, "steps": [
    {"slug": "items", "type": "map"},
    {"slug": "total", "depends_on": ["items"]}]}');
SELECT quantum_flow.start_run('iso', '[1, 2]',
                              'd0000000-0000-0000-0000-00000000000a');
SELECT quantum_flow.start_run('iso', '[1, 2]',
                              'd0000000-0000-0000-0000-00000000000b');
SELECT quantum_flow.start_run('iso', '[1, 2]',
                              'd0000000-0000-0000-0000-00000000000c');

SELECT results_eq(
    $$SELECT count(*), count(DISTINCT idempotency_key),
             count(*) FILTER (WHERE idempotency_key <> md5(format(
                 'iso::%s::%s::%s', step_slug, run_id, task_index)))
        FROM quantum_flow.workflow_step_tasks
       WHERE workflow_slug = 'iso'$$,
    $$VALUES (6::bigint, 6::bigint, 0::bigint)$$,
    'isolation: three runs with one input have six distinct keys');

SELECT is(
    (SELECT count(*) FROM quantum_flow.poll_tasks('iso', 'w', 10)),
    6::bigint,
    'isolation: all six tasks are claimed');

-- Everything about run b, as one row.
CREATE TEMP VIEW run_b AS
SELECT (SELECT to_jsonb(r) FROM quantum_flow.workflow_runs AS r
         WHERE r.run_id = 'd0000000-0000-0000-0000-00000000000b') AS run,
       (SELECT jsonb_agg(to_jsonb(s) ORDER BY s.step_slug)
          FROM quantum_flow.workflow_step_states AS s
         WHERE s.run_id = 'd0000000-0000-0000-0000-00000000000b') AS steps,
       (SELECT jsonb_agg(to_jsonb(t) ORDER BY t.step_slug, t.task_index)
          FROM quantum_flow.workflow_step_tasks AS t
         WHERE t.run_id = 'd0000000-0000-0000-0000-00000000000b') AS tasks;
CREATE TEMP TABLE run_b_before AS SELECT * FROM run_b;

SELECT quantum_flow.advance_clock('1 minute');
SELECT quantum_flow.complete_task('d0000000-0000-0000-0000-00000000000a',
                                  'items', 1, '"a1"');
SELECT quantum_flow.complete_task('d0000000-0000-0000-0000-00000000000a',
                                  'items', 0, '"a0"');

SELECT results_eq(
    $$SELECT step_slug, status, output FROM quantum_flow.workflow_step_states
       WHERE run_id = 'd0000000-0000-0000-0000-00000000000a'
       ORDER BY step_slug$$,
    $$VALUES ('items', 'completed', '["a0", "a1"]'::jsonb),
             ('total', 'started', NULL)$$,
    'isolation: run a''s map step completes with run a''s outputs only');

SELECT results_eq(
    'SELECT * FROM run_b', 'SELECT * FROM run_b_before',
    'isolation: completing run a''s tasks left run b unchanged');

SELECT quantum_flow.advance_clock('1 minute');
SELECT count(*) FROM quantum_flow.poll_tasks('iso');
SELECT quantum_flow.fail_task('d0000000-0000-0000-0000-00000000000a',
                              'total', 0, 'no total');

SELECT is(
    (SELECT status FROM quantum_flow.workflow_runs
      WHERE run_id = 'd0000000-0000-0000-0000-00000000000a'),
    'failed',
    'isolation: run a failed');

SELECT results_eq(
    'SELECT * FROM run_b', 'SELECT * FROM run_b_before',
    'isolation: failing run a left run b unchanged');

SELECT quantum_flow.advance_clock('1 minute');
SELECT quantum_flow.cancel_run('d0000000-0000-0000-0000-00000000000c');

SELECT results_eq(
    'SELECT * FROM run_b', 'SELECT * FROM run_b_before',
    'isolation: cancelling run c left run b unchanged');

-- Now run b finishes; run a stays as it was.
CREATE TEMP TABLE run_a_before AS
SELECT to_jsonb(r) AS run FROM quantum_flow.workflow_runs AS r
 WHERE r.run_id = 'd0000000-0000-0000-0000-00000000000a';

SELECT is(
    quantum_flow.complete_tasks(
        ARRAY['d0000000-0000-0000-0000-00000000000b',
              'd0000000-0000-0000-0000-00000000000b']::uuid[],
        ARRAY['items', 'items'], ARRAY[0, 1],
        ARRAY['"b0"', '"b1"']::jsonb[]),
    2,
    'isolation: run b''s two tasks complete');
SELECT quantum_flow.complete_task(run_id, step_slug, task_index, '"b"')
  FROM quantum_flow.poll_tasks('iso');

SELECT results_eq(
    $$SELECT run_id, status, output FROM quantum_flow.workflow_runs
       WHERE workflow_slug = 'iso' ORDER BY run_id$$,
    $$VALUES ('d0000000-0000-0000-0000-00000000000a'::uuid, 'failed',
              NULL::jsonb),
             ('d0000000-0000-0000-0000-00000000000b', 'completed',
              '{"total": "b"}'),
             ('d0000000-0000-0000-0000-00000000000c', 'cancelled', NULL)$$,
    'isolation: each run ended its own way');

SELECT is(
    (SELECT input FROM quantum_flow.workflow_step_tasks
      WHERE run_id = 'd0000000-0000-0000-0000-00000000000b'
        AND step_slug = 'total'),
    '{"items": ["b0", "b1"]}'::jsonb,
    'isolation: run b''s next step got run b''s outputs');

SELECT results_eq(
    $$SELECT to_jsonb(r) FROM quantum_flow.workflow_runs AS r
       WHERE r.run_id = 'd0000000-0000-0000-0000-00000000000a'$$,
    'SELECT run FROM run_a_before',
    'isolation: completing run b left run a unchanged');

-- ----------------------------------------------------------------------
-- Queue order
-- ----------------------------------------------------------------------

-- Runs are started at T, T+1 s and T+2 s with run_ids in the opposite
-- order, so that only visible_at can explain the order of delivery.
SELECT quantum_flow.set_clock('2025-03-01 00:00:00+00');
SELECT quantum_flow.create_workflow('q', base_delay => 1);
SELECT quantum_flow.add_step('q', 'job');
SELECT quantum_flow.create_workflow('q_other');
SELECT quantum_flow.add_step('q_other', 'job');
SELECT quantum_flow.start_run('q', '{}',
                              'e0000000-0000-0000-0000-000000000003');
SELECT quantum_flow.start_run('q_other', '{}',
                              'e0000000-0000-0000-0000-000000000000');
SELECT quantum_flow.advance_clock('1 second');
SELECT quantum_flow.start_run('q', '{}',
                              'e0000000-0000-0000-0000-000000000002');
SELECT quantum_flow.advance_clock('1 second');
SELECT quantum_flow.start_run('q', '{}',
                              'e0000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT run_id, attempt FROM quantum_flow.poll_tasks('q', 'w', 1)$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000003'::uuid, 1)$$,
    'queue: the oldest visible task comes first');

SELECT results_eq(
    $$SELECT run_id, attempt FROM quantum_flow.poll_tasks('q', 'w', 1)$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000002'::uuid, 1)$$,
    'queue: then the next oldest, from another run');

-- Its retry becomes visible at T+3 s, after the third run's task (T+2 s).
SELECT quantum_flow.fail_task('e0000000-0000-0000-0000-000000000002',
                              'job', 0, 'retry me');
SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT run_id, attempt FROM quantum_flow.poll_tasks('q', 'w', 1)$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000001'::uuid, 1)$$,
    'queue: a task queued earlier comes before a retry that became visible later');

SELECT results_eq(
    $$SELECT run_id, attempt FROM quantum_flow.poll_tasks('q', 'w', 1)$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000002'::uuid, 2)$$,
    'queue: then the retry');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('q')$$,
    'queue: nothing else of the workflow is claimable');

SELECT quantum_flow.advance_clock('10 seconds');
SELECT quantum_flow.start_run('q', '{}',
                              'e0000000-0000-0000-0000-000000000006');
SELECT quantum_flow.advance_clock('1 second');
SELECT quantum_flow.start_run('q', '{}',
                              'e0000000-0000-0000-0000-000000000005');
SELECT quantum_flow.advance_clock('1 second');
SELECT quantum_flow.start_run('q', '{}',
                              'e0000000-0000-0000-0000-000000000004');

SELECT results_eq(
    $$SELECT run_id FROM quantum_flow.poll_tasks('q', 'w', 2)
       ORDER BY run_id$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000005'::uuid),
             ('e0000000-0000-0000-0000-000000000006'::uuid)$$,
    'queue: a batch of two takes the two oldest');

SELECT results_eq(
    $$SELECT run_id FROM quantum_flow.poll_tasks('q', 'w', 2)
       ORDER BY run_id$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000004'::uuid)$$,
    'queue: the next batch takes the rest');

SELECT results_eq(
    $$SELECT run_id FROM quantum_flow.poll_tasks('q_other') ORDER BY run_id$$,
    $$VALUES ('e0000000-0000-0000-0000-000000000000'::uuid)$$,
    'queue: each workflow has its own queue');

-- ----------------------------------------------------------------------
-- Once-only delivery
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-04-01 00:00:00+00');
SELECT quantum_flow.create_workflow('once');
SELECT quantum_flow.add_step('once', 'each', step_type => 'map');
SELECT quantum_flow.start_run('once', '[1, 2, 3, 4, 5]',
                              'f0000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT task_index, attempt FROM quantum_flow.poll_tasks('once', 'w1', 3)
       ORDER BY task_index$$,
    $$SELECT i, 1 FROM generate_series(0, 2) AS i ORDER BY i$$,
    'once: the first worker gets three tasks');

SELECT results_eq(
    $$SELECT task_index, attempt FROM quantum_flow.poll_tasks('once', 'w2', 10)
       ORDER BY task_index$$,
    $$VALUES (3, 1), (4, 1)$$,
    'once: the second worker gets only the two others');

SELECT quantum_flow.advance_clock('59 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('once', 'w3', 10)$$,
    'once: no task is handed out again while its lease holds');

SELECT results_eq(
    $$SELECT task_index, worker_id, attempts_count
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = 'f0000000-0000-0000-0000-000000000001'
       ORDER BY task_index$$,
    $$VALUES (0, 'w1', 1), (1, 'w1', 1), (2, 'w1', 1), (3, 'w2', 1),
             (4, 'w2', 1)$$,
    'once: each task is held by the worker that claimed it');

SELECT quantum_flow.complete_task('f0000000-0000-0000-0000-000000000001',
                                  'each', 1, '1');
SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT task_index, attempt FROM quantum_flow.poll_tasks('once', 'w3', 10)
       ORDER BY task_index$$,
    $$VALUES (0, 2), (2, 2), (3, 2), (4, 2)$$,
    'once: after the lease the open tasks go to the next worker, the completed one does not');

-- ----------------------------------------------------------------------
-- start_run with an idempotency key
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-05-01 00:00:00+00');
SELECT quantum_flow.create_workflow('idem');
SELECT quantum_flow.add_step('idem', 'charge');
SELECT quantum_flow.create_workflow('idem_other');
SELECT quantum_flow.add_step('idem_other', 'charge');

SELECT results_eq(
    $$SELECT run_id, status, idempotency_key, started_at
        FROM quantum_flow.start_run('idem', '{"order": 1}',
                 '0d000000-0000-0000-0000-000000000001', 'order-1')$$,
    $$VALUES ('0d000000-0000-0000-0000-000000000001'::uuid, 'started',
              'order-1', '2025-05-01 00:00:00+00'::timestamptz)$$,
    'start_run: the first call with a key starts a run');

SELECT quantum_flow.advance_clock('1 minute');

SELECT results_eq(
    $$SELECT run_id, status, idempotency_key, started_at
        FROM quantum_flow.start_run('idem', '{"order": 1}',
                                    idempotency_key => 'order-1')$$,
    $$VALUES ('0d000000-0000-0000-0000-000000000001'::uuid, 'started',
              'order-1', '2025-05-01 00:00:00+00'::timestamptz)$$,
    'start_run: the same key and input return the existing run');

SELECT results_eq(
    $$SELECT run_id
        FROM quantum_flow.start_run('idem', '{"order": 1}',
                 '0d000000-0000-0000-0000-000000000009', 'order-1')$$,
    $$VALUES ('0d000000-0000-0000-0000-000000000001'::uuid)$$,
    'start_run: the existing run is returned even when another run_id is given');

SELECT results_eq(
    $$SELECT (SELECT count(*) FROM quantum_flow.workflow_runs
               WHERE workflow_slug = 'idem'),
             (SELECT count(*) FROM quantum_flow.workflow_step_tasks
               WHERE workflow_slug = 'idem')$$,
    $$VALUES (1::bigint, 1::bigint)$$,
    'start_run: the repeats created no run and no task');

SELECT throws_ok(
    $$SELECT quantum_flow.start_run('idem', '{"order": 2}',
                                    idempotency_key => 'order-1')$$,
    '23505', NULL,
    'start_run: the same key with another input is 23505');

SELECT results_eq(
    $$SELECT run_id, workflow_slug
        FROM quantum_flow.start_run('idem_other', '{"order": 2}',
                 '0d000000-0000-0000-0000-000000000002', 'order-1')$$,
    $$VALUES ('0d000000-0000-0000-0000-000000000002'::uuid, 'idem_other')$$,
    'start_run: a key is per workflow');

SELECT quantum_flow.complete_task(run_id, step_slug, task_index, '"paid"')
  FROM quantum_flow.poll_tasks('idem');

SELECT results_eq(
    $$SELECT run_id, status, output
        FROM quantum_flow.start_run('idem', '{"order": 1}',
                                    idempotency_key => 'order-1')$$,
    $$VALUES ('0d000000-0000-0000-0000-000000000001'::uuid, 'completed',
              '{"charge": "paid"}'::jsonb)$$,
    'start_run: after the run completed, the key still returns it, not a new run');

SELECT is(
    (SELECT count(DISTINCT run_id)
       FROM (SELECT (quantum_flow.start_run('idem', '{"order": 1}')).run_id
               FROM generate_series(1, 2)) AS s),
    2::bigint,
    'start_run: without a key every call starts a new run');

-- ----------------------------------------------------------------------
-- complete_tasks
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-06-01 00:00:00+00');
SELECT quantum_flow.create_workflow('batch');
SELECT quantum_flow.add_step('batch', 'items', step_type => 'map');
SELECT quantum_flow.start_run('batch', '[0, 1, 2, 3, 4]',
                              '0b000000-0000-0000-0000-000000000001');
SELECT quantum_flow.start_run('batch', '[0]',
                              '0b000000-0000-0000-0000-000000000002');
SELECT count(*) FROM quantum_flow.poll_tasks('batch', 'w', 10);

-- Task 4 of the first run goes to attempt 2.
SELECT quantum_flow.fail_task('0b000000-0000-0000-0000-000000000001',
                              'items', 4, 'retry');
SELECT quantum_flow.advance_clock('1 second');
SELECT count(*) FROM quantum_flow.poll_tasks('batch', 'w', 10);
SELECT quantum_flow.complete_task('0b000000-0000-0000-0000-000000000001',
                                  'items', 0, '"a"');

-- Applied: task 1 (attempt 1 is current) and the second run's task 0.
-- Not applied: task 0 (already completed), task 2 (attempt 2 named, 1 is
-- current), task 4 (attempt 1 named, 2 is current).
SELECT is(
    quantum_flow.complete_tasks(
        ARRAY['0b000000-0000-0000-0000-000000000001',
              '0b000000-0000-0000-0000-000000000001',
              '0b000000-0000-0000-0000-000000000001',
              '0b000000-0000-0000-0000-000000000001',
              '0b000000-0000-0000-0000-000000000002']::uuid[],
        ARRAY['items', 'items', 'items', 'items', 'items'],
        ARRAY[0, 1, 2, 4, 0],
        ARRAY['"x"', '"b"', '"x"', '"x"', '"only"']::jsonb[],
        ARRAY[1, 1, 2, 1, 1]),
    2,
    'complete_tasks: counts only the started tasks of the named attempts');

SELECT results_eq(
    $$SELECT run_id, task_index, status, output
        FROM quantum_flow.workflow_step_tasks
       WHERE workflow_slug = 'batch'
       ORDER BY run_id, task_index$$,
    $$VALUES ('0b000000-0000-0000-0000-000000000001'::uuid, 0, 'completed',
              '"a"'::jsonb),
             ('0b000000-0000-0000-0000-000000000001', 1, 'completed', '"b"'),
             ('0b000000-0000-0000-0000-000000000001', 2, 'started', NULL),
             ('0b000000-0000-0000-0000-000000000001', 3, 'started', NULL),
             ('0b000000-0000-0000-0000-000000000001', 4, 'started', NULL),
             ('0b000000-0000-0000-0000-000000000002', 0, 'completed',
              '"only"')$$,
    'complete_tasks: stale and duplicate elements left their rows unchanged');

SELECT results_eq(
    $$SELECT run_id, status, output FROM quantum_flow.workflow_runs
       WHERE workflow_slug = 'batch' ORDER BY run_id$$,
    $$VALUES ('0b000000-0000-0000-0000-000000000001'::uuid, 'started',
              NULL::jsonb),
             ('0b000000-0000-0000-0000-000000000002', 'completed',
              '{"items": ["only"]}')$$,
    'complete_tasks: a batch completes the runs it finishes');

SELECT throws_ok(
    $$SELECT quantum_flow.complete_tasks(
        ARRAY['0b000000-0000-0000-0000-000000000001']::uuid[],
        ARRAY['items', 'items'], ARRAY[2], ARRAY['1']::jsonb[])$$,
    '22023', NULL,
    'complete_tasks: arrays of different lengths are 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.complete_tasks(
        ARRAY['0b000000-0000-0000-0000-000000000001']::uuid[],
        ARRAY['items'], ARRAY[2], ARRAY['1']::jsonb[], ARRAY[1, 1])$$,
    '22023', NULL,
    'complete_tasks: an attempts array of another length is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.complete_tasks(
        ARRAY['0b000000-0000-0000-0000-000000000001',
              '0b000000-0000-0000-0000-000000000001']::uuid[],
        ARRAY['items', 'items'], ARRAY[2, 99],
        ARRAY['"c"', '"z"']::jsonb[])$$,
    '42704', NULL,
    'complete_tasks: an element naming an unknown task is 42704');

SELECT is(
    (SELECT status FROM quantum_flow.workflow_step_tasks
      WHERE run_id = '0b000000-0000-0000-0000-000000000001'
        AND task_index = 2),
    'started',
    'complete_tasks: the rejected batch applied nothing');

SELECT throws_ok(
    $$SELECT quantum_flow.complete_tasks(NULL, ARRAY['items'], ARRAY[2],
                                         ARRAY['1']::jsonb[])$$,
    '22004', NULL,
    'complete_tasks: a NULL array is 22004');

SELECT is(
    quantum_flow.complete_tasks('{}', '{}', '{}', '{}'),
    0,
    'complete_tasks: an empty batch applies nothing');

-- One task named twice counts once; without attempts any attempt goes.
SELECT is(
    quantum_flow.complete_tasks(
        ARRAY['0b000000-0000-0000-0000-000000000001',
              '0b000000-0000-0000-0000-000000000001',
              '0b000000-0000-0000-0000-000000000001']::uuid[],
        ARRAY['items', 'items', 'items'], ARRAY[2, 2, 4],
        ARRAY['"c"', '"c"', '"e"']::jsonb[]),
    2,
    'complete_tasks: a task named twice in a batch is completed once');

SELECT results_eq(
    $$SELECT task_index, status, attempts_count, output
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = '0b000000-0000-0000-0000-000000000001'
         AND task_index IN (2, 4)
       ORDER BY task_index$$,
    $$VALUES (2, 'completed', 1, '"c"'::jsonb),
             (4, 'completed', 2, '"e"')$$,
    'complete_tasks: without attempts the current attempt is completed');

SELECT is(
    quantum_flow.complete_tasks(
        ARRAY['0b000000-0000-0000-0000-000000000001']::uuid[],
        ARRAY['items'], ARRAY[3], ARRAY['"d"']::jsonb[]),
    1,
    'complete_tasks: the last task');

SELECT results_eq(
    $$SELECT status, output FROM quantum_flow.workflow_runs
       WHERE run_id = '0b000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('completed', '{"items": ["a", "b", "c", "d", "e"]}'::jsonb)$$,
    'complete_tasks: the run completes with every output in task_index order');

SELECT * FROM finish();
ROLLBACK;
