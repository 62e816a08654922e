/*
 * 10_idempotency_key.sql
 *		pgTAP: the idempotency key of a task.
 *
 * The key is what a worker hands to the outside systems it calls, so
 * everything a user relies on is checked here: it is the documented MD5
 * expression byte for byte, whatever the text it hashes; it is declared
 * IMMUTABLE, STRICT and PARALLEL SAFE; the insert trigger fills a missing
 * key and keeps an explicit one; the unique index rejects a duplicate by
 * name; the edge values of task_index hash as expected; slugs that could
 * make two different tasks hash the same text are refused up front; and
 * the key a worker receives stays the same across attempts.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT plan(58);

SELECT quantum_flow.set_clock();

/* The documented expression, for comparison. */
CREATE FUNCTION pg_temp.expected_key(w text, s text, r uuid, i integer)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT md5(format('%s::%s::%s::%s', w, s, r, i)) $$;

/* ------------------------------------------------------------------------
 * Declaration
 * ------------------------------------------------------------------------ */

SELECT has_function('quantum_flow', 'compute_idempotency_key',
                    ARRAY['text', 'text', 'uuid', 'integer'],
                    'compute_idempotency_key(text, text, uuid, integer) '
                    'exists');
SELECT function_lang_is('quantum_flow', 'compute_idempotency_key',
                        ARRAY['text', 'text', 'uuid', 'integer'], 'c',
                        'compute_idempotency_key is written in C');
SELECT volatility_is('quantum_flow', 'compute_idempotency_key',
                     ARRAY['text', 'text', 'uuid', 'integer'], 'immutable',
                     'compute_idempotency_key is IMMUTABLE');
SELECT is_strict('quantum_flow', 'compute_idempotency_key',
                 ARRAY['text', 'text', 'uuid', 'integer'],
                 'compute_idempotency_key is STRICT');
SELECT is((SELECT p.proparallel::text FROM pg_proc AS p
            WHERE p.pronamespace = 'quantum_flow'::regnamespace
              AND p.proname = 'compute_idempotency_key'),
          's', 'compute_idempotency_key is PARALLEL SAFE');
SELECT function_returns('quantum_flow', 'compute_idempotency_key',
                        ARRAY['text', 'text', 'uuid', 'integer'],
                        'character varying',
                        'compute_idempotency_key returns varchar');
SELECT is(pg_typeof(quantum_flow.compute_idempotency_key(
              'wf', 's', '00000000-0000-0000-0000-000000000001', 0))::text,
          'character varying', 'the value it returns is a varchar');
SELECT is(quantum_flow.compute_idempotency_key(NULL, 's',
              '00000000-0000-0000-0000-000000000001', 0),
          NULL, 'STRICT: a NULL input gives a NULL key, not an error');

/* ------------------------------------------------------------------------
 * The value
 * ------------------------------------------------------------------------ */

SELECT matches(quantum_flow.compute_idempotency_key(
                   'wf', 's', '00000000-0000-0000-0000-000000000001', 0),
               '^[0-9a-f]{32}$', 'a key is 32 lower-case hex digits');
SELECT is(quantum_flow.compute_idempotency_key(
              'wf', 's', '00000000-0000-0000-0000-000000000001', 0),
          quantum_flow.compute_idempotency_key(
              'wf', 's', '00000000-0000-0000-0000-000000000001', 0),
          'the same inputs give the same key');
SELECT is(quantum_flow.compute_idempotency_key(
              'wf', 's', '00000000-0000-0000-0000-000000000001', 0)::text,
          md5('wf::s::00000000-0000-0000-0000-000000000001::0'),
          'the key is the MD5 of workflow::step::run::index');
SELECT isnt(quantum_flow.compute_idempotency_key(
                'wf2', 's', '00000000-0000-0000-0000-000000000001', 0),
            quantum_flow.compute_idempotency_key(
                'wf', 's', '00000000-0000-0000-0000-000000000001', 0),
            'another workflow slug gives another key');
SELECT isnt(quantum_flow.compute_idempotency_key(
                'wf', 's2', '00000000-0000-0000-0000-000000000001', 0),
            quantum_flow.compute_idempotency_key(
                'wf', 's', '00000000-0000-0000-0000-000000000001', 0),
            'another step slug gives another key');
SELECT isnt(quantum_flow.compute_idempotency_key(
                'wf', 's', '00000000-0000-0000-0000-000000000002', 0),
            quantum_flow.compute_idempotency_key(
                'wf', 's', '00000000-0000-0000-0000-000000000001', 0),
            'another run gives another key');
SELECT isnt(quantum_flow.compute_idempotency_key(
                'wf', 's', '00000000-0000-0000-0000-000000000001', 1),
            quantum_flow.compute_idempotency_key(
                'wf', 's', '00000000-0000-0000-0000-000000000001', 0),
            'another task index gives another key');

/* The run id is hashed in its canonical text form, whatever was typed. */
SELECT is(quantum_flow.compute_idempotency_key(
              'wf', 's', '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}', 7)::text,
          md5('wf::s::a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11::7'),
          'an upper-case, braced run id hashes as its canonical form');

/* Many generated inputs, over a wide range of task indexes. */
SELECT is((SELECT count(*)
             FROM generate_series(0, 999) AS g(i)
            WHERE quantum_flow.compute_idempotency_key(
                      'wf_' || g.i, 'step_' || (g.i % 17),
                      md5(g.i::text)::uuid, (g.i - 500) * 4294967)::text
                  IS DISTINCT FROM
                  pg_temp.expected_key('wf_' || g.i, 'step_' || (g.i % 17),
                                       md5(g.i::text)::uuid,
                                       (g.i - 500) * 4294967)),
          0::bigint,
          'the key equals the md5(format(...)) expression for 1000 inputs');
SELECT is((SELECT count(DISTINCT quantum_flow.compute_idempotency_key(
                      'wf', 'step', '00000000-0000-0000-0000-000000000001',
                      g.i))
             FROM generate_series(0, 999) AS g(i)),
          1000::bigint, '1000 task indexes of one step give 1000 keys');

/* Extreme task indexes, printed as %d and %s print them. */
SELECT is(quantum_flow.compute_idempotency_key(
              'wf', 's', '00000000-0000-0000-0000-000000000001',
              2147483647)::text,
          md5('wf::s::00000000-0000-0000-0000-000000000001::2147483647'),
          'task index 2147483647 hashes as its decimal text');
SELECT is(quantum_flow.compute_idempotency_key(
              'wf', 's', '00000000-0000-0000-0000-000000000001',
              -2147483648)::text,
          md5('wf::s::00000000-0000-0000-0000-000000000001::-2147483648'),
          'the function itself hashes a negative index as its decimal text');

/*
 * Text that no slug may contain still hashes exactly as the expression
 * does: the C function is callable with any text.
 */
SELECT is(quantum_flow.compute_idempotency_key(
              'a::b', 'c', '00000000-0000-0000-0000-000000000001', 0)::text,
          md5('a::b::c::00000000-0000-0000-0000-000000000001::0'),
          'a "::" inside the text is hashed as is');
SELECT is(quantum_flow.compute_idempotency_key(
              'it''s', 'say "hi"\n', '00000000-0000-0000-0000-000000000001',
              3)::text,
          pg_temp.expected_key('it''s', 'say "hi"\n',
                               '00000000-0000-0000-0000-000000000001', 3),
          'quotes and backslashes are hashed as is');
SELECT is(quantum_flow.compute_idempotency_key(
              'naïve_工作', 'étape_🚀',
              '00000000-0000-0000-0000-000000000001', 4)::text,
          pg_temp.expected_key('naïve_工作', 'étape_🚀',
                               '00000000-0000-0000-0000-000000000001', 4),
          'multibyte UTF-8 text is hashed byte for byte');
SELECT is(quantum_flow.compute_idempotency_key(
              '', '', '00000000-0000-0000-0000-000000000001', 0)::text,
          md5('::::00000000-0000-0000-0000-000000000001::0'),
          'empty strings are hashed as empty');
SELECT is(quantum_flow.compute_idempotency_key(
              repeat('x', 100000), 's',
              '00000000-0000-0000-0000-000000000001', 0)::text,
          pg_temp.expected_key(repeat('x', 100000), 's',
                               '00000000-0000-0000-0000-000000000001', 0),
          'a 100000-character text is hashed whole');

/* ------------------------------------------------------------------------
 * Slugs that could make the hashed text ambiguous are refused
 * ------------------------------------------------------------------------ */

SELECT throws_ok($$SELECT quantum_flow.create_workflow('')$$,
                 '22023', NULL, 'create_workflow refuses an empty slug');
SELECT throws_ok($$SELECT quantum_flow.create_workflow('a::b')$$,
                 '22023', NULL, 'create_workflow refuses a slug with "::"');
SELECT throws_ok($$SELECT quantum_flow.create_workflow('has space')$$,
                 '22023', NULL, 'create_workflow refuses a slug with a space');
SELECT throws_ok($$SELECT quantum_flow.create_workflow('1st')$$,
                 '22023', NULL,
                 'create_workflow refuses a slug starting with a digit');
SELECT throws_ok(format('SELECT quantum_flow.create_workflow(%L)',
                        repeat('w', 129)),
                 '22023', NULL,
                 'create_workflow refuses a 129-character slug');
SELECT is((quantum_flow.create_workflow(repeat('w', 128))).workflow_slug,
          repeat('w', 128), 'create_workflow accepts a 128-character slug');

SELECT quantum_flow.create_workflow('keys');
SELECT throws_ok($$SELECT quantum_flow.add_step('keys', '')$$,
                 '22023', NULL, 'add_step refuses an empty step slug');
SELECT throws_ok($$SELECT quantum_flow.add_step('keys', 'a::b')$$,
                 '22023', NULL, 'add_step refuses a step slug with "::"');
SELECT throws_ok($$SELECT quantum_flow.add_step('keys', 'a b')$$,
                 '22023', NULL, 'add_step refuses a step slug with a space');
SELECT throws_ok($$SELECT quantum_flow.add_step('keys', '9lives')$$,
                 '22023', NULL,
                 'add_step refuses a step slug starting with a digit');
SELECT throws_ok(format('SELECT quantum_flow.add_step(%L, %L)',
                        'keys', repeat('s', 129)),
                 '22023', NULL, 'add_step refuses a 129-character step slug');

/* ------------------------------------------------------------------------
 * The insert trigger and the unique index
 * ------------------------------------------------------------------------ */

/* Step b waits for a, so its state exists and has no tasks yet. */
SELECT quantum_flow.add_step('keys', 'a');
SELECT quantum_flow.add_step('keys', 'b', ARRAY['a']);
SELECT quantum_flow.start_run('keys', '{}',
                              '10000000-0000-0000-0000-000000000001');
SELECT quantum_flow.start_run('keys', '{}',
                              '10000000-0000-0000-0000-000000000002');

INSERT INTO quantum_flow.workflow_step_tasks
       (run_id, step_slug, task_index, workflow_slug)
VALUES ('10000000-0000-0000-0000-000000000001', 'b', 0, 'keys');
INSERT INTO quantum_flow.workflow_step_tasks
       (run_id, step_slug, task_index, workflow_slug, idempotency_key)
VALUES ('10000000-0000-0000-0000-000000000001', 'b', 1, 'keys', NULL),
       ('10000000-0000-0000-0000-000000000001', 'b', 2, 'keys',
        'custom-key-b-2');

SELECT is((SELECT idempotency_key::text FROM quantum_flow.workflow_step_tasks
            WHERE run_id = '10000000-0000-0000-0000-000000000001'
              AND step_slug = 'b' AND task_index = 0),
          md5('keys::b::10000000-0000-0000-0000-000000000001::0'),
          'an insert that omits the key gets the computed key');
SELECT is((SELECT idempotency_key::text FROM quantum_flow.workflow_step_tasks
            WHERE run_id = '10000000-0000-0000-0000-000000000001'
              AND step_slug = 'b' AND task_index = 1),
          md5('keys::b::10000000-0000-0000-0000-000000000001::1'),
          'an insert with a NULL key gets the computed key');
SELECT is((SELECT idempotency_key::text FROM quantum_flow.workflow_step_tasks
            WHERE run_id = '10000000-0000-0000-0000-000000000001'
              AND step_slug = 'b' AND task_index = 2),
          'custom-key-b-2', 'an explicit custom key is kept');

/* The engine's own tasks carry the computed key too. */
SELECT is((SELECT idempotency_key::text FROM quantum_flow.workflow_step_tasks
            WHERE run_id = '10000000-0000-0000-0000-000000000001'
              AND step_slug = 'a' AND task_index = 0),
          md5('keys::a::10000000-0000-0000-0000-000000000001::0'),
          'start_run gives the root task the computed key');
SELECT isnt((SELECT idempotency_key FROM quantum_flow.workflow_step_tasks
              WHERE run_id = '10000000-0000-0000-0000-000000000001'
                AND step_slug = 'a'),
            (SELECT idempotency_key FROM quantum_flow.workflow_step_tasks
              WHERE run_id = '10000000-0000-0000-0000-000000000002'
                AND step_slug = 'a'),
            'the same step in two runs has two keys');

SELECT throws_ok($$INSERT INTO quantum_flow.workflow_step_tasks
                          (run_id, step_slug, task_index, workflow_slug,
                           idempotency_key)
                   VALUES ('10000000-0000-0000-0000-000000000001', 'b', 3,
                           'keys', 'custom-key-b-2')$$,
                 '23505',
                 'duplicate key value violates unique constraint "workflow_step_tasks_idempotency_key_idx"',
                 'a duplicate custom key is a unique violation naming '
                 'the index');
SELECT throws_ok($$INSERT INTO quantum_flow.workflow_step_tasks
                          (run_id, step_slug, task_index, workflow_slug,
                           idempotency_key)
                   VALUES ('10000000-0000-0000-0000-000000000002', 'b', 0,
                           'keys',
                           md5('keys::b::10000000-0000-0000-0000-'
                               '000000000001::0'))$$,
                 '23505',
                 'duplicate key value violates unique constraint "workflow_step_tasks_idempotency_key_idx"',
                 'a custom key equal to another task''s computed key is '
                 'refused');
SELECT throws_ok($$UPDATE quantum_flow.workflow_step_tasks
                      SET idempotency_key = 'custom-key-b-2'
                    WHERE run_id = '10000000-0000-0000-0000-000000000001'
                      AND step_slug = 'b' AND task_index = 0$$,
                 '23505',
                 'duplicate key value violates unique constraint "workflow_step_tasks_idempotency_key_idx"',
                 'an update onto an existing key is refused too');

/* task_index at its edges, and below them. */
INSERT INTO quantum_flow.workflow_step_tasks
       (run_id, step_slug, task_index, workflow_slug)
VALUES ('10000000-0000-0000-0000-000000000002', 'b', 2147483647, 'keys');
SELECT is((SELECT idempotency_key::text FROM quantum_flow.workflow_step_tasks
            WHERE run_id = '10000000-0000-0000-0000-000000000002'
              AND step_slug = 'b' AND task_index = 2147483647),
          md5('keys::b::10000000-0000-0000-0000-000000000002::2147483647'),
          'task index 2147483647 gets its computed key');
SELECT throws_ok($$INSERT INTO quantum_flow.workflow_step_tasks
                          (run_id, step_slug, task_index, workflow_slug)
                   VALUES ('10000000-0000-0000-0000-000000000002', 'b', -1,
                           'keys')$$,
                 '23514', NULL, 'a negative task index violates the CHECK');
SELECT throws_ok($$INSERT INTO quantum_flow.workflow_step_tasks
                          (run_id, step_slug, task_index, workflow_slug)
                   VALUES ('10000000-0000-0000-0000-000000000002', 'b',
                           2147483648, 'keys')$$,
                 '22003', NULL, 'task index 2147483648 is out of range');
SELECT throws_ok($$INSERT INTO quantum_flow.workflow_step_tasks
                          (run_id, step_slug, task_index)
                   VALUES ('10000000-0000-0000-0000-000000000002', 'b', 5)$$,
                 '23502', NULL,
                 'a row missing a key input gets no key and is refused');
SELECT is((SELECT count(*) FROM quantum_flow.workflow_step_tasks
            WHERE run_id = '10000000-0000-0000-0000-000000000002'
              AND step_slug = 'b'),
          1::bigint, 'the refused inserts left no row behind');

/* ------------------------------------------------------------------------
 * The key a worker receives is the same on every attempt
 * ------------------------------------------------------------------------ */

CREATE TEMP TABLE claims AS
SELECT 1 AS round, c.*
  FROM quantum_flow.poll_tasks('keys', 'w1', 10) AS c;
SELECT quantum_flow.fail_task(c.run_id, c.step_slug, c.task_index, 'boom')
  FROM claims AS c
 WHERE c.step_slug = 'a';
SELECT quantum_flow.advance_clock('1 second');
INSERT INTO claims
SELECT 2, c.* FROM quantum_flow.poll_tasks('keys', 'w1', 10) AS c;

SELECT results_eq(
    $$SELECT round, run_id, attempt, idempotency_key::text
        FROM claims WHERE step_slug = 'a'
       ORDER BY round, run_id$$,
    $$VALUES (1, '10000000-0000-0000-0000-000000000001'::uuid, 1,
              md5('keys::a::10000000-0000-0000-0000-000000000001::0')),
             (1, '10000000-0000-0000-0000-000000000002'::uuid, 1,
              md5('keys::a::10000000-0000-0000-0000-000000000002::0')),
             (2, '10000000-0000-0000-0000-000000000001'::uuid, 2,
              md5('keys::a::10000000-0000-0000-0000-000000000001::0')),
             (2, '10000000-0000-0000-0000-000000000002'::uuid, 2,
              md5('keys::a::10000000-0000-0000-0000-000000000002::0'))$$,
    'poll_tasks hands out the computed key, the same on the second attempt');

/* ------------------------------------------------------------------------
 * The schema
 * ------------------------------------------------------------------------ */

SELECT col_type_is('quantum_flow', 'workflow_step_tasks', 'idempotency_key',
                   'character varying(64)',
                   'workflow_step_tasks.idempotency_key is varchar(64)');
SELECT col_not_null('quantum_flow', 'workflow_step_tasks', 'idempotency_key',
                    'workflow_step_tasks.idempotency_key is NOT NULL');
SELECT has_index('quantum_flow', 'workflow_step_tasks',
                 'workflow_step_tasks_idempotency_key_idx',
                 ARRAY['idempotency_key'],
                 'workflow_step_tasks_idempotency_key_idx indexes the key');
SELECT index_is_unique('quantum_flow', 'workflow_step_tasks',
                       'workflow_step_tasks_idempotency_key_idx',
                       'workflow_step_tasks_idempotency_key_idx is UNIQUE');
SELECT is_indexed('quantum_flow', 'workflow_step_tasks',
                  ARRAY['idempotency_key'],
                  'idempotency_key is indexed on its own');
SELECT is((SELECT i.indpred IS NULL FROM pg_index AS i
             JOIN pg_class AS c ON c.oid = i.indexrelid
            WHERE c.relnamespace = 'quantum_flow'::regnamespace
              AND c.relname = 'workflow_step_tasks_idempotency_key_idx'),
          true, 'the unique index is not partial: it covers every task');
SELECT col_type_is('quantum_flow', 'claimed_task', 'idempotency_key',
                   'character varying(64)',
                   'claimed_task.idempotency_key is varchar(64)');
SELECT has_trigger('quantum_flow', 'workflow_step_tasks',
                   'workflow_step_tasks_fill_idempotency_key',
                   'the trigger that fills missing keys exists');

SELECT * FROM finish();
ROLLBACK;
