# shellcheck shell=bash
# postfix-instance.sh - a private, throw-away Postfix on loopback for benchmarks (sourced).
#
# Everything lives under one directory: config (main.cf, master.cf), queue, data and log. The
# system Postfix (/etc/postfix, /var/spool/postfix) is never read for settings, written or
# signalled. Mail is relayed to a closed loopback port and the smtp transport is deferred, so
# accepted mail simply stays queued. Queue files are fsync'ed before 250 (Postfix's default,
# kept as is). Needs root (Postfix's master starts as root and drops to mail_owner).

# postfix_instance_start DIR PORT: configure and start; returns once it listens.
postfix_instance_start() {
	local dir=$1 port=$2 closed
	local cfg=$dir/etc queue=$dir/queue

	command -v postfix >/dev/null 2>&1 || bench_die "postfix not installed (Debian: postfix)"
	getent passwd postfix >/dev/null || bench_die "no 'postfix' user (install the postfix package)"
	getent group postdrop >/dev/null || bench_die "no 'postdrop' group (install the postfix package)"
	[ "$(id -u)" -eq 0 ] || bench_die "the Postfix half needs root (postfix start)"

	mkdir -p "$cfg" "$queue" "$dir/data"
	chmod 755 "$dir" "$cfg"
	chown postfix "$dir/data"
	: >"$cfg/main.cf"
	closed=$(bench_free_port) # nothing listens there: delivery could only fail
	postconf -c "$cfg" -e \
		"compatibility_level = 3.6" \
		"config_directory = $cfg" \
		"queue_directory = $queue" \
		"data_directory = $dir/data" \
		"mail_owner = postfix" \
		"setgid_group = postdrop" \
		"myhostname = postfix-bench.localdomain" \
		"mydomain = localdomain" \
		"inet_interfaces = 127.0.0.1" \
		"inet_protocols = ipv4" \
		"mydestination =" \
		"local_recipient_maps =" \
		"alias_maps =" \
		"alias_database =" \
		"mynetworks = 127.0.0.0/8" \
		"smtpd_relay_restrictions = permit_mynetworks, reject" \
		"smtpd_recipient_restrictions = permit_mynetworks, reject" \
		"relayhost = [127.0.0.1]:$closed" \
		"defer_transports = smtp" \
		"maillog_file = $dir/maillog" \
		"biff = no" \
		"smtputf8_enable = no" \
		"append_dot_mydomain = no"
	# The services a relay needs; chroot off (column 5) so nothing is copied into the queue.
	cat >"$cfg/master.cf" <<MASTER
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
MASTER
	if ! postfix -c "$cfg" start >"$dir/start.log" 2>&1; then
		sed 's/^/  | /' "$dir/start.log" >&2
		bench_die "postfix -c $cfg start failed"
	fi
	if ! bench_wait_listen "$port" 20; then
		sed 's/^/  | /' "$dir/start.log" "$dir/maillog" 2>/dev/null | tail -n 20 >&2
		bench_die "private Postfix did not listen on 127.0.0.1:$port"
	fi
}

# postfix_instance_stop DIR: stop the instance started from DIR and wait for its master.
postfix_instance_stop() {
	local dir=$1 pid
	[ -f "$dir/etc/main.cf" ] || return 0
	pid=$(tr -d ' ' <"$dir/queue/pid/master.pid" 2>/dev/null || true)
	# Not started, or already stopped.
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
	if [ -n "$pid" ] && ! bench_wait_gone "$pid" 20; then
		# Our own instance's master (its PID file lives in our queue directory).
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# postfix_instance_queued DIR: messages in the queue (incoming, active, deferred, hold).
postfix_instance_queued() {
	local q=$1/queue
	bench_count_files "$q/incoming" "$q/active" "$q/deferred" "$q/hold"
}
