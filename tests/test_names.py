"""Kernel-object names (unlite/names.py) are pinned: a restart adopts what runs by the names
its records hold, and an upgraded daemon must mint the very same ones. A change here is a
migration, not a refactor. No root."""
from __future__ import annotations

from unlite import names
from unlite.model import parse_graph
from unlite.network import endpoints, nft, ovs


def test_the_names_an_earlier_version_minted_are_minted_again():
    assert names.digest("a", "b") == "4a3dec2d1f" and names.digest("a", n=6) == "86f7e4"
    ns = "ulab12-g1-nf1-abcdef"
    assert names.port_host(ns, "inout:0") == "ulf8f7a0db93"
    assert names.port_host(ns, "inout:0", "02:00:00:00:00:01", "10.0.0.1/24") == "ul2672cd3b5b"
    assert names.inner_names(["inout:0", "inout:1", "lo", "x" * 20, "inout:0"]) == \
        ["inout0", "inout1", "p2", "p3", "p4"]
    assert (names.nft_table("g1"), names.nft_chain("eth0"), names.nft_chain("eth0.5")) == \
        ("ul_a46e558d11cb", "in_eth0", "in_eth0_5_6da6")
    assert names.ovs_cookie("g1") == 0xa46e558d00000000
    assert names.endpoint_devs("internal", "g1", "ep0", {"internal-group": "G"}) == \
        ("uli5569d7047c", "ulj5569d7047c")
    assert names.group_bridge("", "G") == "ulgb08683cae9e"
    # the backends and end-points use these, not copies
    assert nft.table_name is names.nft_table and ovs.graph_cookie is names.ovs_cookie
    g = parse_graph({"forwarding-graph": {"id": "g1", "VNFs": [], "big-switch": {},
                                          "end-points": [{"id": "ep0", "type": "internal",
                                                          "internal": {"internal-group": "G"}}]}})
    ln = endpoints.plan(g)["ep0"]
    assert (ln.dev, ln.peer, ln.bridge) == ("uli5569d7047c", "ulj5569d7047c", "ulgb08683cae9e")


def test_every_interface_name_fits_ifnamsiz_and_is_unlites():
    long = "x" * 64
    made = [names.port_host(long, long), names.control_dev(long), names.group_bridge(long, long),
            *names.endpoint_devs("host-stack", long, long, {"ipv4": long}),
            *(h for _, h in names.view_ports(long, [long, "a"], names.inner_names([long, "a"]))),
            *(i for i, _ in names.view_ports(long, [long, "a"], names.inner_names([long, "a"]))),
            *names.inner_names([long, "a:b", ""]), names.SINK_DEV]
    assert all(0 < len(n.encode()) <= names.IFNAMSIZ for n in made), made
    assert all(names.is_ours(n) for n in made[:6]), made


def test_a_namespace_name_carries_the_node_tag_and_what_the_nf_is():
    a = names.nf_netns("ab12", "g1", "nf1", '["bridge"]')
    assert a.startswith("ulab12-g1-nf1-") and len(a.rsplit("-", 1)[1]) == 6
    assert names.nf_netns("ab12", "g1", "nf1", '["nat"]') != a       # another NF: beside
    assert names.nf_netns("cd34", "g1", "nf1", '["bridge"]') != a    # another node's
    tag = names.node_tag()
    assert len(tag) == 4 and int(tag, 16) >= 0
    assert names.sink_netns(tag) == f"ul{tag}-sink" and names.probe_netns(tag) == f"ul{tag}-probe"
    view = names.shared_view("ns", "g1", "nf1", "spec")
    assert view.startswith("g1/nf1/") and view.count("/") == 2
