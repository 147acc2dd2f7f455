#!/bin/sh
# Install every Debian package hikyaku's build, tests and benchmarks use.
# Idempotent: does nothing (and needs no network) when all are present.
set -eu

PKGS="build-essential pkg-config meson ninja-build
libevent-dev libssl-dev libyaml-dev libcrypt-dev libsystemd-dev
libjansson-dev libsqlite3-dev libunbound-dev dns-root-data libcurl4-openssl-dev libpsl-dev
libcmocka-dev clang libclang-rt-14-dev llvm
python3 python3-pytest python3-aiosmtpd python3-dkim python3-dnslib python3-dnspython python3-cryptography ldnsutils swaks php-cli libnet-ssleay-perl libio-socket-ssl-perl openssl
postfix"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing" >&2
	echo "deps.sh: run 'sudo scripts/deps.sh' (or make as root) to install them" >&2
	exit 69
fi

echo "deps.sh: installing:$missing" >&2
# Postfix is only a benchmark peer: never let it configure itself or start.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
