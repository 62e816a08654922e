#!/usr/bin/env bash
# test/suites/pg_cron.sh: retention scheduled by pg_cron, for real.
#
# Called by test/run.sh with a scratch directory as $1, after the extension
# was installed.  Installs postgresql-15-cron when it is missing, starts a
# throwaway cluster that preloads pg_cron, ends three runs (completed,
# failed, cancelled) and leaves a fourth open, then schedules
#     SELECT quantum_flow.prune_runs('0 seconds')
# and waits, polling cron.job_run_details, until pg_cron has run it: the
# three ended runs must be gone, counted in workflow_stats, and the open
# run must remain.  Debian's pg_cron is 1.4, whose finest schedule is one
# minute, so the wait is real but bounded (90 seconds).  Jobs run in
# background workers, so that no password is needed.  Exits non-zero on
# any failure.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${1:-$(mktemp -d)}
pgver=${PGVER:-15}

"$top/test/deps.sh" "postgresql-$pgver-cron"

script="$scratch/pg_cron_check.sh"
cat >"$script" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# Three runs that end and one that stays open, on the real clock.
q >/dev/null <<'SQL'
CREATE EXTENSION pg_cron;
CREATE EXTENSION quantum_flow;
SELECT quantum_flow.create_workflow('cron', max_attempts => 1);
SELECT quantum_flow.add_step('cron', 'only');
SELECT quantum_flow.start_run('cron', '{}',
           ('e0000000-0000-0000-0000-00000000000' || i)::uuid)
  FROM generate_series(1, 4) AS i;
SELECT count(*) FROM quantum_flow.poll_tasks('cron', 'w', 10, '1 hour');
SELECT quantum_flow.complete_task('e0000000-0000-0000-0000-000000000001',
                                  'only', 0);
SELECT quantum_flow.fail_task('e0000000-0000-0000-0000-000000000002',
                              'only', 0, 'broken');
SELECT quantum_flow.cancel_run('e0000000-0000-0000-0000-000000000003');
SQL
echo "runs before: $(q -c "SELECT string_agg(status, ',' ORDER BY run_id)
                            FROM quantum_flow.workflow_runs")"

job=$(q -c "SELECT cron.schedule('quantum_flow_prune', '* * * * *',
            \$\$SELECT quantum_flow.prune_runs('0 seconds')\$\$)")
version=$(q -c "SELECT extversion FROM pg_extension
                 WHERE extname = 'pg_cron'")
echo "scheduled job $job at $(date -u +%T) with pg_cron $version"

# pg_cron runs the job at the start of the next minute.
status=
for _ in $(seq 1 90); do
	status=$(q -c "SELECT status FROM cron.job_run_details
	                WHERE jobid = $job AND status IN ('succeeded', 'failed')
	                ORDER BY runid LIMIT 1")
	[ -n "$status" ] && break
	sleep 1
done
q -c "SELECT 'job run: ' || status || ', ' || coalesce(return_message, '')
        FROM cron.job_run_details WHERE jobid = $job ORDER BY runid"
if [ "$status" != succeeded ]; then
	echo "FAIL: the job did not succeed within 90 seconds (status '$status')"
	exit 1
fi
q -c "SELECT cron.unschedule($job)" >/dev/null

# Only the open run is left; the others are counted.
left=$(q -c "SELECT string_agg(run_id || ' ' || status, ',' ORDER BY run_id)
               FROM quantum_flow.workflow_runs")
stats=$(q -c "SELECT concat_ws(' ', runs_started, runs_completed, runs_failed,
                                runs_cancelled)
                FROM quantum_flow.workflow_stats")
echo "runs after: $left"
echo "workflow_stats runs started/completed/failed/cancelled: $stats"
if [ "$left" != "e0000000-0000-0000-0000-000000000004 started" ]; then
	echo "FAIL: pruning left the wrong runs"
	exit 1
fi
if [ "$stats" != "1 1 1 1" ]; then
	echo "FAIL: workflow_stats lost counts"
	exit 1
fi
echo "ok: pg_cron ran prune_runs and it pruned exactly the ended runs"
EOF
chmod 755 "$script"

# A free port for the throwaway cluster.
. "$top/test/lib.sh"
PGPORT=$(qf_free_port)
export PGPORT

cd "$scratch"
timeout 180 pg_virtualenv -t \
	-o shared_preload_libraries=pg_cron \
	-o cron.database_name=postgres \
	-o cron.use_background_workers=on \
	"$script"
