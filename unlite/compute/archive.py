"""The NNF package's archive: ``pack`` a folder into a reproducible ``.tgz`` (and its index
entry), ``unpack`` one member by member (tar-slip proof, sizes capped), its ``manifest`` (each
file's sha256 and mode) and how an unpacked folder differs from it (``mismatch``). Pure file
work: no command run.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path, PurePosixPath

from .template import (ACTIONS, MAX_MEMBER, MAX_MEMBERS, MAX_TOTAL, PackageError,
                       check_interpreters, load_template)


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
