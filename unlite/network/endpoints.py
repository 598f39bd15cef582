"""End-points whose devices unlite makes itself: ``internal`` and ``host-stack``.

Every backend steers devices; these end-point types have none until we make one:

- ``internal`` (``internal-group``): graphs sharing a group are joined by an L2 segment. The
  segment is a Linux bridge ``ulg<hash of group>`` on the node (no STP, no multicast
  snooping, no addresses: it says nothing itself). Each (graph, end-point) gets a veth pair:
  ``uli<hash>`` is the end-point's device on the switch, its peer ``ulj<hash>`` a port of the
  group's bridge. The bridge goes away with its last member.
- ``host-stack`` (``configuration: static``, ``ipv4``): the node's own IP stack as an
  end-point. A veth pair: ``uls<hash>`` on the switch, ``ulh<hash>`` in the node's stack with
  the given address. (``dhcp`` and ``pppoe`` are refused for now.)

Names hash the graph id, end-point id and parameters, so a changed end-point gets new devices
beside the old ones during an update (make before break), and an unchanged one keeps its own.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from .. import sh
from .base import SteeringError

KINDS = ("internal", "host-stack")


@dataclass
class EpLink:
    graph: str
    endpoint: str
    kind: str
    dev: str                  # on the switch
    peer: str                 # bridge port (internal) or the host stack's interface
    bridge: str | None = None
    ip: str | None = None

    def to_dict(self):
        return asdict(self)


def _h(*parts, n=10):
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:n]


def check(graph):
    for ep in graph.endpoints:
        if ep.type == "host-stack" and ep.params.get("configuration") != "static":
            raise SteeringError(
                f"end-point '{ep.id}': host-stack configuration "
                f"'{ep.params.get('configuration')}' is not supported yet (use static)",
                f"{ep.path}.host-stack.configuration")


def plan(graph, scope=""):
    """{end-point id: EpLink} for the graph's internal and host-stack end-points. ``scope``
    (the owning tenant) keeps one tenant's internal groups apart from another's."""
    out = {}
    for ep in graph.endpoints:
        if ep.type not in KINDS:
            continue
        h = _h(graph.id, ep.id, sorted(ep.params.items()))
        if ep.type == "internal":
            group = ep.params["internal-group"]
            out[ep.id] = EpLink(graph.id, ep.id, ep.type, f"uli{h}", f"ulj{h}",
                                bridge=f"ulg{_h(scope, group, n=11)}")
        else:
            out[ep.id] = EpLink(graph.id, ep.id, ep.type, f"uls{h}", f"ulh{h}",
                                ip=ep.params.get("ipv4"))
    return out


def create(links):
    """Make the devices of ``links`` (one ``ip -batch``); raise SteeringError on failure."""
    lines = []
    bridges = set()
    for ln in links:
        if ln.bridge and ln.bridge not in bridges and not sh.link_exists(ln.bridge):
            bridges.add(ln.bridge)
            lines += [f"link add {ln.bridge} type bridge stp_state 0 mcast_snooping 0",
                      f"link set {ln.bridge} addrgenmode none", f"link set {ln.bridge} up"]
        lines += [f"link add {ln.dev} type veth peer name {ln.peer}",
                  f"link set {ln.dev} addrgenmode none"]
        if ln.bridge:
            lines += [f"link set {ln.peer} addrgenmode none",
                      f"link set {ln.peer} master {ln.bridge}"]
        elif ln.ip:
            lines.append(f"addr add {ln.ip} dev {ln.peer}")
        lines += [f"link set {ln.peer} up", f"link set {ln.dev} up"]
    try:
        sh.ip_batch(lines)
    except sh.CommandError as e:
        delete(links)
        raise SteeringError(f"cannot make end-point devices: {e.stderr}") from e


def delete(links):
    """Remove the devices of ``links`` and every group bridge left empty. Never raises."""
    links = list(links)
    sh.ip_batch([f"link del {ln.dev}" for ln in links if sh.link_exists(ln.dev)], force=True)
    empty = []
    for br in sorted({ln.bridge for ln in links if ln.bridge}):
        if sh.link_exists(br) and not sh.ip_json("link", "show", "master", br):
            empty.append(f"link del {br}")
    sh.ip_batch(empty, force=True)
