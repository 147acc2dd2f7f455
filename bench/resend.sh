#!/bin/bash
# resend.sh - bulk resend: MESSAGES (10,000) bounced messages resent by filter.
#
# 1. hikyaku (log.keep_bodies on) relays MESSAGES x SIZE from smtp-source to an smtp-sink that
#    rejects every RCPT with "550 5.1.1" (-f RCPT -B ...): every message bounces, and its DSN
#    (from <>, to the sender) bounces too at the same upstream. Wait until the queue is empty.
# 2. The configuration is edited to point the upstream at a second, accepting smtp-sink (which
#    dumps every transaction) and hikyaku reloads it on SIGHUP.
# 3. POST /api/v1/resend {"filter":{"status":"bounced","from":SENDER}} (the sender keeps the
#    bounced DSNs out), then GET /api/v1/resend/{job} every 20 ms until it is done: time until
#    every message is queued (goal < GOAL_QUEUED s, 10), and until the sink has them all.
# 4. Checks the dump: every original Message-ID exactly once.
#
# Environment (defaults):
#   MESSAGES=10000 SESSIONS=20 SIZE=5120 CONNECTIONS=20 DEADLINE=600
#   HIKYAKU_BIN=<repo>/build/hikyaku BENCH_DIR=/var/tmp BENCH_KEEP=0 GOAL_QUEUED=10
# Exit: 0 goal met, 1 a run failed (including a message missing or delivered twice), 3 the goal
# missed. Loopback only; every process started here is stopped by its PID on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-5120}
CONNECTIONS=${CONNECTIONS:-20}
DEADLINE=${DEADLINE:-600}
HIKYAKU_BIN=${HIKYAKU_BIN:-$root/build/hikyaku}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
GOAL_QUEUED=${GOAL_QUEUED:-10}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
PYTHON=${PYTHON:-/usr/bin/python3}
SENDER=bench@example.com
RECIPIENT=rcpt@example.net

for v in MESSAGES SESSIONS SIZE CONNECTIONS DEADLINE; do
	case ${!v} in
	'' | *[!0-9]*) bench_die "$v must be a positive integer, not '${!v}'" ;;
	esac
	[ "${!v}" -gt 0 ] || bench_die "$v must be at least 1"
done
[ -x "$HIKYAKU_BIN" ] || bench_die "$HIKYAKU_BIN not found: build it (make) or set HIKYAKU_BIN"
[ -x "$SMTP_SOURCE" ] || bench_die "$SMTP_SOURCE not found (Debian: postfix)"
[ -x "$SMTP_SINK" ] || bench_die "$SMTP_SINK not found (Debian: postfix)"
command -v ss >/dev/null 2>&1 || bench_die "ss not found (Debian: iproute2)"

bench_scratch resend
work=$BENCH_WORK

fstype=$(stat -f -c %T "$work")
hk_log() { sed 's/^/  | /' "$work/hikyaku.log" | tail -n "${1:-20}" >&2; }
hk_queued() { find "$work/spool/queue" -maxdepth 1 -name '*.env' -type f 2>/dev/null | wc -l; }

# sink NAME PORT [opts]: an smtp-sink with counters in $work/NAME.sink; sets SINK_PID.
sink() {
	local name=$1 port=$2
	shift 2
	SINK_PID=$(bench_sink_start "$work/$name.sink" "$port" "$@")
	bench_track "$SINK_PID"
	bench_wait_listen "$port" 10 "$SINK_PID" || bench_die "smtp-sink $name did not listen on $port"
}

# ---- the two upstreams ----------------------------------------------------------------------
reject_port=$(bench_free_port)
sink reject "$reject_port" -f RCPT -B "550 5.1.1 User unknown"
accept_port=$(bench_free_port)
# smtp-sink drops to nobody before it opens the dump: a directory it may write.
mkdir -p "$work/dumps"
chmod 1777 "$work/dumps"
sink accept "$accept_port" -D "$work/dumps/accept.dump"
accept_pid=$SINK_PID

# ---- hikyaku --------------------------------------------------------------------------------
smtp_port=$(bench_free_port)
api_port=$(bench_free_port)
mkdir -p "$work/spool" "$work/state"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/api.token"
chmod 640 "$work/api.token"
# write_config UPSTREAM_PORT
write_config() {
	cat >"$work/hikyaku.yaml.new" <<YAML
# Written by bench/resend.sh.
node: bench
spool: $work/spool
state: $work/state
listen:
  - { address: 127.0.0.1:$smtp_port, tls: none, auth: none, relay: networks }
networks: [127.0.0.1/32]
limits: { max_message_size: 10M, max_recipients: 100 }
upstreams:
  - { name: provider, host: 127.0.0.1, port: $1, tls: none, verify: false,
      limits: { connections: $CONNECTIONS } }
routes:
  - { name: default, upstreams: [provider] }
retry: { schedule: [1s, 5s, 30s], max_age: 1h }
delivery: { connect_timeout: 2s, command_timeout: 30s, dot_timeout: 60s }
api:
  listen: 127.0.0.1:$api_port
  token_file: $work/api.token
  control_socket: $work/state/control.sock
log: { keep_bodies: true }
YAML
	mv "$work/hikyaku.yaml.new" "$work/hikyaku.yaml"
}
write_config "$reject_port"
if [ "$(id -u)" -eq 0 ] && getent passwd hikyaku >/dev/null; then
	chown -R hikyaku: "$work/spool" "$work/state"
	chgrp hikyaku "$work/api.token"
fi
"$HIKYAKU_BIN" serve -c "$work/hikyaku.yaml" >"$work/hikyaku.log" 2>&1 &
hk_pid=$!
bench_track "$hk_pid"
if ! bench_wait_listen "$smtp_port" 20 "$hk_pid" || ! bench_wait_listen "$api_port" 20 "$hk_pid"; then
	hk_log
	bench_die "hikyaku did not start"
fi

# ---- 1. make MESSAGES bounced messages ------------------------------------------------------
bench_say "bouncing $MESSAGES messages x $SIZE bytes at an upstream that answers 550 to RCPT"
t0=$(bench_now)
if ! "$SMTP_SOURCE" -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$SENDER" -t "$RECIPIENT" \
	-M bench.localdomain "127.0.0.1:$smtp_port" >"$work/source.log" 2>&1; then
	sed 's/^/  | /' "$work/source.log" | tail -n 20 >&2
	bench_die "smtp-source failed (a message was not accepted)"
fi
# Every original and its DSN finished (bounced) once the spool is empty.
for ((i = 0; i < DEADLINE * 10; i++)); do
	[ "$(hk_queued)" -eq 0 ] && break
	kill -0 "$hk_pid" 2>/dev/null || { hk_log; bench_die "hikyaku exited"; }
	sleep 0.1
done
[ "$(hk_queued)" -eq 0 ] || bench_die "$(hk_queued) messages still queued after ${DEADLINE}s"
bounce_secs=$(bench_elapsed "$t0" "$(bench_now)")
bench_say "all bounced in ${bounce_secs}s"

# ---- 2. point the upstream at the accepting sink --------------------------------------------
write_config "$accept_port"
done_before=$(grep -c 'event=reload_done' "$work/hikyaku.log" || true)
kill -HUP "$hk_pid"
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c 'event=reload_done' "$work/hikyaku.log" || true)" -gt "$done_before" ] && break
	grep -q 'event=reload_failed' "$work/hikyaku.log" && { hk_log; bench_die "reload failed"; }
	sleep 0.1
done
[ "$(grep -c 'event=reload_done' "$work/hikyaku.log" || true)" -gt "$done_before" ] ||
	bench_die "no reload_done within 10 s of SIGHUP"

# ---- 3. bulk resend -------------------------------------------------------------------------
bench_say "resending by filter {status: bounced, from: $SENDER}"
t0=$(bench_now)
"$PYTHON" "$here/api_client.py" resend "http://127.0.0.1:$api_port" "$work/api.token" \
	"{\"status\": \"bounced\", \"from\": \"$SENDER\"}" "$DEADLINE" >"$work/resend.out" 2>"$work/resend.err" &
cl_pid=$!
bench_track "$cl_pid"
if ! bench_wait_sinks "$MESSAGES" "$DEADLINE" "$work/accept.sink"; then
	sed 's/^/  | /' "$work/resend.err" | tail -n 5 >&2
	bench_die "the sink got $(bench_sink_count "$work/accept.sink") of $MESSAGES within ${DEADLINE}s"
fi
deliv_secs=$(bench_elapsed "$t0" "$(bench_now)")
rc=0
wait "$cl_pid" || rc=$?
bench_stop_pid "$cl_pid"
if [ "$rc" -ne 0 ]; then
	sed 's/^/  | /' "$work/resend.err" | tail -n 10 >&2
	bench_die "the resend request failed"
fi
val() { awk -v k="$1" '$1 == k { print $2 }' "$work/resend.out"; }
count=$(val count)
done_n=$(val done)
failed=$(val failed)
post_secs=$(val post_seconds)
queued_secs=$(val queued_seconds)
# Let late duplicates (if any) arrive before counting.
for ((i = 0; i < 300; i++)); do
	[ "$(hk_queued)" -eq 0 ] && break
	sleep 0.1
done
sleep 1
hk_rss=$(bench_proc_kb "$hk_pid" VmHWM)
bench_stop_pid "$hk_pid"
bench_stop_pid "$accept_pid"

# ---- 4. verify ------------------------------------------------------------------------------
got=$(bench_sink_count "$work/accept.sink")
mids() { grep -aiE '^message-id:' "$work/dumps/accept.dump" | tr -d '\r' | awk '{ print tolower($2) }'; }
total_ids=$(mids | wc -l)
unique_ids=$(mids | sort -u | wc -l)
resent_lines=$(grep -ac '(resent from [0-9A-F]\{16\})' "$work/dumps/accept.dump" || true)

status=0
echo
echo "resend benchmark: $MESSAGES bounced messages x $SIZE bytes resent by filter, keep_bodies on"
echo "filesystem: $fstype ($BENCH_DIR), cores: $(nproc), niceness: $(nice)"
echo "  bounced (+ DSNs) in:            ${bounce_secs} s"
echo "  job: count $count, done $done_n, failed $failed (POST answered in ${post_secs} s)"
if awk -v s="$queued_secs" -v g="$GOAL_QUEUED" 'BEGIN { exit !(s < g) }'; then v=met; else v="NOT met"; status=3; fi
echo "  all queued again (job done):    ${queued_secs} s (goal < ${GOAL_QUEUED} s): $v"
echo "  all delivered at the sink:      ${deliv_secs} s ($(bench_div "$MESSAGES" "$deliv_secs") msg/s)"
echo "  sink: $got messages, $total_ids Message-IDs, $unique_ids unique, $resent_lines with '(resent from ID)'"
[ "$hk_rss" = n/a ] || echo "  hikyaku peak RSS: $(awk -v k="$hk_rss" 'BEGIN { printf "%.1f", k / 1024 }') MB"
if [ "$count" != "$MESSAGES" ] || [ "$done_n" != "$MESSAGES" ] || [ "$failed" != 0 ]; then
	bench_die "the job resent $done_n of $count (failed $failed), expected $MESSAGES"
fi
if [ "$got" -ne "$MESSAGES" ] || [ "$unique_ids" -ne "$MESSAGES" ] || [ "$total_ids" -ne "$MESSAGES" ] ||
	[ "$resent_lines" -ne "$MESSAGES" ]; then
	bench_die "not every message arrived exactly once"
fi
echo "  every message arrived exactly once: yes"
exit "$status"
