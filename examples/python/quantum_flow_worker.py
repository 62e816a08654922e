"""quantum_flow_worker: a reference worker for quantum_flow, in Python.

A worker claims the tasks of one workflow, runs the handler registered for
each task's step, and reports the outcome back to the database:

    worker = Worker("dbname=app", "orders", concurrency=8)

    @worker.handler("charge")
    def charge(task):
        # task.input is the step input, task.idempotency_key is stable
        # across attempts: hand it to the payment provider.
        return payments.charge(task.input, key=task.idempotency_key)

    worker.run()              # until SIGTERM or SIGINT

How it behaves:

- It claims with quantum_flow.poll_tasks, never more tasks than it has free
  handler threads, so no claimed task waits in a local queue while its
  lease runs.
- Each handler runs in its own thread.  A return value becomes
  complete_task(output); an exception becomes fail_task(message).  Both
  pass the attempt number, so the report of an attempt whose lease has
  expired and was claimed again changes nothing.
- One heartbeat thread extends the leases of running tasks.  When
  extend_lease answers false (the run was cancelled, or the attempt is no
  longer this worker's), the task is marked cancelled: a long handler
  should check task.cancelled, or sleep with task.wait(), and give up.
- When nothing is claimable it waits until NOTIFY quantum_flow arrives
  (sent when quantum_flow.notify is on), one of its own tasks completes
  (which may have made the next step ready), or idle_timeout seconds have
  passed: expiring leases and retry delays send no notification.
- On SIGTERM or SIGINT it stops claiming, lets running handlers finish for
  up to grace_period seconds, and returns.  Tasks still running then are
  marked cancelled and left to their leases: once a lease expires, another
  worker claims the task again.  Nothing is lost.

Delivery is at least once: a handler may run again for a task whose
earlier attempt did its work but died before reporting.  Make side effects
idempotent with task.idempotency_key.

Requires psycopg 3 (Debian: python3-psycopg).  Connections are opened in
autocommit mode; conninfo "" takes everything from the PG* environment.
"""

import contextlib
import datetime
import json
import logging
import os
import queue
import select
import signal
import socket
import threading
import time
import traceback

import psycopg
from psycopg.rows import dict_row

__all__ = ["Task", "Worker"]

log = logging.getLogger("quantum_flow.worker")


class Task:
    """One claimed task, as a handler sees it.

    Attributes: run_id, step_slug, task_index, attempt, idempotency_key,
    input (the step input), run_input, lease_expires_at.
    """

    def __init__(self, row):
        self.run_id = row["run_id"]
        self.step_slug = row["step_slug"]
        self.task_index = row["task_index"]
        self.attempt = row["attempt"]
        self.idempotency_key = row["idempotency_key"]
        self.input = row["input"]
        self.run_input = row["run_input"]
        self.lease_expires_at = row["lease_expires_at"]
        self._cancel = threading.Event()
        self._returned = False      # the handler is done; no heartbeat

    @property
    def cancelled(self):
        """True once the handler should stop: its lease was lost, or the
        worker is shutting down and its grace period is over."""
        return self._cancel.is_set()

    def wait(self, seconds):
        """Sleep up to seconds; return True early if cancelled."""
        return self._cancel.wait(seconds)

    def __repr__(self):
        return "<Task %s/%s[%d] attempt %d>" % (
            self.run_id, self.step_slug, self.task_index, self.attempt)


class _Pool:
    """At most size autocommit connections, shared by handler threads.

    A connection-level error closes the connection that raised it and the
    idle ones, which a server restart has most likely broken too; callers
    then open fresh ones.
    """

    def __init__(self, conninfo, size):
        self._conninfo = conninfo
        self._idle = queue.LifoQueue()
        self._room = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def connection(self):
        self._room.acquire()
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(self._conninfo, autocommit=True)
            try:
                yield conn
            except psycopg.OperationalError:
                conn.close()
                self.close()
                raise
            finally:
                if not conn.closed:
                    self._idle.put(conn)
        finally:
            self._room.release()

    def close(self):
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class Worker:
    """Runs handlers for the tasks of one workflow; see the module doc.

    conninfo       libpq connection string ("" to use PG* variables)
    workflow       the workflow slug to claim tasks of
    worker_id      recorded on claimed tasks (default: host-pid)
    concurrency    handler threads, and the most tasks held at once
    batch_size     the most tasks claimed by one poll_tasks call
    lease          seconds each claim and heartbeat leases a task for
    heartbeat      seconds between heartbeats (default: lease / 3)
    idle_timeout   seconds to wait for a notification before polling
    grace_period   seconds running handlers get after SIGTERM
    """

    def __init__(self, conninfo, workflow, *, worker_id=None,
                 concurrency=4, batch_size=10, lease=30.0, heartbeat=None,
                 idle_timeout=5.0, grace_period=30.0):
        if concurrency < 1 or batch_size < 1 or lease <= 0:
            raise ValueError("concurrency, batch_size and lease must be "
                             "positive")
        self.conninfo = conninfo
        self.workflow = workflow
        self.worker_id = worker_id or "%s-%d" % (socket.gethostname(),
                                                 os.getpid())
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.lease = datetime.timedelta(seconds=lease)
        self.heartbeat = heartbeat if heartbeat else lease / 3.0
        self.idle_timeout = idle_timeout
        self.grace_period = grace_period

        self._handlers = {}
        self._running = {}          # (run_id, step, index) -> Task
        self._cond = threading.Condition()     # guards _running
        self._stopping = False
        self._abandoned = False
        self._notified = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._pool = _Pool(conninfo, concurrency)
        self._listener = None

    # -- registration ---------------------------------------------------

    def register(self, step_slug, fn):
        """Run fn(task) for the tasks of step_slug; it returns the output."""
        self._handlers[step_slug] = fn

    def handler(self, step_slug):
        """Decorator form of register()."""
        def decorate(fn):
            self.register(step_slug, fn)
            return fn
        return decorate

    # -- lifecycle ------------------------------------------------------

    def stop(self):
        """Stop claiming and begin the graceful shutdown.

        Safe to call from a signal handler or from any thread.
        """
        self._stopping = True
        with self._cond:
            self._cond.notify_all()
        self._wake()

    def _wake(self):
        """End the idle wait of the claim loop, if it is in one."""
        self._notified = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def run(self, install_signal_handlers=True):
        """Work until stop() or, with signal handlers, SIGTERM/SIGINT."""
        previous = {}
        if install_signal_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(
                    signum, lambda *_: self.stop())

        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat_loop,
                                args=(beat_stop,), daemon=True,
                                name="quantum_flow-heartbeat")
        beat.start()
        log.info("worker %s: working on %s", self.worker_id, self.workflow)
        try:
            self._claim_loop()
        finally:
            self._drain()
            beat_stop.set()
            beat.join()
            self._close_listener()
            self._pool.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info("worker %s: stopped", self.worker_id)

    # -- claiming -------------------------------------------------------

    def _claim_loop(self):
        while not self._stopping:
            # Claim no more than there are free threads for.
            with self._cond:
                while (len(self._running) >= self.concurrency and
                       not self._stopping):
                    self._cond.wait()
                free = self.concurrency - len(self._running)
            if self._stopping:
                break

            tasks = self._poll(min(free, self.batch_size))
            for task in tasks:
                self._start(task)
            if not tasks:
                self._idle()

    def _poll(self, limit):
        """Claim up to limit tasks; [] when the database is unreachable."""
        try:
            if self._listener is None or self._listener.closed:
                self._open_listener()
            self._notified = False
            cur = self._listener.execute(
                "SELECT * FROM quantum_flow.poll_tasks(%s, %s, %s, %s)",
                (self.workflow, self.worker_id, limit, self.lease))
            return [Task(row) for row in cur.fetchall()]
        except psycopg.OperationalError as exc:
            log.warning("worker %s: poll failed: %s", self.worker_id, exc)
            self._close_listener()
            return []

    def _idle(self):
        """Wait for a notification, a completion, stop(), or idle_timeout."""
        if self._notified or self._stopping:
            return
        watched = [self._wake_r]
        if self._listener is not None and not self._listener.closed:
            watched.append(self._listener.fileno())
        ready, _, _ = select.select(watched, [], [], self.idle_timeout)
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 4096):
                    pass
        # A readable connection is drained by the next poll's query,
        # which also runs _on_notify for what arrived.

    def _open_listener(self):
        self._listener = psycopg.connect(self.conninfo, autocommit=True,
                                         row_factory=dict_row)
        self._listener.add_notify_handler(self._on_notify)
        self._listener.execute("LISTEN quantum_flow")

    def _close_listener(self):
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _on_notify(self, notify):
        if notify.payload == self.workflow:
            self._notified = True

    # -- running handlers -----------------------------------------------

    def _start(self, task):
        key = (task.run_id, task.step_slug, task.task_index)
        with self._cond:
            self._running[key] = task
        threading.Thread(target=self._execute, args=(key, task), daemon=True,
                         name="quantum_flow-%s" % task.step_slug).start()

    def _execute(self, key, task):
        try:
            handler = self._handlers.get(task.step_slug)
            try:
                if handler is None:
                    raise LookupError("no handler for step %r" %
                                      task.step_slug)
                output = json.dumps(handler(task))
            except Exception as exc:
                task._returned = True
                log.debug("%r failed:\n%s", task, traceback.format_exc())
                self._report(task, "fail_task",
                             "%s: %s" % (type(exc).__name__, exc))
            else:
                task._returned = True
                if self._report(task, "complete_task", output):
                    self._wake()    # the next step may be ready now
        finally:
            with self._cond:
                del self._running[key]
                self._cond.notify_all()

    def _report(self, task, function, value):
        """complete_task or fail_task for this attempt, tried three times
        if the connection fails; after that, the lease will hand the task
        back.  True if the call went through."""
        if function == "complete_task":
            sql = ("SELECT quantum_flow.complete_task(%s, %s, %s, "
                   "%s::jsonb, %s)")
        else:
            sql = "SELECT quantum_flow.fail_task(%s, %s, %s, %s, %s)"
        args = (task.run_id, task.step_slug, task.task_index, value,
                task.attempt)
        for tries_left in (2, 1, 0):
            if self._abandoned:
                return False
            try:
                with self._pool.connection() as conn:
                    conn.execute(sql, args)
                return True
            except psycopg.OperationalError as exc:
                if not tries_left:
                    log.warning("%r: %s failed: %s", task, function, exc)
                time.sleep(0.1)
            except psycopg.Error as exc:
                log.warning("%r: %s failed: %s", task, function, exc)
                return False
        return False

    # -- heartbeat ------------------------------------------------------

    def _heartbeat_loop(self, beat_stop):
        """Extend the lease of every running task every heartbeat seconds;
        mark a task cancelled when its attempt is no longer ours."""
        conn = None
        while not beat_stop.wait(self.heartbeat):
            with self._cond:
                tasks = list(self._running.values())
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                for task in tasks:
                    if task._returned:
                        continue
                    try:
                        held = conn.execute(
                            "SELECT quantum_flow.extend_lease("
                            "%s, %s, %s, %s, %s)",
                            (task.run_id, task.step_slug, task.task_index,
                             task.attempt, self.lease)).fetchone()[0]
                    except psycopg.errors.UndefinedObject:
                        held = False        # the run was pruned
                    if not (held or task._returned or task.cancelled):
                        log.info("%r: lease lost, cancelling", task)
                        task._cancel.set()
            except psycopg.Error as exc:
                # Start over on a fresh connection at the next beat.
                log.warning("worker %s: heartbeat failed: %s",
                            self.worker_id, exc)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    # -- shutdown -------------------------------------------------------

    def _drain(self):
        """Give running handlers grace_period seconds, then let go."""
        with self._cond:
            if self._running:
                log.info("worker %s: waiting for %d running task(s)",
                         self.worker_id, len(self._running))
            self._cond.wait_for(lambda: not self._running,
                                timeout=self.grace_period)
            left = list(self._running.values())
            self._abandoned = True
        for task in left:
            log.warning("%r: still running after the grace period; "
                        "left to lease expiry", task)
            task._cancel.set()
