# shellcheck shell=bash
# lib.sh - helpers shared by the benchmarks under bench/ (sourced, not run).
#
# Everything listens on loopback only. Processes are started by the scripts and stopped by the
# PIDs they recorded; nothing here looks processes up by name.

bench_say() { printf 'bench: %s\n' "$*"; }
bench_die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

# Print a TCP port on 127.0.0.1 that is free right now.
bench_free_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Wait until something listens on 127.0.0.1:$1 (deadline $2 seconds). If $3 is a PID, give up
# as soon as that process is gone. Returns 1 on failure.
bench_wait_listen() {
	local port=$1 deadline=$2 pid=${3:-} i
	for ((i = 0; i < deadline * 10; i++)); do
		if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
			return 0
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# Wait until PID $1 has exited (deadline $2 seconds). Returns 1 if it is still there.
bench_wait_gone() {
	local pid=$1 deadline=$2 i
	for ((i = 0; i < deadline * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# Seconds since the epoch with nanoseconds.
bench_now() { date +%s.%N; }

# $1 / $2 with two decimals ("n/a" when $2 is zero).
bench_div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'; }

# Number of regular files under the given directories (missing ones count as empty).
bench_count_files() {
	local d n=0
	for d in "$@"; do
		[ -d "$d" ] || continue
		n=$((n + $(find "$d" -type f | wc -l)))
	done
	echo "$n"
}
