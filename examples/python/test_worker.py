"""test_worker.py: end-to-end test of quantum_flow_worker.py.

Runs real worker processes against a real database, and checks that a
worker killed in the middle of its tasks loses nothing and duplicates no
side effect.  Run it inside a throwaway cluster, as the suite does:

    pg_virtualenv -t /usr/bin/python3 examples/python/test_worker.py

The story:

1. A workflow split -> square (map over split's output) -> total, with
   handlers that record a side effect in a ledger keyed by the task's
   idempotency key (INSERT ... ON CONFLICT DO NOTHING), and every attempt
   separately.
2. 50 runs; two workers, A and B.  A blocks forever on the first task it
   gets, after its side effect and before reporting; it is killed with
   SIGKILL while it holds that task and others.
3. A's leases expire, B claims the tasks again, every run completes, and
   the ledger holds exactly one row per task although some tasks were
   attempted twice.
4. B gets SIGTERM while a handler runs: it finishes that task, claims
   nothing more, exits 0 and holds nothing.  A new worker C finishes that
   run.
5. A run is cancelled while C runs a long handler: the heartbeat sees it,
   and the handler stops on its own.  C then exits 0 on SIGTERM.

Time: this test uses the real clock with 2-second leases.  Workers are
separate processes with their own sessions, and what is under test is
their wall-clock behaviour (heartbeats, idle polling, the grace period);
a frozen clock would have to reach them through ALTER DATABASE, which only
new sessions see.  Every wait is for a condition, with a deadline, so a
slow machine makes the test slower, not flaky.

"python3 test_worker.py worker ID [--block-first]" is one worker process.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantum_flow_worker import Worker      # noqa: E402

WORKFLOW = "ledger_test"
RUNS = 50
LEASE = 2.0

SETUP = """
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
);
"""


# ---------------------------------------------------------------------------
# The worker process
# ---------------------------------------------------------------------------

def work(worker_id, block_first):
    """One worker process: test handlers around quantum_flow_worker."""
    logging.basicConfig(level=logging.INFO,
                        format=worker_id + ": %(message)s")
    worker = Worker("", WORKFLOW, worker_id=worker_id, concurrency=4,
                    batch_size=4, lease=LEASE, idle_timeout=0.5,
                    grace_period=10)
    local = threading.local()
    first = threading.Lock() if block_first else None

    def record(task, note=None):
        """The side effect, once per key, and the attempt, every time."""
        if getattr(local, "conn", None) is None:
            local.conn = psycopg.connect("", autocommit=True)
        local.conn.execute(
            "INSERT INTO attempts VALUES (%s, %s, %s, %s)",
            (task.idempotency_key, worker_id, task.attempt, note))
        if note is None:
            local.conn.execute(
                "INSERT INTO ledger VALUES (%s, %s, %s) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                (task.idempotency_key, task.step_slug, worker_id))

    def perform(task):
        record(task)
        if first is not None and first.acquire(blocking=False):
            record(task, "blocking")
            while True:             # until SIGKILL
                time.sleep(60)
        time.sleep(0.02)

    @worker.handler("split")
    def split(task):
        if task.input.get("spin"):
            # A long handler that stops when its lease is lost.
            record(task, "spinning")
            deadline = time.monotonic() + 30
            while not task.wait(0.1):
                if time.monotonic() > deadline:
                    return []
            record(task, "stopped")
            raise RuntimeError("cancelled")
        perform(task)
        time.sleep(task.input.get("sleep", 0))
        n = task.input["n"]
        return [n, n + 1, n + 2]

    @worker.handler("square")
    def square(task):
        perform(task)
        return task.input * task.input

    @worker.handler("total")
    def total(task):
        perform(task)
        return sum(task.input["square"])

    worker.run()
    return 0


# ---------------------------------------------------------------------------
# The test driver
# ---------------------------------------------------------------------------

failures = 0


def check(ok, what):
    global failures
    print("%s - %s" % ("ok" if ok else "not ok", what), flush=True)
    if not ok:
        failures += 1
    return ok


def wait_for(conn, query, args=(), timeout=30.0):
    """Poll query until its single value is true; False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.execute(query, args).fetchone()[0]:
            return True
        time.sleep(0.1)
    return False


def value(conn, query, args=()):
    return conn.execute(query, args).fetchone()[0]


def spawn(worker_id, *flags):
    return subprocess.Popen([sys.executable, os.path.abspath(__file__),
                             "worker", worker_id, *flags])


def stop(proc, timeout=15.0):
    """SIGTERM proc; its exit status, or None if it did not exit."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def test():
    conn = psycopg.connect("", autocommit=True)
    conn.execute(SETUP)
    conn.execute(sql.SQL("ALTER DATABASE {} SET quantum_flow.notify = on")
                 .format(sql.Identifier(conn.info.dbname)))
    conn.execute("SET quantum_flow.notify = on")
    procs = []
    try:
        run_crash_test(conn, procs)
        run_shutdown_test(conn, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print("%d failure(s)" % failures)
    return 1 if failures else 0


def run_crash_test(conn, procs):
    """Steps 2 and 3: SIGKILL one of two workers in the middle of work."""
    for n in range(RUNS):
        conn.execute("SELECT quantum_flow.start_run(%s, %s)",
                     (WORKFLOW, '{"n": %d}' % n))
    a = spawn("A", "--block-first")
    b = spawn("B")
    procs += [a, b]

    check(wait_for(conn, "SELECT count(*) > 0 FROM attempts "
                         "WHERE note = 'blocking'"),
          "worker A blocks in its first task")
    time.sleep(0.3)
    held = value(conn, "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
                       " WHERE status = 'started' AND worker_id = 'A'")
    a.kill()
    a.wait()
    check(held >= 1, "A held %d task(s) when it was killed" % held)

    check(wait_for(conn, "SELECT count(*) = %s FROM quantum_flow.workflow_runs"
                         " WHERE status <> 'started'", (RUNS,), timeout=60),
          "all runs ended")
    check(value(conn, "SELECT count(*) FROM quantum_flow.workflow_runs "
                      "WHERE status = 'completed'") == RUNS,
          "all %d runs completed" % RUNS)
    bad = value(conn, """
        SELECT count(*) FROM quantum_flow.workflow_runs
         WHERE output IS DISTINCT FROM jsonb_build_object('total',
               3 * (input->>'n')::int * (input->>'n')::int
               + 6 * (input->>'n')::int + 5)""")
    check(bad == 0, "every run output is right (%d wrong)" % bad)

    tasks = value(conn,
                  "SELECT count(*) FROM quantum_flow.workflow_step_tasks")
    ledger = value(conn, "SELECT count(*) FROM ledger")
    missing = value(conn, """
        SELECT count(*) FROM quantum_flow.workflow_step_tasks AS t
         WHERE t.status <> 'completed'
            OR NOT EXISTS (SELECT 1 FROM ledger AS l
                            WHERE l.idempotency_key = t.idempotency_key)""")
    strays = value(conn, """
        SELECT count(*) FROM ledger AS l
         WHERE NOT EXISTS (SELECT 1 FROM quantum_flow.workflow_step_tasks AS t
                            WHERE t.idempotency_key = l.idempotency_key)""")
    check(tasks == RUNS * 5 and ledger == tasks and missing == 0
          and strays == 0,
          "one side effect per task: %d tasks, %d ledger rows, %d missing, "
          "%d strays" % (tasks, ledger, missing, strays))
    twice = value(conn, "SELECT count(*) FROM (SELECT idempotency_key "
                        "FROM attempts WHERE note IS NULL "
                        "GROUP BY 1 HAVING count(*) > 1) AS d")
    check(twice >= 1, "%d task(s) were attempted twice, yet recorded once"
          % twice)
    check(value(conn, "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
                      " WHERE status = 'completed' AND worker_id = 'A'"
                      " AND idempotency_key = (SELECT idempotency_key"
                      " FROM attempts WHERE note = 'blocking')") == 0,
          "the blocked task was completed by another worker")


def run_shutdown_test(conn, procs):
    """Steps 4 and 5: graceful shutdown and cooperative cancellation."""
    b = procs[1]
    run_id = value(conn, "SELECT run_id FROM quantum_flow.start_run(%s, %s)",
                   (WORKFLOW, '{"n": 7, "sleep": 1.5}'))
    started = wait_for(conn, """
        SELECT status = 'started' FROM quantum_flow.workflow_step_tasks
         WHERE run_id = %s AND step_slug = 'split'""", (run_id,))
    check(started, "B runs a slow task")
    began = time.monotonic()
    status = stop(b)
    check(status == 0, "B exits 0 on SIGTERM (status %s, %.1f s)"
          % (status, time.monotonic() - began))
    check(value(conn, """
        SELECT status = 'completed' AND attempts_count = 1
          FROM quantum_flow.workflow_step_tasks
         WHERE run_id = %s AND step_slug = 'split'""", (run_id,)),
          "B finished its running task before exiting")
    check(value(conn, "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
                      " WHERE status = 'started'") == 0,
          "B holds nothing")
    check(value(conn, "SELECT count(*) FROM quantum_flow.workflow_step_tasks"
                      " WHERE run_id = %s AND status = 'queued'",
                (run_id,)) == 3,
          "B claimed nothing after SIGTERM")

    c = spawn("C")
    procs.append(c)
    check(wait_for(conn, "SELECT status = 'completed' FROM "
                         "quantum_flow.workflow_runs WHERE run_id = %s",
                   (run_id,)),
          "C completes the run B left")

    run_id = value(conn, "SELECT run_id FROM quantum_flow.start_run(%s, %s)",
                   (WORKFLOW, '{"n": 0, "spin": true}'))
    check(wait_for(conn, "SELECT count(*) > 0 FROM attempts "
                         "WHERE note = 'spinning'"),
          "C runs a long handler")
    conn.execute("SELECT quantum_flow.cancel_run(%s)", (run_id,))
    check(wait_for(conn, "SELECT count(*) > 0 FROM attempts "
                         "WHERE note = 'stopped'", timeout=10),
          "the handler stops once its run is cancelled")
    check(stop(c) == 0, "C exits 0 on SIGTERM")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        sys.exit(work(sys.argv[2], "--block-first" in sys.argv[3:]))
    sys.exit(test())
