#!/usr/bin/env bash
# test/demo.sh: the demo, as `make demo` runs it.
#
# Installs missing packages, builds and installs the extension, then, in a
# throwaway cluster (pg_virtualenv), defines an order workflow, starts
# DEMO_RUNS orders and lets DEMO_WORKERS concurrent psql sessions work
# them off with the SQL worker of test/demo/worker.sql, and prints what
# happened (test/demo/summary.sql).  Exits non-zero if a worker fails or a
# check of the summary does not hold.
#
# The same script runs inside the cluster: pg_virtualenv calls it again
# with --in-cluster.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
demo="$top/test/demo"
runs=${DEMO_RUNS:-300}
workers=${DEMO_WORKERS:-4}
psql=(psql -X -q -v ON_ERROR_STOP=1)

if ! [[ "$runs" =~ ^[1-9][0-9]*$ && "$workers" =~ ^[1-9][0-9]*$ ]]; then
	echo "DEMO_RUNS and DEMO_WORKERS must be positive integers" >&2
	exit 2
fi

# in_cluster: everything that needs the database.
in_cluster() {
	local t0 t1 elapsed i status=0
	local pids=()

	# pg_virtualenv's own messages went to /dev/null; ours go to fd 3.
	exec 1>&3 3>&-
	touch "$DEMO_STARTED"

	echo "== Throwaway cluster (pg_virtualenv), CREATE EXTENSION quantum_flow"
	echo
	"${psql[@]}" -v runs="$runs" -f "$demo/setup.sql"
	"${psql[@]}" -f "$demo/worker.sql"

	echo "== $workers workers, each a psql session running CALL demo.work()"
	t0=$(date +%s%N)
	for ((i = 1; i <= workers; i++)); do
		"${psql[@]}" -c "CALL demo.work('worker-$i')" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || status=1
	done
	t1=$(date +%s%N)
	if [ "$status" -ne 0 ]; then
		echo "a worker failed" >&2
		exit 1
	fi
	elapsed=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", ns / 1e9 }')
	echo "all runs ended after $elapsed s"
	echo

	"${psql[@]}" -v elapsed="$elapsed" -v workers="$workers" \
		-f "$demo/summary.sql"
}

if [ "${1:-}" = "--in-cluster" ]; then
	in_cluster
	exit 0
fi

echo "quantum_flow demo: $runs orders through a four-step workflow," \
	"$workers workers"
echo

# Packages, build, install; the compiler's output only on failure.
"$top/test/deps.sh"
work=$(mktemp -d /tmp/quantum_flow_demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
log="$work/build.log"
echo "== Building and installing quantum_flow"
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
else
	sudo=(sudo)
fi
if ! { make -C "$top" -s all && "${sudo[@]}" make -C "$top" -s install; } \
		>"$log" 2>&1; then
	cat "$log" >&2
	exit 1
fi

# The cluster: its setup and teardown chatter is dropped, errors are not.
# It gets a random port below the ephemeral range, so that clusters that
# other tools start at the same moment (they count up from 5432) do not
# race it for one; should a cluster still fail to start, it is tried again
# on another port.  A demo that started and failed is not.
export DEMO_STARTED="$work/started"
for try in 1 2 3; do
	port=$((20000 + RANDOM % 10000))
	if pg_virtualenv -t -c "-p $port" "$0" --in-cluster 3>&1 >/dev/null
	then
		exit 0
	fi
	[ -e "$DEMO_STARTED" ] && exit 1
	[ "$try" -lt 3 ] && echo "the cluster did not start; trying again" >&2
	sleep 1
done
exit 1
