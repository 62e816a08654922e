#!/usr/bin/env bash
# Install the Debian packages that building and testing quantum_flow need,
# when they are missing.  As root this runs apt-get; as anyone else it
# prints the command to run and fails.
set -euo pipefail

PGVER=${PGVER:-15}
packages=(
	"postgresql-$PGVER"
	"postgresql-server-dev-$PGVER"
	"postgresql-$PGVER-pgtap"
	libtap-parser-sourcehandler-pgtap-perl
	libipc-run-perl
	libpq-dev
	postgresql-common
	gcc
	make
	"$@"
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "quantum_flow needs these packages: ${missing[*]}" >&2
	echo "Install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
