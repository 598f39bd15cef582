"""The owner records (unlite/store.py ``Owners``): read from flash once, answered from memory,
written on flash first. No root: plain files in a temporary folder."""
from __future__ import annotations

import json
import shutil

import pytest

from unlite.store import Folder, Owners, StoreError


def owners_with(tmp_path, files):
    folder = tmp_path / "owners"
    folder.mkdir(mode=0o700)
    for gid, data in files.items():
        (folder / f"{gid}.json").write_bytes(data if isinstance(data, bytes)
                                             else json.dumps(data).encode())
    return Owners(Folder(folder), legacy="admin")


def test_records_are_read_once_and_answered_from_memory(tmp_path):
    o = owners_with(tmp_path, {"a": {"tenant": "alice"}, "old": {"tenant": "admin"},
                               "none": {}, "torn": b'{"tena', "num": {"tenant": 5}})
    assert o.get("a") == "alice"
    assert o.get("old") is None and o.get("none") is None      # root's, as older versions wrote
    assert o.get("missing") is None
    # unreadable: nobody's until the restart sets it aside (no tenant matches this name)
    assert o.get("torn") == o.get("num") == Owners.UNREADABLE
    assert sorted(o.unreadable) == ["num", "torn"]
    assert "its tenant is not a name" in str(o.unreadable["num"])
    assert o.keys() == ["a", "none", "num", "old", "torn"]
    (tmp_path / "owners" / "a.json").write_text(json.dumps({"tenant": "mallory"}))
    assert o.get("a") == "alice", "a question read the file again"
    bad = o.set_aside("torn")
    assert bad.name == "torn.json.bad" and bad.exists() and o.get("torn") is None
    assert "torn" not in o.unreadable and "torn" not in o.keys()


def test_a_record_is_on_flash_before_it_is_in_memory(tmp_path):
    o = owners_with(tmp_path, {})
    o.set("g", "bob")
    assert json.loads((tmp_path / "owners/g.json").read_text()) == {"tenant": "bob"}
    assert Owners(Folder(tmp_path / "owners")).get("g") == "bob"     # what a restart reads
    o.delete("g")
    assert not (tmp_path / "owners/g.json").exists() and o.get("g") is None
    shutil.rmtree(tmp_path / "owners")       # a write that fails: memory stays as it was
    (tmp_path / "owners").write_text("a file where the folder was")
    with pytest.raises(StoreError, match="cannot write h.json"):
        o.set("h", "bob")
    assert o.get("h") is None and o.keys() == []
