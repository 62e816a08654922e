--
-- 22_retries_timeouts: failed attempts, leases and stale workers
--
-- fail_task requeues a task after base_delay * 2^(attempts - 1) seconds
-- until max_attempts is used up, then fails the task, its step and its
-- run and cancels the run's other open tasks.  Step options override the
-- workflow's.  A lease that runs out lets the next poll claim the task
-- again with attempt + 1, or, on the last attempt, fail it as timed out.
-- extend_lease and the attempt argument of complete_task and fail_task
-- keep a stale worker from touching a task that is no longer its own.
-- A non-array output feeding a map step fails the run at once.
-- All times are exact: the clock is frozen and moved by advance_clock.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET LOCAL timezone = 'UTC';
SELECT quantum_flow.set_clock();
SELECT plan(73);

-- ----------------------------------------------------------------------
-- Retries with exponential backoff, then exhaustion
-- ----------------------------------------------------------------------

-- flaky fails four times; busy is running; idle is queued but not yet
-- visible; next waits for flaky.
SELECT quantum_flow.create_workflow('retry', max_attempts => 4,
                                    base_delay => 2);
SELECT quantum_flow.add_step('retry', 'flaky');
SELECT quantum_flow.add_step('retry', 'busy');
SELECT quantum_flow.add_step('retry', 'idle', start_delay => 3600);
SELECT quantum_flow.add_step('retry', 'next', ARRAY['flaky']);
SELECT quantum_flow.start_run('retry', '{}',
                              'a0000000-0000-0000-0000-000000000001');

SELECT results_eq(
    $$SELECT step_slug, attempt FROM quantum_flow.poll_tasks('retry', 'w1')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('busy', 1), ('flaky', 1)$$,
    'retry: the two visible root tasks are claimed');

SELECT results_eq(
    $$SELECT status, attempts_count, visible_at, error_message, worker_id
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000001',
                                    'flaky', 0, 'boom 1')$$,
    $$VALUES ('queued', 1, '2025-01-01 00:00:02+00'::timestamptz,
              'boom 1', NULL::text)$$,
    'retry: attempt 1 failed, queued again after 2 * 2^0 = 2 s');

SELECT quantum_flow.advance_clock('1 second');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('retry')$$,
    'retry: not claimable during the backoff');

SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT step_slug, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('retry', 'w2')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('flaky', 2, '2025-01-01 00:01:02+00'::timestamptz)$$,
    'retry: claimable when the backoff ends, as attempt 2');

SELECT results_eq(
    $$SELECT status, attempts_count, visible_at, error_message
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000001',
                                    'flaky', 0, 'boom 2', 2)$$,
    $$VALUES ('queued', 2, '2025-01-01 00:00:06+00'::timestamptz, 'boom 2')$$,
    'retry: attempt 2 failed, queued again after 2 * 2^1 = 4 s');

SELECT quantum_flow.advance_clock('3 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('retry')$$,
    'retry: not claimable one second before the second backoff ends');

SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT step_slug, attempt FROM quantum_flow.poll_tasks('retry')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('flaky', 3)$$,
    'retry: attempt 3');

SELECT results_eq(
    $$SELECT status, attempts_count, visible_at
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000001',
                                    'flaky', 0, 'boom 3')$$,
    $$VALUES ('queued', 3, '2025-01-01 00:00:14+00'::timestamptz)$$,
    'retry: attempt 3 failed, queued again after 2 * 2^2 = 8 s');

SELECT quantum_flow.advance_clock('8 seconds');

SELECT results_eq(
    $$SELECT step_slug, attempt FROM quantum_flow.poll_tasks('retry')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('flaky', 4)$$,
    'retry: attempt 4, the last');

SELECT results_eq(
    $$SELECT status, attempts_count, error_message, failed_at
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000001',
                                    'flaky', 0, 'boom 4')$$,
    $$VALUES ('failed', 4, 'boom 4', '2025-01-01 00:00:14+00'::timestamptz)$$,
    'retry: the last attempt failed, the task fails');

SELECT results_eq(
    $$SELECT step_slug, status, error_message, failed_at
        FROM quantum_flow.workflow_step_states
       WHERE run_id = 'a0000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('busy', 'cancelled', NULL::text, NULL::timestamptz),
             ('flaky', 'failed', 'boom 4', '2025-01-01 00:00:14+00'),
             ('idle', 'cancelled', NULL, NULL),
             ('next', 'cancelled', NULL, NULL)$$,
    'retry: the step fails with the task''s message, the other steps are cancelled');

SELECT results_eq(
    $$SELECT step_slug, status, cancelled_at
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = 'a0000000-0000-0000-0000-000000000001'
       ORDER BY step_slug, task_index$$,
    $$VALUES ('busy', 'cancelled', '2025-01-01 00:00:14+00'::timestamptz),
             ('flaky', 'failed', NULL),
             ('idle', 'cancelled', '2025-01-01 00:00:14+00')$$,
    'retry: the run''s started and queued tasks are cancelled');

SELECT results_eq(
    $$SELECT status, failed_at, completed_at, output
        FROM quantum_flow.workflow_runs
       WHERE run_id = 'a0000000-0000-0000-0000-000000000001'$$,
    $$VALUES ('failed', '2025-01-01 00:00:14+00'::timestamptz,
              NULL::timestamptz, NULL::jsonb)$$,
    'retry: the run fails');

SELECT ok(
    (SELECT strpos(error_message, 'flaky') > 0
            AND strpos(error_message, 'boom 4') > 0
       FROM quantum_flow.workflow_runs
      WHERE run_id = 'a0000000-0000-0000-0000-000000000001'),
    'retry: the run''s error_message names the step and carries the task''s message');

SELECT quantum_flow.advance_clock('1 hour');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('retry')$$,
    'retry: nothing of the failed run is handed out, even after every lease and delay');

SELECT results_eq(
    $$SELECT status, output
        FROM quantum_flow.complete_task('a0000000-0000-0000-0000-000000000001',
                                        'busy', 0, '"late"')$$,
    $$VALUES ('cancelled', NULL::jsonb)$$,
    'retry: a late completion of a cancelled task changes nothing');

SELECT results_eq(
    $$SELECT status, attempts_count, error_message
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000001',
                                    'flaky', 0, 'boom 5')$$,
    $$VALUES ('failed', 4, 'boom 4')$$,
    'retry: a late failure of a failed task changes nothing');

-- ----------------------------------------------------------------------
-- Step options override the workflow's
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-02-01 00:00:00+00');
SELECT quantum_flow.create_workflow('ovr', max_attempts => 5,
                                    base_delay => 1, timeout => 60);
SELECT quantum_flow.add_step('ovr', 'own', max_attempts => 2,
                             base_delay => 10, timeout => 5);
SELECT quantum_flow.add_step('ovr', 'inherit');
SELECT quantum_flow.start_run('ovr', '{}',
                              'a0000000-0000-0000-0000-000000000002');

SELECT results_eq(
    $$SELECT step_slug, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('ovr')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('inherit', 1, '2025-02-01 00:01:00+00'::timestamptz),
             ('own', 1, '2025-02-01 00:00:05+00'::timestamptz)$$,
    'options: the step timeout (5 s) overrides the workflow''s (60 s)');

SELECT results_eq(
    $$SELECT visible_at
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000002',
                                    'inherit', 0, 'x')$$,
    $$VALUES ('2025-02-01 00:00:01+00'::timestamptz)$$,
    'options: a step without options backs off by the workflow''s base_delay');

SELECT results_eq(
    $$SELECT status, visible_at
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000002',
                                    'own', 0, 'y')$$,
    $$VALUES ('queued', '2025-02-01 00:00:10+00'::timestamptz)$$,
    'options: the step base_delay (10 s) overrides the workflow''s');

SELECT quantum_flow.advance_clock('10 seconds');

SELECT results_eq(
    $$SELECT step_slug, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('ovr')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('inherit', 2, '2025-02-01 00:01:10+00'::timestamptz),
             ('own', 2, '2025-02-01 00:00:15+00'::timestamptz)$$,
    'options: both tasks come back as attempt 2');

SELECT results_eq(
    $$SELECT status
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000002',
                                    'own', 0, 'z')$$,
    $$VALUES ('failed')$$,
    'options: the step max_attempts (2) overrides the workflow''s (5)');

SELECT results_eq(
    $$SELECT r.status, t.status
        FROM quantum_flow.workflow_runs AS r
        JOIN quantum_flow.workflow_step_tasks AS t USING (run_id)
       WHERE r.run_id = 'a0000000-0000-0000-0000-000000000002'
         AND t.step_slug = 'inherit'$$,
    $$VALUES ('failed', 'cancelled')$$,
    'options: the run fails and the sibling task is cancelled');

-- ----------------------------------------------------------------------
-- Timeouts
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-03-01 00:00:00+00');
SELECT quantum_flow.create_workflow('slow', max_attempts => 2,
                                    timeout => 30);
SELECT quantum_flow.add_step('slow', 'work');
SELECT quantum_flow.add_step('slow', 'later', start_delay => 3600);
SELECT quantum_flow.add_step('slow', 'after', ARRAY['work']);
SELECT quantum_flow.start_run('slow', '{}',
                              'a0000000-0000-0000-0000-000000000003');

SELECT results_eq(
    $$SELECT step_slug, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('slow', 'w1')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('work', 1, '2025-03-01 00:00:30+00'::timestamptz)$$,
    'timeout: attempt 1 leased for the workflow timeout');

SELECT quantum_flow.advance_clock('29 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('slow', 'w2')$$,
    'timeout: not handed out again while the lease holds');

SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT step_slug, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('slow', 'w2')
       ORDER BY step_slug, task_index$$,
    $$VALUES ('work', 2, '2025-03-01 00:01:00+00'::timestamptz)$$,
    'timeout: once the lease expired the next poll reclaims it as attempt 2');

SELECT results_eq(
    $$SELECT status, attempts_count, worker_id, started_at
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = 'a0000000-0000-0000-0000-000000000003'
         AND step_slug = 'work'$$,
    $$VALUES ('started', 2, 'w2', '2025-03-01 00:00:30+00'::timestamptz)$$,
    'timeout: the task row belongs to the new attempt and worker');

-- The first worker wakes up late.
SELECT results_eq(
    $$SELECT status, attempts_count, output, completed_at
        FROM quantum_flow.complete_task('a0000000-0000-0000-0000-000000000003',
                                        'work', 0, '"stale"', 1)$$,
    $$VALUES ('started', 2, NULL::jsonb, NULL::timestamptz)$$,
    'stale: complete_task of attempt 1 is refused, the row is returned unchanged');

SELECT results_eq(
    $$SELECT status, attempts_count, error_message, visible_at
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000003',
                                    'work', 0, 'stale failure', 1)$$,
    $$VALUES ('started', 2, NULL::text,
              '2025-03-01 00:01:00+00'::timestamptz)$$,
    'stale: fail_task of attempt 1 is refused, the row is returned unchanged');

SELECT is(
    quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000003',
                              'work', 0, 1, '1 minute'),
    false,
    'stale: extend_lease of attempt 1 is false');

SELECT is(
    quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000003',
                              'work', 0, 2, '45 seconds'),
    true,
    'extend_lease: true for the attempt that holds the task');

SELECT is(
    (SELECT visible_at FROM quantum_flow.workflow_step_tasks
      WHERE run_id = 'a0000000-0000-0000-0000-000000000003'
        AND step_slug = 'work'),
    '2025-03-01 00:01:15+00'::timestamptz,
    'extend_lease: the lease now ends at now() + 45 s');

SELECT quantum_flow.advance_clock('44 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('slow')$$,
    'timeout: the extended lease holds until its new end');

SELECT is(
    (SELECT status FROM quantum_flow.workflow_runs
      WHERE run_id = 'a0000000-0000-0000-0000-000000000003'),
    'started',
    'timeout: the run is open while the last lease holds');

SELECT quantum_flow.advance_clock('1 second');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('slow')$$,
    'timeout: the poll after the last lease expired hands out nothing');

SELECT results_eq(
    $$SELECT status, attempts_count, failed_at,
             strpos(error_message, 'timed out') > 0
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = 'a0000000-0000-0000-0000-000000000003'
       ORDER BY step_slug, task_index$$,
    $$VALUES ('cancelled', 0, NULL::timestamptz, NULL::boolean),
             ('failed', 2, '2025-03-01 00:01:15+00', true)$$,
    'timeout: that poll failed the task as timed out and cancelled the queued one');

SELECT results_eq(
    $$SELECT step_slug, status, strpos(error_message, 'timed out') > 0
        FROM quantum_flow.workflow_step_states
       WHERE run_id = 'a0000000-0000-0000-0000-000000000003'
       ORDER BY step_slug$$,
    $$VALUES ('after', 'cancelled', NULL::boolean),
             ('later', 'cancelled', NULL),
             ('work', 'failed', true)$$,
    'timeout: the step fails as timed out, the others are cancelled');

SELECT results_eq(
    $$SELECT status, failed_at,
             strpos(error_message, 'work') > 0
             AND strpos(error_message, 'timed out') > 0
        FROM quantum_flow.workflow_runs
       WHERE run_id = 'a0000000-0000-0000-0000-000000000003'$$,
    $$VALUES ('failed', '2025-03-01 00:01:15+00'::timestamptz, true)$$,
    'timeout: the run fails with a message naming the step and saying timed out');

SELECT is(
    quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000003',
                              'work', 0, 2, '1 minute'),
    false,
    'extend_lease: false once the task timed out and its run failed');

SELECT results_eq(
    $$SELECT status, output
        FROM quantum_flow.complete_task('a0000000-0000-0000-0000-000000000003',
                                        'work', 0, '"too late"', 2)$$,
    $$VALUES ('failed', NULL::jsonb)$$,
    'timeout: a completion after the timeout changes nothing');

-- Several last attempts time out together: in two runs, and twice in one
-- run.  The next poll fails every run; the run's second expired task is
-- cancelled with its run rather than failed.
SELECT quantum_flow.set_clock('2025-03-02 00:00:00+00');
SELECT quantum_flow.create_workflow('brief', max_attempts => 1,
                                    timeout => 10);
SELECT quantum_flow.add_step('brief', 'pair', step_type => 'map');
SELECT quantum_flow.start_run('brief', '[1]',
                              'a0000000-0000-0000-0000-000000000013');
SELECT quantum_flow.advance_clock('1 second');
SELECT quantum_flow.start_run('brief', '[1, 2]',
                              'a0000000-0000-0000-0000-000000000014');
SELECT count(*) FROM quantum_flow.poll_tasks('brief');
SELECT quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000014',
                                 'pair', 1, 1, '11 seconds');
SELECT quantum_flow.advance_clock('11 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('brief')$$,
    'timeout: the poll after three last leases expired hands out nothing');

SELECT results_eq(
    $$SELECT r.run_id, r.status, t.task_index, t.status
        FROM quantum_flow.workflow_runs AS r
        JOIN quantum_flow.workflow_step_tasks AS t USING (run_id)
       WHERE r.workflow_slug = 'brief'
       ORDER BY r.run_id, t.task_index$$,
    $$VALUES ('a0000000-0000-0000-0000-000000000013'::uuid, 'failed', 0,
              'failed'),
             ('a0000000-0000-0000-0000-000000000014', 'failed', 0, 'failed'),
             ('a0000000-0000-0000-0000-000000000014', 'failed', 1,
              'cancelled')$$,
    'timeout: one poll fails every run whose last lease expired');

-- ----------------------------------------------------------------------
-- The lease argument of poll_tasks; extend_lease
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-04-01 00:00:00+00');
SELECT quantum_flow.create_workflow('leasey');
SELECT quantum_flow.add_step('leasey', 'job');
SELECT quantum_flow.start_run('leasey', '{}',
                              'a0000000-0000-0000-0000-000000000004');
SELECT quantum_flow.start_run('leasey', '{}',
                              'a0000000-0000-0000-0000-000000000005');
SELECT quantum_flow.start_run('leasey', '{}',
                              'a0000000-0000-0000-0000-000000000006');

SELECT results_eq(
    $$SELECT run_id, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('leasey', 'w', 10, '5 minutes')
       ORDER BY run_id$$,
    $$VALUES ('a0000000-0000-0000-0000-000000000004'::uuid, 1,
              '2025-04-01 00:05:00+00'::timestamptz),
             ('a0000000-0000-0000-0000-000000000005', 1,
              '2025-04-01 00:05:00+00'),
             ('a0000000-0000-0000-0000-000000000006', 1,
              '2025-04-01 00:05:00+00')$$,
    'lease: poll_tasks leases for the given interval instead of the timeout');

SELECT quantum_flow.advance_clock('299 seconds');

SELECT is_empty(
    $$SELECT * FROM quantum_flow.poll_tasks('leasey')$$,
    'lease: a 5 minute lease holds past the 60 s timeout');

SELECT is(
    quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000005',
                              'job', 0, 1, '2 minutes'),
    true,
    'extend_lease: true before the lease ends');

SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT run_id, attempt, lease_expires_at
        FROM quantum_flow.poll_tasks('leasey', 'w', 10, '10 seconds')
       ORDER BY run_id$$,
    $$VALUES ('a0000000-0000-0000-0000-000000000004'::uuid, 2,
              '2025-04-01 00:05:10+00'::timestamptz),
             ('a0000000-0000-0000-0000-000000000006', 2,
              '2025-04-01 00:05:10+00')$$,
    'lease: expired leases are reclaimed, the extended one is not');

SELECT results_eq(
    $$SELECT status, attempts_count, completed_at
        FROM quantum_flow.complete_task('a0000000-0000-0000-0000-000000000005',
                                        'job', 0, '1', 1)$$,
    $$VALUES ('completed', 1, '2025-04-01 00:05:00+00'::timestamptz)$$,
    'extend_lease: the worker that extended its lease completes its attempt');

SELECT is(
    quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000005',
                              'job', 0, 1, '1 minute'),
    false,
    'extend_lease: false once the task is completed');

SELECT quantum_flow.cancel_run('a0000000-0000-0000-0000-000000000006');

SELECT is(
    quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000006',
                              'job', 0, 2, '1 minute'),
    false,
    'extend_lease: false once the run is cancelled');

SELECT is(
    quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000004',
                              'job', 0, 1, '1 minute'),
    false,
    'extend_lease: false for the attempt whose task was reclaimed');

SELECT is(
    (SELECT visible_at FROM quantum_flow.workflow_step_tasks
      WHERE run_id = 'a0000000-0000-0000-0000-000000000004'),
    '2025-04-01 00:05:10+00'::timestamptz,
    'extend_lease: a refused heartbeat leaves the lease alone');

SELECT throws_ok(
    $$SELECT quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000004',
                                       'job', 7, 1, '1 minute')$$,
    '42704', NULL,
    'extend_lease: an unknown task is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000004',
                                       'job', 0, 2, '0 seconds')$$,
    '22023', NULL,
    'extend_lease: a lease that is not positive is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.extend_lease('a0000000-0000-0000-0000-000000000004',
                                       'job', 0, NULL, '1 minute')$$,
    '22004', NULL,
    'extend_lease: a NULL attempt is 22004');

SELECT throws_ok(
    $$SELECT * FROM quantum_flow.poll_tasks('leasey', lease => '-1 second')$$,
    '22023', NULL,
    'poll_tasks: a negative lease is 22023');

SELECT throws_ok(
    $$SELECT * FROM quantum_flow.poll_tasks('leasey', batch_size => 0)$$,
    '22023', NULL,
    'poll_tasks: batch_size 0 is 22023');

SELECT throws_ok(
    $$SELECT * FROM quantum_flow.poll_tasks('nowhere')$$,
    '42704', NULL,
    'poll_tasks: an unknown workflow is 42704');

-- ----------------------------------------------------------------------
-- Late and duplicate callbacks
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-05-01 00:00:00+00');
SELECT quantum_flow.create_workflow('cb', base_delay => 5);
SELECT quantum_flow.add_step('cb', 'items', step_type => 'map');
SELECT quantum_flow.start_run('cb', '[1, 2, 3]',
                              'a0000000-0000-0000-0000-000000000007');
SELECT count(*) FROM quantum_flow.poll_tasks('cb', 'w', 2);

SELECT results_eq(
    $$SELECT task_index, status, attempts_count
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = 'a0000000-0000-0000-0000-000000000007'
       ORDER BY task_index$$,
    $$VALUES (0, 'started', 1), (1, 'started', 1), (2, 'queued', 0)$$,
    'callbacks: two tasks claimed, one still queued');

SELECT results_eq(
    $$SELECT status, attempts_count, output
        FROM quantum_flow.complete_task('a0000000-0000-0000-0000-000000000007',
                                        'items', 2, '"early"')$$,
    $$VALUES ('queued', 0, NULL::jsonb)$$,
    'callbacks: completing a task nobody claimed changes nothing');

SELECT results_eq(
    $$SELECT status, visible_at
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000007',
                                    'items', 1, 'first')$$,
    $$VALUES ('queued', '2025-05-01 00:00:05+00'::timestamptz)$$,
    'callbacks: a failure queues task 1 for a retry');

SELECT quantum_flow.advance_clock('1 second');

SELECT results_eq(
    $$SELECT status, attempts_count, visible_at, error_message
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000007',
                                    'items', 1, 'duplicate')$$,
    $$VALUES ('queued', 1, '2025-05-01 00:00:05+00'::timestamptz, 'first')$$,
    'callbacks: a duplicate failure neither delays the retry nor counts an attempt');

SELECT results_eq(
    $$SELECT status, output
        FROM quantum_flow.complete_task('a0000000-0000-0000-0000-000000000007',
                                        'items', 0, '"a"')$$,
    $$VALUES ('completed', '"a"'::jsonb)$$,
    'callbacks: task 0 completes');

SELECT results_eq(
    $$SELECT status, output, error_message
        FROM quantum_flow.fail_task('a0000000-0000-0000-0000-000000000007',
                                    'items', 0, 'after the fact')$$,
    $$VALUES ('completed', '"a"'::jsonb, NULL::text)$$,
    'callbacks: a failure after completion changes nothing');

SELECT results_eq(
    $$SELECT remaining_tasks, status FROM quantum_flow.workflow_step_states
       WHERE run_id = 'a0000000-0000-0000-0000-000000000007'$$,
    $$VALUES (2, 'started')$$,
    'callbacks: the step counted one completion only');

SELECT throws_ok(
    $$SELECT quantum_flow.complete_task('a0000000-0000-0000-0000-0000000000ff',
                                        'items', 0)$$,
    '42704', NULL,
    'callbacks: complete_task of an unknown run is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.complete_task('a0000000-0000-0000-0000-000000000007',
                                        'items', 3)$$,
    '42704', NULL,
    'callbacks: complete_task of an unknown task is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.fail_task('a0000000-0000-0000-0000-000000000007',
                                    'nostep', 0, 'x')$$,
    '42704', NULL,
    'callbacks: fail_task of an unknown task is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.fail_task('a0000000-0000-0000-0000-000000000007',
                                    'items', 1, NULL)$$,
    '22004', NULL,
    'callbacks: fail_task without an error message is 22004');

-- ----------------------------------------------------------------------
-- A non-array output feeding a map step
-- ----------------------------------------------------------------------

SELECT quantum_flow.set_clock('2025-06-01 00:00:00+00');
SELECT quantum_flow.define_workflow('feed', '{"max_attempts": 5, "steps": [
    {"slug": "src"},
    {"slug": "busy"},
    {"slug": "each", "type": "map", "depends_on": ["src"]},
    {"slug": "tail", "depends_on": ["each"]}]}');
SELECT quantum_flow.start_run('feed', '{}',
                              'a0000000-0000-0000-0000-000000000008');
SELECT count(*) FROM quantum_flow.poll_tasks('feed');

SELECT results_eq(
    $$SELECT status, attempts_count, output
        FROM quantum_flow.complete_task('a0000000-0000-0000-0000-000000000008',
                                        'src', 0, '{"not": "an array"}')$$,
    $$VALUES ('completed', 1, '{"not": "an array"}'::jsonb)$$,
    'non-array: the feeding task itself completes');

SELECT results_eq(
    $$SELECT status, failed_at FROM quantum_flow.workflow_runs
       WHERE run_id = 'a0000000-0000-0000-0000-000000000008'$$,
    $$VALUES ('failed', '2025-06-01 00:00:00+00'::timestamptz)$$,
    'non-array: the run fails at once, without retries');

SELECT ok(
    (SELECT strpos(error_message, '"src"') > 0
            AND strpos(error_message, '"each"') > 0
            AND strpos(error_message, 'expected an array') > 0
       FROM quantum_flow.workflow_runs
      WHERE run_id = 'a0000000-0000-0000-0000-000000000008'),
    'non-array: the run''s error_message names both steps and says an array was expected');

SELECT results_eq(
    $$SELECT step_slug, status FROM quantum_flow.workflow_step_states
       WHERE run_id = 'a0000000-0000-0000-0000-000000000008'
       ORDER BY step_slug$$,
    $$VALUES ('busy', 'cancelled'), ('each', 'failed'), ('src', 'completed'),
             ('tail', 'cancelled')$$,
    'non-array: the map step fails, the open steps are cancelled');

SELECT results_eq(
    $$SELECT step_slug, status FROM quantum_flow.workflow_step_tasks
       WHERE run_id = 'a0000000-0000-0000-0000-000000000008'
       ORDER BY step_slug, task_index$$,
    $$VALUES ('busy', 'cancelled'), ('src', 'completed')$$,
    'non-array: the map step has no task and the running sibling is cancelled');

SELECT * FROM finish();
ROLLBACK;
