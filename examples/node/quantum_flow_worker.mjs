// quantum_flow_worker.mjs: a reference worker for quantum_flow, in Node.js.
//
// A worker claims the tasks of one workflow, runs the async handler
// registered for each task's step, and reports the outcome back:
//
//   const worker = new Worker('orders', { concurrency: 8 });
//   worker.handler('charge', async (task) =>
//     // task.idempotencyKey is stable across attempts: hand it on.
//     payments.charge(task.input, { key: task.idempotencyKey }));
//   await worker.run();          // until SIGTERM or SIGINT
//
// How it behaves (durations are in seconds, as in SQL):
//
// - It claims with quantum_flow.poll_tasks, never more tasks than it has
//   free handler slots, so no claimed task waits locally while its lease
//   runs.
// - A handler's return value becomes complete_task(output); a throw becomes
//   fail_task(message).  Both pass the attempt number, so the report of an
//   attempt whose lease expired and was claimed again changes nothing.
// - A heartbeat extends the leases of running tasks.  When extend_lease
//   answers false (the run was cancelled, or the attempt is no longer this
//   worker's), task.signal is aborted: a long handler should pass the
//   signal on, check task.cancelled, or sleep with task.wait(), and give up.
// - When nothing is claimable it waits until NOTIFY quantum_flow arrives
//   (sent when quantum_flow.notify is on), one of its tasks finishes (a
//   completion may have made the next step ready), or idleTimeout has
//   passed: expiring leases and retry delays send no notification.
// - On SIGTERM or SIGINT it stops claiming, lets running handlers finish
//   for up to gracePeriod, and run() resolves.  Handlers still running then
//   are aborted and their tasks left to their leases: once a lease expires,
//   another worker claims the task again.  Nothing is lost.
//
// Delivery is at least once: make side effects idempotent with
// task.idempotencyKey.  Connection settings default to the PG* variables.

import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const POLL_SQL = 'SELECT * FROM quantum_flow.poll_tasks($1, $2, $3, $4)';
const COMPLETE_SQL =
  'SELECT 1 FROM quantum_flow.complete_task($1, $2, $3, $4::jsonb, $5)';
const FAIL_SQL = 'SELECT 1 FROM quantum_flow.fail_task($1, $2, $3, $4, $5)';
const EXTEND_SQL =
  'SELECT quantum_flow.extend_lease($1, $2, $3, $4, $5) AS held';

// An error from the server about the statement, as opposed to a lost
// connection (SQLSTATE classes 08 and 57P, or no SQLSTATE at all).
function isStatementError(err) {
  return typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) &&
    !err.code.startsWith('08') && !err.code.startsWith('57P');
}

// One claimed task, as a handler sees it.
export class Task {
  constructor(row, signal) {
    this.runId = row.run_id;
    this.stepSlug = row.step_slug;
    this.taskIndex = row.task_index;
    this.attempt = row.attempt;
    this.idempotencyKey = row.idempotency_key;
    this.input = row.input;
    this.runInput = row.run_input;
    this.leaseExpiresAt = row.lease_expires_at;
    // Aborted when the handler should stop: its lease was lost, or the
    // worker is shutting down and the grace period is over.
    this.signal = signal;
  }

  get cancelled() {
    return this.signal.aborted;
  }

  // Sleep up to seconds; resolve true early if the task is cancelled.
  async wait(seconds) {
    try {
      await sleep(seconds * 1000, undefined, { signal: this.signal });
      return false;
    } catch (err) {
      if (err.name === 'AbortError') return true;
      throw err;
    }
  }

  toString() {
    return `${this.runId}/${this.stepSlug}[${this.taskIndex}] ` +
      `attempt ${this.attempt}`;
  }
}

// Runs handlers for the tasks of one workflow; see the file header.
//
//   connection    pg client config (default: the PG* variables)
//   workerId      recorded on claimed tasks (default: host-pid)
//   concurrency   the most tasks held and run at once
//   batchSize     the most tasks claimed by one poll_tasks call
//   lease         seconds each claim and heartbeat leases a task for
//   heartbeat     seconds between heartbeats (default: lease / 3)
//   idleTimeout   seconds to wait for a notification before polling
//   gracePeriod   seconds running handlers get after SIGTERM
//   logger        an object with info() and warn() (default: console)
export class Worker {
  #handlers = new Map();
  #running = new Map();     // key -> { task, controller, returned, done }
  #stopping = false;
  #abandoned = false;
  #pending = false;         // an event arrived since the last poll
  #waiter = null;           // resolves the claim loop's wait
  #listener = null;
  #pool = null;
  #beating = null;

  constructor(workflow, {
    connection = {}, workerId = `${os.hostname()}-${process.pid}`,
    concurrency = 4, batchSize = 10, lease = 30, heartbeat = lease / 3,
    idleTimeout = 5, gracePeriod = 30, logger = console,
  } = {}) {
    if (!(concurrency >= 1 && batchSize >= 1 && lease > 0)) {
      throw new RangeError('concurrency, batchSize and lease must be ' +
        'positive');
    }
    Object.assign(this, {
      workflow, connection, workerId, concurrency, batchSize, lease,
      heartbeat, idleTimeout, gracePeriod, logger,
    });
    this.leaseInterval = `${lease} seconds`;
  }

  // Run fn(task) for the tasks of stepSlug; it returns (or resolves to)
  // the output, which must be JSON-serializable.
  handler(stepSlug, fn) {
    this.#handlers.set(stepSlug, fn);
    return this;
  }

  // Stop claiming and begin the graceful shutdown.
  stop() {
    this.#stopping = true;
    this.#event();
  }

  // Work until stop() or, with signal handlers, SIGTERM/SIGINT.
  async run({ installSignalHandlers = true } = {}) {
    const onSignal = () => this.stop();
    if (installSignalHandlers) {
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    }
    // Room for every handler's report, and one for the heartbeat.
    this.#pool = new pg.Pool({ ...this.connection,
      max: this.concurrency + 1 });
    this.#pool.on('error', (err) =>
      this.logger.warn(`worker ${this.workerId}: idle connection: ` +
        err.message));
    const beat = setInterval(() => {
      this.#beating ??= this.#beat().finally(() => { this.#beating = null; });
    }, this.heartbeat * 1000);

    this.logger.info(`worker ${this.workerId}: working on ${this.workflow}`);
    try {
      await this.#claimLoop();
    } finally {
      await this.#drain();
      clearInterval(beat);
      await this.#beating;
      await this.#closeListener();
      await this.#pool.end();
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    this.logger.info(`worker ${this.workerId}: stopped`);
  }

  // -- claiming ---------------------------------------------------------

  async #claimLoop() {
    while (!this.#stopping) {
      // Claim no more than there are free slots for.
      const free = this.concurrency - this.#running.size;
      if (free <= 0) {
        await this.#waitForEvent(this.idleTimeout);
        continue;
      }

      this.#pending = false;
      const tasks = await this.#poll(Math.min(free, this.batchSize));
      for (const row of tasks) this.#start(row);
      if (tasks.length === 0) await this.#waitForEvent(this.idleTimeout);
    }
  }

  // Claim up to limit tasks; [] when the database is unreachable.
  async #poll(limit) {
    try {
      this.#listener ??= await this.#openListener();
      const { rows } = await this.#listener.query(POLL_SQL,
        [this.workflow, this.workerId, limit, this.leaseInterval]);
      return rows;
    } catch (err) {
      if (isStatementError(err)) throw err;
      this.logger.warn(`worker ${this.workerId}: poll failed: ` +
        err.message);
      await this.#closeListener();
      return [];
    }
  }

  async #openListener() {
    const client = new pg.Client(this.connection);
    client.on('error', () => {});    // the next poll sees it and reconnects
    client.on('notification', (msg) => {
      if (msg.payload === this.workflow) this.#event();
    });
    try {
      await client.connect();
      await client.query('LISTEN quantum_flow');
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  async #closeListener() {
    const client = this.#listener;
    this.#listener = null;
    await client?.end().catch(() => {});
  }

  // Something the claim loop may want to act on: a notification, a
  // finished task, or stop().
  #event() {
    this.#pending = true;
    this.#waiter?.();
  }

  async #waitForEvent(seconds) {
    if (!this.#pending && !this.#stopping) {
      let timer;
      await new Promise((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, seconds * 1000);
      });
      clearTimeout(timer);
      this.#waiter = null;
    }
    this.#pending = false;
  }

  // -- running handlers -------------------------------------------------

  #start(row) {
    const key = `${row.run_id}/${row.step_slug}/${row.task_index}`;
    const controller = new AbortController();
    const entry = { task: new Task(row, controller.signal), controller,
      returned: false };
    this.#running.set(key, entry);
    entry.done = this.#execute(entry).finally(() => {
      this.#running.delete(key);
      this.#event();
    });
  }

  async #execute(entry) {
    const { task } = entry;
    let output;
    try {
      const fn = this.#handlers.get(task.stepSlug);
      if (!fn) throw new Error(`no handler for step "${task.stepSlug}"`);
      output = JSON.stringify(await fn(task)) ?? 'null';
    } catch (err) {
      entry.returned = true;
      const message = err instanceof Error ?
        `${err.name}: ${err.message}` : String(err);
      await this.#report(task, FAIL_SQL, message);
      return;
    }
    entry.returned = true;
    await this.#report(task, COMPLETE_SQL, output);
  }

  // complete_task or fail_task for this attempt, tried three times if the
  // connection fails; after that, the lease will hand the task back.
  async #report(task, sql, value) {
    const args = [task.runId, task.stepSlug, task.taskIndex, value,
      task.attempt];
    for (let triesLeft = 2; ; triesLeft--) {
      if (this.#abandoned) return;
      try {
        await this.#pool.query(sql, args);
        return;
      } catch (err) {
        if (triesLeft === 0 || isStatementError(err)) {
          this.logger.warn(`task ${task}: report failed: ${err.message}`);
          return;
        }
      }
      await sleep(100);
    }
  }

  // -- heartbeat --------------------------------------------------------

  // Extend the lease of every running task; abort a task whose attempt is
  // no longer ours.
  async #beat() {
    for (const entry of [...this.#running.values()]) {
      if (entry.returned) continue;
      const { task } = entry;
      let held;
      try {
        const { rows } = await this.#pool.query(EXTEND_SQL,
          [task.runId, task.stepSlug, task.taskIndex, task.attempt,
            this.leaseInterval]);
        held = rows[0].held;
      } catch (err) {
        if (err.code !== '42704') {       // 42704: the run was pruned
          this.logger.warn(`worker ${this.workerId}: heartbeat failed: ` +
            err.message);
          return;
        }
        held = false;
      }
      if (!held && !entry.returned && !task.cancelled) {
        this.logger.info(`task ${task}: lease lost, cancelling`);
        entry.controller.abort(new Error('lease lost'));
      }
    }
  }

  // -- shutdown ---------------------------------------------------------

  // Give running handlers gracePeriod seconds, then let go.
  async #drain() {
    const running = [...this.#running.values()];
    if (running.length > 0) {
      this.logger.info(`worker ${this.workerId}: waiting for ` +
        `${running.length} running task(s)`);
      let timer;
      await Promise.race([
        Promise.allSettled(running.map((entry) => entry.done)),
        new Promise((resolve) => {
          timer = setTimeout(resolve, this.gracePeriod * 1000);
        }),
      ]);
      clearTimeout(timer);
    }
    this.#abandoned = true;
    for (const { task, controller } of this.#running.values()) {
      this.logger.warn(`task ${task}: still running after the grace ` +
        'period; left to lease expiry');
      controller.abort(new Error('worker shutting down'));
    }
  }
}
