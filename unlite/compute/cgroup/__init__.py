"""Every NF's cgroups, in one place: where the hierarchies are mounted and the two jobs on them.

- ``limits``   each NF's own groups (memory, pids, cpu; cgroup v2 where mounted): planned into
               the record before they exist, made with the limits, joined by the NF's
               scripts before they exec, killed and removed at stop and delete;
- ``freezer``  pause and resume: the NF's processes frozen in ``unlite/<netns>`` (cgroup v2's
               ``cgroup.freeze``, else the v1 freezer).

Every group is ``<hierarchy>/unlite/<NF namespace>`` (``names.CGROUP_PARENT``). This module
holds what both read: the mounts and the one way to write a control file.
"""
from __future__ import annotations


def mounts():
    """(mount point, fstype, options) of every mount (``/proc/self/mounts``)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            yield mnt, fstype, opts.split(",")


def write(path, text):
    """Write a cgroup control file (one write: the kernel acts on it as a whole)."""
    with open(path, "w") as f:
        f.write(text)
