"""The ``ovs`` steering backend: the big switch as OpenFlow 1.3 flows on one OVS bridge.

Layout: one bridge, ``ul-lsi0`` (LSI-0), holds every port of every graph — the end-point
interfaces and the node side of the NFs' veths. A graph is not a bridge of its own but a
slice of the flow table: its flows carry a cookie whose high 32 bits name the graph and
whose low 32 bits name the rule. Why not a bridge per graph joined to LSI-0 by patch ports
(the UN's layout)? On one table, every packet takes one lookup instead of two, there are no
patch ports to create, and per-graph delete, dump and counters are one cookie mask; graphs
stay isolated because every flow matches an ``in_port`` that belongs to exactly one graph.

- default drop: the bridge runs with ``fail_mode=secure`` and no controller, so a packet no
  flow matches is dropped (and OVS never falls back to a NORMAL learning switch);
- rule = one flow, OpenFlow priority = the rule's priority; ``output`` actions in order;
  ``vlan`` end-points: a rule entering from one matches ``dl_vlan`` on the parent interface
  and pops the tag first; an output to one pushes the tag (802.1Q) for that output only;
  ``push_vlan``/``pop_vlan`` actions map to OpenFlow's;
- every change is one ``ovs-ofctl --bundle`` transaction (OpenFlow 1.4 bundles: all flows
  or none), preceded by one ``ovs-vsctl`` transaction adding the new ports and followed by one
  removing the ports no longer used. A failed flow bundle removes the ports it added.

- ``gre-tunnel`` end-points are OVS tunnel ports of the bridge (``type=gre``,
  ``options:remote_ip/local_ip/key``), named ``ulr<hash>`` like the device the other
  backends get; flows take traffic in from them and out to them like any other port.
  With the userspace datapath (OVS "native tunneling") the underlay is the operator's: the
  local IP must sit on the internal interface of another ``netdev`` bridge of this
  ovs-vswitchd that holds the uplink (the ``br-phy`` of OVS's userspace-tunneling guide),
  so OVS finds the route (learnt from the kernel, ``ovs/route/show``) and resolves the
  remote's MAC itself (``tnl/arp/show``); a tunnel whose local IP is elsewhere is refused.
  The kernel datapath makes GRE ports from the kernel's gretap: there they are offered once
  the first need has probed it (``Switch.kernel_gretap``).

ovs-vswitchd must run in the node's network namespace; the datapath type is ``system``
(kernel module) or ``netdev`` (userspace, e.g. where there is no openvswitch module).
OpenFlow flows do not survive an ovs-vswitchd restart; a restart of unlite keeps them: at start
it adopts a graph whose flows are all there (``verify``) and re-applies the others.
"""
from __future__ import annotations

import re
import zlib

from .. import names, sh
from . import endpoints
from .base import (SteeringError, Switch, implied_ether_type, implied_l4, port_fields,
                   rules_by_port)

BRIDGE = names.OVS_BRIDGE
OF = ["-O", "OpenFlow13"]
MASK = 0xFFFFFFFF00000000


graph_cookie = names.ovs_cookie


def _vsctl(*args, check=True):
    return sh.run(["ovs-vsctl", "--timeout=10", *args], check=check)


class OvsSwitch(Switch):
    name = "ovs"
    endpoint_types = ("interface", "vlan", "internal", "host-stack", "gre-tunnel")
    unsupported_fields = {}
    supported_actions = ("output", "push_vlan", "pop_vlan")
    tunnel_ports = True
    gretap_refusal = "the kernel datapath makes GRE ports from kernel gretap devices, and {why}"

    def __init__(self, datapath="system"):
        if datapath not in ("system", "netdev"):
            raise SteeringError(f"OVS datapath must be system or netdev, not '{datapath}'",
                                status=400)
        self.datapath = datapath
        if datapath == "system":                # gre-tunnel once gretap is probed
            self.kernel_gretap = True
            self.endpoint_types = tuple(t for t in self.endpoint_types if t != "gre-tunnel")

    @classmethod
    def probe(cls):
        try:
            ver = sh.run(["ovs-vsctl", "--timeout=5", "get", "Open_vSwitch", ".",
                          "ovs_version"], timeout=10).strip().strip('"')
            return True, f"Open vSwitch {ver}, OpenFlow 1.3 flows, bundles"
        except sh.CommandError as e:
            return False, f"no running ovsdb-server/ovs-vswitchd: {e.stderr or e}"

    def setup(self):
        _vsctl("--may-exist", "add-br", BRIDGE, "--", "set", "Bridge", BRIDGE,
               f"datapath_type={self.datapath}", "fail_mode=secure",
               "protocols=OpenFlow10,OpenFlow13,OpenFlow14", "--", "set", "Interface", BRIDGE,
               "mtu_request=1500")
        # no del-flows: a previous run's graphs go on flowing (the node adopts them or
        # removes them by cookie from their records)

    def shutdown(self):
        _vsctl("--if-exists", "del-br", BRIDGE, check=False)

    def features(self):
        out = {**super().features(), "bridge": BRIDGE, "datapath": self.datapath}
        if self.datapath == "netdev" and "gre-tunnel" in self.endpoint_types:
            out["gre-tunnel"] = ("OVS native tunnel port; local-ip must be on the internal "
                                 "interface of a netdev bridge of this ovs-vswitchd holding "
                                 "the uplink")
        return out

    def check(self, graph):
        super().check(graph)
        mine = endpoints.plan(graph)
        for ep in graph.endpoints:
            if ep.type == "gre-tunnel":
                self._check_underlay(ep)
                p = ep.params
                same = _vsctl("--bare", "--columns=name", "find", "Interface", "type=gre",
                              f"options:remote_ip={p['remote-ip']}",
                              f"options:local_ip={p['local-ip']}",
                              *([f"options:key={p['gre-key']}"] if "gre-key" in p else []),
                              check=False).split()
                if [n for n in same if n != mine[ep.id].dev]:
                    raise SteeringError(
                        f"end-point '{ep.id}': the tunnel {p['local-ip']} → {p['remote-ip']}"
                        f" (key {p.get('gre-key')}) is already an OVS port ({same[0]}): one "
                        "end-point per tunnel", f"{ep.path}.gre-tunnel", 409)

    def _check_underlay(self, ep):
        """Userspace tunnels leave through the OVS bridge whose internal interface carries
        the local IP (that is where OVS routes and resolves the tunnel's underlay)."""
        dev = endpoints.tunnel_local_dev(ep)
        if self.datapath != "netdev":
            return
        br = dev if dev in _vsctl("list-br", check=False).split() else \
            _vsctl("port-to-br", dev, check=False).strip()      # a bridge's own interface, or
        #                                                         an extra internal port
        kind = _vsctl("--if-exists", "get", "Interface", dev, "type", check=False).strip()
        dp = _vsctl("get", "Bridge", br, "datapath_type", check=False).strip() if br else ""
        if br == BRIDGE or kind != "internal" or dp != "netdev":
            why = ("it is unlite's own bridge" if br == BRIDGE else
                   "not an OVS bridge's internal interface" if kind != "internal" else
                   f"bridge '{br}' does not use the netdev datapath")
            raise SteeringError(
                f"end-point '{ep.id}': local-ip {ep.params['local-ip']} is on '{dev}' ({why}); "
                "OVS userspace tunnels need it on the internal interface of a netdev bridge "
                "of this ovs-vswitchd that holds the uplink (e.g. br-phy)",
                f"{ep.path}.gre-tunnel.local-ip")

    # -- compile -----------------------------------------------------------------------------
    def rule_text(self, rule, attach):
        """One flow rule as ``match actions=...`` (without cookie)."""
        f = dict(rule.match.fields)
        src = attach[str(rule.match.port_in)]
        m = [f"in_port={src.dev}"]
        if src.vlan is not None:
            m.append(f"dl_vlan={src.vlan}")
        et = f.get("ether_type") or implied_ether_type(f)
        if "vlan_id" in f:
            m.append(f"dl_vlan={f['vlan_id']}")
        if "vlan_pcp" in f:
            m.append(f"dl_vlan_pcp={f['vlan_pcp']}")
        if et is not None:
            m.append(f"dl_type=0x{et:04x}")
        for key, mk, name in (("source_mac", "eth_src_mask", "dl_src"),
                              ("dest_mac", "eth_dst_mask", "dl_dst")):
            if key in f:
                m.append(f"{name}={f[key]}" + (f"/{f[mk]}" if mk in f else ""))
        for key, name in (("ipv4_src", "nw_src"), ("ipv4_dst", "nw_dst"),
                          ("ipv6_src", "ipv6_src"), ("ipv6_dst", "ipv6_dst"),
                          ("arp_spa", "arp_spa"), ("arp_tpa", "arp_tpa")):
            if key in f:
                mask = f.get(key + "_mask")
                m.append(f"{name}={str(f[key]).split('/')[0] if mask else f[key]}"
                         + (f"/{mask}" if mask else ""))
        proto = implied_l4(f)
        if proto is not None:
            m.append(f"nw_proto={proto}")
        path = f"{rule.path}.match"
        tp = {"source_port": "tp_src", "sctp_src": "tp_src", "dest_port": "tp_dst",
              "sctp_dst": "tp_dst"}
        m += [f"{tp[key]}={value}" for key, value in port_fields(f, proto, self.name, path)]
        simple = {"ip_dscp": "ip_dscp", "ip_ecn": "nw_ecn", "icmpv4_type": "icmp_type",
                  "icmpv4_code": "icmp_code", "icmpv6_type": "icmpv6_type",
                  "icmpv6_code": "icmpv6_code", "arp_opcode": "arp_op", "arp_sha": "arp_sha",
                  "arp_tha": "arp_tha", "ipv6_flabel": "ipv6_label",
                  "ipv6_nd_target": "nd_target", "ipv6_nd_sll": "nd_sll",
                  "ipv6_nd_tll": "nd_tll", "mpls_label": "mpls_label", "mpls_tc": "mpls_tc"}
        for key, name in simple.items():
            if key in f:
                m.append(f"{name}={f[key]}")
        if ("ipv6_nd_target" in f or "ipv6_nd_sll" in f or "ipv6_nd_tll" in f) \
                and "icmpv6_type" not in f:
            raise SteeringError("ipv6_nd_* fields need icmpv6_type 135 or 136", path)
        acts = [f"mod_dl_src:{rule.set_src_mac}"] if rule.set_src_mac else []  # trusted port
        tagged = src.vlan is not None          # the packet as it stands when actions run
        if tagged:
            acts.append("pop_vlan")
            tagged = False
        for a in rule.actions:
            if a.kind == "pop_vlan":
                acts.append("pop_vlan")
            elif a.kind == "push_vlan":
                acts += ["push_vlan:0x8100", f"set_field:{a.vlan | 0x1000}->vlan_vid"]
            else:
                dst = attach[str(a.port)]
                if dst.vlan is None:
                    acts.append(f"output:{dst.dev}")
                else:
                    acts += ["push_vlan:0x8100", f"set_field:{dst.vlan | 0x1000}->vlan_vid",
                             f"output:{dst.dev}", "pop_vlan"]
        return f"priority={min(rule.priority, 65535)},{','.join(m)},actions={','.join(acts)}"

    def compile(self, graph, attach):
        """{"ports": [device...], "flows": {device: [[rule id, cookie, flow], ...]},
        "tunnels": {port: [OVS interface option, ...]}}."""
        g = graph_cookie(graph.id)
        ports = sorted({a.dev for a in attach.values()})
        tunnels = {}
        for ep in graph.endpoints:
            if ep.type == "gre-tunnel":
                p = ep.params
                opts = [f"options:remote_ip={p['remote-ip']}",
                        f"options:local_ip={p['local-ip']}"]
                opts += [f"options:{k}={p[n]}" for k, n in (("key", "gre-key"), ("ttl", "ttl"))
                         if p.get(n) is not None]
                tunnels[attach[f"endpoint:{ep.id}"].dev] = opts
        flows = {dev: [] for dev in ports}
        used = set()
        for rule in rules_by_port(graph):
            low = zlib.crc32(rule.id.encode())
            while low in used:                 # stable per rule id; a clash moves one on
                low = (low + 1) & 0xFFFFFFFF
            used.add(low)
            flows[attach[str(rule.match.port_in)].dev].append(
                [rule.id, f"0x{g | low:016x}", self.rule_text(rule, attach)])
        return {"ports": ports, "flows": flows, "tunnels": tunnels}

    # -- apply ---------------------------------------------------------------------------------
    def apply(self, graph_id, old, new):
        old = old or {"ports": [], "flows": {}}
        g = graph_cookie(graph_id)
        added = [p for p in new["ports"] if p not in old["ports"]]
        gone = [p for p in old["ports"] if p not in new["ports"]]
        lines = []
        for dev in sorted(set(old["flows"]) | set(new["flows"])):
            before, after = old["flows"].get(dev), new["flows"].get(dev)
            if before == after:
                continue
            if before:
                lines.append(f"delete cookie=0x{g:016x}/0x{MASK:016x},in_port={dev}")
            lines += [f"add cookie={c},{flow}" for _, c, flow in after or []]
        tunnels = new.get("tunnels", {})
        try:
            if added:
                args = []
                for dev in added:
                    args += ["--", "--may-exist", "add-port", BRIDGE, dev]
                    if dev in tunnels:
                        args += ["--", "set", "Interface", dev, "type=gre", *tunnels[dev]]
                _vsctl(*args[1:])
                for dev in (d for d in added if d in tunnels):
                    err = _vsctl("get", "Interface", dev, "error", check=False).strip()
                    if err not in ("", "[]"):
                        raise SteeringError(f"OVS cannot make tunnel port {dev}: {err}")
            if lines:
                sh.run(["ovs-ofctl", "-O", "OpenFlow14", "--bundle", "add-flows", BRIDGE, "-"],
                       input="\n".join(lines) + "\n")
        except (sh.CommandError, SteeringError) as e:
            if added:
                self._del_ports(added)
            if isinstance(e, SteeringError):
                raise
            raise SteeringError(f"{e.argv[0]} refused the ports or flows: {e.stderr}") from e
        if gone:
            self._del_ports(gone)

    @staticmethod
    def _del_ports(devs):
        """Take ``devs`` off the bridge, but those another graph's flows still use: two
        graphs share an interface through two VLANs of it (the node allows nothing else)."""
        devs = set(devs)
        if not devs:
            return
        try:
            flows = sh.run(["ovs-ofctl", *OF, "--names", "dump-flows", BRIDGE])
        except sh.CommandError:
            flows = ""
        used = set(re.findall(r"(?:in_port=|output:)\"?([^,\s\"]+)", flows))
        args = []
        for dev in sorted(devs - used):
            args += ["--", "--if-exists", "del-port", BRIDGE, dev]
        if args:
            _vsctl(*args[1:], check=False)

    def remove(self, graph_id, state=None):
        g = graph_cookie(graph_id)
        sh.run(["ovs-ofctl", *OF, "del-flows", BRIDGE, f"cookie=0x{g:016x}/0x{MASK:016x}"],
               check=False)
        if state and state.get("ports"):
            self._del_ports(state["ports"])

    def verify(self, graph_id, state, snapshot=None):
        """The bridge has every port of ``state`` and exactly its flows (by cookie)."""
        state = state or {}
        try:
            have = set(_vsctl("list-ports", BRIDGE).split())
            g = graph_cookie(graph_id)
            out = sh.run(["ovs-ofctl", *OF, "dump-flows", BRIDGE,
                          f"cookie=0x{g:016x}/0x{MASK:016x}"])
        except sh.CommandError as e:
            return f"cannot read bridge {BRIDGE}: {e.stderr or e}"
        missing = [p for p in state.get("ports", []) if p not in have]
        if missing:
            return f"bridge {BRIDGE} lacks ports {missing}"
        flows = sorted(int(m.group(1), 16) for m in re.finditer(r"cookie=(0x[0-9a-f]+)", out))
        want = sorted(int(c, 16) for fl in state.get("flows", {}).values() for _, c, _ in fl)
        if flows != want:
            return f"bridge {BRIDGE} holds {len(flows)} flows of the graph, not {len(want)}"
        return None

    def counters(self, graph_id, state=None):
        g = graph_cookie(graph_id)
        try:
            out = sh.run(["ovs-ofctl", *OF, "dump-flows", BRIDGE,
                          f"cookie=0x{g:016x}/0x{MASK:016x}"])
        except sh.CommandError:
            return {}
        ids = {int(c, 16): rid for flows in (state or {}).get("flows", {}).values()
               for rid, c, _ in flows}
        res = {}
        for line in out.splitlines():
            mc = re.search(r"cookie=(0x[0-9a-f]+)", line)
            mp = re.search(r"n_packets=(\d+)", line)
            mb = re.search(r"n_bytes=(\d+)", line)
            if mc and mp and mb and int(mc.group(1), 16) in ids:
                res[ids[int(mc.group(1), 16)]] = {"packets": int(mp.group(1)),
                                                  "bytes": int(mb.group(1))}
        return res
