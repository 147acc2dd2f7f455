#!/bin/bash
# relay.sh - delivery benchmark: smtp-source -> relay -> smtp-sink, hikyaku against a private
# Postfix, plus hikyaku's failover time, message loss and memory with a large deferred queue.
#
# Parts (all in one run by default; BENCH_ONLY picks one):
#   relay     hikyaku relays MESSAGES x SIZE over SESSIONS sessions to an smtp-sink upstream;
#             end-to-end msg/s = MESSAGES / (first submission .. the sink counted all of them)
#   postfix   the same through a private Postfix with relayhost = [127.0.0.1]:SINKPORT
#   failover  primary and backup sinks; the primary is SIGKILLed mid-stream: time from the kill to
#             the first delivery at the backup, messages lost, messages delivered twice
#   rss       RSS_MESSAGES small messages queued behind an upstream that refuses connections:
#             hikyaku's VmRSS and VmHWM
# Goals: ratio >= GOAL_RATIO (3), failover < GOAL_FAILOVER s (1), 0 lost, RSS < GOAL_RSS_MB (100).
#
# Environment (defaults):
#   MESSAGES=10000 SESSIONS=20 SIZE=5120      the relay load (both servers)
#   FAILOVER_MESSAGES=4000                    messages in the failover part
#   RSS_MESSAGES=100000 RSS_SIZE=256          the deferred queue of the rss part
#   CONNECTIONS=20                            hikyaku's connections per upstream (Postfix's
#                                             default_destination_concurrency_limit is 20)
#   HIKYAKU_BIN=<repo>/build/hikyaku BENCH_DIR=/var/tmp BENCH_KEEP=0 DEADLINE=600
#   BENCH_ONLY=all                            all | relay | postfix | failover | rss
#   HK_EXTRA=                                 YAML lines appended to hikyaku's configuration,
#                                             e.g. $'spool_workers: 8' to try a setting
# Exit: 0 goals met, 1 a run failed, 3 a goal missed. Needs root for Postfix (postfix start).
# Loopback only; every process started here is stopped by its PID on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
# shellcheck source=bench/postfix-instance.sh
. "$here/postfix-instance.sh"

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-5120}
FAILOVER_MESSAGES=${FAILOVER_MESSAGES:-4000}
RSS_MESSAGES=${RSS_MESSAGES:-100000}
RSS_SIZE=${RSS_SIZE:-256}
CONNECTIONS=${CONNECTIONS:-20}
DEADLINE=${DEADLINE:-600}
HIKYAKU_BIN=${HIKYAKU_BIN:-$root/build/hikyaku}
BENCH_ONLY=${BENCH_ONLY:-all}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
GOAL_RATIO=${GOAL_RATIO:-3}
GOAL_FAILOVER=${GOAL_FAILOVER:-1}
GOAL_RSS_MB=${GOAL_RSS_MB:-100}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SENDER=bench@example.com
RECIPIENT=rcpt@example.net

for v in MESSAGES SESSIONS SIZE FAILOVER_MESSAGES RSS_MESSAGES RSS_SIZE CONNECTIONS DEADLINE; do
	case ${!v} in
	'' | *[!0-9]*) bench_die "$v must be a positive integer, not '${!v}'" ;;
	esac
	[ "${!v}" -gt 0 ] || bench_die "$v must be at least 1"
done
case $BENCH_ONLY in
all | relay | postfix | failover | rss) ;;
*) bench_die "BENCH_ONLY must be all, relay, postfix, failover or rss" ;;
esac
part() { [ "$BENCH_ONLY" = all ] || [ "$BENCH_ONLY" = "$1" ]; }

[ -x "$SMTP_SOURCE" ] || bench_die "$SMTP_SOURCE not found (Debian: postfix)"
[ -x "$SMTP_SINK" ] || bench_die "$SMTP_SINK not found (Debian: postfix)"
command -v ss >/dev/null 2>&1 || bench_die "ss not found (Debian: iproute2)"
if ! { [ "$BENCH_ONLY" = postfix ] || [ -x "$HIKYAKU_BIN" ]; }; then
	bench_die "$HIKYAKU_BIN not found: build it (make, or ninja -C build) or set HIKYAKU_BIN"
fi

mkdir -p "$BENCH_DIR"
work=$(mktemp -d "$BENCH_DIR/hk-relay.XXXXXX")
chmod 755 "$work"
bench_fresh_groups "$work"
pids=() # every background process we started and have not stopped yet

# stop_pid PID: TERM, wait up to 15 s, then KILL; forget it.
stop_pid() {
	local pid=$1 keep=() p
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		bench_wait_gone "$pid" 15 || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	for p in "${pids[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

cleanup() {
	local rc=$? p
	set +e
	for p in "${pids[@]}"; do
		stop_pid "$p"
	done
	postfix_instance_stop "$work/postfix"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		bench_say "scratch kept in $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
pids=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fstype=$(stat -f -c %T "$work")
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
	bench_say "WARNING: $work is on $fstype: fsync costs nothing there; set BENCH_DIR to a disk"
fi

# sink NAME PORT [opts]: start an smtp-sink; sets SINK_PID, output in $work/NAME.sink
sink() {
	local name=$1 port=$2
	shift 2
	SINK_PID=$(bench_sink_start "$work/$name.sink" "$port" "$@")
	pids+=("$SINK_PID")
	bench_wait_listen "$port" 10 "$SINK_PID" || bench_die "smtp-sink $name did not listen on $port"
}

# hk_start NAME PORT RETRY UPSTREAM_YAML ROUTE_LIST: write a config and start hikyaku; sets HK_PID
# and HK_DIR. UPSTREAM_YAML is the "upstreams:" list body (already indented).
hk_start() {
	local name=$1 port=$2 retry=$3 ups=$4 route=$5
	HK_DIR=$work/$name
	mkdir -p "$HK_DIR/spool" "$HK_DIR/state"
	cat >"$HK_DIR/hikyaku.yaml" <<YAML
# Written by bench/relay.sh.
node: bench
spool: $HK_DIR/spool
state: $HK_DIR/state
listen:
  - address: 127.0.0.1:$port
    tls: none
    auth: none
    relay: networks
networks: [127.0.0.0/8]
# greet_pause 0s: as bench/hikyaku-ingress.yaml.in explains, the Postfix peer greets at once too.
limits: { max_message_size: 10M, max_recipients: 100, greet_pause: 0s }
upstreams:
$ups
routes:
  - name: default
    upstreams: [$route]
retry: $retry
delivery: { connect_timeout: 2s, command_timeout: 30s, dot_timeout: 60s }
log: { keep_bodies: false }
${HK_EXTRA:-}
YAML
	if [ "$(id -u)" -eq 0 ] && getent passwd hikyaku >/dev/null; then
		chown -R hikyaku: "$HK_DIR"
	fi
	"$HIKYAKU_BIN" serve -c "$HK_DIR/hikyaku.yaml" >"$HK_DIR/hikyaku.log" 2>&1 &
	HK_PID=$!
	pids+=("$HK_PID")
	if ! bench_wait_listen "$port" 20 "$HK_PID"; then
		sed 's/^/  | /' "$HK_DIR/hikyaku.log" | tail -n 20 >&2
		bench_die "hikyaku ($name) did not listen on 127.0.0.1:$port"
	fi
}

# upstream NAME PORT [CONNECTIONS]: one "upstreams:" list entry.
upstream() {
	printf '  - { name: %s, host: 127.0.0.1, port: %s, tls: none, verify: false,\n' "$1" "$2"
	printf '      limits: { connections: %s } }\n' "${3:-$CONNECTIONS}"
}

hk_queued() { find "$HK_DIR/spool/queue" -maxdepth 1 -name '*.env' -type f | wc -l; }

# hk_wait_empty DEADLINE: wait until hikyaku's queue/ holds no envelope.
hk_wait_empty() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(hk_queued)" -eq 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# source_start NAME PORT COUNT SIZE: smtp-source in the background; sets SRC_PID.
source_start() {
	# Without -d every message has its own connection; without -A any unexpected reply aborts
	# smtp-source, so exit 0 means every message got its 250.
	"$SMTP_SOURCE" -s "$SESSIONS" -m "$3" -l "$4" -f "$SENDER" -t "$RECIPIENT" \
		-M bench.localdomain "127.0.0.1:$2" >"$work/$1-source.log" 2>&1 &
	SRC_PID=$!
	pids+=("$SRC_PID")
}

# source_wait NAME: wait for smtp-source; die when a message was not accepted.
source_wait() {
	local rc=0
	wait "$SRC_PID" || rc=$?
	stop_pid "$SRC_PID"
	if [ "$rc" -ne 0 ]; then
		sed 's/^/  | /' "$work/$1-source.log" | tail -n 20 >&2
		bench_die "$1: smtp-source failed (exit $rc: a message was not accepted)"
	fi
}

# relay_run NAME PORT SINKFILE: the load, then wait for the sink; sets E2E_SECS, SRC_SECS.
relay_run() {
	local name=$1 port=$2 sinkfile=$3 t0 t1 t2
	bench_say "$name: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE -> relay -> smtp-sink"
	t0=$(bench_now)
	source_start "$name" "$port" "$MESSAGES" "$SIZE"
	source_wait "$name"
	t1=$(bench_now)
	if ! bench_wait_sinks "$MESSAGES" "$DEADLINE" "$sinkfile"; then
		bench_die "$name: the sink got $(bench_sink_count "$sinkfile") of $MESSAGES within ${DEADLINE}s"
	fi
	t2=$(bench_now)
	SRC_SECS=$(bench_elapsed "$t0" "$t1")
	E2E_SECS=$(bench_elapsed "$t0" "$t2")
}

status=0
miss() { status=3; }

# ---------------------------------------------------------------------------------------------
hk_rate= pf_rate= hk_e2e= pf_e2e= hk_rss_relay=
if part relay; then
	sport=$(bench_free_port)
	sink relay "$sport"
	relay_sink=$SINK_PID
	port=$(bench_free_port)
	hk_start hk-relay "$port" "{ schedule: [1s, 5s, 30s], max_age: 1h }" \
		"$(upstream sink "$sport")" sink
	relay_run hikyaku "$port" "$work/relay.sink"
	hk_e2e=$E2E_SECS
	hk_rate=$(bench_div "$MESSAGES" "$hk_e2e")
	hk_wait_empty 60 || bench_say "hikyaku: WARNING: $(hk_queued) envelopes still queued"
	got=$(bench_sink_count "$work/relay.sink")
	hk_rss_relay=$(bench_proc_kb "$HK_PID" VmHWM)
	stop_pid "$HK_PID"
	stop_pid "$relay_sink"
	[ "$got" -eq "$MESSAGES" ] || bench_die "hikyaku: the sink counted $got messages, sent $MESSAGES"
	bench_say "hikyaku: $MESSAGES relayed end-to-end in ${hk_e2e}s (accepted in ${SRC_SECS}s): $hk_rate msg/s"
fi

if part postfix; then
	sport=$(bench_free_port)
	sink postfix "$sport"
	pf_sink=$SINK_PID
	pf=$work/postfix
	port=$(bench_free_port)
	bench_say "postfix: private instance on 127.0.0.1:$port relaying to [127.0.0.1]:$sport"
	postfix_instance_start "$pf" "$port"
	# postfix-instance.sh parks mail (closed relayhost, deferred smtp); here it must flow.
	postconf -c "$pf/etc" -e "relayhost = [127.0.0.1]:$sport" "defer_transports =" \
		"smtp_tls_security_level = none"
	postfix -c "$pf/etc" reload >/dev/null 2>&1 || bench_die "postfix reload failed"
	bench_wait_listen "$port" 20 || bench_die "private Postfix stopped listening after reload"
	relay_run postfix "$port" "$work/postfix.sink"
	pf_e2e=$E2E_SECS
	pf_rate=$(bench_div "$MESSAGES" "$pf_e2e")
	got=$(bench_sink_count "$work/postfix.sink")
	postfix_instance_stop "$pf"
	stop_pid "$pf_sink"
	[ "$got" -eq "$MESSAGES" ] || bench_die "postfix: the sink counted $got messages, sent $MESSAGES"
	bench_say "postfix: $MESSAGES relayed end-to-end in ${pf_e2e}s (accepted in ${SRC_SECS}s): $pf_rate msg/s"
fi

# ---------------------------------------------------------------------------------------------
fo_secs= fo_lost= fo_dup= fo_at_kill=
if part failover; then
	aport=$(bench_free_port)
	bport=$(bench_free_port)
	# Dump every transaction (-D) so messages are counted by queue ID, not just by number.
	# smtp-sink drops to the postfix user before it opens the dump: give it a directory of its own.
	dumps=$work/dumps
	mkdir -p "$dumps"
	chmod 1777 "$dumps"
	sink primary "$aport" -D "$dumps/primary.dump"
	a_pid=$SINK_PID
	sink backup "$bport" -D "$dumps/backup.dump"
	b_pid=$SINK_PID
	port=$(bench_free_port)
	hk_start hk-failover "$port" "{ schedule: [1s, 2s, 5s], max_age: 1h }" \
		"$(upstream primary "$aport" 200; upstream backup "$bport")" "primary, backup"
	n=$FAILOVER_MESSAGES
	bench_say "failover: $n messages; the primary sink is killed after $((n / 4)) deliveries"
	source_start failover "$port" "$n" "$SIZE"
	bench_wait_sinks "$((n / 4))" "$DEADLINE" "$work/primary.sink" ||
		bench_die "failover: the primary got only $(bench_sink_count "$work/primary.sink") messages"
	[ "$(bench_sink_count "$work/backup.sink")" -eq 0 ] ||
		bench_say "failover: WARNING: the backup received mail before the primary was killed"
	# A primary with all its connections busy spills to the backup (docs/delivery.md); it gets
	# 200 here so that, normally, only the kill sends mail to the backup. Either way the clock
	# waits for a delivery at the backup after the kill.
	b_before=$(bench_sink_count "$work/backup.sink")
	kill -KILL "$a_pid"
	t_kill=$(bench_now)
	if ! bench_wait_sinks "$((b_before + 1))" 60 "$work/backup.sink"; then
		bench_die "failover: no delivery at the backup within 60 s of the kill"
	fi
	t_first=$(bench_now)
	stop_pid "$a_pid"
	fo_secs=$(bench_elapsed "$t_kill" "$t_first")
	fo_at_kill=$(bench_sink_count "$work/primary.sink")
	source_wait failover
	hk_wait_empty "$DEADLINE" || bench_say "failover: WARNING: $(hk_queued) envelopes still queued"
	stop_pid "$HK_PID"
	stop_pid "$b_pid"
	# Received: ... by HOST (hikyaku) with ESMTP id <QID>: one ID per accepted message.
	ids() { grep -aoE '\(hikyaku\) with [A-Z]+ id [0-9A-F]{16}' "$@" 2>/dev/null |
		awk '{ print $NF }'; }
	total=$(ids "$dumps/primary.dump" "$dumps/backup.dump" | wc -l)
	unique=$(ids "$dumps/primary.dump" "$dumps/backup.dump" | sort -u | wc -l)
	fo_lost=$((n - unique))
	[ "$fo_lost" -ge 0 ] || fo_lost=0
	fo_dup=$((total - unique))
	bench_say "failover: first backup delivery ${fo_secs}s after the kill; primary had $fo_at_kill; lost $fo_lost; twice $fo_dup"
fi

# ---------------------------------------------------------------------------------------------
rss_now= rss_hwm= rss_queued=
if part rss; then
	closed=$(bench_free_port) # nothing listens there
	port=$(bench_free_port)
	hk_start hk-rss "$port" "{ schedule: [1h], max_age: 5d }" "$(upstream down "$closed")" down
	bench_say "rss: $RSS_MESSAGES messages x $RSS_SIZE bytes behind an upstream that refuses connections"
	source_start rss "$port" "$RSS_MESSAGES" "$RSS_SIZE"
	source_wait rss
	rss_queued=$(hk_queued)
	# Let the scheduler offer what is due (each attempt fails at connect, the breaker opens).
	sleep 5
	rss_now=$(bench_proc_kb "$HK_PID" VmRSS)
	rss_hwm=$(bench_proc_kb "$HK_PID" VmHWM)
	stop_pid "$HK_PID"
	[ "$rss_queued" -eq "$RSS_MESSAGES" ] ||
		bench_say "rss: WARNING: $rss_queued envelopes in queue/, expected $RSS_MESSAGES"
fi

# ---------------------------------------------------------------------------------------------
mb() { case $1 in '' | n/a) echo n/a ;; *) awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' ;; esac; }
echo
echo "relay benchmark: $MESSAGES messages x $SIZE bytes, $SESSIONS sessions, one connection per message"
echo "filesystem: $fstype ($BENCH_DIR), cores: $(nproc)"
if part relay || part postfix; then
	printf '  %-8s %10s msg/s end-to-end  %8s s\n' hikyaku "${hk_rate:-n/a}" "${hk_e2e:-n/a}"
	printf '  %-8s %10s msg/s end-to-end  %8s s\n' postfix "${pf_rate:-n/a}" "${pf_e2e:-n/a}"
	[ -n "$hk_rss_relay" ] && echo "  hikyaku peak RSS while relaying: $(mb "$hk_rss_relay") MB"
	if [ -n "$hk_rate" ] && [ -n "$pf_rate" ]; then
		ratio=$(bench_div "$hk_rate" "$pf_rate")
		if awk -v r="$ratio" -v g="$GOAL_RATIO" 'BEGIN { exit !(r >= g) }'; then v=met; else v="NOT met"; miss; fi
		echo "  ratio hikyaku/postfix: ${ratio}x (goal >= ${GOAL_RATIO}x): $v"
	fi
fi
if part failover; then
	if awk -v s="$fo_secs" -v g="$GOAL_FAILOVER" 'BEGIN { exit !(s < g) }'; then v=met; else v="NOT met"; miss; fi
	echo "  failover: first delivery at the backup ${fo_secs}s after the primary was killed (goal < ${GOAL_FAILOVER} s): $v"
	if [ "$fo_lost" -eq 0 ]; then v=met; else v="NOT met"; miss; fi
	echo "  messages lost: $fo_lost of $FAILOVER_MESSAGES accepted (goal 0): $v"
	echo "  delivered twice: $fo_dup (retries of \"may have been delivered\" transactions cut by the kill)"
fi
if part rss; then
	if [ "$rss_hwm" != n/a ] && awk -v k="$rss_hwm" -v g="$GOAL_RSS_MB" 'BEGIN { exit !(k / 1024 < g) }'; then
		v=met
	else
		v="NOT met"
		miss
	fi
	echo "  RSS with $rss_queued messages queued behind a down upstream: VmRSS $(mb "$rss_now") MB, VmHWM $(mb "$rss_hwm") MB (goal < $GOAL_RSS_MB MB): $v"
fi
exit "$status"
