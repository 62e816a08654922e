-- Smoke: the extension installs and its core objects exist.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT plan(3);
SELECT has_table('quantum_flow', 'workflow_step_tasks', 'task table exists');
SELECT has_function('quantum_flow', 'start_ready_steps', ARRAY['uuid'], 'start_ready_steps exists');
SELECT is(quantum_flow.compute_idempotency_key('wf', 'step', '00000000-0000-0000-0000-000000000001', 0)::text,
          md5('wf::step::00000000-0000-0000-0000-000000000001::0'), 'key equals md5 expression');
SELECT * FROM finish();
ROLLBACK;
