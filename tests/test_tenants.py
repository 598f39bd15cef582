"""Tenants: tokens, own graphs only, allowed interfaces only — for API calls and packets."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import netlab
from conftest import ALICE, BOB, TWO_TENANTS_UCI, bridge_graph
from unlite.ubus import rpcd

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


@pytest.fixture
def with_socket(gateway, make_daemon, tmp_path):
    """The tenanted daemon with its unix socket (root's way in: rpcd, LuCI); ``root(method,
    path, body)`` calls it there."""
    conf = tmp_path / "unlite.uci"
    conf.write_text(UCI)
    work = Path(tempfile.mkdtemp(prefix="ult-", dir="/tmp"))     # a short socket path
    d = make_daemon(extra=("--uci", str(conf), "--socket", str(work / "u.sock")))
    d.root = lambda method, path, body=None: rpcd.http(
        str(work / "u.sock"), method, path, json.dumps(body).encode() if body else b"")
    yield d
    shutil.rmtree(work, ignore_errors=True)


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
    assert e.status == 403 and "cannot be used" in e.body["error"]
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
    ids = lambda t: [g["forwarding-graph"]["id"]  # noqa: E731
                     for g in d.api("GET", "/NF-FG/", token=t)[1]["NF-FG"]]
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


def test_root_is_an_identity_that_no_tenant_name_stands_for(gateway, with_socket):
    """Root's graphs (unix socket) are nobody's: no owner record naming it, so no tenant
    lists, reads or deletes them or joins their internal groups, and an older version's
    owner record 'admin' is root's (issue 15)."""
    gw, d = gateway, with_socket
    gw.addr(0, "10.21.0.1/24")
    gw.addr(2, "10.21.0.2/24")
    internal = {"id": "ep1", "type": "internal", "internal": {"internal-group": "x"}}
    r = bridge_graph("r", ("eth2", "eth3"))
    r["forwarding-graph"]["end-points"][1] = internal
    assert d.root("PUT", "/NF-FG/r", r)[0] == 201
    owners = d.workdir / "state" / "owners"
    assert not (owners / "r.json").exists(), "root's graph has an owner name"
    a = bridge_graph("a", ("eth0", "eth1"))
    a["forwarding-graph"]["end-points"][1] = internal
    assert d.api("PUT", "/NF-FG/a", a, token=ALICE)[0] == 201
    assert not gw.ping(0, "10.21.0.2", count=2), "alice reached root's group 'x'"
    ids = lambda t: [g["id"] for g in d.api("GET", "/graphs", token=t)[1]["graphs"]]  # noqa: E731
    assert ids(ALICE) == ["a"] and ids(BOB) == []
    for tok in (ALICE, BOB):
        assert _err(d, "GET", "/NF-FG/r", token=tok).status == 404
        assert _err(d, "DELETE", "/NF-FG/r", token=tok).status == 404
    assert [g["id"] for g in d.root("GET", "/graphs")[1]["graphs"]] == ["a", "r"]
    # an owner record of an older version: 'admin' was root's name; still root's after a
    # restart (the records are read at start, then answered from memory)
    (owners / "r.json").write_text(json.dumps({"tenant": "admin"}))
    root = d.root
    d.stop()
    d = d.restarted()
    d.root = root
    assert ids(ALICE) == ["a"]
    assert [g["id"] for g in d.root("GET", "/graphs")[1]["graphs"]] == ["a", "r"]
    assert d.root("DELETE", "/NF-FG/r")[0] == 204
    assert not (owners / "r.json").exists(), "root's delete left the old owner record"
    d.api("DELETE", "/NF-FG/a", token=ALICE)


def test_a_tenant_named_admin_does_not_start(gateway, tmp_path):
    conf = tmp_path / "unlite.uci"
    conf.write_text(UCI + "\nconfig tenant 'admin'\n\tlist token 'admin-token-0123456789'\n"
                          "\toption admin '0'\n")
    d = netlab.Daemon(gateway.ns, tmp_path / "d", extra=("--uci", str(conf)))
    with pytest.raises(RuntimeError, match="'admin' is reserved"):
        d.start()
    d.stop()


def test_errors_are_no_oracle_of_another_tenant_s_graphs(gateway, tenanted):
    """Another tenant's graph is answered as a graph that does not exist, and a conflict
    with it names nothing of it: no id, no owner (issue 15)."""
    d = tenanted
    assert d.api("PUT", "/NF-FG/alices", bridge_graph("alices", ("eth0", "eth1")),
                 token=ALICE)[0] == 201
    assert d.api("GET", "/capabilities", token=BOB)[1]["resources"]["graphs"] == 0
    assert d.api("GET", "/capabilities", token=ALICE)[1]["resources"]["graphs"] == 1
    assert "graphs" not in d.api("GET", "/healthz")[1]           # public: no count
    for method, path in (("GET", "/NF-FG/{}"), ("GET", "/NF-FG/status/{}"),
                         ("DELETE", "/NF-FG/{}"), ("POST", "/NF-FG/{}/VNFs/nf1/stop"),
                         ("POST", "/NF-FG/{}/VNFs/nf1/start")):
        hers, none = (_err(d, method, path.format(g), token=BOB) for g in ("alices", "nosuch"))
        assert (hers.status, json.dumps(hers.body).replace("alices", "nosuch")) == \
            (none.status, json.dumps(none.body)), (method, path)
    e = _err(d, "PUT", "/NF-FG/alices", bridge_graph("alices", ("eth2", "eth3")), token=BOB)
    assert e.status == 403 and not {"alice", "tenant"} & set(e.body["error"].split()), e.body
    # root's graph (an admin tenant's) on an interface alice may use: 409 naming nothing
    assert d.api("PUT", "/NF-FG/secret-r", bridge_graph("secret-r", ("eth2", "eth3")),
                 token=ROOT_T)[0] == 201
    e = _err(d, "PUT", "/NF-FG/b2", bridge_graph("b2", ("eth2", "eth3")), token=BOB)
    assert e.status == 409 and "secret-r" not in json.dumps(e.body), e.body
    assert "another graph" in e.body["error"]
    assert e.body["path"] == "$.forwarding-graph.end-points[0].interface.if-name"
    e = _err(d, "PUT", "/NF-FG/r2", bridge_graph("r2", ("eth2", "eth3")), token=ROOT_T)
    assert "secret-r" in e.body["error"]                  # root sees whose it is
    for gid, tok in (("alices", ALICE), ("secret-r", ROOT_T)):
        d.api("DELETE", f"/NF-FG/{gid}", token=tok)


def test_a_single_instance_nf_names_only_the_caller_s_graphs(tenanted):
    d = tenanted
    d.api("PUT", "/NF-FG/alices", bridge_graph("alices", ("eth0", "eth1"), nf="shared-bridge"),
          token=ALICE)
    d.api("PUT", "/NF-FG/b", bridge_graph("b", ("eth2", "eth3"), nf="shared-bridge"), token=BOB)
    shared = lambda gid, t: d.api("GET", f"/NF-FG/status/{gid}", token=t)[1]["VNFs"][0]  # noqa: E731
    assert shared("b", BOB)["shared-by"] == ["b"]
    assert sorted(shared("b", ROOT_T)["shared-by"]) == ["alices", "b"]
    e = _err(d, "POST", "/NF-FG/b/VNFs/nf1/stop", token=BOB)
    assert e.status == 409 and "alices" not in e.body["error"], e.body
    d.api("DELETE", "/NF-FG/b", token=BOB)
    d.api("DELETE", "/NF-FG/alices", token=ALICE)


def _login(d, user, password, **kw):
    return d.api("POST", "/login", {"username": user, "password": password}, **kw)[1]


def test_logins_end_only_the_tenant_s_own_oldest_sessions(tenanted):
    """1,100 logins by alice: bob's session lives on; alice keeps her 32 newest (issue 15)."""
    d = tenanted
    bobs = _login(d, "bob", BOB)
    alices = [_login(d, "alice", ALICE) for _ in range(1100)]
    assert d.api("GET", "/NF-FG/", token=bobs)[0] == 200
    for tok in alices[-32:]:
        assert d.api("GET", "/NF-FG/", token=tok)[0] == 200
    for tok in (alices[0], alices[-33]):
        assert _err(d, "GET", "/NF-FG/", token=tok).status == 401


def test_failed_logins_lock_out_only_that_name_or_that_address(gateway, make_daemon, tmp_path):
    conf = tmp_path / "unlite.uci"
    conf.write_text(UCI)
    d = make_daemon(extra=("--uci", str(conf), "--listen", "0.0.0.0:8080"))
    login = lambda user, pw: _err(d, "POST", "/login", {"username": user, "password": pw})  # noqa: E731
    for _ in range(5):
        assert login("alice", "a-wrong-guess-00000").status == 401
    e = login("alice", ALICE)                        # locked: not even the right one is tried
    assert e.status == 429 and "try again" in e.body["error"]
    assert 1 <= int(e.headers["Retry-After"]) <= 300
    assert _login(d, "bob", BOB)                     # another name, the same address
    assert d.api("GET", "/NF-FG/", token=ALICE)[0] == 200    # her configured token works
    time.sleep(int(e.headers["Retry-After"]))
    assert _login(d, "alice", ALICE)                 # once waited, and the failures forgotten
    # one address trying many names: after 10 failures (alice's 5 count) that address
    # waits, another does not
    for user in ("bob",) * 4 + ("nobody",):
        assert login(user, "a-wrong-guess-00000").status == 401
    assert login("bob", BOB).status == 429
    netlab.sh("ip", "-n", gateway.ns, "addr", "add", "10.22.0.1/24", "dev", "eth0")
    gateway.addr(0, "10.22.0.2/24")
    p = gateway.lab.run(gateway.hosts[0], "curl", "-s", "-m", "5", "-o", "/dev/null", "-w",
                        "%{http_code}", "-d", json.dumps({"username": "bob", "password": BOB}),
                        "http://10.22.0.1:8080/login")
    assert p.stdout == "200", (p.stdout, p.stderr)


def test_unify_control_opens_only_the_addresses_and_ports_a_tenant_is_granted(
        gateway, nnf_repo, make_daemon, tmp_path):
    """alice may take 10080 on the LAN address only: the WAN host cannot reach her NF, a
    port not granted is a 403 at its path; bob's grant on the same port is a 409 naming
    nothing of alice's; an admin's forward opens on every node address (issue 15)."""
    gw = gateway
    conf = tmp_path / "unlite.uci"
    conf.write_text(UCI.replace(f"list token '{ALICE}'", f"list token '{ALICE}'\n"
                                "\tlist control '10.99.0.1:10080'")
                       .replace(f"list token '{BOB}'", f"list token '{BOB}'\n"
                                "\tlist control '10.98.0.1:10080-10089'"))
    repo = nnf_repo("managed", {"start": 'echo "NF $2 of graph $1" > "$UNLITE_RUN_DIR/who"\n'
                                         'python3 -m http.server 8000 --directory '
                                         '"$UNLITE_RUN_DIR" >/dev/null 2>&1 &'})
    d = make_daemon(nnf_dir=repo, extra=("--uci", str(conf)))
    for i, net in ((2, "10.99.0"), (3, "10.98.0")):          # h3: LAN, h4: WAN of the node
        netlab.sh("ip", "-n", gw.ns, "addr", "add", f"{net}.1/24", "dev", f"eth{i}")
        gw.addr(i, f"{net}.2/24")
        netlab.sh("ip", "netns", "exec", gw.ns, "sysctl", "-qw",
                  f"net.ipv4.conf.eth{i}.forwarding=1")

    def managed(gid, eps, port):
        g = bridge_graph(gid, eps, nf="managed")
        g["forwarding-graph"]["VNFs"][0]["unify-control"] = [
            {"host-tcp-port": port, "vnf-tcp-port": 8000}]
        return g

    def fetch(ns, url, tries=50):
        for _ in range(tries):                   # the NF's server is starting
            p = gw.lab.run(ns, "curl", "-s", "-m", "1", url)
            if p.returncode == 0:
                return p.stdout.strip()
            time.sleep(0.1)
        return None

    assert d.api("PUT", "/NF-FG/a", managed("a", ("eth0", "eth1"), 10080), token=ALICE)[0] == 201
    assert fetch(gw.hosts[2], "http://10.99.0.1:10080/who") == "NF nf1 of graph a"
    assert fetch(gw.hosts[3], "http://10.98.0.1:10080/who", tries=2) is None, \
        "the WAN host reached alice's NF"
    assert fetch(gw.ns, "http://127.0.0.1:10080/who", tries=2) is None
    e = _err(d, "PUT", "/NF-FG/a2", managed("a2", ("eth0", "eth1"), 10081), token=ALICE)
    assert e.status == 403 and "list control" in e.body["error"], e.body
    assert e.body["path"] == "$.forwarding-graph.VNFs[0].unify-control[0].host-tcp-port"
    e = _err(d, "PUT", "/NF-FG/b", managed("b", ("eth2", "eth3"), 10080), token=BOB)
    assert e.status == 409 and "another graph" in e.body["error"], e.body
    assert '"a"' not in json.dumps(e.body) and "'a'" not in e.body["error"]
    d.api("DELETE", "/NF-FG/a", token=ALICE)
    assert d.api("PUT", "/NF-FG/r", managed("r", ("eth0", "eth1"), 10090), token=ROOT_T)[0] == 201
    assert fetch(gw.hosts[3], "http://10.98.0.1:10090/who") == "NF nf1 of graph r"
    d.api("DELETE", "/NF-FG/r", token=ROOT_T)
