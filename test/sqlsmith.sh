#!/usr/bin/env bash
# test/sqlsmith.sh: fuzz quantum_flow with sqlsmith and watch for crashes.
#
#   test/sqlsmith.sh [MAX_QUERIES] [MAX_SECONDS]
#
# Installs Debian's sqlsmith when it is missing (as root), starts a
# throwaway cluster with the extension installed and work in flight (runs
# started, tasks claimed, some retried, some failed, a run cancelled),
# and lets sqlsmith send up to MAX_QUERIES random statements (default
# 5000) for at most MAX_SECONDS (default 120).  sqlsmith connects as a
# role that may call every function of the extension, write its tables
# and move its clock, but is no superuser, so that random calls of
# administrative functions cannot take the server down by design.
# SQLSMITH_SEED fixes the random seed, to replay a run.
#
# Fails if the server crashed: a backend terminated by a signal or an
# exception, a failed assertion, a PANIC, or a server that no longer
# answers.  Errors of the statements themselves are expected and are only
# summarized.  Prints how many statements ran.
set -euo pipefail

max_queries=${1:-5000}
max_seconds=${2:-120}
seed=${SQLSMITH_SEED:-$RANDOM$RANDOM}
top=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v sqlsmith >/dev/null 2>&1; then
	"$top/test/deps.sh" sqlsmith
fi

inner=$(mktemp /tmp/quantum_flow_sqlsmith.XXXXXX)
trap 'rm -f "$inner"' EXIT
cat >"$inner" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
max_queries=$1 max_seconds=$2 seed=$3
log=$(pg_lsclusters -h | awk '{ print $7 }')
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# The extension, a role for the fuzzer, and work in flight.
q -c "CREATE ROLE fuzzer LOGIN PASSWORD '$password'"
q >/dev/null <<'SQL'
CREATE EXTENSION quantum_flow;
GRANT USAGE ON SCHEMA quantum_flow TO fuzzer;
GRANT ALL ON ALL TABLES IN SCHEMA quantum_flow TO fuzzer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA quantum_flow TO fuzzer;
GRANT SET ON PARAMETER quantum_flow.clock_override TO fuzzer;
ALTER ROLE fuzzer SET statement_timeout = '2s';
ALTER ROLE fuzzer SET lock_timeout = '1s';

SELECT quantum_flow.define_workflow('etl', '{
    "max_attempts": 2, "base_delay": 0, "timeout": 30,
    "steps": [{"slug": "fetch"},
              {"slug": "split", "depends_on": ["fetch"]},
              {"slug": "each", "depends_on": ["split"], "type": "map"},
              {"slug": "report", "depends_on": ["each", "fetch"]}]}');
SELECT quantum_flow.define_workflow('fanout', '{
    "steps": [{"slug": "items", "type": "map", "max_attempts": 1},
              {"slug": "sum", "depends_on": ["items"]}]}');
SELECT quantum_flow.start_run('etl', jsonb_build_object('n', i))
  FROM generate_series(1, 6) AS i;
SELECT quantum_flow.start_run('fanout', '[1, 2, 3, 4]')
  FROM generate_series(1, 4);
SELECT quantum_flow.start_run('fanout', '[]');

-- fetch completes in four runs, fails once in two (retried at once).
SELECT quantum_flow.complete_task(t.run_id, t.step_slug, t.task_index,
                                  '{"rows": 3}')
  FROM quantum_flow.poll_tasks('etl', 'w1', 4) AS t;
SELECT quantum_flow.fail_task(t.run_id, t.step_slug, t.task_index, 'flaky')
  FROM quantum_flow.poll_tasks('etl', 'w1', 2) AS t;
-- split outputs an array in one run and a non-array in another.
SELECT quantum_flow.complete_task(
           t.run_id, t.step_slug, t.task_index,
           CASE WHEN row_number() OVER (ORDER BY t.run_id) = 1
                THEN '[1, 2, 3]' ELSE '"oops"' END::jsonb)
  FROM quantum_flow.poll_tasks('etl', 'w2', 2) AS t
 WHERE t.step_slug = 'split';
-- The fan-out: some items done, one failed for good, one left running.
SELECT quantum_flow.complete_task(t.run_id, t.step_slug, t.task_index,
                                  to_jsonb(t.task_index))
  FROM quantum_flow.poll_tasks('fanout', 'w3', 6) AS t;
SELECT quantum_flow.fail_task(t.run_id, t.step_slug, t.task_index, 'bad')
  FROM quantum_flow.poll_tasks('fanout', 'w3', 1) AS t;
SELECT count(*) FROM quantum_flow.poll_tasks('fanout', 'w3', 2);
SELECT quantum_flow.cancel_run(r.run_id)
  FROM quantum_flow.workflow_runs AS r
 WHERE r.workflow_slug = 'etl' AND r.status = 'started'
 ORDER BY r.run_id DESC LIMIT 1;
SQL
q -c "SELECT 'in flight: ' ||
               string_agg(workflow_slug || ' ' || n || ' ' || status, ', ')
        FROM (SELECT workflow_slug, status, count(*) AS n
                FROM quantum_flow.workflow_runs
               GROUP BY 1, 2 ORDER BY 1, 2) AS s"

# The fuzzing itself.  On SIGINT sqlsmith stops and still reports.
echo "sqlsmith: seed $seed, at most $max_queries statements" \
	"in ${max_seconds}s"
target="host=$PGHOST port=$PGPORT dbname=$PGDATABASE"
target="$target user=fuzzer password=$password"
set +e
timeout -s INT "$max_seconds" \
	sqlsmith --target="$target" --seed="$seed" \
		--max-queries="$max_queries" --exclude-catalog \
		--verbose >sqlsmith.out 2>sqlsmith.err
smith_status=$?
set -e
ran=$(grep -a '^queries: ' sqlsmith.err | tail -n 1 | awk '{ print $2 }')
echo "sqlsmith: ${ran:-an unknown number of} statements ran" \
	"(exit status $smith_status)"
echo "most frequent errors:"
grep -aE '^[0-9]+	ERROR' sqlsmith.err | head -n 8 || true

# Did the server crash?
failed=0
crash='terminated by signal|terminated by exception|TRAP: |PANIC: '
crash="$crash|server process .* was terminated"
if grep -nE "$crash" "$log"; then
	grep -n -A 1 'was terminated' "$log" |
		grep 'Failed process was running' || true
	echo "FAIL: a server process crashed (log: $log)"
	failed=1
fi
if ! q -c 'SELECT 1' >/dev/null 2>&1; then
	echo "FAIL: the server does not answer any more"
	failed=1
fi
if [ -z "$ran" ] || [ "$ran" -lt 1 ]; then
	echo "FAIL: sqlsmith ran no statement"
	tail -n 20 sqlsmith.err
	failed=1
fi
[ "$failed" -eq 0 ] && echo "ok: no crash in $ran statements"
exit "$failed"
EOF
chmod 755 "$inner"

# A free port for the throwaway cluster.
. "$top/test/lib.sh"
PGPORT=$(qf_free_port)
export PGPORT

work=$(mktemp -d /tmp/quantum_flow_sqlsmith_run.XXXXXX)
chmod 777 "$work"
cd "$work"
status=0
pg_virtualenv -t "$inner" "$max_queries" "$max_seconds" "$seed" || status=$?
rm -rf "$work"
exit "$status"
