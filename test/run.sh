#!/usr/bin/env bash
# test/run.sh: the whole test suite, as `make test` runs it.
#
# Installs missing packages, builds and installs the extension, then runs
# every suite against throwaway clusters:
#   - pg_regress files (sql/, expected/) and isolation specs (specs/),
#   - TAP tests (test/t/), which start and crash their own clusters,
#   - pgTAP files (test/pgtap/) through pg_prove.
# PostgreSQL refuses to run as root, so as root the suites run as the
# "postgres" user from a copy of the tree that it owns.
# Ends with one line: "N passed, N failed", counting test files.
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
work=$(mktemp -d /tmp/quantum_flow_test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a "$top/." "$work/tree"
rm -rf "$work/tree/test/results" "$work/tree/tmp_check"
mkdir -p "$work/tree/test/results"
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres:postgres "$work"
	as_user=(runuser -u postgres --)
else
	as_user=()
fi
log="$work/log"
mkdir -p "$log"
chmod 777 "$log"

passed=0
failed=0

# count_regress FILE: pg_regress and pg_isolation_regress results.
count_regress() {
	local ok bad
	ok=$(grep -cE '\.\.\. ok' "$1" || true)
	bad=$(grep -cE '\.\.\. FAILED|failed \(ignored\)' "$1" || true)
	passed=$((passed + ok))
	failed=$((failed + bad))
}

# count_prove FILE: prove and pg_prove results, one per test file.
count_prove() {
	local ok bad
	ok=$(grep -cE '^[^ ]+ \.+ ok' "$1" || true)
	bad=$(grep -cE '^[^ ]+ \.+ (Failed|Dubious|skipped:|No subtests)' \
		"$1" || true)
	bad=$((bad + $(grep -cE '^[^ ]+ \.+ *$' "$1" || true)))
	passed=$((passed + ok))
	failed=$((failed + bad))
}

. "$top/test/lib.sh"

# 1. pg_regress, isolation and TAP, through PGXS installcheck.
echo "== pg_regress, isolation and TAP tests"
PGPORT=$(qf_free_port) || exit 1
export PGPORT
"${as_user[@]}" pg_virtualenv -t -- make -C "$work/tree" -s installcheck \
	2>&1 | tee "$log/installcheck.out"
status=${PIPESTATUS[0]}
count_regress "$log/installcheck.out"
count_prove "$log/installcheck.out"
if [ "$status" -ne 0 ]; then
	for f in "$work/tree/test/results/regression.diffs" \
			 "$work/tree/test/results/isolation/regression.diffs"; do
		[ -f "$f" ] && cat "$f"
	done
	[ "$failed" -eq 0 ] && failed=1
fi

# 2. pgTAP.
echo "== pgTAP tests"
PGPORT=$(qf_free_port) || exit 1
"${as_user[@]}" pg_virtualenv -t -- sh -c \
	"cd '$work/tree' && pg_prove --failures test/pgtap/*.sql" \
	2>&1 | tee "$log/pgtap.out"
status=${PIPESTATUS[0]}
count_prove "$log/pgtap.out"
if [ "$status" -ne 0 ] && ! grep -qE '\.+ (Failed|Dubious)' "$log/pgtap.out"
then
	failed=$((failed + 1))
fi

# 3. Extra suites that need their own setup (examples, fuzzing).
for extra in test/suites/*.sh; do
	[ -x "$extra" ] || continue
	name=$(basename "$extra" .sh)
	echo "== $name"
	if "$extra" "$work" 2>&1 | tee "$log/$name.out"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
