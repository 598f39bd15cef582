"""Which of an NNF's dependencies this node lacks: executables on the PATH, packages in the
opkg (OpenWrt) or dpkg status file. Read from files, no command run; cached by mtime.
"""
from __future__ import annotations

import itertools
import os
import shutil

from .template import Template

PACKAGE_DBS = ("/usr/lib/opkg/status", "/var/lib/dpkg/status")
EXTRA_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
_pkg_db_cache: dict[str, tuple[int, frozenset]] = {}


def _installed_packages(db):
    """Names marked installed in an opkg/dpkg status file (cached by mtime); None if absent."""
    try:
        mtime = os.stat(db).st_mtime_ns
    except OSError:
        return None
    hit = _pkg_db_cache.get(db)
    if hit and hit[0] == mtime:
        return hit[1]
    names, name, installed = set(), None, False
    with open(db, encoding="utf-8", errors="replace") as f:    # streamed: ~1 MB on Debian
        for ln in itertools.chain(f, ["\n"]):                   # "\n" ends the last stanza
            if ln.startswith("Package:"):
                name = ln[8:].strip()
            elif ln.startswith("Status:"):
                words = ln[7:].split()
                installed = len(words) == 3 and words[2] == "installed"
            elif not ln.strip():                                # end of a stanza
                if name and installed:
                    names.add(name)
                name, installed = None, False
    _pkg_db_cache[db] = (mtime, frozenset(names))
    return _pkg_db_cache[db][1]


def missing_dependencies(t: Template, path=None):
    """Human strings ("executable 'nft'", "package 'iptables'") for what this node lacks."""
    search = (path if path is not None else os.environ.get("PATH", "")) + ":" + EXTRA_PATH
    dbs = [s for s in (_installed_packages(db) for db in PACKAGE_DBS) if s is not None]
    missing = []
    for name, kind in t.dependencies:
        if kind == "package" and dbs:
            ok = any(name in s for s in dbs)
        else:
            ok = shutil.which(name, path=search) is not None
        if not ok:
            missing.append(f"{kind} '{name}'")
    return missing
