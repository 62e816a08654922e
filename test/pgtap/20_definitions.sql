--
-- 20_definitions: defining workflows
--
-- create_workflow, add_step and define_workflow: the rows they write
-- (step_index in insertion order, deps_count, options left NULL when they
-- inherit the workflow's), idempotence (an identical repeat returns the
-- existing row and changes nothing, a conflicting one is duplicate_object),
-- and every invalid definition with the SQLSTATE the contract gives it:
-- 42704 for a reference to something that does not exist, 22023 for the
-- rest, 22004 for a NULL where a value is required.
--
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SET LOCAL timezone = 'UTC';
SELECT quantum_flow.set_clock();
SELECT plan(94);

-- ----------------------------------------------------------------------
-- create_workflow
-- ----------------------------------------------------------------------

SELECT results_eq(
    $$SELECT workflow_slug, max_attempts, base_delay, timeout, created_at
        FROM quantum_flow.create_workflow('orders')$$,
    $$VALUES ('orders', 3, 1, 60, '2025-01-01 00:00:00+00'::timestamptz)$$,
    'create_workflow: defaults are 3 attempts, 1 s base delay, 60 s timeout');

SELECT results_eq(
    $$SELECT workflow_slug, max_attempts, base_delay, timeout
        FROM quantum_flow.create_workflow('billing', 5, 0, 30)$$,
    $$VALUES ('billing', 5, 0, 30)$$,
    'create_workflow: explicit options, base_delay 0 allowed');

SELECT quantum_flow.advance_clock('1 hour');

SELECT results_eq(
    $$SELECT workflow_slug, max_attempts, base_delay, timeout, created_at
        FROM quantum_flow.create_workflow('orders', 3, 1, 60)$$,
    $$VALUES ('orders', 3, 1, 60, '2025-01-01 00:00:00+00'::timestamptz)$$,
    'create_workflow: an identical repeat returns the existing row');

SELECT is(
    (SELECT count(*) FROM quantum_flow.workflows
      WHERE workflow_slug IN ('orders', 'billing')),
    2::bigint,
    'create_workflow: an identical repeat adds no row');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('orders', 4)$$,
    '42710', NULL,
    'create_workflow: another max_attempts for an existing workflow is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('orders', 3, 1, 61)$$,
    '42710', NULL,
    'create_workflow: another timeout for an existing workflow is 42710');

SELECT results_eq(
    $$SELECT max_attempts, base_delay, timeout, created_at
        FROM quantum_flow.workflows WHERE workflow_slug = 'orders'$$,
    $$VALUES (3, 1, 60, '2025-01-01 00:00:00+00'::timestamptz)$$,
    'create_workflow: a conflicting repeat leaves the workflow as it was');

SELECT lives_ok(
    $$SELECT quantum_flow.create_workflow('_A' || repeat('z', 126))$$,
    'create_workflow: a 128-character slug starting with _ is valid');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow(repeat('z', 129))$$,
    '22023', NULL,
    'create_workflow: a 129-character slug is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('9lives')$$,
    '22023', NULL,
    'create_workflow: a slug starting with a digit is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('my-flow')$$,
    '22023', NULL,
    'create_workflow: a slug with a hyphen is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('')$$,
    '22023', NULL,
    'create_workflow: an empty slug is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('w', 0)$$,
    '22023', NULL,
    'create_workflow: max_attempts 0 is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('w', 3, -1)$$,
    '22023', NULL,
    'create_workflow: a negative base_delay is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('w', 3, 1, 0)$$,
    '22023', NULL,
    'create_workflow: timeout 0 is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow(NULL)$$,
    '22004', NULL,
    'create_workflow: a NULL slug is 22004');

SELECT throws_ok(
    $$SELECT quantum_flow.create_workflow('w', NULL)$$,
    '22004', NULL,
    'create_workflow: a NULL max_attempts is 22004');

SELECT is(
    (SELECT count(*) FROM quantum_flow.workflows WHERE workflow_slug = 'w'),
    0::bigint,
    'create_workflow: rejected calls wrote nothing');

-- ----------------------------------------------------------------------
-- add_step
-- ----------------------------------------------------------------------

SELECT results_eq(
    $$SELECT workflow_slug, step_slug, step_index, step_type, deps_count,
             max_attempts, base_delay, timeout, start_delay, created_at
        FROM quantum_flow.add_step('orders', 'fetch')$$,
    $$VALUES ('orders', 'fetch', 0, 'single', 0, NULL::int, NULL::int,
              NULL::int, NULL::int, '2025-01-01 01:00:00+00'::timestamptz)$$,
    'add_step: a root single step, index 0, options NULL (inherited)');

SELECT results_eq(
    $$SELECT step_slug, step_index, step_type, deps_count,
             max_attempts, base_delay, timeout, start_delay
        FROM quantum_flow.add_step('orders', 'parse', ARRAY['fetch'], 'map',
                                   5, 2, 30, 0)$$,
    $$VALUES ('parse', 1, 'map', 1, 5, 2, 30, 0)$$,
    'add_step: a dependent map step with all options set');

SELECT results_eq(
    $$SELECT step_slug, step_index, step_type, deps_count,
             max_attempts, base_delay, timeout, start_delay
        FROM quantum_flow.add_step('orders', 'store',
                                   ARRAY['parse', 'fetch'],
                                   start_delay => 15)$$,
    $$VALUES ('store', 2, 'single', 2, NULL::int, NULL::int, NULL::int, 15)$$,
    'add_step: a step with two dependencies and only start_delay set');

SELECT results_eq(
    $$SELECT step_slug, dep_slug FROM quantum_flow.workflow_step_deps
       WHERE workflow_slug = 'orders' ORDER BY step_slug, dep_slug$$,
    $$VALUES ('parse', 'fetch'), ('store', 'fetch'), ('store', 'parse')$$,
    'add_step: one dependency row per dependency');

SELECT results_eq(
    $$SELECT step_slug, step_index, deps_count, start_delay, created_at
        FROM quantum_flow.add_step('orders', 'store',
                                   ARRAY['fetch', 'parse'],
                                   start_delay => 15)$$,
    $$VALUES ('store', 2, 2, 15, '2025-01-01 01:00:00+00'::timestamptz)$$,
    'add_step: an identical repeat (dependencies in another order) returns the existing row');

SELECT results_eq(
    $$SELECT (SELECT count(*) FROM quantum_flow.workflow_steps
               WHERE workflow_slug = 'orders'),
             (SELECT count(*) FROM quantum_flow.workflow_step_deps
               WHERE workflow_slug = 'orders')$$,
    $$VALUES (3::bigint, 3::bigint)$$,
    'add_step: an identical repeat adds no step and no dependency');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'store', ARRAY['fetch'],
                                   start_delay => 15)$$,
    '42710', NULL,
    'add_step: other dependencies for an existing step are 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'fetch', step_type => 'map')$$,
    '42710', NULL,
    'add_step: another type for an existing step is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'parse', ARRAY['fetch'], 'map',
                                   5, 2, 31, 0)$$,
    '42710', NULL,
    'add_step: another timeout for an existing step is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'fetch', timeout => 60)$$,
    '42710', NULL,
    'add_step: setting an option an existing step inherits is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'parse', ARRAY['fetch'], 'map')$$,
    '42710', NULL,
    'add_step: leaving out options an existing step sets is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('nowhere', 'fetch')$$,
    '42704', NULL,
    'add_step: an unknown workflow is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', ARRAY['pack'])$$,
    '42704', NULL,
    'add_step: an unknown dependency is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'bad slug')$$,
    '22023', NULL,
    'add_step: an invalid step slug is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', ARRAY['fe-tch'])$$,
    '22023', NULL,
    'add_step: an invalid dependency slug is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', step_type => 'batch')$$,
    '22023', NULL,
    'add_step: an unknown step_type is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', ARRAY['ship'])$$,
    '22023', NULL,
    'add_step: a dependency on itself is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', ARRAY['fetch', 'parse'],
                                   'map')$$,
    '22023', NULL,
    'add_step: a map step with two dependencies is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship',
                                   ARRAY['fetch', 'fetch'])$$,
    '22023', NULL,
    'add_step: a dependency listed twice is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', max_attempts => 0)$$,
    '22023', NULL,
    'add_step: max_attempts 0 is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', base_delay => -1)$$,
    '22023', NULL,
    'add_step: a negative base_delay is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', timeout => 0)$$,
    '22023', NULL,
    'add_step: timeout 0 is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', start_delay => -1)$$,
    '22023', NULL,
    'add_step: a negative start_delay is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', NULL)$$,
    '22004', NULL,
    'add_step: a NULL step slug is 22004');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', NULL)$$,
    '22004', NULL,
    'add_step: a NULL depends_on is 22004');

SELECT throws_ok(
    $$SELECT quantum_flow.add_step('orders', 'ship', step_type => NULL)$$,
    '22004', NULL,
    'add_step: a NULL step_type is 22004');

SELECT results_eq(
    $$SELECT step_slug, step_index, step_type, deps_count, max_attempts,
             base_delay, timeout, start_delay
        FROM quantum_flow.workflow_steps
       WHERE workflow_slug = 'orders' ORDER BY step_index$$,
    $$VALUES ('fetch', 0, 'single', 0, NULL::int, NULL::int, NULL::int,
              NULL::int),
             ('parse', 1, 'map', 1, 5, 2, 30, 0),
             ('store', 2, 'single', 2, NULL, NULL, NULL, 15)$$,
    'add_step: rejected calls left the steps as they were');

-- ----------------------------------------------------------------------
-- define_workflow
-- ----------------------------------------------------------------------

SELECT quantum_flow.advance_clock('1 hour');

-- Listed leaf first: the engine orders the steps by their dependencies.
SELECT results_eq(
    $$SELECT workflow_slug, max_attempts, base_delay, timeout, created_at
        FROM quantum_flow.define_workflow('etl', '{
            "max_attempts": 4, "base_delay": 2, "timeout": 90,
            "steps": [
                {"slug": "load", "depends_on": ["transform", "audit"]},
                {"slug": "transform", "depends_on": ["extract"],
                 "type": "map", "max_attempts": 5, "base_delay": 3,
                 "timeout": 30, "start_delay": 10},
                {"slug": "audit", "depends_on": ["extract"],
                 "max_attempts": null},
                {"slug": "extract"}]}')$$,
    $$VALUES ('etl', 4, 2, 90, '2025-01-01 02:00:00+00'::timestamptz)$$,
    'define_workflow: returns the workflow row with its options');

SELECT results_eq(
    $$SELECT step_slug, step_index, step_type, deps_count, max_attempts,
             base_delay, timeout, start_delay
        FROM quantum_flow.workflow_steps
       WHERE workflow_slug = 'etl' ORDER BY step_index$$,
    $$VALUES ('extract', 0, 'single', 0, NULL::int, NULL::int, NULL::int,
              NULL::int),
             ('transform', 1, 'map', 1, 5, 3, 30, 10),
             ('audit', 2, 'single', 1, NULL, NULL, NULL, NULL),
             ('load', 3, 'single', 2, NULL, NULL, NULL, NULL)$$,
    'define_workflow: steps in any order get indexes in dependency order, unset options NULL');

SELECT results_eq(
    $$SELECT step_slug, dep_slug FROM quantum_flow.workflow_step_deps
       WHERE workflow_slug = 'etl' ORDER BY step_slug, dep_slug$$,
    $$VALUES ('audit', 'extract'), ('load', 'audit'), ('load', 'transform'),
             ('transform', 'extract')$$,
    'define_workflow: the dependencies are recorded');

SELECT quantum_flow.advance_clock('1 minute');

SELECT results_eq(
    $$SELECT workflow_slug, max_attempts, base_delay, timeout, created_at
        FROM quantum_flow.define_workflow('etl', '{
            "max_attempts": 4, "base_delay": 2, "timeout": 90,
            "steps": [
                {"slug": "load", "depends_on": ["transform", "audit"]},
                {"slug": "transform", "depends_on": ["extract"],
                 "type": "map", "max_attempts": 5, "base_delay": 3,
                 "timeout": 30, "start_delay": 10},
                {"slug": "audit", "depends_on": ["extract"],
                 "max_attempts": null},
                {"slug": "extract"}]}')$$,
    $$VALUES ('etl', 4, 2, 90, '2025-01-01 02:00:00+00'::timestamptz)$$,
    'define_workflow: an identical repeat returns the existing row');

SELECT lives_ok(
    $$SELECT quantum_flow.define_workflow('etl', '{
            "max_attempts": 4, "base_delay": 2, "timeout": 90,
            "steps": [
                {"slug": "extract"},
                {"slug": "audit", "depends_on": ["extract"]},
                {"slug": "transform", "depends_on": ["extract"],
                 "type": "map", "max_attempts": 5, "base_delay": 3,
                 "timeout": 30, "start_delay": 10},
                {"slug": "load", "depends_on": ["audit", "transform"]}]}')$$,
    'define_workflow: the same DAG listed in another order is a repeat too');

SELECT results_eq(
    $$SELECT step_slug, step_index, created_at
        FROM quantum_flow.workflow_steps
       WHERE workflow_slug = 'etl' ORDER BY step_index$$,
    $$VALUES ('extract', 0, '2025-01-01 02:00:00+00'::timestamptz),
             ('transform', 1, '2025-01-01 02:00:00+00'),
             ('audit', 2, '2025-01-01 02:00:00+00'),
             ('load', 3, '2025-01-01 02:00:00+00')$$,
    'define_workflow: repeats changed no step');

SELECT is(
    (SELECT count(*) FROM quantum_flow.workflow_step_deps
      WHERE workflow_slug = 'etl'),
    4::bigint,
    'define_workflow: repeats added no dependency');

SELECT results_eq(
    $$SELECT workflow_slug, max_attempts, base_delay, timeout
        FROM quantum_flow.define_workflow('tiny',
                                          '{"steps": [{"slug": "only"}]}')$$,
    $$VALUES ('tiny', 3, 1, 60)$$,
    'define_workflow: workflow options default like create_workflow');

SELECT results_eq(
    $$SELECT step_slug, step_index, step_type, deps_count, max_attempts
        FROM quantum_flow.workflow_steps WHERE workflow_slug = 'tiny'$$,
    $$VALUES ('only', 0, 'single', 0, NULL::int)$$,
    'define_workflow: a step with only a slug is a root single step');

-- Conflicting repeats.
SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('tiny',
            '{"timeout": 61, "steps": [{"slug": "only"}]}')$$,
    '42710', NULL,
    'define_workflow: another workflow option is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('tiny',
            '{"steps": [{"slug": "only", "base_delay": 5}]}')$$,
    '42710', NULL,
    'define_workflow: another step option is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('tiny',
            '{"steps": [{"slug": "only", "type": "map"}]}')$$,
    '42710', NULL,
    'define_workflow: another step type is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('tiny',
            '{"steps": [{"slug": "only"},
                        {"slug": "more", "depends_on": ["only"]}]}')$$,
    '42710', NULL,
    'define_workflow: an extra step is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('etl', '{
            "max_attempts": 4, "base_delay": 2, "timeout": 90,
            "steps": [
                {"slug": "extract"},
                {"slug": "transform", "depends_on": ["extract"],
                 "type": "map", "max_attempts": 5, "base_delay": 3,
                 "timeout": 30, "start_delay": 10},
                {"slug": "load", "depends_on": ["transform"]}]}')$$,
    '42710', NULL,
    'define_workflow: a missing step is 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('etl', '{
            "max_attempts": 4, "base_delay": 2, "timeout": 90,
            "steps": [
                {"slug": "extract"},
                {"slug": "audit", "depends_on": ["extract"]},
                {"slug": "transform", "depends_on": ["extract"],
                 "type": "map", "max_attempts": 5, "base_delay": 3,
                 "timeout": 30, "start_delay": 10},
                {"slug": "load", "depends_on": ["transform"]}]}')$$,
    '42710', NULL,
    'define_workflow: other dependencies for a step are 42710');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('orders',
            '{"steps": [{"slug": "fetch"}]}')$$,
    '42710', NULL,
    'define_workflow: a workflow built with add_step and other steps is 42710');

SELECT results_eq(
    $$SELECT (SELECT count(*) FROM quantum_flow.workflow_steps
               WHERE workflow_slug IN ('etl', 'tiny')),
             (SELECT count(*) FROM quantum_flow.workflow_step_deps
               WHERE workflow_slug IN ('etl', 'tiny'))$$,
    $$VALUES (5::bigint, 4::bigint)$$,
    'define_workflow: conflicting repeats changed nothing');

-- Invalid definitions: 22023.
SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '{"steps": [
            {"slug": "a", "depends_on": ["b"]},
            {"slug": "b", "depends_on": ["a"]}]}')$$,
    '22023', NULL,
    'define_workflow: a two-step cycle is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '{"steps": [
            {"slug": "root"},
            {"slug": "a", "depends_on": ["root", "c"]},
            {"slug": "b", "depends_on": ["a"]},
            {"slug": "c", "depends_on": ["b"]}]}')$$,
    '22023', NULL,
    'define_workflow: a three-step cycle below a valid root is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '{"steps": [
            {"slug": "a", "depends_on": ["a"]}]}')$$,
    '22023', NULL,
    'define_workflow: a step depending on itself is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '{"steps": [
            {"slug": "a"}, {"slug": "b"},
            {"slug": "m", "type": "map", "depends_on": ["a", "b"]}]}')$$,
    '22023', NULL,
    'define_workflow: a map step with two dependencies is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '[{"slug": "a"}]')$$,
    '22023', NULL,
    'define_workflow: a definition that is not an object is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '{"steps": {"slug": "a"}}')$$,
    '22023', NULL,
    'define_workflow: "steps" that is not an array is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '{"steps": ["a"]}')$$,
    '22023', NULL,
    'define_workflow: a step that is not an object is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"depends_on": []}]}')$$,
    '22023', NULL,
    'define_workflow: a step without a slug is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', '{"steps": [{"slug": 7}]}')$$,
    '22023', NULL,
    'define_workflow: a slug that is not a string is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "no spaces"}]}')$$,
    '22023', NULL,
    'define_workflow: an invalid step slug is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc-1',
            '{"steps": [{"slug": "a"}]}')$$,
    '22023', NULL,
    'define_workflow: an invalid workflow slug is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a"}, {"slug": "a"}]}')$$,
    '22023', NULL,
    'define_workflow: a step slug defined twice is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "type": "fanout"}]}')$$,
    '22023', NULL,
    'define_workflow: an unknown step type is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"retries": 3, "steps": [{"slug": "a"}]}')$$,
    '22023', NULL,
    'define_workflow: an unknown key in the definition is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "needs": ["b"]}]}')$$,
    '22023', NULL,
    'define_workflow: an unknown key in a step is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "depends_on": "b"}]}')$$,
    '22023', NULL,
    'define_workflow: depends_on that is not an array is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "timeout": 1.5}]}')$$,
    '22023', NULL,
    'define_workflow: a fractional step option is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "max_attempts": "3"}]}')$$,
    '22023', NULL,
    'define_workflow: a step option given as a string is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "start_delay": -5}]}')$$,
    '22023', NULL,
    'define_workflow: a negative start_delay is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "max_attempts": 0}]}')$$,
    '22023', NULL,
    'define_workflow: step max_attempts 0 is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"timeout": 0, "steps": [{"slug": "a"}]}')$$,
    '22023', NULL,
    'define_workflow: workflow timeout 0 is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"base_delay": "1", "steps": [{"slug": "a"}]}')$$,
    '22023', NULL,
    'define_workflow: a workflow option given as a string is 22023');

-- References to what does not exist: 42704.
SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc',
            '{"steps": [{"slug": "a", "depends_on": ["ghost"]}]}')$$,
    '42704', NULL,
    'define_workflow: an unknown dependency is 42704');

-- NULLs: 22004.
SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('cyc', NULL)$$,
    '22004', NULL,
    'define_workflow: a NULL definition is 22004');

SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow(NULL, '{"steps": []}')$$,
    '22004', NULL,
    'define_workflow: a NULL workflow slug is 22004');

SELECT is(
    (SELECT count(*) FROM quantum_flow.workflows
      WHERE workflow_slug IN ('cyc', 'cyc-1')),
    0::bigint,
    'define_workflow: no rejected definition left a workflow behind');

-- A step found invalid only when it is added, after the workflow row.
SELECT throws_ok(
    $$SELECT quantum_flow.define_workflow('late', '{"steps": [
            {"slug": "a"}, {"slug": "b", "depends_on": ["a"],
                            "type": "batch"}]}')$$,
    '22023', NULL,
    'define_workflow: an invalid type on the second step is 22023');

-- The definitions can be run: start_run needs a known workflow with steps.
SELECT throws_ok(
    $$SELECT quantum_flow.start_run('nowhere')$$,
    '42704', NULL,
    'start_run: an unknown workflow is 42704');

SELECT throws_ok(
    $$SELECT quantum_flow.start_run('billing')$$,
    '22023', NULL,
    'start_run: a workflow without steps is 22023');

SELECT throws_ok(
    $$SELECT quantum_flow.start_run('etl', NULL)$$,
    '22004', NULL,
    'start_run: a NULL input is 22004');

SELECT lives_ok(
    $$SELECT quantum_flow.define_workflow('each',
            '{"steps": [{"slug": "item", "type": "map"}]}')$$,
    'define_workflow: a root map step');

SELECT throws_ok(
    $$SELECT quantum_flow.start_run('each', '{"not": "an array"}')$$,
    '22023', NULL,
    'start_run: a root map step needs an array input (22023)');

SELECT * FROM finish();
ROLLBACK;
