/*-------------------------------------------------------------------------
 *
 * summary.sql
 *		What the demo's workers did, for a person to read: runs and tasks
 *		by status, attempts and retries, throughput, why runs failed, one
 *		finished order, one failed run's run_status(), and the checks that
 *		no task took effect twice.
 *		Fails (through ON_ERROR_STOP) if one of those checks does not hold.
 *
 * psql variables: elapsed, the wall-clock seconds the workers took, and
 * workers, how many ran.
 *
 * IDENTIFICATION
 *		test/demo/summary.sql
 *
 *-------------------------------------------------------------------------
 */

SET client_min_messages = warning;
\pset footer off

\qecho '== Runs and tasks by status: the workflow_stats view'
\x on
SELECT * FROM quantum_flow.workflow_stats;
\x off

\qecho '== Tasks by step'
\qecho 'attempts counts every claim, retries the attempts after the first.'
SELECT coalesce(t.step_slug, 'all steps') AS step,
       count(*) FILTER (WHERE t.status = 'completed') AS completed,
       count(*) FILTER (WHERE t.status = 'failed')    AS failed,
       count(*) FILTER (WHERE t.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE t.status IN ('queued', 'started'))
           AS still_open,
       sum(t.attempts_count)                          AS attempts,
       sum(greatest(t.attempts_count - 1, 0))         AS retries
  FROM quantum_flow.workflow_step_tasks AS t
  LEFT JOIN quantum_flow.workflow_steps AS s
         ON s.workflow_slug = t.workflow_slug AND s.step_slug = t.step_slug
 GROUP BY ROLLUP ((s.step_index, t.step_slug))
 ORDER BY s.step_index NULLS LAST;

\qecho '== Throughput'
SELECT :workers AS workers,
       round(:elapsed, 1) AS seconds,
       count(*) FILTER (WHERE t.status = 'completed') AS tasks_completed,
       round(count(*) FILTER (WHERE t.status = 'completed') / :elapsed)
           AS tasks_per_second,
       round(sum(t.attempts_count) / :elapsed) AS attempts_per_second
  FROM quantum_flow.workflow_step_tasks AS t;

SELECT a.worker_id AS worker, count(*) AS attempts_executed,
       count(*) FILTER (WHERE NOT a.succeeded) AS of_which_failed
  FROM demo.attempts AS a
 GROUP BY a.worker_id
 ORDER BY a.worker_id;

\qecho '== Why runs failed'
\qecho 'max_attempts is 3: an expired card never passes; three gateway'
\qecho 'timeouts in a row are rare.'
SELECT r.error_message AS error_message, count(*) AS runs,
       string_agg(r.input ->> 'order_id', ', ' ORDER BY r.input ->> 'order_id')
           AS orders
  FROM quantum_flow.workflow_runs AS r
 WHERE r.status = 'failed'
 GROUP BY r.error_message
 ORDER BY r.error_message;

/* The run to show: the first completed order whose charge was retried,
 * else the first completed order. */
SELECT r.run_id AS shown_run, r.input ->> 'order_id' AS shown_order,
       format('%s; %s, to %s, %s',
              (SELECT string_agg(format('%s x%s', i ->> 'sku', i ->> 'qty'),
                                 ', ')
                 FROM jsonb_array_elements(r.input -> 'items') AS i),
              r.input ->> 'customer', r.input ->> 'ship_to',
              r.input ->> 'payment_method') AS shown_input,
       jsonb_pretty(r.output) AS shown_output,
       (SELECT string_agg(format('attempt %s %s', a.attempt,
                                 coalesce(a.error, 'ok')), ', '
                          ORDER BY a.attempt)
          FROM demo.attempts AS a
         WHERE a.idempotency_key = t.idempotency_key) AS shown_attempts
  FROM quantum_flow.workflow_runs AS r
  JOIN quantum_flow.workflow_step_tasks AS t
    ON t.run_id = r.run_id AND t.step_slug = 'charge'
 WHERE r.status = 'completed'
 ORDER BY t.attempts_count > 1 DESC, r.input ->> 'order_id'
 LIMIT 1
\gset
\qecho '== A completed run,' :shown_order
\qecho 'charge:' :shown_attempts
\qecho 'input:' :shown_input
\qecho 'output:'
\qecho :shown_output


/* run_status() of the first failed order, else of the first order. */
SELECT r.run_id AS status_run, r.input ->> 'order_id' AS status_order,
       r.status AS status_status
  FROM quantum_flow.workflow_runs AS r
 ORDER BY r.status = 'failed' DESC, r.input ->> 'order_id'
 LIMIT 1
\gset
\qecho
\qecho '== run_status() of a' :status_status 'run,' :status_order
\qecho '(input left out; its steps as a table below)'
\pset format unaligned
\pset tuples_only on
SELECT jsonb_pretty(quantum_flow.run_status(:'status_run')
                    - 'input' - 'steps');
\pset format aligned
\pset tuples_only off
SELECT s.step_slug, s.status, s.tasks::text AS tasks, s.initial_tasks,
       s.remaining_tasks, s.remaining_deps, s.error_message
  FROM jsonb_to_recordset(quantum_flow.run_status(:'status_run') -> 'steps')
       AS s(step_slug text, status text, tasks jsonb, initial_tasks integer,
            remaining_tasks integer, remaining_deps integer,
            error_message text);

/* ------------------------------------------------------------------------
 * Exactly once in effect
 * ------------------------------------------------------------------------ */

CREATE TEMP VIEW checks AS
WITH tasks AS (
    SELECT count(*) FILTER (WHERE t.status = 'completed') AS completed,
           count(DISTINCT t.idempotency_key)
               FILTER (WHERE t.status = 'completed') AS completed_keys,
           count(*) FILTER (WHERE t.status = 'completed'
                              AND t.step_slug = 'charge') AS charges,
           coalesce(sum(t.attempts_count), 0) AS attempts
      FROM quantum_flow.workflow_step_tasks AS t
), executed AS (
    SELECT count(*) AS attempts,
           count(DISTINCT (a.idempotency_key, a.attempt)) AS pairs
      FROM demo.attempts AS a
), outside AS (
    SELECT (SELECT count(*) FROM demo.payments) AS payments,
           (SELECT coalesce(sum(p.requests - 1), 0) FROM demo.payments AS p)
           + (SELECT coalesce(sum(r.requests - 1), 0)
                FROM demo.reservations AS r) AS repeated
)
SELECT 1 AS n,
       'completed tasks = distinct idempotency keys among them' AS "check",
       format('%s = %s', tasks.completed, tasks.completed_keys) AS value,
       tasks.completed = tasks.completed_keys AS ok
  FROM tasks
UNION ALL
SELECT 2, 'attempts counted by the engine = attempts workers executed',
       format('%s = %s', tasks.attempts, executed.attempts),
       tasks.attempts = executed.attempts
  FROM tasks, executed
UNION ALL
SELECT 3, 'attempts executed twice (same key, same attempt)',
       (executed.attempts - executed.pairs)::text,
       executed.attempts = executed.pairs
  FROM executed
UNION ALL
SELECT 4, 'payments captured = completed charge tasks',
       format('%s = %s', outside.payments, tasks.charges),
       outside.payments = tasks.charges
  FROM outside, tasks
UNION ALL
SELECT 5, 'payment or reservation requests repeated',
       outside.repeated::text, outside.repeated = 0
  FROM outside
UNION ALL
SELECT 6, 'runs neither completed nor failed',
       count(*)::text, count(*) = 0
  FROM quantum_flow.workflow_runs AS r
 WHERE r.status NOT IN ('completed', 'failed');

\qecho '== Exactly once: no task took effect twice'
SELECT c."check", c.value, c.ok FROM checks AS c ORDER BY c.n;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_temp.checks AS c WHERE NOT c.ok) THEN
        RAISE EXCEPTION 'a check of the demo failed';
    END IF;
END
$$;
