"""Which Python modules an OpenWrt box has: ``python3-light`` and the packages split off it.

OpenWrt's packages feed (lang/python/python3: ``python3-package-*.mk`` and the
``python3-light`` filespec) ships the standard library as ``python3-light`` minus the
sub-packages below, each of which takes the listed modules (packages, ``.py`` files and
``lib-dynload`` extensions) out of it. So on a box with ``python3-light`` plus some of them,
the importable standard-library modules are: all of them, minus those of the sub-packages not
installed, minus ``NOT_SHIPPED``.

- ``SUBPACKAGES``   OpenWrt package → the top-level modules it holds
- ``allowed``       the top-level modules importable with a set of OpenWrt packages installed
- run as a program: a launcher that runs ``unlite`` with only those modules importable and
  writes, at exit, which modules were imported and which imports were refused:

      python3 -S tools/openwrt_py3.py --report OUT.json --depends python3-light,... \\
          [--path DIR] -- serve ...

  (``-S``: no site-packages processing, as on the box; ``--path``: where unlite and Bottle
  are, e.g. an installed root's /usr/lib/unlite and Bottle's folder.) With ``--import MOD``
  (repeatable) instead of ``-- ARGS`` it only imports those modules: exit 0 or the error.
"""
from __future__ import annotations

import sys

SUBPACKAGES = {
    "python3-asyncio": ["asyncio"],
    "python3-cgi": ["cgi"],
    "python3-cgitb": ["cgitb"],
    "python3-codecs": ["_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp",
                       "_codecs_kr", "_codecs_tw", "unicodedata"],
    "python3-ctypes": ["ctypes", "_ctypes"],
    "python3-dbm": ["dbm", "_dbm", "_gdbm"],
    "python3-decimal": ["decimal", "_decimal"],
    "python3-distutils": ["distutils"],
    "python3-email": ["email"],
    "python3-lib2to3": ["lib2to3"],
    "python3-logging": ["logging"],
    "python3-lzma": ["lzma", "_lzma"],
    "python3-multiprocessing": ["multiprocessing", "_multiprocessing"],
    "python3-ncurses": ["curses", "_curses", "_curses_panel"],
    "python3-openssl": ["_ssl", "_hashlib"],
    "python3-pydoc": ["doctest", "pydoc", "pydoc_data"],
    "python3-readline": ["readline"],
    "python3-sqlite3": ["sqlite3", "_sqlite3"],
    "python3-unittest": ["unittest"],
    "python3-urllib": ["urllib"],
    "python3-uuid": ["uuid", "_uuid"],
    "python3-venv": ["venv"],
    "python3-webbrowser": ["webbrowser"],
    "python3-xml": ["xml", "xmlrpc", "_elementtree", "pyexpat"],
}
# left out of python3-light and of every package
NOT_SHIPPED = ["ensurepip", "idlelib", "tkinter", "_tkinter", "turtledemo", "test",
               "_osx_support"]
# OpenWrt Python packages that are not part of the standard library → their modules
THIRD_PARTY = {"python3-bottle": ["bottle"]}


def allowed(depends):
    """Top-level module names importable with OpenWrt packages ``depends`` (+ unlite)."""
    have = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    for pkg, mods in SUBPACKAGES.items():
        if pkg not in depends:
            have -= set(mods)
    have -= set(NOT_SHIPPED)
    for pkg, mods in THIRD_PARTY.items():
        if pkg in depends:
            have |= set(mods)
    return have | {"unlite", "__main__"}


class _Gate:
    """A meta-path finder in front of all others: modules outside ``ok`` do not exist."""

    def __init__(self, ok):
        self.ok, self.refused = ok, set()

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in self.ok:
            return None                       # let the normal finders look
        self.refused.add(name)
        raise ModuleNotFoundError(f"No module named {name!r} (not on the OpenWrt box)",
                                  name=name)


def _main(argv):
    import atexit
    import json
    import os
    if "--" not in argv and "--import" not in argv:
        sys.exit("usage: openwrt_py3.py [--report FILE] --depends PKG,... [--path DIR]... "
                 "(-- UNLITE-ARGS | --import MODULE...)")
    own, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, None)
    report, depends, paths, imports = None, [], [], []
    it = iter(own)
    for arg in it:
        if arg == "--report":
            report = next(it)
        elif arg == "--depends":
            depends = next(it).split(",")
        elif arg == "--path":
            paths.append(next(it))
        elif arg == "--import":
            imports.append(next(it))
        else:
            sys.exit(f"openwrt_py3: unknown option {arg}")
    sys.path[:0] = paths
    gate = _Gate(allowed(depends))
    sys.meta_path.insert(0, gate)

    def write():
        mods = sorted(n for n, m in sys.modules.items() if m is not None)
        unlite = sys.modules.get("unlite")
        with open(report, "w") as f:
            json.dump({"imported": mods, "refused": sorted(gate.refused),
                       "unlite_file": getattr(unlite, "__file__", None),
                       "pid": os.getpid()}, f, indent=1)

    if report:
        atexit.register(write)
    if rest is None:
        import importlib
        for name in imports:
            try:
                importlib.import_module(name)
            except ImportError as e:
                print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
                return 1
        return 0
    from unlite.cli import main
    return main(rest)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
