# test/lib.sh: shell functions shared by the test, demo and bench scripts.
# Source it; it defines functions only.

# qf_free_port: print a TCP port on which no server listens, neither on
# loopback nor as a Unix socket in /var/run/postgresql.  pg_virtualenv -t
# honours PGPORT; left to itself it takes the first port from 5432 that
# its own throwaway configuration does not list, whether or not another
# cluster already listens there.
qf_free_port() {
	local port
	for port in $(shuf -i 55000-59999 -n 100); do
		[ -e "/var/run/postgresql/.s.PGSQL.$port" ] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}
