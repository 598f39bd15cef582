"""Crashes and errors at every step of deploy, update and delete (UNLITE_FAULT, test-only):
after a restart every graph is the old or the new version — never a mix — and nothing is
left behind; after an error the old version keeps running, untouched."""
from __future__ import annotations

import os

import pytest

import netlab
from conftest import bridge_graph

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

V1 = bridge_graph("g1")
V2 = bridge_graph("g1", env={"VERSION": "2"})     # another spec: a new NF instance


@pytest.fixture
def backend():
    """Crash consistency lives in the node, above the steering backend: nft only."""
    return "nft"


def _version(d):
    """None (no graph), 1 or 2 — after checking the graph is whole."""
    try:
        doc = d.api("GET", "/NF-FG/g1")[1]
    except netlab.ApiError as e:
        assert e.status == 404
        return None
    st = d.api("GET", "/NF-FG/status/g1")[1]
    assert st["status"] == "complete" and [v["state"] for v in st["VNFs"]] == ["Active"], st
    env = doc["forwarding-graph"]["VNFs"][0].get("unify-env-variables")
    return 2 if env else 1


def _whole(gw, version):
    o = netlab.unlite_objects(gw.ns, graphs_only=True)
    if version is None:
        assert o == netlab.EMPTY, o
        assert not gw.ping(0, "10.20.0.2", count=1)
    else:
        assert (len(o["netns"]), len(o["veths"]), len(o["nft-tables"])) == (1, 2, 1), o
        assert gw.ping(0, "10.20.0.2")


def _daemon(make_daemon, fault):
    return make_daemon(env=dict(os.environ, UNLITE_FAULT=fault))


def _crash(d, *call):
    d.killed = True
    with pytest.raises(OSError):                # the connection dies with the daemon
        d.api(*call, timeout=10)
    d.proc.wait(timeout=10)
    assert d.proc.returncode == -9


CASES = [  # (operation, fault point, version after a crash there and a restart)
    ("deploy", "deploy:recorded", None), ("deploy", "deploy:started", None),
    ("deploy", "deploy:steered", None), ("deploy", "deploy:stored", 1),
    ("update", "deploy:recorded@2", 1), ("update", "deploy:started@2", 1),
    ("update", "deploy:steered@2", 1), ("update", "deploy:stored@2", 2),
    ("delete", "delete:unsteered", 1), ("delete", "delete:freed", 1),
    ("delete", "delete:forgotten", 1),
]


@pytest.mark.parametrize("op, where, after", CASES, ids=[c[1] for c in CASES])
def test_kill_9_at_each_step_then_restart(gateway, make_daemon, op, where, after):
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    d = _daemon(make_daemon, f"{where}=kill")
    if op == "deploy":
        _crash(d, "PUT", "/NF-FG/g1", V1)
    else:
        d.api("PUT", "/NF-FG/g1", V1)
        if op == "update":
            _crash(d, "PUT", "/NF-FG/g1", V2)
        else:
            _crash(d, "DELETE", "/NF-FG/g1")
    again = d.restarted(env=None)                 # the same node, without the fault
    try:
        assert _version(again) == after
        _whole(gw, after)
    finally:
        again.stop()
    assert again.proc.returncode == 0
    assert netlab.unlite_objects(gw.ns) == netlab.EMPTY


@pytest.mark.parametrize("where", ["deploy:recorded", "deploy:started", "deploy:steered"])
@pytest.mark.parametrize("op", ["deploy", "update"])
def test_an_error_at_each_step_keeps_the_old_version(gateway, make_daemon, op, where):
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    d = _daemon(make_daemon, f"{where}{'@2' if op == 'update' else ''}=fail")
    if op == "update":
        d.api("PUT", "/NF-FG/g1", V1)
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/g1", V2 if op == "update" else V1)
    assert e.value.status == 500 and "fault injected" in e.value.body["error"]
    before = None if op == "deploy" else 1
    assert _version(d) == before
    _whole(gw, before)
    assert d.api("PUT", "/NF-FG/g1", V2)[0] in (200, 201), "the node still works"
    assert _version(d) == 2
    _whole(gw, 2)
