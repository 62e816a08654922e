#!/usr/bin/env bash
# test/suites/node_worker.sh: the Node.js reference worker, end to end.
#
# Called by test/run.sh with a scratch directory as $1, after the extension
# was installed.  Installs the locked npm dependencies of examples/node when
# node_modules is missing, then runs examples/node/test_worker.mjs against a
# throwaway cluster: real worker processes, one killed with SIGKILL, one
# stopped with SIGTERM.  Exits non-zero on any failure.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
scratch=${1:-$(mktemp -d)}

# Node.js itself, from Debian when the machine has none.
command -v node >/dev/null && command -v npm >/dev/null ||
	"$top/test/deps.sh" nodejs npm

if [ ! -d "$top/examples/node/node_modules" ]; then
	(cd "$top/examples/node" && npm ci --no-audit --no-fund)
fi

# A free port for the throwaway cluster.
. "$top/test/lib.sh"
PGPORT=$(qf_free_port)
export PGPORT

cd "$scratch"
timeout 240 pg_virtualenv -t node "$top/examples/node/test_worker.mjs"
