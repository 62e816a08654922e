/*
 * 41_search_path.sql
 *		pgTAP: every function works whatever the caller's search_path.
 *
 * Schema "evil" holds look-alikes of what an engine could call without
 * qualifying it: now(), md5(text), gen_random_uuid(), jsonb_typeof(jsonb)
 * returning wrong values, and "=" on text, uuid and integer that is always
 * true.  The same complete workflow (definition with a map step, runs, a
 * poll, completions, a retry and a final failure, a cancellation, the
 * statistics and pruning) is run twice: once with "evil" ahead of
 * pg_catalog in the search_path, once with an empty search_path.  Each
 * run records what it saw into temporary tables; the assertions are made
 * afterwards with a clean search_path, because pgTAP itself would be
 * fooled by the evil "=".  Both runs must see exactly what a clean
 * search_path gives: keys equal to the real MD5 expression, timestamps
 * equal to the frozen clock, and the right states.
 *
 * Last, the API functions run with their owner's rights, so the same is
 * shown for a worker and an admin that are not superusers and try to
 * slip their own objects in: look-alikes that log their calls in a schema
 * ahead of pg_catalog, and temporary tables, a type and functions named
 * like the engine's in pg_temp, which they put first.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT plan(58);

SET LOCAL TimeZone = 'UTC';

/* ------------------------------------------------------------------------
 * The look-alikes
 * ------------------------------------------------------------------------ */

CREATE SCHEMA evil;

CREATE FUNCTION evil.now()
RETURNS timestamptz
LANGUAGE sql
AS $$ SELECT '1999-12-31 23:59:59+00'::pg_catalog.timestamptz $$;

CREATE FUNCTION evil.md5(text)
RETURNS text
LANGUAGE sql
AS $$ SELECT 'x'::pg_catalog.text $$;

CREATE FUNCTION evil.gen_random_uuid()
RETURNS uuid
LANGUAGE sql
AS $$ SELECT 'ffffffff-ffff-ffff-ffff-ffffffffffff'::pg_catalog.uuid $$;

/* Claims that everything is an array, so that a missing check passes. */
CREATE FUNCTION evil.jsonb_typeof(jsonb)
RETURNS text
LANGUAGE sql
AS $$ SELECT 'array'::pg_catalog.text $$;

CREATE FUNCTION evil.always_text(text, text)
RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION evil.always_uuid(uuid, uuid)
RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION evil.always_int(integer, integer)
RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;

CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text,
                        FUNCTION = evil.always_text);
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid,
                        FUNCTION = evil.always_uuid);
CREATE OPERATOR evil.= (LEFTARG = integer, RIGHTARG = integer,
                        FUNCTION = evil.always_int);

/* ------------------------------------------------------------------------
 * What each pass records
 * ------------------------------------------------------------------------ */

CREATE TEMP TABLE seen (tag text, label text, value text);
CREATE TEMP TABLE claims AS
SELECT ''::text AS tag, 0 AS round, c.*
  FROM quantum_flow.poll_tasks('x') AS c WITH NO DATA;
CREATE TEMP TABLE snap_runs AS
SELECT ''::text AS tag, r.* FROM quantum_flow.workflow_runs AS r WITH NO DATA;
CREATE TEMP TABLE snap_steps AS
SELECT ''::text AS tag, s.* FROM quantum_flow.workflow_step_states AS s
  WITH NO DATA;
CREATE TEMP TABLE snap_tasks AS
SELECT ''::text AS tag, t.* FROM quantum_flow.workflow_step_tasks AS t
  WITH NO DATA;

/*
 * The error p_sql raises, as "SQLSTATE: message".  No SET clause and no
 * operator: it runs with the caller's search_path, whatever that is.
 */
CREATE FUNCTION pg_temp.error_of(p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE p_sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

/*
 * The workflow, written so that it means the same under any search_path:
 * every name is qualified, and it uses no operator.  Runs p_r1 and p_r2
 * have fixed ids; the third run gets its id from the engine.
 */
CREATE FUNCTION pg_temp.flow(p_tag text, p_slug text, p_r1 uuid, p_r2 uuid)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_definition    jsonb := '{"max_attempts": 2, "base_delay": 3,
                               "timeout": 20,
                               "steps": [{"slug": "total",
                                          "depends_on": ["items"]},
                                         {"slug": "items",
                                          "type": "map"}]}';
    v_r3            uuid;
    v_task          quantum_flow.workflow_step_tasks;
BEGIN
    PERFORM quantum_flow.set_clock('2025-05-05 05:05:05+00');

    /* Definitions, repeated to check that they are idempotent. */
    PERFORM quantum_flow.define_workflow(p_slug, v_definition);
    PERFORM quantum_flow.define_workflow(p_slug, v_definition);
    PERFORM quantum_flow.create_workflow(p_slug || '_other', 5);
    PERFORM quantum_flow.add_step(p_slug || '_other', 'only');
    INSERT INTO pg_temp.seen
    VALUES (p_tag, 'conflicting definition',
            pg_temp.error_of(format(
                'SELECT quantum_flow.create_workflow(%L, 4)',
                p_slug || '_other')));

    /* Runs. */
    INSERT INTO pg_temp.seen
    SELECT p_tag, 'run 1 status', r.status
      FROM quantum_flow.start_run(p_slug, '[1, 2, 3]', p_r1) AS r;
    PERFORM quantum_flow.start_run(p_slug, '[7]', p_r2);
    v_r3 := (quantum_flow.start_run(p_slug, '[9]', NULL, 'key-3')).run_id;
    INSERT INTO pg_temp.seen
    VALUES (p_tag, 'run 3 id', v_r3::text),
           (p_tag, 'run 3 id again',
            (quantum_flow.start_run(p_slug, '[9]', NULL,
                                    'key-3')).run_id::text),
           (p_tag, 'start_run of an object for a map',
            pg_temp.error_of(format(
                'SELECT quantum_flow.start_run(%L, %L)',
                p_slug, '{"not": "an array"}'))),
           (p_tag, 'start_run of an unknown workflow',
            pg_temp.error_of(format(
                'SELECT quantum_flow.start_run(%L)', p_slug || '_nope'))),
           (p_tag, 'start_run reusing a key with another input',
            pg_temp.error_of(format(
                'SELECT quantum_flow.start_run(%L, %L, NULL, %L)',
                p_slug, '[10]', 'key-3')));

    /* First poll: the three items of run 1 and one each of runs 2 and 3. */
    INSERT INTO pg_temp.claims
    SELECT p_tag, 1, c.* FROM quantum_flow.poll_tasks(p_slug, 'w1', 10) AS c;
    INSERT INTO pg_temp.claims
    SELECT p_tag, 0, c.*
      FROM quantum_flow.poll_tasks(p_slug || '_other', 'w1', 10) AS c;
    INSERT INTO pg_temp.seen
    VALUES (p_tag, 'extend_lease',
            quantum_flow.extend_lease(p_r1, 'items', 0, 1,
                                      '1 minute')::text),
           (p_tag, 'extend_lease of another attempt',
            quantum_flow.extend_lease(p_r1, 'items', 0, 2,
                                      '1 minute')::text);

    /* Complete run 1's items, one alone and two in a batch. */
    v_task := quantum_flow.complete_task(p_r1, 'items', 0, '10');
    INSERT INTO pg_temp.seen
    VALUES (p_tag, 'complete_task', v_task.status),
           (p_tag, 'complete_tasks',
            quantum_flow.complete_tasks(ARRAY[p_r1, p_r1],
                                        ARRAY['items', 'items'],
                                        ARRAY[1, 2],
                                        ARRAY['20', '30']::jsonb[])::text),
           (p_tag, 'complete_task again',
            (quantum_flow.complete_task(p_r1, 'items', 0, '99')).output::text);

    /* Run 2 fails once, and is retried after base_delay. */
    v_task := quantum_flow.fail_task(p_r2, 'items', 0, 'flaky');
    INSERT INTO pg_temp.seen
    VALUES (p_tag, 'fail_task', v_task.status || ' ' || v_task.visible_at);

    PERFORM quantum_flow.advance_clock('3 seconds');
    INSERT INTO pg_temp.claims
    SELECT p_tag, 2, c.* FROM quantum_flow.poll_tasks(p_slug, 'w1', 10) AS c;

    /* Run 1 completes, run 2 fails for good, run 3 is cancelled. */
    PERFORM quantum_flow.complete_task(p_r1, 'total', 0, '60', 1);
    PERFORM quantum_flow.fail_task(p_r2, 'items', 0, 'broken', 2);
    PERFORM quantum_flow.cancel_run(v_r3, 'not needed');
    INSERT INTO pg_temp.seen
    VALUES (p_tag, 'start_ready_steps again',
            quantum_flow.start_ready_steps(p_r1)::text),
           (p_tag, 'run_status',
            quantum_flow.run_status(p_r1) ->> 'status'),
           (p_tag, 'cancel_run of an ended run',
            (quantum_flow.cancel_run(p_r1)).status);
    INSERT INTO pg_temp.seen
    SELECT p_tag, 'workflow_stats',
           s.runs_completed || '/' || s.runs_failed || '/' || s.runs_cancelled
      FROM quantum_flow.workflow_stats AS s
     WHERE s.workflow_slug OPERATOR(pg_catalog.=) p_slug;

    /* What the tables hold now. */
    INSERT INTO pg_temp.snap_runs
    SELECT p_tag, r.* FROM quantum_flow.workflow_runs AS r;
    INSERT INTO pg_temp.snap_steps
    SELECT p_tag, s.* FROM quantum_flow.workflow_step_states AS s;
    INSERT INTO pg_temp.snap_tasks
    SELECT p_tag, t.* FROM quantum_flow.workflow_step_tasks AS t;

    /* An hour later the three runs are pruned. */
    PERFORM quantum_flow.advance_clock('1 hour');
    INSERT INTO pg_temp.seen
    VALUES (p_tag, 'prune_runs',
            quantum_flow.prune_runs('30 minutes')::text);

    /* The trap is armed: unqualified names do reach the look-alikes. */
    IF p_tag OPERATOR(pg_catalog.=) 'evil' THEN
        INSERT INTO pg_temp.seen
        VALUES (p_tag, 'trap', concat_ws(' ', now(), md5('a'),
                                         gen_random_uuid(),
                                         jsonb_typeof('1'),
                                         'a'::text = 'b'::text));
    END IF;
END
$$;

/* ------------------------------------------------------------------------
 * The two passes
 * ------------------------------------------------------------------------ */

SET LOCAL search_path = evil, pg_catalog, public;
SELECT pg_temp.flow('evil', 'sp_evil',
                    '41000000-0000-0000-0000-000000000001',
                    '41000000-0000-0000-0000-000000000002');

SET LOCAL search_path = '';
SELECT pg_temp.flow('empty', 'sp_empty',
                    '42000000-0000-0000-0000-000000000001',
                    '42000000-0000-0000-0000-000000000002');
INSERT INTO pg_temp.seen
VALUES ('empty', 'trap', pg_catalog.current_setting('search_path'));

SET LOCAL search_path TO DEFAULT;

/* ------------------------------------------------------------------------
 * Assertions, with a clean search_path
 * ------------------------------------------------------------------------ */

/* The value a pass recorded under a label. */
CREATE FUNCTION pg_temp.seen(p_tag text, p_label text)
RETURNS text
LANGUAGE sql
AS $$ SELECT s.value FROM pg_temp.seen AS s
       WHERE s.tag = p_tag AND s.label = p_label $$;

SELECT is(pg_temp.seen('evil', 'trap'),
          '1999-12-31 23:59:59+00 x '
          'ffffffff-ffff-ffff-ffff-ffffffffffff array t',
          'evil: unqualified now, md5, gen_random_uuid, jsonb_typeof and = '
          'reach the look-alikes');
SELECT is(pg_temp.seen('empty', 'trap'), '""',
          'empty: the search_path was empty');

SELECT is(pg_temp.seen(t.tag, 'conflicting definition'), '42710',
          t.tag || ': a conflicting definition is still a conflict')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'run 1 status'), 'started',
          t.tag || ': start_run starts the run')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT ok(pg_temp.seen(t.tag, 'run 3 id') IS NOT NULL AND
          pg_temp.seen(t.tag, 'run 3 id')
              <> 'ffffffff-ffff-ffff-ffff-ffffffffffff',
          t.tag || ': a run without an id gets a real random one')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'run 3 id again'),
          pg_temp.seen(t.tag, 'run 3 id'),
          t.tag || ': a repeated idempotency key returns the same run')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'start_run of an object for a map'), '22023',
          t.tag || ': a root map step still refuses an object input')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'start_run of an unknown workflow'), '42704',
          t.tag || ': an unknown workflow is still unknown')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'start_run reusing a key with another input'),
          '23505',
          t.tag || ': a reused run key with another input is refused')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;

/* The first poll, in full. */
SELECT results_eq(
    format($$SELECT c.step_slug, c.task_index, c.attempt,
                    c.idempotency_key::text, c.input, c.run_input,
                    c.lease_expires_at
               FROM pg_temp.claims AS c
              WHERE c.tag = %L AND c.round = 1
                AND c.run_id <> %L
              ORDER BY c.run_id, c.task_index$$, t.tag, t.r3),
    format($$VALUES
        ('items'::text, 0, 1,
         pg_catalog.md5(format('%%s::items::%%s::0', %1$L, %2$L)),
         '1'::jsonb, '[1, 2, 3]'::jsonb,
         '2025-05-05 05:05:25+00'::timestamptz),
        ('items', 1, 1,
         pg_catalog.md5(format('%%s::items::%%s::1', %1$L, %2$L)),
         '2', '[1, 2, 3]', '2025-05-05 05:05:25+00'),
        ('items', 2, 1,
         pg_catalog.md5(format('%%s::items::%%s::2', %1$L, %2$L)),
         '3', '[1, 2, 3]', '2025-05-05 05:05:25+00'),
        ('items', 0, 1,
         pg_catalog.md5(format('%%s::items::%%s::0', %1$L, %3$L)),
         '7', '[7]', '2025-05-05 05:05:25+00')$$, t.slug, t.r1, t.r2),
    t.tag || ': the first poll hands out the right tasks, keys, inputs '
    'and leases')
  FROM (VALUES ('evil', 'sp_evil',
                '41000000-0000-0000-0000-000000000001',
                '41000000-0000-0000-0000-000000000002'),
               ('empty', 'sp_empty',
                '42000000-0000-0000-0000-000000000001',
                '42000000-0000-0000-0000-000000000002'))
       AS t0(tag, slug, r1, r2)
 CROSS JOIN LATERAL (SELECT t0.*, pg_temp.seen(t0.tag, 'run 3 id') AS r3) AS t
 ORDER BY t.tag DESC;
SELECT is((SELECT c.idempotency_key::text FROM pg_temp.claims AS c
            WHERE c.tag = t.tag AND c.round = 1
              AND c.run_id = pg_temp.seen(t.tag, 'run 3 id')::uuid),
          pg_catalog.md5(format('%s::items::%s::0', t.slug,
                     pg_temp.seen(t.tag, 'run 3 id'))),
          t.tag || ': the run with a generated id has the right key')
  FROM (VALUES ('evil', 'sp_evil'), ('empty', 'sp_empty')) AS t(tag, slug)
 ORDER BY t.tag DESC;
SELECT is((SELECT count(*) FROM pg_temp.claims AS c
            WHERE c.tag = t.tag AND c.round = 0),
          0::bigint,
          t.tag || ': polling another workflow claims none of these tasks')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;

SELECT is(pg_temp.seen(t.tag, 'extend_lease') || ' ' ||
          pg_temp.seen(t.tag, 'extend_lease of another attempt'),
          'true false',
          t.tag || ': extend_lease extends only the current attempt')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'complete_task') || ' ' ||
          pg_temp.seen(t.tag, 'complete_tasks') || ' ' ||
          pg_temp.seen(t.tag, 'complete_task again'),
          'completed 2 10',
          t.tag || ': complete_task, complete_tasks, and a harmless repeat')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'fail_task'),
          'queued 2025-05-05 05:05:08+00',
          t.tag || ': fail_task queues a retry base_delay seconds later')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;

/* The second poll: run 1's total step, and run 2's retry. */
SELECT results_eq(
    format($$SELECT c.run_id, c.step_slug, c.attempt, c.input,
                    c.lease_expires_at
               FROM pg_temp.claims AS c
              WHERE c.tag = %L AND c.round = 2
              ORDER BY c.run_id, c.step_slug$$, t.tag),
    format($$VALUES
        (%L::uuid, 'total'::text, 1, '{"items": [10, 20, 30]}'::jsonb,
         '2025-05-05 05:05:28+00'::timestamptz),
        (%L, 'items', 2, '7', '2025-05-05 05:05:28+00')$$, t.r1, t.r2),
    t.tag || ': the second poll hands out the dependent step and the retry')
  FROM (VALUES ('evil', '41000000-0000-0000-0000-000000000001',
                '41000000-0000-0000-0000-000000000002'),
               ('empty', '42000000-0000-0000-0000-000000000001',
                '42000000-0000-0000-0000-000000000002')) AS t(tag, r1, r2)
 ORDER BY t.tag DESC;

/* The runs, their steps and their tasks at the end. */
SELECT results_eq(
    format($$SELECT r.run_id::text, r.status, r.output, r.error_message,
                    r.started_at, r.completed_at, r.failed_at,
                    r.cancelled_at
               FROM pg_temp.snap_runs AS r
              WHERE r.tag = %L
              ORDER BY r.status, r.run_id$$, t.tag),
    format($$VALUES
        (%L, 'cancelled'::text, NULL::jsonb, 'not needed'::text,
         '2025-05-05 05:05:05+00'::timestamptz, NULL::timestamptz,
         NULL::timestamptz, '2025-05-05 05:05:08+00'::timestamptz),
        (%L, 'completed', '{"total": 60}', NULL,
         '2025-05-05 05:05:05+00', '2025-05-05 05:05:08+00', NULL, NULL),
        (%L, 'failed', NULL, 'step "items" failed: broken',
         '2025-05-05 05:05:05+00', NULL, '2025-05-05 05:05:08+00', NULL)$$,
        pg_temp.seen(t.tag, 'run 3 id'), t.r1, t.r2),
    t.tag || ': the runs ended completed, failed and cancelled, on time')
  FROM (VALUES ('evil', '41000000-0000-0000-0000-000000000001',
                '41000000-0000-0000-0000-000000000002'),
               ('empty', '42000000-0000-0000-0000-000000000001',
                '42000000-0000-0000-0000-000000000002')) AS t(tag, r1, r2)
 ORDER BY t.tag DESC;
SELECT results_eq(
    format($$SELECT s.run_id::text, s.step_slug, s.status, s.output,
                    s.initial_tasks
               FROM pg_temp.snap_steps AS s
              WHERE s.tag = %L
              ORDER BY s.run_id::text, s.step_slug$$, t.tag),
    format($$SELECT x.* FROM (VALUES
        (%L, 'items'::text, 'completed'::text, '[10, 20, 30]'::jsonb, 3),
        (%L, 'total', 'completed', '60', 1),
        (%L, 'items', 'failed', NULL, 1),
        (%L, 'total', 'cancelled', NULL, NULL),
        (%L, 'items', 'cancelled', NULL, 1),
        (%L, 'total', 'cancelled', NULL, NULL)) AS x(r, s, st, o, n)
        ORDER BY x.r, x.s$$,
        t.r1, t.r1, t.r2, t.r2, pg_temp.seen(t.tag, 'run 3 id'),
        pg_temp.seen(t.tag, 'run 3 id')),
    t.tag || ': every step state is right')
  FROM (VALUES ('evil', '41000000-0000-0000-0000-000000000001',
                '41000000-0000-0000-0000-000000000002'),
               ('empty', '42000000-0000-0000-0000-000000000001',
                '42000000-0000-0000-0000-000000000002')) AS t(tag, r1, r2)
 ORDER BY t.tag DESC;
SELECT is((SELECT count(*) FROM pg_temp.snap_tasks AS k
            WHERE k.tag = t.tag
              AND k.idempotency_key::text IS DISTINCT FROM
                  pg_catalog.md5(format('%s::%s::%s::%s', k.workflow_slug,
                                        k.step_slug, k.run_id,
                                        k.task_index))),
          0::bigint,
          t.tag || ': every task key is the real MD5 expression')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT results_eq(
    format($$SELECT k.step_slug, k.task_index, k.status, k.attempts_count,
                    k.output, k.queued_at, k.completed_at
               FROM pg_temp.snap_tasks AS k
              WHERE k.tag = %L AND k.run_id = %L
              ORDER BY k.step_slug, k.task_index$$, t.tag, t.r1),
    $$VALUES ('items'::text, 0, 'completed'::text, 1, '10'::jsonb,
              '2025-05-05 05:05:05+00'::timestamptz,
              '2025-05-05 05:05:05+00'::timestamptz),
             ('items', 1, 'completed', 1, '20', '2025-05-05 05:05:05+00',
              '2025-05-05 05:05:05+00'),
             ('items', 2, 'completed', 1, '30', '2025-05-05 05:05:05+00',
              '2025-05-05 05:05:05+00'),
             ('total', 0, 'completed', 1, '60', '2025-05-05 05:05:05+00',
              '2025-05-05 05:05:08+00')$$,
    t.tag || ': run 1''s tasks completed with their outputs, on time')
  FROM (VALUES ('evil', '41000000-0000-0000-0000-000000000001'),
               ('empty', '42000000-0000-0000-0000-000000000001'))
       AS t(tag, r1)
 ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'start_ready_steps again') || ' ' ||
          pg_temp.seen(t.tag, 'run_status') || ' ' ||
          pg_temp.seen(t.tag, 'cancel_run of an ended run'),
          '0 completed completed',
          t.tag || ': start_ready_steps, run_status and cancel_run of an '
          'ended run change nothing')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'workflow_stats'), '1/1/1',
          t.tag || ': workflow_stats counts one run of each ending')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is(pg_temp.seen(t.tag, 'prune_runs'), '3',
          t.tag || ': prune_runs deletes the three ended runs')
  FROM (VALUES ('evil'), ('empty')) AS t(tag) ORDER BY t.tag DESC;
SELECT is((SELECT count(*) FROM quantum_flow.workflow_runs), 0::bigint,
          'nothing is left of the runs after pruning');
SELECT is((SELECT count(*) FROM quantum_flow.workflow_step_tasks), 0::bigint,
          'nor of their tasks');

/* ------------------------------------------------------------------------
 * Owner's rights: a caller's objects are never reached
 *
 * The API functions run with their owner's rights, so a look-alike they
 * reached would run with those rights too.  Schema "trap" holds a
 * look-alike of every function of quantum_flow and of a few built-ins,
 * and "=" on text, uuid and integer; each one logs its call.  A worker
 * and an admin without superuser rights put "trap" first in their
 * search_path, and pg_temp before it, where the worker has made
 * temporary tables named like the engine's tables and views, a type
 * named like claimed_task, and temporary look-alikes of functions.  Then
 * they run a workflow through the API.  Nothing may be logged, the
 * temporary tables must be untouched, and the results must be right.
 * ------------------------------------------------------------------------ */

CREATE SCHEMA trap;
CREATE TABLE trap.calls (name text, by_role name);
GRANT USAGE ON SCHEMA trap TO PUBLIC;
GRANT INSERT ON trap.calls TO PUBLIC;

/* A function logging a call of p_name and returning nothing useful. */
CREATE FUNCTION pg_temp.look_alike(p_schema text, p_name text, p_args text,
                                   p_result text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format(
        'CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql '
        'AS $b$ BEGIN INSERT INTO trap.calls VALUES (%L, current_user); '
        '%s END $b$',
        p_schema, p_name, p_args, p_result, p_name,
        CASE WHEN p_result ~ '^(SETOF |TABLE\()' OR p_result = 'void'
             THEN 'RETURN;' ELSE 'RETURN NULL;' END);
END
$$;

SELECT pg_temp.look_alike('trap', f.name, f.args, f.result)
  FROM (SELECT p.proname::text, pg_get_function_identity_arguments(p.oid),
               pg_get_function_result(p.oid)
          FROM pg_proc AS p
         WHERE p.pronamespace = 'quantum_flow'::regnamespace
        UNION ALL
        VALUES ('md5', 'text', 'text'),
               ('gen_random_uuid', '', 'uuid'),
               ('jsonb_typeof', 'jsonb', 'text'),
               ('jsonb_array_length', 'jsonb', 'integer'))
       AS f(name, args, result)
 ORDER BY f.name, f.args;

CREATE FUNCTION trap.eq_text(text, text) RETURNS boolean LANGUAGE sql
AS $$ INSERT INTO trap.calls VALUES ('= text', current_user)
      RETURNING true $$;
CREATE FUNCTION trap.eq_uuid(uuid, uuid) RETURNS boolean LANGUAGE sql
AS $$ INSERT INTO trap.calls VALUES ('= uuid', current_user)
      RETURNING true $$;
CREATE FUNCTION trap.eq_int(integer, integer) RETURNS boolean LANGUAGE sql
AS $$ INSERT INTO trap.calls VALUES ('= integer', current_user)
      RETURNING true $$;
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text,
                        FUNCTION = trap.eq_text);
CREATE OPERATOR trap.= (LEFTARG = uuid, RIGHTARG = uuid,
                        FUNCTION = trap.eq_uuid);
CREATE OPERATOR trap.= (LEFTARG = integer, RIGHTARG = integer,
                        FUNCTION = trap.eq_int);
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA trap TO PUBLIC;

/* The roles of the README, neither of them a superuser. */
CREATE ROLE qf_test_sp_worker NOLOGIN;
CREATE ROLE qf_test_sp_admin NOLOGIN IN ROLE qf_test_sp_worker;
GRANT USAGE ON SCHEMA quantum_flow TO qf_test_sp_worker;
GRANT EXECUTE ON FUNCTION
    quantum_flow.poll_tasks(text, text, integer, interval),
    quantum_flow.extend_lease(uuid, text, integer, integer, interval),
    quantum_flow.complete_task(uuid, text, integer, jsonb, integer),
    quantum_flow.complete_tasks(uuid[], text[], integer[], jsonb[],
                                integer[]),
    quantum_flow.fail_task(uuid, text, integer, text, integer),
    quantum_flow.now(),
    quantum_flow.compute_idempotency_key(text, text, uuid, integer)
    TO qf_test_sp_worker;
GRANT EXECUTE ON FUNCTION
    quantum_flow.define_workflow(text, jsonb),
    quantum_flow.start_run(text, jsonb, uuid, text),
    quantum_flow.cancel_run(uuid, text),
    quantum_flow.run_status(uuid),
    quantum_flow.tally_runs(),
    quantum_flow.check_invariants()
    TO qf_test_sp_admin;
GRANT SELECT ON quantum_flow.workflow_stats TO qf_test_sp_admin;

/*
 * Run p_sql as p_role with the look-alikes first in the search_path, and
 * return the first column of its first row, if it is a query.
 */
CREATE FUNCTION pg_temp.as_caller(p_role text, p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_path      text := pg_catalog.current_setting('search_path');
    v_query     boolean := p_sql ~* '^\s*SELECT\s';
    v_result    text;
BEGIN
    PERFORM pg_catalog.set_config('role', p_role, true);
    PERFORM pg_catalog.set_config('search_path', 'pg_temp, trap, pg_catalog',
                                  true);
    IF v_query THEN
        EXECUTE p_sql INTO v_result;
    ELSE
        EXECUTE p_sql;
    END IF;
    PERFORM pg_catalog.set_config('search_path', v_path, true);
    PERFORM pg_catalog.set_config('role', 'none', true);
    RETURN v_result;
END
$$;

/* The worker's own temporary objects, named like the engine's. */
SELECT pg_temp.as_caller('qf_test_sp_worker', format(
           'CREATE TEMP TABLE %I AS SELECT %L::text AS junk', c.relname,
           'planted'))
  FROM pg_class AS c
 WHERE c.relnamespace = 'quantum_flow'::regnamespace
   AND c.relkind IN ('r', 'v')
 ORDER BY c.relname;
SELECT pg_temp.as_caller('qf_test_sp_worker',
                         'CREATE TYPE pg_temp.claimed_task AS (junk text)');
SELECT pg_temp.as_caller('qf_test_sp_worker', format(
           'SELECT pg_temp.look_alike(%L, %L, %L, %L)', 'pg_temp', f.name,
           f.args, f.result))
  FROM (VALUES ('now', '', 'timestamptz'),
               ('is_valid_slug', 'text', 'boolean'),
               ('_require', 'anyelement, text', 'void'),
               ('_no_task', 'uuid, text, integer', 'void'),
               ('_fail_run', 'uuid, text, text, text', 'void'),
               ('_fail_task_final', 'uuid, text, integer, text', 'void'),
               ('_count_off_tasks', 'uuid, text, integer', 'void'),
               ('start_ready_steps', 'uuid', 'integer'),
               ('compute_idempotency_key', 'text, text, uuid, integer',
                'varchar'),
               ('md5', 'text', 'text')) AS f(name, args, result)
 ORDER BY f.name;
SELECT is((SELECT count(*) FROM pg_class AS c
            WHERE c.relnamespace = pg_my_temp_schema()
              AND c.relowner = 'qf_test_sp_worker'::regrole
              AND c.relkind = 'r'),
          (SELECT count(*) FROM pg_class AS c
            WHERE c.relnamespace = 'quantum_flow'::regnamespace
              AND c.relkind IN ('r', 'v')),
          'the worker has planted a temporary table for every table and '
          'view of the engine');

/* The workflow, run by the two roles with the planted search_path. */
SELECT quantum_flow.set_clock('2025-07-07 07:07:07+00');
SELECT is(pg_temp.as_caller('qf_test_sp_admin', $q$
    SELECT (quantum_flow.define_workflow('sp_definer', '{
        "max_attempts": 2, "base_delay": 3, "timeout": 20,
        "steps": [{"slug": "total", "depends_on": ["items"]},
                  {"slug": "items", "type": "map"}]}')).workflow_slug
    $q$), 'sp_definer', 'definer: define_workflow works');
SELECT is(pg_temp.as_caller('qf_test_sp_admin', $q$
    SELECT (quantum_flow.start_run('sp_definer', '[1, 2]',
            '43000000-0000-0000-0000-000000000001')).status || ' ' ||
           (quantum_flow.start_run('sp_definer', '[5]',
            '43000000-0000-0000-0000-000000000002')).status
    $q$), 'started started', 'definer: start_run works');
SELECT is(pg_temp.as_caller('qf_test_sp_worker', $q$
    SELECT string_agg(format('%s/%s/%s/%s/%s/%s', c.run_id, c.task_index,
                             c.attempt, c.idempotency_key, c.input,
                             c.lease_expires_at), ' '
                      ORDER BY c.run_id, c.task_index)
      FROM quantum_flow.poll_tasks('sp_definer', 'w', 10) AS c
    $q$),
    format('%1$s/0/1/%3$s/1/%6$s %1$s/1/1/%4$s/2/%6$s %2$s/0/1/%5$s/5/%6$s',
           '43000000-0000-0000-0000-000000000001',
           '43000000-0000-0000-0000-000000000002',
           md5('sp_definer::items::'
               '43000000-0000-0000-0000-000000000001::0'),
           md5('sp_definer::items::'
               '43000000-0000-0000-0000-000000000001::1'),
           md5('sp_definer::items::'
               '43000000-0000-0000-0000-000000000002::0'),
           '2025-07-07 07:07:27+00'),
    'definer: poll_tasks hands out the right tasks, keys, inputs and '
    'leases');
SELECT is(pg_temp.as_caller('qf_test_sp_worker', $q$
    SELECT quantum_flow.extend_lease('43000000-0000-0000-0000-000000000001',
                                     'items', 0, 1, '1 minute')::text
           || ' ' ||
           (quantum_flow.complete_task('43000000-0000-0000-0000-000000000001',
                                       'items', 0, '10')).status
           || ' ' ||
           quantum_flow.complete_tasks(
               '{43000000-0000-0000-0000-000000000001}', '{items}', '{1}',
               '{20}')
           || ' ' ||
           (quantum_flow.fail_task('43000000-0000-0000-0000-000000000002',
                                   'items', 0, 'flaky')).visible_at
    $q$), 'true completed 1 2025-07-07 07:07:10+00',
    'definer: extend_lease, complete_task, complete_tasks and fail_task '
    'work');
SELECT quantum_flow.advance_clock('3 seconds');
SELECT is(pg_temp.as_caller('qf_test_sp_worker', $q$
    SELECT string_agg(format('%s/%s/%s', c.step_slug, c.attempt, c.input),
                      ' ' ORDER BY c.run_id)
      FROM quantum_flow.poll_tasks('sp_definer', 'w', 10) AS c
    $q$), 'total/1/{"items": [10, 20]} items/2/5',
    'definer: the next poll hands out the dependent step and the retry');
SELECT is(pg_temp.as_caller('qf_test_sp_worker', $q$
    SELECT (quantum_flow.complete_task('43000000-0000-0000-0000-000000000001',
                                       'total', 0, '30', 1)).status
           || ' ' ||
           (quantum_flow.fail_task('43000000-0000-0000-0000-000000000002',
                                   'items', 0, 'broken', 2)).status
    $q$), 'completed failed',
    'definer: the last completion and the last failure');
SELECT is(pg_temp.as_caller('qf_test_sp_admin', $q$
    SELECT (quantum_flow.run_status(
                '43000000-0000-0000-0000-000000000001') ->> 'status')
           || ' ' ||
           (quantum_flow.cancel_run(
                '43000000-0000-0000-0000-000000000002')).status
           || ' ' ||
           (SELECT s.runs_completed || '/' || s.runs_failed
              FROM quantum_flow.workflow_stats AS s
             ORDER BY s.workflow_slug LIMIT 1)
           || ' ' || quantum_flow.tally_runs()
           || ' ' || (SELECT count(*) FROM quantum_flow.check_invariants())
    $q$), 'completed failed 1/1 2 0',
    'definer: run_status, cancel_run, workflow_stats, tally_runs and '
    'check_invariants work');

/* What happened, with a clean search_path. */

/* Each planted table, as "name: rows/rows as planted". */
CREATE FUNCTION pg_temp.planted()
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_rel       record;
    v_n         text;
    v_result    text[] := '{}';
BEGIN
    FOR v_rel IN
        SELECT c.relname FROM pg_class AS c
         WHERE c.relnamespace = pg_my_temp_schema()
           AND c.relowner = 'qf_test_sp_worker'::regrole
           AND c.relkind = 'r'
         ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT count(*) || %L || '
                       '       count(*) FILTER (WHERE t.junk = %L) '
                       '  FROM pg_temp.%I AS t', '/', 'planted',
                       v_rel.relname)
           INTO v_n;
        v_result := v_result || (v_rel.relname || ': ' || v_n);
    END LOOP;
    RETURN array_to_string(v_result, ', ');
END
$$;

SELECT results_eq(
    $$SELECT r.run_id::text, r.status, r.output, r.error_message
        FROM quantum_flow.workflow_runs AS r
       ORDER BY r.run_id$$,
    $$VALUES ('43000000-0000-0000-0000-000000000001'::text,
              'completed'::text, '{"total": 30}'::jsonb, NULL::text),
             ('43000000-0000-0000-0000-000000000002', 'failed', NULL,
              'step "items" failed: broken')$$,
    'definer: the runs ended as they should');
SELECT is_empty($$SELECT name, by_role FROM trap.calls ORDER BY 1, 2$$,
                'definer: no look-alike was ever called');
SELECT is(pg_temp.planted(),
          (SELECT string_agg(c.relname || ': 1/1', ', ' ORDER BY c.relname)
             FROM pg_class AS c
            WHERE c.relnamespace = 'quantum_flow'::regnamespace
              AND c.relkind IN ('r', 'v')),
          'definer: each planted table still holds its one row and no more');
SELECT is((SELECT rolsuper FROM pg_roles
            WHERE rolname = 'qf_test_sp_worker'),
          false, 'definer: the worker is still no superuser');

SELECT * FROM finish();
ROLLBACK;
