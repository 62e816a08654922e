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
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT plan(46);

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

SELECT * FROM finish();
ROLLBACK;
