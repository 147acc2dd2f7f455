#!/bin/bash
# ingress.sh - SMTP ingress benchmark: hikyaku against a private Postfix, same machine, loopback.
#
# Postfix's smtp-source sends MESSAGES messages of SIZE bytes over SESSIONS parallel sessions,
# one connection per message, first to hikyaku, then to a Postfix configured with the same
# durability (queue file fsync'ed before 250). Prints both acceptance rates, their ratio and
# hikyaku's peak RSS. Goal: hikyaku >= 3x Postfix.
#
# Environment (defaults):
#   MESSAGES=10000 SESSIONS=20 SIZE=5120     the load
#   HIKYAKU_BIN=<repo>/build/hikyaku         the binary under test
#   BENCH_ONLY=both                          both | hikyaku | postfix
#   BENCH_DIR=/var/tmp                       where the spools go (not tmpfs: fsync must cost)
#   BENCH_KEEP=1                             keep the scratch directory (logs, spools)
#   GOAL_RATIO=3                             ratio to meet
# Exit: 0 done (goal met or only one side run), 1 a run failed, 3 goal missed.
# Needs root for the Postfix half (postfix start); never touches the system Postfix.
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
HIKYAKU_BIN=${HIKYAKU_BIN:-$root/build/hikyaku}
BENCH_ONLY=${BENCH_ONLY:-both}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
GOAL_RATIO=${GOAL_RATIO:-3}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SENDER=bench@example.com
RECIPIENT=rcpt@example.net

for v in MESSAGES SESSIONS SIZE; do
	case ${!v} in
	'' | *[!0-9]*) bench_die "$v must be a positive integer, not '${!v}'" ;;
	esac
	[ "${!v}" -gt 0 ] || bench_die "$v must be at least 1"
done
case $BENCH_ONLY in
both | hikyaku | postfix) ;;
*) bench_die "BENCH_ONLY must be both, hikyaku or postfix" ;;
esac
run_hikyaku=false
run_postfix=false
[ "$BENCH_ONLY" = postfix ] || run_hikyaku=true
[ "$BENCH_ONLY" = hikyaku ] || run_postfix=true

[ -x "$SMTP_SOURCE" ] || bench_die "$SMTP_SOURCE not found (Debian: postfix)"
command -v ss >/dev/null 2>&1 || bench_die "ss not found (Debian: iproute2)"
if $run_hikyaku && [ ! -x "$HIKYAKU_BIN" ]; then
	bench_die "$HIKYAKU_BIN not found: build it (make, or ninja -C build) or set HIKYAKU_BIN"
fi

mkdir -p "$BENCH_DIR"
bench_settle
work=$(mktemp -d "$BENCH_DIR/hk-bench.XXXXXX")
chmod 755 "$work"
bench_fresh_groups "$work"
hk_pid=
src_pid=
cleanup() {
	local rc=$?
	set +e
	if [ -n "$src_pid" ]; then
		kill -TERM "$src_pid" 2>/dev/null
		wait "$src_pid" 2>/dev/null
	fi
	if [ -n "$hk_pid" ] && kill -0 "$hk_pid" 2>/dev/null; then
		kill -TERM "$hk_pid"
		bench_wait_gone "$hk_pid" 15 || kill -KILL "$hk_pid"
	fi
	postfix_instance_stop "$work/postfix"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		bench_say "scratch kept in $work"
	else
		rm -rf "$work"
		bench_cleaned
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fstype=$(stat -f -c %T "$work")
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
	bench_say "WARNING: $work is on $fstype: fsync costs nothing there; set BENCH_DIR to a disk"
fi

# run_load NAME PORT: send the load to 127.0.0.1:PORT; sets LOAD_SECONDS.
run_load() {
	local name=$1 port=$2 t0 t1 rc
	bench_say "$name: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE (one connection per message)"
	t0=$(bench_now)
	# Without -d every message gets its own connection; without -A any reply other than the
	# expected one aborts smtp-source, so exit 0 means every message got its 250.
	# In the background so a signal to this script is handled at once, not after the load.
	"$SMTP_SOURCE" -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f "$SENDER" -t "$RECIPIENT" \
		-M bench.localdomain "127.0.0.1:$port" >"$work/$name-source.log" 2>&1 &
	src_pid=$!
	rc=0
	wait "$src_pid" || rc=$?
	src_pid=
	if [ "$rc" -ne 0 ]; then
		sed 's/^/  | /' "$work/$name-source.log" | tail -n 20 >&2
		bench_die "$name: smtp-source failed (a message was not accepted)"
	fi
	t1=$(bench_now)
	LOAD_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }')
}

hk_rate=
hk_secs=
hk_rss=
if $run_hikyaku; then
	hk=$work/hikyaku
	mkdir -p "$hk/spool" "$hk/state"
	port=$(bench_free_port)
	api_port=$(bench_free_port)
	hold_port=$(bench_free_port) # nothing listens there
	sed -e "s|@SPOOL@|$hk/spool|" -e "s|@STATE@|$hk/state|" -e "s|@PORT@|$port|" \
		-e "s|@API_PORT@|$api_port|" -e "s|@HOLD_PORT@|$hold_port|" \
		"$here/hikyaku-ingress.yaml.in" >"$hk/hikyaku.yaml"
	# Started as root, hikyaku drops to its own user: give that user the scratch spool.
	if [ "$(id -u)" -eq 0 ] && getent passwd hikyaku >/dev/null; then
		chown -R hikyaku: "$hk"
	fi
	bench_say "hikyaku: $HIKYAKU_BIN serve on 127.0.0.1:$port (spool $hk/spool)"
	"$HIKYAKU_BIN" serve -c "$hk/hikyaku.yaml" >"$hk/hikyaku.log" 2>&1 &
	hk_pid=$!
	if ! bench_wait_listen "$port" 20 "$hk_pid"; then
		sed 's/^/  | /' "$hk/hikyaku.log" | tail -n 20 >&2
		bench_die "hikyaku did not listen on 127.0.0.1:$port"
	fi
	run_load hikyaku "$port"
	hk_secs=$LOAD_SECONDS
	queued=$(find "$hk/spool/queue" -maxdepth 1 -name '*.env' -type f | wc -l)
	hk_rss=$(awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$hk_pid/status")
	kill -TERM "$hk_pid"
	bench_wait_gone "$hk_pid" 15 || kill -KILL "$hk_pid"
	hk_pid=
	[ "$queued" -eq "$MESSAGES" ] ||
		bench_die "hikyaku: $queued envelopes in queue/, expected $MESSAGES"
	hk_rate=$(bench_div "$MESSAGES" "$hk_secs")
	bench_say "hikyaku: $MESSAGES accepted and queued in ${hk_secs}s: $hk_rate msg/s, peak RSS $hk_rss"
fi

pf_rate=
pf_secs=
if $run_postfix; then
	pf=$work/postfix
	port=$(bench_free_port)
	bench_say "postfix: private instance on 127.0.0.1:$port (config $pf/etc)"
	postfix_instance_start "$pf" "$port"
	run_load postfix "$port"
	pf_secs=$LOAD_SECONDS
	# Count on a quiet queue: stop first, so no file is between two queue directories.
	postfix_instance_stop "$pf"
	queued=$(postfix_instance_queued "$pf")
	[ "$queued" -eq "$MESSAGES" ] ||
		bench_die "postfix: $queued messages in its queue, expected $MESSAGES"
	pf_rate=$(bench_div "$MESSAGES" "$pf_secs")
	bench_say "postfix: $MESSAGES accepted and queued in ${pf_secs}s: $pf_rate msg/s"
fi

echo
echo "ingress benchmark: $MESSAGES messages x $SIZE bytes, $SESSIONS sessions, one connection per message"
echo "filesystem: $fstype ($BENCH_DIR), cores: $(nproc)"
printf '  %-8s %10s msg/s  %8s s\n' hikyaku "${hk_rate:-n/a}" "${hk_secs:-n/a}"
printf '  %-8s %10s msg/s  %8s s\n' postfix "${pf_rate:-n/a}" "${pf_secs:-n/a}"
echo "  hikyaku peak RSS (VmHWM): ${hk_rss:-n/a}"
if [ -n "$hk_rate" ] && [ -n "$pf_rate" ]; then
	ratio=$(bench_div "$hk_rate" "$pf_rate")
	echo "  ratio hikyaku/postfix: ${ratio}x (goal >= ${GOAL_RATIO}x)"
	if awk -v r="$ratio" -v g="$GOAL_RATIO" 'BEGIN { exit !(r >= g) }'; then
		echo "  goal: met"
	else
		echo "  goal: NOT met"
		exit 3
	fi
fi
