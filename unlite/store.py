"""Where unlite keeps what it was asked for and what it made.

- desired graphs: ``<state-dir>/graphs/<id>.json`` — on a router under /etc/unlite (flash),
  written only on change, atomically (temp file, fsync, rename, fsync of the folder);
- runtime records: ``<run-dir>/graphs/<id>.json`` — on a router under /var/run (RAM): every
  kernel object of a graph, written *before* the object is made, so a crash leaves a record
  to clean from. Atomic (rename) but not fsync'ed: they must survive a crash of the daemon,
  which the page cache does; a power cut takes the kernel objects with them. They are
  compact JSON (a deploy writes its record three times, and json's C encoder only runs
  without ``indent``); the desired graphs are indented for the operator who reads them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomic(path: Path, data, durable=True, compact=False):
    text = json.dumps(data, sort_keys=True, **({"separators": (",", ":")} if compact
                                               else {"indent": 1}))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if not durable:
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Folder:
    """A folder of ``<id>.json`` documents."""

    def __init__(self, root, durable=True, compact=False):
        self.root, self.durable, self.compact = Path(root), durable, compact
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, key, data):
        write_atomic(self.root / f"{key}.json", data, self.durable, self.compact)

    def get(self, key):
        try:
            return json.loads((self.root / f"{key}.json").read_text())
        except FileNotFoundError:
            return None

    def delete(self, key):
        try:
            (self.root / f"{key}.json").unlink()
        except FileNotFoundError:
            pass

    def keys(self):
        return sorted(p.stem for p in self.root.glob("*.json"))


class Store:
    def __init__(self, state_dir, run_dir):
        self.desired = Folder(Path(state_dir) / "graphs")
        self.owners = Folder(Path(state_dir) / "owners")     # graph id → tenant
        self.runtime = Folder(Path(run_dir) / "graphs", durable=False, compact=True)
