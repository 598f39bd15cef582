"""Bad state files never stop the box, and a full disk is an error that names the folder and
changes nothing (unlite/store.py, Node.restore)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

import netlab
from conftest import bridge_graph

NFT = pytest.mark.parametrize("backend", ["nft"])        # storage, not steering

BAD = {"truncated": b'{"forwarding-graph": {"id": "tr', "empty": b"",
       "garbage": b"\x00\x01garbage", "latin1": b'{"forwarding-graph": {"name": "caf\xe9"}}',
       "alist": b"[1, 2]"}


@NFT
def test_unreadable_graphs_and_records_are_set_aside_and_the_rest_boots(backend, gateway,
                                                                        daemon):
    d = daemon
    assert d.api("PUT", "/NF-FG/good", bridge_graph("good"))[0] == 201
    d.stop()
    graphs, records = d.workdir / "state/graphs", d.workdir / "run/graphs"
    for name, data in BAD.items():
        (graphs / f"{name}.json").write_bytes(data)
    (records / "oldschema.json").write_text(json.dumps({"instances": [{"what": "v0"}]}))
    (records / "broken.json").write_bytes(b"{")
    d2 = d.restarted()
    gateway.addr(0, "10.83.0.1/24")
    gateway.addr(1, "10.83.0.2/24")
    assert gateway.ping(0, "10.83.0.2"), "the readable graph did not come back"
    listed = {g["id"]: g for g in d2.api("GET", "/graphs")[1]["graphs"]}
    assert listed["good"]["status"] == "complete"
    for name in BAD:
        g = listed[name]
        assert g["status"] == "failed" and "set aside as" in g["faults"][0]["fault"], g
        assert not (graphs / f"{name}.json").exists() and (graphs / f"{name}.json.bad").exists()
    assert "not UTF-8" in listed["latin1"]["faults"][0]["fault"]
    assert "empty" in listed["empty"]["faults"][0]["fault"]
    aside = d2.api("GET", "/capabilities")[1]["set-aside"]
    assert sorted(aside) == sorted([str(graphs / f"{n}.json.bad") for n in BAD]
                                   + [str(records / f"{n}.json.bad")
                                      for n in ("oldschema", "broken")])
    assert d2.api("DELETE", "/NF-FG/garbage")[0] == 204      # a failed graph can go
    assert "garbage" not in {g["id"] for g in d2.api("GET", "/graphs")[1]["graphs"]}
    d2.api("DELETE", "/NF-FG/good")
    d2.stop()


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs for the state folder (unmounted after the test)."""
    mnt = tmp_path / "d0" / "state"
    mnt.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "ul-test-full", str(mnt)],
                   check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@NFT
def test_a_full_disk_is_a_507_naming_the_folder_and_changes_nothing(backend, gateway,
                                                                    make_daemon, small_disk):
    d = make_daemon()
    assert d.workdir / "state" == small_disk
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill it: the next write cannot land
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/g", bridge_graph("g"))
    assert e.value.status == 507, e.value.body
    assert str(small_disk) in e.value.body["error"] and "disk is full" in e.value.body["error"]
    assert d.api("GET", "/NF-FG/")[1] == {"NF-FG": []}
    left = sorted(p.name for p in small_disk.rglob("*") if p.is_file())
    assert left == ["filler"], f"temp files left behind: {left}"
    assert netlab.unlite_objects(gateway.ns, graphs_only=True) == netlab.EMPTY
    filler.unlink()                                  # room again: it deploys
    assert d.api("PUT", "/NF-FG/g", bridge_graph("g"))[0] == 201
    d.api("DELETE", "/NF-FG/g")


def _wide(root, skip=("pkg",)):
    """Files under ``root`` that are not 0600 and folders that are not 0700 (the package
    cache is skipped: packages hold no settings)."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in skip]
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            mode = os.lstat(p).st_mode & 0o777
            if mode & 0o077:
                out.append(f"{p} {mode:o}")
    return sorted(out)


@NFT
def test_state_files_are_root_s_only(backend, gateway, daemon):
    """Graphs and records hold NF settings such as a pre-shared key: 0600, in 0700 folders;
    an older version's wider files and folders are narrowed at start (issue 15)."""
    d = daemon
    psk = "PSK-that-no-other-user-reads"
    assert d.api("PUT", "/NF-FG/g", bridge_graph("g", env={"PSK": psk}))[0] == 201
    for top in ("state", "run"):
        assert _wide(d.workdir / top) == [], top
    assert (d.workdir / "state").stat().st_mode & 0o777 == 0o700
    d.stop()
    stored = d.workdir / "state/graphs/g.json"
    assert psk in stored.read_text()
    os.chmod(stored, 0o644)
    os.chmod(stored.parent, 0o755)
    os.chmod(d.workdir / "state", 0o755)
    d2 = d.restarted()
    assert _wide(d.workdir / "state") == []
    d2.api("DELETE", "/NF-FG/g")
    d2.stop()
