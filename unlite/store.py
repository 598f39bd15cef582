"""Where unlite keeps what it was asked for and what it made.

- desired graphs: ``<state-dir>/graphs/<id>.json`` — on a router under /etc/unlite (flash),
  written only on change, atomically (temp file, fsync, rename, fsync of the folder);
- runtime records: ``<run-dir>/graphs/<id>.json`` — on a router under /var/run (RAM): every
  kernel object of a graph, written *before* the object is made, so a crash leaves a record
  to clean from. Atomic (rename) but not fsync'ed: they must survive a crash of the daemon,
  which the page cache does; a power cut takes the kernel objects with them. They are
  compact JSON (a deploy writes its record three times, and json's C encoder only runs
  without ``indent``); the desired graphs are indented for the operator who reads them.

Every file here is 0600 and every folder 0700 (``private_dir``, ``write_atomic``): a graph
holds its NFs' settings (``unify-env-variables``: an IPsec pre-shared key), which no other
user of the router may read. Folders an older version made are narrowed at start.

A file that cannot be read back (truncated, empty, not JSON, not UTF-8, not an object) raises
``CorruptFile``; ``Folder.set_aside`` renames it to ``<id>.json.bad`` (kept for the operator,
no longer listed) so the rest of the node can boot. A write that fails (a full disk) raises
``StoreError`` (HTTP 507) naming the folder, and leaves no temp file behind.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from .errors import UnliteError


class StoreError(UnliteError, OSError):
    """A document could not be written: the folder and the reason, for a 507."""
    status = 507

    def __init__(self, path, err):
        what = err.strerror or str(err)
        hint = " (the disk is full)" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        super().__init__(f"cannot write {path.name} in {path.parent}: {what}{hint}")
        self.errno, self.strerror = err.errno, self.message


class CorruptFile(ValueError):
    def __init__(self, path, why):
        super().__init__(f"{path}: {why}")
        self.file, self.why = path, why


def _fsync_dir(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path):
    """Make folder ``path`` (and its missing parents) 0700, and narrow it to 0700 if it was
    made wider (by an older version, or an operator's mkdir)."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)


def write_private(path, text):
    """Write ``text`` to ``path`` as a 0600 file (a file of a wider mode is narrowed first,
    before the new text is in it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)
        f.write(text)


def write_atomic(path: Path, data, durable=True, compact=False):
    text = json.dumps(data, sort_keys=True, **({"separators": (",", ":")} if compact
                                               else {"indent": 1}))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        private_dir(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(fd, 0o600)            # a temp file a crash left, of a wider mode
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StoreError(path, e) from None


class Folder:
    """A folder of ``<id>.json`` documents."""

    def __init__(self, root, durable=True, compact=False):
        self.root, self.durable, self.compact = Path(root), durable, compact
        private_dir(self.root.parent)
        private_dir(self.root)
        for f in self.root.iterdir():           # an older version's 0644 files
            if f.is_file() and not f.is_symlink() and f.stat().st_mode & 0o077:
                os.chmod(f, 0o600)

    def put(self, key, data):
        write_atomic(self.root / f"{key}.json", data, self.durable, self.compact)

    def get(self, key):
        """The document, None when there is none; CorruptFile when it cannot be read."""
        path = self.root / f"{key}.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise CorruptFile(path, "not UTF-8 text") from None
        except ValueError as e:
            raise CorruptFile(path, "empty" if not raw.strip() else f"not JSON ({e})") from None
        if not isinstance(doc, dict):
            raise CorruptFile(path, f"a JSON {type(doc).__name__}, not an object")
        return doc

    def set_aside(self, key):
        """Rename a document that cannot be used to ``<id>.json.bad``; return that path."""
        path = self.root / f"{key}.json"
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        if self.durable:
            _fsync_dir(self.root)
        return bad

    def delete(self, key):
        try:
            (self.root / f"{key}.json").unlink()
        except FileNotFoundError:
            return
        if self.durable:               # a power cut right after must not bring it back
            _fsync_dir(self.root)

    def keys(self):
        return sorted(p.stem for p in self.root.glob("*.json"))


class Owners:
    """Graph id → the tenant that owns it, in memory, and on flash beside the graph
    (``<state-dir>/owners/<id>.json``: ``{"tenant": NAME}``, written by the change that stores
    the graph). The folder is read once, here; every later question is a dict lookup (a
    tenant's every request asks). Root's graphs have no record. ``legacy`` is a name older
    versions wrote for root: read as no owner. Records that cannot be read are left in
    ``unreadable`` (id → CorruptFile) for the restart to set aside; meanwhile they are
    nobody's (``UNREADABLE``: only root and the admin see such a graph)."""
    UNREADABLE = "(unreadable owner record)"

    def __init__(self, folder, legacy=None):
        self.folder = folder
        self._by_gid: dict[str, str | None] = {}
        self.unreadable: dict[str, CorruptFile] = {}
        for gid in folder.keys():
            try:
                rec = folder.get(gid)
            except CorruptFile as e:
                self.unreadable[gid] = e
                self._by_gid[gid] = self.UNREADABLE
                continue
            name = rec.get("tenant")
            if name is not None and not isinstance(name, str):
                self.unreadable[gid] = CorruptFile(folder.root / f"{gid}.json",
                                                   "its tenant is not a name")
                self._by_gid[gid] = self.UNREADABLE
            else:                       # None: an old record of root's graph (no owner)
                self._by_gid[gid] = None if name == legacy else name

    def get(self, gid):
        return self._by_gid.get(gid)

    def keys(self):
        """The ids with a record (those of root's graphs an older version wrote too)."""
        return sorted(self._by_gid)

    def set(self, gid, name):
        """On flash first (StoreError on a full disk: the memory is unchanged)."""
        self.folder.put(gid, {"tenant": name})
        self._by_gid[gid] = name

    def delete(self, gid):
        self.folder.delete(gid)
        self._by_gid.pop(gid, None)
        self.unreadable.pop(gid, None)

    def set_aside(self, gid):
        """An unreadable record renamed ``<id>.json.bad``: the graph is root's from now on."""
        bad = self.folder.set_aside(gid)
        self.unreadable.pop(gid, None)
        self._by_gid.pop(gid, None)
        return bad


class Store:
    def __init__(self, state_dir, run_dir, legacy_owner=None):
        self.desired = Folder(Path(state_dir) / "graphs")
        self.owners = Owners(Folder(Path(state_dir) / "owners"), legacy_owner)
        self.runtime = Folder(Path(run_dir) / "graphs", durable=False, compact=True)
