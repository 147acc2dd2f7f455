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

# --- smtp-sink as a counting upstream (relay.sh) ----------------------------------------------

# bench_sink_start OUTFILE PORT [EXTRA_OPTS...]: start Postfix's smtp-sink on 127.0.0.1:PORT with
# running counters (-c) written to OUTFILE; prints its PID. As root it runs as nobody (-u).
bench_sink_start() {
	local out=$1 port=$2 sink=${SMTP_SINK:-/usr/sbin/smtp-sink}
	shift 2
	local user=()
	[ "$(id -u)" -eq 0 ] && user=(-u nobody)
	"$sink" -c "${user[@]}" -m 1024 "$@" "127.0.0.1:$port" 1024 >"$out" 2>&1 &
	echo $!
}

# bench_sink_count OUTFILE: messages the sink has received so far (its last "mesg=N" counter).
bench_sink_count() {
	local n
	n=$(tail -c 200 "$1" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' |
		tail -n 1)
	echo "${n:-0}"
}

# bench_wait_sinks N DEADLINE OUTFILE...: wait until the sinks together received at least N
# messages; returns 1 after DEADLINE seconds.
bench_wait_sinks() {
	local want=$1 deadline=$2 f total end
	shift 2
	end=$(awk -v t="$(bench_now)" -v d="$deadline" 'BEGIN { printf "%.3f", t + d }')
	while :; do
		total=0
		for f in "$@"; do
			total=$((total + $(bench_sink_count "$f")))
		done
		[ "$total" -ge "$want" ] && return 0
		awk -v t="$(bench_now)" -v e="$end" 'BEGIN { exit !(t >= e) }' && return 1
		sleep 0.02
	done
}

# bench_proc_kb PID FIELD: a /proc/PID/status field in kB (VmHWM, VmRSS), or "n/a".
bench_proc_kb() {
	awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print "n/a" }' \
		"/proc/$1/status" 2>/dev/null || echo n/a
}

# Seconds between two bench_now stamps, three decimals.
bench_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

# --- scratch directory and the processes a benchmark starts ---------------------------------

BENCH_PIDS=()
BENCH_WORK=

# bench_track PID...: stop these by PID when the benchmark ends (bench_scratch's exit trap).
bench_track() { BENCH_PIDS+=("$@"); }

# bench_stop_pid PID [GRACE]: SIGTERM, then SIGKILL after GRACE seconds (15); forget the PID.
bench_stop_pid() {
	local pid=$1 grace=${2:-15} keep=() p
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		bench_wait_gone "$pid" "$grace" || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	for p in "${BENCH_PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	BENCH_PIDS=("${keep[@]}")
}

bench_on_exit() {
	local rc=$? p
	set +e
	for p in "${BENCH_PIDS[@]}"; do
		bench_stop_pid "$p" "${BENCH_STOP_GRACE:-15}"
	done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		bench_say "scratch kept in $BENCH_WORK"
	elif [ -n "$BENCH_WORK" ]; then
		rm -rf "$BENCH_WORK"
		bench_cleaned
	fi
	exit "$rc"
}

# bench_cleaned: note the time a benchmark removed its scratch directory (bench_settle reads it).
bench_cleaned() { date +%s >"${BENCH_DIR:-/var/tmp}/.hk-bench-cleaned" 2>/dev/null || true; }

# bench_settle: wait until BENCH_SETTLE seconds (default 300) have passed since the last benchmark
# removed its scratch directory. Why: ext4 without a journal makes every new inode skip the inodes
# freed in the last 5 minutes (its "recently deleted" test), so a run started right after another
# run's cleanup (tens of thousands of files) measures that cleanup, not the servers. Back to back,
# bench/ingress.sh printed 2,215 then 1,736 msg/s for hikyaku and 834 then 650 for Postfix; after
# a pause, 3,042 and 913. The same holds after anything else that deletes many files (make test):
# run benchmarks on a quiet machine. BENCH_SETTLE=0 skips the wait.
bench_settle() {
	local settle=${BENCH_SETTLE:-300} last now left
	last=$(cat "${BENCH_DIR:-/var/tmp}/.hk-bench-cleaned" 2>/dev/null || echo 0)
	now=$(date +%s)
	case $last in '' | *[!0-9]*) last=0 ;; esac
	left=$((last + settle - now))
	if [ "$left" -gt 0 ]; then
		bench_say "waiting ${left}s: the last benchmark removed its files less than ${settle}s ago" \
			"(ext4 makes new files skip recently freed inodes; BENCH_SETTLE=0 skips this)"
		sleep "$left"
	fi
}

# bench_fresh_groups DIR: let ext4 place each directory created right under DIR in a block group
# of its own choosing (chattr +T: DIR is a top of hierarchies for the Orlov allocator, which
# spreads such directories over the disk) instead of next to the last run's scratch. Why: ext4 without
# a journal makes every new inode skip the inodes freed in the last minutes of its group, one
# table lookup each, so a run right after another one's cleanup (tens of thousands of files) paid
# for that cleanup, and whichever side ran first paid most. With this, each side's spool usually
# starts in a different group; no daemon's own work is made cheaper. No-op where chattr cannot.
bench_fresh_groups() { chattr +T "$1" 2>/dev/null || true; }

# bench_scratch NAME: make $BENCH_DIR/hk-NAME.XXXXXX (mode 755) as $BENCH_WORK and install the
# exit trap that stops every tracked process and removes it (kept with BENCH_KEEP=1). Call it in
# the main shell, not in $(...), or the trap is lost.
bench_scratch() {
	mkdir -p "$BENCH_DIR"
	bench_settle
	BENCH_WORK=$(mktemp -d "$BENCH_DIR/hk-$1.XXXXXX")
	chmod 755 "$BENCH_WORK"
	bench_fresh_groups "$BENCH_WORK"
	trap bench_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}
