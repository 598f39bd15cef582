"""The node offers functions, not images: capabilities follow the dependencies present, the
resolver picks a flavour by what can run and by preference, and the choice shows in status."""
from __future__ import annotations

import os
import shutil
import signal
import sys
import time

import pytest

import netlab
from conftest import bridge_graph
from unlite.compute.cgroup import freezer, limits

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")


@pytest.fixture
def backend():
    """Resolving functions does not depend on the steering backend: nft only."""
    return "nft"


def _tcp_ok(gw, host, dest, port):
    return gw.lab.run(gw.hosts[host], "nc", "-z", "-w", "2", dest, str(port)).returncode == 0


@pytest.mark.parametrize("prefer, flavour", [(None, "nftables"), ("ebtables", "ebtables")])
def test_firewall_flavour_chosen_by_preference_blocks_the_same(gateway, make_daemon, prefer,
                                                                flavour):
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    d = make_daemon(extra=("--prefer", prefer) if prefer else ())
    d.api("PUT", "/NF-FG/fw", bridge_graph("fw", nf="firewall", env={"BLOCK_TCP_PORTS": "23"}))
    st = d.api("GET", "/NF-FG/status/fw")[1]
    assert st["VNFs"][0]["implementation"] == f"firewall ({flavour})"
    for port in (23, 8080):
        gw.lab.spawn(gw.hosts[1], "nc", "-l", "-k", "-p", str(port))
    assert gw.ping(0, "10.20.0.2")
    assert _tcp_ok(gw, 0, "10.20.0.2", 8080)
    assert not _tcp_ok(gw, 0, "10.20.0.2", 23), f"{flavour} flavour blocks port 23"
    caps = d.api("GET", "/capabilities")[1]["functional-capabilities"]
    fws = {c["flavour"]: c["preferred"] for c in caps if c["name"] == "firewall"}
    assert fws == {"nftables": flavour == "nftables", "ebtables": flavour == "ebtables"}


def test_capabilities_and_resolver_follow_the_dependencies_present(gateway, nnf_repo,
                                                                   make_daemon, tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for flavour in ("alpha", "beta"):
        repo = nnf_repo(f"gadget-{flavour}", {"start": "exit 0"}, name="gadget",
                        flavour=flavour, dependencies={"capability": [
                            {"name": f"utl-{flavour}-tool", "type": "executable"}]})
    env = dict(os.environ, PATH=f"{tools}:{os.environ.get('PATH', '')}")
    d = make_daemon(nnf_dir=repo, env=env, extra=("--prefer", "beta,alpha"))

    def gadgets():
        caps = d.api("GET", "/capabilities")[1]["functional-capabilities"]
        return sorted(c["flavour"] for c in caps if c["name"] == "gadget")

    def impl(gid):
        d.api("PUT", f"/NF-FG/{gid}", bridge_graph(gid, nf="gadget"))
        out = d.api("GET", f"/NF-FG/status/{gid}")[1]["VNFs"][0]["implementation"]
        d.api("DELETE", f"/NF-FG/{gid}")
        return out

    assert gadgets() == []
    with pytest.raises(netlab.ApiError) as e:             # no flavour can run
        d.api("PUT", "/NF-FG/g0", bridge_graph("g0", nf="gadget"))
    assert e.value.status == 422 and e.value.body["fault"] == "DependencyFailure"
    assert "utl-alpha-tool" in e.value.body["error"] and "utl-beta-tool" in e.value.body["error"]
    (tools / "utl-alpha-tool").write_text("#!/bin/sh\n")
    (tools / "utl-alpha-tool").chmod(0o755)
    assert gadgets() == ["alpha"], "a dependency appears: so does the function"
    assert impl("g1") == "gadget (alpha)", "the only flavour that can run"
    (tools / "utl-beta-tool").write_text("#!/bin/sh\n")
    (tools / "utl-beta-tool").chmod(0o755)
    assert gadgets() == ["alpha", "beta"]
    assert impl("g2") == "gadget (beta)", "both can run: the preferred one"
    (tools / "utl-beta-tool").unlink()
    assert gadgets() == ["alpha"], "a dependency goes away: so does the function"
    assert impl("g3") == "gadget (alpha)"


def test_stop_start_pause_resume_one_nf(gateway, nnf_repo, make_daemon):
    """Pause stops the flow and resume restores it with the same processes; stop/start run
    the scripts again; the graph's other objects stay."""
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    bridge = (netlab.ROOT / "nnf" / "bridge" / "start").read_text().split("\n", 1)[1]
    repo = nnf_repo("worker", {"start": bridge + "\nsleep 600 >/dev/null 2>&1 &\n",
                               "stop": "ip link set br0 down"})
    d = make_daemon(nnf_dir=repo)
    d.api("PUT", "/NF-FG/g", bridge_graph("g", nf="worker"))
    ns = d.api("GET", "/NF-FG/status/g")[1]["VNFs"][0]["netns"]

    def pids():
        return sorted(netlab.sh("ip", "netns", "pids", ns).stdout.split())

    def act(action):
        return d.api("POST", f"/NF-FG/g/VNFs/nf1/{action}")[1]["state"]

    before = pids()
    assert before and gw.ping(0, "10.20.0.2")
    assert act("pause") == "Paused"
    assert not gw.ping(0, "10.20.0.2", count=2), "a paused NF passes no traffic"
    assert freezer.frozen(ns), "the kernel reports the NF's processes frozen"
    with pytest.raises(netlab.ApiError) as e:
        act("pause")
    assert e.value.status == 409 and "Paused" in e.value.body["error"]
    assert act("resume") == "Active"
    assert gw.ping(0, "10.20.0.2"), "traffic flows again"
    assert pids() == before, "resume restarts nothing"
    assert not freezer.frozen(ns)
    assert act("stop") == "Idle"
    assert pids() == [] and not gw.ping(0, "10.20.0.2", count=1)
    assert act("start") == "Active"
    assert gw.ping(0, "10.20.0.2") and pids() and pids() != before
    assert act("pause") == "Paused"                        # delete while paused frees all
    for bad, status in (("/NF-FG/g/VNFs/nope/stop", 404), ("/NF-FG/x/VNFs/nf1/stop", 404),
                        ("/NF-FG/g/VNFs/nf1/reboot", 404)):
        with pytest.raises(netlab.ApiError) as e:
            d.api("POST", bad)
        assert e.value.status == status, bad
    d.api("DELETE", "/NF-FG/g")
    kind, root = freezer.hierarchy()
    assert not os.path.exists(os.path.join(root, "unlite", ns)), "the cgroup is gone"


def test_event_stream_tells_graph_and_nf_changes(gateway, daemon):
    """GET /events (server-sent events) while a graph is deployed, paused, failed, deleted."""
    with daemon.events() as events:
        daemon.api("PUT", "/NF-FG/e", bridge_graph("e"))
        daemon.api("POST", "/NF-FG/e/VNFs/nf1/pause")
        with pytest.raises(netlab.ApiError):
            daemon.api("PUT", "/NF-FG/e", bridge_graph("e", nf="no-such-nf"))
        daemon.api("DELETE", "/NF-FG/e")
    assert [(k, d.get("event") or d.get("state")) for k, d in events] == [
        ("graph", "deploying"), ("graph", "created"), ("nf", "Paused"), ("graph", "updating"),
        ("graph", "failed"), ("graph", "deleting"), ("graph", "deleted")]
    assert events[4][1]["status"] == "complete" and "no-such-nf" in events[4][1]["error"]


@pytest.mark.kernel
def test_a_greedy_nnf_is_contained_by_its_limits(gateway, nnf_repo, make_daemon):
    """memory and pids limits from the template: the NF's own hog is killed and its fork
    loop capped, while the daemon and another graph's NF keep working."""
    gw = gateway
    for i in (0, 2):
        gw.addr(i, "10.20.0.1/24")
        gw.addr(i + 1, "10.20.0.2/24")
    bridge = (netlab.ROOT / "nnf" / "bridge" / "start").read_text().split("\n", 1)[1]
    greedy = bridge + """
rc=0; dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null || rc=$?     # (set -e above)
echo $rc > "$UNLITE_RUN_DIR/dd.rc"
( for i in $(seq 1 60); do sleep 600 & done ) >/dev/null 2>&1 &
exit 0
"""
    repo = nnf_repo("greedy", {"start": greedy}, limits={"memory": "16M", "pids": 20})
    with pytest.raises(Exception) as e:                  # refused when packed
        nnf_repo("toosmall", {"start": "exit 0"}, limits={"memory": "1K"})
    assert "limits" in e.value.stderr.decode()
    d = make_daemon(nnf_dir=repo)
    d.api("PUT", "/NF-FG/g", bridge_graph("g", nf="greedy"))
    d.api("PUT", "/NF-FG/ok", bridge_graph("ok", ("eth2", "eth3")))
    ns = d.api("GET", "/NF-FG/status/g")[1]["VNFs"][0]["netns"]
    rc_file = d.workdir / "run" / "nf" / ns / "dd.rc"
    for _ in range(int(100 * netlab.SLACK)):
        if rc_file.exists() and rc_file.read_text().strip():
            break
        time.sleep(0.05)
    assert rc_file.read_text().strip() == "137", "the 64 MiB hog was OOM-killed in its group"
    time.sleep(0.3)
    assert 1 <= len(netlab.sh("ip", "netns", "pids", ns).stdout.split()) <= 20
    assert gw.ping(0, "10.20.0.2"), "the greedy NF still bridges"
    assert gw.ping(2, "10.20.0.2"), "the other graph's NF is untouched"
    assert d.api("GET", "/healthz")[1]["status"] == "ok"
    groups = [os.path.join(root, "unlite", ns) for _, root in limits._roots().values()]
    assert any(os.path.isdir(g) for g in groups)
    d.api("DELETE", "/NF-FG/g")
    assert not any(os.path.isdir(g) for g in groups), "the NF's cgroups are removed"


def _http_ok(gw, host, url):
    p = gw.lab.run(gw.hosts[host], "curl", "-s", "-m", "3", url)
    return p.stdout.strip() if p.returncode == 0 else None


def test_two_graphs_share_one_single_instance_nnf(gateway, daemon, tmp_path):
    """Paper IV-E: a ``"multitenancy": false`` NNF runs once and serves several graphs.
    Each graph reaches it through ports of its own, so with the *same* addresses in both
    graphs every reply still returns to the graph that asked."""
    gw, d = gateway, daemon
    for i, graph in enumerate("ab"):                # h1 ↔ h2 in graph a, h3 ↔ h4 in graph b
        gw.addr(2 * i, "10.30.0.1/24")
        gw.addr(2 * i + 1, "10.30.0.2/24")
        www = tmp_path / f"www-{graph}"
        www.mkdir()
        (www / "who").write_text(f"server of graph {graph}\n")
        gw.lab.spawn(gw.hosts[2 * i + 1], sys.executable, "-m", "http.server", "8000",
                     "--bind", "10.30.0.2", "--directory", str(www))
    d.api("PUT", "/NF-FG/a", bridge_graph("a", ("eth0", "eth1"), nf="shared-bridge"))
    d.api("PUT", "/NF-FG/b", bridge_graph("b", ("eth2", "eth3"), nf="shared-bridge"))
    va, vb = (d.api("GET", f"/NF-FG/status/{g}")[1]["VNFs"][0] for g in "ab")
    assert va["netns"] == vb["netns"], "one instance"
    assert va["shared-by"] == vb["shared-by"] == ["a", "b"]
    assert va["state"] == vb["state"] == "Active"
    assert {p["host-ifname"] for p in va["ports"]}.isdisjoint(
        p["host-ifname"] for p in vb["ports"]), "each graph has ports of its own"
    assert len(netlab.unlite_objects(gw.ns)["netns"]) == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _http_ok(gw, 0, "http://10.30.0.2:8000/who"):
        time.sleep(0.1)                           # the servers are starting
    assert _http_ok(gw, 0, "http://10.30.0.2:8000/who") == "server of graph a"
    assert _http_ok(gw, 2, "http://10.30.0.2:8000/who") == "server of graph b"
    log = (d.workdir / "run" / "nf" / va["netns"] / "log").read_text()
    assert log.count("/start ") == 1 and log.count("/update ") == 1, log
    with pytest.raises(netlab.ApiError) as e:     # one graph cannot stop it for the others
        d.api("POST", "/NF-FG/a/VNFs/nf1/stop")
    assert e.value.status == 409 and "shared" in e.value.body["error"]
    d.killed = True                               # kill -9: the restart adopts the one
    os.killpg(d.proc.pid, signal.SIGKILL)         # instance and both graphs' views of it
    d.proc.wait()
    d = d.restarted()
    assert d.log().count("adopted as it runs") == 2, d.log()
    assert (d.workdir / "run" / "nf" / va["netns"] / "log").read_text() == log, \
        "the single-instance NF was started or told again"
    va, vb = (d.api("GET", f"/NF-FG/status/{g}")[1]["VNFs"][0] for g in "ab")
    assert va["netns"] == vb["netns"] and va["shared-by"] == ["a", "b"]
    assert va["state"] == vb["state"] == "Active"
    assert len(netlab.unlite_objects(gw.ns)["netns"]) == 1
    assert _http_ok(gw, 0, "http://10.30.0.2:8000/who") == "server of graph a"
    assert _http_ok(gw, 2, "http://10.30.0.2:8000/who") == "server of graph b"
    d.api("DELETE", "/NF-FG/a")                   # a leaves; b keeps its NF and its traffic
    vb = d.api("GET", "/NF-FG/status/b")[1]["VNFs"][0]
    assert vb["shared-by"] == ["b"] and vb["netns"] == va["netns"]
    assert _http_ok(gw, 2, "http://10.30.0.2:8000/who") == "server of graph b"
    assert _http_ok(gw, 0, "http://10.30.0.2:8000/who") is None
    d.api("DELETE", "/NF-FG/b")                   # the last graph frees the instance
    assert netlab.unlite_objects(gw.ns)["netns"] == []
    d.stop()
    assert d.proc.returncode == 0


def test_unify_control_forwards_a_node_port_into_the_nf(gateway, nnf_repo, make_daemon):
    """unify-control: a TCP port of the node reaches a TCP port inside the NF, from the node
    itself and from a host routed to it; a port taken elsewhere is refused."""
    gw = gateway
    repo = nnf_repo("managed", {"start": 'echo "NF $2 of graph $1" > "$UNLITE_RUN_DIR/who"\n'
                                         'python3 -m http.server 8000 --directory '
                                         '"$UNLITE_RUN_DIR" >/dev/null 2>&1 &\n'
                                         'echo $! > "$UNLITE_RUN_DIR/pid"'})
    d = make_daemon(nnf_dir=repo)
    g = bridge_graph(nf="managed")
    g["forwarding-graph"]["VNFs"][0]["unify-control"] = [
        {"host-tcp-port": 10080, "vnf-tcp-port": 8000}]
    d.api("PUT", "/NF-FG/g1", g)
    ctl = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]["control"]
    assert ctl[0]["host-tcp-port"] == 10080 and ctl[0]["address"].startswith("169.254.")
    netlab.sh("ip", "-n", gw.ns, "addr", "add", "10.99.0.1/24", "dev", "eth2")
    gw.addr(2, "10.99.0.2/24")                   # h3: a host on the node's own stack
    netlab.sh("ip", "netns", "exec", gw.ns, "sysctl", "-qw", "net.ipv4.conf.eth2.forwarding=1")

    def fetch(ns, url):
        for _ in range(50):                      # the NF's server is starting
            p = gw.lab.run(ns, "curl", "-s", "-m", "2", url)
            if p.returncode == 0:
                return p.stdout.strip()
            time.sleep(0.1)
        return None

    assert fetch(gw.ns, "http://127.0.0.1:10080/who") == "NF nf1 of graph g1"
    assert fetch(gw.hosts[2], "http://10.99.0.1:10080/who") == "NF nf1 of graph g1"
    # The control port carries forwarded connections only: the NF can open none through
    # it, neither to the node (a listener on all its addresses) nor routed beyond it (h3).
    ns = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]["netns"]
    a, b, c, last = ctl[0]["address"].split(".")
    node_side = f"{a}.{b}.{c}.{int(last) - 1}"
    gw.lab.spawn(gw.ns, "nc", "-l", "-k", "-p", "7777")
    gw.lab.spawn(gw.hosts[2], "nc", "-l", "-k", "-p", "7777")
    netlab.sh("ip", "-n", ns, "route", "add", "10.99.0.0/24", "via", node_side)
    time.sleep(0.3)
    for dest in (node_side, "10.99.0.2"):
        p = netlab.sh("ip", "netns", "exec", ns, "nc", "-z", "-w", "1", dest, "7777",
                      check=False)
        assert p.returncode != 0, f"the NF reached {dest}:7777 through its control port"
    assert gw.lab.run(gw.hosts[2], "nc", "-z", "-w", "1", "10.99.0.1", "7777").returncode == 0
    g2 = bridge_graph("g2", ("eth3",), nf="managed", rules=[])
    for port, status, why in ((10080, 409, "graph 'g1'"), (8080, 409, "listens")):
        g2["forwarding-graph"]["VNFs"][0]["unify-control"] = [
            {"host-tcp-port": port, "vnf-tcp-port": 8000}]
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", "/NF-FG/g2", g2)
        assert e.value.status == status and why in e.value.body["error"], e.value.body
        assert e.value.body["path"].endswith("unify-control[0].host-tcp-port")
    d.api("DELETE", "/NF-FG/g1")
    assert fetch(gw.ns, "http://127.0.0.1:10080/who") is None
    assert netlab.unlite_objects(gw.ns)["nft-tables"] == []


def test_a_package_whose_files_are_gone_is_unpacked_again_or_refused(gateway, nnf_repo,
                                                                      make_daemon):
    """<run-dir>/pkg removed or a script changed under a running daemon: the firewall is
    unpacked again from the catalog and blocks; with the catalog's archive gone too, 422 at
    the NF's path and nothing deployed, never a firewall without rules (issue 15)."""
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    repo = nnf_repo.path
    d = make_daemon(nnf_dir=repo)
    fw = bridge_graph("fw", nf="firewall", env={"BLOCK_TCP_PORTS": "23"})
    for port in (23, 8080):
        gw.lab.spawn(gw.hosts[1], "nc", "-l", "-k", "-p", str(port))
    pkg = d.workdir / "run" / "pkg"

    def blocks():
        d.api("PUT", "/NF-FG/fw", fw)
        ok = _tcp_ok(gw, 0, "10.20.0.2", 8080) and not _tcp_ok(gw, 0, "10.20.0.2", 23)
        d.api("DELETE", "/NF-FG/fw")
        return ok

    assert blocks()
    shutil.rmtree(pkg)
    assert blocks(), "deployed without its package's rules"
    (start,) = pkg.glob("*/start")
    start.write_text("#!/bin/sh\nexit 0\n")
    assert blocks(), "ran a changed start script"
    d.api("PUT", "/NF-FG/fw", fw)                    # then the NF's own start, stopped first
    d.api("POST", "/NF-FG/fw/VNFs/nf1/stop")
    shutil.rmtree(pkg)
    (repo / "firewall.tgz").unlink()                 # the catalog cannot give it again
    with pytest.raises(netlab.ApiError) as e:
        d.api("POST", "/NF-FG/fw/VNFs/nf1/start")
    assert e.value.status == 422 and "are gone" in e.value.body["error"], e.value.body
    d.api("DELETE", "/NF-FG/fw")
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/fw", fw)
    assert e.value.status == 422 and "cannot be unpacked again" in e.value.body["error"]
    assert e.value.body["path"] == "$.forwarding-graph.VNFs[0].name"
    assert netlab.unlite_objects(gw.ns, graphs_only=True) == netlab.EMPTY
