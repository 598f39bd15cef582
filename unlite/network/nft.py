"""The ``nft`` steering backend: the big switch as nftables netdev ingress chains.

Paper Table I on nftables:
- LSI   = one ``netdev`` table per graph (``ul_<hash>``, commented with the graph id);
- port  = one base chain per ingress device of the graph (an endpoint interface or the node
          side of an NF's veth), ``hook ingress``, ``policy drop`` (big-switch default drop);
- rule  = one nft rule per flow rule, in priority order: match, ``counter``, then ``dup to``
          for all outputs but the last and ``fwd to`` the last; ``comment`` = the rule id, so
          status reads the counters back: one nfnetlink dump of the table (``nfnl.rules``),
          ``nft -j`` where that cannot be used.

Every change is one ``nft -f`` transaction: all of it lands, or nothing does. An update
rewrites only the chains whose rules changed, so an untouched path keeps flowing (and keeps
its counters).
"""
from __future__ import annotations

import ipaddress
import logging
import re

from .. import names, nfnl, sh
from .base import SteeringError, Switch, outputs, rules_by_port

log = logging.getLogger("unlite.nft")

_L4 = {6: "tcp", 17: "udp", 132: "sctp"}
_COMMENT = re.compile(r'comment "([^"]*)"$')
_OUTPUT = re.compile(r'(?:dup|fwd) to "([^"]+)"')


table_name, chain_name = names.nft_table, names.nft_chain


def _ip_net(value, mask, path):
    if mask is None:
        return str(value)
    try:
        return str(ipaddress.ip_network(f"{str(value).split('/')[0]}/{mask}", strict=False))
    except ValueError as e:
        raise SteeringError(f"mask {mask} is not a prefix mask: {e}", path) from e


class NftSwitch(Switch):
    name = "nft"
    unsupported_fields = {
        "ipv6_nd_target": "nftables has no neighbour-discovery target match",
        "ipv6_nd_sll": "nftables has no neighbour-discovery option match",
        "ipv6_nd_tll": "nftables has no neighbour-discovery option match",
        "mpls_label": "nftables cannot match MPLS labels in netdev ingress here",
        "mpls_tc": "nftables cannot match MPLS traffic classes in netdev ingress here",
    }
    kernel_gretap = True
    kernel_vlan = True
    vlan_refusal = "nftables cannot pop or push a VLAN tag, so a vlan end-point is an 802.1Q " \
        "device, and {why}"

    @classmethod
    def probe(cls):
        """(ok, reason): can this node load a netdev ingress chain with ``fwd``?"""
        try:
            sh.run(["nft", "--check", "-f", "-"], input=(
                "add table netdev ul_probe\n"
                "add chain netdev ul_probe c { type filter hook ingress device \"lo\" "
                "priority 0; policy accept; }\n"
                "add rule netdev ul_probe c counter fwd to \"lo\"\n"), timeout=5)
            return True, "nftables netdev ingress with fwd"
        except sh.CommandError as e:
            return False, f"nft: {e.stderr or e}"

    # -- compile: graph → {device: [rule text]} -------------------------------------------------
    def rule_text(self, rule, attach):
        """One flow rule as nft statements (without the ``add rule`` prefix)."""
        m = rule.match
        f = dict(m.fields)
        path = f"{rule.path}.match"
        ex = []
        v6 = f.get("ether_type") == 0x86DD
        if "vlan_id" in f:
            ex.append(f"vlan id {f['vlan_id']}")
            if "ether_type" in f:
                ex.append(f"vlan type 0x{f['ether_type']:04x}")
        elif "ether_type" in f:
            ex.append(f"ether type 0x{f['ether_type']:04x}")
        if "vlan_pcp" in f:
            ex.append(f"vlan pcp {f['vlan_pcp']}")
        for key, sel in (("source_mac", "saddr"), ("dest_mac", "daddr")):
            mk = "eth_src_mask" if sel == "saddr" else "eth_dst_mask"
            if key in f and mk in f:
                ex.append(f"ether {sel} & {f[mk]} == {f[key]}")
            elif key in f:
                ex.append(f"ether {sel} {f[key]}")
        for fam, src, dst in (("ip", "ipv4_src", "ipv4_dst"), ("ip6", "ipv6_src", "ipv6_dst")):
            for key, sel in ((src, "saddr"), (dst, "daddr")):
                if key in f:
                    ex.append(f"{fam} {sel} {_ip_net(f[key], f.get(key + '_mask'), path)}")
        fam = "ip6" if v6 or any(k.startswith("ipv6_") for k in f) else "ip"
        if "ip_dscp" in f:
            ex.append(f"{fam} dscp {f['ip_dscp']}")
        if "ip_ecn" in f:
            ex.append(f"{fam} ecn {f['ip_ecn']}")
        if "ipv6_flabel" in f:
            ex.append(f"ip6 flowlabel {f['ipv6_flabel']}")
        proto = f.get("protocol")
        if proto is not None and not (proto in _L4 and ("source_port" in f or "dest_port" in f)):
            ex.append(f"meta l4proto {proto}")
        for key, sel in (("source_port", "sport"), ("dest_port", "dport")):
            if key in f:
                if proto in _L4:
                    ex.append(f"{_L4[proto]} {sel} {f[key]}")
                elif proto is None:
                    ex.append(f"meta l4proto {{ 6, 17, 132 }} th {sel} {f[key]}")
                else:
                    raise SteeringError(f"{key} needs protocol tcp, udp or sctp "
                                        f"(got protocol {proto})", f"{path}.{key}")
        for key, sel in (("sctp_src", "sport"), ("sctp_dst", "dport")):
            if key in f:
                ex.append(f"sctp {sel} {f[key]}")
        for fam_, pre in (("icmp", "icmpv4"), ("icmpv6", "icmpv6")):
            for part in ("type", "code"):
                if f"{pre}_{part}" in f:
                    ex.append(f"{fam_} {part} {f[f'{pre}_{part}']}")
        if "arp_opcode" in f:
            ex.append(f"arp operation {f['arp_opcode']}")
        for key, sel in (("arp_spa", "saddr ip"), ("arp_tpa", "daddr ip"),
                         ("arp_sha", "saddr ether"), ("arp_tha", "daddr ether")):
            if key in f:
                val = _ip_net(f[key], f.get(key + "_mask"), path) if key.endswith("pa") \
                    else f[key]
                ex.append(f"arp {sel} {val}")
        outs = [a.dev for a in outputs(rule, attach)]
        acts = [f'dup to "{d}"' for d in outs[:-1]] + [f'fwd to "{outs[-1]}"']
        if rule.set_src_mac:                    # the UN's trusted port
            ex.append(f"ether saddr set {rule.set_src_mac}")
        return " ".join(ex + ["counter"] + acts + [f'comment "{rule.id}"'])

    def compile(self, graph, attach):
        """Desired chains of ``graph``: {ingress device: [rule text, ...]} in priority order.

        ``attach`` maps every port reference of the graph ("endpoint:ID", "vnf:ID:PORT") to
        the device that carries it on this node. Every port gets a chain, even with no rule,
        so nothing unsteered ever leaks into the node's own stack.
        """
        chains = {a.dev: [] for a in attach.values()}
        for rule in rules_by_port(graph):
            chains[attach[str(rule.match.port_in)].dev].append(self.rule_text(rule, attach))
        return chains

    # -- apply: one transaction per change --------------------------------------------------------
    def apply(self, graph_id, old, new):
        """Move graph ``graph_id`` from chains ``old`` to ``new`` (dicts from compile())."""
        t = table_name(graph_id)
        lines = []
        if not old:
            lines.append(f'add table netdev {t} {{ comment "unlite graph {graph_id}"; }}')
        for dev in old:
            if dev not in new:
                lines.append(f"delete chain netdev {t} {chain_name(dev)}")
        for dev, rules in new.items():
            c = chain_name(dev)
            if dev not in old:
                lines.append(f'add chain netdev {t} {c} {{ type filter hook ingress device '
                             f'"{dev}" priority 0; policy drop; }}')
            elif old[dev] == rules:
                continue
            else:
                lines.append(f"flush chain netdev {t} {c}")
            lines += [f"add rule netdev {t} {c} {r}" for r in rules]
        if not new:
            lines = [f"delete table netdev {t}"] if old else []
        try:
            sh.nft_apply("\n".join(lines) + "\n")
        except sh.CommandError as e:
            raise SteeringError(f"nft refused the rules: {e.stderr}") from e

    def remove(self, graph_id, state=None):
        """Delete the graph's table if it exists (cleanup; never raises)."""
        sh.nft_delete_table("netdev", table_name(graph_id), check=False)

    def counters(self, graph_id, state=None):
        """{rule id: {"packets": n, "bytes": n}} read from the kernel: one nfnetlink dump of
        the graph's rules (``nfnl.rules``; ``nft -j list table`` first reads every table
        into nft's cache, the O(N) of a status read among N graphs), ``nft`` executed where
        that cannot be used. An absent table has none."""
        t = table_name(graph_id)
        try:
            return {r["comment"]: {"packets": r["counter"][0], "bytes": r["counter"][1]}
                    for r in nfnl.rules("netdev", t) if r["comment"] is not None
                    and r["counter"] is not None}
        except nfnl.Unusable as e:
            log.debug("counters of %s: %s: executing nft", t, e)
            return self._counters_nft(t)

    @staticmethod
    def _counters_nft(table):
        """``counters`` from ``nft -j list table`` (where nfnetlink cannot be used)."""
        try:
            objs = sh.nft_json("list", "table", "netdev", table)
        except sh.CommandError:
            return {}
        out = {}
        for o in objs:
            r = o.get("rule")
            if not r or "comment" not in r:
                continue
            for e in r.get("expr", []):
                if "counter" in e:
                    out[r["comment"]] = {"packets": e["counter"]["packets"],
                                         "bytes": e["counter"]["bytes"]}
        return out

    def snapshot(self):
        """Every netdev table at once, for a restart's many ``verify`` calls: three nfnetlink
        dumps of the family (tables, chains, rules), not one ``nft`` exec that prints them
        all as JSON (that one is the fallback): {table: {chain: [(rule id, [outputs])]}}."""
        try:
            out = {t: {} for t in nfnl.tables("netdev")}
            for t, c in nfnl.chains("netdev"):
                out.setdefault(t, {})[c] = []
            for r in nfnl.rules("netdev"):
                rules = out.get(r["table"], {}).get(r["chain"])
                if rules is not None:
                    rules.append((r["comment"], r["outputs"]))
            return out
        except nfnl.Unusable as e:
            log.debug("nfnetlink: %s; listing the ruleset with nft", e)
        try:
            objs = sh.nft_json("list", "ruleset", "netdev")
        except sh.CommandError:
            return None
        by_table = {}
        for o in objs:
            body = next(iter(o.values()), None)
            if isinstance(body, dict):
                name = body.get("name") if "table" in o else body.get("table")
                by_table.setdefault(name, []).append(o)
        return {t: _shape(objs) for t, objs in by_table.items()}

    def verify(self, graph_id, state, snapshot=None):
        """The graph's table holds one chain per device of ``state`` and, in each, the rules
        of ``state`` in order (told apart by their comments: the rule ids) sending to the
        devices they name."""
        t = table_name(graph_id)
        if snapshot is not None:
            chains = snapshot.get(t)
        else:
            try:
                chains = _shape(sh.nft_json("list", "table", "netdev", t))
            except sh.CommandError:
                chains = None
        if chains is None:
            return f"its nft table {t} is gone"
        # an output device deleted (and maybe made again) shows as its old ifindex
        want = {chain_name(dev): [(_COMMENT.search(t).group(1), _OUTPUT.findall(t))
                                  for t in rules]
                for dev, rules in (state or {}).items()}
        if set(chains) != set(want):
            return (f"its nft chains are {sorted(chains)}, not {sorted(want)}")
        for c, ids in want.items():
            if chains[c] != ids:
                return f"nft chain {c} holds rules {chains[c]}, not {ids}"
        return None

    @staticmethod
    def tables():
        """Names of unlite's tables present in the kernel (leak checks, reconcile)."""
        return sorted(o["table"]["name"] for o in sh.nft_json("list", "tables", "netdev")
                      if "table" in o and o["table"]["name"].startswith("ul_"))


def _shape(objs):
    """``nft -j`` objects of one table as ``snapshot`` shapes it: {chain: [(rule id,
    [outputs])]}, or None when the table is not among them."""
    if not any("table" in o for o in objs):
        return None
    chains = {o["chain"]["name"]: [] for o in objs if "chain" in o}
    for o in objs:
        r = o.get("rule")
        if r and r.get("chain") in chains:
            chains[r["chain"]].append((r.get("comment"), [     # (nft 1.0.6 prints a dup's
                str(e[k].get("dev", e[k].get("addr")))            # device as its "addr")
                for e in r.get("expr", []) for k in ("dup", "fwd") if k in e]))
    return chains
