"""Is an NF instance what its record says? Read from the kernel, never remembered.

An instance's record names its namespace, its ports' node-side veths and, once its start
script has returned, the processes it left running (``Instance.procs``: pid and start time,
so a recycled pid is never mistaken for the NF's; only the top ones, not their children).
``problem(inst)`` says what differs, or None:

- the namespace is gone;
- a port's veth (or the unify-control veth) is gone, or down while the NF is not paused;
- a process it left running is gone (exited, OOM-killed) or stopped (SIGSTOP, ptrace);
  an NF that left no process (a kernel function: a bridge, nft rules) has nothing to check.

All of it is /proc reads and an ioctl per port: no exec, cheap enough for every status read
and a periodic check on a router. Used at daemon start (may a running instance be adopted?)
and for status (an NF that died is ``Failed`` with fault ``FailureWhileActive``).
"""
from __future__ import annotations

import fcntl
import os
import socket
import struct

from .. import sh

_SIOCGIFFLAGS, _IFF_UP = 0x8913, 0x1


def identity(pid):
    """(pid, start time in clock ticks since boot) of a live process, or None."""
    st = _stat(pid)
    return [pid, st[1]] if st and st[0] not in "ZX" else None


def _stat(pid, ppid=False):
    """(state letter, start time[, parent pid]) from /proc/PID/stat, or None if there is no
    such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()      # the command name may hold spaces or ")"
    if ppid:                                     # fields 3, 22 and 4 of proc(5)
        return rest[0], int(rest[19]), int(rest[1])
    return rest[0], int(rest[19])


def snapshot(netns):
    """The NF's own processes in namespace ``netns`` now: [[pid, start time], ...] of those
    whose parent is not in it (its daemons, left by the start script and adopted by init);
    their children (a shell loop's ``sleep``, a server's workers) come and go and are not
    watched."""
    pids = set(sh.netns_pids([netns]))
    out = []
    for pid in sorted(pids):
        st = _stat(pid, ppid=True)
        if st and st[0] not in "ZX" and st[2] not in pids:
            out.append([pid, st[1]])
    return out


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def link_up(name):
    """True/False: is interface ``name`` of this namespace up; None: there is none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            raw = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS,       # struct ifreq: 40 bytes
                              struct.pack("16s24x", name.encode()[:15]))
    except OSError:
        return None
    return bool(struct.unpack_from("16sH", raw)[1] & _IFF_UP)


def problem(inst):
    """What the kernel says is wrong with ``inst`` (text), or None."""
    if not os.path.exists(f"/run/netns/{inst.netns}"):
        return f"its namespace {inst.netns} is gone"
    devs = [(p.host, f"port '{p.id}'") for p in inst.ports]
    if inst.ctl:
        devs.append((inst.ctl["host"], "its unify-control port"))
    for dev, what in devs:
        up = link_up(dev)
        if up is None:
            return f"{what} ({dev}) is gone"
        if not up and inst.state != "Paused":
            return f"{what} ({dev}) is down"
    if inst.state in ("Active", "Paused"):
        for pid, start in inst.procs:
            st = _stat(pid)
            if st is None or st[1] != start or st[0] in "ZX":
                return f"its process {pid} is gone (exited or killed)"
            if st[0] in "Tt" and inst.state == "Active":
                return f"its process {pid} ({_comm(pid)}) is stopped (SIGSTOP or traced)"
    return None
