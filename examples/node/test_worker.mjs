// test_worker.mjs: end-to-end test of quantum_flow_worker.mjs.
//
// Runs real worker processes against a real database, and checks that a
// worker killed in the middle of its tasks loses nothing and duplicates no
// side effect.  Run it inside a throwaway cluster, as the suite does:
//
//   pg_virtualenv -t node examples/node/test_worker.mjs
//
// The story:
//
// 1. A workflow split -> square (map over split's output) -> total, with
//    handlers that record a side effect in a ledger keyed by the task's
//    idempotency key (INSERT ... ON CONFLICT DO NOTHING), and every
//    attempt separately.
// 2. 50 runs; two workers, A and B.  A blocks forever on the first task it
//    gets, after its side effect and before reporting; it is killed with
//    SIGKILL while it holds that task and others.
// 3. A's leases expire, B claims the tasks again, every run completes, and
//    the ledger holds exactly one row per task although some tasks were
//    attempted twice.
// 4. B gets SIGTERM while a handler runs: it finishes that task, claims
//    nothing more, exits 0 and holds nothing.  A new worker C finishes
//    that run.
// 5. A run is cancelled while C runs a long handler: the heartbeat sees
//    it, and the handler stops on its own.  C then exits 0 on SIGTERM.
//
// Time: this test uses the real clock with 2-second leases.  Workers are
// separate processes with their own sessions, and what is under test is
// their wall-clock behaviour (heartbeats, idle polling, the grace period);
// a frozen clock would have to reach them through ALTER DATABASE, which
// only new sessions see.  Every wait is for a condition, with a deadline,
// so a slow machine makes the test slower, not flaky.
//
// "node test_worker.mjs worker ID [--block-first]" is one worker process.

import { spawn as spawnProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Worker } from './quantum_flow_worker.mjs';

const WORKFLOW = 'ledger_test';
const RUNS = 50;
const LEASE = 2;

const SETUP = `
CREATE EXTENSION IF NOT EXISTS quantum_flow;
SELECT quantum_flow.define_workflow('ledger_test', '{
    "max_attempts": 5, "base_delay": 0,
    "steps": [{"slug": "split"},
              {"slug": "square", "depends_on": ["split"], "type": "map"},
              {"slug": "total", "depends_on": ["square"]}]}');
CREATE TABLE ledger (
    idempotency_key text PRIMARY KEY,
    step_slug       text NOT NULL,
    done_by         text NOT NULL
);
CREATE TABLE attempts (
    idempotency_key text NOT NULL,
    worker_id       text NOT NULL,
    attempt         integer NOT NULL,
    note            text
);`;

// ---------------------------------------------------------------------------
// The worker process
// ---------------------------------------------------------------------------

// One worker process: test handlers around quantum_flow_worker.
async function work(workerId, blockFirst) {
  const logger = {
    info: (msg) => console.error(`${workerId}: ${msg}`),
    warn: (msg) => console.error(`${workerId}: ${msg}`),
  };
  const worker = new Worker(WORKFLOW, { workerId, concurrency: 4,
    batchSize: 4, lease: LEASE, idleTimeout: 0.5, gracePeriod: 10, logger });
  const db = new pg.Pool({ max: 4 });
  let blocked = !blockFirst;

  // The side effect, once per key, and the attempt, every time.
  async function record(task, note = null) {
    await db.query('INSERT INTO attempts VALUES ($1, $2, $3, $4)',
      [task.idempotencyKey, workerId, task.attempt, note]);
    if (note === null) {
      await db.query('INSERT INTO ledger VALUES ($1, $2, $3) ' +
        'ON CONFLICT (idempotency_key) DO NOTHING',
        [task.idempotencyKey, task.stepSlug, workerId]);
    }
  }

  async function perform(task) {
    await record(task);
    if (!blocked) {
      blocked = true;
      await record(task, 'blocking');
      await new Promise(() => {});      // until SIGKILL
    }
    await sleep(20);
  }

  worker.handler('split', async (task) => {
    if (task.input.spin) {
      // A long handler that stops when its lease is lost.
      await record(task, 'spinning');
      const deadline = Date.now() + 30000;
      while (!(await task.wait(0.1))) {
        if (Date.now() > deadline) return [];
      }
      await record(task, 'stopped');
      throw new Error('cancelled');
    }
    await perform(task);
    await sleep((task.input.sleep ?? 0) * 1000);
    const n = task.input.n;
    return [n, n + 1, n + 2];
  });
  worker.handler('square', async (task) => {
    await perform(task);
    return task.input * task.input;
  });
  worker.handler('total', async (task) => {
    await perform(task);
    return task.input.square.reduce((a, b) => a + b, 0);
  });

  await worker.run();
  await db.end();
  return 0;
}

// ---------------------------------------------------------------------------
// The test driver
// ---------------------------------------------------------------------------

let failures = 0;
let conn;

function check(ok, what) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
  if (!ok) failures += 1;
  return ok;
}

async function value(sql, args = []) {
  const { rows } = await conn.query({ text: sql, values: args,
    rowMode: 'array' });
  return rows[0][0];
}

// Poll sql until its single value is true; false after timeout seconds.
async function waitFor(sql, args = [], timeout = 30) {
  const deadline = Date.now() + timeout * 1000;
  while (Date.now() < deadline) {
    if (await value(sql, args)) return true;
    await sleep(100);
  }
  return false;
}

function spawn(workerId, ...flags) {
  const child = spawnProcess(process.execPath,
    [fileURLToPath(import.meta.url), 'worker', workerId, ...flags],
    { stdio: 'inherit' });
  child.exited = once(child, 'exit').then(([code]) => code);
  return child;
}

// SIGTERM child; its exit status, or null if it did not exit in time.
async function stop(child, timeout = 15) {
  child.kill('SIGTERM');
  const status = await Promise.race([child.exited,
    sleep(timeout * 1000, 'timeout')]);
  if (status !== 'timeout') return status;
  child.kill('SIGKILL');
  await child.exited;
  return null;
}

async function test() {
  conn = new pg.Client();
  await conn.connect();
  await conn.query(SETUP);
  const db = await value('SELECT current_database()');
  await conn.query(`ALTER DATABASE "${db}" SET quantum_flow.notify = on`);
  await conn.query('SET quantum_flow.notify = on');
  const children = [];
  try {
    await runCrashTest(children);
    await runShutdownTest(children);
  } finally {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
      }
    }
    await conn.end();
  }
  console.log(`${failures} failure(s)`);
  return failures ? 1 : 0;
}

// Steps 2 and 3: SIGKILL one of two workers in the middle of work.
async function runCrashTest(children) {
  for (let n = 0; n < RUNS; n++) {
    await conn.query('SELECT quantum_flow.start_run($1, $2)',
      [WORKFLOW, JSON.stringify({ n })]);
  }
  const a = spawn('A', '--block-first');
  const b = spawn('B');
  children.push(a, b);

  check(await waitFor("SELECT count(*) > 0 FROM attempts " +
    "WHERE note = 'blocking'"), 'worker A blocks in its first task');
  await sleep(300);
  const held = Number(await value(
    'SELECT count(*) FROM quantum_flow.workflow_step_tasks ' +
    "WHERE status = 'started' AND worker_id = 'A'"));
  a.kill('SIGKILL');
  await a.exited;
  check(held >= 1, `A held ${held} task(s) when it was killed`);

  check(await waitFor('SELECT count(*) = $1 FROM ' +
    "quantum_flow.workflow_runs WHERE status <> 'started'", [RUNS], 60),
  'all runs ended');
  check(Number(await value('SELECT count(*) FROM ' +
    "quantum_flow.workflow_runs WHERE status = 'completed'")) === RUNS,
  `all ${RUNS} runs completed`);
  const bad = Number(await value(`
    SELECT count(*) FROM quantum_flow.workflow_runs
     WHERE output IS DISTINCT FROM jsonb_build_object('total',
           3 * (input->>'n')::int * (input->>'n')::int
           + 6 * (input->>'n')::int + 5)`));
  check(bad === 0, `every run output is right (${bad} wrong)`);

  const tasks = Number(await value(
    'SELECT count(*) FROM quantum_flow.workflow_step_tasks'));
  const ledger = Number(await value('SELECT count(*) FROM ledger'));
  const missing = Number(await value(`
    SELECT count(*) FROM quantum_flow.workflow_step_tasks AS t
     WHERE t.status <> 'completed'
        OR NOT EXISTS (SELECT 1 FROM ledger AS l
                        WHERE l.idempotency_key = t.idempotency_key)`));
  const strays = Number(await value(`
    SELECT count(*) FROM ledger AS l
     WHERE NOT EXISTS (SELECT 1 FROM quantum_flow.workflow_step_tasks AS t
                        WHERE t.idempotency_key = l.idempotency_key)`));
  check(tasks === RUNS * 5 && ledger === tasks && missing === 0 &&
    strays === 0,
  `one side effect per task: ${tasks} tasks, ${ledger} ledger rows, ` +
    `${missing} missing, ${strays} strays`);
  const twice = Number(await value(`
    SELECT count(*) FROM (SELECT idempotency_key FROM attempts
                           WHERE note IS NULL
                           GROUP BY 1 HAVING count(*) > 1) AS d`));
  check(twice >= 1,
    `${twice} task(s) were attempted twice, yet recorded once`);
  check(Number(await value(`
    SELECT count(*) FROM quantum_flow.workflow_step_tasks
     WHERE status = 'completed' AND worker_id = 'A'
       AND idempotency_key = (SELECT idempotency_key FROM attempts
                               WHERE note = 'blocking')`)) === 0,
  'the blocked task was completed by another worker');
}

// Steps 4 and 5: graceful shutdown and cooperative cancellation.
async function runShutdownTest(children) {
  const b = children[1];
  let runId = await value(
    'SELECT run_id FROM quantum_flow.start_run($1, $2)',
    [WORKFLOW, JSON.stringify({ n: 7, sleep: 1.5 })]);
  check(await waitFor(`
    SELECT status = 'started' FROM quantum_flow.workflow_step_tasks
     WHERE run_id = $1 AND step_slug = 'split'`, [runId]),
  'B runs a slow task');
  const began = Date.now();
  const status = await stop(b);
  check(status === 0, `B exits 0 on SIGTERM (status ${status}, ` +
    `${((Date.now() - began) / 1000).toFixed(1)} s)`);
  check(await value(`
    SELECT status = 'completed' AND attempts_count = 1
      FROM quantum_flow.workflow_step_tasks
     WHERE run_id = $1 AND step_slug = 'split'`, [runId]),
  'B finished its running task before exiting');
  check(Number(await value('SELECT count(*) FROM ' +
    "quantum_flow.workflow_step_tasks WHERE status = 'started'")) === 0,
  'B holds nothing');
  check(Number(await value('SELECT count(*) FROM ' +
    'quantum_flow.workflow_step_tasks ' +
    "WHERE run_id = $1 AND status = 'queued'", [runId])) === 3,
  'B claimed nothing after SIGTERM');

  const c = spawn('C');
  children.push(c);
  check(await waitFor('SELECT status = \'completed\' FROM ' +
    'quantum_flow.workflow_runs WHERE run_id = $1', [runId]),
  'C completes the run B left');

  runId = await value('SELECT run_id FROM quantum_flow.start_run($1, $2)',
    [WORKFLOW, JSON.stringify({ n: 0, spin: true })]);
  check(await waitFor("SELECT count(*) > 0 FROM attempts " +
    "WHERE note = 'spinning'"), 'C runs a long handler');
  await conn.query('SELECT quantum_flow.cancel_run($1)', [runId]);
  check(await waitFor("SELECT count(*) > 0 FROM attempts " +
    "WHERE note = 'stopped'", [], 10),
  'the handler stops once its run is cancelled');
  check(await stop(c) === 0, 'C exits 0 on SIGTERM');
}

const [mode, workerId, ...flags] = process.argv.slice(2);
if (mode === 'worker' && workerId) {
  process.exit(await work(workerId, flags.includes('--block-first')));
} else {
  process.exit(await test());
}
