"""Resource limits of an NF: memory, processes, CPU — when its template asks for them.

``"limits": {"memory": "32M", "pids": 64, "cpu": 0.5}`` in ``template.json``: at most 32 MiB
of memory (the kernel's OOM killer acts inside the group, not on the node), 64 processes,
half a CPU. Each NF gets ``unlite/<netns>`` in every hierarchy that carries a controller it
needs: cgroup v2 where the controller is enabled there (OpenWrt), the v1 controller's own
hierarchy otherwise (this Debian host). Lifecycle scripts join the groups before they exec
(``join_argv``), so everything an NF starts is inside them from its first instruction.
"""
from __future__ import annotations

import os
import re
import time

from .freezer import _mounts

KEYS = ("memory", "pids", "cpu")
PERIOD_US = 100_000
_SIZE = re.compile(r"^(\d+)([KMG]?)$", re.I)


class LimitError(ValueError):
    pass


def parse(raw, where="limits"):
    """Validate a template's ``limits`` object → {"memory": bytes, "pids": n, "cpu": f}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LimitError(f"{where} must be an object")
    out = {}
    for k, v in raw.items():
        if k not in KEYS:
            raise LimitError(f"{where}: unknown limit '{k}' (known: {', '.join(KEYS)})")
        if k == "memory":
            m = _SIZE.match(str(v))
            if not m or isinstance(v, bool):
                raise LimitError(f"{where}.memory: '{v}' is not a size like 33554432 or 32M")
            n = int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[
                m.group(2).upper()]
            if n < (4 << 20):
                raise LimitError(f"{where}.memory: at least 4M")
            out[k] = n
        elif k == "pids":
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65536:
                raise LimitError(f"{where}.pids: an integer 1..65536")
            out[k] = v
        else:
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.01 <= v <= 64:
                raise LimitError(f"{where}.cpu: a number of CPUs, 0.01..64")
            out[k] = float(v)
    return out


def _roots():
    """{controller: ("v2"|"v1", mount point)} for memory, pids, cpu."""
    v2, v1 = None, {}
    for mnt, fstype, opts in _mounts():
        if fstype == "cgroup2":
            v2 = mnt
        elif fstype == "cgroup":
            for c in ("memory", "pids", "cpu"):
                if c in opts:
                    v1[c] = mnt
    enabled = set()
    if v2:
        try:
            with open(os.path.join(v2, "cgroup.controllers")) as f:
                enabled = set(f.read().split())
        except OSError:
            pass
    out = {}
    for c in KEYS:
        if c in enabled:
            out[c] = ("v2", v2)
        elif c in v1:
            out[c] = ("v1", v1[c])
    return out


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _delegate(root, c):
    """cgroup v2 gives a group a controller only where each ancestor enables it for its
    children (``cgroup.subtree_control``): the root's (an init system often enables none: a
    pure-v2 Debian boot, some OpenWrt images) and ``unlite``'s. Raises LimitError naming the
    file and the reason when the kernel or the init system refuses."""
    for parent in (root, os.path.join(root, "unlite")):
        ctl = os.path.join(parent, "cgroup.subtree_control")
        try:
            with open(ctl) as f:
                if c in f.read().split():
                    continue
            _write(ctl, f"+{c}")
        except OSError as e:
            why = e.strerror or str(e)
            hint = (" (processes sit in that group itself: cgroup v2 enables controllers only "
                    "in groups without processes of their own)" if e.errno == 16 else "")
            raise LimitError(f"cannot enable the cgroup v2 '{c}' controller for unlite's groups:"
                             f" writing '+{c}' to {ctl}: {why}{hint}") from e


def apply(name, limits):
    """Make the groups of NF ``name`` with ``limits``; return the ``cgroup.procs`` files a
    process must join. Raises LimitError when this node cannot enforce one of them."""
    if not limits:
        return []
    roots, procs = _roots(), []
    for c, value in limits.items():
        if c not in roots:
            raise LimitError(f"this node has no '{c}' cgroup controller to enforce the limit")
        kind, root = roots[c]
        path = os.path.join(root, "unlite", name)
        os.makedirs(path, exist_ok=True)
        if kind == "v2":
            _delegate(root, c)
            files = {"memory": ("memory.max", str(value)), "pids": ("pids.max", str(value)),
                     "cpu": ("cpu.max", f"{int(value * PERIOD_US)} {PERIOD_US}")}
        else:
            files = {"memory": ("memory.limit_in_bytes", str(value)),
                     "pids": ("pids.max", str(value)),
                     "cpu": ("cpu.cfs_quota_us", str(int(value * PERIOD_US)))}
            if c == "cpu":
                _write(os.path.join(path, "cpu.cfs_period_us"), str(PERIOD_US))
        fname, text = files[c]
        _write(os.path.join(path, fname), text)
        p = os.path.join(path, "cgroup.procs")
        if p not in procs:
            procs.append(p)
    return procs


def join_argv(procs, argv):
    """``argv`` run by a shell that first moves itself into the groups ``procs``."""
    if not procs:
        return argv
    return ["/bin/sh", "-c", 'for f in $UNLITE_CGROUP_PROCS; do echo $$ > "$f" || exit 126; '
            'done; exec "$@"', "unlite-limits"] + list(argv)


def release(name):
    """Remove NF ``name``'s groups once its processes are gone (never raises)."""
    for _, root in set(_roots().values()):
        path = os.path.join(root, "unlite", name)
        deadline = time.monotonic() + 2.0
        while os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
