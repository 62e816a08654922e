#!/usr/bin/env bash
# test/bench/run.sh: the benchmarks, as `make bench` runs them.
#
# Builds the driver (qf_bench.c) and the extension, starts a throwaway
# cluster with the fixed settings printed below, runs every workload and
# its baseline BENCH_REPS times, interleaved so that drift on a shared
# machine hits both sides alike, and prints one table of medians with
# ratios and targets.  test/bench/results/latest.json holds the same
# figures with every sample; results/log has the driver's output.
#
# The extension is built from a copy of the tree and installed into a
# private directory that the cluster reads through Debian's
# extension_destdir, so a run neither needs nor changes the system-wide
# installation; without that setting it falls back to `make install`.
#
# Each workload runs in a database of its own, created for it, so no run
# inherits another's dead rows.  The history workload keeps one database
# with the finished runs across repetitions, since building them is the
# slowest part of the whole benchmark.
#
# Environment (defaults in brackets):
#   BENCH_QUICK=1     about a minute, for development: small sizes, 1 rep
#   BENCH_REPS        repetitions of every workload [3]
#   BENCH_RUNS        chain3 runs R [3000]
#   BENCH_WORKERS     worker counts of the chain workloads ["1 2 4 8"]
#   BENCH_FANOUT      elements of the fanout run [100000]
#   BENCH_CYCLES      history poll+complete cycles [5000]
#   BENCH_HISTORY     finished runs added for history-full [1000000]
#   BENCH_ONLY        groups to run, of "chain fanout history" [all]
#   BENCH_REF         a git revision to build instead of the working
#                     tree, e.g. HEAD (leaves out edits in progress) or an
#                     older commit to compare with
#   BENCH_STRICT=1    exit 3 when a target is missed (exit 1 is reserved
#                     for a failed check: a task lost or done twice)
#   BENCH_PROFILE=1   instead of the table: run chain3, chain3-batch and
#                     both raw queues once with one worker, under
#                     pg_stat_statements (nested statements included) and
#                     track_functions, and print where the time goes per
#                     task; also in results/profile.txt
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
results="$here/results"

# Sizes.
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	: "${BENCH_REPS:=1}" "${BENCH_RUNS:=300}" "${BENCH_WORKERS:=1 4}"
	: "${BENCH_FANOUT:=10000}" "${BENCH_CYCLES:=500}"
	: "${BENCH_HISTORY:=50000}"
fi
export BENCH_REPS=${BENCH_REPS:-3}
export BENCH_RUNS=${BENCH_RUNS:-3000}
export BENCH_WORKERS=${BENCH_WORKERS:-1 2 4 8}
export BENCH_FANOUT=${BENCH_FANOUT:-100000}
export BENCH_CYCLES=${BENCH_CYCLES:-5000}
export BENCH_HISTORY=${BENCH_HISTORY:-1000000}
export BENCH_ONLY=${BENCH_ONLY:-chain fanout history}

# Server settings, fixed and printed.  synchronous_commit is off so that
# the figures measure the work each design does per task rather than the
# disk's flush latency, which both sides would pay once per transaction.
# WAL is sized and checkpoints spaced so that none falls inside a timed
# phase (the driver runs CHECKPOINT before each); JIT is off so that no
# statement pays a compilation that depends on cost estimates.
settings=(
	shared_buffers=2GB
	synchronous_commit=off
	max_wal_size=16GB
	checkpoint_timeout=30min
	jit=off
	maintenance_work_mem=512MB
	max_connections=50
)
if [ "${BENCH_PROFILE:-0}" = 1 ]; then
	settings+=(
		shared_preload_libraries=pg_stat_statements
		pg_stat_statements.track=all
		pg_stat_statements.track_utility=off
		track_functions=all
	)
fi

# ------------------------------------------------------------------------
# Outside the cluster: build, install, start the cluster, re-enter.
# ------------------------------------------------------------------------
outside() {
	mkdir -p "$results/log"

	# The driver.
	echo "== building test/bench/qf_bench"
	gcc -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir)" \
		-o "$here/qf_bench" "$here/qf_bench.c" -lpq -lpthread

	# The extension, from a copy of the tree, into a private directory.
	work=$(mktemp -d /tmp/quantum_flow_bench.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	chmod 755 "$work"
	mkdir "$work/tree"
	if [ -n "${BENCH_REF:-}" ]; then
		version=$(git -C "$top" rev-parse --verify "$BENCH_REF^{commit}")
		git -C "$top" archive "$version" Makefile quantum_flow.control src \
			sql | tar -x -C "$work/tree"
	else
		(cd "$top" && cp -a Makefile quantum_flow.control src sql \
			"$work/tree/")
		version=$(git -C "$top" rev-parse HEAD 2>/dev/null || echo unknown)
		git -C "$top" diff --quiet HEAD -- Makefile src sql 2>/dev/null ||
			version="$version+uncommitted"
	fi
	echo "== building quantum_flow $version"
	make -s -C "$work/tree" clean >/dev/null
	make -s -C "$work/tree" all
	gucs=$("$(pg_config --bindir)/postgres" --describe-config 2>/dev/null ||
		true)
	if grep -q '^extension_destdir' <<<"$gucs"; then
		make -s -C "$work/tree" install DESTDIR="$work/inst" >/dev/null
		settings+=("extension_destdir=$work/inst")
	elif [ "$(id -u)" -eq 0 ]; then
		make -s -C "$work/tree" install >/dev/null
	else
		sudo make -s -C "$work/tree" install >/dev/null
	fi

	# A port nobody listens on; pg_virtualenv's own choice can race
	# with other clusters starting at the same time.
	listening=$(ss -ltn 2>/dev/null || true)
	for port in $(seq 5480 5580); do
		if ! grep -q ":$port " <<<"$listening" &&
			[ ! -e "/var/run/postgresql/.s.PGSQL.$port" ]; then
			break
		fi
	done
	export PGPORT=$port

	echo "== settings"
	opts=()
	for s in "${settings[@]}"; do
		printf '   %s\n' "$s"
		opts+=(-o "$s")
	done
	printf '   R=%s reps=%s W="%s" fanout=%s cycles=%s history=%s\n' \
		"$BENCH_RUNS" "$BENCH_REPS" "$BENCH_WORKERS" "$BENCH_FANOUT" \
		"$BENCH_CYCLES" "$BENCH_HISTORY"
	printf '%s\n' "${settings[@]}" >"$work/settings"

	# pg_virtualenv -t works as root too; the cluster goes when we return.
	BENCH_WORK=$work BENCH_VERSION=$version \
		pg_virtualenv -t "${opts[@]}" -- "$here/run.sh" --inside
}

# ------------------------------------------------------------------------
# Inside the cluster.
# ------------------------------------------------------------------------
bench="$here/qf_bench"
samples="$results/samples.txt"
log="$results/log"
n=0

# record_settings: the settings as the server reports them, and the
# machine, as "setting" lines of the samples.
record_settings() {
	{
		while IFS='=' read -r name _; do
			echo "setting $name $(psql -X -At -c "SHOW $name")"
		done <"$BENCH_WORK/settings"
		echo "setting server_version $(psql -X -At -c 'SHOW server_version')"
		echo "setting cpus $(nproc)"
		echo "setting loadavg_start $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "setting quantum_flow $BENCH_VERSION"
		echo "setting runs $BENCH_RUNS"
		echo "setting reps $BENCH_REPS"
		echo "setting fanout $BENCH_FANOUT"
		echo "setting cycles $BENCH_CYCLES"
		echo "setting history $BENCH_HISTORY"
	} >>"$samples"
}

# run_one LABEL DB ARGS...: run the driver on database DB (created when
# missing), keep its RESULT lines; a failed check ends the benchmark.
run_one() {
	local label=$1 db=$2 t0 status
	shift 2
	n=$((n + 1))
	t0=$(date +%s.%N)
	[ "$(psql -X -qAt -c "SELECT 1 FROM pg_database
							WHERE datname = '$db'")" = 1 ] || createdb "$db"
	set +e
	PGDATABASE=$db "$bench" run "$@" >"$log/$n-$label.out" 2>&1
	status=$?
	set -e
	grep '^RESULT ' "$log/$n-$label.out" >>"$samples" || true
	awk -v l="$label" -v t0="$t0" -v t1="$(date +%s.%N)" \
		'BEGIN { printf "   %-28s %6.1f s\n", l, t1 - t0 }'
	if [ "$status" -ne 0 ]; then
		grep -h 'FAILED' "$log/$n-$label.out" ||
			tail -5 "$log/$n-$label.out"
		echo "FAILED: $label (log: $log/$n-$label.out)"
		exit 1
	fi
}

# drop DB: drop a workload's database.
drop() {
	dropdb --if-exists "$1"
}

wants() {
	case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

# profile WORKLOAD TASKS ARGS...: run a workload once and print, per
# task, the time and WAL of every statement (nested ones included) and
# the self time of every function; totals include what is nested in them.
# The set-up and start phases are included.
profile() {
	local wl=$1 db=qfp_$1 tasks=$2
	shift 2
	psql -X -qAt -c "SELECT pg_stat_statements_reset()" >/dev/null
	run_one "$wl" "$db" "$wl" "$@"
	echo "-- $wl: statements, per task ($tasks tasks)"
	psql -X -P pager=off -d postgres -c "
		SELECT round(s.total_exec_time::numeric * 1000 / $tasks, 1)
		           AS us_per_task,
		       round(s.calls::numeric / $tasks, 2) AS calls_per_task,
		       round(s.mean_exec_time::numeric * 1000, 1) AS us_per_call,
		       round(s.wal_records::numeric / $tasks, 1) AS wal_recs,
		       round(s.wal_bytes::numeric / $tasks) AS wal_bytes,
		       round(s.shared_blks_hit::numeric / $tasks, 1) AS buf_hits,
		       left(regexp_replace(s.query, '\s+', ' ', 'g'), 78) AS query
		  FROM pg_stat_statements AS s
		  JOIN pg_database AS d ON d.oid = s.dbid
		 WHERE d.datname = '$db'
		   AND s.query !~* '^(SELECT count|CREATE|DROP)'
		 ORDER BY s.total_exec_time DESC
		 LIMIT 24"
	echo "-- $wl: functions, per task"
	psql -X -P pager=off -d "$db" -c "
		SELECT f.schemaname || '.' || f.funcname AS function,
		       round(f.calls::numeric / $tasks, 2) AS calls_per_task,
		       round(f.total_time::numeric * 1000 / $tasks, 1)
		           AS total_us_per_task,
		       round(f.self_time::numeric * 1000 / $tasks, 1)
		           AS self_us_per_task
		  FROM pg_stat_user_functions AS f
		 ORDER BY f.self_time DESC
		 LIMIT 12"
	drop "$db"
}

# inside: the workloads, in the cluster that outside() started.
inside() {
	local rep w wl status=0 started

	: >"$samples"
	rm -f "$log"/*.out
	record_settings
	started=$(date +%s)

	# The profile instead of the table.
	if [ "${BENCH_PROFILE:-0}" = 1 ]; then
		psql -X -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
			postgres
		{
			for wl in chain3 chain3-batch rawqueue rawqueue-batch; do
				profile "$wl" $((3 * BENCH_RUNS)) -w 1 -r "$BENCH_RUNS"
			done
			profile fanout "$BENCH_FANOUT" -w 4 -n "$BENCH_FANOUT"
		} 2>&1 | tee "$results/profile.txt"
		return "${PIPESTATUS[0]}"
	fi

	for rep in $(seq 1 "$BENCH_REPS"); do
		echo "== repetition $rep of $BENCH_REPS"

		# chain3 and its baselines, for each worker count.
		if wants chain; then
			for w in $BENCH_WORKERS; do
				for wl in chain3 rawqueue chain3-batch rawqueue-batch; do
					run_one "$wl-w$w" "qfb_$wl" "$wl" -w "$w" \
						-r "$BENCH_RUNS"
					drop "qfb_$wl"
				done
			done
		fi

		# fanout and the bare insert.
		if wants fanout; then
			for wl in fanout fanout-bare; do
				run_one "$wl" "qfb_$wl" "$wl" -w 4 -n "$BENCH_FANOUT"
				drop "qfb_$wl"
			done
		fi

		# history: empty, then with the finished runs (built once).
		if wants history; then
			run_one history-empty qfb_history_empty history-empty \
				-c "$BENCH_CYCLES"
			drop qfb_history_empty
			run_one history-full qfb_history_full history-full \
				-c "$BENCH_CYCLES" -H "$BENCH_HISTORY"
		fi
	done
	drop qfb_history_full

	# The table.
	echo "setting loadavg_end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$samples"
	echo "setting seconds $(($(date +%s) - started))" >>"$samples"
	echo "== results: medians of $BENCH_REPS, $(($(date +%s) - started)) s" \
		"(load average $(cut -d' ' -f1-3 /proc/loadavg))"
	"$bench" report "$samples" "$results/latest.json" || status=$?
	echo "(all samples: test/bench/results/latest.json)"
	return $status
}

# Functions are read whole before they run, so editing this file while a
# benchmark runs does not disturb it.
if [ "${1:-}" = --inside ]; then inside; else outside; fi; exit $?
