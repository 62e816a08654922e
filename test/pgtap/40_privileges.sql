/*
 * 40_privileges.sql
 *		pgTAP: privileges, and the worker and admin roles of the README.
 *
 * The extension grants nothing to PUBLIC.  Its API functions run with the
 * owner's rights (SECURITY DEFINER, with a fixed search_path), so a role
 * needs USAGE on the schema and EXECUTE on the API functions it calls,
 * and nothing on the tables or on the internal helpers.  The clock
 * functions are the exception: they run with the caller's rights, so that
 * only a role allowed to set quantum_flow.clock_override moves the clock.
 *
 * The roles below get exactly the grants the README documents.  Each one
 * does its job, including the error paths, and is refused everything
 * else: every other function, every direct read or write of a table, and
 * the clock.  Then each documented grant is revoked in turn, to show that
 * the call that needs it is refused without it.  A role with no grants,
 * and one with USAGE only, are refused everything.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT plan(111);

SET LOCAL TimeZone = 'UTC';
SELECT quantum_flow.set_clock('2025-01-01 00:00:00+00');

/* Run p_sql as p_role and return the first column of its first row. */
CREATE FUNCTION pg_temp.as_role(p_role text, p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_result text;
BEGIN
    PERFORM pg_catalog.set_config('role', p_role, true);
    IF p_sql ~* '^\s*(SET|RESET)\s' THEN
        EXECUTE p_sql;
    ELSE
        EXECUTE p_sql INTO v_result;
    END IF;
    PERFORM pg_catalog.set_config('role', 'none', true);
    RETURN v_result;
END
$$;

/*
 * Run p_sql as p_role and undo whatever it did; return 'ok', or the error
 * it raised as "SQLSTATE: message".  The role switch is undone with the
 * rest.
 */
CREATE FUNCTION pg_temp.outcome(p_role text, p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.set_config('role', p_role, true);
    EXECUTE p_sql;
    RAISE EXCEPTION 'undo' USING ERRCODE = 'QF000';
EXCEPTION
    WHEN SQLSTATE 'QF000' THEN
        RETURN 'ok';
    WHEN OTHERS THEN
        RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

/*
 * Call every function of the schema as p_role, with NULL arguments, and
 * list those that were not refused for want of EXECUTE on the function
 * itself or of USAGE on the schema (a refusal from deeper down, say a
 * table the function reads, would not count).  Every call is undone.  The
 * NULLs come from subqueries: a STRICT function called with constant
 * NULLs is folded away by the planner before any privilege is checked.
 */
CREATE FUNCTION pg_temp.not_refused(p_role text)
RETURNS text[]
LANGUAGE plpgsql
AS $$
DECLARE
    v_fn        record;
    v_result    text[] := '{}';
BEGIN
    FOR v_fn IN
        SELECT p.proname,
               array(SELECT CASE WHEN t = 'anyelement'::regtype
                                 THEN 'integer' ELSE format_type(t, NULL)
                            END
                       FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY
                            AS a(t, n)
                      ORDER BY a.n) AS types
          FROM pg_proc AS p
         WHERE p.pronamespace = 'quantum_flow'::regnamespace
         ORDER BY p.proname, p.oid
    LOOP
        IF pg_temp.outcome(p_role, format(
               'SELECT quantum_flow.%I(%s)', v_fn.proname,
               array_to_string(array(
                   SELECT '(SELECT NULL::' || t || ')'
                     FROM unnest(v_fn.types) WITH ORDINALITY AS a(t, n)
                    ORDER BY a.n), ', ')))
           NOT IN ('42501: permission denied for function ' || v_fn.proname,
                   '42501: permission denied for schema quantum_flow') THEN
            v_result := v_result || v_fn.proname::text;
        END IF;
    END LOOP;
    RETURN v_result;
END
$$;

/*
 * Try every kind of direct access to every table and view of the schema
 * as p_role, undoing each attempt, and list those that were not refused
 * for want of a privilege on the relation or the schema, as "relation:
 * command".  An UPDATE sets a column to NULL, so that it reads nothing,
 * and an attempt that gets past the privilege check fails later or is
 * undone.  A view is only read: writing to it fails on its definition
 * before any privilege is checked.
 */
CREATE FUNCTION pg_temp.table_access(p_role text)
RETURNS text[]
LANGUAGE plpgsql
AS $$
DECLARE
    v_rel       record;
    v_try       record;
    v_result    text[] := '{}';
BEGIN
    FOR v_rel IN
        SELECT c.relname, c.relkind,
               (SELECT a.attname FROM pg_attribute AS a
                 WHERE a.attrelid = c.oid AND a.attnum = 1) AS col
          FROM pg_class AS c
         WHERE c.relnamespace = 'quantum_flow'::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm')
         ORDER BY c.relname
    LOOP
        FOR v_try IN
            SELECT x.cmd, x.sql
              FROM (VALUES
                  (1, 'SELECT', format('SELECT 1 FROM quantum_flow.%I',
                                       v_rel.relname)),
                  (2, 'INSERT', format('INSERT INTO quantum_flow.%I '
                                       'DEFAULT VALUES', v_rel.relname)),
                  (3, 'UPDATE', format('UPDATE quantum_flow.%I SET %I = NULL',
                                       v_rel.relname, v_rel.col)),
                  (4, 'DELETE', format('DELETE FROM quantum_flow.%I',
                                       v_rel.relname)),
                  (5, 'TRUNCATE', format('TRUNCATE quantum_flow.%I',
                                         v_rel.relname)))
                   AS x(n, cmd, sql)
             WHERE x.cmd = 'SELECT' OR v_rel.relkind IN ('r', 'p')
             ORDER BY x.n
        LOOP
            IF pg_temp.outcome(p_role, v_try.sql)
               NOT IN ('42501: permission denied for table ' || v_rel.relname,
                       '42501: permission denied for view ' || v_rel.relname,
                       '42501: permission denied for schema quantum_flow')
            THEN
                v_result := v_result || (v_rel.relname || ': ' || v_try.cmd);
            END IF;
        END LOOP;
    END LOOP;
    RETURN v_result;
END
$$;

/*
 * Whether the grant p_grant is needed for p_sql as p_role: the outcome of
 * p_sql with every grant, then with "REVOKE p_grant" done; the revoke is
 * undone afterwards.  A needed grant gives "ok -> 42501: permission
 * denied for ...", naming the object that p_grant was on.
 */
CREATE FUNCTION pg_temp.needs(p_grant text, p_role text, p_sql text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_before    text;
    v_after     text;
BEGIN
    v_before := pg_temp.outcome(p_role, p_sql);
    BEGIN
        EXECUTE 'REVOKE ' || p_grant;
        v_after := pg_temp.outcome(p_role, p_sql);
        RAISE EXCEPTION 'undo' USING ERRCODE = 'QF000';
    EXCEPTION WHEN SQLSTATE 'QF000' THEN
        NULL;
    END;
    RETURN v_before || ' -> ' || v_after;
END
$$;

/* ------------------------------------------------------------------------
 * Nothing for PUBLIC
 * ------------------------------------------------------------------------ */

SELECT cmp_ok((SELECT count(*) FROM pg_proc
                WHERE pronamespace = 'quantum_flow'::regnamespace),
              '>=', 20::bigint, 'the schema has its functions');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text
        FROM pg_proc AS p
       WHERE p.pronamespace = 'quantum_flow'::regnamespace
         AND (p.proacl IS NULL
              OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) AS a
                          WHERE a.grantee = 0
                            AND a.privilege_type = 'EXECUTE'))
       ORDER BY 1$$,
    'PUBLIC has EXECUTE on no function of schema quantum_flow');
SELECT is_empty(
    $$SELECT a.privilege_type
        FROM pg_namespace AS n, aclexplode(n.nspacl) AS a
       WHERE n.nspname = 'quantum_flow' AND a.grantee = 0
       ORDER BY 1$$,
    'PUBLIC has no privilege on schema quantum_flow');
SELECT is(has_schema_privilege('public', 'quantum_flow', 'USAGE'), false,
          'PUBLIC may not use schema quantum_flow');
SELECT is_empty(
    $$SELECT c.relname || ': ' || a.privilege_type
        FROM pg_class AS c, aclexplode(c.relacl) AS a
       WHERE c.relnamespace = 'quantum_flow'::regnamespace
         AND a.grantee = 0
       ORDER BY 1$$,
    'PUBLIC has no privilege on any table or view of the schema');

/* ------------------------------------------------------------------------
 * Which functions run with the owner's rights
 * ------------------------------------------------------------------------ */

SELECT is(array(SELECT p.proname::text FROM pg_proc AS p
                 WHERE p.pronamespace = 'quantum_flow'::regnamespace
                   AND p.prosecdef
                 ORDER BY 1),
          ARRAY['_log_run_end', 'add_step', 'cancel_run',
                'check_invariants', 'complete_task', 'complete_tasks',
                'create_workflow', 'define_workflow', 'extend_lease',
                'fail_task', 'poll_tasks', 'prune_runs', 'run_status',
                'start_ready_steps', 'start_run', 'tally_runs'],
          'the API functions, and one trigger function, are SECURITY '
          'DEFINER');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text
        FROM pg_proc AS p
       WHERE p.pronamespace = 'quantum_flow'::regnamespace
         AND p.prosecdef
         AND p.proconfig IS DISTINCT FROM
             ARRAY['search_path=pg_catalog, pg_temp']
       ORDER BY 1$$,
    'every SECURITY DEFINER function has search_path = pg_catalog, '
    'pg_temp, and no other setting');
SELECT is(array(SELECT p.proname::text FROM pg_proc AS p
                 WHERE p.pronamespace = 'quantum_flow'::regnamespace
                   AND p.prolang = (SELECT l.oid FROM pg_language AS l
                                     WHERE l.lanname = 'c')
                   AND p.proconfig IS NOT NULL
                 ORDER BY 1),
          ARRAY['_count_off_tasks', 'complete_task', 'start_ready_steps'],
          'so do the C functions that run queries');
SELECT is(array(SELECT p.proname::text FROM pg_proc AS p
                 WHERE p.pronamespace = 'quantum_flow'::regnamespace
                   AND p.proname IN ('now', 'set_clock', 'advance_clock',
                                     'reset_clock')
                   AND NOT p.prosecdef
                 ORDER BY 1),
          ARRAY['advance_clock', 'now', 'reset_clock', 'set_clock'],
          'the clock functions run with the caller''s rights');

/* ------------------------------------------------------------------------
 * The roles, as the README sets them up
 * ------------------------------------------------------------------------ */

CREATE ROLE qf_test_worker NOLOGIN;
CREATE ROLE qf_test_admin NOLOGIN;
CREATE ROLE qf_test_clock NOLOGIN;
CREATE ROLE qf_test_nobody NOLOGIN;
CREATE ROLE qf_test_usage_only NOLOGIN;

/* Worker: claim, heartbeat, complete and fail tasks. */
GRANT USAGE ON SCHEMA quantum_flow TO qf_test_worker;
GRANT EXECUTE ON FUNCTION
    quantum_flow.poll_tasks(text, text, integer, interval),
    quantum_flow.extend_lease(uuid, text, integer, integer, interval),
    quantum_flow.complete_task(uuid, text, integer, jsonb, integer),
    quantum_flow.complete_tasks(uuid[], text[], integer[], jsonb[],
                                integer[]),
    quantum_flow.fail_task(uuid, text, integer, text, integer),
    quantum_flow.now(),
    quantum_flow.compute_idempotency_key(text, text, uuid, integer)
    TO qf_test_worker;

/* Admin: everything a worker may do; define, start, cancel, prune, read. */
GRANT qf_test_worker TO qf_test_admin;
GRANT EXECUTE ON FUNCTION
    quantum_flow.create_workflow(text, integer, integer, integer),
    quantum_flow.add_step(text, text, text[], text, integer, integer,
                          integer, integer),
    quantum_flow.define_workflow(text, jsonb),
    quantum_flow.start_run(text, jsonb, uuid, text),
    quantum_flow.start_ready_steps(uuid),
    quantum_flow.cancel_run(uuid, text),
    quantum_flow.prune_runs(interval),
    quantum_flow.tally_runs(),
    quantum_flow.run_status(uuid),
    quantum_flow.check_invariants()
    TO qf_test_admin;
GRANT SELECT ON quantum_flow.workflow_stats,
                quantum_flow.workflows, quantum_flow.workflow_steps,
                quantum_flow.workflow_step_deps, quantum_flow.workflow_runs,
                quantum_flow.workflow_step_states,
                quantum_flow.workflow_step_tasks
    TO qf_test_admin;

/* A test role: a worker that may call the clock functions. */
GRANT qf_test_worker TO qf_test_clock;
GRANT EXECUTE ON FUNCTION
    quantum_flow.set_clock(timestamptz),
    quantum_flow.advance_clock(interval),
    quantum_flow.reset_clock()
    TO qf_test_clock;

/* A role that may use the schema but call nothing. */
GRANT USAGE ON SCHEMA quantum_flow TO qf_test_usage_only;

/* ------------------------------------------------------------------------
 * The admin defines and starts; the worker works
 * ------------------------------------------------------------------------ */

SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.define_workflow('priv', '{
        "max_attempts": 2, "base_delay": 5,
        "steps": [{"slug": "fetch"},
                  {"slug": "split", "depends_on": ["fetch"], "type": "map"},
                  {"slug": "join", "depends_on": ["split"]}]}')).workflow_slug
    $q$), 'priv', 'admin: define_workflow works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.create_workflow('priv2', timeout => 10)).timeout
    $q$)::integer, 10, 'admin: create_workflow works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.add_step('priv2', 'items',
                                  step_type => 'map')).step_type
    $q$), 'map', 'admin: add_step works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.start_run('priv', '{"n": 1}',
            '30000000-0000-0000-0000-000000000001')).status
    $q$), 'started', 'admin: start_run works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.start_run('priv', '{"n": 1}',
            '30000000-0000-0000-0000-000000000009', 'key-1')).run_id
    $q$)::uuid, '30000000-0000-0000-0000-000000000009'::uuid,
          'admin: start_run with an idempotency key works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.start_run('priv', '{"n": 1}',
            NULL, 'key-1')).run_id
    $q$)::uuid, '30000000-0000-0000-0000-000000000009'::uuid,
          'admin: repeating it returns the same run');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.start_run('priv2', '[10, 20]',
            '30000000-0000-0000-0000-000000000002')).status
    $q$), 'started', 'admin: start_run of a root map step works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.start_run('priv', '{"n": 3}',
            '30000000-0000-0000-0000-000000000003')).status
    $q$), 'started', 'admin: start_run of a run to cancel');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT quantum_flow.start_ready_steps(
               '30000000-0000-0000-0000-000000000003')
    $q$)::integer, 0, 'admin: start_ready_steps works, and starts nothing '
    'twice');

/* The worker claims fetch of runs 1, 3 and 9. */
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT string_agg(c.run_id || '/' || c.step_slug || '/' || c.attempt
                      || '/' || c.lease_expires_at, ' '
                      ORDER BY c.run_id)
      FROM quantum_flow.poll_tasks('priv', 'w1', 10, '30 seconds') AS c
    $q$),
    '30000000-0000-0000-0000-000000000001/fetch/1/2025-01-01 00:00:30+00 '
    '30000000-0000-0000-0000-000000000003/fetch/1/2025-01-01 00:00:30+00 '
    '30000000-0000-0000-0000-000000000009/fetch/1/2025-01-01 00:00:30+00',
    'worker: poll_tasks claims the root tasks');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.extend_lease('30000000-0000-0000-0000-000000000001',
                                     'fetch', 0, 1, '2 minutes')
    $q$)::boolean, true, 'worker: extend_lease works');

/* ------------------------------------------------------------------------
 * Every documented grant is needed
 * ------------------------------------------------------------------------ */

SELECT is(pg_temp.needs(t.grant_, t.role_, t.sql_),
          'ok -> 42501: permission denied for ' || t.denied,
          t.role_ || ' needs ' || t.label)
  FROM (VALUES
    (1, 'USAGE ON SCHEMA quantum_flow FROM qf_test_worker',
     'qf_test_worker', 'USAGE on the schema',
     $$SELECT quantum_flow.poll_tasks('priv')$$,
     'schema quantum_flow'),
    (2, 'EXECUTE ON FUNCTION quantum_flow.poll_tasks(text, text, integer, '
        'interval) FROM qf_test_worker',
     'qf_test_worker', 'poll_tasks',
     $$SELECT quantum_flow.poll_tasks('priv')$$,
     'function poll_tasks'),
    (3, 'EXECUTE ON FUNCTION quantum_flow.extend_lease(uuid, text, integer, '
        'integer, interval) FROM qf_test_worker',
     'qf_test_worker', 'extend_lease',
     $$SELECT quantum_flow.extend_lease(
           '30000000-0000-0000-0000-000000000001', 'fetch', 0, 1,
           '1 minute')$$,
     'function extend_lease'),
    (4, 'EXECUTE ON FUNCTION quantum_flow.complete_task(uuid, text, '
        'integer, jsonb, integer) FROM qf_test_worker',
     'qf_test_worker', 'complete_task',
     $$SELECT quantum_flow.complete_task(
           '30000000-0000-0000-0000-000000000001', 'fetch', 0, '[1]')$$,
     'function complete_task'),
    (5, 'EXECUTE ON FUNCTION quantum_flow.complete_tasks(uuid[], text[], '
        'integer[], jsonb[], integer[]) FROM qf_test_worker',
     'qf_test_worker', 'complete_tasks',
     $$SELECT quantum_flow.complete_tasks(
           '{30000000-0000-0000-0000-000000000001}', '{fetch}', '{0}',
           '{"[1]"}')$$,
     'function complete_tasks'),
    (6, 'EXECUTE ON FUNCTION quantum_flow.fail_task(uuid, text, integer, '
        'text, integer) FROM qf_test_worker',
     'qf_test_worker', 'fail_task',
     $$SELECT quantum_flow.fail_task(
           '30000000-0000-0000-0000-000000000001', 'fetch', 0, 'x')$$,
     'function fail_task'),
    (7, 'qf_test_worker FROM qf_test_admin',
     'qf_test_admin', 'the worker role, for USAGE on the schema',
     $$SELECT quantum_flow.poll_tasks('priv')$$,
     'schema quantum_flow'),
    (8, 'EXECUTE ON FUNCTION quantum_flow.now() FROM qf_test_worker',
     'qf_test_admin', 'now(), through the worker role, to read the stats',
     $$SELECT * FROM quantum_flow.workflow_stats$$,
     'function now'),
    (9, 'EXECUTE ON FUNCTION quantum_flow.create_workflow(text, integer, '
        'integer, integer) FROM qf_test_admin',
     'qf_test_admin', 'create_workflow',
     $$SELECT quantum_flow.create_workflow('need')$$,
     'function create_workflow'),
    (10, 'EXECUTE ON FUNCTION quantum_flow.add_step(text, text, text[], '
         'text, integer, integer, integer, integer) FROM qf_test_admin',
     'qf_test_admin', 'add_step',
     $$SELECT quantum_flow.add_step('priv2', 'need')$$,
     'function add_step'),
    (11, 'EXECUTE ON FUNCTION quantum_flow.define_workflow(text, jsonb) '
         'FROM qf_test_admin',
     'qf_test_admin', 'define_workflow',
     $$SELECT quantum_flow.define_workflow('need',
           '{"steps": [{"slug": "a"}]}')$$,
     'function define_workflow'),
    (12, 'EXECUTE ON FUNCTION quantum_flow.start_run(text, jsonb, uuid, '
         'text) FROM qf_test_admin',
     'qf_test_admin', 'start_run',
     $$SELECT quantum_flow.start_run('priv')$$,
     'function start_run'),
    (13, 'EXECUTE ON FUNCTION quantum_flow.start_ready_steps(uuid) '
         'FROM qf_test_admin',
     'qf_test_admin', 'start_ready_steps',
     $$SELECT quantum_flow.start_ready_steps(
           '30000000-0000-0000-0000-000000000001')$$,
     'function start_ready_steps'),
    (14, 'EXECUTE ON FUNCTION quantum_flow.cancel_run(uuid, text) '
         'FROM qf_test_admin',
     'qf_test_admin', 'cancel_run',
     $$SELECT quantum_flow.cancel_run(
           '30000000-0000-0000-0000-000000000003')$$,
     'function cancel_run'),
    (15, 'EXECUTE ON FUNCTION quantum_flow.prune_runs(interval) '
         'FROM qf_test_admin',
     'qf_test_admin', 'prune_runs',
     $$SELECT quantum_flow.prune_runs('1 day')$$,
     'function prune_runs'),
    (16, 'EXECUTE ON FUNCTION quantum_flow.tally_runs() FROM qf_test_admin',
     'qf_test_admin', 'tally_runs',
     $$SELECT quantum_flow.tally_runs()$$,
     'function tally_runs'),
    (17, 'EXECUTE ON FUNCTION quantum_flow.run_status(uuid) '
         'FROM qf_test_admin',
     'qf_test_admin', 'run_status',
     $$SELECT quantum_flow.run_status(
           '30000000-0000-0000-0000-000000000001')$$,
     'function run_status'),
    (18, 'EXECUTE ON FUNCTION quantum_flow.check_invariants() '
         'FROM qf_test_admin',
     'qf_test_admin', 'check_invariants',
     $$SELECT * FROM quantum_flow.check_invariants()$$,
     'function check_invariants'),
    (19, 'SELECT ON quantum_flow.workflow_stats FROM qf_test_admin',
     'qf_test_admin', 'SELECT on workflow_stats',
     $$SELECT * FROM quantum_flow.workflow_stats$$,
     'view workflow_stats'),
    (20, 'SELECT ON quantum_flow.workflows FROM qf_test_admin',
     'qf_test_admin', 'SELECT on workflows',
     $$SELECT * FROM quantum_flow.workflows$$,
     'table workflows'),
    (21, 'SELECT ON quantum_flow.workflow_steps FROM qf_test_admin',
     'qf_test_admin', 'SELECT on workflow_steps',
     $$SELECT * FROM quantum_flow.workflow_steps$$,
     'table workflow_steps'),
    (22, 'SELECT ON quantum_flow.workflow_step_deps FROM qf_test_admin',
     'qf_test_admin', 'SELECT on workflow_step_deps',
     $$SELECT * FROM quantum_flow.workflow_step_deps$$,
     'table workflow_step_deps'),
    (23, 'SELECT ON quantum_flow.workflow_runs FROM qf_test_admin',
     'qf_test_admin', 'SELECT on workflow_runs',
     $$SELECT * FROM quantum_flow.workflow_runs$$,
     'table workflow_runs'),
    (24, 'SELECT ON quantum_flow.workflow_step_states FROM qf_test_admin',
     'qf_test_admin', 'SELECT on workflow_step_states',
     $$SELECT * FROM quantum_flow.workflow_step_states$$,
     'table workflow_step_states'),
    (25, 'SELECT ON quantum_flow.workflow_step_tasks FROM qf_test_admin',
     'qf_test_admin', 'SELECT on workflow_step_tasks',
     $$SELECT * FROM quantum_flow.workflow_step_tasks$$,
     'table workflow_step_tasks'))
       AS t(n, grant_, role_, label, sql_, denied)
 ORDER BY t.n;

/* now() and the key function are for the worker's own use only. */
SELECT is(pg_temp.needs(
    'EXECUTE ON FUNCTION quantum_flow.now(), '
    'quantum_flow.compute_idempotency_key(text, text, uuid, integer) '
    'FROM qf_test_worker', 'qf_test_worker', $q$
    SELECT quantum_flow.extend_lease('30000000-0000-0000-0000-000000000001',
                                     'fetch', 0, 1, '1 minute'),
           quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                      'fetch', 0, '["a", "b"]'),
           (SELECT count(*) FROM quantum_flow.poll_tasks('priv')),
           quantum_flow.fail_task('30000000-0000-0000-0000-000000000001',
                                  'split', 0, 'x')
    $q$), 'ok -> ok',
    'the worker loop does not need now() or compute_idempotency_key');

/* ------------------------------------------------------------------------
 * The worker loop
 * ------------------------------------------------------------------------ */

SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT (quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                       'fetch', 0, '["a", "b"]')).status
    $q$), 'completed', 'worker: complete_task works');
SELECT results_eq(
    $$SELECT step_slug, status, initial_tasks
        FROM quantum_flow.workflow_step_states
       WHERE run_id = '30000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('fetch'::text, 'completed'::text, 1),
             ('join', 'created', NULL),
             ('split', 'started', 2)$$,
    'worker: completing fetch started the map step with two tasks');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT count(*) FROM quantum_flow.poll_tasks('priv', 'w1', 10)
    $q$)::integer, 2, 'worker: poll_tasks claims the map tasks');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.complete_tasks(
        ARRAY['30000000-0000-0000-0000-000000000001',
              '30000000-0000-0000-0000-000000000001']::uuid[],
        ARRAY['split', 'split'], ARRAY[0, 1], ARRAY['"A"', '"B"']::jsonb[])
    $q$)::integer, 2, 'worker: complete_tasks works');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT string_agg(c.step_slug || ' ' || c.input, ', ')
      FROM quantum_flow.poll_tasks('priv', 'w1', 10) AS c
    $q$), 'join {"split": ["A", "B"]}',
    'worker: the join step got the map output as input');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT (quantum_flow.complete_task('30000000-0000-0000-0000-000000000001',
                                       'join', 0, '"done"')).status
    $q$), 'completed', 'worker: completing the last task ...');
SELECT is((SELECT status || ' ' || output::text
             FROM quantum_flow.workflow_runs
            WHERE run_id = '30000000-0000-0000-0000-000000000001'),
          'completed {"join": "done"}', '... completes the run');

/* Retry, then the last attempt fails the run. */
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT (t.status, t.visible_at)::text
      FROM quantum_flow.fail_task('30000000-0000-0000-0000-000000000009',
                                  'fetch', 0, 'flaky') AS t
    $q$), '(queued,"2025-01-01 00:00:05+00")',
    'worker: fail_task queues a retry after base_delay');
SELECT quantum_flow.advance_clock('5 seconds');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT string_agg(c.run_id || '/' || c.attempt, ' ')
      FROM quantum_flow.poll_tasks('priv', 'w1', 10) AS c
    $q$), '30000000-0000-0000-0000-000000000009/2',
    'worker: the retry is claimed as attempt 2');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT (quantum_flow.fail_task('30000000-0000-0000-0000-000000000009',
                                   'fetch', 0, 'broken', 2)).status
    $q$), 'failed', 'worker: fail_task on the last attempt fails the task');
SELECT is((SELECT status || ': ' || error_message
             FROM quantum_flow.workflow_runs
            WHERE run_id = '30000000-0000-0000-0000-000000000009'),
          'failed: step "fetch" failed: broken', '... and the run');

/* Error paths give their own SQLSTATE, not a privilege error. */
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.complete_task('30000000-0000-0000-0000-0000000000ff',
                                      'fetch', 0)
    $q$)$$, '42704', NULL, 'worker: an unknown run is 42704');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.fail_task('30000000-0000-0000-0000-000000000001',
                                  'nope', 0, 'x')
    $q$)$$, '42704', NULL, 'worker: an unknown task is 42704');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.fail_task('30000000-0000-0000-0000-0000000000ff',
                                  'fetch', 0, 'x')
    $q$)$$, '42704', NULL,
    'worker: failing a task of an unknown run is 42704');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.extend_lease('30000000-0000-0000-0000-000000000001',
                                     'nope', 0, 1, '1 minute')
    $q$)$$, '42704', NULL, 'worker: extend_lease of an unknown task is 42704');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.complete_tasks(
        ARRAY['30000000-0000-0000-0000-000000000001']::uuid[],
        ARRAY['nope'], ARRAY[0], ARRAY['1']::jsonb[])
    $q$)$$, '42704', NULL,
    'worker: complete_tasks of an unknown task is 42704');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT * FROM quantum_flow.poll_tasks('nope')
    $q$)$$, '42704', NULL, 'worker: polling an unknown workflow is 42704');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT * FROM quantum_flow.poll_tasks(NULL)
    $q$)$$, '22004', NULL, 'worker: a NULL argument is 22004');

/* A lease that runs out on the last attempt is failed by the next poll. */
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT string_agg(c.run_id || '/' || c.attempt, ' ')
      FROM quantum_flow.poll_tasks('priv2', 'w1', 1) AS c
    $q$), '30000000-0000-0000-0000-000000000002/1',
    'worker: poll_tasks honours batch_size');
SELECT quantum_flow.advance_clock('11 seconds');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT string_agg(c.attempt::text, ' ' ORDER BY c.attempt)
      FROM quantum_flow.poll_tasks('priv2', 'w1', 10) AS c
    $q$), '1 2',
    'worker: the other task is claimed, and the expired lease again');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.now()
    $q$)::timestamptz, '2025-01-01 00:00:16+00'::timestamptz,
    'worker: may read the engine''s clock');
SELECT is(pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.compute_idempotency_key('priv', 'fetch',
               '30000000-0000-0000-0000-000000000001', 0)
    $q$), md5('priv::fetch::30000000-0000-0000-0000-000000000001::0'),
    'worker: may compute an idempotency key');

/* ------------------------------------------------------------------------
 * What the worker may not do
 * ------------------------------------------------------------------------ */

SELECT is(pg_temp.not_refused('qf_test_worker'),
          ARRAY['complete_task', 'complete_tasks', 'compute_idempotency_key',
                'extend_lease', 'fail_task', 'now', 'poll_tasks'],
          'worker: every other function of the schema is refused');
SELECT is(pg_temp.table_access('qf_test_worker'), '{}'::text[],
          'worker: every direct read or write of a table or view is '
          'refused');
SELECT is_empty(
    $$SELECT c.relname::text
        FROM pg_class AS c
       WHERE c.relnamespace = 'quantum_flow'::regnamespace
         AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
         AND has_table_privilege('qf_test_worker', c.oid,
                                 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, '
                                 'REFERENCES, TRIGGER')
       ORDER BY 1$$,
    'worker: holds no privilege on any relation of the schema');

SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.start_run('priv', '{}')
    $q$)$$, '42501', NULL, 'worker: start_run is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.define_workflow('evil', '{"steps": []}')
    $q$)$$, '42501', NULL, 'worker: define_workflow is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.cancel_run('30000000-0000-0000-0000-000000000003')
    $q$)$$, '42501', NULL, 'worker: cancel_run is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.prune_runs('0 seconds')
    $q$)$$, '42501', NULL, 'worker: prune_runs is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.run_status('30000000-0000-0000-0000-000000000003')
    $q$)$$, '42501', NULL, 'worker: run_status is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow._fail_run('30000000-0000-0000-0000-000000000003',
                                  'fetch', 'x', 'x')
    $q$)$$, '42501', NULL, 'worker: _fail_run is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow._count_off_tasks(
               '30000000-0000-0000-0000-000000000003', 'fetch', 1)
    $q$)$$, '42501', NULL, 'worker: _count_off_tasks is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    UPDATE quantum_flow.workflow_runs SET status = 'failed' RETURNING 1
    $q$)$$, '42501', NULL, 'worker: rewriting a run''s state is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT count(*) FROM quantum_flow.workflow_stats
    $q$)$$, '42501', NULL, 'worker: workflow_stats is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    CREATE FUNCTION quantum_flow.now(integer) RETURNS integer
    LANGUAGE sql AS 'SELECT 1'
    $q$)$$, '42501', NULL, 'worker: cannot create objects in the schema');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    ALTER FUNCTION quantum_flow.poll_tasks(text, text, integer, interval)
        SET search_path = public
    $q$)$$, '42501', NULL, 'worker: cannot alter the API functions');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SELECT quantum_flow.set_clock('2030-01-01 00:00:00+00')
    $q$)$$, '42501', NULL, 'worker: set_clock is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_worker', $q$
    SET quantum_flow.clock_override = '2030-01-01 00:00:00+00'
    $q$)$$, '42501', NULL,
    'worker: without SET ON PARAMETER the clock cannot be moved');

/* ------------------------------------------------------------------------
 * The admin
 * ------------------------------------------------------------------------ */

SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT (quantum_flow.cancel_run('30000000-0000-0000-0000-000000000003',
                                    'not needed')).status
    $q$), 'cancelled', 'admin: cancel_run works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT quantum_flow.run_status('30000000-0000-0000-0000-000000000003')
           ->> 'status'
    $q$), 'cancelled', 'admin: run_status works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT runs_completed || '/' || runs_failed || '/' || runs_cancelled
      FROM quantum_flow.workflow_stats WHERE workflow_slug = 'priv'
    $q$), '1/1/1', 'admin: workflow_stats works');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT count(*) FROM quantum_flow.workflow_step_tasks
    $q$)::integer, 8, 'admin: the tables can be read');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT count(*) FROM quantum_flow.check_invariants()
    $q$)::integer, 0, 'admin: check_invariants works, and finds nothing');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT quantum_flow.tally_runs()
    $q$)::bigint, 3::bigint, 'admin: tally_runs works');
SELECT quantum_flow.advance_clock('1 hour');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT quantum_flow.prune_runs('30 minutes')
    $q$)::bigint, 3::bigint, 'admin: prune_runs deletes the ended runs');
SELECT is((SELECT count(*) FROM quantum_flow.workflow_step_tasks),
          2::bigint, 'only the tasks of the open run are left');
SELECT is(pg_temp.as_role('qf_test_admin', $q$
    SELECT count(*) FROM quantum_flow.poll_tasks('priv2', 'w2', 10)
    $q$)::integer, 2, 'admin: may poll too, as a worker');

SELECT is(pg_temp.not_refused('qf_test_admin'),
          ARRAY['add_step', 'cancel_run', 'check_invariants',
                'complete_task', 'complete_tasks', 'compute_idempotency_key',
                'create_workflow', 'define_workflow', 'extend_lease',
                'fail_task', 'now', 'poll_tasks', 'prune_runs', 'run_status',
                'start_ready_steps', 'start_run', 'tally_runs'],
          'admin: the internal helpers and the clock are refused');
SELECT is(pg_temp.table_access('qf_test_admin'),
          ARRAY['workflow_runs: SELECT', 'workflow_stats: SELECT',
                'workflow_step_deps: SELECT', 'workflow_step_states: SELECT',
                'workflow_step_tasks: SELECT', 'workflow_steps: SELECT',
                'workflows: SELECT'],
          'admin: may read the tables and the view, and write to none');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_admin', $q$
    SELECT quantum_flow._fail_run('30000000-0000-0000-0000-000000000002',
                                  'items', 'x', 'x')
    $q$)$$, '42501', NULL, 'admin: _fail_run is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_admin', $q$
    SET quantum_flow.clock_override = '2030-01-01 00:00:00+00'
    $q$)$$, '42501', NULL,
    'admin: without SET ON PARAMETER the clock cannot be moved either');

/* ------------------------------------------------------------------------
 * The clock: only with SET ON PARAMETER
 * ------------------------------------------------------------------------ */

SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock', $q$
    SELECT quantum_flow.set_clock('2030-01-01 00:00:00+00')
    $q$)$$, '42501', NULL,
    'EXECUTE on set_clock without SET ON PARAMETER moves nothing');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock', $q$
    SELECT quantum_flow.advance_clock('1 hour')
    $q$)$$, '42501', NULL, 'nor does advance_clock');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock', $q$
    SELECT quantum_flow.reset_clock()
    $q$)$$, '42501', NULL, 'nor reset_clock');
SELECT is(quantum_flow.now(), '2025-01-01 01:00:16+00'::timestamptz,
          'the clock did not move');

GRANT SET ON PARAMETER quantum_flow.clock_override TO qf_test_clock;

SELECT is(pg_temp.as_role('qf_test_clock', $q$
    SELECT quantum_flow.advance_clock('1 minute')
    $q$)::timestamptz, '2025-01-01 01:01:16+00'::timestamptz,
    'granted SET ON PARAMETER, the role moves the clock');
SELECT is(pg_temp.as_role('qf_test_clock', $q$
    SELECT count(*) FROM quantum_flow.poll_tasks('priv2', 'w3', 10)
    $q$)::integer, 0, 'the next poll finds the last lease run out ...');
SELECT is((SELECT status || ': ' || error_message
             FROM quantum_flow.workflow_runs
            WHERE run_id = '30000000-0000-0000-0000-000000000002'),
          'failed: step "items" failed: timed out: the lease of attempt 3 '
          'expired',
          '... on the clock the role set, though the engine runs as its '
          'owner');
SELECT is(pg_temp.as_role('qf_test_clock', $q$
    SELECT quantum_flow.set_clock('2025-06-01 00:00:00+00')
    $q$)::timestamptz, '2025-06-01 00:00:00+00'::timestamptz,
    'set_clock works too');
SELECT lives_ok($$SELECT pg_temp.as_role('qf_test_clock', $q$
    SELECT quantum_flow.reset_clock()
    $q$)$$, 'and reset_clock');

/* ------------------------------------------------------------------------
 * A role with no grants, and one with USAGE only
 * ------------------------------------------------------------------------ */

SELECT is(pg_temp.not_refused('qf_test_nobody'), '{}'::text[],
          'a role with no grants is refused every function');
SELECT is(pg_temp.not_refused('qf_test_usage_only'), '{}'::text[],
          'a role with USAGE but no EXECUTE is refused every function');
SELECT is(pg_temp.table_access('qf_test_nobody'), '{}'::text[],
          'a role with no grants is refused every table and view');
SELECT is(pg_temp.table_access('qf_test_usage_only'), '{}'::text[],
          'so is a role with USAGE only');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_nobody', $q$
    SET quantum_flow.clock_override = '2030-01-01 00:00:00+00'
    $q$)$$, '42501', NULL, 'and neither may move the clock');

SELECT * FROM finish();
ROLLBACK;
