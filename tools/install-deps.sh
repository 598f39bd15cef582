#!/bin/sh
# Install the Debian packages unlite's demo, tests and benchmarks use (only what is missing).
set -eu
need=""
have() { command -v "$1" >/dev/null 2>&1; }
have ip       || need="$need iproute2"
have nft      || need="$need nftables"
have iptables || need="$need iptables"
have ping     || need="$need iputils-ping"
have curl     || need="$need curl"
have nsenter  || need="$need util-linux"
have tcpdump  || need="$need tcpdump"
have iperf3   || need="$need iperf3"
have brctl    || need="$need bridge-utils"      # the UN's native bridge NF (its scripts)
have ifconfig || need="$need net-tools"         # the UN's native NFs
have busybox  || need="$need busybox"           # the OpenWrt sandbox's /bin/sh
have openssl  || need="$need openssl"           # rpcd login hashes in the tests
have nc       || need="$need netcat-openbsd"
have ovs-vswitchd || [ -x /usr/sbin/ovs-vswitchd ] || need="$need openvswitch-switch"
have signify-openbsd || need="$need signify-openbsd"
have chromium || need="$need chromium fonts-liberation"
have chromedriver || need="$need chromium-driver"
have python3  || need="$need python3"
have crun     || need="$need crun"              # make bench: the container anchor (OCI runtime)
python3 -c 'import ensurepip, venv' 2>/dev/null || need="$need python3-venv"
if [ -n "$need" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing:$need — run as root (or install them yourself)" >&2
        exit 1
    fi
    echo "install-deps: installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends $need
fi
# strongSwan for the ipsec-client NNF, without letting it start a system-wide charon
sh "$(dirname "$0")/ipsec-deps.sh"
