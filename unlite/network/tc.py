"""The ``tc`` steering backend: the big switch as clsact ingress filters with ``mirred``.

Paper Table I on tc:
- port  = a ``clsact`` qdisc on the device (an end-point interface or the node side of an
          NF's veth); the port's rules are its ingress filters;
- rule  = one ``u32`` filter per flow rule, ``pref`` = its rank in priority order, actions
          ``mirred egress mirror`` to all outputs but the last and ``mirred egress redirect``
          to the last; packet/byte counters are the mirred action's statistics;
- default drop = a last filter (``pref 50000``, matches everything) with tc's own drop
          action (``gact``, kmod-sched-core) where the kernel has it (probed at start);
          where it has not (many kernels, this machine's included), one that redirects to
          the node's *drop sink*: a veth whose peer sits in an empty namespace (no address,
          no forwarding), where the kernel discards whatever arrives: the same big-switch
          semantics with ``mirred`` alone.

The classifier is ``flower`` where the kernel has it (probed at start, reported in
/capabilities) and ``u32`` otherwise (flower is missing from many router kernels, and from
this one). u32 matches fixed offsets: IPv4 L4 fields assume no IP options, IPv6 ones no
extension headers; VLAN tags are invisible to it (the kernel moves them into packet
metadata before ingress), so ``vlan_*`` fields are refused; ``vlan`` end-points are 802.1Q
devices (``endpoints``), steered as plain interfaces.

Changes go through one ``tc -batch`` exec. tc has no transactions: a device whose rules
change gets its rule filters replaced while the sink filter stays, so during the swap its
packets are dropped, never forwarded where they should not go; untouched devices are not
touched at all. A failed batch is undone (best effort, ``-force``) to the old state.
"""
from __future__ import annotations

import ipaddress
import json
import os

from .. import names, sh
from ..watch import wait_links_gone
from .base import (SteeringError, Switch, implied_ether_type, implied_l4, outputs,
                   port_fields, rules_by_port)

SINK_PREF = 50000
SINK_DEV = names.SINK_DEV         # node side of the drop sink; its peer is "sink0" in SINK_NS


def sink_ns():
    """The sink's namespace, one per node namespace (two nodes on one host never share)."""
    return names.sink_netns(names.node_tag())


def _raw(off, value: bytes, mask: bytes):
    """u32 raw matches for ``value``/``mask`` at byte offset ``off`` from the network header,
    cut into naturally aligned u32/u16/u8 pieces (u32 refuses unaligned offsets)."""
    out, i = [], 0
    while i < len(value):
        o = off + i
        n = 4 if o % 4 == 0 and len(value) - i >= 4 else 2 if o % 2 == 0 and len(value) - i >= 2 \
            else 1
        v, m = int.from_bytes(value[i:i + n], "big"), int.from_bytes(mask[i:i + n], "big")
        if m:
            out.append(f"match u{8 * n} 0x{v & m:0{2 * n}x} 0x{m:0{2 * n}x} at {o}")
        i += n
    return out


def _mac(off, mac, mask=None):
    return _raw(off, bytes.fromhex(mac.replace(":", "")),
                bytes.fromhex((mask or "ff:ff:ff:ff:ff:ff").replace(":", "")))


def _net(value, mask, path):
    try:
        if mask is None:
            return str(ipaddress.ip_network(str(value), strict=False))
        return str(ipaddress.ip_network(f"{str(value).split('/')[0]}/{mask}", strict=False))
    except ValueError as e:
        raise SteeringError(f"{value}/{mask}: {e}", path) from e


_FLOWER_PORT = {"source_port": "src_port", "sctp_src": "src_port", "dest_port": "dst_port",
                "sctp_dst": "dst_port"}
_U32_PORT = {"source_port": "sport", "sctp_src": "sport", "dest_port": "dport",
             "sctp_dst": "dport"}
_PROTO_NAMES = {(6, 0x0800): "tcp", (17, 0x0800): "udp", (132, 0x0800): "sctp",
                (1, 0x0800): "icmp", (6, 0x86DD): "tcp", (17, 0x86DD): "udp",
                (132, 0x86DD): "sctp", (58, 0x86DD): "icmpv6"}


class TcSwitch(Switch):
    name = "tc"
    kernel_gretap = True
    kernel_vlan = True
    vlan_refusal = "unlite's tc filters do not pop or push VLAN tags, so a vlan end-point is " \
        "an 802.1Q device, and {why}"
    unsupported_fields = {
        "vlan_id": "u32 cannot see VLAN tags (the kernel keeps them in packet metadata)",
        "vlan_pcp": "u32 cannot see VLAN tags (the kernel keeps them in packet metadata)",
        "ipv6_nd_target": "u32 cannot follow ICMPv6 options",
        "ipv6_nd_sll": "u32 cannot follow ICMPv6 options",
        "ipv6_nd_tll": "u32 cannot follow ICMPv6 options",
        "mpls_label": "not implemented with u32",
        "mpls_tc": "not implemented with u32",
    }

    flower_refusals = {
        "ipv6_flabel": "flower has no IPv6 flow label key",
        "mpls_label": "not implemented with flower", "mpls_tc": "not implemented with flower",
    }
    no_act_vlan = {
        "vlan_id": "VLAN steering needs tc's vlan action (act_vlan, kmod-sched), absent here",
        "vlan_pcp": "VLAN steering needs tc's vlan action (act_vlan, kmod-sched), absent here",
    }

    def __init__(self, classifier=None, drop=None, vlan_action=None):
        self.classifier = classifier or type(self).classifier_found
        self.drop = drop or type(self).drop_found
        self.vlan_action = type(self).vlan_action_found if vlan_action is None else vlan_action
        if self.classifier == "flower":
            fields = {k: v for k, v in self.unsupported_fields.items()
                      if k not in ("vlan_id", "vlan_pcp")}
            self.unsupported_fields = {**fields, **self.flower_refusals,
                                       **({} if self.vlan_action else self.no_act_vlan)}
            if self.vlan_action:     # flower sees the tag; act_vlan pushes and pops it
                self.supported_actions = ("output", "push_vlan", "pop_vlan")
        self.rewrites_mac = type(self).pedit_found
        if "pop_vlan" not in self.supported_actions:
            self.action_refusal = ("pushing and popping VLAN tags needs the flower classifier "
                                   "and tc's vlan action (act_vlan)")

    classifier_found = "u32"
    drop_found = "sink"
    vlan_action_found = False
    pedit_found = False
    rewrite_refusal = "setting a source MAC needs tc's pedit action (act_pedit, kmod-sched), " \
        "absent here"

    @classmethod
    def probe(cls):
        """clsact + mirred + u32 (and flower, preferred when present) on a scratch veth."""
        a, b = "ulprobe0", "ulprobe1"
        try:
            sh.ip("link", "add", a, "type", "veth", "peer", "name", b)
        except sh.CommandError as e:
            return False, f"cannot make a scratch veth: {e.stderr}"
        act = f"action mirred egress redirect dev {b}"
        try:
            sh.run(["tc", "-batch", "-"], input=(
                f"qdisc add dev {a} clsact\n"
                f"filter add dev {a} ingress pref 1 protocol all u32 match u32 0 0 {act}\n"),
                timeout=5)
            try:
                sh.run(["tc", "filter", "add", "dev", a, "ingress", "pref", "2", "protocol",
                        "ip", "flower", "ip_proto", "tcp", *act.split()], timeout=5)
                cls.classifier_found = "flower"
            except sh.CommandError:
                cls.classifier_found = "u32"
            try:
                sh.run(["tc", "filter", "add", "dev", a, "ingress", "pref", "3", "protocol",
                        "all", "u32", "match", "u32", "0", "0", "action", "drop"], timeout=5)
                cls.drop_found = "gact"
            except sh.CommandError:
                cls.drop_found = "sink"
            try:
                sh.run(["tc", "filter", "add", "dev", a, "ingress", "pref", "4", "protocol",
                        "all", "u32", "match", "u32", "0", "0", "action", "vlan", "push", "id",
                        "5", *act.split()], timeout=5)
                cls.vlan_action_found = True
            except sh.CommandError:
                cls.vlan_action_found = False
            try:
                sh.run(["tc", "filter", "add", "dev", a, "ingress", "pref", "5", "protocol",
                        "all", "u32", "match", "u32", "0", "0", "action", "pedit", "ex",
                        "munge", "eth", "src", "set", "02:00:00:00:00:01", "pipe",
                        *act.split()], timeout=5)
                cls.pedit_found = True
            except sh.CommandError:
                cls.pedit_found = False
            return True, f"clsact + {cls.classifier_found} + mirred ({cls._drop_text()})"
        except sh.CommandError as e:
            return False, f"tc: {e.stderr or e}"
        finally:
            sh.ip("link", "del", a, check=False)

    @classmethod
    def _drop_text(cls, drop=None):
        return "drop by gact" if (drop or cls.drop_found) == "gact" else \
            "drop via a sink namespace"

    def _drop_action(self):
        return "action drop" if self.drop == "gact" else \
            f"action mirred egress redirect dev {SINK_DEV}"

    # -- node-wide: the drop sink --------------------------------------------------------------
    def setup(self):
        if self.drop == "gact":
            return          # (a previous run's sink stays while its graphs point at it)
        ns = sink_ns()
        if os.path.exists(f"/run/netns/{ns}") and sh.link_exists(SINK_DEV):
            return                  # a previous run's: its graphs' filters point at it
        self.shutdown()
        sh.ip_batch([f"netns add {ns}",
                     f"link add {SINK_DEV} type veth peer name sink0 netns {ns}",
                     f"link set {SINK_DEV} addrgenmode none", f"link set {SINK_DEV} up"])
        sh.ip_batch(["link set sink0 addrgenmode none", "link set sink0 up"], ns=ns)

    def shutdown(self):
        ns = sink_ns()
        sh.ip_batch([f"netns del {ns}"] if os.path.exists(f"/run/netns/{ns}") else [],
                    force=True)
        if wait_links_gone([SINK_DEV], 3.0):
            sh.ip("link", "del", SINK_DEV, check=False)

    def features(self):
        return {**super().features(), "classifier": self.classifier,
                "drop": "gact" if self.drop == "gact" else "sink namespace",
                "vlan-action": bool(self.vlan_action and self.classifier == "flower")}

    # -- compile ---------------------------------------------------------------------------------
    def rule_text(self, rule, attach):
        """One flow rule as a filter spec: ``protocol P u32|flower ... action mirred ...``."""
        if self.classifier == "flower":
            return self._flower_text(rule, attach)
        return self._u32_text(rule, attach)

    @staticmethod
    def _actions(rule, attach):
        """The rule's actions in order: ``vlan push``/``pop`` (act_vlan) where they stand,
        a ``mirred mirror`` per output but the last, which is a ``redirect``."""
        last = len(outputs(rule, attach))
        out, n = [], 0
        if rule.set_src_mac:                    # the UN's trusted port (act_pedit)
            out.append(f"action pedit ex munge eth src set {rule.set_src_mac} pipe")
        for a in rule.actions:
            if a.kind == "push_vlan":
                out.append(f"action vlan push id {a.vlan}")
            elif a.kind == "pop_vlan":
                out.append("action vlan pop")
            else:
                n += 1
                how = "redirect" if n == last else "mirror"
                out.append(f"action mirred egress {how} dev {attach[str(a.port)].dev}")
        return out

    def _flower_text(self, rule, attach):
        """Flower keys are named, not offsets: no assumption about IP options."""
        f = dict(rule.match.fields)
        path = f"{rule.path}.match"
        proto = f.get("ether_type") or implied_ether_type(f)
        k = []
        for key, mk, name in (("dest_mac", "eth_dst_mask", "dst_mac"),
                              ("source_mac", "eth_src_mask", "src_mac")):
            if key in f:
                k.append(f"{name} {f[key]}" + (f"/{f[mk]}" if mk in f else ""))
        l4 = implied_l4(f)
        if l4 is not None:      # tc parses port/type keys only after a named protocol
            k.append(f"ip_proto {_PROTO_NAMES.get((l4, proto), l4)}")
        for key, name in (("ipv4_src", "src_ip"), ("ipv4_dst", "dst_ip"),
                          ("ipv6_src", "src_ip"), ("ipv6_dst", "dst_ip"),
                          ("arp_spa", "arp_sip"), ("arp_tpa", "arp_tip")):
            if key in f:
                k.append(f"{name} {_net(f[key], f.get(key + '_mask'), path)}")
        k += [f"{_FLOWER_PORT[key]} {value}" for key, value in port_fields(f, l4, self.name, path)]
        if "ip_dscp" in f or "ip_ecn" in f:
            val = (f.get("ip_dscp", 0) << 2) | f.get("ip_ecn", 0)
            mask = (0xFC if "ip_dscp" in f else 0) | (0x03 if "ip_ecn" in f else 0)
            k.append(f"ip_tos 0x{val:02x}/0x{mask:02x}")
        for key in ("icmpv4_type", "icmpv6_type"):
            if key in f:
                k.append(f"type {f[key]}")
        for key in ("icmpv4_code", "icmpv6_code"):
            if key in f:
                k.append(f"code {f[key]}")
        if "arp_opcode" in f:
            k.append(f"arp_op {f['arp_opcode']}")
        for key, name in (("arp_sha", "arp_sha"), ("arp_tha", "arp_tha")):
            if key in f:
                k.append(f"{name} {f[key]}")
        ptxt = "all" if proto is None else f"0x{proto:04x}"
        if "vlan_id" in f or "vlan_pcp" in f:     # the tag first, then what it carries
            v = [f"vlan_id {f['vlan_id']}"] if "vlan_id" in f else []
            v += [f"vlan_prio {f['vlan_pcp']}"] if "vlan_pcp" in f else []
            v += [f"vlan_ethtype {ptxt}"] if proto is not None else []
            k, ptxt = v + k, "802.1Q"
        return " ".join([f"protocol {ptxt} flower"] + k + self._actions(rule, attach))

    def _u32_text(self, rule, attach):
        f = dict(rule.match.fields)
        path = f"{rule.path}.match"
        proto = f.get("ether_type") or implied_ether_type(f)
        if proto not in (None, 0x0800, 0x86DD, 0x0806) and any(
                k not in ("ether_type", "source_mac", "dest_mac", "eth_src_mask",
                          "eth_dst_mask") for k in f):
            raise SteeringError(f"ether_type 0x{proto:04x} cannot be combined with IP/ARP "
                                "fields", f"{path}.ether_type")
        m = []
        for key, mk, off in (("dest_mac", "eth_dst_mask", -14), ("source_mac", "eth_src_mask", -8)):
            if key in f:
                m += _mac(off, f[key], f.get(mk))
        ip = "ip6" if proto == 0x86DD else "ip"
        for key, sel in (("ipv4_src", "src"), ("ipv4_dst", "dst"),
                         ("ipv6_src", "src"), ("ipv6_dst", "dst")):
            if key in f:
                m.append(f"match {ip} {sel} {_net(f[key], f.get(key + '_mask'), path)}")
        if "protocol" in f:
            m.append(f"match {ip} protocol {f['protocol']} 0xff")
        l4 = f.get("protocol")
        if l4 is None and ("sctp_src" in f or "sctp_dst" in f) \
                and not ("source_port" in f or "dest_port" in f):   # those need a protocol
            m.append(f"match {ip} protocol 132 0xff")
            l4 = 132
        m += [f"match {ip} {_U32_PORT[key]} {value} 0xffff"
              for key, value in port_fields(f, l4, self.name, path)]
        if proto == 0x0800:
            if "ip_dscp" in f or "ip_ecn" in f:
                val = (f.get("ip_dscp", 0) << 2) | f.get("ip_ecn", 0)
                mask = (0xFC if "ip_dscp" in f else 0) | (0x03 if "ip_ecn" in f else 0)
                m.append(f"match ip tos 0x{val:02x} 0x{mask:02x}")
            for key, sel in (("icmpv4_type", "icmp_type"), ("icmpv4_code", "icmp_code")):
                if key in f:
                    if l4 is None:
                        m.append("match ip protocol 1 0xff")
                        l4 = 1
                    m.append(f"match ip {sel} {f[key]} 0xff")
        elif proto == 0x86DD:
            if "ip_dscp" in f or "ip_ecn" in f or "ipv6_flabel" in f:
                val = (f.get("ip_dscp", 0) << 22) | (f.get("ip_ecn", 0) << 20) \
                    | f.get("ipv6_flabel", 0)
                mask = (0x0FC00000 if "ip_dscp" in f else 0) \
                    | (0x00300000 if "ip_ecn" in f else 0) \
                    | (0x000FFFFF if "ipv6_flabel" in f else 0)
                m.append(f"match u32 0x{val:08x} 0x{mask:08x} at 0")
            for key, off in (("icmpv6_type", 40), ("icmpv6_code", 41)):
                if key in f:
                    if l4 is None:
                        m.append("match ip6 protocol 58 0xff")
                        l4 = 58
                    m.append(f"match u8 {f[key]} 0xff at {off}")
        elif proto == 0x0806:
            if "arp_opcode" in f:
                m.append(f"match u16 {f['arp_opcode']} 0xffff at 6")
            for key, off in (("arp_spa", 14), ("arp_tpa", 24)):
                if key in f:
                    net = ipaddress.ip_network(_net(f[key], f.get(key + "_mask"), path))
                    m += _raw(off, net.network_address.packed, net.netmask.packed)
            for key, off in (("arp_sha", 8), ("arp_tha", 18)):
                if key in f:
                    m += _mac(off, f[key])
        ptxt = "all" if proto is None else f"0x{proto:04x}"
        return " ".join([f"protocol {ptxt} u32"] + (m or ["match u32 0 0"])
                        + self._actions(rule, attach))

    def compile(self, graph, attach):
        """{device: [[rule id, filter spec], ...]} in evaluation order (pref = index + 1)."""
        chains = {a.dev: [] for a in attach.values()}
        for rule in rules_by_port(graph):
            chains[attach[str(rule.match.port_in)].dev].append(
                [rule.id, self.rule_text(rule, attach)])
        if any(len(rules) >= SINK_PREF for rules in chains.values()):
            raise SteeringError(f"more than {SINK_PREF - 1} rules on one port")
        return chains

    # -- apply -------------------------------------------------------------------------------------
    @staticmethod
    def _install(dev, rules):
        return [f"filter add dev {dev} ingress pref {i} {spec}"
                for i, (_, spec) in enumerate(rules, 1)]

    @staticmethod
    def _uninstall(dev, count):
        return [f"filter del dev {dev} ingress pref {i}" for i in range(1, count + 1)]

    def _port(self, dev, rules):
        return [f"qdisc add dev {dev} clsact",
                f"filter add dev {dev} ingress pref {SINK_PREF} protocol all u32 match u32 0 0 "
                f"{self._drop_action()}"] + self._install(dev, rules)

    def apply(self, graph_id, old, new):
        lines = []
        for dev, rules in new.items():
            if dev not in old:
                lines += self._port(dev, rules)
            elif old[dev] != rules:
                lines += self._uninstall(dev, len(old[dev])) + self._install(dev, rules)
        lines += [f"qdisc del dev {dev} clsact" for dev in old if dev not in new]
        if not lines:
            return
        try:
            sh.run(["tc", "-batch", "-"], input="\n".join(lines) + "\n")
        except sh.CommandError as e:
            self._undo(old, new)
            raise SteeringError(f"tc refused the rules: {e.stderr}") from e

    def _undo(self, old, new):
        lines = []
        for dev, rules in new.items():
            if dev not in old:
                lines.append(f"qdisc del dev {dev} clsact")
            elif old[dev] != rules:
                lines += self._uninstall(dev, max(len(old[dev]), len(rules)))
                lines += self._install(dev, old[dev])
        for dev, rules in old.items():
            if dev not in new:
                lines += self._port(dev, rules)
        if lines:
            sh.run(["tc", "-force", "-batch", "-"], input="\n".join(lines) + "\n", check=False)

    def remove(self, graph_id, state=None):
        lines = [f"qdisc del dev {dev} clsact" for dev in (state or {})
                 if sh.link_exists(dev)]
        if lines:
            sh.run(["tc", "-force", "-batch", "-"], input="\n".join(lines) + "\n", check=False)

    def verify(self, graph_id, state, snapshot=None):
        """Each device of ``state`` has its rule filters (pref 1..n) and the sink's."""
        for dev, rules in (state or {}).items():
            try:
                filters = json.loads(sh.run(["tc", "-j", "filter", "show", "dev", dev,
                                             "ingress"]) or "[]")
            except (sh.CommandError, ValueError):
                return f"device {dev} has no clsact qdisc (or is gone)"
            prefs = {f.get("pref") for f in filters if f.get("options", {}).get("actions")}
            want = set(range(1, len(rules) + 1)) | {SINK_PREF}
            if prefs != want:
                return f"device {dev} has filters {sorted(prefs)}, not {sorted(want)}"
            for f in filters:           # a mirred whose device went has none to send to
                for act in f.get("options", {}).get("actions", []):
                    to = act.get("to_dev")
                    if act.get("kind") == "mirred" and not (to and sh.link_exists(to)):
                        return f"a filter of {dev} sends to a device that is gone"
        return None

    def counters(self, graph_id, state=None):
        out = {}
        for dev, rules in (state or {}).items():
            if not rules:
                continue
            try:
                filters = json.loads(sh.run(["tc", "-s", "-j", "filter", "show", "dev", dev,
                                             "ingress"]) or "[]")
            except (sh.CommandError, ValueError):
                continue
            for flt in filters:
                pref = flt.get("pref", 0)
                acts = flt.get("options", {}).get("actions")
                if acts and 1 <= pref <= len(rules):
                    st = acts[-1].get("stats", {})
                    out[rules[pref - 1][0]] = {"packets": st.get("packets", 0),
                                               "bytes": st.get("bytes", 0)}
        return out
