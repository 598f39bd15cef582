"""NNF packages (nnf/README.md; DESIGN.md) and the NNF repository they come from.

An NNF package is a small ``.tgz``: ``template.json`` at the top plus POSIX shell scripts named
after the lifecycle actions (``create start stop update delete pause resume status``). Its parts:

- ``compute/template.py``      ``Template`` / ``load_template``: the validated template (name,
                               flavour, aliases, ports, dependencies, timeout, limits)
- ``compute/dependencies.py``  ``missing_dependencies``: which executables / packages the node
                               lacks (the opkg or dpkg status file, the PATH)
- ``compute/archive.py``       ``pack``: a directory → a reproducible ``.tgz`` + its ``.json``
                               index entry; unpacking (tar-slip proof), manifests
- here                         ``Repository``: the catalog: indexes a folder of ``*.json`` /
                               ``*.tgz``, resolves a graph's VNF name / ``vnf_template`` to a
                               ``Package``: fetched (a file, or http(s): https through the
                               system's fetcher, ``sh.fetch``, where Python has no TLS),
                               sha256-verified, unpacked into ``cache_dir/<sha256>/``; that
                               folder is checked against the archive's manifest at every use
                               and unpacked again when a file is missing, changed or added (a
                               package runs whole or not at all); ``Package``: an unpacked one

The names other modules import from here (``PackageError``, ``load_template``, ``pack``,
``missing_dependencies``, ``interpreter``) are the parts' own, re-exported.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import sh
from .archive import (_embedded_template, _manifest, _mismatch,
                      _unpack, pack)
from .dependencies import missing_dependencies
from .template import (_SHA_RE, ACTIONS, FETCH_TIMEOUT, MAX_ARCHIVE, PackageError, Template,
                       check_interpreters, interpreter, load_template)

__all__ = ["ACTIONS", "Package", "PackageError", "Repository", "Template", "check_interpreters",
           "interpreter", "load_template", "missing_dependencies", "pack"]

log = logging.getLogger("unlite.package")


@dataclass
class Package:
    template: Template
    dir: Path
    sha256: str
    manifest: dict | None = None        # what ``dir`` must hold (``_manifest``)

    def script(self, action):
        """The lifecycle script for ``action``, or None if the package has none."""
        if action not in ACTIONS:
            raise ValueError(f"unknown lifecycle action '{action}'")
        p = self.dir / action
        return p if p.is_file() else None


@dataclass
class _Entry:
    file: Path           # the .json or .tgz in the repository
    mtime: int
    template: Template | None
    uri: str | None      # where the .tgz is
    sha256: str | None   # pinned (.json) or computed (.tgz)
    error: PackageError | None = None

    @property
    def stem(self):
        return self.file.stem


def _pinned(e: _Entry) -> tuple[str, str]:
    """An entry's (sha256, uri); one without them cannot be unpacked (its error says why)."""
    if e.sha256 is None or e.uri is None:
        raise e.error or PackageError(f"{e.file}: no archive or no pin")
    return e.sha256, e.uri


class Repository:
    """A folder of NNF templates (``*.json`` with uri + sha256) and/or bare ``*.tgz``."""

    def __init__(self, root, cache_dir):
        self.root, self.cache_dir = Path(root), Path(cache_dir)
        self._files: dict[Path, _Entry] = {}    # every indexed file, by path (mtime-keyed)
        self._entries: list[_Entry] | None = None
        self._packages: dict[str, Package] = {}
        self._lock = threading.Lock()           # the REST server may resolve from threads

    # -- index ---------------------------------------------------------------------------------
    def _scan(self):
        files = {}
        try:
            paths = sorted(p for p in self.root.iterdir()
                           if p.suffix in (".json", ".tgz") and not p.name.startswith("."))
        except OSError as e:
            log.warning("NNF repository %s unreadable: %s", self.root, e)
            paths = []

        def index(p):
            try:
                mtime = p.stat().st_mtime_ns
            except OSError:
                return
            old = self._files.get(p)
            files[p] = old if old and old.mtime == mtime else self._index(p, mtime)

        for p in paths:
            if p.suffix == ".json":
                index(p)
        # .json entries first; a .tgz that a .json points at is neither read nor listed twice
        pinned = {self._local(e.uri) for e in files.values()}
        for p in paths:
            if p.suffix == ".tgz" and p.resolve() not in pinned:
                index(p)
        self._files = files
        self._entries = list(files.values())

    def _index(self, p: Path, mtime):
        try:
            if p.suffix == ".json":
                t = load_template(p.read_bytes(), str(p))
                uri, sha = t.raw.get("uri"), t.raw.get("sha256")
                if not isinstance(uri, str) or not uri:
                    raise PackageError(f"{p}: no 'uri' of the package")
                if not isinstance(sha, str) or not _SHA_RE.match(sha.lower()):
                    raise PackageError(f"{p}: no 'sha256' pin of the package "
                                       "(mandatory in a repository template)")
                return _Entry(p, mtime, t, uri, sha.lower())
            blob = p.read_bytes()
            return _Entry(p, mtime, _embedded_template(blob, str(p)), p.name,
                          hashlib.sha256(blob).hexdigest())
        except (PackageError, OSError) as e:
            log.warning("NNF repository: skipping %s: %s", p, e)
            err = e if isinstance(e, PackageError) else PackageError(f"{p}: {e}")
            return _Entry(p, mtime, None, None, None, err)

    def _local(self, uri):
        """The local path a uri names (None for remote uris)."""
        if uri is None:
            return None
        u = urllib.parse.urlsplit(uri)
        if u.scheme == "file":
            return Path(urllib.parse.unquote(u.path)).resolve()
        if u.scheme == "":
            return (self.root / uri).resolve()
        return None

    def templates(self):
        with self._lock:
            if self._entries is None:
                self._scan()
            return [e.template for e in self._entries if e.template]

    def _find(self, name, template):
        """Every entry a graph's VNF could mean, best match kind first: by template file
        stem, then functional name, then alias."""
        ok = [e for e in self._entries if e.template]
        if template:
            stem = PurePosixPath(template).stem
            return [e for e in self._entries if e.stem == stem] \
                or [e for e in ok if e.template.name == stem] \
                or [e for e in ok if stem in e.template.aliases]
        return [e for e in ok if e.template.name == name] \
            or [e for e in ok if name in e.template.aliases] \
            or [e for e in self._entries if e.stem == name]

    def candidates(self, name, template=None):
        """The templates that could implement a VNF (several flavours of one function)."""
        with self._lock:
            if self._entries is None:
                self._scan()
            return [e.template for e in self._find(name, template) if e.template]

    def resolve(self, name, template=None, pick=None):
        """The package for a graph's VNF ``name`` (and optional ``vnf_template`` file name).
        ``pick(templates)`` chooses among several candidates (an index); default: the first."""
        with self._lock:
            return self._resolve(name, template, pick)

    def _resolve(self, name, template, pick=None):
        if self._entries is None:
            self._scan()
        hits = self._find(name, template)
        if not hits or any(self._stale(e) for e in hits):   # packages may change while running
            self._scan()
            hits = self._find(name, template)
        if not hits:
            named = self._find(name, None) if template else []
            if named:                   # the function is here: only the template is unknown
                have = ", ".join(sorted({f"{e.stem}.json" for e in named}))
                raise PackageError(f"no NNF template '{template}' in the NNF repository "
                                   f"{self.root}; NNF '{name}' is there ({have}): name one "
                                   f"of those or leave vnf_template out", 422, "vnf_template")
            tfile = f" (template '{template}')" if template else ""
            raise PackageError(f"no NNF named '{name}'{tfile} in the NNF repository {self.root}",
                               422)
        usable = [e for e in hits if e.template] or hits
        e = usable[pick([u.template for u in usable]) if pick and len(usable) > 1 else 0]
        if e.error:
            raise e.error
        pkg = self._whole(e)
        if e.file.suffix == ".json" and (pkg.template.name != e.template.name
                                         or set(pkg.template.aliases) != set(e.template.aliases)):
            raise PackageError(f"{e.file}: index says '{e.template.name}' "
                               f"{list(e.template.aliases)} but the package is "
                               f"'{pkg.template.name}' {list(pkg.template.aliases)}")
        return pkg

    def _whole(self, e: _Entry):
        """The package of entry ``e``, its folder checked against its manifest: unpacked
        again from the catalog when a file is missing or not the package's; PackageError
        when it cannot be (never a half package)."""
        sha, _ = _pinned(e)
        pkg = self._packages.get(sha)
        why = _mismatch(pkg.dir, pkg.manifest) if pkg else None
        if pkg and not why:
            return pkg
        where = pkg.dir if pkg else None
        if why:
            log.warning("%s: the unpacked files in %s %s: unpacking it again", e.file,
                        where, why)
        try:
            pkg = self._packages[sha] = self._materialise(e)
        except PackageError as err:             # a broken one stays known: ensure refuses it
            if why:
                raise PackageError(f"{e.file}: the package's files in {where} {why}, and "
                                   f"it cannot be unpacked again: {err.message}") from None
            raise
        return pkg

    def ensure(self, sha256):
        """Before a script that configures an NF (start, update) runs: the package of
        ``sha256`` whole, unpacked again if need be; PackageError when it cannot be. A
        package this process never resolved is not checked (its plan was)."""
        with self._lock:
            if sha256 not in self._packages:
                return
            for e in self._entries or ():
                if e.sha256 == sha256 and e.template:
                    self._whole(e)
                    return
            pkg = self._packages[sha256]
            why = _mismatch(pkg.dir, pkg.manifest)
            if why:
                raise PackageError(f"the package's files in {pkg.dir} {why}, and its catalog "
                                   "entry is gone")

    def _stale(self, e):
        try:
            return e.file.stat().st_mtime_ns != e.mtime
        except OSError:
            return True

    # -- fetch + unpack ------------------------------------------------------------------------
    def _materialise(self, e: _Entry):
        """Fetch the archive (once a process, and again to repair), check its pin, and make
        ``cache_dir/<sha256>`` hold exactly its files: a folder that does not (a previous
        run's, changed since) is replaced."""
        sha, uri = _pinned(e)
        dest = self.cache_dir / sha
        blob = self._fetch(uri, e.file)
        actual = hashlib.sha256(blob).hexdigest()
        if actual != sha:
            raise PackageError(f"{e.file}: sha256 mismatch for {uri}: expected "
                               f"{sha}, got {actual}")
        if not os.path.lexists(dest):
            _unpack(blob, dest, uri)            # every member checked (tar-slip, sizes)
        manifest = _manifest(blob, uri)
        if _mismatch(dest, manifest):
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            else:
                dest.unlink()
        if not os.path.lexists(dest):
            _unpack(blob, dest, uri)
        why = _mismatch(dest, manifest)
        if why:                                 # changed while being unpacked
            raise PackageError(f"{e.file}: the files unpacked in {dest} {why}")
        t = load_template((dest / "template.json").read_bytes(), f"{uri}!template.json")
        check_interpreters(t, [(a, (dest / a).read_bytes()[:256]) for a in ACTIONS
                               if (dest / a).is_file()], uri)
        return Package(t, dest, sha, manifest)

    def _fetch(self, uri, source):
        u = urllib.parse.urlsplit(uri)
        try:
            if u.scheme in ("http", "https"):
                blob = _http_get(uri)
            elif u.scheme in ("", "file"):
                with open(self._local(uri), "rb") as f:
                    blob = f.read(MAX_ARCHIVE + 1)
            else:
                raise PackageError(f"{source}: unsupported uri scheme '{u.scheme}' in {uri}")
        except PackageError:
            raise
        except (OSError, ValueError) as e:
            raise PackageError(f"{source}: cannot fetch {uri}: {e}") from None
        if len(blob) > MAX_ARCHIVE:
            raise PackageError(f"{source}: {uri} is over {MAX_ARCHIVE} bytes")
        return blob


def _http_get(uri):
    """GET ``uri`` (at most MAX_ARCHIVE + 1 bytes). In the daemon OpenSSL is kept out of the
    process (see ``cli.lean_imports``), so https goes through the system's fetcher: on
    OpenWrt ``uclient-fetch`` (libustream-ssl), elsewhere ``curl`` or ``wget``."""
    import urllib.request
    if uri.startswith("https:") and not _has_tls():
        return sh.fetch(uri, MAX_ARCHIVE + 1, FETCH_TIMEOUT)
    with urllib.request.urlopen(uri, timeout=FETCH_TIMEOUT) as r:
        return r.read(MAX_ARCHIVE + 1)


def _has_tls():
    try:
        import ssl  # noqa: F401
        return True
    except ImportError:
        return False
