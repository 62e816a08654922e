#!/usr/bin/env bash
# test/soak.sh: the long crash-and-recover run, as `make soak` runs it.
#
# Builds and installs the extension, then runs test/soak.pl, which drives
# the crash recovery scenario of the TAP tests for SOAK_MINUTES minutes
# (default 10) with a server crash about every minute, and prints its
# counters.  PostgreSQL refuses to run as root, so as root the run happens
# as the "postgres" user from a copy of the tree that it owns.  The copy,
# with the server log, is kept when the run fails.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Packages, build, install.
test/deps.sh || exit 1
make -s all || exit 1
if [ "$(id -u)" -eq 0 ]; then
	make -s install >/dev/null || exit 1
else
	sudo make -s install >/dev/null || exit 1
fi

# A copy of the tree that the unprivileged user can write to.
work=$(mktemp -d /tmp/quantum_flow_soak.XXXXXX)
cp -a "$top/." "$work/tree"
rm -rf "$work/tree/tmp_check" "$work/tree/test/results"
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres:postgres "$work"
	as_user=(runuser -u postgres --)
else
	as_user=()
fi

# What PostgreSQL::Test::Cluster expects from PGXS's prove_installcheck.
bindir=$(pg_config --bindir)
pgxs=$(dirname "$(dirname "$(dirname "$(pg_config --pgxs)")")")

cd "$work/tree"
"${as_user[@]}" env TESTDIR="$work/tree" PATH="$bindir:$PATH" \
	PG_REGRESS="$pgxs/src/test/regress/pg_regress" \
	SOAK_MINUTES="${SOAK_MINUTES:-10}" \
	perl -I "$pgxs/src/test/perl" test/soak.pl
status=$?

if [ "$status" -eq 0 ]; then
	rm -rf "$work"
	echo "soak: passed"
else
	echo "soak: FAILED; logs are in $work/tree/tmp_check/log" >&2
fi
exit "$status"
