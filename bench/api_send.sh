#!/bin/bash
# api_send.sh - HTTP API send throughput: MESSAGES (20,000) JSON messages from CLIENTS (20)
# concurrent clients through POST /api/v1/messages, relayed to a loopback smtp-sink.
#
# 1. An smtp-sink on loopback accepts everything; hikyaku relays to it (CONNECTIONS connections).
# 2. api_client.py send: CLIENTS threads, each with its own keep-alive connection, post MESSAGES
#    JSON messages (a text part of about SIZE-1024 bytes and a 1 KiB base64 attachment). Every
#    202 means the message is committed to the spool (fsync'ed). A 503 (back-pressure) is retried
#    after its Retry-After and counted.
# 3. Waits until the sink has every message and the spool is empty.
# Prints: accepted messages/s (first request to last 202), delivered messages/s (first request
# to the last message at the sink), retries, peak RSS. There is no goal figure: the issue asks
# for the rate.
#
# Environment (defaults):
#   MESSAGES=20000 CLIENTS=20 SIZE=4096 CONNECTIONS=20 DEADLINE=600
#   HIKYAKU_BIN=<repo>/build/hikyaku BENCH_DIR=/var/tmp BENCH_KEEP=0
# Exit: 0 done, 1 a run failed (including a message missing). Loopback only; every process
# started here is stopped by its PID on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

MESSAGES=${MESSAGES:-20000}
CLIENTS=${CLIENTS:-20}
SIZE=${SIZE:-4096}
CONNECTIONS=${CONNECTIONS:-20}
DEADLINE=${DEADLINE:-600}
HIKYAKU_BIN=${HIKYAKU_BIN:-$root/build/hikyaku}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
PYTHON=${PYTHON:-/usr/bin/python3}

for v in MESSAGES CLIENTS SIZE CONNECTIONS DEADLINE; do
	case ${!v} in
	'' | *[!0-9]*) bench_die "$v must be a positive integer, not '${!v}'" ;;
	esac
	[ "${!v}" -gt 0 ] || bench_die "$v must be at least 1"
done
[ "$SIZE" -ge 1100 ] || bench_die "SIZE must be at least 1100 (the attachment alone is 1 KiB)"
[ -x "$HIKYAKU_BIN" ] || bench_die "$HIKYAKU_BIN not found: build it (make) or set HIKYAKU_BIN"
[ -x "$SMTP_SINK" ] || bench_die "$SMTP_SINK not found (Debian: postfix)"
command -v ss >/dev/null 2>&1 || bench_die "ss not found (Debian: iproute2)"

bench_scratch apisend
work=$BENCH_WORK

fstype=$(stat -f -c %T "$work")
hk_log() { sed 's/^/  | /' "$work/hikyaku.log" | tail -n "${1:-20}" >&2; }
hk_queued() { find "$work/spool/queue" -maxdepth 1 -name '*.env' -type f 2>/dev/null | wc -l; }

# ---- the upstream ---------------------------------------------------------------------------
sink_port=$(bench_free_port)
sink_pid=$(bench_sink_start "$work/accept.sink" "$sink_port")
bench_track "$sink_pid"
bench_wait_listen "$sink_port" 10 "$sink_pid" || bench_die "smtp-sink did not listen on $sink_port"

# ---- hikyaku --------------------------------------------------------------------------------
smtp_port=$(bench_free_port)
api_port=$(bench_free_port)
mkdir -p "$work/spool" "$work/state"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/api.token"
chmod 640 "$work/api.token"
cat >"$work/hikyaku.yaml" <<YAML
# Written by bench/api_send.sh.
node: bench
spool: $work/spool
state: $work/state
listen:
  - { address: 127.0.0.1:$smtp_port, tls: none, auth: none, relay: networks }
networks: [127.0.0.1/32]
limits: { max_message_size: 10M, max_recipients: 100 }
upstreams:
  - { name: provider, host: 127.0.0.1, port: $sink_port, tls: none, verify: false,
      limits: { connections: $CONNECTIONS } }
routes:
  - { name: default, upstreams: [provider] }
retry: { schedule: [1s, 5s, 30s], max_age: 1h }
delivery: { connect_timeout: 2s, command_timeout: 30s, dot_timeout: 60s }
api:
  listen: 127.0.0.1:$api_port
  token_file: $work/api.token
  control_socket: $work/state/control.sock
YAML
if [ "$(id -u)" -eq 0 ] && getent passwd hikyaku >/dev/null; then
	chown -R hikyaku: "$work/spool" "$work/state"
	chgrp hikyaku "$work/api.token"
fi
"$HIKYAKU_BIN" serve -c "$work/hikyaku.yaml" >"$work/hikyaku.log" 2>&1 &
hk_pid=$!
bench_track "$hk_pid"
if ! bench_wait_listen "$api_port" 20 "$hk_pid"; then
	hk_log
	bench_die "hikyaku did not start"
fi

# ---- send -----------------------------------------------------------------------------------
bench_say "posting $MESSAGES JSON messages (~$SIZE bytes, 1 attachment) from $CLIENTS clients"
t0=$(bench_now)
if ! "$PYTHON" "$here/api_client.py" send "http://127.0.0.1:$api_port" "$work/api.token" \
	"$MESSAGES" "$CLIENTS" "$SIZE" >"$work/send.out" 2>"$work/send.err"; then
	sed 's/^/  | /' "$work/send.err" | tail -n 10 >&2
	hk_log
	bench_die "the API client failed"
fi
if ! bench_wait_sinks "$MESSAGES" "$DEADLINE" "$work/accept.sink"; then
	hk_log
	bench_die "the sink got $(bench_sink_count "$work/accept.sink") of $MESSAGES within ${DEADLINE}s"
fi
deliv_secs=$(bench_elapsed "$t0" "$(bench_now)")
for ((i = 0; i < 300; i++)); do
	[ "$(hk_queued)" -eq 0 ] && break
	sleep 0.1
done
left=$(hk_queued)
sleep 1
hk_rss=$(bench_proc_kb "$hk_pid" VmHWM)
bench_stop_pid "$hk_pid"
bench_stop_pid "$sink_pid"

val() { awk -v k="$1" '$1 == k { print $2 }' "$work/send.out"; }
accepted=$(val accepted)
secs=$(val seconds)
rate=$(val rate)
retries=$(val retries)
got=$(bench_sink_count "$work/accept.sink")

echo
echo "API send benchmark: $MESSAGES JSON messages (~$SIZE bytes with a 1 KiB attachment), $CLIENTS concurrent clients"
echo "filesystem: $fstype ($BENCH_DIR), cores: $(nproc), niceness: $(nice)"
echo "  accepted (202, on disk):  $accepted in $secs s = $rate msg/s ($retries retried after 503)"
echo "  delivered at the sink:    $got in $deliv_secs s = $(bench_div "$got" "$deliv_secs") msg/s"
[ "$hk_rss" = n/a ] || echo "  hikyaku peak RSS: $(awk -v k="$hk_rss" 'BEGIN { printf "%.1f", k / 1024 }') MB"
[ "$accepted" = "$MESSAGES" ] || bench_die "$accepted of $MESSAGES accepted"
[ "$got" -ge "$MESSAGES" ] || bench_die "the sink got $got of $MESSAGES"
[ "$left" -eq 0 ] || bench_die "$left messages still queued"
exit 0
