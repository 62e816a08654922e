#!/usr/bin/env bash
# test/suites/python_worker.sh: the Python reference worker, end to end.
#
# Called by test/run.sh with a scratch directory as $1, after the extension
# was installed.  Installs python3-psycopg when it is missing, then runs
# examples/python/test_worker.py against a throwaway cluster: real worker
# processes, one killed with SIGKILL, one stopped with SIGTERM.  Exits
# non-zero on any failure.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${1:-$(mktemp -d)}

# Debian's psycopg 3 installs for /usr/bin/python3 only.
"$top/test/deps.sh" python3-psycopg

# A free port for the throwaway cluster.
. "$top/test/lib.sh"
PGPORT=$(qf_free_port)
export PGPORT

export PYTHONPYCACHEPREFIX="$scratch/pycache"
cd "$scratch"
timeout 240 pg_virtualenv -t \
	/usr/bin/python3 "$top/examples/python/test_worker.py"
