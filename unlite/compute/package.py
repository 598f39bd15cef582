"""NNF packages (nnf/README.md; DESIGN.md) and the NNF repository they come from.

An NNF package is a small ``.tgz``: ``template.json`` at the top plus POSIX shell scripts named
after the lifecycle actions (``create start stop update delete pause resume status``).

- ``Template`` / ``load_template``  the validated template (name, flavour, aliases, ports,
                                    dependencies, timeout); ``Template.check_ports`` fits a
                                    graph's port ids to it
- ``missing_dependencies``          which executables / packages the node lacks
- ``pack``                          a directory → a reproducible ``.tgz`` + its ``.json`` index
                                    entry (uri + sha256)
- ``Repository``                    the catalog: indexes a folder of ``*.json`` / ``*.tgz``,
                                    resolves a graph's VNF name / ``vnf_template`` to a
                                    ``Package``: fetched, sha256-verified, unpacked (tar-slip
                                    proof) into ``cache_dir/<sha256>/``; that folder is checked
                                    against the archive's ``manifest`` at every use and
                                    unpacked again when a file is missing, changed or added
                                    (a package runs whole or not at all)
- ``Package``                       an unpacked package: its template, folder, scripts

Pure file work: no subprocess is ever run here.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import sh
from ..errors import UnliteError

log = logging.getLogger("unlite.package")

ACTIONS = ("create", "start", "stop", "update", "delete", "pause", "resume", "status")
MAX_MEMBER = 1 << 20        # bytes of one archive member
MAX_TOTAL = 4 << 20         # bytes of all members
MAX_MEMBERS = 64
MAX_ARCHIVE = 8 << 20       # bytes of the compressed archive we agree to read
FETCH_TIMEOUT = 30.0
PACKAGE_DBS = ("/usr/lib/opkg/status", "/var/lib/dpkg/status")
EXTRA_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class PackageError(UnliteError):
    def __init__(self, message, status=422, field="name"):
        super().__init__(message, status=status)
        self.field = field              # the VNF's field at fault: name or vnf_template


# -- template ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    name: str
    flavour: str | None
    aliases: tuple[str, ...]
    multitenancy: bool
    ports: tuple[dict, ...]
    dependencies: tuple[tuple[str, str], ...]
    timeout: float
    description: str
    raw: dict
    ok_exit: tuple[int, ...] = (0,)     # exit statuses that mean success ("exit-success")

    def names(self):
        return (self.name,) + self.aliases

    @property
    def limits(self):
        """{"memory": bytes, "pids": n, "cpu": CPUs} the NF asks for (checked at load)."""
        from .limits import parse
        return parse(self.raw.get("limits"))

    def check_ports(self, port_ids):
        """Error text if the graph's port ids (``inout:0`` ...) do not fit the template."""
        spec = {p["label"]: p for p in self.ports}
        count, seen = {}, set()
        for pid in port_ids:
            label, _, idx = str(pid).rpartition(":")
            if not label or not idx.isdigit():
                return f"port id '{pid}' is not LABEL:INDEX (e.g. 'inout:0')"
            if label not in spec:
                return (f"port '{pid}': label '{label}' unknown to {self.name} "
                        f"(it has: {', '.join(spec)})")
            if pid in seen:
                return f"port '{pid}' appears twice"
            seen.add(pid)
            if int(idx) >= spec[label]["max"]:
                return (f"port '{pid}': index out of range for {self.name} "
                        f"('{label}' takes {_range(spec[label])} ports, indexes from 0)")
            count[label] = count.get(label, 0) + 1
        for label, p in spec.items():
            n = count.get(label, 0)
            if not p["min"] <= n <= p["max"]:
                return (f"{self.name} takes {_range(p)} '{label}' ports, "
                        f"the graph gives {n}")
        return None


def _range(p):
    return str(p["min"]) if p["min"] == p["max"] else f"{p['min']}..{p['max']}"


def load_template(data, source):
    """Parse and validate a template (dict, or JSON bytes/str); ``source`` names it in errors."""
    def bad(field, why):
        raise PackageError(f"{source}: template field '{field}': {why}")

    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise PackageError(f"{source}: template is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise PackageError(f"{source}: template must be a JSON object")

    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        bad("name", "required, letters/digits/'_.+-', at most 64 characters")
    flavour = data.get("flavour")
    if flavour is not None and not isinstance(flavour, str):
        bad("flavour", "must be a string")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and _NAME_RE.match(a)
                                                for a in aliases):
        bad("aliases", "must be a list of names")
    vtype = data.get("vnf-type", "native")
    if vtype != "native":
        bad("vnf-type", f"'{vtype}' is not a native network function")
    mt = data.get("multitenancy", False)
    if not isinstance(mt, bool):
        bad("multitenancy", "must be true or false")

    ports = data.get("ports")
    if not isinstance(ports, list) or not ports:
        bad("ports", "required, a non-empty list of {label, min, max}")
    norm_ports, labels = [], set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            bad(f"ports[{i}]", "must be an object")
        label = p.get("label")
        if not isinstance(label, str) or not label or ":" in label or label in labels:
            bad(f"ports[{i}].label", "required, a unique non-empty string without ':'")
        labels.add(label)
        lim = {}
        for k in ("min", "max"):
            v = p.get(k)
            if isinstance(v, str) and v.isdigit():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(f"ports[{i}].{k}", "required, a non-negative integer")
            lim[k] = v
        if lim["max"] < max(lim["min"], 1):
            bad(f"ports[{i}].max", "must be at least min and at least 1")
        norm_ports.append({**p, **lim})

    deps = data.get("dependencies", [])
    if isinstance(deps, dict):           # the paper's Fig. 3: {"capability": [...]}
        deps = deps.get("capability", [])
        deps = [deps] if isinstance(deps, dict) else deps
    if not isinstance(deps, list):
        bad("dependencies", "must be a list or {\"capability\": [...]}")
    norm_deps = []
    for i, d in enumerate(deps):
        dname, dtype = (d, "executable") if isinstance(d, str) else (
            (d.get("name"), d.get("type", "executable")) if isinstance(d, dict) else (None, None))
        if not isinstance(dname, str) or not _NAME_RE.match(dname):
            bad(f"dependencies[{i}].name", "required, a program or package name")
        if dtype not in ("executable", "package"):
            bad(f"dependencies[{i}].type", "must be 'executable' or 'package'")
        norm_deps.append((dname, dtype))

    timeout = data.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout <= 3600:
        bad("timeout", "seconds, a number in (0, 3600]")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        bad("description", "must be a string")
    if not isinstance(data.get("env", {}), dict):
        bad("env", "must be an object {NAME: description}")
    from .limits import LimitError, parse as parse_limits
    try:
        parse_limits(data.get("limits"))
    except LimitError as e:
        bad("limits", str(e))
    ok = data.get("exit-success", [0])
    if not isinstance(ok, list) or not ok or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in ok):
        bad("exit-success", "a non-empty list of exit statuses 0-255 that mean success "
                            "(default [0]; [1] for scripts written for the UN's launcher)")
    return Template(name, flavour, tuple(aliases), mt, tuple(norm_ports), tuple(norm_deps),
                    float(timeout), desc, data, tuple(ok))


SH = {"sh", "ash"}          # what every box has (busybox): run as /bin/sh


def interpreter(head: bytes):
    """The program a script's ``#!`` line names: None for a POSIX shell (or no ``#!``:
    /bin/sh runs it), else (path, [argument]) — ``#!/usr/bin/env bash`` is ("bash", [])."""
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return None
    prog, args = words[0], words[1:2]
    if prog.rsplit("/", 1)[-1] == "env" and args:
        prog, args = args[0], []
    return None if prog.rsplit("/", 1)[-1] in SH else (prog, args)


def check_interpreters(template: Template, scripts, source):
    """Each lifecycle script that is not a POSIX shell script must name its interpreter in
    the template's dependencies (so a node without it says so before anything is made)."""
    deps = {n for n, kind in template.dependencies if kind == "executable"}
    for action, head in scripts:
        it = interpreter(head)
        if it and it[0].rsplit("/", 1)[-1] not in deps:
            name = it[0].rsplit("/", 1)[-1]
            raise PackageError(f"{source}: lifecycle script '{action}' runs with {it[0]} (its "
                               f"#! line): name '{name}' in the template's dependencies "
                               f"({{\"name\": \"{name}\", \"type\": \"executable\"}})")


# -- dependencies ---------------------------------------------------------------------------
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


# -- pack -----------------------------------------------------------------------------------
def _is_script(rel: str, head: bytes):
    return ("/" not in rel and rel in ACTIONS) or head.startswith(b"#!")


def pack(src_dir, out_tgz, template_file=None):
    """Pack ``src_dir`` into a reproducible ``out_tgz`` and write its index entry
    ``out.json`` (template + uri + sha256) beside it. Return the sha256 hex.
    ``template_file``: the template.json to pack, when it is not in ``src_dir`` (a folder
    of scripts kept unchanged, such as a UN native NF's)."""
    import gzip
    import tarfile
    src, out = Path(src_dir), Path(out_tgz)
    tpath = Path(template_file) if template_file else src / "template.json"
    if not tpath.is_file() or tpath.is_symlink():
        raise PackageError(f"{src}: no template.json")
    tdata = tpath.read_bytes()
    template = load_template(tdata, str(tpath))
    for a in ACTIONS:
        p = src / a
        if (p.exists() or p.is_symlink()) and (p.is_symlink() or not p.is_file()):
            raise PackageError(f"{src}: lifecycle script '{a}' is not a regular file")
    check_interpreters(template, [(a, (src / a).read_bytes()[:256]) for a in ACTIONS
                                  if (src / a).is_file()], str(src))
    entries = []     # (relative name, path or None for a directory)
    skip = {out.resolve(), out.with_suffix(".json").resolve()}    # packing into src itself
    for dirpath, dirnames, filenames in os.walk(src):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            if p.resolve() in skip:
                continue
            rel = p.relative_to(src).as_posix()
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise PackageError(f"{src}: refusing symlink '{rel}'")
            if stat.S_ISDIR(st.st_mode):
                entries.append((rel, None))
            elif stat.S_ISREG(st.st_mode):
                entries.append((rel, p))
            else:
                raise PackageError(f"{src}: '{rel}' is not a regular file or directory")
    if template_file:                   # the given template, not one the folder may hold
        entries = [e for e in entries if e[0] != "template.json"] + [("template.json", tpath)]
    entries.sort()
    if len(entries) > MAX_MEMBERS:
        raise PackageError(f"{src}: more than {MAX_MEMBERS} files")
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
    buf, total = io.BytesIO(), 0
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel, p in entries:
            ti = tarfile.TarInfo(rel)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = mtime, 0, 0, "root", "root"
            if p is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
                continue
            data = p.read_bytes()
            total += len(data)
            if len(data) > MAX_MEMBER or total > MAX_TOTAL:
                raise PackageError(f"{src}: '{rel}' makes the package too big "
                                   f"(≤ {MAX_MEMBER} bytes a file, ≤ {MAX_TOTAL} in all)")
            ti.size, ti.mode = len(data), 0o755 if _is_script(rel, data[:2]) else 0o644
            tar.addfile(ti, io.BytesIO(data))
    blob = buf.getvalue()
    sha = hashlib.sha256(blob).hexdigest()
    _atomic_write(out, blob)
    index = {**template.raw, "uri": out.name, "sha256": sha}
    _atomic_write(out.with_suffix(".json"), (json.dumps(index, indent=2) + "\n").encode())
    return sha


def _atomic_write(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# -- unpack ---------------------------------------------------------------------------------
def _member_path(m):
    """The safe relative path of tar member ``m``, or raise; '' for the archive root itself."""
    import tarfile                      # only on a first unpack: the daemon may never need it
    name = m.name
    if "\0" in name or "\\" in name:
        raise PackageError(f"refusing archive member {name!r}: NUL or backslash in its name")
    if name.startswith("/"):
        raise PackageError(f"refusing archive member '{name}': absolute path")
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        raise PackageError(f"refusing archive member '{name}': '..' in its path")
    if m.issym() or m.islnk():
        raise PackageError(f"refusing archive member '{name}': links are not allowed")
    if not (m.isdir() or m.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)):
        raise PackageError(f"refusing archive member '{name}': not a regular file or directory")
    if m.size > MAX_MEMBER:
        raise PackageError(f"refusing archive member '{name}': {m.size} bytes "
                           f"(at most {MAX_MEMBER})")
    return "/".join(parts)


def _unpack(blob: bytes, dest: Path, source: str):
    """Unpack ``blob`` into the new folder ``dest`` (via a temp dir + rename)."""
    import tarfile
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        count, total, seen = 0, 0, set()
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r|gz") as tar:
            for m in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise PackageError(f"more than {MAX_MEMBERS} archive members")
                rel = _member_path(m)
                if not rel:
                    continue
                if rel in seen:
                    raise PackageError(f"refusing archive member '{m.name}': duplicate")
                seen.add(rel)
                target = tmp / rel
                if m.isdir():
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                total += m.size
                if total > MAX_TOTAL:
                    raise PackageError(f"refusing archive member '{m.name}': package over "
                                       f"{MAX_TOTAL} bytes unpacked")
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                data = _member(tar, m).read(MAX_MEMBER + 1)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(target, 0o755 if _is_script(rel, data[:2]) else 0o644)
        if not (tmp / "template.json").is_file():
            raise PackageError("no template.json at the top of the archive")
        for a in ACTIONS:
            p = tmp / a
            if p.exists() and not p.is_file():
                raise PackageError(f"lifecycle script '{a}' is not a regular file")
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():        # a concurrent unpack of the same sha256 won: fine
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except PackageError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PackageError(f"{source}: {e.message}") from None
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PackageError(f"{source}: broken archive: {e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _manifest(blob: bytes, source: str):
    """What archive ``blob`` unpacks to: {relative path: (sha256, mode)} of its files. Its
    unpacked folder must hold exactly these to be run: a deleted ``start`` would otherwise
    be skipped and a firewall run without its rules."""
    import tarfile
    out = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r|gz") as tar:
            for i, m in enumerate(tar):
                if i >= MAX_MEMBERS:
                    raise PackageError(f"more than {MAX_MEMBERS} archive members")
                rel = _member_path(m)
                if rel and not m.isdir():
                    data = _member(tar, m).read(MAX_MEMBER + 1)
                    out[rel] = (hashlib.sha256(data).hexdigest(),
                                0o755 if _is_script(rel, data[:2]) else 0o644)
    except PackageError as e:
        raise PackageError(f"{source}: {e.message}") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PackageError(f"{source}: broken archive: {e}") from None
    return out


def _member(tar, m):
    """The content of archive member ``m`` (a regular file: the callers checked)."""
    f = tar.extractfile(m)
    if f is None:
        raise PackageError(f"archive member '{m.name}' is not a regular file")
    return f


def _pinned(e: _Entry) -> tuple[str, str]:
    """An entry's (sha256, uri); one without them cannot be unpacked (its error says why)."""
    if e.sha256 is None or e.uri is None:
        raise e.error or PackageError(f"{e.file}: no archive or no pin")
    return e.sha256, e.uri


def _mismatch(dest: Path, manifest):
    """How unpacked folder ``dest`` differs from ``manifest`` (None: it does not): a file
    missing, of other content or mode, or one the package does not have."""
    if not dest.is_dir() or dest.is_symlink():
        return "are gone"
    found = set()
    for dirpath, dirs, files in os.walk(dest):
        for f in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            found.add(os.path.relpath(os.path.join(dirpath, f), dest))
    for rel, (sha, mode) in sorted(manifest.items()):
        if rel not in found:
            return f"lack '{rel}'"
        path = dest / rel
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode:
                return f"have '{rel}' of another kind or mode"
            with open(path, "rb") as fh:
                if hashlib.sha256(fh.read(MAX_MEMBER + 1)).hexdigest() != sha:
                    return f"have '{rel}' changed"
        except OSError as e:
            return f"have '{rel}' unreadable ({e.strerror})"
    extra = sorted(found - set(manifest))
    return f"have '{extra[0]}', which the package has not" if extra else None


def _embedded_template(blob: bytes, source: str):
    """Read template.json out of a .tgz without unpacking it."""
    import tarfile
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r|gz") as tar:
            for i, m in enumerate(tar):
                if i >= MAX_MEMBERS:
                    break
                if m.name in ("template.json", "./template.json") and m.isreg() \
                        and m.size <= MAX_MEMBER:
                    return load_template(_member(tar, m).read(), f"{source}!template.json")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PackageError(f"{source}: broken archive: {e}") from None
    raise PackageError(f"{source}: no template.json at the top of the archive")


# -- repository -----------------------------------------------------------------------------
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
