/*
 * 11_clock.sql
 *		pgTAP: the deterministic clock, quantum_flow.now().
 *
 * Freezing, advancing and resetting the clock give exact instants; the
 * override follows transaction semantics (savepoints, SET LOCAL, a
 * function's SET clause); bad literals and bad arguments are refused with
 * their documented SQLSTATEs; a role that has not been granted SET on the
 * parameter cannot move the clock by any route, and can once granted;
 * and the rows the engine writes carry the frozen time.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT plan(59);

/* Month arithmetic is done in the session's time zone: fix it. */
SET LOCAL TimeZone = 'UTC';

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

/* The error p_sql raises, as {sqlstate, message, detail, hint}. */
CREATE FUNCTION pg_temp.error_of(p_sql text)
RETURNS text[]
LANGUAGE plpgsql
AS $$
DECLARE
    v_state     text;
    v_message   text;
    v_detail    text;
    v_hint      text;
BEGIN
    EXECUTE p_sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE,
                            v_message = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL,
                            v_hint = PG_EXCEPTION_HINT;
    RETURN ARRAY[v_state, v_message, v_detail, v_hint];
END
$$;

/* ------------------------------------------------------------------------
 * Freezing and advancing
 * ------------------------------------------------------------------------ */

SELECT volatility_is('quantum_flow', 'now', ARRAY[]::text[], 'stable',
                     'now() is STABLE, like pg_catalog.now()');
SELECT is(quantum_flow.set_clock(), '2025-01-01 00:00:00+00'::timestamptz,
          'set_clock() freezes the clock at 2025-01-01 00:00:00+00');
SELECT is(quantum_flow.now(), '2025-01-01 00:00:00+00'::timestamptz,
          'now() returns the frozen instant');
SELECT is(current_setting('quantum_flow.clock_override'),
          '2025-01-01 00:00:00+00',
          'the override is spelt in UTC, readable with SHOW');
SELECT is(quantum_flow.advance_clock('1500 milliseconds'),
          '2025-01-01 00:00:01.5+00'::timestamptz,
          'advance_clock(1500 milliseconds) keeps the fraction');
SELECT is(quantum_flow.now(), '2025-01-01 00:00:01.5+00'::timestamptz,
          'now() follows the advance');
SELECT is(quantum_flow.advance_clock('1 day'),
          '2025-01-02 00:00:01.5+00'::timestamptz, 'advance by 1 day');
SELECT is(quantum_flow.advance_clock('0 seconds'),
          '2025-01-02 00:00:01.5+00'::timestamptz,
          'advancing by 0 seconds changes nothing');
SELECT is(quantum_flow.set_clock('2025-01-31 10:00:00+00'),
          '2025-01-31 10:00:00+00'::timestamptz,
          'set_clock(at) freezes the clock at the given instant');
SELECT is(quantum_flow.advance_clock('1 month'),
          '2025-02-28 10:00:00+00'::timestamptz,
          'advance by 1 month from January 31 lands on February 28');
SELECT is(quantum_flow.set_clock('2025-06-15 12:00:00+02'),
          '2025-06-15 10:00:00+00'::timestamptz,
          'set_clock keeps the instant of a literal in another offset');

/* The instant does not move with the session's time zone. */
SET LOCAL TimeZone = 'America/New_York';
SELECT is(quantum_flow.now(), '2025-06-15 10:00:00+00'::timestamptz,
          'changing TimeZone does not move the frozen instant');
SELECT is(quantum_flow.now()::text, '2025-06-15 06:00:00-04',
          'and it is displayed in the session''s time zone');
SET LOCAL TimeZone = 'UTC';

/* ------------------------------------------------------------------------
 * Reset: back to real time, the start of the transaction
 * ------------------------------------------------------------------------ */

SELECT lives_ok($$SELECT quantum_flow.reset_clock()$$, 'reset_clock() runs');
SELECT is(current_setting('quantum_flow.clock_override'), '',
          'after reset_clock the override is empty');
SELECT is(quantum_flow.now(), pg_catalog.now(),
          'on the real clock now() is the start of the transaction');
SELECT is(quantum_flow.now(), quantum_flow.now(),
          'and it is stable within the transaction');

/* ------------------------------------------------------------------------
 * Transaction semantics
 * ------------------------------------------------------------------------ */

SELECT quantum_flow.set_clock('2025-01-01 00:00:00+00');
SAVEPOINT moved;
SELECT quantum_flow.set_clock('2030-01-01 00:00:00+00');
SELECT quantum_flow.advance_clock('1 hour');
ROLLBACK TO SAVEPOINT moved;
SELECT is(quantum_flow.now(), '2025-01-01 00:00:00+00'::timestamptz,
          'ROLLBACK TO SAVEPOINT restores the previous clock');

SAVEPOINT reset;
SELECT quantum_flow.reset_clock();
ROLLBACK TO SAVEPOINT reset;
SELECT is(quantum_flow.now(), '2025-01-01 00:00:00+00'::timestamptz,
          'ROLLBACK TO SAVEPOINT undoes reset_clock too');

SAVEPOINT kept;
SELECT quantum_flow.advance_clock('2 hours');
RELEASE SAVEPOINT kept;
SELECT is(quantum_flow.now(), '2025-01-01 02:00:00+00'::timestamptz,
          'a released savepoint keeps the advance');

SAVEPOINT local;
SET LOCAL quantum_flow.clock_override = '2040-02-29 23:59:59+00';
SELECT is(quantum_flow.now(), '2040-02-29 23:59:59+00'::timestamptz,
          'SET LOCAL quantum_flow.clock_override freezes the clock');
SELECT is(quantum_flow.advance_clock('1 second'),
          '2040-03-01 00:00:00+00'::timestamptz,
          'advance_clock moves a clock frozen with SET LOCAL');
ROLLBACK TO SAVEPOINT local;
SELECT is(quantum_flow.now(), '2025-01-01 02:00:00+00'::timestamptz,
          'leaving the scope of SET LOCAL restores the clock');

CREATE FUNCTION pg_temp.now_in_2031()
RETURNS timestamptz
LANGUAGE sql
SET quantum_flow.clock_override = '2031-01-01 00:00:00+00'
AS $$ SELECT quantum_flow.now() $$;
SELECT is(pg_temp.now_in_2031(), '2031-01-01 00:00:00+00'::timestamptz,
          'a function''s SET clause freezes the clock inside it');
SELECT is(quantum_flow.now(), '2025-01-01 02:00:00+00'::timestamptz,
          'and the caller''s clock is back after the call');

/* ------------------------------------------------------------------------
 * Bad input
 * ------------------------------------------------------------------------ */

SELECT throws_ok($$SET quantum_flow.clock_override = 'garbage'$$,
                 '22023', NULL, 'a garbage literal is refused');
SELECT ok((pg_temp.error_of(
               $$SET quantum_flow.clock_override = 'garbage'$$))[3] <> '',
          'the refusal carries a detail');
SELECT throws_ok($$SET quantum_flow.clock_override = 'now'$$,
                 '22023', NULL, '''now'' is refused: it is not an instant');
SELECT throws_ok($$SET quantum_flow.clock_override = 'today'$$,
                 '22023', NULL, '''today'' is refused');
SELECT throws_ok($$SET quantum_flow.clock_override = 'infinity'$$,
                 '22023', NULL, '''infinity'' is refused');
SELECT throws_ok($$SET quantum_flow.clock_override = '-infinity'$$,
                 '22023', NULL, '''-infinity'' is refused');
SELECT throws_ok($$SET quantum_flow.clock_override =
                       '2025-02-30 00:00:00+00'$$,
                 '22023', NULL, 'an impossible date is refused');
SELECT throws_ok($$SELECT pg_catalog.set_config('quantum_flow.clock_override',
                                               'garbage', true)$$,
                 '22023', NULL, 'set_config refuses a garbage literal too');
SELECT throws_ok($$SELECT quantum_flow.set_clock('infinity')$$,
                 '22023', NULL, 'set_clock(''infinity'') is refused');
SELECT throws_ok($$SELECT quantum_flow.set_clock(NULL)$$,
                 '22004', NULL, 'set_clock(NULL) is refused');
SELECT throws_ok($$SELECT quantum_flow.advance_clock(NULL)$$,
                 '22004', NULL, 'advance_clock(NULL) is refused');
SELECT throws_ok($$SELECT quantum_flow.advance_clock('-1 second')$$,
                 '22023', NULL, 'a negative advance is refused');
SELECT throws_ok($$SELECT quantum_flow.advance_clock('1 day -25 hours')$$,
                 '22023', NULL,
                 'an interval that adds up to a step back is refused');
SELECT is(quantum_flow.now(), '2025-01-01 02:00:00+00'::timestamptz,
          'the refused changes left the clock where it was');

SAVEPOINT real_clock;
SELECT quantum_flow.reset_clock();
SELECT is((pg_temp.error_of(
              $$SELECT quantum_flow.advance_clock('1 second')$$))[1],
          '55000', 'advance_clock on the real clock is refused with 55000');
SELECT matches((pg_temp.error_of(
                   $$SELECT quantum_flow.advance_clock('1 second')$$))[4],
               'set_clock', 'and its hint says to call set_clock first');
ROLLBACK TO SAVEPOINT real_clock;

/* ------------------------------------------------------------------------
 * Who may move the clock
 * ------------------------------------------------------------------------ */

CREATE ROLE qf_test_clock_user NOLOGIN;
GRANT USAGE ON SCHEMA quantum_flow TO qf_test_clock_user;
GRANT EXECUTE ON FUNCTION quantum_flow.now(),
                          quantum_flow.set_clock(timestamptz),
                          quantum_flow.advance_clock(interval),
                          quantum_flow.reset_clock()
   TO qf_test_clock_user;

SELECT is(pg_temp.as_role('qf_test_clock_user',
                          'SELECT quantum_flow.now()')::timestamptz,
          '2025-01-01 02:00:00+00'::timestamptz,
          'an ordinary role reads the frozen clock');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock_user',
                          'SELECT quantum_flow.set_clock()')$$,
                 '42501', NULL, 'an ordinary role may not call set_clock');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock_user',
                          'SELECT quantum_flow.advance_clock(''1 hour'')')$$,
                 '42501', NULL, 'nor advance_clock');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock_user',
                          'SELECT quantum_flow.reset_clock()')$$,
                 '42501', NULL, 'nor reset_clock');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock_user',
                          'SET quantum_flow.clock_override = '
                          '''2020-01-01 00:00:00+00''')$$,
                 '42501', NULL, 'nor SET quantum_flow.clock_override');
SELECT throws_ok($$SELECT pg_temp.as_role('qf_test_clock_user',
                          'SELECT pg_catalog.set_config('
                          '''quantum_flow.clock_override'', '''', false)')$$,
                 '42501', NULL, 'nor set_config() on the parameter');
SELECT is(quantum_flow.now(), '2025-01-01 02:00:00+00'::timestamptz,
          'the clock did not move');

GRANT SET ON PARAMETER quantum_flow.clock_override TO qf_test_clock_user;

SELECT is(pg_temp.as_role('qf_test_clock_user',
                          'SELECT quantum_flow.set_clock('
                          '''2026-01-01 00:00:00+00'')')::timestamptz,
          '2026-01-01 00:00:00+00'::timestamptz,
          'granted SET ON PARAMETER, the role may call set_clock');
SELECT is(pg_temp.as_role('qf_test_clock_user',
                          'SELECT quantum_flow.advance_clock('
                          '''1 minute'')')::timestamptz,
          '2026-01-01 00:01:00+00'::timestamptz, 'and advance_clock');
SELECT lives_ok($$SELECT pg_temp.as_role('qf_test_clock_user',
                          'SET quantum_flow.clock_override = '
                          '''2027-01-01 00:00:00+00''')$$,
                'and SET quantum_flow.clock_override');
SELECT is(quantum_flow.now(), '2027-01-01 00:00:00+00'::timestamptz,
          'the clock is where the role set it');
SELECT lives_ok($$SELECT pg_temp.as_role('qf_test_clock_user',
                          'SELECT quantum_flow.reset_clock()')$$,
                'and reset_clock');
SELECT is(quantum_flow.now(), pg_catalog.now(),
          'the clock is real again');

/* ------------------------------------------------------------------------
 * The rows the engine writes carry the frozen time
 * ------------------------------------------------------------------------ */

SELECT quantum_flow.set_clock('2025-03-04 05:06:07.25+00');
SELECT quantum_flow.create_workflow('clocked');
SELECT quantum_flow.add_step('clocked', 'now_step');
SELECT quantum_flow.add_step('clocked', 'later_step', start_delay => 30);
SELECT quantum_flow.start_run('clocked', '{}',
                              '20000000-0000-0000-0000-000000000001');

SELECT is((SELECT created_at FROM quantum_flow.workflows
            WHERE workflow_slug = 'clocked'),
          '2025-03-04 05:06:07.25+00'::timestamptz,
          'workflows.created_at is the frozen time');
SELECT is((SELECT started_at FROM quantum_flow.workflow_runs
            WHERE run_id = '20000000-0000-0000-0000-000000000001'),
          '2025-03-04 05:06:07.25+00'::timestamptz,
          'workflow_runs.started_at is the frozen time');
SELECT results_eq(
    $$SELECT step_slug, queued_at, visible_at
        FROM quantum_flow.workflow_step_tasks
       WHERE run_id = '20000000-0000-0000-0000-000000000001'
       ORDER BY step_slug$$,
    $$VALUES ('later_step'::text, '2025-03-04 05:06:07.25+00'::timestamptz,
              '2025-03-04 05:06:37.25+00'::timestamptz),
             ('now_step', '2025-03-04 05:06:07.25+00',
              '2025-03-04 05:06:07.25+00')$$,
    'tasks are queued at the frozen time, visible after their start_delay');

SELECT quantum_flow.advance_clock('10 seconds');
SELECT results_eq(
    $$SELECT step_slug, lease_expires_at
        FROM quantum_flow.poll_tasks('clocked', 'w1', 10)
       ORDER BY step_slug$$,
    $$VALUES ('now_step'::text, '2025-03-04 05:07:17.25+00'::timestamptz)$$,
    'poll_tasks leases for the timeout from the frozen time, '
    'and the delayed task is not yet claimable');
SELECT is((SELECT started_at FROM quantum_flow.workflow_step_tasks
            WHERE run_id = '20000000-0000-0000-0000-000000000001'
              AND step_slug = 'now_step'),
          '2025-03-04 05:06:17.25+00'::timestamptz,
          'the task''s started_at is the frozen time of the poll');

SELECT * FROM finish();
ROLLBACK;
