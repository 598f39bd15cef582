"""OpenWrt ``.ipk`` files without an OpenWrt SDK (the format opkg reads; README, "On an
OpenWrt router").

- ``Package``         what one ipk holds: control fields, files (path on the router → bytes
                      and mode), conffiles, maintainer scripts
- ``build``           ``Package`` → the ipk's bytes, reproducibly (same input and epoch → same
                      bytes), laid out as OpenWrt's ``scripts/ipkg-build`` does
- ``read``            ipk bytes → ``Ipk`` (control text and fields, members, data and control
                      archives) — for the feed index and the tests
- ``parse_control``   control/Packages stanza text → ordered dict of fields
- ``opkg_install``    unpack an ipk into a root folder the way opkg does (files, then
                      ``usr/lib/opkg/info/PKG.*`` and a status entry), without running scripts

The format, as opkg accepts it: a gzip'd tar (GNU format, numeric owners 0/0, fixed mtimes,
sorted members, gzip without name or time) holding ``./debian-binary`` ("2.0"),
``./data.tar.gz`` (the files, rooted at ``./``) and ``./control.tar.gz`` (``control``,
``conffiles``, scripts). ``Installed-Size`` is the size of the uncompressed data tar, as
ipkg-build computes it. pax tar (Python's default) is mis-read by opkg: never used here.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "postinst-pkg", "prerm-pkg")
FIELD_ORDER = ("Package", "Version", "Depends", "Source", "SourceName", "License", "Section",
               "URL", "Maintainer", "Architecture", "Installed-Size", "Description")


class IpkError(Exception):
    pass


@dataclass
class Package:
    name: str
    version: str
    description: str                       # first line: the title; the rest: the long text
    section: str = "net"
    depends: list = field(default_factory=list)
    license: str = "Apache-2.0"
    source: str = ""
    url: str = ""
    arch: str = "all"
    files: dict = field(default_factory=dict)      # "/usr/bin/x" -> (bytes, mode)
    dirs: list = field(default_factory=list)       # empty folders to ship, e.g. "/usr/share/x"
    conffiles: list = field(default_factory=list)
    scripts: dict = field(default_factory=dict)    # "postinst" -> shell text

    @property
    def filename(self):
        return f"{self.name}_{self.version}_{self.arch}.ipk"

    def check(self):
        if not NAME_RE.match(self.name):
            raise IpkError(f"package name {self.name!r}: only a-z 0-9 . + - allowed")
        if not re.fullmatch(r"[0-9][A-Za-z0-9.+~-]*", self.version):
            raise IpkError(f"{self.name}: bad version {self.version!r}")
        for p in list(self.files) + list(self.dirs) + list(self.conffiles):
            pp = PurePosixPath(p)
            if not pp.is_absolute() or ".." in pp.parts or str(pp) != p or p == "/":
                raise IpkError(f"{self.name}: path {p!r} must be absolute and normalised")
        for c in self.conffiles:
            if c not in self.files:
                raise IpkError(f"{self.name}: conffile {c} is not among the package's files")
        for s in self.scripts:
            if s not in SCRIPTS:
                raise IpkError(f"{self.name}: unknown maintainer script {s!r}")


# -- writing ---------------------------------------------------------------------------------
def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="", compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _tar(entries, mtime) -> bytes:
    """entries: [(name, bytes or None for a folder, mode)], already in the wanted order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = mtime, 0, 0, "", "", mode
            if data is None:
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            else:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _tree(files: dict, dirs, mtime) -> bytes:
    """A data tar rooted at ./ with every parent folder, sorted by name like ``tar
    --sort=name``."""
    folders = {"."}
    for p in list(files) + list(dirs):
        parts = PurePosixPath(p).parts[1:]
        for i in range(1, len(parts) + (1 if p in dirs else 0)):
            folders.add("./" + "/".join(parts[:i]))
    entries = [(d, None, 0o755) for d in folders]
    entries += [("." + p, data, mode) for p, (data, mode) in files.items()]
    entries.sort(key=lambda e: e[0].split("/"))
    return _tar(entries, mtime)


def control_text(pkg: Package, installed_size: int) -> str:
    title, _, long = pkg.description.strip().partition("\n")
    fields = {"Package": pkg.name, "Version": pkg.version,
              "Depends": ", ".join(pkg.depends), "Source": pkg.source,
              "SourceName": pkg.name, "License": pkg.license, "Section": pkg.section,
              "URL": pkg.url, "Architecture": pkg.arch, "Installed-Size": str(installed_size)}
    lines = [f"{k}: {v}" for k, v in fields.items() if v]
    desc = [f"Description: {title.strip()}"]
    desc += [" " + (ln.strip() or ".") for ln in long.strip().splitlines()] if long.strip() else []
    return "\n".join(lines + desc) + "\n"


def build(pkg: Package, mtime: int) -> tuple[bytes, str]:
    """(ipk bytes, control text)."""
    pkg.check()
    data_tar = _tree(pkg.files, pkg.dirs, mtime)
    control = control_text(pkg, len(data_tar))
    ctl = [("./control", control.encode(), 0o644)]
    if pkg.conffiles:
        ctl.append(("./conffiles", "".join(c + "\n" for c in sorted(pkg.conffiles)).encode(),
                    0o644))
    ctl += [(f"./{name}", text.encode(), 0o755) for name, text in pkg.scripts.items()]
    ctl.sort()
    control_tar = _tar([(".", None, 0o755)] + ctl, mtime)
    outer = _tar([("./debian-binary", b"2.0\n", 0o644),
                  ("./data.tar.gz", _gzip(data_tar), 0o644),
                  ("./control.tar.gz", _gzip(control_tar), 0o644)], mtime)
    return _gzip(outer), control


# -- reading ---------------------------------------------------------------------------------
def parse_control(text: str) -> dict:
    fields, key = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t":
            if key is None:
                raise IpkError(f"continuation line before any field: {line!r}")
            fields[key] += "\n" + line[1:]
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise IpkError(f"not a 'Field: value' line: {line!r}")
        fields[key] = value.strip()
    return fields


@dataclass
class Ipk:
    outer: list            # TarInfo of the outer archive, in order
    data: tarfile.TarFile
    control_tar: tarfile.TarFile
    data_tar_bytes: bytes  # uncompressed
    control: str
    fields: dict

    def control_file(self, name):
        try:
            m = self.control_tar.getmember("./" + name)
        except KeyError:
            return None
        return self.control_tar.extractfile(m).read().decode()

    def files(self):
        """Paths of regular files and links, as on the router ("/etc/config/unlite")."""
        return sorted("/" + m.name[2:] for m in self.data.getmembers()
                      if not m.isdir() and m.name.startswith("./"))


def read(blob: bytes) -> Ipk:
    outer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:")
    members = outer.getmembers()
    parts = {m.name: outer.extractfile(m).read() for m in members if m.isfile()}
    for need in ("./debian-binary", "./data.tar.gz", "./control.tar.gz"):
        if need not in parts:
            raise IpkError(f"no {need} in the ipk")
    data_raw = gzip.decompress(parts["./data.tar.gz"])
    data = tarfile.open(fileobj=io.BytesIO(data_raw), mode="r:")
    ctl = tarfile.open(fileobj=io.BytesIO(gzip.decompress(parts["./control.tar.gz"])), mode="r:")
    control = ctl.extractfile("./control").read().decode()
    return Ipk(members, data, ctl, data_raw, control, parse_control(control))


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


# -- installing like opkg (for tests and inspection; runs no script) --------------------------
def opkg_install(ipk_path, root):
    """Lay ``ipk_path`` out under ``root`` as ``opkg -o ROOT install`` does with
    ``--nodeps --force-postinstall`` off: the data files; every control file as
    ``usr/lib/opkg/info/PKG.NAME``; ``PKG.list`` (the files); a stanza in
    ``usr/lib/opkg/status`` with the conffiles and their md5. An existing conffile is kept
    and the packaged one lands beside it as ``FILE-opkg``, as on an upgrade."""
    root = Path(root)
    ipk = read(Path(ipk_path).read_bytes())
    name = ipk.fields["Package"]
    conffiles = (ipk.control_file("conffiles") or "").split()
    for m in ipk.data.getmembers():
        rel = PurePosixPath(m.name)
        if rel.is_absolute() or ".." in rel.parts:
            raise IpkError(f"{name}: member {m.name!r} escapes the root")
        dest = root / rel
        if m.isdir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        if not m.isfile():
            raise IpkError(f"{name}: {m.name}: only files and folders are expected")
        data = ipk.data.extractfile(m).read()
        path = "/" + str(rel)
        if path in conffiles and dest.exists():
            dest = dest.with_name(dest.name + "-opkg")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(m.mode)
    info = root / "usr/lib/opkg/info"
    info.mkdir(parents=True, exist_ok=True)
    for m in ipk.control_tar.getmembers():
        if m.isfile():
            f = info / f"{name}.{PurePosixPath(m.name).name}"
            f.write_bytes(ipk.control_tar.extractfile(m).read())
            f.chmod(m.mode)
    (info / f"{name}.list").write_text("".join(p + "\n" for p in ipk.files()))
    status = [f"Package: {name}", f"Version: {ipk.fields['Version']}"]
    if ipk.fields.get("Depends"):
        status.append(f"Depends: {ipk.fields['Depends']}")
    status += ["Status: install user installed", f"Architecture: {ipk.fields['Architecture']}"]
    if conffiles:
        status.append("Conffiles:")
        status += [f" {c} {hashlib.md5((root / c.lstrip('/')).read_bytes()).hexdigest()}"
                   for c in conffiles]
    with open(root / "usr/lib/opkg/status", "a") as f:
        f.write("\n".join(status) + "\n\n")
    return ipk
