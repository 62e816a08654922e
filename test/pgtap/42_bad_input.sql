/*
 * 42_bad_input.sql
 *		pgTAP: every public function refuses bad input, and writes nothing.
 *
 * Each call below is wrong in one way: a NULL for a required argument
 * (22004), a malformed slug, option, step type or definition document
 * (22023), a reference to a workflow, step, run or task that does not
 * exist (42704), or a definition that conflicts with an existing one
 * (42710).  Every refusal is checked for its SQLSTATE, and for leaving
 * every table of the extension with the rows it had: a bad call
 * accepted, even in part, would fail both checks.  The last section
 * checks that a batch with one bad element applies none of its elements,
 * and that the same batch without it applies all of them.
 */
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT plan(295);

SET LOCAL TimeZone = 'UTC';
SELECT quantum_flow.set_clock('2025-01-01 00:00:00+00');

/* Run id n of this file: 50000000-0000-0000-0000-00000000000n, in hex. */
CREATE FUNCTION pg_temp.r(n integer)
RETURNS uuid
LANGUAGE sql IMMUTABLE
AS $$
    SELECT ('50000000-0000-0000-0000-' || lpad(to_hex(n), 12, '0'))::uuid
$$;

/* The row count of every table of the extension, as one string. */
CREATE FUNCTION pg_temp.row_counts()
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_table     regclass;
    v_count     bigint;
    v_result    text[] := '{}';
BEGIN
    FOR v_table IN
        SELECT c.oid FROM pg_class AS c
         WHERE c.relnamespace = 'quantum_flow'::regnamespace
           AND c.relkind = 'r'
         ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT count(*) FROM %s', v_table) INTO v_count;
        v_result := v_result || (v_table::text || '=' || v_count);
    END LOOP;
    RETURN array_to_string(v_result, ', ');
END
$$;

/*
 * Two tests: p_sql fails with SQLSTATE p_state, and every table has the
 * rows it had before.
 */
CREATE FUNCTION pg_temp.refused(p_sql text, p_state text, p_description text)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    v_before text := pg_temp.row_counts();
BEGIN
    RETURN NEXT throws_ok(p_sql, p_state::char(5), NULL,
                          p_description || ' (' || p_state || ')');
    RETURN NEXT is(pg_temp.row_counts(), v_before,
                   p_description || ': no row changed');
END
$$;

/* ------------------------------------------------------------------------
 * Fixtures: a workflow with two started root tasks, a root map
 * workflow, and a workflow without steps
 * ------------------------------------------------------------------------ */

SELECT quantum_flow.define_workflow('bad', '{"steps": [
    {"slug": "a"},
    {"slug": "m", "type": "map", "depends_on": ["a"]}]}');
SELECT quantum_flow.create_workflow('rootmap');
SELECT quantum_flow.add_step('rootmap', 'items', step_type => 'map');
SELECT quantum_flow.create_workflow('no_steps');
SELECT quantum_flow.start_run('bad', '{}',
                              '50000000-0000-0000-0000-000000000001');
SELECT quantum_flow.start_run('bad', '{}',
                              '50000000-0000-0000-0000-000000000002');
SELECT count(*) FROM quantum_flow.poll_tasks('bad', 'w1', 10);

/* ------------------------------------------------------------------------
 * NULL for a required argument: 22004
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow(NULL)$$,
                       '22004', 'create_workflow: NULL workflow_slug');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('x', NULL)$$,
                       '22004', 'create_workflow: NULL max_attempts');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('x', 3, NULL)$$,
                       '22004', 'create_workflow: NULL base_delay');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.create_workflow('x', 3, 1, NULL)$$,
    '22004', 'create_workflow: NULL timeout');

SELECT pg_temp.refused($$SELECT quantum_flow.add_step(NULL, 's')$$,
                       '22004', 'add_step: NULL workflow_slug');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('bad', NULL)$$,
                       '22004', 'add_step: NULL step_slug');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('bad', 's', NULL)$$,
                       '22004', 'add_step: NULL depends_on');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', '{}', NULL)$$,
    '22004', 'add_step: NULL step_type');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', ARRAY[NULL])$$,
    '22004', 'add_step: a NULL element in depends_on');

SELECT pg_temp.refused($$SELECT quantum_flow.define_workflow(NULL, '{}')$$,
                       '22004', 'define_workflow: NULL workflow_slug');
SELECT pg_temp.refused($$SELECT quantum_flow.define_workflow('x', NULL)$$,
                       '22004', 'define_workflow: NULL definition');

SELECT pg_temp.refused($$SELECT quantum_flow.start_run(NULL)$$,
                       '22004', 'start_run: NULL workflow_slug');
SELECT pg_temp.refused($$SELECT quantum_flow.start_run('bad', NULL)$$,
                       '22004', 'start_run: NULL input');
SELECT pg_temp.refused($$SELECT quantum_flow.start_ready_steps(NULL)$$,
                       '22004', 'start_ready_steps: NULL run_id');

SELECT pg_temp.refused($$SELECT * FROM quantum_flow.poll_tasks(NULL)$$,
                       '22004', 'poll_tasks: NULL workflow_slug');
SELECT pg_temp.refused(
    $$SELECT * FROM quantum_flow.poll_tasks('bad', 'w', NULL)$$,
    '22004', 'poll_tasks: NULL batch_size');

SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(NULL, 'a', 0, 1, '1 minute')$$,
    '22004', 'extend_lease: NULL run_id');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(1), NULL, 0, 1, '1 minute')$$,
    '22004', 'extend_lease: NULL step_slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(1), 'a', NULL, 1,
          '1 minute')$$,
    '22004', 'extend_lease: NULL task_index');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(1), 'a', 0, NULL,
          '1 minute')$$,
    '22004', 'extend_lease: NULL attempt');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(1), 'a', 0, 1, NULL)$$,
    '22004', 'extend_lease: NULL lease');

SELECT pg_temp.refused($$SELECT quantum_flow.complete_task(NULL, 'a', 0)$$,
                       '22004', 'complete_task: NULL run_id');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_task(pg_temp.r(1), NULL, 0)$$,
    '22004', 'complete_task: NULL step_slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_task(pg_temp.r(1), 'a', NULL)$$,
    '22004', 'complete_task: NULL task_index');

SELECT pg_temp.refused($$SELECT quantum_flow.fail_task(NULL, 'a', 0, 'e')$$,
                       '22004', 'fail_task: NULL run_id');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.fail_task(pg_temp.r(1), NULL, 0, 'e')$$,
    '22004', 'fail_task: NULL step_slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.fail_task(pg_temp.r(1), 'a', NULL, 'e')$$,
    '22004', 'fail_task: NULL task_index');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.fail_task(pg_temp.r(1), 'a', 0, NULL)$$,
    '22004', 'fail_task: NULL error_message');

SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(NULL, '{a}', '{0}', '{1}')$$,
    '22004', 'complete_tasks: NULL run_ids');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1)], NULL, '{0}',
          '{1}')$$,
    '22004', 'complete_tasks: NULL step_slugs');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1)], '{a}', NULL,
          '{1}')$$,
    '22004', 'complete_tasks: NULL task_indexes');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1)], '{a}', '{0}',
          NULL)$$,
    '22004', 'complete_tasks: NULL outputs');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1), NULL], '{a,a}',
          '{0,0}', '{1,2}')$$,
    '22004', 'complete_tasks: a NULL run id in the batch');

SELECT pg_temp.refused($$SELECT quantum_flow.cancel_run(NULL)$$,
                       '22004', 'cancel_run: NULL run_id');
SELECT pg_temp.refused($$SELECT quantum_flow.prune_runs(NULL)$$,
                       '22004', 'prune_runs: NULL older_than');
SELECT pg_temp.refused($$SELECT quantum_flow.run_status(NULL)$$,
                       '22004', 'run_status: NULL run_id');
SELECT pg_temp.refused($$SELECT quantum_flow.set_clock(NULL)$$,
                       '22004', 'set_clock: NULL at');
SELECT pg_temp.refused($$SELECT quantum_flow.advance_clock(NULL)$$,
                       '22004', 'advance_clock: NULL interval');

/* The documented exception: the key function is STRICT. */
SELECT is(quantum_flow.compute_idempotency_key('bad', 'a', NULL, 0), NULL,
          'compute_idempotency_key is STRICT: NULL in, NULL out');

/* ------------------------------------------------------------------------
 * Slugs: 22023
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('')$$,
                       '22023', 'create_workflow: empty slug');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow(' ')$$,
                       '22023', 'create_workflow: blank slug');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('has space')$$,
                       '22023', 'create_workflow: slug with a space');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('a::b')$$,
                       '22023', 'create_workflow: slug with "::"');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('kebab-case')$$,
                       '22023', 'create_workflow: slug with a hyphen');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('1st')$$,
                       '22023', 'create_workflow: slug starting with a digit');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.create_workflow('naïve')$$,
    '22023', 'create_workflow: slug with a non-ASCII letter');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow(E'line\nbreak')$$,
                       '22023', 'create_workflow: slug with a newline');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.create_workflow(E'trailing\n')$$,
    '22023', 'create_workflow: slug with a trailing newline');
SELECT pg_temp.refused(format('SELECT quantum_flow.create_workflow(%L)',
                              repeat('w', 129)),
                       '22023', 'create_workflow: 129-character slug');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('bad', '')$$,
                       '22023', 'add_step: empty step slug');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('bad', 'a.b')$$,
                       '22023', 'add_step: step slug with a dot');
SELECT pg_temp.refused(format('SELECT quantum_flow.add_step(%L, %L)',
                              'bad', repeat('s', 129)),
                       '22023', 'add_step: 129-character step slug');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('', 's')$$,
                       '22023', 'add_step: empty workflow slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', '{"not a slug"}')$$,
    '22023', 'add_step: malformed dependency slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('', '{"steps": []}')$$,
    '22023', 'define_workflow: empty workflow slug');
SELECT pg_temp.refused(format('SELECT quantum_flow.define_workflow(%L, %L)',
                              repeat('d', 129), '{"steps": []}'),
                       '22023', 'define_workflow: 129-character slug');

/* ------------------------------------------------------------------------
 * Options: 22023
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('x', 0)$$,
                       '22023', 'create_workflow: max_attempts 0');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('x', -1)$$,
                       '22023', 'create_workflow: max_attempts -1');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('x', 3, -1)$$,
                       '22023', 'create_workflow: base_delay -1');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('x', 3, 1, 0)$$,
                       '22023', 'create_workflow: timeout 0');
SELECT pg_temp.refused($$SELECT quantum_flow.create_workflow('x', 3, 1, -60)$$,
                       '22023', 'create_workflow: timeout -60');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', max_attempts => 0)$$,
    '22023', 'add_step: max_attempts 0');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', base_delay => -1)$$,
    '22023', 'add_step: base_delay -1');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', timeout => 0)$$,
    '22023', 'add_step: timeout 0');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', start_delay => -1)$$,
    '22023', 'add_step: start_delay -1');

/* ------------------------------------------------------------------------
 * Step types and dependencies
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', step_type => 'parallel')$$,
    '22023', 'add_step: unknown step_type');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', step_type => 'MAP')$$,
    '22023', 'add_step: step_type is case-sensitive');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', step_type => '')$$,
    '22023', 'add_step: empty step_type');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', '{a,m}', 'map')$$,
    '22023', 'add_step: map step with two dependencies');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('bad', 's', '{s}')$$,
                       '22023', 'add_step: step depending on itself');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('bad', 's', '{a,a}')$$,
                       '22023', 'add_step: the same dependency twice');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 's', '{{a},{m}}')$$,
    '22023', 'add_step: two-dimensional depends_on');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('bad', 's', '{nope}')$$,
                       '42704', 'add_step: unknown dependency');
SELECT pg_temp.refused($$SELECT quantum_flow.add_step('nope', 's')$$,
                       '42704', 'add_step: unknown workflow');

/* ------------------------------------------------------------------------
 * Conflicting definitions: 42710
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused(
    $$SELECT quantum_flow.create_workflow('bad', 5)$$,
    '42710', 'create_workflow: existing workflow, other options');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 'a', step_type => 'map')$$,
    '42710', 'add_step: existing step, other type');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.add_step('bad', 'm', '{}', 'map')$$,
    '42710', 'add_step: existing step, other dependencies');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('bad',
          '{"steps": [{"slug": "a"}]}')$$,
    '42710', 'define_workflow: existing workflow, other steps');

/* ------------------------------------------------------------------------
 * Definition documents
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused($$SELECT quantum_flow.define_workflow('d', '[]')$$,
                       '22023', 'define_workflow: an array, not an object');
SELECT pg_temp.refused($$SELECT quantum_flow.define_workflow('d', '"steps"')$$,
                       '22023', 'define_workflow: a string, not an object');
SELECT pg_temp.refused($$SELECT quantum_flow.define_workflow('d', '42')$$,
                       '22023', 'define_workflow: a number, not an object');
SELECT pg_temp.refused($$SELECT quantum_flow.define_workflow('d', 'null')$$,
                       '22023', 'define_workflow: JSON null, not an object');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"stpes": []}')$$,
    '22023', 'define_workflow: unknown top-level key');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": {"slug": "a"}}')$$,
    '22023', 'define_workflow: steps is an object');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": "a"}')$$,
    '22023', 'define_workflow: steps is a string');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": ["a"]}')$$,
    '22023', 'define_workflow: a step is not an object');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{}]}')$$,
    '22023', 'define_workflow: a step without a slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": 1}]}')$$,
    '22023', 'define_workflow: a numeric slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d',
          '{"steps": [{"slug": null}]}')$$,
    '22023', 'define_workflow: a null slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d',
          '{"steps": [{"slug": "a b"}]}')$$,
    '22023', 'define_workflow: a malformed step slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "deps": []}]}')$$,
    '22023', 'define_workflow: unknown step key');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a"},
          {"slug": "a"}]}')$$,
    '22023', 'define_workflow: duplicate step slug');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "depends_on": "b"}, {"slug": "b"}]}')$$,
    '22023', 'define_workflow: depends_on is a string');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "depends_on": [1]}]}')$$,
    '22023', 'define_workflow: depends_on holds a number');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "type": "fanout"}]}')$$,
    '22023', 'define_workflow: unknown step type');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "type": ["map"]}]}')$$,
    '22023', 'define_workflow: step type is not a string');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "depends_on": ["a"]}]}')$$,
    '22023', 'define_workflow: self dependency');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "depends_on": ["b"]}, {"slug": "b", "depends_on": ["a"]}]}')$$,
    '22023', 'define_workflow: two-step cycle');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "root"},
          {"slug": "a", "depends_on": ["root", "c"]}, {"slug": "b",
          "depends_on": ["a"]}, {"slug": "c", "depends_on": ["b"]}]}')$$,
    '22023', 'define_workflow: three-step cycle behind a root');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a"},
          {"slug": "b"}, {"slug": "m", "type": "map", "depends_on": ["a",
          "b"]}]}')$$,
    '22023', 'define_workflow: map step with two dependencies');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "depends_on": ["ghost"]}]}')$$,
    '42704', 'define_workflow: unknown dependency');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"max_attempts": 0,
          "steps": [{"slug": "a"}]}')$$,
    '22023', 'define_workflow: max_attempts 0');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"timeout": 0,
          "steps": [{"slug": "a"}]}')$$,
    '22023', 'define_workflow: timeout 0');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"base_delay": -1,
          "steps": [{"slug": "a"}]}')$$,
    '22023', 'define_workflow: base_delay -1');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"max_attempts": "3",
          "steps": [{"slug": "a"}]}')$$,
    '22023', 'define_workflow: max_attempts as a string');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"max_attempts": 2.5,
          "steps": [{"slug": "a"}]}')$$,
    '22023', 'define_workflow: fractional max_attempts');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"timeout": 1e20,
          "steps": [{"slug": "a"}]}')$$,
    '22023', 'define_workflow: timeout beyond integer range');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "start_delay": -1}]}')$$,
    '22023', 'define_workflow: step start_delay -1');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "timeout": 0}]}')$$,
    '22023', 'define_workflow: step timeout 0');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a",
          "max_attempts": true}]}')$$,
    '22023', 'define_workflow: step max_attempts as a boolean');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.define_workflow('d', '{"steps": [{"slug": "a"},
          {"slug": "b", "depends_on": ["a"]}, {"slug": "c",
          "depends_on": ["b"], "base_delay": -5}]}')$$,
    '22023', 'define_workflow: a bad option on the last step');

/* ------------------------------------------------------------------------
 * Runs
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused($$SELECT quantum_flow.start_run('nope')$$,
                       '42704', 'start_run: unknown workflow');
SELECT pg_temp.refused($$SELECT quantum_flow.start_run('')$$,
                       '42704', 'start_run: empty workflow slug');
SELECT pg_temp.refused($$SELECT quantum_flow.start_run('no_steps')$$,
                       '22023', 'start_run: workflow without steps');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.start_run('rootmap', '{"a": 1}')$$,
    '22023', 'start_run: object input for a root map step');
SELECT pg_temp.refused($$SELECT quantum_flow.start_run('rootmap', '5')$$,
                       '22023', 'start_run: number input for a root map step');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.start_run('rootmap', 'null')$$,
    '22023', 'start_run: JSON null input for a root map step');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.start_run('bad', '{}', pg_temp.r(1))$$,
    '23505', 'start_run: a run id already in use');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.start_ready_steps(pg_temp.r(255))$$,
    '42704', 'start_ready_steps: unknown run');
SELECT pg_temp.refused($$SELECT quantum_flow.cancel_run(pg_temp.r(255))$$,
                       '42704', 'cancel_run: unknown run');
SELECT pg_temp.refused($$SELECT quantum_flow.run_status(pg_temp.r(255))$$,
                       '42704', 'run_status: unknown run');
SELECT pg_temp.refused($$SELECT quantum_flow.prune_runs('-1 second')$$,
                       '22023', 'prune_runs: negative interval');
SELECT pg_temp.refused($$SELECT quantum_flow.advance_clock('-1 second')$$,
                       '22023', 'advance_clock: negative interval');

/* ------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused($$SELECT * FROM quantum_flow.poll_tasks('nope')$$,
                       '42704', 'poll_tasks: unknown workflow');
SELECT pg_temp.refused(
    $$SELECT * FROM quantum_flow.poll_tasks('bad', 'w', 0)$$,
    '22023', 'poll_tasks: batch_size 0');
SELECT pg_temp.refused(
    $$SELECT * FROM quantum_flow.poll_tasks('bad', 'w', -1)$$,
    '22023', 'poll_tasks: batch_size -1');
SELECT pg_temp.refused(
    $$SELECT * FROM quantum_flow.poll_tasks('bad', 'w', 1, '0 seconds')$$,
    '22023', 'poll_tasks: lease 0');
SELECT pg_temp.refused(
    $$SELECT * FROM quantum_flow.poll_tasks('bad', 'w', 1, '-1 minute')$$,
    '22023', 'poll_tasks: negative lease');

SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(1), 'a', 0, 1, '0 seconds')$$,
    '22023', 'extend_lease: lease 0');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(1), 'a', 0, 1, '-1 minute')$$,
    '22023', 'extend_lease: negative lease');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(255), 'a', 0, 1,
          '1 minute')$$,
    '42704', 'extend_lease: unknown run');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.extend_lease(pg_temp.r(1), 'nope', 0, 1,
          '1 minute')$$,
    '42704', 'extend_lease: unknown step');

SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_task(pg_temp.r(255), 'a', 0)$$,
    '42704', 'complete_task: unknown run');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_task(pg_temp.r(1), 'nope', 0)$$,
    '42704', 'complete_task: unknown step');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_task(pg_temp.r(1), 'a', 2147483647)$$,
    '42704', 'complete_task: task index 2147483647');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_task(pg_temp.r(1), 'a', -1)$$,
    '42704', 'complete_task: negative task index');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_task(pg_temp.r(1), 'm', 0)$$,
    '42704', 'complete_task: a step that has no task yet');

SELECT pg_temp.refused(
    $$SELECT quantum_flow.fail_task(pg_temp.r(255), 'a', 0, 'e')$$,
    '42704', 'fail_task: unknown run');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.fail_task(pg_temp.r(1), 'nope', 0, 'e')$$,
    '42704', 'fail_task: unknown step');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.fail_task(pg_temp.r(1), 'a', 2147483647, 'e')$$,
    '42704', 'fail_task: task index 2147483647');

SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1), pg_temp.r(2)],
          '{a}', '{0}', '{1}')$$,
    '22023', 'complete_tasks: run_ids longer than the rest');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1)], '{a}', '{0,1}',
          '{1}')$$,
    '22023', 'complete_tasks: task_indexes longer than the rest');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1)], '{a}', '{0}',
          '{1,2}')$$,
    '22023', 'complete_tasks: outputs longer than the rest');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(ARRAY[pg_temp.r(1)], '{a}', '{0}',
          '{1}', '{1,1}')$$,
    '22023', 'complete_tasks: attempts longer than the rest');

/* ------------------------------------------------------------------------
 * A batch with one unknown element applies nothing
 * ------------------------------------------------------------------------ */

SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(
          ARRAY[pg_temp.r(1), pg_temp.r(2), pg_temp.r(2)],
          '{a,a,nope}', '{0,0,0}', '{"1","2","3"}')$$,
    '42704', 'complete_tasks: one unknown element in three');
SELECT pg_temp.refused(
    $$SELECT quantum_flow.complete_tasks(
          ARRAY[pg_temp.r(255), pg_temp.r(1)],
          '{a,a}', '{0,0}', '{"1","2"}')$$,
    '42704', 'complete_tasks: an unknown run first in the batch');
SELECT results_eq(
    $$SELECT run_id, status, output
        FROM quantum_flow.workflow_step_tasks
       WHERE step_slug = 'a'
       ORDER BY run_id$$,
    $$VALUES (pg_temp.r(1)::uuid, 'started'::text,
              NULL::jsonb),
             (pg_temp.r(2), 'started', NULL)$$,
    'the known elements of the refused batches were not applied');
SELECT is(quantum_flow.complete_tasks('{}', '{}', '{}', '{}'), 0,
          'an empty batch is no error and applies nothing');
SELECT is(quantum_flow.complete_tasks(
              ARRAY[pg_temp.r(1), pg_temp.r(2)],
              '{a,a}', '{0,0}', '{"[1]","[2, 3]"}'),
          2, 'the same batch without the bad element applies both');
SELECT results_eq(
    $$SELECT run_id, step_slug, status, initial_tasks
        FROM quantum_flow.workflow_step_states
       WHERE step_slug = 'm'
       ORDER BY run_id$$,
    $$VALUES (pg_temp.r(1)::uuid, 'm'::text,
              'started'::text, 1),
             (pg_temp.r(2), 'm', 'started', 2)$$,
    'and starts the map steps over the outputs');

SELECT * FROM finish();
ROLLBACK;
