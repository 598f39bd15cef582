"""Steering features beyond the end-to-end path: VLAN end-points and push/pop actions (on the
backends that carry them), L4 match fields, and refusals that name their reason.

This kernel has no 802.1Q devices, so hosts cannot make VLAN interfaces: the tests write
tagged Ethernet frames with an AF_PACKET socket and read them back with the tag the kernel
reports in PACKET_AUXDATA (the tag is kept as packet metadata, not in the bytes).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import netlab
from conftest import bridge_graph

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)"),
              pytest.mark.kernel]

ETH_TYPE = 0x88B5          # IEEE "local experimental" EtherType: nothing else speaks it

FRAMES = r"""
import socket, struct, sys, time
SOL_PACKET, PACKET_AUXDATA, VLAN_VALID = 263, 8, 1 << 4
mode, ifname, vlan, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
if mode == "send":
    src = s.getsockname()[4]
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    frame = b"\xff" * 6 + src + tag + struct.pack("!H", 0x88B5) + marker.ljust(46, b".")
    for _ in range(3):
        s.send(frame)
        time.sleep(0.05)
    sys.exit(0)
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[5])
while time.monotonic() < end:
    try:
        data, anc, _, _ = s.recvmsg(2048, 64)
    except socket.timeout:
        continue
    if marker not in data:
        continue
    tci = None
    for level, kind, blob in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA:
            status, _, _, _, _, tci_, _ = struct.unpack("IIIHHHH", blob[:20])
            tci = tci_ & 0xFFF if status & VLAN_VALID else None
    etype = struct.unpack("!H", data[12:14])[0]
    if etype == 0x8100:                      # tag still in the bytes (no offload)
        tci = struct.unpack("!H", data[14:16])[0] & 0xFFF
        etype = struct.unpack("!H", data[16:18])[0]
    print(f"got vlan={tci} etype=0x{etype:04x} src={data[6:12].hex(':')}", flush=True)
    sys.exit(0)
print("nothing", flush=True)
sys.exit(1)
"""


def frame_through(gw, src_host, vlan, dst_host, marker, wait=2.0, src=False):
    """Send a frame (tagged ``vlan`` or untagged when 0) from ``src_host``'s eth0; return
    (vlan, ethertype) as ``dst_host`` received it (with ``src``: and its source MAC), or
    None."""
    rx = subprocess.Popen(["ip", "netns", "exec", gw.hosts[dst_host], sys.executable, "-c",
                           FRAMES, "recv", "eth0", "0", marker, str(wait)],
                          stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        netlab.sh("ip", "netns", "exec", gw.hosts[src_host], sys.executable, "-c", FRAMES,
                  "send", "eth0", str(vlan), marker)
        out = rx.communicate(timeout=wait + 5)[0]
    finally:
        rx.kill()
        rx.wait()
    if not out.startswith("got"):
        return None
    v, e, mac = out.split()[1:4]
    got = (None if v == "vlan=None" else int(v.split("=")[1]), int(e.split("=")[1], 16))
    return (*got, mac.split("=")[1]) if src else got


def _vlan_graph(gid="v", vid="25", wan="eth1"):
    """LAN = VLAN ``vid`` on eth0, WAN = ``wan``, a bridge NF between."""
    g = bridge_graph(gid, ("eth0", wan))
    g["forwarding-graph"]["end-points"][0] = {"id": "ep0", "type": "vlan",
                                              "vlan": {"vlan-id": vid, "if-name": "eth0"}}
    return g


def test_vlan_endpoint_pops_on_entry_and_pushes_on_exit(gateway, daemon):
    """ovs tags in its flows; nft and tc steer an 802.1Q device unlite makes on eth0 (where
    the kernel has them: a router's does, this machine's not, ``make test-kernel``)."""
    gw, d = gateway, daemon
    if gw.backend != "ovs" and not netlab.kernel_has("vlan"):
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", "/NF-FG/v", _vlan_graph())
        assert e.value.status == 422
        assert e.value.body["path"] == "$.forwarding-graph.end-points[0].type"
        assert "802.1Q" in e.value.body["error"], e.value.body
        assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == netlab.EMPTY
        netlab.need_kernel("vlan")
    assert d.api("PUT", "/NF-FG/v", _vlan_graph())[0] == 201
    # VLAN 25 from the LAN host arrives untagged at the WAN host; VLAN 26 and untagged
    # frames from the LAN host belong to no end-point and are dropped
    assert frame_through(gw, 0, 25, 1, "m25") == (None, ETH_TYPE)
    assert frame_through(gw, 0, 26, 1, "m26", wait=1) is None
    assert frame_through(gw, 0, 0, 1, "m0", wait=1) is None
    # the way back gets the tag pushed
    assert frame_through(gw, 1, 0, 0, "back") == (25, ETH_TYPE)
    c = {r["id"]: r["packets"] for r in d.api("GET", "/NF-FG/status/v")[1]["flow-rules"]}
    assert c["r0"] >= 1 and c["r3"] >= 1, c
    # another graph may use another VLAN of the same interface, not the same one, nor the
    # whole interface
    for ep0, words in (({"type": "vlan", "vlan": {"vlan-id": "25", "if-name": "eth0"}},
                        "VLAN 25"),
                       ({"type": "interface", "interface": {"if-name": "eth0"}}, "eth0")):
        g2 = bridge_graph("w", ("eth0", "eth2"))
        g2["forwarding-graph"]["end-points"][0] = dict(ep0, id="ep0")
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", "/NF-FG/w", g2)
        assert e.value.status == 409 and words in e.value.body["error"], e.value.body
    assert d.api("PUT", "/NF-FG/w", _vlan_graph("w", "26", "eth2"))[0] == 201
    assert frame_through(gw, 0, 26, 2, "m26w") == (None, ETH_TYPE)
    assert frame_through(gw, 2, 0, 0, "back26") == (26, ETH_TYPE)
    assert frame_through(gw, 0, 25, 2, "m25w", wait=1) is None, "VLAN 25 is graph v's"
    assert d.api("DELETE", "/NF-FG/v")[0] == 204
    assert frame_through(gw, 0, 25, 1, "gone", wait=1) is None
    assert frame_through(gw, 0, 26, 2, "still") == (None, ETH_TYPE), "graph w is untouched"
    assert d.api("DELETE", "/NF-FG/w")[0] == 204


def _tag_actions_graph():
    """eth2 → eth3 pushing VLAN 30, eth3 → eth2 popping it (actions without an NF)."""
    g = bridge_graph("t", ("eth2", "eth3"))
    fg = g["forwarding-graph"]
    fg["VNFs"] = []
    fg["big-switch"]["flow-rules"] = [
        {"id": "push", "priority": 5, "match": {"port_in": "endpoint:ep0"},
         "actions": [{"push_vlan": "30"}, {"output_to_port": "endpoint:ep1"}]},
        {"id": "pop", "priority": 5, "match": {"port_in": "endpoint:ep1", "vlan_id": "30"},
         "actions": [{"pop_vlan": True}, {"output_to_port": "endpoint:ep0"}]}]
    return g


def test_push_and_pop_vlan_actions(gateway, daemon):
    """ovs in its flows; tc with flower and act_vlan (a router's kernel, ``make
    test-kernel``); nft cannot."""
    gw, d = gateway, daemon
    tc_can = netlab.kernel_has("flower") and netlab.kernel_has("act_vlan")
    if gw.backend == "nft" or (gw.backend == "tc" and not tc_can):
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", "/NF-FG/t", _tag_actions_graph())
        assert e.value.status == 422, e.value.body
        assert e.value.body["path"].startswith("$.forwarding-graph.big-switch.flow-rules[")
        assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == netlab.EMPTY
        if gw.backend == "tc":
            assert "act_vlan" in e.value.body["error"], e.value.body
            netlab.need_kernel("flower", "act_vlan")
        return
    assert d.api("PUT", "/NF-FG/t", _tag_actions_graph())[0] == 201
    # only VLAN 30 matches the way back
    assert frame_through(gw, 2, 0, 3, "push") == (30, ETH_TYPE)
    assert frame_through(gw, 3, 30, 2, "pop") == (None, ETH_TYPE)
    assert frame_through(gw, 3, 31, 2, "pop31", wait=1) is None
    c = {r["id"]: r["packets"] for r in d.api("GET", "/NF-FG/status/t")[1]["flow-rules"]}
    assert c["push"] >= 1 and c["pop"] >= 1, c


def test_l4_match_fields_steer_only_what_they_name(gateway, daemon):
    """ARP and ICMP both ways, TCP only to port 5001: 5002 is dropped."""
    gw, d = gateway, daemon
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    rules = []
    fwd = [("endpoint:ep0", "vnf:nf1:inout:0"), ("vnf:nf1:inout:1", "endpoint:ep1")]
    back = [("endpoint:ep1", "vnf:nf1:inout:1"), ("vnf:nf1:inout:0", "endpoint:ep0")]
    for i, (a, b) in enumerate(fwd + back):
        rules.append({"id": f"arp{i}", "priority": 100, "actions": [{"output_to_port": b}],
                      "match": {"port_in": a, "ether_type": "0x0806"}})
        rules.append({"id": f"icmp{i}", "priority": 100, "actions": [{"output_to_port": b}],
                      "match": {"port_in": a, "ether_type": "0x800", "protocol": "1"}})
    for i, (a, b) in enumerate(fwd):
        rules.append({"id": f"tcp{i}", "priority": 200, "actions": [{"output_to_port": b}],
                      "match": {"port_in": a, "ether_type": "0x800", "protocol": "0x06",
                                "ipv4_dst": "10.20.0.2", "dest_port": "5001"}})
    for i, (a, b) in enumerate(back):
        rules.append({"id": f"tcpback{i}", "priority": 200, "actions": [{"output_to_port": b}],
                      "match": {"port_in": a, "ether_type": "0x800", "protocol": "6",
                                "ipv4_src": "10.20.0.0", "ipv4_src_mask": "255.255.255.0",
                                "source_port": "5001"}})
    d.api("PUT", "/NF-FG/g1", bridge_graph(rules=rules))
    for port in (5001, 5002):
        gw.lab.spawn(gw.hosts[1], "nc", "-l", "-k", "-p", str(port))
    assert gw.ping(0, "10.20.0.2")
    nc = ["nc", "-z", "-w", "2", "10.20.0.2"]
    assert gw.lab.run(gw.hosts[0], *nc, "5001").returncode == 0
    assert gw.lab.run(gw.hosts[0], *nc, "5002").returncode != 0
    c = {r["id"]: r["packets"] for r in d.api("GET", "/NF-FG/status/g1")[1]["flow-rules"]}
    assert c["tcp0"] > 0 and c["tcpback0"] > 0 and c["icmp0"] > 0


def test_capabilities_say_what_the_backend_carries(gateway, daemon):
    caps = daemon.api("GET", "/capabilities")[1]["infrastructure"]
    st = caps["steering"]
    assert st["name"] == gateway.backend
    assert "interface" in st["endpoint-types"]
    assert ("vlan" in st["endpoint-types"]) == (gateway.backend == "ovs"
                                                 or netlab.kernel_has("vlan"))
    gre = "gre-tunnel" in st["endpoint-types"]
    assert gre != ("gre-tunnel" in st["refused-endpoint-types"])
    assert gre or "gretap" in st["refused-endpoint-types"]["gre-tunnel"]
    assert gre or gateway.backend != "ovs"            # userspace OVS tunnels need no kernel GRE
    assert json.dumps(st)                                      # JSON-able


def _ep_graph(gid, eps, nf=True):
    """ep0 ↔ (bridge NF ↔) ep1 in both directions; ``eps`` are end-point objects."""
    g = bridge_graph(gid)
    fg = g["forwarding-graph"]
    fg["end-points"] = [dict(ep, id=f"ep{i}") for i, ep in enumerate(eps)]
    if not nf:
        fg["VNFs"] = []
        fg["big-switch"]["flow-rules"] = [
            {"id": "a", "priority": 1, "match": {"port_in": "endpoint:ep0"},
             "actions": [{"output_to_port": "endpoint:ep1"}]},
            {"id": "b", "priority": 1, "match": {"port_in": "endpoint:ep1"},
             "actions": [{"output_to_port": "endpoint:ep0"}]}]
    return g


def _iface(name):
    return {"type": "interface", "interface": {"if-name": name}}


def test_internal_group_joins_two_graphs(gateway, daemon):
    gw, d = gateway, daemon
    gw.addr(0, "10.20.0.1/24")
    gw.addr(1, "10.20.0.2/24")
    internal = {"type": "internal", "internal": {"internal-group": "backbone"}}
    d.api("PUT", "/NF-FG/a", _ep_graph("a", [_iface("eth0"), internal]))
    assert not gw.ping(0, "10.20.0.2", count=1), "half a path carries nothing"
    d.api("PUT", "/NF-FG/b", _ep_graph("b", [internal, _iface("eth1")]))
    assert gw.ping(0, "10.20.0.2"), "graph a → group 'backbone' → graph b"
    o = netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True)
    assert len([v for v in o["veths"] if v.startswith("ulg")]) == 1, o   # one segment
    d.api("DELETE", "/NF-FG/b")
    assert not gw.ping(0, "10.20.0.2", count=1)
    d.api("DELETE", "/NF-FG/a")
    assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == netlab.EMPTY


def test_host_stack_endpoint_reaches_the_node(gateway, daemon):
    gw, d = gateway, daemon
    gw.addr(0, "10.30.0.1/24")
    host = {"type": "host-stack", "host-stack": {"configuration": "static",
                                                  "ipv4": "10.30.0.254/24"}}
    d.api("PUT", "/NF-FG/h", _ep_graph("h", [_iface("eth0"), host], nf=False))
    assert gw.ping(0, "10.30.0.254"), "the LAN host reaches the node's own stack"
    addrs = netlab.sh("ip", "-n", gw.ns, "-j", "addr", "show").stdout
    assert "10.30.0.254" in addrs
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/x", _ep_graph("x", [_iface("eth1"), {
            "type": "host-stack", "host-stack": {"configuration": "dhcp"}}], nf=False))
    assert e.value.status == 422 and "dhcp" in e.value.body["error"]
    d.api("DELETE", "/NF-FG/h")
    assert "10.30.0.254" not in netlab.sh("ip", "-n", gw.ns, "-j", "addr", "show").stdout


MATCHES = [
    {"ether_type": "0x0806", "arp_opcode": "1", "arp_spa": "10.0.0.1", "arp_tpa": "10.0.0.0",
     "arp_tpa_mask": "255.255.255.0", "arp_sha": "02:00:00:00:00:01"},
    {"source_mac": "02:00:00:00:00:01", "dest_mac": "02:00:00:00:00:00",
     "eth_dst_mask": "ff:ff:ff:ff:ff:00"},
    {"ether_type": "0x800", "ipv4_src": "10.1.0.0", "ipv4_src_mask": "255.255.0.0",
     "ipv4_dst": "10.2.3.4", "protocol": "6", "source_port": "1024", "dest_port": "80"},
    {"ether_type": "0x800", "protocol": "17", "dest_port": "53", "ip_dscp": "46", "ip_ecn": "1"},
    {"icmpv4_type": "8", "icmpv4_code": "0"},
    {"sctp_dst": "3868"},
    {"ether_type": "0x86dd", "ipv6_src": "2001:db8::1", "protocol": "6", "dest_port": "443"},
    {"icmpv6_type": "128"},
    {"ether_type": "0x88b5"},
    {},
]


@pytest.fixture
def scratch_port():
    """A veth pair with clsact in a namespace of its own (removed afterwards)."""
    ns = f"utflw{os.getpid()}"
    netlab.sh("ip", "netns", "add", ns)
    try:
        netlab.sh("ip", "-n", ns, "link", "add", "a0", "type", "veth", "peer", "name", "b0")
        netlab.sh("tc", "-n", ns, "qdisc", "add", "dev", "a0", "clsact")
        yield ns
    finally:
        netlab.sh("ip", "netns", "del", ns, check=False)


def test_tc_vlan_filters_parse(scratch_port):
    """flower with act_vlan: VLAN matches (the inner ether type after the tag) and push/pop
    actions in their order become filters tc takes (loaded where the kernel has them)."""
    from unlite.model import parse_graph
    from unlite.network import Attach
    from unlite.network.tc import TcSwitch
    sw = TcSwitch(classifier="flower", vlan_action=True)
    out = [{"output_to_port": "endpoint:b"}]
    rules = [({"vlan_id": 30}, [{"pop_vlan": True}] + out),
             ({"vlan_id": 30, "vlan_pcp": 5, "ipv4_dst": "10.0.0.1", "protocol": "6",
               "dest_port": "80"}, [{"pop_vlan": True}] + out),
             ({}, [{"output_to_port": "endpoint:a"}, {"push_vlan": "7"}] + out)]
    g = parse_graph({"forwarding-graph": {"id": "t", "end-points": [
        {"id": "a", "type": "interface", "interface": {"if-name": "a0"}},
        {"id": "b", "type": "interface", "interface": {"if-name": "b0"}}],
        "big-switch": {"flow-rules": [
            {"id": f"v{i}", "priority": 10, "match": {"port_in": "endpoint:a", **m},
             "actions": acts} for i, (m, acts) in enumerate(rules)]}}})
    sw.check(g)
    attach = {"endpoint:a": Attach("a0"), "endpoint:b": Attach("b0")}
    specs = [sw.rule_text(r, attach) for r in g.rules]
    assert specs[0].startswith("protocol 802.1Q flower vlan_id 30 action vlan pop action mirred")
    assert "vlan_prio 5 vlan_ethtype 0x0800 ip_proto tcp" in specs[1], specs[1]
    assert specs[2].endswith("action mirred egress mirror dev a0 action vlan push id 7 "
                             "action mirred egress redirect dev b0"), specs[2]
    loads = netlab.kernel_has("flower") and netlab.kernel_has("act_vlan")
    for pref, spec in enumerate(specs, 1):
        p = subprocess.run(["tc", "-n", scratch_port, "filter", "add", "dev", "a0", "ingress",
                            "pref", str(pref), *spec.split()], capture_output=True, text=True)
        if loads:
            assert p.returncode == 0, (spec, p.stderr)
        else:
            assert p.returncode and "not found" in p.stderr, (spec, p.stderr)
    assert TcSwitch(classifier="flower", vlan_action=False).unsupported_fields["vlan_id"]
    assert "pop_vlan" not in TcSwitch(classifier="u32", vlan_action=True).supported_actions


@pytest.mark.parametrize("classifier", ["u32", "flower"])
def test_tc_filters_for_every_match_field_parse(scratch_port, classifier):
    """Every match field the tc backend accepts becomes a filter tc takes. u32 exists here,
    so its filters must load; this kernel has no flower, so a flower filter must get past
    tc's own parser and fail only at the kernel ("classifier not found") — where flower
    exists, it loads."""
    from unlite.model import parse_graph
    from unlite.network import Attach
    from unlite.network.tc import TcSwitch
    sw = TcSwitch(classifier=classifier)
    rules = [{"id": f"m{i}", "priority": 10, "match": {"port_in": "endpoint:a", **m},
              "actions": [{"output_to_port": "endpoint:b"}, {"output_to_port": "endpoint:a"}]}
             for i, m in enumerate(MATCHES)]
    g = parse_graph({"forwarding-graph": {"id": "t", "end-points": [
        {"id": "a", "type": "interface", "interface": {"if-name": "a0"}},
        {"id": "b", "type": "interface", "interface": {"if-name": "b0"}}],
        "big-switch": {"flow-rules": rules}}})
    sw.check(g)
    attach = {"endpoint:a": Attach("a0"), "endpoint:b": Attach("b0")}
    for pref, rule in enumerate(g.rules, 1):
        spec = sw.rule_text(rule, attach)
        p = subprocess.run(["tc", "-n", scratch_port, "filter", "add", "dev", "a0", "ingress",
                            "pref", str(pref), *spec.split()], capture_output=True, text=True)
        if classifier == "flower" and p.returncode:
            assert "classifier not found" in p.stderr, (spec, p.stderr)
        else:
            assert p.returncode == 0, (spec, p.stderr)


def test_several_outputs_copy_to_each(gateway, daemon):
    """One rule, two output_to_port actions: both hosts get the frame; the way back is
    steered only from eth1, so eth2's host stays a listener."""
    gw, d = gateway, daemon
    eps = [_iface("eth0"), _iface("eth1"), _iface("eth2")]
    g = _ep_graph("m", eps[:2], nf=False)
    fg = g["forwarding-graph"]
    fg["end-points"].append(dict(eps[2], id="ep2"))
    fg["big-switch"]["flow-rules"][0]["actions"].append({"output_to_port": "endpoint:ep2"})
    d.api("PUT", "/NF-FG/m", g)
    rxs = [subprocess.Popen(["ip", "netns", "exec", gw.hosts[h], sys.executable, "-c", FRAMES,
                             "recv", "eth0", "0", "copy", "3"], stdout=subprocess.PIPE, text=True)
           for h in (1, 2)]
    try:
        for rx in rxs:
            assert rx.stdout.readline().strip() == "ready"
        netlab.sh("ip", "netns", "exec", gw.hosts[0], sys.executable, "-c", FRAMES, "send",
                  "eth0", "0", "copy")
        outs = [rx.communicate(timeout=10)[0] for rx in rxs]
    finally:
        for rx in rxs:
            rx.kill()
            rx.wait()
    assert all(o.startswith("got") for o in outs), outs
    assert frame_through(gw, 2, 0, 0, "nope", wait=1) is None     # eth2 → nothing steered


def test_a_trusted_port_sets_the_source_mac_of_what_the_nf_sends(gateway, daemon):
    """The UN's trusted port: whatever the NF sends from it (here a bridge NF forwarding
    the LAN host's frames) reaches the WAN with the port's own MAC as source; the other
    way, and from an untrusted port, frames keep theirs. tc needs act_pedit (a router's
    kernel has it; ``make test-kernel``), else the graph is refused saying so."""
    gw, d = gateway, daemon
    trusted = "02:aa:bb:cc:dd:01"
    g = bridge_graph("t")
    g["forwarding-graph"]["VNFs"][0]["ports"][1].update(trusted=True, mac=trusted)
    if gw.backend == "tc" and not netlab.kernel_has("pedit"):
        with pytest.raises(netlab.ApiError) as e:
            d.api("PUT", "/NF-FG/t", g)
        assert e.value.status == 422 and "act_pedit" in e.value.body["error"], e.value.body
        assert e.value.body["path"] == "$.forwarding-graph.big-switch.flow-rules[2]" \
            ".match.port_in"
        assert netlab.unlite_objects(gw.ns, gw.ovs, graphs_only=True) == netlab.EMPTY
        assert d.api("GET", "/capabilities")[1]["infrastructure"]["steering"][
            "trusted-ports"] is False
        netlab.need_kernel("pedit")
    assert d.api("PUT", "/NF-FG/t", g)[0] == 201
    lan_mac = netlab.sh("ip", "-n", gw.hosts[0], "-j", "link", "show", "eth0").stdout
    lan_mac = json.loads(lan_mac)[0]["address"]
    wan_mac = json.loads(netlab.sh("ip", "-n", gw.hosts[1], "-j", "link", "show",
                                   "eth0").stdout)[0]["address"]
    assert frame_through(gw, 0, 0, 1, "out", src=True) == (None, ETH_TYPE, trusted)
    assert frame_through(gw, 1, 0, 0, "back", src=True) == (None, ETH_TYPE, wan_mac)
    assert lan_mac != trusted
    assert d.api("GET", "/capabilities")[1]["infrastructure"]["steering"][
        "trusted-ports"] is True
    assert d.api("DELETE", "/NF-FG/t")[0] == 204
