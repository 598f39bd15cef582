"""The cgroups of an NF: every NF has its own, limited, and DELETE kills what is in them.

``"limits": {"memory": "32M", "pids": 64, "cpu": 0.5}`` in ``template.json``: at most 32 MiB
of memory (the kernel's OOM killer acts inside the group, not on the node), 64 processes,
half a CPU. A template that says nothing of memory or pids gets the node's default caps
(``DEFAULT``; ``unlite serve --nf-memory/--nf-pids``, UCI ``nf_memory``/``nf_pids``).

Each NF gets ``unlite/<netns>`` in every hierarchy that carries a controller it needs (cgroup
v2 where the controller is enabled there — OpenWrt —, the v1 controller's own hierarchy
otherwise — this Debian host), and always in the cgroup v2 hierarchy where one is mounted
(a hybrid host's ``unified``: no controller, but ``cgroup.kill`` and the freezer).

- ``plan(name, limits)``  the groups' ``cgroup.procs`` files, touching nothing: the node
                          records them before ``apply`` makes them;
- ``apply(name, limits)`` make them and write the limits;
- ``join_argv``           lifecycle scripts join them before they exec, so everything an NF
                          starts is inside from its first instruction, wherever it goes
                          later (another netns by ``setns``, a double fork to init);
- ``kill(procs)``         SIGKILL all of it: ``cgroup.kill`` (v2, Linux 5.14) where present,
                          else each pid of ``cgroup.procs`` until empty, bounded;
- ``release(procs)``      kill, then remove the groups (never raises).
"""
from __future__ import annotations

import os
import re
import signal
import time

from ... import names
from . import mounts as _mounts, write as _write

KEYS = ("memory", "pids", "cpu")
DEFAULT = {"memory": 64 << 20, "pids": 128}    # an NF whose template sets no limits
KILL_WAIT = 2.0         # s for killed processes to leave their groups
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


def _delegate(root, c):
    """cgroup v2 gives a group a controller only where each ancestor enables it for its
    children (``cgroup.subtree_control``): the root's (an init system often enables none: a
    pure-v2 Debian boot, some OpenWrt images) and ``unlite``'s. Raises LimitError naming the
    file and the reason when the kernel or the init system refuses."""
    for parent in (root, os.path.join(root, names.CGROUP_PARENT)):
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


def effective(template_limits, default=None):
    """The limits an NF runs with: its template's, and the node's default memory and pids
    caps for what the template does not set (``default``: ``DEFAULT``; 0 or None: none)."""
    roots = _roots()                    # a default cap where the node has the controller
    out = {k: v for k, v in (DEFAULT if default is None else default).items()
           if v and k in roots}
    out.update(template_limits or {})
    return out


def _v2_root():
    for mnt, fstype, _ in _mounts():
        if fstype == "cgroup2" and os.path.exists(os.path.join(mnt, "cgroup.procs")):
            return mnt
    return None


def plan(name, limits):
    """The ``cgroup.procs`` files of NF ``name``'s groups (nothing is made): one in each
    hierarchy of a controller in ``limits`` and one in the cgroup v2 hierarchy, if any."""
    roots, procs = _roots(), []
    for c in limits:
        if c in roots:
            procs.append(os.path.join(roots[c][1], names.CGROUP_PARENT, name, "cgroup.procs"))
    v2 = _v2_root()
    if v2:
        procs.append(os.path.join(v2, names.CGROUP_PARENT, name, "cgroup.procs"))
    return sorted(set(procs))


def apply(name, limits, procs=None):
    """Make the groups of NF ``name`` (``procs``: those ``plan`` gave) with ``limits``;
    return the ``cgroup.procs`` files a process must join. Raises LimitError when this node
    cannot enforce one of them."""
    roots = _roots()
    procs = list(plan(name, limits) if procs is None else procs)
    for p in procs:
        os.makedirs(os.path.dirname(p), exist_ok=True)
    for c, value in limits.items():
        if c not in roots:
            raise LimitError(f"this node has no '{c}' cgroup controller to enforce the limit")
        kind, root = roots[c]
        path = os.path.join(root, names.CGROUP_PARENT, name)
        if os.path.join(path, "cgroup.procs") not in procs:
            raise LimitError(f"the '{c}' group {path} was not planned")
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
    return procs


def join_argv(procs, argv):
    """``argv`` run by a shell that first moves itself into the groups ``procs``."""
    if not procs:
        return argv
    return ["/bin/sh", "-c", 'for f in $UNLITE_CGROUP_PROCS; do echo $$ > "$f" || exit 126; '
            'done; exec "$@"', "unlite-limits"] + list(argv)


def pids(procs):
    """The pids in the groups ``procs`` now."""
    out = set()
    for p in procs:
        try:
            with open(p) as f:
                out.update(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
    return out


def _unlite_group(p):
    """Is ``p`` the ``cgroup.procs`` file of a group unlite makes (``<root>/unlite/<NAME>``
    under a cgroup mount)? A record's paths are checked before they are acted on."""
    d = os.path.dirname(p)
    parent, name = os.path.split(d)
    return (os.path.basename(p) == "cgroup.procs"
            and os.path.basename(parent) == names.CGROUP_PARENT
            and names.is_ours(name) and "/" not in name and ".." not in d
            and any(os.path.dirname(parent) == mnt for mnt, fs, _ in _mounts()
                    if fs in ("cgroup", "cgroup2")))


def kill(procs, wait=KILL_WAIT):
    """SIGKILL every process in the groups ``procs`` (``cgroup.procs`` files), wherever it
    went since, and wait (at most ``wait`` s) until they are empty; True when they are.
    Never raises."""
    procs = [p for p in procs if _unlite_group(p)]
    for p in procs:
        k = os.path.join(os.path.dirname(p), "cgroup.kill")
        if os.path.exists(k):
            try:
                _write(k, "1")
            except OSError:
                pass
    deadline = time.monotonic() + wait
    while True:
        left = pids(procs) - {os.getpid()}     # never this daemon, whoever moved it in
        if not left:
            return True
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def release(procs):
    """Kill what is in NF groups ``procs`` and remove the groups (never raises)."""
    kill(procs)
    for p in procs:
        if not _unlite_group(p):
            continue
        path = os.path.dirname(p)
        deadline = time.monotonic() + KILL_WAIT
        while os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
