--
-- idempotency: the task idempotency key
--
-- The key is the MD5 of workflow::step::run::task_index, computed in C,
-- equal to the SQL md5() expression, filled in by a trigger when a task is
-- inserted without one, and unique across the table.
--
CREATE EXTENSION IF NOT EXISTS quantum_flow;

-- The C function and the SQL expression agree.
SELECT quantum_flow.compute_idempotency_key(
           'wf', 'step', '00000000-0000-0000-0000-000000000001', 0) AS key,
       quantum_flow.compute_idempotency_key(
           'wf', 'step', '00000000-0000-0000-0000-000000000001', 0)
       = md5('wf::step::00000000-0000-0000-0000-000000000001::0') AS same;

-- Each input changes the key.
SELECT count(DISTINCT k) AS distinct_keys
  FROM (VALUES
    (quantum_flow.compute_idempotency_key('wf', 's', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 0)),
    (quantum_flow.compute_idempotency_key('wg', 's', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 0)),
    (quantum_flow.compute_idempotency_key('wf', 't', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 0)),
    (quantum_flow.compute_idempotency_key('wf', 's', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 0)),
    (quantum_flow.compute_idempotency_key('wf', 's', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1))
  ) AS v(k);

-- Upper-case UUID input is canonicalized, as uuid_out would.
SELECT quantum_flow.compute_idempotency_key(
           'wf', 's', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 7)
       = md5('wf::s::a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11::7') AS canonical;

-- STRICT: a NULL input gives NULL.
SELECT quantum_flow.compute_idempotency_key(NULL, 's', gen_random_uuid(), 0)
       IS NULL AS null_in_null_out;

-- The trigger fills a missing key; an explicit key is kept.
SELECT quantum_flow.set_clock();
SELECT workflow_slug FROM quantum_flow.create_workflow('keys');
SELECT step_slug FROM quantum_flow.add_step('keys', 'only');
INSERT INTO quantum_flow.workflow_runs (run_id, workflow_slug)
VALUES ('00000000-0000-0000-0000-00000000000a', 'keys');
INSERT INTO quantum_flow.workflow_step_states (run_id, step_slug, workflow_slug)
VALUES ('00000000-0000-0000-0000-00000000000a', 'only', 'keys');
INSERT INTO quantum_flow.workflow_step_tasks
       (run_id, step_slug, task_index, workflow_slug)
VALUES ('00000000-0000-0000-0000-00000000000a', 'only', 0, 'keys');
INSERT INTO quantum_flow.workflow_step_tasks
       (run_id, step_slug, task_index, workflow_slug, idempotency_key)
VALUES ('00000000-0000-0000-0000-00000000000a', 'only', 1, 'keys', 'custom-key');
SELECT task_index, idempotency_key,
       idempotency_key = md5('keys::only::00000000-0000-0000-0000-00000000000a::'
                             || task_index) AS computed
  FROM quantum_flow.workflow_step_tasks
 ORDER BY task_index;

-- A second task with the same key is a unique violation naming the index.
DO $$
DECLARE
    v_constraint text;
BEGIN
    INSERT INTO quantum_flow.workflow_step_tasks
           (run_id, step_slug, task_index, workflow_slug, idempotency_key)
    VALUES ('00000000-0000-0000-0000-00000000000a', 'only', 2, 'keys',
            'custom-key');
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
    RAISE NOTICE 'SQLSTATE %, index %', SQLSTATE, v_constraint;
END
$$;

-- A negative task_index is rejected by the table.
INSERT INTO quantum_flow.workflow_step_tasks
       (run_id, step_slug, task_index, workflow_slug)
VALUES ('00000000-0000-0000-0000-00000000000a', 'only', -1, 'keys');

DELETE FROM quantum_flow.workflow_runs;
SELECT quantum_flow.reset_clock();
