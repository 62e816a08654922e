#!/usr/bin/env bash
# test/suites/sqlsmith.sh: a bounded fuzzing run, as part of `make test`.
#
# Called by test/run.sh with a scratch directory as $1, after the extension
# was installed.  Runs test/sqlsmith.sh with a budget of 3000 statements or
# 60 seconds, whichever ends first: it fails if sqlsmith made a server
# process crash.  The seed is fixed so that the test command runs the same
# statements every time; exploring goes with other seeds and longer runs:
# SQLSMITH_SEED=777 test/sqlsmith.sh 100000 3600.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
SQLSMITH_SEED=${SQLSMITH_SEED:-12345} exec "$top/test/sqlsmith.sh" 3000 60
