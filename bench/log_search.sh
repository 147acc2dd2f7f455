#!/bin/bash
# log_search.sh - email log search latency: GET /api/v1/messages and `hikyaku log` over a log of
# MESSAGES (1,000,000) messages.
#
# 1. bench_log_fill writes the log through the real writer (maillog_received, maillog_attempt,
#    maillog_status: schema, indexes, FTS, batching as in the daemon): one recipient and three
#    events per message, received times spread over DAYS (30) days, ~5,000 recipient domains,
#    50 senders, subjects with words to search. It also writes QUERIES sample values per kind.
# 2. hikyaku starts on that state directory (API on loopback with a token, the only upstream on
#    a closed loopback port, retention long enough to keep everything).
# 3. api_client.py times QUERIES requests of each kind, one after the other, limit 50:
#    to=ADDR, status=S&since=A&until=B, q=WORD; first with a new connection per request, then the
#    same over one keep-alive connection; then CLI_QUERIES of each kind through
#    `hikyaku log ... --json` over the control socket (process start included).
# Goal: p95 of every API kind < GOAL_P95_MS (50), both with a new connection per request and over
# one keep-alive connection.
#
# Environment (defaults):
#   MESSAGES=1000000 DAYS=30 QUERIES=200 CLI_QUERIES=10
#   HIKYAKU_BIN=<repo>/build/hikyaku FILL_BIN=<repo>/build/bench/bench_log_fill
#   BENCH_DIR=/var/tmp BENCH_KEEP=0 GOAL_P95_MS=50
# Exit: 0 goal met, 1 a run failed, 3 the goal missed. Loopback only; every process started here
# is stopped by its PID on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

MESSAGES=${MESSAGES:-1000000}
DAYS=${DAYS:-30}
QUERIES=${QUERIES:-200}
CLI_QUERIES=${CLI_QUERIES:-10}
HIKYAKU_BIN=${HIKYAKU_BIN:-$root/build/hikyaku}
FILL_BIN=${FILL_BIN:-$(dirname "$HIKYAKU_BIN")/bench/bench_log_fill}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
GOAL_P95_MS=${GOAL_P95_MS:-50}
PYTHON=${PYTHON:-/usr/bin/python3}

for v in MESSAGES DAYS QUERIES CLI_QUERIES; do
	case ${!v} in
	'' | *[!0-9]*) bench_die "$v must be a positive integer, not '${!v}'" ;;
	esac
	[ "${!v}" -gt 0 ] || bench_die "$v must be at least 1"
done
[ -x "$HIKYAKU_BIN" ] || bench_die "$HIKYAKU_BIN not found: build it (make) or set HIKYAKU_BIN"
[ -x "$FILL_BIN" ] || bench_die "$FILL_BIN not found: build it (ninja -C build) or set FILL_BIN"
command -v ss >/dev/null 2>&1 || bench_die "ss not found (Debian: iproute2)"

BENCH_STOP_GRACE=30
bench_scratch logsearch
work=$BENCH_WORK

fstype=$(stat -f -c %T "$work")
state=$work/state
mkdir -p "$state" "$work/spool"

# ---- 1. fill --------------------------------------------------------------------------------
bench_say "filling the email log: $MESSAGES messages x 3 events over $DAYS days (through maillog)"
t0=$(bench_now)
if ! "$FILL_BIN" -n "$MESSAGES" -d "$DAYS" -k "$QUERIES" -o "$work/samples.txt" "$state" \
	>"$work/fill.log" 2>&1; then
	sed 's/^/  | /' "$work/fill.log" | tail -n 20 >&2
	bench_die "bench_log_fill failed"
fi
t1=$(bench_now)
fill_secs=$(bench_elapsed "$t0" "$t1")
fill_rate=$(bench_div "$MESSAGES" "$fill_secs")
db_mb=$(du -cm "$state"/hikyaku.db* | awk 'END { print $1 }')
bench_say "filled in ${fill_secs}s ($fill_rate msg/s), database $db_mb MB"

# ---- 2. hikyaku on that state ---------------------------------------------------------------
smtp_port=$(bench_free_port)
api_port=$(bench_free_port)
closed=$(bench_free_port) # nothing listens there
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/api.token"
chmod 640 "$work/api.token"
cat >"$work/hikyaku.yaml" <<YAML
# Written by bench/log_search.sh.
node: bench
spool: $work/spool
state: $state
listen:
  - { address: 127.0.0.1:$smtp_port, tls: none, auth: none, relay: networks }
networks: [127.0.0.0/8]
upstreams:
  - { name: primary, host: 127.0.0.1, port: $closed, tls: none, verify: false }
routes:
  - { name: default, upstreams: [primary] }
api:
  listen: 127.0.0.1:$api_port
  token_file: $work/api.token
  control_socket: $state/control.sock
log: { retention: 3650d, keep_bodies: false }
YAML
if [ "$(id -u)" -eq 0 ] && getent passwd hikyaku >/dev/null; then
	chown -R hikyaku: "$work/spool" "$state"
	chgrp hikyaku "$work/api.token"
fi
"$HIKYAKU_BIN" serve -c "$work/hikyaku.yaml" >"$work/hikyaku.log" 2>&1 &
hk_pid=$!
bench_track "$hk_pid"
if ! bench_wait_listen "$api_port" 120 "$hk_pid"; then
	sed 's/^/  | /' "$work/hikyaku.log" | tail -n 20 >&2
	bench_die "hikyaku did not serve the API on 127.0.0.1:$api_port"
fi

# ---- 3. queries -----------------------------------------------------------------------------
bench_say "timing $QUERIES API queries per kind, then $CLI_QUERIES per kind through hikyaku log"
if ! "$PYTHON" "$here/api_client.py" search "http://127.0.0.1:$api_port" "$work/api.token" \
	"$work/samples.txt" --cli "$HIKYAKU_BIN" "$work/hikyaku.yaml" "$CLI_QUERIES" \
	>"$work/search.out" 2>"$work/search.err"; then
	sed 's/^/  | /' "$work/search.err" | tail -n 20 >&2
	sed 's/^/  | /' "$work/hikyaku.log" | tail -n 10 >&2
	bench_die "the queries failed"
fi
hk_rss=$(bench_proc_kb "$hk_pid" VmHWM)
bench_stop_pid "$hk_pid" 30

# ---- summary --------------------------------------------------------------------------------
status=0
label() {
	case $1 in
	to) echo "to=ADDR" ;;
	range) echo "status=S&since=&until=" ;;
	q) echo "q=WORD (full text)" ;;
	esac
}
echo
echo "log search benchmark: $MESSAGES messages x 3 events over $DAYS days, $QUERIES API queries per kind"
echo "filesystem: $fstype ($BENCH_DIR), cores: $(nproc), niceness: $(nice)"
echo "  fill through maillog: ${fill_secs} s ($fill_rate msg/s), database $db_mb MB"
printf '  %-24s %8s %8s %8s %8s  %s\n' "GET /api/v1/messages" "p50 ms" "p95 ms" "p99 ms" "max ms" \
	"rows/query (limit 50; a new connection per query)"
verdicts=
while read -r tag kind n p50 p95 p99 max rows; do
	[ "$tag" = stat ] || continue
	printf '  %-24s %8s %8s %8s %8s  %s\n' "$(label "$kind")" "$p50" "$p95" "$p99" "$max" "$rows"
	if awk -v p="$p95" -v g="$GOAL_P95_MS" 'BEGIN { exit !(p < g) }'; then
		verdicts+=" $kind met,"
	else
		verdicts+=" $kind NOT met,"
		status=3
	fi
	[ "$n" -eq "$QUERIES" ] || bench_die "$kind: $n queries timed, expected $QUERIES"
done <"$work/search.out"
echo "  goal p95 < $GOAL_P95_MS ms:${verdicts%,}"
printf '  %-24s %8s %8s %8s %8s  %s\n' "same, keep-alive" "p50 ms" "p95 ms" "p99 ms" "max ms" \
	"(one connection for all queries)"
verdicts=
while read -r tag kind n p50 p95 p99 max rows; do
	[ "$tag" = keepalive ] || continue
	printf '  %-24s %8s %8s %8s %8s\n' "$(label "$kind")" "$p50" "$p95" "$p99" "$max"
	if awk -v p="$p95" -v g="$GOAL_P95_MS" 'BEGIN { exit !(p < g) }'; then
		verdicts+=" $kind met,"
	else
		verdicts+=" $kind NOT met,"
		status=3
	fi
done <"$work/search.out"
echo "  goal p95 < $GOAL_P95_MS ms:${verdicts%,}"
printf '  %-24s %8s %8s   (hikyaku log --json over the control socket, process start included)\n' \
	"CLI hikyaku log" "p50 ms" "max ms"
while read -r tag kind n p50 max; do
	[ "$tag" = cli ] || continue
	printf '  %-24s %8s %8s   (%s queries)\n' "$(label "$kind")" "$p50" "$max" "$n"
done <"$work/search.out"
[ "$hk_rss" = n/a ] || echo "  hikyaku peak RSS: $(awk -v k="$hk_rss" 'BEGIN { printf "%.1f", k / 1024 }') MB"
exit "$status"
