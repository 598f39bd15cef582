"""Teardown waits for the kernel, not for a clock: ``watch.wait_links_gone`` wakes on the
kernel's RTM_DELLINK (and looks by name where netlink cannot be opened); a graph's delete
removes its namespaces in one batch and unsteers it while the kernel frees the veths.

Real namespaces and veths; the waits run in a child Python inside a scratch namespace (the
wait looks at the namespace it runs in)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import netlab
from bench import chain_graph
from conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

CHILD = """
import json, subprocess, sys
from unlite import watch
if sys.argv[1] == "no-netlink":
    watch.link_socket = lambda: None
ns, names = sys.argv[2], sys.argv[3:]
# the NF namespace goes: the kernel frees its veths later, in its own work queue
subprocess.run(["ip", "netns", "del", ns], check=True)
print(json.dumps(watch.wait_links_gone(names, 5.0)))
"""


@pytest.fixture
def node():
    lab = netlab.Lab()
    try:
        yield lab, lab.ns("node")
    finally:
        lab.close()


def _nf(lab, node, name, ports):
    """A namespace ``name`` (not the lab's: the child deletes it) with veths ``ports``
    whose node side is in ``node``."""
    netlab.sh("ip", "netns", "add", name)
    for i, p in enumerate(ports):
        netlab.sh("ip", "-n", node, "link", "add", p, "type", "veth", "peer", "name",
                  f"p{i}", "netns", name)
        netlab.sh("ip", "-n", node, "link", "set", p, "up")


@pytest.mark.parametrize("mode", ["netlink", "no-netlink"])
def test_wait_links_gone_ends_when_the_kernel_frees_them(node, mode):
    lab, ns = node
    nf = f"{lab.tag}-nf"
    _nf(lab, ns, nf, ["twa0", "twa1"])
    netlab.sh("ip", "-n", ns, "link", "add", "twstay", "type", "veth", "peer", "name", "twp")
    try:
        p = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", CHILD,
                            mode, nf, "twa0", "twa1", "twnone"], capture_output=True,
                           text=True, timeout=30, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == []           # gone (and one that never existed)
        links = netlab.sh("ip", "-n", ns, "-o", "link", "show").stdout
        assert "twa0" not in links and "twa1" not in links and "twstay" in links
    finally:
        netlab.sh("ip", "netns", "del", nf, check=False)


def test_wait_links_gone_returns_what_stays(node):
    lab, ns = node
    netlab.sh("ip", "-n", ns, "link", "add", "twstay", "type", "veth", "peer", "name", "twp")
    code = ("import json; from unlite import watch; "
            "print(json.dumps(watch.wait_links_gone(['twstay', 'twnone'], 0.2)))")
    p = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == ["twstay"]


def test_delete_of_a_two_nf_graph_leaves_nothing_and_redeploys(gateway, daemon):
    """The namespaces go in one batch, the rules while the kernel frees the veths; a PUT of
    the same graph right after makes the same names again (they are free)."""
    gateway.addr(0, "10.20.0.1/24")
    gateway.addr(1, "10.20.0.2/24")
    g = chain_graph("g2", 2)            # eth0 → nf1 → nf2 → eth1, bridges
    for _ in range(3):
        assert daemon.api("PUT", "/NF-FG/g2", g)[0] == 201
        assert gateway.ping(0, "10.20.0.2", count=1)
        o = netlab.unlite_objects(gateway.ns, gateway.ovs, graphs_only=True)
        assert (len(o["netns"]), len(o["veths"])) == (2, 4), o
        assert daemon.api("DELETE", "/NF-FG/g2")[0] == 204
        assert netlab.unlite_objects(gateway.ns, gateway.ovs, graphs_only=True) == netlab.EMPTY
        assert not gateway.ping(0, "10.20.0.2", count=1)
