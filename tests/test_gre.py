"""gre-tunnel end-points with real packets.

On ovs with the userspace datapath (this machine's kernel has no openvswitch module) the
tunnel is an OVS GRE port of ``ul-lsi0``; its underlay is the operator's: here the gateway's
eth1 sits in an OVS bridge ``brphy`` whose internal interface carries the local IP. The far
end of the tunnel is built by the test in h2: a second private Open vSwitch with its own
``brphy`` and a bridge holding a GRE port, decapsulating to a host ``far`` behind it::

    h1 ─ eth0 ═ gw: [bridge NF] ═ ul-lsi0:ulr… ⇢ brphy (10.99.0.1) ─ eth1
        ── h2: eth0 ─ brphy (10.99.0.2) ⇢ brint:fargre ─ v0 ── far

On nft and tc the end-point is a kernel gretap device, and on ovs's kernel datapath a GRE
port the kernel makes: the underlay is routed (10.99.0.1 on eth1) and the far end is a
kernel gretap in a bridge. Where the kernel has no gretap (this machine's), the deploy is
refused with 422 and nothing is made; ``make test-kernel`` runs the rest on a full kernel.

Two facts of OVS 3.1's userspace tunnels shape the hosts (documented in the README):
packets that carry checksum/TSO offload flags are dropped on entering a tunnel ("Tunneling
packets with HW offload flags is not supported"), so the hosts compute their own checksums
(veth TX checksum offload off); and the tunnel adds 42 bytes, so the hosts' MTU is 1400.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import netlab
from conftest import bridge_graph

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)"),
              pytest.mark.kernel]

KEY = 4242
TX_CSUM_OFF = r"""
import ctypes, fcntl, socket, struct, sys
val = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))        # ETHTOOL_STXCSUM, off
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    fcntl.ioctl(s, 0x8946, struct.pack("16sP", sys.argv[1].encode(), ctypes.addressof(val)))
"""


def gre_graph(gid="t", local="10.99.0.1", remote="10.99.0.2", key=KEY):
    g = bridge_graph(gid, ("eth0", "unused"))
    g["forwarding-graph"]["end-points"][1] = {
        "id": "ep1", "type": "gre-tunnel",
        "gre-tunnel": {"local-ip": local, "remote-ip": remote, "gre-key": str(key)}}
    return g


def host(lab, ns, cidr):
    netlab.sh("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
    netlab.sh("ip", "-n", ns, "link", "set", "eth0", "mtu", "1400")
    lab.run(ns, sys.executable, "-c", TX_CSUM_OFF, "eth0", check=True)


def vsctl(ovs, *args):
    return ovs._run("ovs-vsctl", f"--db={ovs.db}", "--timeout=10", *args)


def underlay(ovs, ns, uplink, cidr):
    """The operator's side of OVS userspace tunnelling: a netdev bridge holding the uplink,
    the tunnel's local IP on its internal interface."""
    vsctl(ovs, "add-br", "brphy", "--", "set", "Bridge", "brphy", "datapath_type=netdev",
          "fail_mode=standalone", "--", "add-port", "brphy", uplink)
    netlab.sh("ip", "-n", ns, "addr", "add", cidr, "dev", "brphy")
    netlab.sh("ip", "-n", ns, "link", "set", "brphy", "up")


def refused(d, graph, path_end, *words):
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", f"/NF-FG/{graph['forwarding-graph']['id']}", graph)
    body = e.value.body
    assert e.value.status == 422, body
    assert body["path"] == f"$.forwarding-graph.end-points[1].{path_end}", body
    assert all(w in body["error"] for w in words), body
    return body["error"]


def test_gre_tunnel_endpoint(gateway, daemon, tmp_path):
    gw, d = gateway, daemon
    userspace = gw.backend == "ovs" and netlab.ovs_datapath() == "netdev"
    st = d.api("GET", "/capabilities")[1]["infrastructure"]["steering"]
    if not userspace and "gre-tunnel" in st["refused-endpoint-types"]:
        why = st["refused-endpoint-types"]["gre-tunnel"]
        assert "gretap" in why, why
        assert not netlab.kernel_has("gretap"), f"{gw.backend} refused gretap here: {why}"
        netlab.need_kernel("gretap")        # in the kernel lab: a failure, not a pass
        print(f"\n{gw.backend}: gre-tunnel refused on this kernel: {why}")
        msg = refused(d, gre_graph(), "type", "ep1", "gre-tunnel", why)
        assert d.api("GET", "/NF-FG/")[1]["NF-FG"] == []
        assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == netlab.EMPTY, msg
        return
    assert "gre-tunnel" in st["endpoint-types"]
    lab = gw.lab
    far = lab.ns("far")
    h1, h2 = gw.hosts[0], gw.hosts[1]
    lab.link(h2, "v0", far, "eth0")
    host(lab, h1, "10.40.0.1/24")
    host(lab, far, "10.40.0.2/24")
    # an end-point whose local IP is not the node's is refused, and so (on ovs) is one whose
    # local IP is not on an OVS bridge's internal interface
    refused(d, gre_graph(local="10.99.0.9"), "gre-tunnel.local-ip", "ep1", "10.99.0.9")
    netlab.sh("ip", "-n", gw.ns, "addr", "add", "10.98.0.1/24", "dev", "eth3")
    if userspace:
        refused(d, gre_graph(local="10.98.0.1"), "gre-tunnel.local-ip", "eth3", "internal")
    assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == netlab.EMPTY
    remote = None
    try:
        if userspace:
            underlay(gw.ovs, gw.ns, "eth1", "10.99.0.1/24")
            remote = netlab.Ovs(h2, tmp_path / "ovs-far").start()
            underlay(remote, h2, "eth0", "10.99.0.2/24")
            vsctl(remote, "add-br", "brint", "--", "set", "Bridge", "brint",
                  "datapath_type=netdev", "fail_mode=standalone", "--", "add-port", "brint",
                  "v0", "--", "add-port", "brint", "fargre", "--", "set", "Interface", "fargre",
                  "type=gre", "options:remote_ip=10.99.0.1", "options:local_ip=10.99.0.2",
                  f"options:key={KEY}")
        else:       # a kernel with gretap: the underlay is routed, the far end is a gretap
            netlab.sh("ip", "-n", gw.ns, "addr", "add", "10.99.0.1/24", "dev", "eth1")
            netlab.sh("ip", "-n", h2, "addr", "add", "10.99.0.2/24", "dev", "eth0")
            # not "gre0": ip_gre makes that fallback device in every namespace itself
            for cmd in (["link", "add", "fargre", "type", "gretap", "local", "10.99.0.2",
                         "remote", "10.99.0.1", "key", str(KEY)],
                        ["link", "add", "brint", "type", "bridge"],
                        ["link", "set", "fargre", "master", "brint"],
                        ["link", "set", "v0", "master", "brint"],
                        ["link", "set", "fargre", "up"], ["link", "set", "brint", "up"]):
                netlab.sh("ip", "-n", h2, *cmd)
        assert d.api("PUT", "/NF-FG/t", gre_graph())[0] == 201
        if gw.backend == "ovs":
            tunnels = [p for p in gw.ovs.ports("ul-lsi0") if p.startswith("ulr")]
            assert len(tunnels) == 1 and len(tunnels[0]) <= 15, tunnels
            assert vsctl(gw.ovs, "get", "Interface", tunnels[0], "type").strip() == "gre"
        pcap = tmp_path / "underlay.pcap"
        cap = subprocess.Popen(["ip", "netns", "exec", h2, "tcpdump", "-nn", "-U", "-i",
                                "eth0", "-w", str(pcap)], stderr=subprocess.PIPE, text=True)
        try:
            assert "listening" in cap.stderr.readline()
            assert gw.ping(0, "10.40.0.2", count=5, wait="2"), "h1 → tunnel → far"
            out = tmp_path / "received"
            lab.spawn(far, "sh", "-c", f"nc -l -p 5001 > {out}")
            time.sleep(0.3)
            tcp = lab.run(h1, "sh", "-c", "head -c 300000 /dev/urandom | "
                          "nc -N -w 5 10.40.0.2 5001", timeout=20)
            assert tcp.returncode == 0, tcp.stderr
            for _ in range(50):
                if out.exists() and out.stat().st_size == 300000:
                    break
                time.sleep(0.1)
            assert out.stat().st_size == 300000, "the TCP stream crossed the tunnel whole"
            time.sleep(0.3)
        finally:
            cap.terminate()
            cap.wait(timeout=10)

        def read(*flt):
            return netlab.sh("tcpdump", "-nn", "-v", "-r", pcap, *flt).stdout

        gre = read("ip proto 47")
        assert f"key=0x{KEY:x}" in gre, gre[:2000]
        assert "10.40.0.1 > 10.40.0.2: ICMP echo request" in gre
        assert "10.40.0.2 > 10.40.0.1: ICMP echo reply" in gre
        assert "10.40.0.1." in gre and ".5001: Flags [S]" in gre and "proto TCP" in gre
        assert "incorrect" not in gre                  # inner checksums are right
        # no bare inner packet on the underlay: every IP packet there is GRE
        assert read("ip and not ip proto 47") == ""
        print(f"\nunderlay capture: {gre.count('proto GRE (47)')} GRE packets with "
              f"key 0x{KEY:x}, no bare inner packet")
        g2 = bridge_graph("u", ("eth2", "x"))
        g2["forwarding-graph"]["end-points"][1] = gre_graph()["forwarding-graph"]["end-points"][1]
        if gw.backend == "ovs":                 # one end-point per tunnel
            with pytest.raises(netlab.ApiError) as e:
                d.api("PUT", "/NF-FG/u", g2)
            assert e.value.status == 409, e.value.body
            assert e.value.body["path"] == "$.forwarding-graph.end-points[1].gre-tunnel"
        c = {r["id"]: r["packets"] for r in d.api("GET", "/NF-FG/status/t")[1]["flow-rules"]}
        assert c["r2"] > 0 and c["r3"] > 0, c          # out of and into the tunnel
        assert d.api("DELETE", "/NF-FG/t")[0] == 204
        assert not gw.ping(0, "10.40.0.2", count=1)
        operator = {"ovs-bridges": ["brphy"], "ovs-ports": ["eth1"]} if userspace else {}
        assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == dict(netlab.EMPTY,
                                                                               **operator)
    finally:
        if remote:
            remote.stop()
        if userspace:
            vsctl(gw.ovs, "--if-exists", "del-br", "brphy")


def test_gretap_devices_are_planned_within_names():
    """The nft/tc path without a kernel that has gretap: the device unlite would make."""
    from unlite.model import parse_graph
    from unlite.network import endpoints
    g = parse_graph(gre_graph("a-graph-with-a-long-id"))
    (ln,) = endpoints.plan(g).values()
    assert ln.kind == "gre-tunnel" and ln.dev.startswith("ul") and len(ln.dev) <= 15
    assert endpoints._gretap_lines(ln)[0] == (
        f"link add {ln.dev} type gretap local 10.99.0.1 remote 10.99.0.2 key {KEY}")
    ok, why = endpoints.gretap_probe()
    print(f"\ngretap probe here: {ok}, {why}")
    assert ok or why == endpoints.NO_GRETAP


def test_ovs_kernel_datapath_probes_gretap_on_first_need():
    """OVS's kernel datapath makes GRE ports from kernel gretap: the backend offers
    gre-tunnel end-points only once a first need (here /capabilities) has probed it, and
    making the backend probes nothing (no scratch namespace at daemon start)."""
    from unlite.network import endpoints
    from unlite.network.ovs import OvsSwitch
    endpoints._probed.pop("gretap", None)       # this process may have probed already
    sw = OvsSwitch("system")
    assert "gretap" not in endpoints._probed and "gre-tunnel" not in sw.endpoint_types
    f = sw.features()
    ok, why = endpoints.gretap_probe()
    if ok:
        assert "gre-tunnel" in f["endpoint-types"]
    else:
        assert f["refused-endpoint-types"]["gre-tunnel"] == (
            f"the kernel datapath makes GRE ports from kernel gretap devices, and {why}")
    assert "gre-tunnel" in OvsSwitch("netdev").endpoint_types   # userspace: its own tunnels
