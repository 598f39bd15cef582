"""The daemon dies or the box reboots: graphs come back, nothing is left twice."""
from __future__ import annotations

import itertools
import os
import signal

import pytest

import netlab
from conftest import bridge_graph

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")


def _kill9(d):
    d.killed = True
    os.killpg(d.proc.pid, signal.SIGKILL)
    d.proc.wait()


def test_kill_9_then_restart_cleans_and_redeploys(gateway, make_daemon):
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    d = make_daemon()
    d.api("PUT", "/NF-FG/g1", bridge_graph())
    assert gw.ping(0, "10.20.0.2")
    before = netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True)
    _kill9(d)                                   # objects stay behind, recorded
    d2 = d.restarted()
    try:
        assert gw.ping(0, "10.20.0.2"), "the graph is back"
        after = netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True)
        assert len(after["netns"]) == len(before["netns"]) == 1, (before, after)
        assert len(after["veths"]) == len(before["veths"]), (before, after)
        st = d2.api("GET", "/NF-FG/status/g1")[1]
        assert st["status"] == "complete" and st["VNFs"][0]["state"] == "Active"
    finally:
        d2.stop()
    assert d2.proc.returncode == 0


def test_reboot_brings_every_graph_back(gateway, make_daemon):
    """A reboot: the daemon dies and every kernel object it made is gone with it."""
    gw = gateway
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    d = make_daemon()
    d.api("PUT", "/NF-FG/g1", bridge_graph())
    d.api("PUT", "/NF-FG/g2", bridge_graph("g2", ("eth2", "eth3")))
    _kill9(d)
    for ns in netlab.unlite_objects(gw.ns)["netns"]:          # what a power cut takes
        netlab.sh("ip", "netns", "del", ns)
    netlab.sh("ip", "netns", "exec", gw.ns, "nft", "flush", "ruleset")
    for dev in netlab.unlite_objects(gw.ns)["tc-qdiscs"]:
        netlab.sh("tc", "-n", gw.ns, "qdisc", "del", "dev", dev, "clsact", check=False)
    d2 = d.restarted()
    try:
        assert gw.ping(0, "10.20.0.2")
        assert sorted(g["forwarding-graph"]["id"]
                      for g in d2.api("GET", "/NF-FG/")[1]["NF-FG"]) == ["g1", "g2"]
        assert len(netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True)["netns"]) == 2
    finally:
        d2.stop()
    assert d2.proc.returncode == 0


def _tunables(pid):
    """GLIBC_TUNABLES as process ``pid`` was started with it. glibc parses the variable in
    place, so /proc/PID/environ shows its tunables as NUL-separated pieces."""
    parts = open(f"/proc/{pid}/environ", "rb").read().decode().split("\0")
    for i, kv in enumerate(parts):
        if kv.startswith("GLIBC_TUNABLES="):
            pieces = itertools.takewhile(lambda p: p.startswith("glibc."), parts[i + 1:])
            return ":".join([kv.partition("=")[2], *pieces])
    return None


@pytest.mark.parametrize("backend", ["nft"], indirect=True)
def test_the_daemon_runs_with_its_malloc_tunables(gateway, make_daemon):
    """``unlite serve`` re-executes itself once (same pid) with unlite.MALLOC_TUNABLES on
    glibc; on musl, or when the caller set tunables of its own, it runs as started."""
    import unlite
    glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "MALLOC_ARENA_MAX")}
    d = make_daemon(env=env)
    if glibc:
        assert _tunables(d.proc.pid) == unlite.MALLOC_TUNABLES
        assert "glibc.malloc.tcache_count=0" in unlite.MALLOC_TUNABLES
    else:
        assert _tunables(d.proc.pid) is None
    mine = make_daemon(env=dict(env, GLIBC_TUNABLES="glibc.malloc.arena_max=2"), port=8081)
    assert _tunables(mine.proc.pid) == "glibc.malloc.arena_max=2"
