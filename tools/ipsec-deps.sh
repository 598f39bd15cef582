#!/bin/sh
# Install strongSwan for the ipsec-client NNF's test and `make bench-paper` (Debian), only
# what is missing, without letting the packages start a system-wide charon: nothing here uses
# one (each NF and the test's VPN server run their own charon in their own namespaces).
set -eu
pkgs="strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins"
plugin=$(ls /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so 2>/dev/null || true)
if [ -x /usr/lib/ipsec/charon ] && command -v swanctl >/dev/null 2>&1 && [ -n "$plugin" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "ipsec-deps: strongSwan missing — run as root, or: apt-get install -y $pkgs" >&2
	exit 1
fi
running() { [ -f /run/charon.pid ] && kill -0 "$(cat /run/charon.pid)" 2>/dev/null; }
before=no
running && before=yes
guard=
if [ ! -e /usr/sbin/policy-rc.d ]; then		# Debian's way to keep services from starting
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	guard=/usr/sbin/policy-rc.d
fi
trap '[ -z "$guard" ] || rm -f "$guard"' EXIT
echo "ipsec-deps: installing $pkgs"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $pkgs
if [ $before = no ] && running; then		# an init system started one anyway
	echo "ipsec-deps: stopping the system-wide charon the package install started" >&2
	ipsec stop >/dev/null 2>&1 || kill "$(cat /run/charon.pid)"
fi
