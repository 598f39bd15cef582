"""Status from the world, not from memory (issue 16): an NF that is stopped, killed or loses
a port is ``Failed`` (``FailureWhileActive``, the reason, an event); a graph whose end-point
interface goes is ``degraded`` and comes back with it; a stored graph waiting for an
interface at start is deployed when the interface appears."""
from __future__ import annotations

import os
import signal
import time

import pytest

import netlab
from test_hitless import KEEP, _repo, _stop_all, _term, chain_graph

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")
nft_only = pytest.mark.parametrize("backend", ["nft"], indirect=True)  # compute, not steering


def _setup(gw, make_daemon, nnf_repo, **kw):
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    d = make_daemon(_repo(nnf_repo), **kw)
    assert d.api("PUT", "/NF-FG/g1", chain_graph())[0] == 201
    st = d.api("GET", "/NF-FG/status/g1")[1]
    nf1 = st["VNFs"][0]
    pid = int(netlab.sh("ip", "netns", "pids", nf1["netns"]).stdout.split()[0])
    return d, nf1, pid


def _nf(d, nf="nf1"):
    st = d.api("GET", "/NF-FG/status/g1")[1]
    return st, next(v for v in st["VNFs"] if v["id"] == nf)


def _until(f, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = f()
        if v:
            return v
        time.sleep(0.1)
    return f()


@nft_only
def test_a_stopped_nf_is_reported_and_recovers_with_stop_start(gateway, make_daemon,
                                                               nnf_repo):
    d, nf1, pid = _setup(gateway, make_daemon, nnf_repo)
    with d.events(until=lambda k, e: k == "nf" and e.get("state") == "Failed") as seen:
        os.kill(pid, signal.SIGSTOP)
        st, v = _nf(d)
    assert v["state"] == "Failed" and v["fault"] == "FailureWhileActive", v
    assert "stopped" in v["fault-detail"] and str(pid) in v["fault-detail"]
    assert st["status"] == "degraded" and st["problems"], st
    assert any(e.get("detail") == v["fault-detail"] for k, e in seen if k == "nf"), seen
    line = next(g for g in d.api("GET", "/graphs")[1]["graphs"] if g["id"] == "g1")   # LuCI's list
    assert line["status"] == "degraded", line
    assert {"vnf": "nf1", "fault": "FailureWhileActive"} in line["faults"], line
    assert d.api("POST", "/NF-FG/g1/VNFs/nf1/stop")[1]["state"] == "Idle"
    assert d.api("POST", "/NF-FG/g1/VNFs/nf1/start")[1]["state"] == "Active"
    st, v = _nf(d)
    assert st["status"] == "complete" and v["state"] == "Active" and v["fault"] is None, st
    assert gateway.ping(0, "10.20.0.2")


@nft_only
def test_a_killed_process_and_a_deleted_port_are_failures(gateway, make_daemon, nnf_repo):
    d, nf1, pid = _setup(gateway, make_daemon, nnf_repo)
    os.kill(pid, signal.SIGKILL)                   # what the OOM killer does at its limit
    # (the signal is delivered when the victim next runs: on a loaded machine, a moment later)
    _until(lambda: _nf(d)[1]["state"] == "Failed")
    st, v = _nf(d)
    assert v["state"] == "Failed" and f"process {pid} is gone" in v["fault-detail"], v
    nf2 = _nf(d, "nf2")[1]
    assert nf2["state"] == "Active", "a kernel-only NF has no process to lose"
    netlab.sh("ip", "-n", gateway.ns, "link", "del", nf2["ports"][1]["host-ifname"])
    st, v = _nf(d, "nf2")
    assert v["state"] == "Failed" and "port 'inout:1'" in v["fault-detail"], v
    assert st["status"] == "degraded" and len(st["problems"]) == 2, st


@nft_only
def test_pause_then_resume_continues_a_sigstopped_nf(gateway, make_daemon, nnf_repo):
    d, nf1, pid = _setup(gateway, make_daemon, nnf_repo)
    assert d.api("POST", "/NF-FG/g1/VNFs/nf1/pause")[1]["state"] == "Paused"
    os.kill(pid, signal.SIGSTOP)
    assert d.api("POST", "/NF-FG/g1/VNFs/nf1/resume")[1]["state"] == "Active"
    state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    assert state not in "Tt", "resume left the NF's process stopped"
    st, v = _nf(d)
    assert v["state"] == "Active" and st["status"] == "complete", st


def test_an_end_point_that_goes_and_returns(gateway, make_daemon, nnf_repo):
    gw = gateway
    d, _, _ = _setup(gw, make_daemon, nnf_repo)
    assert gw.ping(0, "10.20.0.2")
    netlab.sh("ip", "-n", gw.ns, "link", "del", "eth1")          # unplugged
    st = d.api("GET", "/NF-FG/status/g1")[1]
    assert st["status"] == "degraded"
    assert "end-point 'ep1': interface 'eth1' is gone" in st["problems"], st
    gw.lab.link(gw.ns, "eth1", gw.hosts[1], "eth0")              # plugged back
    gw.addr(1, "10.20.0.2/24")
    netlab.sh("ip", "-n", gw.hosts[0], "neigh", "flush", "all")  # h2 has a new MAC
    assert _until(lambda: d.api("GET", "/NF-FG/status/g1")[1]["status"] == "complete")
    assert gw.ping(0, "10.20.0.2", count=5), "its rules came back with the interface"


@nft_only
def test_a_graph_waits_for_its_interface_at_start(gateway, make_daemon, nnf_repo):
    gw = gateway
    d, _, _ = _setup(gw, make_daemon, nnf_repo, extra=KEEP)
    _stop_all(d)                                  # the NFs go; the graph stays stored
    netlab.sh("ip", "-n", gw.ns, "link", "del", "eth1")          # e.g. a USB modem, later
    d = d.restarted()
    try:
        st = d.api("GET", "/NF-FG/status/g1")[1]
        assert st["status"] == "failed" and st["waiting-for"] == ["eth1"], st
        assert "deployed when it appears" in st["error"]
        with d.events(until=lambda k, e: e.get("event") == "created") as seen:
            gw.lab.link(gw.ns, "eth1", gw.hosts[1], "eth0")
            gw.addr(1, "10.20.0.2/24")
            netlab.sh("ip", "-n", gw.hosts[0], "neigh", "flush", "all")
        assert any("appeared" in e.get("reason", "") for _, e in seen), seen
        st = d.api("GET", "/NF-FG/status/g1")[1]
        assert st["status"] == "complete", st
        assert gw.ping(0, "10.20.0.2")
    finally:
        _stop_all(d)


@nft_only
def test_stop_scripts_of_a_graph_run_in_parallel(gateway, make_daemon, nnf_repo):
    """Three NFs whose stop scripts hang: DELETE takes one timeout, not three."""
    repo = nnf_repo("hang", {"start": "true", "stop": "sleep 60"}, timeout=2)
    d = make_daemon(repo)
    g = {"forwarding-graph": {"id": "g1", "VNFs": [
        {"id": f"nf{i}", "name": "hang", "ports": []} for i in range(3)],
        "end-points": [], "big-switch": {"flow-rules": []}}}
    assert d.api("PUT", "/NF-FG/g1", g)[0] == 201
    t0 = time.monotonic()
    assert d.api("DELETE", "/NF-FG/g1")[0] == 204
    took = time.monotonic() - t0
    assert took < 4.5, f"DELETE took {took:.1f} s: the stop scripts ran one after another"
    assert netlab.unlite_objects(gateway.ns, graphs_only=True)["netns"] == []
    _term(d)


@nft_only
def test_a_hanging_stop_script_holds_up_its_own_graph_only(gateway, make_daemon, nnf_repo):
    """Graph A's stop script hangs (killed at its 4 s timeout): while A's DELETE waits for
    it, graph B is deployed, changed and deleted at once, and B's status is read; a change
    of A itself waits for A's delete to end (then A is new again)."""
    import threading
    nnf_repo("hang", {"start": "true", "stop": "sleep 60"}, timeout=4)
    repo = nnf_repo("quick", {"start": "true"})
    d = make_daemon(repo)

    def graph(gid, nf):
        return {"forwarding-graph": {"id": gid, "VNFs": [{"id": "nf1", "name": nf,
                                                          "ports": []}],
                                     "end-points": [], "big-switch": {"flow-rules": []}}}
    assert d.api("PUT", "/NF-FG/a", graph("a", "hang"))[0] == 201
    done = {}

    def delete_a():
        done["a"] = d.api("DELETE", "/NF-FG/a")[0]
        done["a-at"] = time.monotonic()
    t = threading.Thread(target=delete_a)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.5)                                 # A's stop script runs now
    assert d.api("PUT", "/NF-FG/b", graph("b", "quick"))[0] == 201
    assert d.api("GET", "/NF-FG/status/b")[1]["status"] == "complete"
    b2 = graph("b", "quick")
    b2["forwarding-graph"]["VNFs"].append({"id": "nf2", "name": "quick", "ports": []})
    assert d.api("PUT", "/NF-FG/b", b2)[0] == 201        # (an update: the UN client wants 201)
    assert d.api("DELETE", "/NF-FG/b")[0] == 204
    b_took = time.monotonic() - t0
    assert "a" not in done and b_took < 3.5, \
        f"graph b's changes took {b_took:.1f} s: they waited for graph a's stop script"
    # a change of A itself waits for its delete, then makes A anew
    assert d.api("PUT", "/NF-FG/a", graph("a", "quick"))[0] == 201
    assert done["a"] == 204 and done["a-at"] - t0 > 3.5
    t.join()
    st = d.api("GET", "/NF-FG/status/a")[1]
    assert [v["implementation"][:5] for v in st["VNFs"]] == ["quick"], st
    assert d.api("DELETE", "/NF-FG/a")[0] == 204
    assert netlab.unlite_objects(gateway.ns, graphs_only=True)["netns"] == []
    _term(d)


@nft_only
def test_a_hanging_start_script_holds_up_its_own_graph_only(gateway, make_daemon, nnf_repo):
    """Graph A's start script hangs (killed at its 4 s timeout): while A's PUT waits for it,
    graph B is deployed, changed and deleted at once; B cannot take the interface A's
    pending graph holds (409, as if A ran); a DELETE of A waits for A's PUT to end, which
    fails and leaves nothing of A."""
    import threading
    nnf_repo("hang", {"start": "sleep 60"}, timeout=4)
    repo = nnf_repo("quick", {"start": "true"})
    d = make_daemon(repo)

    def graph(gid, nf, ifname=None):
        eps = [{"id": "lan", "type": "interface", "interface": {"if-name": ifname}}] \
            if ifname else []
        return {"forwarding-graph": {"id": gid, "VNFs": [{"id": "nf1", "name": nf,
                                                          "ports": []}],
                                     "end-points": eps, "big-switch": {"flow-rules": []}}}
    done = {}

    def call(*args):                # (status, body) of an error answer too
        try:
            return d.api(*args)
        except netlab.ApiError as e:
            return e.status, e.body

    def put_a():
        code, body = call("PUT", "/NF-FG/a", graph("a", "hang", "eth0"))
        done["a"], done["a-body"], done["a-at"] = code, body, time.monotonic()
    t = threading.Thread(target=put_a)
    t0 = time.monotonic()
    t.start()
    time.sleep(0.5)                                 # A's start script runs now
    code, body = call("PUT", "/NF-FG/b", graph("b", "quick", "eth0"))
    assert code == 409 and "already used by graph 'a'" in body["error"], (code, body)
    assert d.api("PUT", "/NF-FG/b", graph("b", "quick", "eth1"))[0] == 201
    assert d.api("GET", "/NF-FG/status/b")[1]["status"] == "complete"
    b2 = graph("b", "quick", "eth1")
    b2["forwarding-graph"]["VNFs"].append({"id": "nf2", "name": "quick", "ports": []})
    assert d.api("PUT", "/NF-FG/b", b2)[0] == 201
    st = d.api("GET", "/NF-FG/status/a")[1]
    assert st["status"] in ("deploying", "running"), st     # A's first deploy, under way
    assert d.api("DELETE", "/NF-FG/b")[0] == 204
    b_took = time.monotonic() - t0
    assert "a" not in done and b_took < 3.5, \
        f"graph b's changes took {b_took:.1f} s: they waited for graph a's start script"
    # a delete of A waits for its PUT, which failed at the start script's timeout
    code, _ = call("DELETE", "/NF-FG/a")
    t.join()
    assert done["a"] == 422 and done["a-at"] - t0 > 3.5, done
    assert done["a-body"]["fault"] == "FailureOnStart", done
    assert code == 404, code                        # nothing of A was left to delete
    assert netlab.unlite_objects(gateway.ns, graphs_only=True)["netns"] == []
    assert d.api("PUT", "/NF-FG/b", graph("b", "quick", "eth0"))[0] == 201   # eth0 free
    assert d.api("DELETE", "/NF-FG/b")[0] == 204
    _term(d)
