"""example.py: a small workflow and a worker for it.

    /usr/bin/python3 example.py define [RUNS]   # workflow, and RUNS runs
    /usr/bin/python3 example.py work            # until Ctrl-C or SIGTERM

The workflow "greetings" takes {"names": [...]}: "names" hands the list on,
"greet" maps over it, and "summary" joins the greetings.  Connection
settings come from the PG* environment variables.
"""

import logging
import sys

import psycopg

from quantum_flow_worker import Worker

DEFINITION = """{
    "max_attempts": 3, "timeout": 30,
    "steps": [{"slug": "names"},
              {"slug": "greet", "depends_on": ["names"], "type": "map"},
              {"slug": "summary", "depends_on": ["greet"]}]}"""


def define(runs):
    """Create the extension and the workflow (both idempotent), and start
    some runs."""
    with psycopg.connect("", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS quantum_flow")
        conn.execute("SELECT quantum_flow.define_workflow('greetings', %s)",
                     (DEFINITION,))
        for i in range(runs):
            conn.execute(
                "SELECT quantum_flow.start_run('greetings', %s)",
                ('{"names": ["Ada %d", "Edsger %d", "Barbara %d"]}'
                 % (i, i, i),))
    print("defined 'greetings' and started %d run(s)" % runs)


def work():
    worker = Worker("", "greetings", concurrency=4, lease=10)

    @worker.handler("names")
    def names(task):
        return task.input["names"]

    @worker.handler("greet")
    def greet(task):
        # A real handler would pass task.idempotency_key to the service it
        # calls, so that a second attempt does not greet twice.
        if task.wait(0.5):              # pretend to work; stop if cancelled
            raise RuntimeError("cancelled")
        return "Hello, %s" % task.input

    @worker.handler("summary")
    def summary(task):
        text = "; ".join(task.input["greet"])
        print("run %s: %s" % (task.run_id, text), flush=True)
        return text

    worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(sys.argv) >= 2 and sys.argv[1] == "define":
        define(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    elif len(sys.argv) == 2 and sys.argv[1] == "work":
        work()
    else:
        sys.exit(__doc__)
