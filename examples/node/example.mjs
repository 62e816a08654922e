// example.mjs: a small workflow and a worker for it.
//
//   node example.mjs define [RUNS]   # the workflow, and RUNS runs
//   node example.mjs work            # until Ctrl-C or SIGTERM
//
// The workflow "greetings" takes {"names": [...]}: "names" hands the list
// on, "greet" maps over it, and "summary" joins the greetings.  Connection
// settings come from the PG* environment variables.

import pg from 'pg';
import { Worker } from './quantum_flow_worker.mjs';

const DEFINITION = {
  max_attempts: 3,
  timeout: 30,
  steps: [
    { slug: 'names' },
    { slug: 'greet', depends_on: ['names'], type: 'map' },
    { slug: 'summary', depends_on: ['greet'] },
  ],
};

// Create the extension and the workflow (both idempotent), and start
// some runs.
async function define(runs) {
  const client = new pg.Client();
  await client.connect();
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS quantum_flow');
    await client.query(
      "SELECT quantum_flow.define_workflow('greetings', $1)", [DEFINITION]);
    for (let i = 0; i < runs; i++) {
      const names = [`Ada ${i}`, `Edsger ${i}`, `Barbara ${i}`];
      await client.query(
        "SELECT quantum_flow.start_run('greetings', $1)", [{ names }]);
    }
  } finally {
    await client.end();
  }
  console.log(`defined 'greetings' and started ${runs} run(s)`);
}

async function work() {
  const worker = new Worker('greetings', { concurrency: 4, lease: 10 });

  worker.handler('names', (task) => task.input.names);

  worker.handler('greet', async (task) => {
    // A real handler would pass task.idempotencyKey to the service it
    // calls, so that a second attempt does not greet twice.
    if (await task.wait(0.5)) throw new Error('cancelled');
    return `Hello, ${task.input}`;
  });

  worker.handler('summary', (task) => {
    const text = task.input.greet.join('; ');
    console.log(`run ${task.runId}: ${text}`);
    return text;
  });

  await worker.run();
}

const [command, arg] = process.argv.slice(2);
if (command === 'define') {
  await define(arg === undefined ? 3 : Number(arg));
} else if (command === 'work') {
  await work();
  // Handlers abandoned after the grace period must not keep us alive.
  process.exit(0);
} else {
  console.error('usage: node example.mjs define [RUNS] | work');
  process.exit(2);
}
