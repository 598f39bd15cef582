#!/bin/sh
# make test-kernel: the tests marked `kernel` (tc flower and gact, VLAN devices, gretap, kernel
# ESP, the OVS kernel datapath) under Debian's own full kernel in a throw-away QEMU VM over
# this file tree (../shared/klab/kvm-run.sh; its README). The host's kernel lacks them; a
# router's has them. Extra arguments go to pytest (e.g. tests/test_gre.py -k nft).
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = --inside ]; then            # in the guest, as root
    shift
    # the modules a router's image carries (kmod-sched-flower, kmod-sched-core, kmod-8021q,
    # kmod-gre, kmod-ipsec4, kmod-openvswitch); the kernel would load most on demand
    for m in openvswitch cls_flower act_gact act_vlan 8021q ip_gre esp4 xfrm_user; do
        modprobe -q "$m" || echo "test-kernel: no module $m in $(uname -r)"
    done
    export UNLITE_KERNEL_LAB=1
    # by default the test files that hold kernel tests (collecting the others costs ~30 s
    # under emulation)
    [ $# -gt 0 ] || set -- $(grep -l "pytest.mark.kernel" tests/test_*.py)
    exec .venv/bin/python -m pytest -q -p no:cacheprovider -m kernel -rs "$@"
fi
KLAB=${KLAB:-../shared/klab/kvm-run.sh}
if [ ! -x "$KLAB" ]; then
    echo "test-kernel: no $KLAB (the full-kernel lab lives in ../shared/klab)" >&2
    exit 1
fi
if ! command -v "${KLAB_QEMU:-qemu-system-x86_64}" >/dev/null 2>&1; then
    echo "test-kernel: no QEMU: apt-get install -y qemu-system-x86" >&2
    exit 1
fi
# the writes land in this tree (.venv's bytecode, build/); everything else stays in the VM
exec "$KLAB" --time --timeout "${KLAB_TIMEOUT:-3000}" --rw "$PWD" -- \
    sh tools/test-kernel.sh --inside "$@"
