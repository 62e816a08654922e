/*-------------------------------------------------------------------------
 *
 * qf_load.sql
 *		The load scenario of the crash tests: a workflow, an outside
 *		ledger, and a worker that records its effects in that ledger.
 *
 * Loaded into a throwaway cluster by QfLoad.pm, for the crash recovery
 * TAP test and for the soak run.  Nothing here is part of the extension.
 *
 * The workflow "qf_load" is a diamond with a map step in it:
 *
 *		root ---> left (map over root's output) ---> join
 *		     \--> right -------------------------/
 *
 * A run's input is {"n": N}; root outputs [1..N], each left task outputs
 * ten times its element, right outputs N, and join outputs the sum of
 * left's array and right's count.  A completed run's output is therefore
 * known in advance: {"join": {"sum": 5 * N * (N + 1), "count": N}}.
 *
 * qf_load.ledger stands for the outside system that workers call: one row
 * per effect, keyed by the task's idempotency key, so that a redelivered
 * task cannot apply its effect twice.  qf_load.executions is the workers'
 * own log of what they reported back.  Both are written in the same
 * transaction as the complete_task or fail_task call they go with.
 *
 * IDENTIFICATION
 *		test/t/qf_load.sql
 *
 *-------------------------------------------------------------------------
 */

CREATE SCHEMA qf_load;

/* The outside system: one effect per idempotency key. */
CREATE TABLE qf_load.ledger (
    idempotency_key varchar(64) PRIMARY KEY,
    run_id          uuid        NOT NULL,
    step_slug       text        NOT NULL,
    task_index      integer     NOT NULL,
    attempt         integer     NOT NULL,
    worker_id       text        NOT NULL
);

/*
 * Every report a worker made: 'completed' when its complete_task applied,
 * 'stale' when it did not (the attempt had been reclaimed, or the run had
 * ended), 'failed' for an injected failure.  new_effect says whether the
 * ledger row was written by this execution or was already there.
 */
CREATE TABLE qf_load.executions (
    id              bigserial   PRIMARY KEY,
    idempotency_key varchar(64) NOT NULL,
    run_id          uuid        NOT NULL,
    step_slug       text        NOT NULL,
    task_index      integer     NOT NULL,
    attempt         integer     NOT NULL,
    worker_id       text        NOT NULL,
    outcome         text        NOT NULL
                    CHECK (outcome IN ('completed', 'stale', 'failed')),
    new_effect      boolean
);

CREATE INDEX executions_key_idx ON qf_load.executions (idempotency_key);

/* The workflow; short leases and delays, so that the frozen clock moves
 * them along in a few ticks. */
SELECT quantum_flow.define_workflow('qf_load', jsonb_build_object(
    'max_attempts', 3, 'base_delay', 1, 'timeout', 3,
    'steps', jsonb_build_array(
        jsonb_build_object('slug', 'root'),
        jsonb_build_object('slug', 'left', 'type', 'map',
                           'depends_on', jsonb_build_array('root')),
        jsonb_build_object('slug', 'right',
                           'depends_on', jsonb_build_array('root')),
        jsonb_build_object('slug', 'join',
                           'depends_on',
                           jsonb_build_array('left', 'right')))));

/*
 * qf_load.output
 *		What executing a task produces, from its step and input.
 */
CREATE FUNCTION qf_load.output(step_slug text, input jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE step_slug
        WHEN 'root' THEN
            (SELECT coalesce(jsonb_agg(i ORDER BY i), '[]')
               FROM generate_series(1, (input ->> 'n')::integer) AS i)
        WHEN 'left' THEN
            to_jsonb((input #>> '{}')::integer * 10)
        WHEN 'right' THEN
            to_jsonb(jsonb_array_length(input -> 'root'))
        WHEN 'join' THEN
            jsonb_build_object(
                'sum', (SELECT coalesce(sum(e::integer), 0)
                          FROM jsonb_array_elements_text(input -> 'left')
                               AS e),
                'count', input -> 'right')
    END
$$;

/*
 * qf_load.start_runs
 *		Start count runs with N cycling through 0..3, so that some left
 *		steps map over an empty array.  Returns the number started.
 */
CREATE FUNCTION qf_load.start_runs(count integer)
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT count(quantum_flow.start_run('qf_load',
                                        jsonb_build_object('n', i % 4)))
      FROM generate_series(1, count) AS i
$$;

/*
 * Executions that overlap: a slow attempt still running when another
 * worker has claimed the same task.  old_first says which of the two
 * reports first; old_reported is set when the slow one has.
 */
CREATE TABLE qf_load.overlaps (
    idempotency_key varchar(64) PRIMARY KEY,
    old_attempt     integer     NOT NULL,
    old_first       boolean     NOT NULL,
    old_reported    boolean     NOT NULL DEFAULT false
);

/*
 * qf_load.work
 *		One worker shift: claim and execute tasks one at a time, committing
 *		after each claim and each report, until max_tasks tasks are done or
 *		a poll finds nothing to claim.
 *
 * fail_rate is the share of executions that report an injected failure
 * through fail_task; die_rate the share that end the worker's own
 * session right after the claim, before any effect or report, like a
 * worker that crashes mid-task.  Its lease then has to expire before
 * another worker can take the task.
 *
 * slow_rate is the share of executions that outlive their lease, so that
 * two workers execute the same task at once.  A slow execution waits
 * (at most slow_secs seconds) until another worker has claimed the task,
 * then, by a coin toss, reports at once, while the other still runs, or
 * after the other has reported.  In the first order the other worker
 * holds its report back until the slow one has made its own.
 */
CREATE PROCEDURE qf_load.work(worker_id text, max_tasks integer,
                              fail_rate double precision,
                              die_rate double precision,
                              slow_rate double precision,
                              slow_secs double precision)
LANGUAGE plpgsql
AS $$
DECLARE
    v_task      quantum_flow.claimed_task;
    v_slow      boolean;
    v_old_first boolean;
    v_new       integer;
    v_applied   boolean;
    v_done      integer := 0;
BEGIN
    WHILE v_done < max_tasks LOOP
        /* Claim one task and commit the claim. */
        SELECT * INTO v_task
          FROM quantum_flow.poll_tasks('qf_load', worker_id, 1);
        COMMIT;
        EXIT WHEN v_task.run_id IS NULL;
        v_done := v_done + 1;

        /* Crash mid-task: the claim stays, leased to a dead worker. */
        IF random() < die_rate THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(60);
        END IF;

        /* Taking over from a slow execution that reports first: let it. */
        IF v_task.attempt > 1 THEN
            FOR i IN 1 .. 100 LOOP
                EXIT WHEN NOT EXISTS (
                    SELECT 1 FROM qf_load.overlaps AS o
                     WHERE o.idempotency_key = v_task.idempotency_key
                       AND o.old_attempt < v_task.attempt
                       AND o.old_first AND NOT o.old_reported);
                PERFORM pg_sleep(0.01);
                COMMIT;
            END LOOP;
        END IF;

        /*
         * A slow execution: wait for the task to be claimed again.  The
         * queue is served oldest first, so that happens soon only when
         * few tasks come before the expired lease, and only while other
         * workers are polling: an execution turns slow only then, and
         * only if fewer than two others are slow.  Its application_name
         * marks it as slow, and keeps it out of the driver's random
         * kills, which would otherwise pick on it for being there so
         * long.
         */
        v_slow := random() < slow_rate
            AND (SELECT count(*) < 2 FROM pg_stat_activity AS a
                  WHERE a.application_name = 'qf_worker_slow')
            AND (SELECT count(*) < 400
                   FROM (SELECT 1 FROM quantum_flow.workflow_step_tasks AS t
                          WHERE t.workflow_slug = 'qf_load'
                            AND t.status IN ('queued', 'started')
                            AND t.visible_at < v_task.lease_expires_at
                          LIMIT 400) AS ahead);
        IF v_slow THEN
            PERFORM set_config('application_name', 'qf_worker_slow', false);
            v_old_first := random() < 0.5;
            INSERT INTO qf_load.overlaps
                   (idempotency_key, old_attempt, old_first)
            VALUES (v_task.idempotency_key, v_task.attempt, v_old_first)
            ON CONFLICT (idempotency_key) DO NOTHING;
            COMMIT;
            FOR i IN 1 .. ceil(slow_secs * 100)::integer LOOP
                PERFORM pg_sleep(0.01);
                EXIT WHEN NOT EXISTS (
                    SELECT 1 FROM quantum_flow.workflow_step_tasks AS t
                     WHERE t.run_id = v_task.run_id
                       AND t.step_slug = v_task.step_slug
                       AND t.task_index = v_task.task_index
                       AND t.status = 'started'
                       AND (NOT v_old_first OR
                            t.attempts_count = v_task.attempt));
                COMMIT;
            END LOOP;
        END IF;

        IF NOT v_slow AND random() < fail_rate THEN
            /* An injected failure: report it, with nothing done. */
            PERFORM quantum_flow.fail_task(v_task.run_id, v_task.step_slug,
                                           v_task.task_index,
                                           'injected failure',
                                           v_task.attempt);
            INSERT INTO qf_load.executions
                   (idempotency_key, run_id, step_slug, task_index, attempt,
                    worker_id, outcome)
            VALUES (v_task.idempotency_key, v_task.run_id, v_task.step_slug,
                    v_task.task_index, v_task.attempt, worker_id, 'failed');
        ELSE
            /* The effect, deduplicated by the idempotency key ... */
            INSERT INTO qf_load.ledger
                   (idempotency_key, run_id, step_slug, task_index, attempt,
                    worker_id)
            VALUES (v_task.idempotency_key, v_task.run_id, v_task.step_slug,
                    v_task.task_index, v_task.attempt, worker_id)
            ON CONFLICT (idempotency_key) DO NOTHING;
            GET DIAGNOSTICS v_new = ROW_COUNT;

            /* ... and the report, in the same transaction. */
            PERFORM quantum_flow.complete_task(
                v_task.run_id, v_task.step_slug, v_task.task_index,
                qf_load.output(v_task.step_slug, v_task.input),
                v_task.attempt);

            /*
             * Whether the report applied, told by the task row itself
             * rather than by what complete_task returns: it did if this
             * transaction wrote the row's current version.
             */
            SELECT t.xmin = pg_current_xact_id()::xid INTO v_applied
              FROM quantum_flow.workflow_step_tasks AS t
             WHERE t.run_id = v_task.run_id
               AND t.step_slug = v_task.step_slug
               AND t.task_index = v_task.task_index;
            INSERT INTO qf_load.executions
                   (idempotency_key, run_id, step_slug, task_index, attempt,
                    worker_id, outcome, new_effect)
            VALUES (v_task.idempotency_key, v_task.run_id, v_task.step_slug,
                    v_task.task_index, v_task.attempt, worker_id,
                    CASE WHEN v_applied THEN 'completed' ELSE 'stale' END,
                    v_new = 1);
            IF v_slow THEN
                UPDATE qf_load.overlaps AS o
                   SET old_reported = true
                 WHERE o.idempotency_key = v_task.idempotency_key
                   AND o.old_attempt = v_task.attempt;
                PERFORM set_config('application_name', 'qf_worker', false);
            END IF;
        END IF;
        COMMIT;
    END LOOP;
END
$$;

/*
 * qf_load.results
 *		The scenario's outcome as counter/value rows.  Every counter whose
 *		name says it is a fault must be 0.
 */
CREATE FUNCTION qf_load.results()
RETURNS TABLE (counter text, value bigint)
LANGUAGE sql STABLE
AS $$
    WITH exec AS (
        SELECT e.idempotency_key,
               count(*) FILTER (WHERE e.outcome = 'completed') AS applied,
               count(*) AS reports
          FROM qf_load.executions AS e
         GROUP BY e.idempotency_key
    )
    SELECT 'runs', count(*) FROM quantum_flow.workflow_runs
    UNION ALL
    SELECT 'runs ' || r.status, count(*)
      FROM quantum_flow.workflow_runs AS r
     GROUP BY r.status
    UNION ALL
    SELECT 'tasks', count(*) FROM quantum_flow.workflow_step_tasks
    UNION ALL
    SELECT 'executions reported', count(*) FROM qf_load.executions
    UNION ALL
    SELECT 'injected failures', count(*)
      FROM qf_load.executions WHERE outcome = 'failed'
    UNION ALL
    SELECT 'overlapping executions', count(*) FROM qf_load.overlaps
    UNION ALL
    SELECT 'stale completions', count(*)
      FROM qf_load.executions WHERE outcome = 'stale'
    UNION ALL
    SELECT 'redelivered effects absorbed', count(*)
      FROM qf_load.executions WHERE new_effect = false
    UNION ALL
    /* Attempts that never reported: the worker or the server died. */
    SELECT 'abandoned attempts',
           coalesce(sum(t.attempts_count - coalesce(x.reports, 0)), 0)
      FROM quantum_flow.workflow_step_tasks AS t
      LEFT JOIN exec AS x ON x.idempotency_key = t.idempotency_key
    UNION ALL
    SELECT 'fault: open runs', count(*)
      FROM quantum_flow.workflow_runs WHERE status = 'started'
    UNION ALL
    SELECT 'fault: open tasks', count(*)
      FROM quantum_flow.workflow_step_tasks
     WHERE status IN ('queued', 'started')
    UNION ALL
    SELECT 'fault: attempts over max_attempts', count(*)
      FROM quantum_flow.workflow_step_tasks
     WHERE attempts_count > max_attempts
    UNION ALL
    /* Tasks of completed runs that are not completed. */
    SELECT 'fault: unfinished tasks of completed runs', count(*)
      FROM quantum_flow.workflow_step_tasks AS t
      JOIN quantum_flow.workflow_runs AS r ON r.run_id = t.run_id
     WHERE r.status = 'completed' AND t.status <> 'completed'
    UNION ALL
    /* A completed task whose effect is not in the ledger. */
    SELECT 'fault: lost effects', count(*)
      FROM quantum_flow.workflow_step_tasks AS t
     WHERE t.status = 'completed'
       AND NOT EXISTS (SELECT 1 FROM qf_load.ledger AS l
                        WHERE l.idempotency_key = t.idempotency_key)
    UNION ALL
    /* A task completed by more than one execution. */
    SELECT 'fault: duplicated effects', count(*)
      FROM exec WHERE applied > 1
    UNION ALL
    /* A task marked completed that no worker completed. */
    SELECT 'fault: completions without a worker', count(*)
      FROM quantum_flow.workflow_step_tasks AS t
     WHERE t.status = 'completed'
       AND NOT EXISTS (SELECT 1 FROM exec AS x
                        WHERE x.idempotency_key = t.idempotency_key
                          AND x.applied = 1)
    UNION ALL
    /* A completion applied for an attempt that had been superseded. */
    SELECT 'fault: completions by a stale attempt', count(*)
      FROM qf_load.executions AS e
      JOIN quantum_flow.workflow_step_tasks AS t
        ON t.idempotency_key = e.idempotency_key
     WHERE e.outcome = 'completed'
       AND e.attempt <> t.attempts_count
    UNION ALL
    /* A ledger entry under a key that is not its task's key. */
    SELECT 'fault: effects under a foreign key', count(*)
      FROM qf_load.ledger AS l
     WHERE l.idempotency_key <>
           quantum_flow.compute_idempotency_key('qf_load', l.step_slug,
                                                l.run_id, l.task_index)
    UNION ALL
    SELECT 'fault: wrong run outputs', count(*)
      FROM quantum_flow.workflow_runs AS r
     WHERE r.status = 'completed'
       AND r.output IS DISTINCT FROM jsonb_build_object(
               'join', jsonb_build_object(
                   'sum', 5 * (r.input ->> 'n')::integer
                            * ((r.input ->> 'n')::integer + 1),
                   'count', (r.input ->> 'n')::integer))
    UNION ALL
    SELECT 'fault: broken invariants', count(*)
      FROM quantum_flow.check_invariants()
$$;
