"""Freeze and thaw the processes of an NF (paper Table II: pause/resume).

cgroup v2 where it is mounted (``cgroup.freeze``; on OpenWrt at /sys/fs/cgroup, on hybrid
hosts at /sys/fs/cgroup/unified), else the cgroup v1 ``freezer`` controller
(``freezer.state``). Each paused NF gets ``<root>/unlite/<netns>``; ``release()`` removes it.
"""
from __future__ import annotations

import os
import time

from ... import names
from . import mounts as _mounts, write as _write

SETTLE = 2.0       # s to wait for the kernel to report the group frozen


class FreezerError(OSError):
    pass


def hierarchy():
    """("v2", root) or ("v1", root) of a freezer this node can use, or (None, None)."""
    v1 = None
    for mnt, fstype, opts in _mounts():
        if fstype == "cgroup2" and os.path.exists(os.path.join(mnt, "cgroup.procs")):
            return "v2", mnt
        if fstype == "cgroup" and "freezer" in opts:
            v1 = mnt
    return ("v1", v1) if v1 else (None, None)


def _group(name):
    kind, root = hierarchy()
    if kind is None:
        raise FreezerError("no cgroup freezer on this node (neither cgroup v2 nor v1 freezer)")
    return kind, os.path.join(root, names.CGROUP_PARENT, name)


def freeze(name, pids):
    """Put ``pids`` into group ``name`` and freeze it; wait until the kernel says frozen."""
    kind, path = _group(name)
    os.makedirs(path, exist_ok=True)
    procs = os.path.join(path, "cgroup.procs" if kind == "v2" else "tasks")
    for pid in pids:
        try:
            _write(procs, str(pid))
        except ProcessLookupError:
            pass                                   # exited meanwhile
    if kind == "v2":
        _write(os.path.join(path, "cgroup.freeze"), "1")
    else:
        _write(os.path.join(path, "freezer.state"), "FROZEN")
    deadline = time.monotonic() + SETTLE
    while not frozen(name):
        if time.monotonic() > deadline:
            raise FreezerError(f"cgroup {path} did not freeze within {SETTLE}s")
        time.sleep(0.005)


def frozen(name):
    kind, path = _group(name)
    try:
        if kind == "v2":
            with open(os.path.join(path, "cgroup.events")) as f:
                return "frozen 1" in f.read()
        with open(os.path.join(path, "freezer.state")) as f:
            return f.read().strip() == "FROZEN"
    except FileNotFoundError:
        return False


def thaw(name):
    kind, path = _group(name)
    if not os.path.isdir(path):
        return
    if kind == "v2":
        _write(os.path.join(path, "cgroup.freeze"), "0")
    else:
        _write(os.path.join(path, "freezer.state"), "THAWED")


def release(name):
    """Thaw and remove group ``name`` once its processes are gone (never raises)."""
    try:
        kind, path = _group(name)
    except FreezerError:
        return
    if not os.path.isdir(path):
        return
    try:
        thaw(name)
    except OSError:
        pass
    try:                               # on cgroup v2 the NF's own group (``limits``): it
        with open(os.path.join(path, "cgroup.procs" if kind == "v2" else "tasks")) as f:
            if f.read().strip():       # goes with the NF, its processes killed first
                return
    except OSError:
        return
    deadline = time.monotonic() + SETTLE
    while True:
        try:
            os.rmdir(path)
            return
        except OSError:                # EBUSY while killed processes are still exiting
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
