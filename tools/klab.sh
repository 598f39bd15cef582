#!/bin/sh
# Run a command as root under Debian's own full kernel in a throw-away QEMU VM over this file
# tree (../shared/klab/kvm-run.sh; its README), with the kernel modules a router's image
# carries loaded and UNLITE_KERNEL_LAB=1 (tests: a missing kernel feature fails; waits
# stretch for emulation). The host's kernel lacks tc flower/gact/act_vlan, 802.1Q, gretap,
# ESP and openvswitch; a router's has them. `make test-kernel`, `make bench-paper-kernel`.
#   sh tools/klab.sh COMMAND [ARG]...
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = --inside ]; then            # in the guest, as root
    shift
    # kmod-sched-flower, kmod-sched-core, kmod-8021q, kmod-gre, kmod-ipsec4,
    # kmod-openvswitch on OpenWrt; the kernel would load most on demand
    for m in openvswitch cls_flower act_gact act_vlan 8021q ip_gre esp4 xfrm_user; do
        modprobe -q "$m" || echo "klab: no module $m in $(uname -r)"
    done
    export UNLITE_KERNEL_LAB=1
    exec "$@"
fi
[ $# -gt 0 ] || { echo "usage: sh tools/klab.sh COMMAND [ARG]..." >&2; exit 2; }
KLAB=${KLAB:-../shared/klab/kvm-run.sh}
if [ ! -x "$KLAB" ]; then
    echo "klab: no $KLAB (the full-kernel lab lives in ../shared/klab)" >&2
    exit 1
fi
if ! command -v "${KLAB_QEMU:-qemu-system-x86_64}" >/dev/null 2>&1; then
    echo "klab: no QEMU: apt-get install -y qemu-system-x86" >&2
    exit 1
fi
# the test knobs go along (the guest's environment is its own)
set -- --time --timeout "${KLAB_TIMEOUT:-3000}" --rw "$PWD" \
    ${UNLITE_TEST_OVS_DATAPATH:+--env UNLITE_TEST_OVS_DATAPATH=$UNLITE_TEST_OVS_DATAPATH} \
    ${UNLITE_TEST_SLACK:+--env UNLITE_TEST_SLACK=$UNLITE_TEST_SLACK} \
    -- sh tools/klab.sh --inside "$@"
# the writes land in this tree (.venv's bytecode, results/); everything else stays in the VM
exec "$KLAB" "$@"
