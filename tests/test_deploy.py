"""End to end: graphs through the REST API → NNFs in namespaces → steering (nft, tc, ovs) →
real packets. Every test runs on every backend (the ``backend`` fixture in conftest)."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

import netlab
from conftest import bridge_graph, un_example

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, nft)")

LAN, WAN = "10.20.0.1/24", "10.20.0.2/24"


EMPTY = netlab.EMPTY


def objects(gw):
    """What the graphs of a running daemon hold (node-wide objects left out)."""
    return netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True)


def counters(d, gid):
    return {r["id"]: r["packets"] for r in d.api("GET", f"/NF-FG/status/{gid}")[1]["flow-rules"]}


def tcp_ok(gw, host, dest, port, timeout=2):
    p = gw.lab.run(gw.hosts[host], "nc", "-z", "-w", str(timeout), dest, str(port))
    return p.returncode == 0


def test_un_passthrough_example_carries_traffic_and_delete_frees_everything(gateway, daemon):
    gw, d = gateway, daemon
    gw.addr(0, LAN)
    gw.addr(1, WAN)
    assert not gw.ping(0, "10.20.0.2", count=1)          # nothing steers yet: default drop
    graph = un_example("orchestrator-config-passthrough_with_vnf_nffg.json")
    status, body = d.api("PUT", "/NF-FG/passthrough", graph)
    assert status == 201 and body["nffg-uuid"] == "passthrough"
    assert gw.ping(0, "10.20.0.2")
    st = d.api("GET", "/NF-FG/status/passthrough")[1]
    assert [v["state"] for v in st["VNFs"]] == ["Active"]
    assert st["VNFs"][0]["implementation"].startswith("bridge")
    assert all(r["packets"] > 0 for r in st["flow-rules"]), st["flow-rules"]
    o = objects(gw)
    assert len(o["netns"]) == 1 and len(o["veths"]) == 2
    steering = {"nft": ("nft-tables", 1), "tc": ("tc-qdiscs", 4), "ovs": ("ovs-ports", 4)}
    key, n = steering[gw.backend]                  # a table; a clsact per port; OVS ports
    assert len(o[key]) == n, o
    assert d.api("GET", "/NF-FG/passthrough")[1]["forwarding-graph"]["id"] == "passthrough"
    assert d.api("DELETE", "/NF-FG/passthrough")[0] == 204
    assert objects(gw) == EMPTY
    assert not gw.ping(0, "10.20.0.2", count=1)
    with pytest.raises(netlab.ApiError) as e:
        d.api("GET", "/NF-FG/passthrough")
    assert e.value.status == 404


def test_every_un_example_is_accepted_unchanged(gateway, nnf_repo, make_daemon):
    """The UN's own graphs deploy when the repository holds NNFs by their names."""
    repo = nnf_repo("OF-controller", {"start": "exit 0"})
    nnf_repo("vnft5", {"start": "exit 0"})
    nnf_repo("nDHCP", {"start": "exit 0"})
    d = make_daemon(nnf_dir=repo)
    for ifname in ("eth2", "eth0.2", "eth0.3"):   # names the examples use
        if ifname != "eth2":
            netlab.sh("ip", "-n", gateway.ns, "link", "add", ifname, "type", "veth", "peer",
                      "name", f"x{ifname[-1]}")
    for f in sorted((netlab.ROOT / "tests/data/un-examples").glob("*.json")):
        status, body = d.api("PUT", "/NF-FG/ex", f.read_bytes())
        assert status == 201, (f.name, body)
        assert d.api("GET", "/NF-FG/status/ex")[1]["status"] == "complete"
        d.api("DELETE", "/NF-FG/ex")
        assert objects(gateway) == EMPTY, f.name


def test_firewall_nat_chain_real_traffic(gateway, daemon):
    gw, d = gateway, daemon
    gw.addr(0, "192.168.77.2/24", via="192.168.77.1")
    gw.addr(1, "198.51.100.2/24")
    graph = json.loads((netlab.ROOT / "tools" / "demo-graph.json").read_text())
    assert d.api("PUT", "/NF-FG/home", graph)[0] == 201
    server = gw.lab.spawn(gw.hosts[1], "python3", "-c", SERVER)
    gw.lab.spawn(gw.hosts[1], "python3", "-c", SERVER.replace("8080", "23"))
    assert gw.ping(0, "198.51.100.2")
    out = ""
    for _ in range(30):
        out = gw.lab.run(gw.hosts[0], "curl", "-s", "-m", "2", "http://198.51.100.2:8080/").stdout
        if out:
            break
        time.sleep(0.1)
    assert out.strip() == "198.51.100.1", "HTTP answered from the NAT's WAN address"
    assert not tcp_ok(gw, 0, "198.51.100.2", 23, timeout=1), "the firewall blocks port 23"
    assert server.poll() is None
    st = d.api("GET", "/NF-FG/status/home")[1]
    assert {v["id"]: v["state"] for v in st["VNFs"]} == {"fw": "Active", "nat": "Active"}
    assert all(r["packets"] > 0 for r in st["flow-rules"])


SERVER = """
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = self.client_address[0].encode() + b"\\n"
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def test_default_drop_only_steered_traffic_passes(gateway, daemon):
    gw, d = gateway, daemon
    gw.addr(0, LAN)
    gw.addr(1, WAN)
    rules = []
    for i, (a, b) in enumerate([("endpoint:ep0", "vnf:nf1:inout:0"),
                                ("vnf:nf1:inout:0", "endpoint:ep0"),
                                ("vnf:nf1:inout:1", "endpoint:ep1"),
                                ("endpoint:ep1", "vnf:nf1:inout:1")]):
        for kind, match in (("arp", {"ether_type": "0x0806"}),
                            ("icmp", {"ether_type": "0x800", "protocol": "0x01"})):
            rules.append({"id": f"{kind}{i}", "priority": 100,
                          "match": {"port_in": a, **match}, "actions": [{"output_to_port": b}]})
    d.api("PUT", "/NF-FG/g1", bridge_graph(rules=rules))
    gw.lab.spawn(gw.hosts[1], "nc", "-l", "-k", "-p", "5001")
    assert gw.ping(0, "10.20.0.2")
    assert not tcp_ok(gw, 0, "10.20.0.2", 5001, timeout=1), "TCP has no rule: dropped"
    c = counters(d, "g1")
    assert c["icmp0"] > 0 and c["arp0"] > 0


def test_two_graphs_on_different_endpoints_are_isolated(gateway, daemon):
    gw, d = gateway, daemon
    for i in (0, 2):               # the same addresses in both graphs
        gw.addr(i, LAN)
        gw.addr(i + 1, WAN)
    d.api("PUT", "/NF-FG/a", bridge_graph("a", ("eth0", "eth1")))
    d.api("PUT", "/NF-FG/b", bridge_graph("b", ("eth2", "eth3")))
    before_b = counters(d, "b")
    rx = [_rx(gw, h) for h in (2, 3)]
    assert gw.ping(0, "10.20.0.2", count=5, interval="0.1")
    assert counters(d, "b") == before_b, "graph b's rules saw none of graph a's packets"
    assert [_rx(gw, h) for h in (2, 3)] == rx, "hosts of graph b received nothing"
    assert gw.ping(2, "10.20.0.2")
    assert all(n > 0 for n in counters(d, "b").values())
    with pytest.raises(netlab.ApiError) as e:         # an interface belongs to one graph
        d.api("PUT", "/NF-FG/c", bridge_graph("c", ("eth1", "eth2")))
    assert e.value.status == 409 and "eth1" in e.value.body["error"]


def _rx(gw, host):
    link = json.loads(netlab.sh("ip", "-n", gw.hosts[host], "-s", "-j", "link", "show",
                                "eth0").stdout)[0]
    return link["stats64"]["rx"]["packets"]


def test_update_by_difference_keeps_untouched_path_flowing(gateway, daemon):
    gw, d = gateway, daemon
    for i in (0, 2):
        gw.addr(i, LAN)
        gw.addr(i + 1, WAN)
    g = bridge_graph("g1", ("eth0", "eth1"))
    d.api("PUT", "/NF-FG/g1", g)
    ns_before = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]["netns"]
    flow = gw.lab.run  # a continuous ping across the update
    result = {}
    t = threading.Thread(target=lambda: result.update(p=flow(
        gw.hosts[0], "ping", "-c", "40", "-i", "0.05", "-W", "1", "10.20.0.2")))
    t.start()
    time.sleep(0.5)
    # add a second NF and path in the same graph: the first path is untouched
    g2 = bridge_graph("g1", ("eth0", "eth1"))
    fg = g2["forwarding-graph"]
    extra = bridge_graph("x", ("eth2", "eth3"))["forwarding-graph"]
    fg["VNFs"].append({**extra["VNFs"][0], "id": "nf2"})
    fg["end-points"] += [{**e, "id": e["id"] + "b"} for e in extra["end-points"]]
    for r in extra["big-switch"]["flow-rules"]:
        r = json.loads(json.dumps(r).replace("nf1", "nf2").replace("ep0", "ep0b")
                       .replace("ep1", "ep1b"))
        r["id"] += "b"
        fg["big-switch"]["flow-rules"].append(r)
    assert d.api("PUT", "/NF-FG/g1", g2)[0] == 201
    t.join()
    assert " 0% packet loss" in result["p"].stdout, result["p"].stdout
    st = d.api("GET", "/NF-FG/status/g1")[1]
    assert st["VNFs"][0]["netns"] == ns_before, "the untouched NF was not restarted"
    assert gw.ping(2, "10.20.0.2"), "the added path works"
    assert len(objects(gw)["netns"]) == 2
    # change the first NF (new env): a new instance replaces the old one
    g2["forwarding-graph"]["VNFs"][0]["unify-env-variables"] = [{"variable": "X=1"}]
    assert d.api("PUT", "/NF-FG/g1", g2)[0] == 201
    st = d.api("GET", "/NF-FG/status/g1")[1]
    assert st["VNFs"][0]["netns"] != ns_before
    assert ns_before not in objects(gw)["netns"] and len(objects(gw)["netns"]) == 2
    assert gw.ping(0, "10.20.0.2")
    # remove the second path again
    assert d.api("PUT", "/NF-FG/g1", g)[0] == 201
    assert len(objects(gw)["netns"]) == 1 and len(objects(gw)["veths"]) == 2


def _nf_log(d, ns):
    return (d.workdir / "run" / "nf" / ns / "log").read_text()


def test_update_hot_plugs_ports_into_the_running_nf(gateway, daemon):
    """Paper Table II update: a graph update that adds or removes a port of an NF plugs it
    into the running NF (its update script) — no new namespace, start runs once."""
    gw, d = gateway, daemon
    for i in range(3):
        gw.addr(i, f"10.20.0.{i + 1}/24")
    g = bridge_graph("g1")
    d.api("PUT", "/NF-FG/g1", g)
    ns = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]["netns"]
    assert gw.ping(0, "10.20.0.2") and not gw.ping(0, "10.20.0.3", count=1)
    g3 = json.loads(json.dumps(g))
    fg = g3["forwarding-graph"]
    fg["VNFs"][0]["ports"].append({"id": "inout:2", "name": "data-port"})
    fg["end-points"].append({"id": "ep2", "type": "interface", "interface": {"if-name": "eth2"}})
    fg["big-switch"]["flow-rules"] += [
        {"id": "r4", "priority": 10, "match": {"port_in": "endpoint:ep2"},
         "actions": [{"output_to_port": "vnf:nf1:inout:2"}]},
        {"id": "r5", "priority": 10, "match": {"port_in": "vnf:nf1:inout:2"},
         "actions": [{"output_to_port": "endpoint:ep2"}]}]
    assert d.api("PUT", "/NF-FG/g1", g3)[0] == 201
    st = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]
    assert st["netns"] == ns and st["state"] == "Active", "the same instance, still running"
    assert [p["id"] for p in st["ports"]] == ["inout:0", "inout:1", "inout:2"]
    assert gw.ping(0, "10.20.0.3") and gw.ping(2, "10.20.0.2"), "the new port carries traffic"
    assert len(objects(gw)["veths"]) == 3
    assert d.api("PUT", "/NF-FG/g1", g)[0] == 201               # and unplug it again
    st = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]
    assert st["netns"] == ns and len(st["ports"]) == 2
    assert len(objects(gw)["veths"]) == 2 and objects(gw)["netns"] == [ns]
    assert gw.ping(0, "10.20.0.2") and not gw.ping(0, "10.20.0.3", count=1)
    log = _nf_log(d, ns)
    assert log.count("/start ") == 1 and log.count("/update ") == 2, log


def test_failed_hot_plug_keeps_the_previous_ports(gateway, nnf_repo, make_daemon):
    bridge = (netlab.ROOT / "nnf" / "bridge" / "start").read_text().split("\n", 1)[1]
    repo = nnf_repo("rigid", {"start": bridge, "update": "echo 'no new ports, sorry' >&2; exit 4"})
    d = make_daemon(nnf_dir=repo)
    gw = gateway
    gw.addr(0, LAN)
    gw.addr(1, WAN)
    g = bridge_graph(nf="rigid")
    d.api("PUT", "/NF-FG/g1", g)
    before = objects(gw)
    g3 = json.loads(json.dumps(g))
    g3["forwarding-graph"]["VNFs"][0]["ports"].append({"id": "inout:2"})
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/g1", g3)
    assert e.value.status == 422 and "no new ports" in e.value.body["error"]
    assert objects(gw) == before, "the plugged port is gone again"
    st = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]
    assert st["state"] == "Active" and len(st["ports"]) == 2
    assert gw.ping(0, "10.20.0.2")


def test_failed_update_keeps_previous_version(gateway, nnf_repo, make_daemon):
    gw = gateway
    repo = nnf_repo("broken", {"start": "echo 'cannot load rules: bad config' >&2; exit 3"},
                    ports=[{"label": "inout", "min": 2, "max": 2}])
    d = make_daemon(nnf_dir=repo)
    gw.addr(0, LAN)
    gw.addr(1, WAN)
    d.api("PUT", "/NF-FG/g1", bridge_graph())
    before = objects(gw)
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/g1", bridge_graph(nf="broken"))
    assert e.value.status == 422
    assert e.value.body["fault"] == "FailureOnStart"
    assert "bad config" in e.value.body["error"]
    assert objects(gw) == before
    assert gw.ping(0, "10.20.0.2")
    assert d.api("GET", "/NF-FG/g1")[1]["forwarding-graph"]["VNFs"][0]["name"] == "bridge"
    with pytest.raises(netlab.ApiError):             # and a failed first deploy leaves nothing
        d.api("PUT", "/NF-FG/g2", bridge_graph("g2", ("eth2", "eth3"), nf="broken"))
    assert objects(gw) == before
    assert [g["forwarding-graph"]["id"] for g in d.api("GET", "/NF-FG/")[1]["NF-FG"]] == ["g1"]


def test_script_that_never_returns_is_killed(gateway, nnf_repo, make_daemon):
    repo = nnf_repo("hang", {"start": "sleep 600 &\nsleep 600"}, timeout=1)
    d = make_daemon(nnf_dir=repo)
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/g1", bridge_graph(nf="hang"))
    assert e.value.status == 422 and "timeout" in e.value.body["error"]
    assert objects(gateway) == EMPTY


def test_bad_input_is_refused_and_changes_nothing(gateway, nnf_repo, make_daemon):
    repo = nnf_repo("needy", {"start": "exit 0"}, dependencies={"capability": [
        {"name": "no-such-tool-xyz", "type": "executable"}]})
    d = make_daemon(nnf_dir=repo)
    good = bridge_graph()
    cases = []
    cases.append(("malformed", b'{"forwarding-graph": {"id": "g1" "VNFs": []}}', 400, "$"))
    g = bridge_graph(nf="no-such-nf")
    cases.append(("unknown NF", g, 422, "$.forwarding-graph.VNFs[0].name"))
    g = bridge_graph(eps=("eth0", "eth9"))
    cases.append(("missing interface", g, 422, "$.forwarding-graph.end-points[1]"))
    g = json.loads(json.dumps(good))
    g["forwarding-graph"]["big-switch"]["flow-rules"][0]["actions"][0]["output_to_port"] = \
        "vnf:nf1:inout:7"
    cases.append(("dangling port", g, 400, "$.forwarding-graph.big-switch.flow-rules[0]"))
    g = json.loads(json.dumps(good))
    g["forwarding-graph"]["end-points"][1] = {"id": "ep1", "type": "gre-tunnel", "gre-tunnel": {
        "local-ip": "10.0.0.1", "remote-ip": "10.0.0.2"}}
    cases.append(("gre endpoint", g, 422, "$.forwarding-graph.end-points[1]"))
    if gateway.backend != "ovs":               # ovs carries vlan end-points
        g = json.loads(json.dumps(good))
        g["forwarding-graph"]["end-points"][1] = {"id": "ep1", "type": "vlan",
                                                  "vlan": {"vlan-id": "25", "if-name": "eth1"}}
        cases.append(("vlan endpoint", g, 422, "$.forwarding-graph.end-points[1].type"))
    cases.append(("missing dependency", bridge_graph(nf="needy"), 422,
                  "$.forwarding-graph.VNFs[0]"))
    g = bridge_graph(env={"UNLITE_NETNS": "x"})
    cases.append(("reserved env", g, 400, "$.forwarding-graph.VNFs[0].unify-env-variables"))
    g = bridge_graph(eps=("eth0", "ul1234567890"))
    cases.append(("unlite's own device", g, 400, "$.forwarding-graph.end-points[1]"))
    for name, body, status, path in cases:
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", "/NF-FG/g1", body)
        err = e.value.body
        assert e.value.status // 100 == 4, (name, err)
        if status == 422:
            assert e.value.status == 422, (name, err)
        assert err["path"] and err["path"].startswith(path), (name, err)
        assert err["error"], name
        assert objects(gateway) == EMPTY, name
        assert d.api("GET", "/NF-FG/")[1] == {"NF-FG": []}, name
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/g1", b'{"forwarding-graph": {"id": "g1" "VNFs": []}}')
    assert "line 1" in e.value.body["error"]
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/needy", bridge_graph(nf="needy"))
    assert "no-such-tool-xyz" in e.value.body["error"]
    for bad_id in ("a;b", "..", "a%2Fb"):
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", f"/NF-FG/{bad_id}", good)
        assert e.value.status in (400, 404), bad_id
    assert not list((d.workdir / "state" / "graphs").glob("*.json"))


def test_reads_are_not_blocked_by_a_slow_deploy(gateway, nnf_repo, make_daemon):
    """While a deploy's start script runs (it says so in its run dir, then waits for the
    test's word), every read answers at once and shows the deploy under way."""
    repo = nnf_repo("slow", {"start": 'touch "$UNLITE_RUN_DIR/started"; '
                                      'while [ ! -f "$UNLITE_RUN_DIR/go" ]; do sleep 0.05; done'},
                    timeout=30)
    d = make_daemon(nnf_dir=repo)
    t = threading.Thread(target=lambda: netlab.Daemon.api(
        _second_client(d), "PUT", "/NF-FG/g1", bridge_graph(nf="slow")))
    t.start()
    run = d.workdir / "run" / "nf"
    end = time.monotonic() + 20
    while next(run.glob("*/started"), None) is None and time.monotonic() < end:
        time.sleep(0.02)
    try:
        assert next(run.glob("*/started"), None), "the start script never ran"
        t0 = time.monotonic()
        assert d.api("GET", "/healthz")[1]["status"] == "ok"
        assert d.api("GET", "/NF-FG/")[0] == 200
        st = d.api("GET", "/NF-FG/status/g1")[1]
        took = time.monotonic() - t0
        assert st["status"] == "deploying" and st["change"]["state"] == "running", st
        assert took < 1.0, f"reads took {took:.2f} s while the deploy ran"
    finally:
        for f in run.glob("*/started"):
            (f.parent / "go").touch()
        t.join()
    assert d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]["state"] == "Active"
    d.api("DELETE", "/NF-FG/g1")


def _second_client(d):
    """Another client thread in the same namespace (the first one is busy)."""
    c = netlab.Daemon.__new__(netlab.Daemon)
    c.port = d.port
    c.pool = netlab.concurrent.futures.ThreadPoolExecutor(1, initializer=netlab._enter,
                                                          initargs=(d.ns,))
    return c


def test_post_capabilities_openapi_and_cli(gateway, daemon):
    d = daemon
    status, body = d.api("POST", "/NF-FG/", bridge_graph())
    gid = body["nffg-uuid"]
    assert status == 201 and d.api("GET", f"/NF-FG/{gid}")[1]["forwarding-graph"]["id"] == gid
    caps = d.api("GET", "/capabilities")[1]
    names = {f["name"] for f in caps["functional-capabilities"]}
    assert {"bridge", "firewall", "nat"} <= names
    assert caps["infrastructure"]["steering-backend"] == gateway.backend
    assert caps["infrastructure"]["steering"]["probe"]
    assert caps["resources"]["graphs"] == 1
    spec = d.api("GET", "/openapi.json")[1]
    assert spec["openapi"].startswith("3.") and "/NF-FG/{gid}" in spec["paths"]
    cli = ["nsenter", f"--net=/run/netns/{gateway.ns}", netlab.sys.executable, "-m", "unlite",
           "--url", f"http://127.0.0.1:{d.port}"]
    out = netlab.sh(*cli, "graph", "list").stdout
    assert gid in out
    p = netlab.sh(*cli, "graph", "delete", "nope", check=False)
    assert p.returncode == 1 and "404" in p.stderr
    assert netlab.sh(*cli, "graph", "delete", gid).returncode == 0
    assert d.api("GET", "/NF-FG/")[1] == {"NF-FG": []}


@pytest.mark.parametrize("backend", ["nft"])          # end-points are checked above steering
def test_one_interface_is_one_end_point_whatever_its_name(backend, gateway, daemon):
    """An altname (ip link property add) is the same interface: 409 for a second graph,
    422 for two end-points of one; an NF's port moved into the node's namespace is that
    NF's, not an end-point (issue 15)."""
    gw, d = gateway, daemon
    netlab.sh("ip", "-n", gw.ns, "link", "property", "add", "dev", "eth0", "altname", "wan0")
    netlab.sh("ip", "-n", gw.ns, "link", "property", "add", "dev", "eth2", "altname", "lan2")
    assert d.api("PUT", "/NF-FG/g1", bridge_graph("g1", ("eth0", "eth1")))[0] == 201

    def refused(gid, eps):
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", f"/NF-FG/{gid}", bridge_graph(gid, eps))
        return e.value

    e = refused("g2", ("wan0", "eth3"))
    assert e.status == 409 and "graph 'g1'" in e.body["error"], e.body
    assert e.body["path"] == "$.forwarding-graph.end-points[0].interface.if-name"
    e = refused("g2", ("eth2", "lan2"))
    assert e.status == 422 and "both use" in e.body["error"], e.body
    nf = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]
    inner = nf["ports"][0]["ifname"]
    netlab.sh("ip", "-n", nf["netns"], "link", "set", inner, "netns", gw.ns)
    try:
        e = refused("g2", (inner, "eth3"))
        assert e.status == 409 and "moved into the node" in e.body["error"], e.body
        assert "graph 'g1'" in e.body["error"]
    finally:
        netlab.sh("ip", "-n", gw.ns, "link", "set", inner, "netns", nf["netns"])
    assert objects(gw)["netns"] == [nf["netns"]]               # g2 made nothing
    d.api("DELETE", "/NF-FG/g1")
