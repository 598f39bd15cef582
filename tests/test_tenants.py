"""Tenants: tokens, own graphs only, allowed interfaces only — for API calls and packets."""
from __future__ import annotations

import os

import pytest

import netlab
from conftest import ALICE, BOB, TWO_TENANTS_UCI, bridge_graph

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

ROOT_T = "root-token-0123456789"
UCI = TWO_TENANTS_UCI + f"""
config tenant 'root'
	list token '{ROOT_T}'
	option admin '1'
"""


@pytest.fixture
def backend():
    """Tenancy lives above the steering backend: nft only."""
    return "nft"


@pytest.fixture
def tenanted(gateway, make_daemon, tmp_path):
    conf = tmp_path / "unlite.uci"
    conf.write_text(UCI)
    return make_daemon(extra=("--uci", str(conf)))


def _err(d, *args, **kw):
    with pytest.raises(netlab.ApiError) as e:
        d.api(*args, **kw)
    return e.value


def _counters(d, gid, token):
    st = d.api("GET", f"/NF-FG/status/{gid}", token=token)[1]
    return {r["id"]: r["packets"] for r in st["flow-rules"]}


def test_tokens_login_and_public_paths(tenanted):
    d = tenanted
    assert d.api("GET", "/healthz")[0] == 200                    # public
    e = _err(d, "GET", "/NF-FG/")
    assert e.status == 401 and "token" in e.body["error"]
    assert _err(d, "GET", "/NF-FG/", token="wrong-token-0000000000").status == 401
    assert _err(d, "POST", "/login", {"username": "alice", "password": BOB}).status == 401
    status, body = d.api("POST", "/login", {"username": "alice", "password": ALICE})
    session = body                          # the bare token, text/plain (as the UN's)
    assert status == 200 and session not in (ALICE, BOB)
    assert d.api("GET", "/NF-FG/", token=session)[1] == {"NF-FG": []}
    assert d.api("GET", "/capabilities", token=ALICE)[0] == 200   # the configured token too


def test_a_tenant_sees_and_steers_only_its_own(gateway, tenanted):
    gw, d = gateway, tenanted
    for i in (0, 2):
        gw.addr(i, "10.20.0.1/24")
        gw.addr(i + 1, "10.20.0.2/24")
    assert d.api("PUT", "/NF-FG/a", bridge_graph("a", ("eth0", "eth1")), token=ALICE)[0] == 201
    # bob: alice's graph does not exist for him, and her interfaces are not his
    assert d.api("GET", "/NF-FG/", token=BOB)[1] == {"NF-FG": []}
    for method, path in (("GET", "/NF-FG/a"), ("GET", "/NF-FG/status/a"),
                         ("DELETE", "/NF-FG/a"), ("POST", "/NF-FG/a/VNFs/nf1/stop")):
        assert _err(d, method, path, token=BOB).status == 404, (method, path)
    e = _err(d, "PUT", "/NF-FG/a", bridge_graph("a", ("eth2", "eth3")), token=BOB)
    assert e.status == 403 and "another tenant" in e.body["error"]
    e = _err(d, "PUT", "/NF-FG/b", bridge_graph("b", ("eth2", "eth1")), token=BOB)
    assert e.status == 403 and "eth1" in e.body["error"]
    assert e.body["path"] == "$.forwarding-graph.end-points[1].interface.if-name"
    host = bridge_graph("h", ("eth2", "eth3"))
    host["forwarding-graph"]["end-points"][1] = {
        "id": "ep1", "type": "host-stack",
        "host-stack": {"configuration": "static", "ipv4": "10.9.9.9/24"}}
    assert _err(d, "PUT", "/NF-FG/h", host, token=BOB).status == 403
    assert d.api("PUT", "/NF-FG/b", bridge_graph("b", ("eth2", "eth3")), token=BOB)[0] == 201
    # packets: alice's traffic never reaches bob's rules or NF (same addresses on both sides)
    before = _counters(d, "b", BOB)
    assert gw.ping(0, "10.20.0.2", count=5, interval="0.1")
    assert _counters(d, "b", BOB) == before
    assert gw.ping(2, "10.20.0.2")
    # the admin sees both; each tenant its own
    ids = lambda t: [g["forwarding-graph"]["id"] for g in d.api("GET", "/NF-FG/", token=t)[1]["NF-FG"]]  # noqa: E731
    assert ids(ROOT_T) == ["a", "b"] and ids(ALICE) == ["a"] and ids(BOB) == ["b"]
    assert d.api("DELETE", "/NF-FG/a", token=ALICE)[0] == 204
    assert d.api("DELETE", "/NF-FG/b", token=ROOT_T)[0] == 204


def test_tenants_internal_groups_are_their_own(gateway, tenanted):
    """alice and bob both name internal group 'x': two segments, no path between them."""
    gw, d = gateway, tenanted
    gw.addr(0, "10.20.0.1/24")
    gw.addr(3, "10.20.0.2/24")
    internal = {"id": "ep1", "type": "internal", "internal": {"internal-group": "x"}}
    a = bridge_graph("a", ("eth0", "eth1"))
    a["forwarding-graph"]["end-points"][1] = internal
    b = bridge_graph("b", ("eth2", "eth3"))
    b["forwarding-graph"]["end-points"][0] = dict(internal, id="ep0")
    d.api("PUT", "/NF-FG/a", a, token=ALICE)
    d.api("PUT", "/NF-FG/b", b, token=BOB)
    assert not gw.ping(0, "10.20.0.2", count=2), "alice reached bob through group 'x'"
    groups = [v for v in netlab.unlite_objects(gw.ns)["veths"] if v.startswith("ulg")]
    assert len(groups) == 2, groups
    d.api("DELETE", "/NF-FG/a", token=ALICE)
    d.api("DELETE", "/NF-FG/b", token=BOB)


def test_event_stream_shows_a_tenant_only_its_own_graphs(tenanted):
    d = tenanted
    with d.events(token=ALICE) as events:
        d.api("PUT", "/NF-FG/b", bridge_graph("b", ("eth2", "eth3")), token=BOB)
        d.api("PUT", "/NF-FG/a", bridge_graph("a", ("eth0", "eth1")), token=ALICE)
        d.api("DELETE", "/NF-FG/b", token=BOB)
        d.api("DELETE", "/NF-FG/a", token=ALICE)
    seen = [data for _, data in events]
    assert [(e["id"], e["event"]) for e in seen] == [("a", "deploying"), ("a", "created"),
                                                     ("a", "deleting"), ("a", "deleted")]
