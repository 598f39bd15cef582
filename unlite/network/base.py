"""What every steering backend provides (paper Table I), and the checks they share.

A backend is the big switch of the UN on one kind of datapath. The node gives it a map
"port reference → ``Attach``" (the device on this node that carries the port, and for a
``vlan`` end-point its tag) and asks it to:

- ``check(graph)``     refuse what it cannot carry: 422 naming the end-point, field or action
                       and the reason (nothing is touched);
- ``compile(graph, attach)`` → a JSON-able desired state (stored in the runtime record);
- ``apply(gid, old, new)``   move the datapath from state ``old`` to ``new``, touching only
                       what differs, as one transaction where the datapath allows it;
- ``remove(gid, state)``     delete everything of a graph (cleanup: never raises);
- ``counters(gid, state)``   {rule id: {"packets", "bytes"}};
- ``verify(gid, state)``     what the datapath holds of a graph that differs from ``state``
                       (text), or None: a restarted daemon adopts a graph whose rules are
                       all there, untouched, and re-applies the others;
- ``setup()`` / ``shutdown()`` node-wide objects (OVS bridge, tc drop sink), made at daemon
                       start and removed at daemon stop;
- ``features()``       what it supports, for ``/capabilities``.

``gre-tunnel`` end-points: nft and tc steer a kernel gretap device that ``endpoints`` makes;
ovs makes the tunnel port itself (``tunnel_ports``), on its kernel datapath also from
gretap. Where gretap is needed (``kernel_gretap``) it is probed on first need. ``vlan``
end-points: ovs tags in its flows; nft and tc (``kernel_vlan``) steer an 802.1Q device that
``endpoints`` makes, where the kernel has them (probed on first need too).

Table I mapping: create/delete LSI = a graph's table/flow-cookie space made by the first
``apply`` and dropped by ``remove``; create/delete port = a device entering/leaving a state;
create/delete rule = a rule entering/leaving a state.
"""
from __future__ import annotations

from dataclasses import dataclass
from ..errors import UnliteError


class SteeringError(UnliteError):
    status = 422


@dataclass(frozen=True)
class Attach:
    """Where a graph port meets the switch: a device on the node (and a VLAN tag)."""
    dev: str
    vlan: int | None = None


class Switch:
    name = "?"
    endpoint_types: tuple[str, ...] = ("interface", "internal", "host-stack")
    # endpoint type → why this backend (or this kernel) cannot carry it
    endpoint_refusals: dict[str, str] = {}
    unsupported_fields: dict[str, str] = {}
    supported_actions: tuple[str, ...] = ("output",)
    action_refusal = "this datapath cannot push or pop VLAN tags"
    rewrites_mac = True         # can set a frame's source MAC (the UN's trusted ports)
    rewrite_refusal = ""
    tunnel_ports = False        # makes gre-tunnel ports itself (else: a kernel gretap device)
    kernel_gretap = False       # its gre-tunnel end-points need the kernel's gretap devices
    gretap_refusal = "{why}"    # the refusal when this kernel has none
    kernel_vlan = False         # its vlan end-points are kernel 802.1Q devices
    vlan_refusal = "{why}"
    _devices_probed = False

    @classmethod
    def probe(cls):
        """(ok, reason): can this node run the backend?"""
        return True, ""

    def _probe_devices(self):
        """With ``kernel_gretap``/``kernel_vlan``: carry gre-tunnel/vlan end-points where this
        kernel has gretap/802.1Q devices, else refuse them with the reason. Probed on first
        need (in a scratch namespace, ~0.1 s: not at every daemon start)."""
        if self._devices_probed:
            return
        self._devices_probed = True
        from .endpoints import device_probe
        for wanted, kind, ep_type, refusal in (
                (self.kernel_gretap, "gretap", "gre-tunnel", self.gretap_refusal),
                (self.kernel_vlan, "vlan", "vlan", self.vlan_refusal)):
            if not wanted:
                continue
            ok, why = device_probe(kind)
            refusals = dict(self.endpoint_refusals)
            if ok:
                self.endpoint_types = (*self.endpoint_types, ep_type)
                refusals.pop(ep_type, None)
            else:
                refusals[ep_type] = refusal.format(why=why)
            self.endpoint_refusals = refusals

    def setup(self):
        """Make the node-wide objects the backend needs (idempotent)."""

    def shutdown(self):
        """Remove the node-wide objects (never raises)."""

    def features(self):
        self._probe_devices()
        return {"name": self.name, "endpoint-types": list(self.endpoint_types),
                "refused-endpoint-types": dict(self.endpoint_refusals),
                "actions": list(self.supported_actions),
                "trusted-ports": self.rewrites_mac,     # source MAC rewritten to the port's
                "unsupported-match-fields": dict(self.unsupported_fields)}

    def check(self, graph):
        """Raise SteeringError for the first thing of ``graph`` this backend cannot carry."""
        if any(ep.type in ("gre-tunnel", "vlan") for ep in graph.endpoints):
            self._probe_devices()
        for ep in graph.endpoints:
            if ep.type not in self.endpoint_types:
                why = self.endpoint_refusals.get(ep.type, "not implemented by this backend")
                raise SteeringError(
                    f"end-point '{ep.id}' has type '{ep.type}', which the '{self.name}' "
                    f"backend cannot carry: {why} (it carries: "
                    f"{', '.join(self.endpoint_types)})", f"{ep.path}.type")
        for rule in graph.rules:
            for key, _ in rule.match.fields:
                if key in self.unsupported_fields:
                    raise SteeringError(f"match field '{key}' is not supported by the "
                                        f"'{self.name}' backend: {self.unsupported_fields[key]}",
                                        f"{rule.path}.match.{key}")
            for i, act in enumerate(rule.actions):
                if act.kind not in self.supported_actions:
                    raise SteeringError(f"action '{act.kind}' is not supported by the "
                                        f"'{self.name}' backend: {self.action_refusal}",
                                        f"{rule.path}.actions[{i}]")
            if rule.set_src_mac and not self.rewrites_mac:
                raise SteeringError(f"rule '{rule.id}' comes from a trusted port, whose source "
                                    "MAC is rewritten to the port's own, which the "
                                    f"'{self.name}' backend cannot do here: "
                                    f"{self.rewrite_refusal}", f"{rule.path}.match.port_in")
            self.rule_text(rule, _AnyAttach())

    def rule_text(self, rule, attach):  # pragma: no cover - abstract
        raise NotImplementedError

    def compile(self, graph, attach):  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, graph_id, old, new):  # pragma: no cover - abstract
        raise NotImplementedError

    def remove(self, graph_id, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def counters(self, graph_id, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def snapshot(self):
        """What ``verify`` may read once for many graphs (None: each reads its own)."""
        return None

    def verify(self, graph_id, state, snapshot=None):
        """None when the datapath holds exactly ``state`` for the graph, else what differs."""
        return f"the '{self.name}' backend cannot read its rules back"


_PORT_FIELDS = ("source_port", "dest_port", "sctp_src", "sctp_dst")


def implied_ether_type(f):
    """The EtherType a rule's match fields ``f`` imply when it names none (None: any)."""
    if any(k.startswith(("ipv6_", "icmpv6")) for k in f):
        return 0x86DD
    if any(k.startswith("arp_") for k in f):
        return 0x0806
    if any(k.startswith(("ipv4_", "ip_", "icmpv4")) or k in ("protocol",) + _PORT_FIELDS
           for k in f):
        return 0x0800
    if any(k.startswith("mpls_") for k in f):
        return 0x8847
    return None


def implied_l4(f):
    """The IP protocol a rule matches: its ``protocol``, or what ICMP/SCTP fields imply."""
    if "protocol" in f:
        return f["protocol"]
    if "icmpv4_type" in f or "icmpv4_code" in f:
        return 1
    if "icmpv6_type" in f or "icmpv6_code" in f:
        return 58
    if "sctp_src" in f or "sctp_dst" in f:
        return 132
    return None


def port_fields(f, l4, backend, path):
    """(field, value) of the rule's L4 port fields; refused unless the protocol has ports
    (a backend that matches fixed fields cannot say "any protocol's port")."""
    out = []
    for key in _PORT_FIELDS:
        if key in f:
            if l4 not in (6, 17, 132):
                raise SteeringError(f"{key} needs protocol tcp (6), udp (17) or sctp (132) "
                                    f"with the {backend} backend", f"{path}.{key}")
            out.append((key, f[key]))
    return out


def rules_by_port(graph):
    """The graph's rules in evaluation order (priority high → low, then id)."""
    return sorted(graph.rules, key=lambda r: (-r.priority, r.id))


def outputs(rule, attach):
    return [attach[str(a.port)] for a in rule.actions if a.kind == "output"]


class _AnyAttach(dict):
    """An attach map that answers any port with a placeholder device (for check())."""

    def __missing__(self, key):
        return Attach("dev")
