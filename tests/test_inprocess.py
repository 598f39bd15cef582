"""The node's planning and each backend's rules, in-process without root: under the seam of
``sh`` (``sh.Recorder``) nothing runs, every command is recorded and the node's interfaces
are a dict. What is checked is what the node decides and what it would tell the kernel; that
the kernel does it is the integration tests' part (they run the same code for real)."""
from __future__ import annotations

import copy

import pytest

from conftest import CATALOG, bridge_graph
from unlite import names, network, sh
from unlite.compute.native import ComputeError
from unlite.model import parse_graph
from unlite.node import Deployed, Node, NodeError

LINKS = {"eth0": 2, "eth1": 3, "eth2": 4}


@pytest.fixture
def node(tmp_path):
    with sh.Recorder(links=LINKS) as rec:
        n = Node(tmp_path / "state", tmp_path / "run", CATALOG, backend="nft")
        n.rec = rec
        yield n


def graph(gid="g1", doc=None):
    return parse_graph(doc or bridge_graph(gid), gid)


def test_a_new_graph_is_planned_as_names_and_steps_touching_nothing(node):
    before = len(node.rec.calls)
    p = node._plan(graph(), None)
    assert [i.nf for i in p.fresh] == ["nf1"] and not p.gone and not p.hot
    inst = p.fresh[0]
    assert inst.netns.startswith(f"ul{names.node_tag()}-g1-nf1-")
    assert [q.host for q in inst.ports] == [names.port_host(inst.netns, q.id)
                                            for q in inst.ports]
    assert len(node.rec.calls) == before, node.rec.commands()[before:]   # planning runs nothing
    assert node._steps(p).names() == ["pending", "record", "devices", "create", "hot-plug",
                                      "compile", "steer", "control", "start", "update",
                                      "store", "adopt", "free", "rewrite record"]


def test_an_update_keeps_hot_plugs_or_remakes_each_nf_by_what_changed(node):
    old = node._plan(graph(), None).new
    same = node._plan(graph(), old)
    assert not same.fresh and not same.gone and not same.hot       # nothing to do
    doc = bridge_graph("g1")
    doc["forwarding-graph"]["VNFs"][0]["ports"].append({"id": "inout:2"})
    hot = node._plan(graph(doc=doc), old)
    (inst, added, removed), = hot.hot.values()
    assert [q.id for q in added] == ["inout:2"] and not removed and inst.netns == \
        old.instances["nf1"].netns                                 # Table II update
    doc = bridge_graph("g1")
    doc["forwarding-graph"]["VNFs"][0]["unify-env-variables"] = [{"variable": "A=1"}]
    anew = node._plan(graph(doc=doc), old)
    assert [i.netns for i in anew.gone] == [old.instances["nf1"].netns]
    assert anew.fresh[0].netns != old.instances["nf1"].netns      # beside the old one


def test_a_plan_resolves_each_function_and_probes_each_flavour_once(node, monkeypatch):
    """Three NFs of a function with two flavours (firewall: nftables, ebtables): one
    repository lookup and one dependency probe per flavour for the whole plan, not one per
    NF and per question (the resolver's pick, then the NF's own check)."""
    from unlite import resolver
    from unlite.compute.package import Repository
    probed, looked_up = [], []
    real_probe, real_resolve = resolver.missing_dependencies, Repository.resolve
    monkeypatch.setattr(resolver, "missing_dependencies",
                        lambda t: probed.append(t.flavour) or real_probe(t))
    monkeypatch.setattr(Repository, "resolve",
                        lambda self, *a, **kw: looked_up.append(a[0]) or
                        real_resolve(self, *a, **kw))
    doc = bridge_graph("g1", nf="firewall")
    vnfs = doc["forwarding-graph"]["VNFs"]
    vnfs += [{**vnfs[0], "id": f"nf{i}"} for i in (2, 3)]
    p = node._plan(graph(doc=doc), None)
    assert len(p.fresh) == 3 and len({i.netns for i in p.fresh}) == 3
    assert sorted(probed) == ["ebtables", "nftables"], probed
    assert looked_up == ["firewall"], looked_up
    probed.clear()
    node._plan(graph(doc=doc), None)                # the next change asks the world again
    assert sorted(probed) == ["ebtables", "nftables"], probed


def test_every_nf_that_cannot_be_planned_is_named_in_one_answer(node):
    doc = bridge_graph("g1")
    doc["forwarding-graph"]["VNFs"][0]["name"] = "nosuch"
    with pytest.raises(ComputeError) as e:
        node._plan(graph(doc=doc), None)
    assert e.value.path == "$.forwarding-graph.VNFs[0].name" and e.value.status == 422
    two = copy.deepcopy(doc)
    two["forwarding-graph"]["VNFs"].append({**doc["forwarding-graph"]["VNFs"][0], "id": "nf2",
                                            "name": "nosuch2"})
    with pytest.raises(NodeError) as e:
        node._plan(graph(doc=two), None)
    assert e.value.message.startswith("2 NFs cannot be deployed")
    assert [x["path"] for x in e.value.extra["errors"]] == [
        "$.forwarding-graph.VNFs[0].name", "$.forwarding-graph.VNFs[1].name"]


def test_end_points_are_checked_against_the_node_and_every_other_graph(node):
    doc = bridge_graph("g1")
    doc["forwarding-graph"]["end-points"][0]["interface"]["if-name"] = "wlan0"
    with pytest.raises(NodeError) as e:
        node._plan(graph(doc=doc), None)
    assert e.value.status == 422 and "'wlan0' does not exist" in e.value.message
    assert e.value.path == "$.forwarding-graph.end-points[0].interface.if-name"
    other = graph("a")
    node.graphs["a"] = Deployed(other, {}, {})              # running
    with pytest.raises(NodeError) as e:
        node._plan(graph(), None)
    assert e.value.status == 409 and "already used by graph 'a'" in e.value.message
    del node.graphs["a"]
    node._pending["a"] = Deployed(other, {}, {})            # a change under way, unlocked
    with pytest.raises(NodeError) as e:
        node._plan(graph(), None)
    assert e.value.status == 409
    del node._pending["a"]
    assert node._plan(graph(), None).fresh


@pytest.mark.parametrize("kind", ["nft", "tc", "ovs"])
def test_each_backend_compiles_a_graph_and_applies_it_as_one_transaction(node, kind):
    sw = network.get(kind)
    p = node._plan(graph(), None)
    lan, wan = (q.host for q in p.fresh[0].ports)
    chains = sw.compile(p.graph, node._devices(p.graph, p.new))
    n = len(node.rec.calls)
    sw.apply("g1", {}, chains)
    sent = node.rec.commands()[n:]
    if kind == "nft":
        assert len(sent) == 1 and sent[0].startswith("nft -f -")       # all or nothing
        assert f'add table netdev {names.nft_table("g1")}' in sent[0]
        assert f'in_eth0 counter fwd to "{lan}" comment "r0"' in sent[0]
        assert 'hook ingress device "eth0" priority 0; policy drop;' in sent[0]
    elif kind == "tc":
        assert len(sent) == 1 and sent[0].startswith("tc -batch -")
        assert f"filter add dev eth0 ingress pref 1 protocol all flower action mirred " \
               f"egress redirect dev {lan}" in sent[0]
    else:
        assert sent[-1].startswith("ovs-ofctl -O OpenFlow14 --bundle add-flows ul-lsi0 -")
        cookie = f"{names.ovs_cookie('g1') >> 32:08x}"
        assert f"priority=10,in_port={wan},actions=output:eth1" in sent[-1]
        assert all(f"add cookie=0x{cookie}" in ln for ln in sent[-1].splitlines()[1:])
    # a change of one rule rewrites the chain of that device only
    doc = bridge_graph("g1")
    doc["forwarding-graph"]["big-switch"]["flow-rules"][0]["match"]["ether_type"] = "0x0800"
    g2 = graph(doc=doc)
    new = sw.compile(g2, node._devices(g2, p.new))
    n = len(node.rec.calls)
    sw.apply("g1", chains, new)
    text = "\n".join(node.rec.commands()[n:])
    assert "eth0" in text and "eth1" not in text and wan not in text, text


def test_a_command_that_fails_under_the_seam_is_a_command_error():
    with sh.Recorder(answers=[(["nft", "-f"], "Error: No such file", 1)]) as rec:
        with pytest.raises(sh.CommandError) as e:
            sh.nft_apply("add table netdev x\n")
        assert e.value.code == 1 and "No such file" in e.value.stderr
        assert rec.calls == [(["nft", "-f", "-"], "add table netdev x\n")]
        assert not sh.link_exists("eth0") and sh.netns_pids(["x"]) == []
