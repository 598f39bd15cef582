"""End-points whose devices unlite makes itself: ``internal``, ``host-stack``, ``gre-tunnel``,
and on nft and tc ``vlan``.

Every backend steers devices; these end-point types have none until we make one:

- ``internal`` (``internal-group``): graphs sharing a group are joined by an L2 segment. The
  segment is a Linux bridge ``ulg<hash of group>`` on the node (no STP, no multicast
  snooping, no addresses: it says nothing itself). Each (graph, end-point) gets a veth pair:
  ``uli<hash>`` is the end-point's device on the switch, its peer ``ulj<hash>`` a port of the
  group's bridge. The bridge goes away with its last member.
- ``host-stack`` (``configuration: static``, ``ipv4``): the node's own IP stack as an
  end-point. A veth pair: ``uls<hash>`` on the switch, ``ulh<hash>`` in the node's stack with
  the given address. (``dhcp`` and ``pppoe`` are refused for now.)
- ``gre-tunnel`` (``local-ip``, ``remote-ip``, ``gre-key``): an Ethernet-over-GRE tunnel.
  For nft and tc it is a kernel ``gretap`` (``ip6gretap`` for IPv6) device ``ulr<hash>``
  made here, where the kernel has gretap (``gretap_probe()``, in a scratch namespace); the
  ovs backend makes an OVS tunnel port of that name on its bridge instead
  (``kernel_tunnels=False``), so nothing is made here. Either way ``local-ip`` must be an
  address of this node (``tunnel_local_dev``).
- ``vlan`` (``vlan-id``, ``if-name``) on nft and tc (``kernel_vlans``): an 802.1Q device
  ``ulv<hash>`` on the interface, made here where the kernel has them (``device_probe``).
  The kernel pops the tag of what it receives on that VLAN and pushes it on what the switch
  sends out of the device, so the backend steers it as a plain interface. The parent
  interface itself cannot then be another end-point (its ingress hook would see the tagged
  frames first): the node refuses that claim with 409. ovs matches and pushes the tag in
  its flows instead; nothing is made here.

Names hash the graph id, end-point id and parameters, so a changed end-point gets new devices
beside the old ones during an update (make before break), and an unchanged one keeps its own.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import names, sh
from .base import SteeringError

KINDS = ("internal", "host-stack", "gre-tunnel", "vlan")
NO_GRETAP = "this kernel has no gretap devices (CONFIG_NET_IPGRE)"
NO_VLAN = "this kernel has no 802.1Q VLAN devices (CONFIG_VLAN_8021Q, kmod-8021q)"
# kind → (the ``ip`` lines that make one in a scratch namespace, what it offers, why not)
_PROBES = {
    "gretap": (["link add ulprobe type gretap local 192.0.2.1 remote 192.0.2.2 key 1"],
               "kernel gretap devices", NO_GRETAP),
    "vlan": (["link add ulprobe type veth peer name ulprobe1",
              "link add link ulprobe name ulprobe.5 type vlan id 5"],
             "kernel 802.1Q VLAN devices", NO_VLAN),
}
_probed: dict[str, tuple[bool, str]] = {}     # kind → (ok, reason), once per process


@dataclass
class EpLink:
    graph: str
    endpoint: str
    kind: str
    dev: str                  # on the switch
    peer: str                 # bridge port (internal) or the host stack's interface
    bridge: str | None = None
    ip: str | None = None
    tunnel: dict | None = None  # gre-tunnel: local, remote, key, ttl
    vid: int | None = None      # vlan: the tag; ``peer`` is then the parent interface

    def to_dict(self):
        return asdict(self)


def device_probe(kind):
    """(ok, reason): can this kernel make ``kind`` devices ("gretap", "vlan")? Tried once
    per process, in a scratch namespace, so the probe leaves nothing in the node's."""
    if kind not in _probed:
        lines, offer, missing = _PROBES[kind]
        ns = names.probe_netns(names.node_tag())
        sh.ip("netns", "del", ns, check=False)          # a crashed run's
        try:
            sh.ip("netns", "add", ns)
            sh.ip_batch(lines, ns=ns)
            _probed[kind] = (True, offer)
        except sh.CommandError as e:
            unknown = "Unknown device type" in e.stderr or "not supported" in e.stderr
            _probed[kind] = (False, missing if unknown else f"{kind}: {e.stderr.strip()}")
        finally:
            sh.ip("netns", "del", ns, check=False)
    return _probed[kind]


def gretap_probe():
    return device_probe("gretap")


def tunnel_local_dev(ep):
    """The interface of this node that carries the gre-tunnel end-point's ``local-ip``;
    SteeringError (422) when none does."""
    local = ep.params["local-ip"]
    for link in sh.ip_json("addr", "show"):
        if any(a.get("local") == local for a in link.get("addr_info", [])):
            return link["ifname"]
    raise SteeringError(f"end-point '{ep.id}': no interface of this node carries local-ip "
                        f"{local} (the tunnel's underlay address must be one of the node's)",
                        f"{ep.path}.gre-tunnel.local-ip")


def check(graph, kernel_tunnels=True):
    """Refuse end-points this node cannot make (``kernel_tunnels``: we make gre-tunnel
    devices, the switch does not)."""
    for ep in graph.endpoints:
        if ep.type == "gre-tunnel" and kernel_tunnels:
            tunnel_local_dev(ep)
        if ep.type == "host-stack" and ep.params.get("configuration") != "static":
            raise SteeringError(
                f"end-point '{ep.id}': host-stack configuration "
                f"'{ep.params.get('configuration')}' is not supported yet (use static)",
                f"{ep.path}.host-stack.configuration")


def plan(graph, scope="", kernel_vlans=False):
    """{end-point id: EpLink} for the graph's end-points whose devices are made here (vlan
    ones with ``kernel_vlans``). ``scope`` (the owning tenant) keeps one tenant's internal
    groups apart from another's."""
    out = {}
    for ep in graph.endpoints:
        if ep.type not in KINDS or (ep.type == "vlan" and not kernel_vlans):
            continue
        dev, peer = names.endpoint_devs(ep.type, graph.id, ep.id, ep.params)
        if ep.type == "internal":
            group = ep.params["internal-group"]
            out[ep.id] = EpLink(graph.id, ep.id, ep.type, dev, peer,
                                bridge=names.group_bridge(scope, group))
        elif ep.type == "host-stack":
            out[ep.id] = EpLink(graph.id, ep.id, ep.type, dev, peer, ip=ep.params.get("ipv4"))
        elif ep.type == "vlan":
            out[ep.id] = EpLink(graph.id, ep.id, ep.type, dev, ep.ifname,
                                vid=int(ep.params["vlan-id"]))
        else:
            p = ep.params
            out[ep.id] = EpLink(graph.id, ep.id, ep.type, dev, "", tunnel={
                "local": p["local-ip"], "remote": p["remote-ip"], "key": p.get("gre-key"),
                "ttl": p.get("ttl")})
    return out


def _gretap_lines(ln):
    t = ln.tunnel
    kind = "ip6gretap" if ":" in t["remote"] else "gretap"
    opts = (f" key {t['key']}" if t["key"] is not None else "") + \
        (f" ttl {t['ttl']}" if t["ttl"] is not None else "")
    return [f"link add {ln.dev} type {kind} local {t['local']} remote {t['remote']}{opts}",
            f"link set {ln.dev} addrgenmode none", f"link set {ln.dev} up"]


def create(links, kernel_tunnels=True):
    """Make the devices of ``links`` (one ``ip -batch``); raise SteeringError on failure.
    gre-tunnel devices only with ``kernel_tunnels`` (else the switch makes the port)."""
    lines = []
    bridges = set()
    for ln in links:
        if ln.kind == "gre-tunnel":
            if kernel_tunnels:
                lines += _gretap_lines(ln)
            continue
        if ln.kind == "vlan":
            lines += [f"link add link {ln.peer} name {ln.dev} type vlan id {ln.vid}",
                      f"link set {ln.dev} addrgenmode none", f"link set {ln.dev} up"]
            continue
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
