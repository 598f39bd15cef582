"""Every name unlite gives a kernel object, made here: the rules, the lengths, the node tag.

The names are how unlite finds its own objects again: a restart adopts what runs by the names
its records hold, and an upgraded daemon must mint the same ones (``tests/test_names.py``
pins them). So a name never changes without a migration.

Rules:
- Everything starts with ``ul`` (``PREFIX``): an interface of that name is unlite's, never an
  end-point; a tenant cannot claim one.
- Interface names fit ``IFNAMSIZ`` (15 bytes); a hash of what the object *is* makes them
  unique and short, so a changed object gets a new name beside the old one during an update
  (make before break) and an unchanged one keeps its own.
- Namespaces carry the node tag (``node_tag``: a hash of the node's own network namespace):
  two nodes on one host (test gateways) never share or clean up each other's names.

=================  =========================================  ===============================
object             name                                       made by
=================  =========================================  ===============================
NF namespace       ``ul<tag>-<graph:16>-<nf:16>-<h6>``        ``nf_netns``
shared NF netns    ``ul<tag>-shared-<function:20>-<h6>``      ``shared_netns``
NF port (node)     ``ul<h10>``                                ``port_host``, ``view_port``
NF port (inside)   the port id cleaned (``inout:0``→``inout0``) ``inner_names``
control veth       ``ul<h10>`` of (netns, "unify-control")     ``control_dev``
end-point devices  ``uli``/``ulj`` internal, ``uls``/``ulh``   ``endpoint_devs``
                   host-stack, ``ulv`` vlan, ``ulr`` gre + h10
internal segment   ``ulg<h11>`` of (tenant scope, group)       ``group_bridge``
nft table          ``ul_<h12>`` of the graph id; chains        ``nft_table``, ``nft_chain``
                   ``in_<device>``; ``ul_control``
OVS bridge, flows  ``ul-lsi0``; cookie: graph hash << 32       ``ovs_cookie``
tc drop sink       ``ul<tag>-sink`` (netns), ``ulsink``        ``sink_netns``
probe namespace    ``ul<tag>-probe``                           ``probe_netns``
cgroups            ``<hierarchy>/unlite/<NF namespace>``       ``CGROUP_PARENT``
=================  =========================================  ===============================
"""
from __future__ import annotations

import hashlib
import os
import re

PREFIX = "ul"
IFNAMSIZ = 15                   # bytes of an interface name, without its NUL
CGROUP_PARENT = "unlite"        # the folder of every NF's groups in each hierarchy
OVS_BRIDGE = "ul-lsi0"
OVS_COOKIE_MASK = 0xFFFFFFFF00000000
NFT_CONTROL_TABLE = "ul_control"
SINK_DEV = "ulsink"
ENDPOINT_PREFIXES = {"internal": ("uli", "ulj"), "host-stack": ("uls", "ulh"),
                     "vlan": ("ulv", None), "gre-tunnel": ("ulr", None)}


def digest(*parts, n=10):
    """``n`` hex digits of SHA-1 over the parts (joined by NUL)."""
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:n]


def node_tag(ns_file="/proc/self/ns/net"):
    """4 hex digits naming the node's network namespace (``ns_file``: another one's, for
    tools)."""
    return digest(os.stat(ns_file).st_ino, n=4)


def is_ours(ifname):
    return ifname.startswith(PREFIX)


# -- compute ---------------------------------------------------------------------------------
def nf_netns(tag, graph_id, nf_id, ident):
    """An NF instance's namespace; ``ident`` (text) is what the NF is (function, template,
    environment, package, control ports, fixed addresses)."""
    return f"ul{tag}-{graph_id[:16]}-{nf_id[:16]}-{digest(tag, graph_id, nf_id, ident, n=6)}"


def shared_netns(tag, function, pkg_sha256):
    """The one namespace of a single-instance NF's package on this node."""
    return f"ul{tag}-shared-{function[:20]}-{digest(tag, pkg_sha256, n=6)}"


def port_host(netns, port_id, mac=None, ip=None):
    """The node side of an NF port's veth: new when the port's address changes."""
    return PREFIX + digest(netns, port_id, mac or "", ip or "")


def shared_view(netns, graph_id, nf_id, spec):
    """A graph's share of a single-instance NF: ``graph/nf/h6``."""
    return f"{graph_id}/{nf_id}/{digest(netns, graph_id, nf_id, spec, n=6)}"


def view_ports(view, port_ids, inner):
    """(inside name, node side) of each port a graph adds to a shared NF: the inside name
    carries the view's prefix, so two graphs' ``inout:0`` do not collide in the one netns."""
    pre = digest(view, n=4)
    return [(f"{pre}.{name}" if len(name) <= 10 else f"{pre}.p{i}", PREFIX + digest(view, pid))
            for i, (pid, name) in enumerate(zip(port_ids, inner))]


def inner_names(port_ids):
    """The interface names inside an NF's namespace: the port ids cleaned of what an
    interface name cannot hold, else ``p<i>``."""
    names, seen = [], set()
    for i, pid in enumerate(port_ids):
        n = re.sub(r"[^A-Za-z0-9_.-]", "", pid)
        if not n or len(n) > IFNAMSIZ or n in seen or n in ("lo", ".", "..", "ctl0"):
            n = f"p{i}"
        seen.add(n)
        names.append(n)
    return names


def control_dev(netns):
    """The node side of an NF's unify-control veth."""
    return PREFIX + digest(netns, "unify-control")


def control_seed(netns):
    """Where the search for a free unify-control address slot starts."""
    return int(digest(netns), 16)


# -- network ---------------------------------------------------------------------------------
def endpoint_devs(kind, graph_id, ep_id, params):
    """(device on the switch, its peer or None) of an end-point whose devices unlite makes."""
    h = digest(graph_id, ep_id, sorted(params.items()))
    dev, peer = ENDPOINT_PREFIXES[kind]
    return dev + h, peer + h if peer else None


def group_bridge(scope, group):
    """The bridge of an internal group (one per tenant scope and group name)."""
    return "ulg" + digest(scope, group, n=11)


def nft_table(graph_id):
    return "ul_" + hashlib.sha1(graph_id.encode()).hexdigest()[:12]


def nft_chain(dev):
    """A graph's chain on device ``dev`` (characters nft names cannot hold: a hash added)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", dev)
    if safe != dev:
        safe += "_" + hashlib.sha1(dev.encode()).hexdigest()[:4]
    return "in_" + safe


def ovs_cookie(graph_id):
    """A graph's slice of the OVS bridge's flow cookies (``OVS_COOKIE_MASK``)."""
    return int(hashlib.sha1(graph_id.encode()).hexdigest()[:8], 16) << 32


def sink_netns(tag):
    return f"ul{tag}-sink"


def probe_netns(tag):
    return f"ul{tag}-probe"
