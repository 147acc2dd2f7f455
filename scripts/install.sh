#!/bin/sh
# Install hikyaku as a system service: the hikyaku user and group, directories with the right
# owners and modes, the binary, the sendmail name, the systemd unit and an example config.
# Usage: scripts/install.sh BUILD_DIR PREFIX   (as root; idempotent)
set -eu
BUILD=${1:-build}
PREFIX=${2:-/usr/local}
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 77; }

getent group hikyaku >/dev/null || groupadd --system hikyaku
getent passwd hikyaku >/dev/null || useradd --system --gid hikyaku --home-dir /var/lib/hikyaku \
	--no-create-home --shell /usr/sbin/nologin --comment "hikyaku mail relay" hikyaku

install -d -m 0755 "$PREFIX/sbin"
install -m 0755 "$BUILD/hikyaku" "$PREFIX/sbin/hikyaku"
ln -sfn hikyaku "$PREFIX/sbin/hikyaku-sendmail"
install -d -o root -g hikyaku -m 0750 /etc/hikyaku
[ -f /etc/hikyaku/hikyaku.yaml ] || install -o root -g hikyaku -m 0640 etc/hikyaku.example.yaml /etc/hikyaku/hikyaku.yaml
install -d -o hikyaku -g hikyaku -m 0750 /var/spool/hikyaku /var/lib/hikyaku
install -d -o hikyaku -g hikyaku -m 0755 /run/hikyaku
if [ -d /etc/systemd/system ]; then
	sed "s#/usr/local/sbin/hikyaku#$PREFIX/sbin/hikyaku#g" contrib/hikyaku.service \
		> /etc/systemd/system/hikyaku.service
	chmod 0644 /etc/systemd/system/hikyaku.service
	command -v systemctl >/dev/null && systemctl daemon-reload 2>/dev/null || true
fi
echo "installed: $PREFIX/sbin/hikyaku, /etc/hikyaku/hikyaku.yaml (edit it), hikyaku.service"
echo "next: hikyaku serve --check -c /etc/hikyaku/hikyaku.yaml && systemctl enable --now hikyaku"
