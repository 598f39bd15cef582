"""Restarts cut no traffic: the daemon adopts what runs (issue 16).

With ``--on-exit keep`` (the router's setting) a SIGTERM leaves every NF running; a crash
(``kill -9``) does too. The next start compares the runtime records with the stored graphs
and the kernel and takes over what matches, untouched: no NF restarted, no rule rewritten.
Measured here with real traffic through a 2-NF graph: a ping every 10 ms and a TCP stream
across a crash, a SIGTERM restart (what an upgrade does) and a restart after an unrelated
UCI edit (what procd does when /etc/config/unlite changes).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

import netlab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

KEEP = ("--on-exit", "keep")

# A transparent bridge that also leaves a process running (a daemon of the NF's own):
# what liveness and "PIDs unchanged" look at.
PROC_BRIDGE = """set -eu
shift 3
{ [ -e /sys/class/net/br0 ] || echo "link add br0 type bridge stp_state 0 mcast_snooping 0"
  for i in "$@"; do echo "link set $i master br0"; done; echo "link set br0 up"; } | ip -batch -
setsid sleep 100000 </dev/null >/dev/null 2>&1 &
"""


def chain_graph(gid="g1"):
    """eth0 → nf1 (a bridge with a process) → nf2 (the catalog's bridge) → eth1, and back."""
    vnfs = [{"id": n, "name": name, "ports": [{"id": "inout:0"}, {"id": "inout:1"}]}
            for n, name in (("nf1", "procbridge"), ("nf2", "bridge"))]
    hops = ["endpoint:ep0", "vnf:nf1:inout:0", "vnf:nf1:inout:1", "vnf:nf2:inout:0",
            "vnf:nf2:inout:1", "endpoint:ep1"]
    pairs = [(hops[i], hops[i + 1]) for i in (0, 2, 4)] + \
        [(hops[i + 1], hops[i]) for i in (0, 2, 4)]
    return {"forwarding-graph": {
        "id": gid, "name": "chain", "VNFs": vnfs,
        "end-points": [{"id": "ep0", "type": "interface", "interface": {"if-name": "eth0"}},
                       {"id": "ep1", "type": "interface", "interface": {"if-name": "eth1"}}],
        "big-switch": {"flow-rules": [
            {"id": f"r{i}", "priority": 10, "match": {"port_in": a},
             "actions": [{"output_to_port": b}]} for i, (a, b) in enumerate(pairs)]}}}


def _repo(nnf_repo):
    return nnf_repo("procbridge", {"start": PROC_BRIDGE})


def _nf_pids(gw, d):
    st = d.api("GET", "/NF-FG/status/g1")[1]
    return {v["id"]: sorted(int(p) for p in netlab.sh(
        "ip", "netns", "pids", v["netns"], check=False).stdout.split()) for v in st["VNFs"]}


def _kill9(d):
    d.killed = True
    os.killpg(d.proc.pid, signal.SIGKILL)
    d.proc.wait()


def _term(d):
    os.kill(d.proc.pid, signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0, d.log()
    d.killed = True                 # stopped on purpose; the fixture need not stop it


class Pinger:
    """``ping -i INTERVAL`` from namespace ``ns`` to ``dest`` until ``stop()``, which says
    (sent, received)."""

    def __init__(self, ns, dest, interval="0.02"):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-i", interval, "-W", "1",
                                   dest], stdout=subprocess.PIPE, text=True)

    def stop(self):
        time.sleep(1.5)                 # the last ones' answers (-W 1)
        self.p.send_signal(signal.SIGINT)
        out = self.p.communicate(timeout=10)[0]
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m, out
        return int(m.group(1)), int(m.group(2))


def _stop_all(d):
    """/etc/init.d/unlite stop: SIGUSR1, then SIGTERM: this once, everything goes."""
    if d.proc.poll() is None:
        os.kill(d.proc.pid, signal.SIGUSR1)
        time.sleep(0.3)
        _term(d)


STREAM = r"""
import socket, sys, time
role = sys.argv[1]
if role == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 5001)); s.listen(1); print("ready", flush=True)
    c, _ = s.accept(); n = 0
    while True:
        b = c.recv(65536)
        if not b: break
        n += len(b)
    print(n, flush=True)
else:
    c = socket.create_connection((sys.argv[2], 5001), timeout=5)
    end = time.monotonic() + float(sys.argv[3]); n = 0
    while time.monotonic() < end:
        c.sendall(b"x" * 1024); n += 1024; time.sleep(0.005)
    c.shutdown(socket.SHUT_WR); c.close(); print(n, flush=True)
"""


def test_restarts_cut_no_traffic_and_keep_the_nfs(gateway, make_daemon, nnf_repo, tmp_path):
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    uci = tmp_path / "unlite.uci"
    uci.write_text("config unlite 'main'\n\toption verbose '0'\n")
    d = make_daemon(_repo(nnf_repo), extra=(*KEEP, "--uci", str(uci)))
    assert d.api("PUT", "/NF-FG/g1", chain_graph())[0] == 201
    assert gw.ping(0, "10.20.0.2")
    pids = _nf_pids(gw, d)
    assert pids["nf1"], "the procbridge NF runs a process"
    objects = netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True)

    server = subprocess.Popen(["ip", "netns", "exec", gw.hosts[1], sys.executable, "-c",
                               STREAM, "server"], stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    client = subprocess.Popen(["ip", "netns", "exec", gw.hosts[0], sys.executable, "-c",
                               STREAM, "client", "10.20.0.2", "12"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    ping = subprocess.Popen(["ip", "netns", "exec", gw.hosts[0], "ping", "-i", "0.01", "-W",
                             "1", "-w", "12", "10.20.0.2"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        _kill9(d)                                     # a crash: procd respawns it
        d = d.restarted()
        assert _nf_pids(gw, d) == pids, "kill -9: the NFs were restarted"
        _term(d)                                      # an upgrade's restart
        d = d.restarted()
        assert _nf_pids(gw, d) == pids, "SIGTERM: the NFs were restarted"
        uci.write_text("config unlite 'main'\n\toption verbose '1'\n")    # unrelated edit
        _term(d)
        d = d.restarted()
        assert _nf_pids(gw, d) == pids, "UCI edit: the NFs were restarted"
        out, _ = ping.communicate(timeout=30)
        sent_ok = client.wait(timeout=30) == 0
        got = server.communicate(timeout=10)[0].strip()
    except BaseException:
        _stop_all(d)
        raise
    finally:
        for p in (ping, client, server):
            if p.poll() is None:
                p.kill()
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    sent, received = int(m.group(1)), int(m.group(2))
    assert sent > 500, out
    assert received == sent, f"{sent - received} of {sent} pings lost across the restarts"
    assert sent_ok, f"the TCP stream broke: {client.stderr.read()}"
    assert int(got) > 0
    assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == objects
    st = d.api("GET", "/NF-FG/status/g1")[1]
    assert st["status"] == "complete" and {v["state"] for v in st["VNFs"]} == {"Active"}
    assert "adopted as it runs" in d.log()
    _stop_all(d)
    assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True)["netns"] == []


def test_what_differs_is_repaired_not_adopted(gateway, make_daemon, nnf_repo):
    """A record the kernel no longer matches (an NF's port deleted while the daemon was
    down) is not adopted: that graph is repaired by difference — the broken NF made again,
    its other NF kept running (same namespace, same processes, started once) — and the other
    graph is adopted untouched."""
    gw = gateway
    for i, a in enumerate(("10.20.0.1/24", "10.20.0.2/24", "10.30.0.1/24", "10.30.0.2/24")):
        gw.addr(i, a)
    repo = _repo(nnf_repo)
    d = make_daemon(repo, extra=KEEP)
    d.api("PUT", "/NF-FG/g1", chain_graph())
    g2 = chain_graph("g2")
    for ep, dev in zip(g2["forwarding-graph"]["end-points"], ("eth2", "eth3")):
        ep["interface"]["if-name"] = dev
    d.api("PUT", "/NF-FG/g2", g2)
    st1, st2 = (d.api("GET", f"/NF-FG/status/{g}")[1] for g in ("g1", "g2"))
    _term(d)
    nf1, nf2 = st1["VNFs"]
    netlab.sh("ip", "-n", gw.ns, "link", "del", nf2["ports"][0]["host-ifname"])

    def pids(ns):
        return sorted(netlab.sh("ip", "netns", "pids", ns).stdout.split())
    ns2, pids2, pids1 = {v["netns"] for v in st2["VNFs"]}, pids(st2["VNFs"][0]["netns"]), \
        pids(nf1["netns"])
    assert pids1, "nf1 (procbridge) runs a process"
    d = d.restarted()
    try:
        assert gw.ping(0, "10.20.0.2"), "g1 was repaired"
        assert gw.ping(2, "10.30.0.2")
        new1 = d.api("GET", "/NF-FG/status/g1")[1]
        assert new1["status"] == "complete", new1
        assert [v["netns"] for v in new1["VNFs"]] == [nf1["netns"], nf2["netns"]]
        assert pids(nf1["netns"]) == pids1, "nf1 was kept running"
        nf_log = (d.workdir / "run" / "nf" / nf1["netns"] / "log").read_text()
        assert nf_log.count("/start ") == 1, f"nf1 was started again:\n{nf_log}"
        assert {v["netns"] for v in d.api("GET", "/NF-FG/status/g2")[1]["VNFs"]} == ns2
        assert pids(st2["VNFs"][0]["netns"]) == pids2
        log = d.log()
    finally:
        _stop_all(d)
    assert "graph g2: adopted" in log and "graph g1: not adopted" in log, log
    assert "port 'inout:0'" in log and "repaired by difference (1 of 2 NFs kept)" in log, log
    assert "graph g1: repaired" in log, log


def test_an_nf_that_died_while_the_daemon_was_down_is_made_again_alone(gateway, make_daemon,
                                                                        nnf_repo):
    """nf1's process is killed while the daemon is down: at start nf1 is made again (its
    veths anew, so the graph's rules are put anew: they named the old devices) and traffic
    passes; nf2 is kept (started once, its namespace the same)."""
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    d = make_daemon(_repo(nnf_repo), extra=KEEP)
    d.api("PUT", "/NF-FG/g1", chain_graph())
    nf1, nf2 = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"]
    kept = os.stat(f"/run/netns/{nf2['netns']}").st_ino      # nf2's namespace itself
    _term(d)
    for pid in netlab.sh("ip", "netns", "pids", nf1["netns"]).stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    d = d.restarted()
    try:
        assert gw.ping(0, "10.20.0.2"), "g1 was repaired"
        st = d.api("GET", "/NF-FG/status/g1")[1]
        assert st["status"] == "complete" and [v["state"] for v in st["VNFs"]] == \
            ["Active", "Active"], st
        assert netlab.sh("ip", "netns", "pids", nf1["netns"]).stdout.split(), "nf1 runs again"
        logs = [(d.workdir / "run" / "nf" / v["netns"] / "log").read_text() for v in (nf1, nf2)]
        assert logs[0].count("/start ") == 1 and logs[1].count("/start ") == 1, logs
        assert os.stat(f"/run/netns/{nf2['netns']}").st_ino == kept, "nf2 was made again"
        log = d.log()
    finally:
        _stop_all(d)
    assert "repaired by difference (1 of 2 NFs kept)" in log, log


@pytest.mark.parametrize("backend", ["nft"], indirect=True)
def test_on_exit_stop_is_the_default(gateway, make_daemon):
    """Without --on-exit keep, SIGTERM removes everything (a developer's Ctrl-C)."""
    from conftest import bridge_graph
    d = make_daemon()
    d.api("PUT", "/NF-FG/g1", bridge_graph())
    assert netlab.unlite_objects(gateway.ns, gateway.ovs, graphs_only=True)["netns"]
    _term(d)
    assert netlab.unlite_objects(gateway.ns, gateway.ovs, graphs_only=True)["netns"] == []


@pytest.mark.parametrize("backend", ["nft"], indirect=True)
def test_a_shared_nf_stays_when_one_of_its_graphs_is_rebuilt(gateway, make_daemon):
    """Two graphs share one single-instance NF; one graph's port goes while the daemon is
    down: that graph leaves the NF and joins it again, the NF and the other graph stay."""
    from conftest import bridge_graph
    gw = gateway
    for i, a in enumerate(("10.20.0.1/24", "10.20.0.2/24", "10.30.0.1/24", "10.30.0.2/24")):
        gw.addr(i, a)
    d = make_daemon(extra=KEEP)
    d.api("PUT", "/NF-FG/a", bridge_graph("a", ("eth0", "eth1"), nf="shared-bridge"))
    d.api("PUT", "/NF-FG/b", bridge_graph("b", ("eth2", "eth3"), nf="shared-bridge"))
    va = d.api("GET", "/NF-FG/status/a")[1]["VNFs"][0]
    pinger = Pinger(gw.hosts[2], "10.30.0.2")
    _term(d)
    netlab.sh("ip", "-n", gw.ns, "link", "del", va["ports"][0]["host-ifname"])
    d = d.restarted()
    try:
        sent, received = pinger.stop()
        assert received == sent > 20, f"graph b lost {sent - received} of {sent} pings"
        log = d.log()
        assert "graph b: adopted" in log and "graph a: not adopted" in log, log
        assert gw.ping(0, "10.20.0.2"), "graph a was rebuilt"
        va2, vb2 = (d.api("GET", f"/NF-FG/status/{g}")[1]["VNFs"][0] for g in "ab")
        assert va2["netns"] == vb2["netns"] == va["netns"]
        nf_log = (d.workdir / "run" / "nf" / va["netns"] / "log").read_text()
        assert nf_log.count("/start ") == 1, f"the NF was started again:\n{nf_log}"
        assert nf_log.count("/update ") == 3, nf_log     # b joined, a left, a joined again
        assert va2["shared-by"] == ["a", "b"] and va2["state"] == "Active"
    finally:
        _stop_all(d)


@pytest.mark.parametrize("backend", ["nft"], indirect=True)
def test_an_nf_daemon_printing_to_its_output_survives_a_restart(gateway, make_daemon,
                                                                 nnf_repo):
    """A daemon the start script leaves running prints into the daemon's pipe; at a restart
    (--on-exit keep) the pipe goes to a cat of its own: the NF's daemon neither dies of a
    closed pipe nor blocks, it is adopted, and its log stays capped."""
    from unlite import sh
    from conftest import bridge_graph
    repo = nnf_repo("chatty", {"start": PROC_BRIDGE.replace(
        "setsid sleep 100000 </dev/null >/dev/null 2>&1 &",
        "(while :; do echo still talking; sleep 0.01; done) & exit 0")})
    d = make_daemon(repo, extra=KEEP)
    assert d.api("PUT", "/NF-FG/g1", bridge_graph(nf="chatty"))[0] == 201
    v = d.api("GET", "/NF-FG/status/g1")[1]["VNFs"][0]
    from unlite.compute import liveness
    pids = {pid for pid, _ in liveness.snapshot(v["netns"])}     # the loop, not its sleeps
    assert pids
    _term(d)
    time.sleep(1)                           # it goes on printing, to nobody but the cat
    d = d.restarted()
    try:
        st = d.api("GET", "/NF-FG/status/g1")[1]
        assert st["VNFs"][0]["state"] == "Active", st
        now = {pid for pid, _ in liveness.snapshot(v["netns"])}
        assert pids == now, "the NF's daemon died across the restart"
        assert "graph g1: adopted" in d.log()
        log = d.workdir / "run" / "nf" / v["netns"] / "log"
        assert log.stat().st_size <= sh.LOG_CAP + 64 << 10
    finally:
        _stop_all(d)
