"""Unit tests of unlite.model (the NF-FG parser/validator): python3 -m pytest tests/test_model.py"""
import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from unlite.model import (DEFAULT_PRIORITY, MATCH_FIELDS, Action, Control, Endpoint,  # noqa: E402
                          Graph, Match, ModelError, Port, PortRef, Rule, VNF, parse_graph,
                          validate_id)

EXAMPLES = Path(__file__).resolve().parent / "data" / "un-examples"   # copied unchanged
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []
FG = "$.forwarding-graph"
RULE0 = f"{FG}.big-switch.flow-rules[0]"
DELETE = object()


def base():
    """A valid graph using most features; tests edit a fresh copy."""
    return {"forwarding-graph": {
        "id": "g1", "name": "test graph",
        "VNFs": [{"id": "fw", "name": "firewall", "vnf_template": "firewall.json",
                  "ports": [{"id": "inout:0", "name": "data-port"},
                            {"id": "inout:1", "name": "data-port", "mac": "02:00:00:00:00:01",
                             "unify-ip": "10.0.0.1/24", "trusted": True}],
                  "unify-env-variables": [{"variable": "MODE=strict"}],
                  "unify-control": [{"host-tcp-port": 2222, "vnf-tcp-port": 22}]}],
        "end-points": [
            {"id": "in", "name": "ingress", "type": "interface", "interface": {"if-name": "eth1"}},
            {"id": "out", "name": "egress", "type": "interface", "interface": {"if-name": "eth2"}}],
        "big-switch": {"flow-rules": [
            {"id": "r1", "priority": 10, "match": {"port_in": "endpoint:in"},
             "actions": [{"output_to_port": "vnf:fw:inout:0"}]},
            {"id": "r2", "match": {"port_in": "vnf:fw:inout:1"},
             "actions": [{"output_to_port": "endpoint:out"}]}]}}}


def edit(doc, where, value=DELETE):
    """Set (or delete) the value at a '/'-separated path below forwarding-graph."""
    keys = [int(k) if k.isdigit() else k for k in where.split("/")]
    node = doc["forwarding-graph"]
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return doc


def parse_with(*edits, graph_id=None):
    doc = base()
    for where, value in edits:
        edit(doc, where, value)
    return parse_graph(doc, graph_id)


def fails(doc, path, fragment="", graph_id=None):
    with pytest.raises(ModelError) as info:
        parse_graph(doc, graph_id)
    err = info.value
    assert err.path == path, str(err)
    assert fragment.lower() in err.message.lower(), str(err)
    assert err.status == 400
    assert str(err) == f"{err.path}: {err.message}"
    return err


def fails_with(edits, path, fragment=""):
    doc = base()
    for where, value in edits:
        edit(doc, where, value)
    return fails(doc, path, fragment)


def match_graph(**fields):
    return parse_with(("big-switch/flow-rules/0/match", {"port_in": "endpoint:in", **fields}))


# ------------------------------------------------------------------ the UN's own examples

@pytest.mark.parametrize("path", EXAMPLE_FILES or [None],
                         ids=lambda p: p.name if p else "missing")
def test_un_example_parses(path):
    if path is None:
        pytest.skip(f"UN examples not found in {EXAMPLES}")
    text = path.read_bytes()
    doc = json.loads(text)
    graph = parse_graph(text, "url-id")
    assert graph.id == "url-id" and graph.doc["forwarding-graph"]["id"] == "url-id"
    assert parse_graph(doc, "url-id") == graph
    assert json.loads(text) == doc  # the input is not modified
    fg = doc["forwarding-graph"]
    assert len(graph.vnfs) == len(fg.get("VNFs", []))
    assert len(graph.endpoints) == len(fg["end-points"])
    assert len(graph.rules) == len(fg["big-switch"]["flow-rules"])
    assert not [w for w in graph.warnings if "unknown" in w or "read as" in w]
    for rule, raw in zip(graph.rules, fg["big-switch"]["flow-rules"]):
        assert str(rule.match.port_in) == raw["match"]["port_in"]
        assert [str(a.port) for a in rule.actions] == [a["output_to_port"] for a in raw["actions"]]
        assert rule.priority == raw.get("priority", DEFAULT_PRIORITY)
    for ep in graph.endpoints:
        assert ep.type == "interface" and ep.ifname
    if "id" in fg:
        assert parse_graph(text).id == fg["id"]
    else:
        fails(doc, f"{FG}.id", "graph id is missing")


def test_un_examples_specific_values():
    if not EXAMPLE_FILES:
        pytest.skip(f"UN examples not found in {EXAMPLES}")
    g = parse_graph((EXAMPLES / "use-cases-sigcomm-native-nffgFullScenario.json").read_text())
    assert g.id == "00000001" and g.name == "Forwarding graph"
    assert [v.id for v in g.vnfs] == ["nativeBr", "nativeNat", "nDHCP"]
    assert g.vnf("nativeNat").template == "nativeNat.json"
    assert g.endpoint("00000004").params == {"if-name": "eth0.2", "node-id": "10.0.0.1"}
    assert g.rules[0].priority == DEFAULT_PRIORITY
    g = parse_graph((EXAMPLES / "orchestrator-config-nf-fg_vnft5_example.json").read_text(), "x")
    assert len(g.vnf("00000001").ports) == 1
    assert g.rules[4].actions[0].port == PortRef("vnf", "00000001", "inout:0")


def test_doc_example_from_nffg_md():
    text = """{"forwarding-graph": {
      "id": "00000001", "name": "Forwarding graph",
      "VNFs": [{"id": "00000001", "name": "firewall", "vnf_template": "firewall.json",
                "ports": [{"id": "inout:0", "name": "data-port"},
                          {"id": "inout:1", "name": "data-port", "mac": "aa:bb:cc:11:22:33",
                           "unify-ip": "10.0.0.1/24"}],
                "unify-env-variables": [{"variable": "block=tcp"}]}],
      "end-points": [{"id": "00000001", "name": "ingress", "type": "interface",
                      "interface": {"if-name": "eth1"}},
                     {"id": "00000002", "name": "egress", "type": "vlan",
                      "vlan": {"vlan-id": "25", "if-name": "eth2"}}],
      "big-switch": {"flow-rules": [
         {"id": "00000001", "priority": 10,
          "match": {"port_in": "endpoint:00000001", "ether_type": "0x800",
                    "protocol": "0x06", "dest_port": "80"},
          "actions": [{"output_to_port": "vnf:00000001:inout:0"}]}]}}}"""
    g = parse_graph(text)
    rule = g.rules[0]
    assert rule.match.fields == (("dest_port", 80), ("ether_type", 2048), ("protocol", 6))
    assert g.endpoint("00000002").params == {"vlan-id": 25, "if-name": "eth2"}
    assert g.vnfs[0].env == (("block", "tcp"),)
    assert g.warnings == ()


def test_un_readme_forms():
    """README_NF-FG.md writes the interface name as "interface" and VLAN ids in hex."""
    doc = base()
    edit(doc, "end-points/0/interface", {"interface": "eth1"})
    edit(doc, "end-points/1", {"id": "out", "name": "egress", "type": "vlan",
                               "vlan": {"vlan-id": "25", "interface": "eth1"}})
    edit(doc, "big-switch/flow-rules/0/actions",
         [{"push_vlan": "0x25"}, {"output_to_port": "vnf:fw:inout:0"}])
    edit(doc, "big-switch/flow-rules/1/actions",
         [{"pop_vlan": True}, {"output_to_port": "endpoint:out"}])
    g = parse_graph(doc)
    assert g.endpoint("in").ifname == "eth1"
    assert g.endpoint("out").params == {"vlan-id": 25, "if-name": "eth1"}
    assert g.rules[0].actions == (Action("push_vlan", vlan=0x25),
                                  Action("output", PortRef("vnf", "fw", "inout:0")))
    assert g.rules[1].actions[0] == Action("pop_vlan")
    assert g.warnings == ()


# ------------------------------------------------------------------ graph level

def test_base_graph_fully():
    g = parse_graph(base())
    assert (g.id, g.name, g.warnings) == ("g1", "test graph", ())
    fw = g.vnf("fw")
    assert fw == VNF("fw", "firewall", "firewall.json",
                     (Port("inout:0", "data-port", None, None, None),
                      Port("inout:1", "data-port", "02:00:00:00:00:01", "10.0.0.1/24", True)),
                     (("MODE", "strict"),), (Control(2222, 22),))
    assert fw.path == f"{FG}.VNFs[0]" and fw.ports[1].path == f"{FG}.VNFs[0].ports[1]"
    assert fw.control[0].path == f"{FG}.VNFs[0].unify-control[0]"
    assert fw.port("inout:1").mac == "02:00:00:00:00:01" and fw.port("nope") is None
    assert g.vnf("nope") is None and g.endpoint("nope") is None
    assert g.endpoint("in") == Endpoint("in", "ingress", "interface", {"if-name": "eth1"})
    assert g.rules[0] == Rule("r1", 10, Match(PortRef("endpoint", "in")),
                              (Action("output", PortRef("vnf", "fw", "inout:0")),))
    assert g.rules[1].priority == DEFAULT_PRIORITY == 32768
    assert g.rules[1].path == f"{FG}.big-switch.flow-rules[1]"


def test_graph_id_from_url_wins():
    g = parse_graph(base(), "other")
    assert g.id == "other" and g.doc["forwarding-graph"]["id"] == "other"
    assert any("differs" in w and "'g1'" in w and "'other'" in w for w in g.warnings)
    assert parse_graph(base(), "g1").warnings == ()
    doc = edit(base(), "id")
    g = parse_graph(doc, "from-url")
    assert g.id == "from-url" and g.warnings == ()
    assert list(g.doc["forwarding-graph"])[0] == "id"
    assert "id" not in doc["forwarding-graph"]  # input untouched
    fails(edit(base(), "id"), f"{FG}.id", "graph id is missing")
    fails(edit(base(), "id", None), f"{FG}.id", "graph id is missing")
    fails(base(), "graph_id", "invalid graph id", graph_id="a;b")
    fails(base(), "graph_id", "must be a string", graph_id=5)
    fails(edit(base(), "id", "bad id"), f"{FG}.id", "invalid graph id", graph_id="good")


def test_doc_is_a_deep_copy():
    doc = base()
    g = parse_graph(doc)
    assert g.doc == doc and g.doc is not doc
    g.doc["forwarding-graph"]["VNFs"][0]["name"] = "changed"
    assert doc["forwarding-graph"]["VNFs"][0]["name"] == "firewall"


def test_unknown_fields_are_kept_and_warned():
    doc = base()
    doc["extra"] = 1
    edit(doc, "description", "free text")
    edit(doc, "VNFs/0/groups", ["g"])
    edit(doc, "VNFs/0/ports/0/speed", "1G")
    edit(doc, "end-points/0/interface/mtu", 1500)
    edit(doc, "big-switch/flow-rules/0/cookie", "x")
    edit(doc, "big-switch/extra", {})
    g = parse_graph(doc)
    assert g.doc["extra"] == 1 and g.doc["forwarding-graph"]["description"] == "free text"
    expected = [("'extra'", "$"), ("'description'", FG), ("'groups'", f"{FG}.VNFs[0]"),
                ("'speed'", f"{FG}.VNFs[0].ports[0]"), ("'mtu'", f"{FG}.end-points[0].interface"),
                ("'cookie'", RULE0), ("'extra'", f"{FG}.big-switch")]
    for key, path in expected:
        assert f"unknown field {key} at {path} ignored" in g.warnings, g.warnings
    assert len(g.warnings) == len(expected)


def test_key_case_slips_are_read_with_a_warning():
    doc = base()
    fg = doc["forwarding-graph"]
    fg["vnfs"] = fg.pop("VNFs")
    edit(doc, "end-points/0/interface", {"If-Name": "eth1"})
    edit(doc, "big-switch/flow-rules/0/match", {"port_in": "endpoint:in", "Ether_Type": "0x800"})
    edit(doc, "big-switch/flow-rules/0/actions", [{"Output_to_port": "vnf:fw:inout:0"}])
    g = parse_graph(doc)
    assert g.vnf("fw") and g.endpoint("in").ifname == "eth1"
    assert g.rules[0].match.get("ether_type") == 0x800
    assert f"key 'vnfs' read as 'VNFs' at {FG}" in g.warnings
    assert f"key 'If-Name' read as 'if-name' at {FG}.end-points[0].interface" in g.warnings
    assert f"key 'Ether_Type' read as 'ether_type' at {RULE0}.match" in g.warnings
    assert f"key 'Output_to_port' read as 'output_to_port' at {RULE0}.actions[0]" in g.warnings
    # an exact key wins over a case variant, which is then an unknown field
    doc = base()
    edit(doc, "end-points/0/interface", {"if-name": "eth1", "IF-NAME": "eth9"})
    g = parse_graph(doc)
    assert g.endpoint("in").ifname == "eth1" and any("'IF-NAME'" in w for w in g.warnings)
    # two variants and no exact key: ambiguous
    fails_with([("end-points/0/interface", {"IF-NAME": "eth1", "If-Name": "eth1"})],
               f"{FG}.end-points[0].interface.If-Name", "ambiguous")


def test_empty_and_minimal_graphs():
    g = parse_graph({"forwarding-graph": {"id": "empty"}})
    assert (g.vnfs, g.endpoints, g.rules, g.name) == ((), (), (), None)
    g = parse_graph({"forwarding-graph": {"id": "e", "big-switch": {}, "VNFs": None}})
    assert g.rules == () and g.vnfs == ()
    g = parse_with(("VNFs/0/ports", []), ("big-switch", {"flow-rules": []}))
    assert g.vnf("fw").ports == ()


# ------------------------------------------------------------------ equality for diffs

def test_parsed_objects_compare_and_hash_by_value_not_path():
    a = parse_graph(base())
    doc = base()
    fg = doc["forwarding-graph"]
    fg["VNFs"].insert(0, {"id": "other", "name": "nat", "ports": []})
    fg["end-points"].reverse()
    fg["big-switch"]["flow-rules"].reverse()
    b = parse_graph(doc)
    assert a.vnf("fw") == b.vnf("fw") and a.vnf("fw").path != b.vnf("fw").path
    assert hash(a.vnf("fw")) == hash(b.vnf("fw"))
    assert set(a.endpoints) == set(b.endpoints) and set(a.rules) == set(b.rules)
    assert a != b and a == parse_graph(json.dumps(base()))
    assert hash(a) == hash(parse_graph(base()))
    changed = parse_with(("VNFs/0/ports/1/unify-ip", "10.0.0.2/24"))
    assert changed.vnf("fw") != a.vnf("fw")
    assert changed.vnf("fw").ports[0] == a.vnf("fw").ports[0]


def test_endpoint_equality_uses_params():
    e1 = Endpoint("e", "n", "vlan", {"vlan-id": 5, "if-name": "eth0"}, "$.a")
    e2 = Endpoint("e", "n", "vlan", {"if-name": "eth0", "vlan-id": 5}, "$.b")
    e3 = Endpoint("e", "n", "vlan", {"if-name": "eth0", "vlan-id": 6})
    assert e1 == e2 and hash(e1) == hash(e2) and e1 != e3
    assert e1 != Endpoint("e", "other", "vlan", {"vlan-id": 5, "if-name": "eth0"})
    assert isinstance(e1.params, dict) and e1.params["vlan-id"] == 5
    src = {"if-name": "eth0"}
    e4 = Endpoint("i", None, "interface", src)
    src["if-name"] = "eth1"
    assert e4.ifname == "eth0"  # a copy: later edits of the input dict do not leak in
    assert len({e1, e2, e3}) == 2


# ------------------------------------------------------------------ endpoints

def test_endpoint_types():
    eps = [
        {"id": "i", "type": "interface", "interface": {"if-name": "eth0.2", "node-id": "10.0.0.1"}},
        {"id": "v", "type": "vlan", "vlan": {"vlan-id": "0x19", "if-name": "eth2"}},
        {"id": "v2", "type": "vlan", "vlan": {"vlan-id": 4094, "if-name": "eth2"}},
        {"id": "g", "type": "gre-tunnel", "gre-tunnel": {
            "local-ip": "10.0.0.1", "remote-ip": "10.0.0.2", "gre-key": "0xffffffff",
            "ttl": "64", "secure": "true", "interface": "eth1"}},
        {"id": "g6", "type": "gre-tunnel", "gre-tunnel": {
            "local-ip": "2001:DB8::1", "remote-ip": "2001:db8::2"}},
        {"id": "n", "type": "internal", "internal": {"internal-group": "lan-1"}},
        {"id": "h", "type": "host-stack", "host-stack": {"configuration": "static",
                                                         "ipv4": "192.168.1.1/24"}},
        {"id": "d", "type": "host-stack", "host-stack": {"configuration": "DHCP"}},
        {"id": "p", "type": "host-stack", "host-stack": {"configuration": "pppoe"}},
    ]
    g = parse_graph({"forwarding-graph": {"id": "x", "end-points": eps}})
    p = {e.id: (e.type, e.params) for e in g.endpoints}
    assert p["i"] == ("interface", {"if-name": "eth0.2", "node-id": "10.0.0.1"})
    assert p["v"] == ("vlan", {"vlan-id": 25, "if-name": "eth2"})
    assert p["v2"][1]["vlan-id"] == 4094
    assert p["g"] == ("gre-tunnel", {"local-ip": "10.0.0.1", "remote-ip": "10.0.0.2",
                                     "gre-key": 2**32 - 1, "ttl": 64, "secure": True,
                                     "if-name": "eth1"})
    assert p["g6"][1] == {"local-ip": "2001:db8::1", "remote-ip": "2001:db8::2"}
    assert p["n"] == ("internal", {"internal-group": "lan-1"})
    assert p["h"] == ("host-stack", {"configuration": "static", "ipv4": "192.168.1.1/24"})
    assert p["d"] == ("host-stack", {"configuration": "dhcp"})
    assert p["p"] == ("host-stack", {"configuration": "pppoe"})
    assert [g.endpoint(i).ifname for i in ("i", "v", "g", "n", "h")] == \
        ["eth0.2", "eth2", None, None, None]
    assert g.warnings == ()


def test_host_stack_ipv4_key_slip_warns():
    g = parse_graph({"forwarding-graph": {"id": "x", "end-points": [
        {"id": "h", "type": "host-stack",
         "host-stack": {"configuration": "static", "IPv4": "10.1.1.1/16"}}]}})
    assert g.endpoint("h").params["ipv4"] == "10.1.1.1/16"
    assert any("key 'IPv4' read as 'ipv4'" in w and f"{FG}.end-points[0].host-stack" in w
               for w in g.warnings)


EP = f"{FG}.end-points[0]"


@pytest.mark.parametrize("endpoint, path, fragment", [
    ({"id": "e", "type": "interface"}, f"{EP}.interface", "missing"),
    ({"id": "e", "type": "bogus", "bogus": {}}, f"{EP}.type", "interface, vlan, gre-tunnel, internal, host-stack"),
    ({"id": "e", "type": "Interface", "interface": {"if-name": "eth0"}}, f"{EP}.type", "unknown endpoint type"),
    ({"id": "e", "interface": {"if-name": "eth0"}}, f"{EP}.type", "missing"),
    ({"id": "e", "type": 3}, f"{EP}.type", "must be a string"),
    ({"type": "interface", "interface": {"if-name": "eth0"}}, f"{EP}.id", "missing"),
    ({"id": "e;reboot", "type": "interface", "interface": {"if-name": "eth0"}}, f"{EP}.id", "invalid endpoint id"),
    ({"id": "e", "name": 5, "type": "interface", "interface": {"if-name": "eth0"}}, f"{EP}.name", "string"),
    ({"id": "e", "name": "a\nb", "type": "interface", "interface": {"if-name": "eth0"}}, f"{EP}.name", "control"),
    ({"id": "e", "type": "interface", "interface": "eth0"}, f"{EP}.interface", "must be an object"),
    ({"id": "e", "type": "interface", "interface": {}}, f"{EP}.interface.if-name", "missing"),
    ({"id": "e", "type": "interface", "interface": {"if-name": "eth0;reboot"}}, f"{EP}.interface.if-name", "invalid interface name"),
    ({"id": "e", "type": "interface", "interface": {"if-name": "abcdefghijklmnop"}}, f"{EP}.interface.if-name", "1-15"),
    ({"id": "e", "type": "interface", "interface": {"if-name": "."}}, f"{EP}.interface.if-name", "invalid"),
    ({"id": "e", "type": "interface", "interface": {"if-name": ".."}}, f"{EP}.interface.if-name", "invalid"),
    ({"id": "e", "type": "interface", "interface": {"if-name": "-x"}}, f"{EP}.interface.if-name", "invalid"),
    ({"id": "e", "type": "interface", "interface": {"if-name": "a/b"}}, f"{EP}.interface.if-name", "invalid"),
    ({"id": "e", "type": "interface", "interface": {"if-name": ""}}, f"{EP}.interface.if-name", "required field 'if-name'"),  # "" is absent
    ({"id": "e", "type": "interface", "interface": {"if-name": 0}}, f"{EP}.interface.if-name", "string"),
    ({"id": "e", "type": "interface", "interface": {"if-name": "eth0", "interface": "eth1"}}, f"{EP}.interface.interface", "contradicts"),
    ({"id": "e", "type": "interface", "interface": {"if-name": "eth0", "node-id": 1}}, f"{EP}.interface.node-id", "string"),
    ({"id": "e", "type": "vlan", "vlan": {"if-name": "eth0"}}, f"{EP}.vlan.vlan-id", "missing"),
    ({"id": "e", "type": "vlan", "vlan": {"vlan-id": "0", "if-name": "eth0"}}, f"{EP}.vlan.vlan-id", "1..4094"),
    ({"id": "e", "type": "vlan", "vlan": {"vlan-id": "4095", "if-name": "eth0"}}, f"{EP}.vlan.vlan-id", "1..4094"),
    ({"id": "e", "type": "vlan", "vlan": {"vlan-id": "ten", "if-name": "eth0"}}, f"{EP}.vlan.vlan-id", "not a number"),
    ({"id": "e", "type": "vlan", "vlan": {"vlan-id": 2.0, "if-name": "eth0"}}, f"{EP}.vlan.vlan-id", "integer"),
    ({"id": "e", "type": "vlan", "vlan": {"vlan-id": "5"}}, f"{EP}.vlan.if-name", "missing"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"remote-ip": "10.0.0.2"}}, f"{EP}.gre-tunnel.local-ip", "missing"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "10.0.0.1"}}, f"{EP}.gre-tunnel.remote-ip", "missing"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "10.0.0.256", "remote-ip": "10.0.0.2"}}, f"{EP}.gre-tunnel.local-ip", "invalid IP"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "10.0.0.1/24", "remote-ip": "10.0.0.2"}}, f"{EP}.gre-tunnel.local-ip", "invalid IP"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "10.0.0.1", "remote-ip": "::2"}}, f"{EP}.gre-tunnel.remote-ip", "same IP version"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "10.0.0.1", "remote-ip": "10.0.0.2", "gre-key": "4294967296"}}, f"{EP}.gre-tunnel.gre-key", "out of range"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "10.0.0.1", "remote-ip": "10.0.0.2", "ttl": 0}}, f"{EP}.gre-tunnel.ttl", "out of range"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "10.0.0.1", "remote-ip": "10.0.0.2", "secure": "maybe"}}, f"{EP}.gre-tunnel.secure", "true or false"),
    ({"id": "e", "type": "gre-tunnel", "gre-tunnel": {"local-ip": "fe80::1%eth0", "remote-ip": "fe80::2"}}, f"{EP}.gre-tunnel.local-ip", "scope"),
    ({"id": "e", "type": "internal", "internal": {}}, f"{EP}.internal.internal-group", "missing"),
    ({"id": "e", "type": "internal", "internal": {"internal-group": "../x"}}, f"{EP}.internal.internal-group", "invalid"),
    ({"id": "e", "type": "host-stack", "host-stack": {}}, f"{EP}.host-stack.configuration", "missing"),
    ({"id": "e", "type": "host-stack", "host-stack": {"configuration": "bootp"}}, f"{EP}.host-stack.configuration", "static, dhcp or pppoe"),
    ({"id": "e", "type": "host-stack", "host-stack": {"configuration": "static"}}, f"{EP}.host-stack.ipv4", "static"),
    ({"id": "e", "type": "host-stack", "host-stack": {"configuration": "static", "ipv4": "10.0.0.1"}}, f"{EP}.host-stack.ipv4", "prefix"),
    ({"id": "e", "type": "host-stack", "host-stack": {"configuration": "static", "ipv4": "2001:db8::1/64"}}, f"{EP}.host-stack.ipv4", "IPv4"),
    ({"id": "e", "type": "host-stack", "host-stack": {"configuration": "dhcp", "ipv4": "bad/8"}}, f"{EP}.host-stack.ipv4", "invalid"),
])
def test_bad_endpoints(endpoint, path, fragment):
    fails({"forwarding-graph": {"id": "x", "end-points": [endpoint]}}, path, fragment)


def test_duplicate_endpoint_id():
    fails_with([("end-points/1/id", "in")], f"{FG}.end-points[1].id", "duplicate endpoint id")


# ------------------------------------------------------------------ ids

@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a;b", "a;rm -rf /", "a b",
                                 "'a'", '"a"', "a\nb", "-a", "_a", "a$b", "é", "x" * 65,
                                 "a\x00"])
def test_bad_ids_everywhere(bad):
    if bad == "":                   # the body's graph id is optional: "" is absent (UN)
        assert parse_graph(edit(base(), "id", bad), "g").id == "g"
    else:
        fails(edit(base(), "id", bad), f"{FG}.id", "invalid graph id")
    fails(edit(base(), "VNFs/0/id", bad), f"{FG}.VNFs[0].id", "invalid VNF id")
    fails(edit(base(), "end-points/0/id", bad), f"{FG}.end-points[0].id", "invalid endpoint id")
    fails(edit(base(), "big-switch/flow-rules/0/id", bad), f"{RULE0}.id", "invalid rule id")
    fails(edit(base(), "VNFs/0/name", bad), f"{FG}.VNFs[0].name", "invalid VNF name")
    fails(base(), "graph_id", "invalid graph id", graph_id=bad)
    with pytest.raises(ModelError):
        validate_id(bad, "$.url")


@pytest.mark.parametrize("good", ["0", "000000001", "a", "A-b_c.d", "nativeNat", "x" * 64, "a..b"])
def test_good_ids(good):
    assert validate_id(good, "$") == good
    g = parse_with(("id", good), ("VNFs/0/id", good),
                   ("big-switch/flow-rules/0/actions/0/output_to_port", f"vnf:{good}:inout:0"),
                   ("big-switch/flow-rules/1/match/port_in", f"vnf:{good}:inout:1"))
    assert g.id == good and g.vnf(good)


@pytest.mark.parametrize("bad", [7, 7.0, None, True, ["a"], {"a": 1}])
def test_non_string_ids(bad):
    path = f"{FG}.VNFs[0].id"
    fragment = "missing" if bad is None else "must be a string"
    fails(edit(base(), "VNFs/0/id", bad), path, fragment.replace("missing", "must not be null"))
    with pytest.raises(ModelError, match="must be a string"):
        validate_id(bad if bad is not None else 0, "$.x", "graph id")


def test_validate_id_error_shape():
    with pytest.raises(ModelError) as info:
        validate_id("a/b", "$.url.id", "graph id")
    assert info.value.path == "$.url.id" and info.value.status == 400
    assert "'a/b'" in info.value.message


# ------------------------------------------------------------------ VNFs and ports

V = f"{FG}.VNFs[0]"


@pytest.mark.parametrize("where, value, path, fragment", [
    ("VNFs", {}, f"{FG}.VNFs", "must be a list"),
    ("VNFs/0", "fw", f"{FG}.VNFs[0]", "must be an object"),
    ("VNFs/0/name", DELETE, f"{V}.name", "missing"),
    ("VNFs/0/name", "fire wall", f"{V}.name", "invalid VNF name"),
    ("VNFs/0/vnf_template", "../etc/passwd", f"{V}.vnf_template", "invalid vnf_template"),
    ("VNFs/0/vnf_template", "a/../b.json", f"{V}.vnf_template", "'..'"),
    ("VNFs/0/vnf_template", "/etc/passwd", f"{V}.vnf_template", "invalid vnf_template"),
    ("VNFs/0/vnf_template", "a/%2E%2e/b", f"{V}.vnf_template", "%2e"),
    ("VNFs/0/vnf_template", "a b.json", f"{V}.vnf_template", "invalid vnf_template"),
    ("VNFs/0/vnf_template", "a;b.json", f"{V}.vnf_template", "invalid vnf_template"),
    ("VNFs/0/vnf_template", 5, f"{V}.vnf_template", "must be a string"),
    ("VNFs/0/ports", {"id": "inout:0"}, f"{V}.ports", "must be a list"),
    ("VNFs/0/ports/0", "inout:0", f"{V}.ports[0]", "must be an object"),
    ("VNFs/0/ports/0/id", DELETE, f"{V}.ports[0].id", "missing"),
    ("VNFs/0/ports/0/id", "in out", f"{V}.ports[0].id", "invalid port id"),
    ("VNFs/0/ports/0/id", ":0", f"{V}.ports[0].id", "invalid port id"),
    ("VNFs/0/ports/0/id", 0, f"{V}.ports[0].id", "must be a string"),
    ("VNFs/0/ports/0/id", "inout:1", f"{V}.ports[1].id", "duplicate port id"),
    ("VNFs/0/ports/0/name", ["x"], f"{V}.ports[0].name", "must be a string"),
    ("VNFs/0/ports/1/mac", "02:00:00:00:00", f"{V}.ports[1].mac", "invalid MAC"),
    ("VNFs/0/ports/1/mac", "02-00-00-00-00-01", f"{V}.ports[1].mac", "invalid MAC"),
    ("VNFs/0/ports/1/mac", "zz:00:00:00:00:01", f"{V}.ports[1].mac", "invalid MAC"),
    ("VNFs/0/ports/1/mac", "03:00:00:00:00:01", f"{V}.ports[1].mac", "multicast"),
    ("VNFs/0/ports/1/mac", "01:00:5e:00:00:01", f"{V}.ports[1].mac", "multicast"),
    ("VNFs/0/ports/1/mac", "ff:ff:ff:ff:ff:ff", f"{V}.ports[1].mac", "multicast"),
    ("VNFs/0/ports/1/mac", "00:00:00:00:00:00", f"{V}.ports[1].mac", "not a usable"),
    ("VNFs/0/ports/1/mac", 5, f"{V}.ports[1].mac", "must be a string"),
    ("VNFs/0/ports/1/unify-ip", "10.0.0.1", f"{V}.ports[1].unify-ip", "prefix"),
    ("VNFs/0/ports/1/unify-ip", "10.0.0.300/24", f"{V}.ports[1].unify-ip", "invalid"),
    ("VNFs/0/ports/1/unify-ip", "10.0.0.1/33", f"{V}.ports[1].unify-ip", "invalid"),
    ("VNFs/0/ports/1/unify-ip", "fe80::1%eth0/64", f"{V}.ports[1].unify-ip", "scope"),
    ("VNFs/0/ports/1/unify-ip", 167772161, f"{V}.ports[1].unify-ip", "must be a string"),
    ("VNFs/0/ports/1/trusted", "yes", f"{V}.ports[1].trusted", "true or false"),
    ("VNFs/0/ports/1/trusted", 1, f"{V}.ports[1].trusted", "true or false"),
    ("VNFs/0/unify-control", {}, f"{V}.unify-control", "must be a list"),
    ("VNFs/0/unify-control/0/host-tcp-port", 0, f"{V}.unify-control[0].host-tcp-port", "1..65535"),
    ("VNFs/0/unify-control/0/host-tcp-port", "65536", f"{V}.unify-control[0].host-tcp-port", "1..65535"),
    ("VNFs/0/unify-control/0/host-tcp-port", "ssh", f"{V}.unify-control[0].host-tcp-port", "not a number"),
    ("VNFs/0/unify-control/0/vnf-tcp-port", DELETE, f"{V}.unify-control[0].vnf-tcp-port", "missing"),
    ("VNFs/0/unify-control/0/vnf-tcp-port", True, f"{V}.unify-control[0].vnf-tcp-port", "integer"),
    ("VNFs/0/unify-control/0", 2222, f"{V}.unify-control[0]", "must be an object"),
])
def test_bad_vnfs(where, value, path, fragment):
    fails_with([(where, value)], path, fragment)


def test_port_values_are_normalised():
    g = parse_with(("VNFs/0/ports/1/mac", "0A:BB:cc:DD:ee:FF"),
                   ("VNFs/0/ports/1/unify-ip", "10.0.0.1/255.255.255.0"),
                   ("VNFs/0/ports/1/trusted", "false"),
                   ("VNFs/0/ports/0/trusted", "true"),
                   ("VNFs/0/ports/0/mac", "02:00:00:00:00:02"),
                   ("VNFs/0/ports/0/unify-ip", "2001:DB8::1/64"))
    p0, p1 = g.vnf("fw").ports
    assert (p1.mac, p1.ip, p1.trusted) == ("0a:bb:cc:dd:ee:ff", "10.0.0.1/24", False)
    assert (p0.ip, p0.trusted, p0.mac) == ("2001:db8::1/64", True, "02:00:00:00:00:02")


def test_duplicate_vnf_ids_and_ports_in_several_vnfs():
    doc = base()
    doc["forwarding-graph"]["VNFs"].append({"id": "fw", "name": "nat"})
    fails(doc, f"{FG}.VNFs[1].id", "duplicate VNF id")
    doc["forwarding-graph"]["VNFs"][1] = {"id": "nat", "name": "nat",
                                          "ports": [{"id": "inout:0"}, {"id": "inout:1"}]}
    assert parse_graph(doc).vnf("nat").port("inout:1")   # port ids are per VNF


def test_unify_control():
    g = parse_with(("VNFs/0/unify-control", [{"host-tcp-port": "8080", "vnf-tcp-port": "0x50"},
                                             {"host-tcp-port": 2222, "vnf-tcp-port": 22}]))
    assert g.vnf("fw").control == (Control(8080, 80), Control(2222, 22))
    doc = base()
    doc["forwarding-graph"]["VNFs"].append(
        {"id": "nat", "name": "nat", "unify-control": [{"host-tcp-port": 2222, "vnf-tcp-port": 23}]})
    fails(doc, f"{FG}.VNFs[1].unify-control[0].host-tcp-port", "duplicate host-tcp-port")


# ------------------------------------------------------------------ environment variables

ENV = f"{V}.unify-env-variables"


def test_env_variables():
    g = parse_with(("VNFs/0/unify-env-variables",
                    [{"variable": "A=1"}, "B=x=y", {"variable": "_c="},
                     {"variable": "SPACES=a b; $(rm -rf /)"}, "path_like=/usr/bin"]))
    assert g.vnf("fw").env == (("A", "1"), ("B", "x=y"), ("_c", ""),
                               ("SPACES", "a b; $(rm -rf /)"), ("path_like", "/usr/bin"))
    long = "V=" + "x" * 4096
    assert parse_with(("VNFs/0/unify-env-variables", [long])).vnf("fw").env[0][1] == "x" * 4096


@pytest.mark.parametrize("entry, fragment", [
    ("PATH=/tmp", "reserved"), ("IFS=x", "reserved"), ("ENV=/tmp/x", "reserved"),
    ("BASH_ENV=/tmp/x", "reserved"), ("SHELLOPTS=xtrace", "reserved"), ("PS4=$(id)", "reserved"),
    ("HOME=/", "reserved"), ("UNLITE_GRAPH=x", "reserved"), ("LD_PRELOAD=/tmp/x.so", "reserved"),
    ("LD_LIBRARY_PATH=/tmp", "reserved"), ("Path=/tmp", "reserved"),
    ({"variable": "LD_AUDIT=x"}, "reserved"),
    ("1A=x", "invalid variable name"), ("A-B=x", "invalid variable name"),
    ("A B=x", "invalid variable name"), ("=x", "invalid variable name"),
    ("A;rm=x", "invalid variable name"), ("N" * 65 + "=x", "invalid variable name"),
    ("noequals", "NAME=value"), ("A=\x00", "NUL"), ("A=" + "x" * 4097, "4096"),
    ("A=\udc80", "NUL"), (5, "must be an object"), ({"value": "A=1"}, "missing"),
])
def test_bad_env_variables(entry, fragment):
    path = f"{ENV}[1]"
    if isinstance(entry, dict) and "variable" not in entry:
        path += ".variable"
    fails_with([("VNFs/0/unify-env-variables", ["OK=1", entry])], path, fragment)


def test_bad_env_variable_shapes():
    fails_with([("VNFs/0/unify-env-variables", ["A=1", {"variable": 5}])],
               f"{ENV}[1].variable", "NAME=value")
    fails_with([("VNFs/0/unify-env-variables", ["A=1", "A=2"])], f"{ENV}[1]", "duplicate variable")
    fails_with([("VNFs/0/unify-env-variables", "A=1")], ENV, "must be a list")


# ------------------------------------------------------------------ match fields

@pytest.mark.parametrize("name, value, key, expected", [
    ("ether_type", "0x800", "ether_type", 2048), ("ether_type", "0x0800", "ether_type", 2048),
    ("ether_type", "2048", "ether_type", 2048), ("ether_type", 0x86DD, "ether_type", 0x86DD),
    ("ether_type", "0XFFFF", "ether_type", 0xFFFF),
    ("protocol", "0x06", "protocol", 6), ("protocol", "6", "protocol", 6),
    ("protocol", "06", "protocol", 6), ("protocol", "0x11", "protocol", 17),
    ("protocol", "11", "protocol", 11), ("protocol", 17, "protocol", 17),
    ("vlan_id", "0x25", "vlan_id", 37), ("vlan_id", "25", "vlan_id", 25),
    ("vlan_id", "4095", "vlan_id", 4095), ("vlan_id", "0", "vlan_id", 0),
    ("vlan_pcp", "7", "vlan_pcp", 7), ("ip_dscp", "63", "ip_dscp", 63),
    ("ip_ecn", "3", "ip_ecn", 3), ("source_port", "0x50", "source_port", 80),
    ("dest_port", "65535", "dest_port", 65535), ("sctp_src", "1", "sctp_src", 1),
    ("sctp_dst", "0", "sctp_dst", 0), ("icmpv4_type", "8", "icmpv4_type", 8),
    ("icmpv4_code", "0", "icmpv4_code", 0), ("icmpv6_type", "135", "icmpv6_type", 135),
    ("icmpv6_code", "255", "icmpv6_code", 255), ("arp_opcode", "2", "arp_opcode", 2),
    ("ipv6_flabel", "0xfffff", "ipv6_flabel", 0xFFFFF),
    ("mpls_label", "1048575", "mpls_label", 1048575), ("mpls_tc", "0x7", "mpls_tc", 7),
    ("source_mac", "AA:BB:CC:00:11:22", "source_mac", "aa:bb:cc:00:11:22"),
    ("dest_mac", "ff:ff:ff:ff:ff:ff", "dest_mac", "ff:ff:ff:ff:ff:ff"),
    ("arp_sha", "02:00:00:00:00:0A", "arp_sha", "02:00:00:00:00:0a"),
    ("arp_tha", "02:00:00:00:00:0b", "arp_tha", "02:00:00:00:00:0b"),
    ("ipv6_nd_sll", "02:00:00:00:00:0C", "ipv6_nd_sll", "02:00:00:00:00:0c"),
    ("ipv6_nd_tll", "33:33:00:00:00:01", "ipv6_nd_tll", "33:33:00:00:00:01"),
    ("source_ip", "10.0.0.1", "ipv4_src", "10.0.0.1/32"),
    ("dest_ip", "10.0.0.0/8", "ipv4_dst", "10.0.0.0/8"),
    ("ipv4_src", "192.168.1.77/24", "ipv4_src", "192.168.1.0/24"),
    ("ipv4_dst", "0.0.0.0/0", "ipv4_dst", "0.0.0.0/0"),
    ("arp_spa", "10.1.2.3", "arp_spa", "10.1.2.3/32"),
    ("arp_tpa", "10.1.2.0/24", "arp_tpa", "10.1.2.0/24"),
    ("ipv6_src", "2001:DB8::1", "ipv6_src", "2001:db8::1/128"),
    ("ipv6_dst", "2001:db8::77/64", "ipv6_dst", "2001:db8::/64"),
    ("ipv6_nd_target", "FE80::1", "ipv6_nd_target", "fe80::1"),
])
def test_match_field_normalisation(name, value, key, expected):
    rule = match_graph(**{name: value}).rules[0]
    assert rule.match.fields == ((key, expected),)
    assert rule.match.get(key) == expected and rule.match.get(name) == expected
    assert rule.match.get("mpls_bos", "absent") == "absent"


def test_match_masks():
    m = match_graph(source_mac="02:00:00:00:00:01", eth_src_mask="FF:FF:FF:00:00:00",
                    dest_mac="02:00:00:00:00:02", eth_dst_mask="ff:ff:ff:ff:ff:ff",
                    ipv4_src="10.0.0.1", ipv4_src_mask="255.255.0.0",
                    dest_ip="10.0.0.2", ipv4_dst_mask="255.0.255.0",
                    arp_spa="10.0.0.3", arp_spa_mask="255.255.255.0",
                    arp_tpa="10.0.0.4", arp_tpa_mask="255.255.255.255",
                    ipv6_src="2001:db8::1", ipv6_src_mask="FFFF:FFFF::",
                    ipv6_dst="2001:db8::2", ipv6_dst_mask="ffff::").rules[0].match
    assert m.get("eth_src_mask") == "ff:ff:ff:00:00:00"
    assert m.get("ipv4_dst") == "10.0.0.2/32" and m.get("ipv4_dst_mask") == "255.0.255.0"
    assert m.get("ipv6_src_mask") == "ffff:ffff::"
    names = [k for k, _ in m.fields]
    assert names == sorted(names) and "dest_ip" not in names and "port_in" not in names
    assert m.port_in == PortRef("endpoint", "in")


def test_source_ip_and_ipv4_src_are_synonyms():
    m = match_graph(source_ip="10.0.0.1", ipv4_src="10.0.0.1/32").rules[0].match
    assert m.fields == (("ipv4_src", "10.0.0.1/32"),)
    m = match_graph(dest_ip="10.0.0.0/8", ipv4_dst="10.1.0.0/8").rules[0].match
    assert m.fields == (("ipv4_dst", "10.0.0.0/8"),)
    fails_with([("big-switch/flow-rules/0/match", {"port_in": "endpoint:in",
                "source_ip": "10.0.0.1", "ipv4_src": "10.0.0.2"})],
               f"{RULE0}.match.ipv4_src", "contradicts")


M = f"{RULE0}.match"


@pytest.mark.parametrize("fields, path, fragment", [
    ({"ether_type": "0x10000"}, f"{M}.ether_type", "out of range 0..65535"),
    ({"ether_type": "-1"}, f"{M}.ether_type", "not a number"),
    ({"ether_type": "0x"}, f"{M}.ether_type", "not a number"),
    ({"ether_type": "IPv4"}, f"{M}.ether_type", "not a number"),
    ({"ether_type": " 2048"}, f"{M}.ether_type", "not a number"),
    ({"ether_type": 2048.0}, f"{M}.ether_type", "integer"),
    ({"ether_type": True}, f"{M}.ether_type", "integer"),
    ({"ether_type": "9" * 30}, f"{M}.ether_type", "not a number"),
    ({"vlan_id": "4096"}, f"{M}.vlan_id", "0..4095"),
    ({"vlan_id": "any"}, f"{M}.vlan_id", "not a number"),
    ({"vlan_pcp": "8"}, f"{M}.vlan_pcp", "0..7"),
    ({"ip_dscp": "64"}, f"{M}.ip_dscp", "0..63"),
    ({"ip_ecn": "4"}, f"{M}.ip_ecn", "0..3"),
    ({"protocol": "0x100"}, f"{M}.protocol", "0..255"),
    ({"source_port": "65536"}, f"{M}.source_port", "0..65535"),
    ({"dest_port": "0x10000"}, f"{M}.dest_port", "0..65535"),
    ({"sctp_src": "70000"}, f"{M}.sctp_src", "0..65535"),
    ({"sctp_dst": "70000"}, f"{M}.sctp_dst", "0..65535"),
    ({"icmpv4_type": "256"}, f"{M}.icmpv4_type", "0..255"),
    ({"icmpv4_code": "256"}, f"{M}.icmpv4_code", "0..255"),
    ({"icmpv6_type": "256"}, f"{M}.icmpv6_type", "0..255"),
    ({"icmpv6_code": "256"}, f"{M}.icmpv6_code", "0..255"),
    ({"arp_opcode": "65536"}, f"{M}.arp_opcode", "0..65535"),
    ({"ipv6_flabel": "0x100000"}, f"{M}.ipv6_flabel", "0..1048575"),
    ({"mpls_label": "1048576"}, f"{M}.mpls_label", "0..1048575"),
    ({"mpls_tc": "8"}, f"{M}.mpls_tc", "0..7"),
    ({"source_mac": "aa:bb:cc:dd:ee"}, f"{M}.source_mac", "invalid MAC"),
    ({"dest_mac": "aabb.ccdd.eeff"}, f"{M}.dest_mac", "invalid MAC"),
    ({"arp_sha": 5}, f"{M}.arp_sha", "must be a string"),
    ({"source_ip": "10.0.0.256"}, f"{M}.source_ip", "invalid IPv4"),
    ({"ipv4_src": "2001:db8::1"}, f"{M}.ipv4_src", "not an IPv4"),
    ({"ipv6_src": "10.0.0.1"}, f"{M}.ipv6_src", "not an IPv6"),
    ({"arp_tpa": "10.0.0.0/40"}, f"{M}.arp_tpa", "invalid IPv4"),
    ({"ipv6_nd_target": "2001:db8::/64"}, f"{M}.ipv6_nd_target", "invalid IP"),
    ({"ipv4_src": "10.0.0.1", "ipv4_src_mask": "255.255.0"}, f"{M}.ipv4_src_mask", "invalid IP"),
    ({"ipv4_src": "10.0.0.1", "ipv4_src_mask": "ffff::"}, f"{M}.ipv4_src_mask", "not an IPv4"),
    ({"ipv4_src_mask": "255.255.0.0"}, f"{M}.ipv4_src_mask", "needs ipv4_src (or source_ip)"),
    ({"ipv4_dst_mask": "255.255.0.0"}, f"{M}.ipv4_dst_mask", "needs ipv4_dst"),
    ({"arp_spa_mask": "255.255.0.0"}, f"{M}.arp_spa_mask", "needs arp_spa"),
    ({"arp_tpa_mask": "255.255.0.0"}, f"{M}.arp_tpa_mask", "needs arp_tpa"),
    ({"eth_src_mask": "ff:ff:ff:00:00:00"}, f"{M}.eth_src_mask", "needs source_mac"),
    ({"eth_dst_mask": "ff:ff:ff:00:00:00"}, f"{M}.eth_dst_mask", "needs dest_mac"),
    ({"ipv6_src_mask": "ffff::"}, f"{M}.ipv6_src_mask", "needs ipv6_src"),
    ({"ipv6_dst_mask": "ffff::"}, f"{M}.ipv6_dst_mask", "needs ipv6_dst"),
    ({"ipv4_src": "10.0.0.0/8", "ipv4_src_mask": "255.0.0.0"}, f"{M}.ipv4_src_mask", "give one"),
    ({"tcp_dst": "80"}, f"{M}.tcp_dst", "unknown match field 'tcp_dst'"),
    ({"in_port": "1"}, f"{M}.in_port", "unknown match field"),
    ({"ether_type": "0x800", "Ether_type": "0x800"}, f"{M}.Ether_type", "given twice"),
    ({"Port_in": "endpoint:in"}, f"{M}.Port_in", "repeats port_in"),
])
def test_bad_match_fields(fields, path, fragment):
    fails_with([("big-switch/flow-rules/0/match", {"port_in": "endpoint:in", **fields})],
               path, fragment)


def test_match_fields_constant():
    documented = """port_in ether_type source_mac dest_mac eth_src_mask eth_dst_mask vlan_id
        vlan_pcp source_ip dest_ip ipv4_src ipv4_dst ipv4_src_mask ipv4_dst_mask ipv6_src
        ipv6_dst ipv6_src_mask ipv6_dst_mask ip_dscp ip_ecn protocol source_port dest_port
        sctp_src sctp_dst icmpv4_type icmpv4_code icmpv6_type icmpv6_code arp_opcode arp_spa
        arp_tpa arp_spa_mask arp_tpa_mask arp_sha arp_tha ipv6_flabel ipv6_nd_target
        ipv6_nd_sll ipv6_nd_tll mpls_label mpls_tc""".split()
    assert MATCH_FIELDS == frozenset(documented)
    for name in MATCH_FIELDS - {"port_in"}:   # every field is parsed, none is unknown
        with pytest.raises(ModelError) as info:
            match_graph(**{name: "not-a-value"})
        assert "unknown" not in info.value.message and info.value.path == f"{M}.{name}"


# ------------------------------------------------------------------ port references

@pytest.mark.parametrize("ref, fragment", [
    ("endpoint:nope", "endpoint 'nope', which is not in this graph"),
    ("vnf:nope:inout:0", "VNF 'nope', which is not in this graph"),
    ("vnf:fw:inout:9", "port 'inout:9', which VNF 'fw' does not have"),
    ("vnf:fw:inout", "port 'inout'"),
    ("vnf:fw", "invalid port reference"), ("vnf:fw:", "invalid port reference"),
    ("vnf::inout:0", "invalid port reference"), ("endpoint:", "invalid port reference"),
    ("endpoint", "invalid port reference"), ("in", "invalid port reference"),
    ("Endpoint:in", "invalid port reference"), ("port:in", "invalid port reference"),
    ("endpoint:in;reboot", "not in this graph"), ("", "invalid port reference"),
    (5, "must be a string"), (None, "must not be null"),
])
def test_dangling_or_bad_port_references(ref, fragment):
    fails_with([("big-switch/flow-rules/0/match/port_in", ref)], f"{M}.port_in", fragment)
    if ref is not None:
        fails_with([("big-switch/flow-rules/0/actions/0/output_to_port", ref)],
                   f"{RULE0}.actions[0].output_to_port", fragment)


def test_port_ref_parsing_and_str():
    ref = parse_with(("big-switch/flow-rules/0/match/port_in", "vnf:fw:inout:0")).rules[0].match.port_in
    assert ref == PortRef("vnf", "fw", "inout:0") and str(ref) == "vnf:fw:inout:0"
    assert str(PortRef("endpoint", "00000001")) == "endpoint:00000001"
    doc = base()
    edit(doc, "VNFs/0/ports/0/id", "a:b:c")
    edit(doc, "big-switch/flow-rules/0/actions/0/output_to_port", "vnf:fw:a:b:c")
    assert parse_graph(doc).rules[0].actions[0].port == PortRef("vnf", "fw", "a:b:c")


# ------------------------------------------------------------------ rules and actions

def test_rules_priority_and_actions():
    g = parse_with(("big-switch/flow-rules/0/priority", "0x10"),
                   ("big-switch/flow-rules/1/priority", "0"),
                   ("big-switch/flow-rules/0/actions",
                    [{"push_vlan": "100"}, {"output_to_port": "vnf:fw:inout:0"},
                     {"pop_vlan": "true"}, {"output_to_port": "endpoint:out"},
                     {"push_vlan": 4094}, {"output_to_port": "vnf:fw:inout:1"}]))
    r1, r2 = g.rules
    assert (r1.priority, r2.priority) == (16, 0)
    assert r1.actions == (Action("push_vlan", vlan=100),
                          Action("output", PortRef("vnf", "fw", "inout:0")),
                          Action("pop_vlan"), Action("output", PortRef("endpoint", "out")),
                          Action("push_vlan", vlan=4094),
                          Action("output", PortRef("vnf", "fw", "inout:1")))
    assert parse_with(("big-switch/flow-rules/0/priority", 65535)).rules[0].priority == 65535


R = RULE0


@pytest.mark.parametrize("where, value, path, fragment", [
    ("big-switch", [], f"{FG}.big-switch", "must be an object"),
    ("big-switch/flow-rules", {}, f"{FG}.big-switch.flow-rules", "must be a list"),
    ("big-switch/flow-rules/0", "r1", R, "must be an object"),
    ("big-switch/flow-rules/0/id", DELETE, f"{R}.id", "missing"),
    ("big-switch/flow-rules/1/id", "r1", f"{FG}.big-switch.flow-rules[1].id", "duplicate rule id"),
    ("big-switch/flow-rules/0/priority", "65536", f"{R}.priority", "0..65535"),
    ("big-switch/flow-rules/0/priority", -1, f"{R}.priority", "0..65535"),
    ("big-switch/flow-rules/0/priority", "high", f"{R}.priority", "not a number"),
    ("big-switch/flow-rules/0/priority", 1.5, f"{R}.priority", "integer"),
    ("big-switch/flow-rules/0/priority", True, f"{R}.priority", "integer"),
    ("big-switch/flow-rules/0/match", DELETE, f"{R}.match", "missing"),
    ("big-switch/flow-rules/0/match", [], f"{R}.match", "must be an object"),
    ("big-switch/flow-rules/0/match", {}, f"{R}.match.port_in", "where traffic enters"),
    ("big-switch/flow-rules/0/match", {"ether_type": "0x800"}, f"{R}.match.port_in", "missing"),
    ("big-switch/flow-rules/0/actions", DELETE, f"{R}.actions", "missing"),
    ("big-switch/flow-rules/0/actions", [], f"{R}.actions", "must not be empty"),
    ("big-switch/flow-rules/0/actions", {"output_to_port": "endpoint:out"}, f"{R}.actions", "must be a list"),
    ("big-switch/flow-rules/0/actions", ["endpoint:out"], f"{R}.actions[0]", "must be an object"),
    ("big-switch/flow-rules/0/actions", [{}], f"{R}.actions[0]", "exactly one"),
    ("big-switch/flow-rules/0/actions", [{"output_to_port": "endpoint:out", "push_vlan": "5"}],
     f"{R}.actions[0]", "exactly one"),
    ("big-switch/flow-rules/0/actions", [{"output_to_port": "endpoint:out", "drop": True}],
     f"{R}.actions[0].drop", "unknown action 'drop'"),
    ("big-switch/flow-rules/0/actions", [{"set_field": "x"}], f"{R}.actions[0].set_field", "unknown action"),
    ("big-switch/flow-rules/0/actions", [{"push_vlan": "0"}, {"output_to_port": "endpoint:out"}],
     f"{R}.actions[0].push_vlan", "1..4094"),
    ("big-switch/flow-rules/0/actions", [{"push_vlan": "0xfff"}, {"output_to_port": "endpoint:out"}],
     f"{R}.actions[0].push_vlan", "1..4094"),
    ("big-switch/flow-rules/0/actions", [{"pop_vlan": False}, {"output_to_port": "endpoint:out"}],
     f"{R}.actions[0].pop_vlan", "must be true"),
    ("big-switch/flow-rules/0/actions", [{"pop_vlan": "yes"}, {"output_to_port": "endpoint:out"}],
     f"{R}.actions[0].pop_vlan", "true or false"),
    ("big-switch/flow-rules/0/actions", [{"push_vlan": "5"}, {"pop_vlan": True}],
     f"{R}.actions", "needs an output_to_port"),
    ("big-switch/flow-rules/1/match/port_in", "endpoint:in", f"{FG}.big-switch.flow-rules[1].match",
     "same priority and match"),
])
def test_bad_rules(where, value, path, fragment):
    if where.endswith("flow-rules/1/match/port_in"):
        fails_with([("big-switch/flow-rules/1/priority", 10), (where, value)], path, fragment)
    else:
        fails_with([(where, value)], path, fragment)


def test_same_match_with_different_priorities_is_fine():
    g = parse_with(("big-switch/flow-rules/1/match/port_in", "endpoint:in"))
    assert [r.priority for r in g.rules] == [10, DEFAULT_PRIORITY]


# ------------------------------------------------------------------ JSON text and structure

def test_malformed_json_names_line_and_column():
    text = '{"forwarding-graph": {\n  "id": "g1"\n  "name": "x"}}'
    err = fails(text, "$", "malformed JSON")
    assert "line 3 column 3" in err.message and "Expecting ',' delimiter" in err.message
    err = fails(text.encode(), "$", "line 3 column 3")
    for bad in ["", "{", "[1,]", "{'a': 1}", "nul", '{"a": 1} x']:
        assert "malformed JSON" in fails(bad, "$").message


def test_json_text_forms():
    text = json.dumps(base())
    g = parse_graph(text)
    assert parse_graph(text.encode()) == g == parse_graph(bytearray(text.encode()))
    assert parse_graph(b"\xef\xbb\xbf" + text.encode()) == g   # UTF-8 BOM
    assert parse_graph("\ufeff" + text) == g
    fails(b'{"forwarding-graph": {"id": "\xff"}}', "$", "not UTF-8")
    fails("[]", "$", "must be a JSON object")
    fails('"text"', "$", "must be a JSON object")
    fails("{}", f"{FG}", "missing")
    fails('{"forwarding-graph": []}', f"{FG}", "must be an object")
    fails('{"forwarding-graph": null}', f"{FG}", "must not be null")


def test_json_values_that_python_accepts_but_json_does_not():
    fails('{"forwarding-graph": {"id": "g", "x": NaN}}', f"{FG}.x", "NaN")
    fails('{"forwarding-graph": {"id": "g", "x": -Infinity}}', f"{FG}.x", "NaN")
    fails('{"forwarding-graph": {"id": "g", "x": 1e999}}', f"{FG}.x", "NaN")
    fails('{"forwarding-graph": {"id": "g", "x": ' + "9" * 5000 + "}}", "$", "malformed JSON")
    fails({"forwarding-graph": {"id": "g", "x": {1, 2}}}, f"{FG}.x", "not a JSON value")
    fails({"forwarding-graph": {"id": "g", 5: "x"}}, FG, "keys must be strings")
    fails({"forwarding-graph": {"id": "g", "x": float("nan")}}, f"{FG}.x", "NaN")


def test_duplicate_json_keys():
    fails('{"forwarding-graph": {"id": "g", "id": "h"}}', f"{FG}.id", "duplicate key 'id'")
    text = json.dumps(base()).replace('"output_to_port": "endpoint:out"',
                                      '"output_to_port": "endpoint:out", "output_to_port": "endpoint:in"')
    fails(text, f"{FG}.big-switch.flow-rules[1].actions[0].output_to_port", "duplicate key")


def test_nesting_depth():
    def nested(levels):
        value = "leaf"
        for _ in range(levels):
            value = [value]
        return value
    # "$" is level 1, forwarding-graph 2, "x" holds levels 3..32 -> 30 lists is the limit
    assert parse_graph({"forwarding-graph": {"id": "g", "x": nested(30)}}).warnings
    err = fails({"forwarding-graph": {"id": "g", "x": nested(31)}}, f"{FG}.x" + "[0]" * 30,
                "deeper than 32")
    assert err.status == 400
    fails('{"forwarding-graph": {"id": "g", "x": ' + "[" * 40 + "]" * 40 + "}}",
          f"{FG}.x" + "[0]" * 30, "deeper than 32")
    fails("[" * 200000 + "]" * 200000, "$", "malformed JSON")


def test_model_error_shape():
    err = ModelError("bad thing", "$.a.b", 422)
    assert isinstance(err, ValueError)
    assert (err.message, err.path, err.status, str(err)) == ("bad thing", "$.a.b", 422, "$.a.b: bad thing")
    err = ModelError("x")
    assert (err.path, err.status, str(err)) == ("$", 400, "$: x")


def test_odd_keys_are_bracketed_in_paths():
    doc = base()
    edit(doc, "big-switch/flow-rules/0/match", {"port_in": "endpoint:in", "a b": "1"})
    fails(doc, f'{M}["a b"]', "unknown match field 'a b'")
    doc = base()
    doc["forwarding-graph"]["we.ird\n"] = 1
    assert f"unknown field 'we.ird\\n' at {FG} ignored" in parse_graph(doc).warnings


def test_dataclasses_are_frozen():
    g = parse_graph(base())
    with pytest.raises(AttributeError):
        g.vnfs[0].name = "x"
    with pytest.raises(AttributeError):
        g.rules[0].priority = 1
    assert isinstance(g, Graph) and isinstance(g.vnfs, tuple) and isinstance(g.warnings, tuple)
    assert copy.deepcopy(g) == g
