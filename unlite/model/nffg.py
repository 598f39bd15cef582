"""Parser and validator of the Universal Node NF-FG JSON format. Pure data: no I/O.

Map of this module
  ModelError ......... the one exception: .message, .path (JSONPath-like), .status (400)
  dataclasses ........ Port, Control, VNF, Endpoint, PortRef, Match, Action, Rule, Graph
                       (frozen and hashable; `path` is never compared, so two parses of the
                       same JSON compare equal and the node can diff graph versions)
  parse_graph() ...... entry point: JSON text / bytes / dict -> Graph (+ warnings)
  validate_id() ...... the id rule, reusable for ids that arrive in URLs
  field checks ....... _num, _bool, _mac, _ip_*, _ifname, _text ... (one per kind of value)
  _Obj ............... reads one JSON object: known keys (case slips accepted with a warning),
                       unknown keys kept in the document and reported as warnings
  sections ........... _vnf (_port, _env, _control), _endpoint (_EP_PARSERS),
                       _rule (_match, _action, _portref)

Lenient where the UN's own examples are inconsistent (graph id only in the URL, key-case
slips, "interface" for "if-name", unknown fields), strict where meaning is at stake (match
fields, actions, references, numbers: "0x06" is hex 6, "6" is decimal 6).
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from ..errors import UnliteError

__all__ = [
    "ModelError", "parse_graph", "validate_id", "Port", "Control", "VNF", "Endpoint",
    "PortRef", "Match", "Action", "Rule", "Graph", "DEFAULT_PRIORITY", "MATCH_FIELDS",
    "ENDPOINT_TYPES", "RESERVED_ENV", "MAX_DEPTH",
]

DEFAULT_PRIORITY = 32768  # OpenFlow's default priority, used when "priority" is absent
MAX_DEPTH = 32            # deepest nesting of objects/lists accepted in a document


class ModelError(UnliteError, ValueError):
    """An invalid document: `path` names the offending value, `status` the HTTP status."""

    def __init__(self, message: str, path: str = "$", status: int = 400):
        super().__init__(message, path, status)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# ---------------------------------------------------------------- data classes

@dataclass(frozen=True)
class Port:
    id: str
    name: str | None
    mac: str | None
    ip: str | None            # "10.0.0.1/24" (str of ipaddress.ip_interface)
    trusted: bool | None
    path: str = field(default="", compare=False)


@dataclass(frozen=True)
class Control:
    host_port: int
    vnf_port: int
    path: str = field(default="", compare=False)


@dataclass(frozen=True)
class VNF:
    id: str
    name: str                 # functional name, resolved to an implementation by the node
    template: str | None
    ports: tuple[Port, ...]
    env: tuple[tuple[str, str], ...]
    control: tuple[Control, ...]
    path: str = field(default="", compare=False)

    def port(self, port_id: str) -> Port | None:
        return next((p for p in self.ports if p.id == port_id), None)


@dataclass(frozen=True)
class Endpoint:
    id: str
    name: str | None
    type: str
    params: dict = field(compare=False)   # frozen by convention; compared through _key
    path: str = field(default="", compare=False)
    _key: tuple = field(default=(), init=False, repr=False)

    def __post_init__(self):
        params = dict(self.params)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "_key", tuple(sorted(params.items())))

    @property
    def ifname(self) -> str | None:
        return self.params.get("if-name") if self.type in ("interface", "vlan") else None


@dataclass(frozen=True)
class PortRef:
    kind: str                 # "endpoint" | "vnf"
    id: str
    port: str | None = None

    def __str__(self) -> str:
        return f"endpoint:{self.id}" if self.kind == "endpoint" else f"vnf:{self.id}:{self.port}"


@dataclass(frozen=True)
class Match:
    port_in: PortRef
    fields: tuple[tuple[str, object], ...] = ()   # sorted by name, normalised, no port_in

    def get(self, name: str, default=None):
        name = _SYNONYMS.get(name, name)
        return next((v for k, v in self.fields if k == name), default)


@dataclass(frozen=True)
class Action:
    kind: str                 # "output" | "push_vlan" | "pop_vlan"
    port: PortRef | None = None
    vlan: int | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    priority: int
    match: Match
    actions: tuple[Action, ...]
    path: str = field(default="", compare=False)
    # the UN's trusted port: what enters the switch from it leaves with the port's own MAC
    # as its source (a set-field before the outputs; not an action of the document)
    set_src_mac: str | None = None


@dataclass(frozen=True)
class Graph:
    id: str
    name: str | None
    vnfs: tuple[VNF, ...]
    endpoints: tuple[Endpoint, ...]
    rules: tuple[Rule, ...]
    warnings: tuple[str, ...] = field(default=(), compare=False)
    doc: dict = field(default_factory=dict, compare=False, repr=False)

    def vnf(self, id: str) -> VNF | None:
        return next((v for v in self.vnfs if v.id == id), None)

    def endpoint(self, id: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.id == id), None)


# ---------------------------------------------------------------- small helpers

def _show(value, limit: int = 48) -> str:
    """A safe, bounded rendering of a user value for messages (repr escapes controls)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tname(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _str(value, path: str, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise ModelError(f"must be {what}, not {_tname(value)}", path)
    return value


def _list(value, path: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ModelError(f"must be a list, not {_tname(value)}", path)
    return value


def _unique(seen: dict, key, path: str, what: str) -> None:
    if key in seen:
        raise ModelError(f"duplicate {what} {_show(key)} (first at {seen[key]})", path)
    seen[key] = path


# Optional fields that hold a list or an object: "" there is a type error, not an absence.
_CONTAINERS = frozenset({"VNFs", "end-points", "big-switch", "flow-rules", "ports",
                         "unify-env-variables", "unify-control"})


class _Obj:
    """One JSON object being read. get() finds a known key exactly or, failing that, by a
    case-insensitive match (a warning names the slip); done() reports what was not read."""

    def __init__(self, warnings: list, value, path: str, what: str = "an object"):
        if not isinstance(value, dict):
            raise ModelError(f"must be {what}, not {_tname(value)}", path)
        self.w, self.d, self.path = warnings, value, path
        self.found: dict[str, str | None] = {}   # known name -> key used in the document

    @property
    def used(self) -> set:
        return {k for k in self.found.values() if k is not None}

    def key(self, name: str) -> str | None:
        """The document's key for the known field `name` (exact, else a case slip)."""
        if name not in self.found:
            found = name if name in self.d else None
            if found is None:
                slips = [k for k in self.d if k.lower() == name.lower() and k not in self.used]
                if len(slips) > 1:
                    raise ModelError(f"ambiguous keys {', '.join(map(_show, slips))} for "
                                     f"'{name}'", _join(self.path, slips[1]))
                if slips:
                    found = slips[0]
                    self.w.append(f"key {_show(found)} read as '{name}' at {self.path}")
            self.found[name] = found
        return self.found[name]

    def get(self, name: str, required: bool = False, hint: str = "") -> tuple[Any, str]:
        """(value, path); null counts as absent, and so does "" for an optional field (as
        the UN reads it: its elastic-router graphs send "vnf_template": "", "mac": "").
        A missing required key is a 400."""
        key = self.key(name)
        path = _join(self.path, key or name)
        value = None if key is None else self.d[key]
        if value == "" and not required and name not in _CONTAINERS:
            value = None
        if value is None and required:
            state = "is missing" if key is None else "must not be null"
            raise ModelError(f"required field '{name}' {state}{hint}", path)
        return value, path

    def done(self) -> None:
        for key in self.d:
            if key not in self.used:
                self.w.append(f"unknown field {_show(key)} at {self.path} ignored")


# ---------------------------------------------------------------- field checks

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ID_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def validate_id(value, path: str = "$", kind: str = "id") -> str:
    """Check an id (graph, VNF, endpoint, rule...): a string matching ID_RE."""
    if not isinstance(value, str):
        raise ModelError(f"{kind} must be a string, not {_tname(value)}", path)
    if not ID_RE.fullmatch(value):
        raise ModelError(f"invalid {kind} {_show(value)}: must be {ID_RULE}", path)
    return value


PORT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def _port_id(value, path: str) -> str:
    _str(value, path)
    if not PORT_ID_RE.fullmatch(value):
        raise ModelError(f"invalid port id {_show(value)}: must be 1-64 letters, digits, "
                         "'_', '.', ':' or '-', starting with a letter or digit", path)
    return value


_TEMPLATE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@%+=~-]{0,255}")


def _template(value, path: str) -> str:
    _str(value, path)
    if not _TEMPLATE_RE.fullmatch(value) or ".." in value or "%2e" in value.lower():
        raise ModelError(f"invalid vnf_template {_show(value)}: a file name or URI of letters, "
                         "digits and _.:/@%+=~- (no '..' or '%2e'), starting with a letter or "
                         "digit", path)
    return value


_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _text(value, path: str, limit: int = 256) -> str:
    """Free text (names): a string without control characters, at most `limit` long."""
    _str(value, path)
    if len(value) > limit or _BAD_TEXT.search(value):
        raise ModelError(f"must be text of at most {limit} characters without control "
                         "characters", path)
    return value


_DEC = re.compile(r"[0-9]{1,20}")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]{1,16}")


def _num(value, path: str, lo: int, hi: int) -> int:
    """An integer given as a JSON int or a string: decimal ("6") or 0x-hex ("0x06")."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ModelError(f"must be an integer or a numeric string, not {_tname(value)}", path)
    if isinstance(value, str):
        if _HEX.fullmatch(value):
            value = int(value, 16)
        elif _DEC.fullmatch(value):
            value = int(value, 10)
        else:
            raise ModelError(f"{_show(value)} is not a number (decimal or 0x-hex)", path)
    if not lo <= value <= hi:
        raise ModelError(f"{value} is out of range {lo}..{hi}", path)
    return value


def _bool(value, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ModelError(f"must be true or false, not {_show(value)}", path)


_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


def _mac(value, path: str, unicast: bool = False) -> str:
    _str(value, path)
    if not _MAC_RE.fullmatch(value):
        raise ModelError(f"invalid MAC address {_show(value)}: expected aa:bb:cc:dd:ee:ff", path)
    mac = value.lower()
    if unicast and int(mac[:2], 16) & 1:
        raise ModelError(f"MAC address {mac} is multicast; a port needs a unicast address", path)
    if unicast and mac == "00:00:00:00:00:00":
        raise ModelError("MAC address 00:00:00:00:00:00 is not a usable address", path)
    return mac


def _ip_check(value, path: str) -> str:
    _str(value, path)
    if "%" in value:   # ipaddress would take "fe80::1%<anything>" as a scope id
        raise ModelError(f"invalid IP address {_show(value)}: scope ids are not accepted", path)
    return value


def _ip_version(ip, value, path: str, version: int | None):
    if version and ip.version != version:
        raise ModelError(f"{_show(value)} is not an IPv{version} address", path)
    return ip


def _ip_iface(value, path: str, version: int | None = None) -> str:
    """Address with an explicit prefix ("10.0.0.1/24"), as for an interface."""
    _ip_check(value, path)
    if "/" not in value:
        raise ModelError(f"{_show(value)} needs a prefix length, e.g. 10.0.0.1/24", path)
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise ModelError(f"invalid IP address/prefix {_show(value)}", path) from None
    return str(_ip_version(iface, value, path, version))


def _ip_addr(value, path: str, version: int | None = None) -> str:
    _ip_check(value, path)
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise ModelError(f"invalid IP address {_show(value)}", path) from None
    return str(_ip_version(addr, value, path, version))


def _ip_net(value, path: str, version: int) -> str:
    """A match on an address or a network: "10.0.0.1" -> "10.0.0.1/32", host bits cleared."""
    _ip_check(value, path)
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ModelError(f"invalid IPv{version} address or network {_show(value)}", path) from None
    return str(_ip_version(net, value, path, version))


_IFNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")


def _ifname(value, path: str) -> str:
    _str(value, path)
    if not _IFNAME_RE.fullmatch(value):
        raise ModelError(f"invalid interface name {_show(value)}: 1-15 letters, digits, "
                         "'_', '.' or '-', not starting with '.' or '-'", path)
    return value


# ---------------------------------------------------------------- port references

def _portref(value, path: str, vnfs: dict, endpoints: dict) -> PortRef:
    """"endpoint:<id>" or "vnf:<vnf-id>:<port-id>" (the port id may itself hold colons)."""
    _str(value, path)
    kind, _, rest = value.partition(":")
    if kind == "endpoint" and rest:
        if rest not in endpoints:
            raise ModelError(f"{_show(value)} refers to endpoint {_show(rest)}, which is not "
                             "in this graph", path)
        return PortRef("endpoint", rest)
    vnf_id, sep, port = rest.partition(":")
    if kind == "vnf" and vnf_id and sep and port:
        vnf = vnfs.get(vnf_id)
        if vnf is None:
            raise ModelError(f"{_show(value)} refers to VNF {_show(vnf_id)}, which is not in "
                             "this graph", path)
        if vnf.port(port) is None:
            raise ModelError(f"{_show(value)} refers to port {_show(port)}, which VNF "
                             f"{_show(vnf_id)} does not have", path)
        return PortRef("vnf", vnf_id, port)
    raise ModelError(f"invalid port reference {_show(value)}: expected 'endpoint:<id>' or "
                     "'vnf:<vnf-id>:<port-id>'", path)


# ---------------------------------------------------------------- VNFs

def _port(w: list, value, path: str, seen: dict) -> Port:
    o = _Obj(w, value, path)
    pid, ppath = o.get("id", True)
    _unique(seen, _port_id(pid, ppath), ppath, "port id")
    name, npath = o.get("name")
    mac, mpath = o.get("mac")
    ip, ipath = o.get("unify-ip")
    trusted, tpath = o.get("trusted")
    o.done()
    trusted = None if trusted is None else _bool(trusted, tpath)
    if trusted and mac is None:         # as the UN refuses it: nothing to rewrite to
        raise ModelError(f"port {_show(pid)} is trusted but has no 'mac': the source MAC of "
                         "what the NF sends from a trusted port is rewritten to the port's "
                         "own address, so it needs one", tpath)
    return Port(pid, None if name is None else _text(name, npath),
                None if mac is None else _mac(mac, mpath, unicast=True),
                None if ip is None else _ip_iface(ip, ipath), trusted, path)


_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
RESERVED_ENV = frozenset({"PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "PS4", "HOME"})
_RESERVED_ENV_PREFIXES = ("UNLITE_", "LD_")
_ENV_VALUE_MAX = 4096


def _env(w: list, value, path: str, seen: dict) -> tuple[str, str]:
    """{"variable": "NAME=value"} or "NAME=value". Errors name the entry's path."""
    if isinstance(value, dict):
        o = _Obj(w, value, path)
        text, tpath = o.get("variable", True)
        o.done()
        _str(text, tpath, 'a "NAME=value" string')
    else:
        text = _str(value, path, 'an object {"variable": "NAME=value"} or a "NAME=value" string')
    name, eq, val = text.partition("=")
    if not eq:
        raise ModelError(f"{_show(text)} is not of the form NAME=value", path)
    if not _ENV_NAME_RE.fullmatch(name):
        raise ModelError(f"invalid variable name {_show(name)}: letters, digits and '_', "
                         "not starting with a digit, at most 64", path)
    upper = name.upper()
    if upper in RESERVED_ENV or upper.startswith(_RESERVED_ENV_PREFIXES):
        raise ModelError(f"variable name {name} is reserved (PATH, IFS, ENV, BASH_ENV, "
                         "SHELLOPTS, PS4, HOME, UNLITE_*, LD_*)", path)
    if "\x00" in val or re.search(r"[\ud800-\udfff]", val) or len(val) > _ENV_VALUE_MAX:
        raise ModelError(f"value of {name} must be at most {_ENV_VALUE_MAX} characters of "
                         "text without NUL", path)
    _unique(seen, name, path, "variable")
    return name, val


def _control(w: list, value, path: str, host_ports: dict) -> Control:
    o = _Obj(w, value, path)
    host = _num(*o.get("host-tcp-port", True), 1, 65535)
    vnf = _num(*o.get("vnf-tcp-port", True), 1, 65535)
    o.done()
    _unique(host_ports, host, _join(path, "host-tcp-port"), "host-tcp-port")
    return Control(host, vnf, path)


def _vnf(w: list, value, path: str, seen: dict, host_ports: dict) -> VNF:
    o = _Obj(w, value, path)
    vid, vpath = o.get("id", True)
    _unique(seen, validate_id(vid, vpath, "VNF id"), vpath, "VNF id")
    name = validate_id(*o.get("name", True), "VNF name")
    template, tpath = o.get("vnf_template")
    if template is not None:
        template = _template(template, tpath)
    raw, ppath = o.get("ports")
    port_ids: dict = {}
    ports = tuple(_port(w, p, f"{ppath}[{i}]", port_ids) for i, p in enumerate(_list(raw, ppath)))
    raw, epath = o.get("unify-env-variables")
    names: dict = {}
    env = tuple(_env(w, e, f"{epath}[{i}]", names) for i, e in enumerate(_list(raw, epath)))
    raw, cpath = o.get("unify-control")
    control = tuple(_control(w, c, f"{cpath}[{i}]", host_ports)
                    for i, c in enumerate(_list(raw, cpath)))
    o.done()
    return VNF(vid, name, template, ports, env, control, path)


# ---------------------------------------------------------------- end-points

ENDPOINT_TYPES = ("interface", "vlan", "gre-tunnel", "internal", "host-stack")


def _ep_ifname(o: _Obj, required: bool) -> str | None:
    """"if-name", or "interface" as the UN README examples write it."""
    a, apath = o.get("if-name")
    b, bpath = o.get("interface")
    if a is not None and b is not None and a != b:
        raise ModelError(f"'interface' {_show(b)} contradicts 'if-name' {_show(a)}", bpath)
    if a is None and b is None:
        if required:
            raise ModelError("required field 'if-name' is missing", apath)
        return None
    return _ifname(a, apath) if a is not None else _ifname(b, bpath)


def _ep_interface(o: _Obj) -> dict:
    params = {"if-name": _ep_ifname(o, True)}
    node, npath = o.get("node-id")
    if node is not None:
        params["node-id"] = _text(node, npath)
    return params


def _ep_vlan(o: _Obj) -> dict:
    return {"vlan-id": _num(*o.get("vlan-id", True), 1, 4094), "if-name": _ep_ifname(o, True)}


def _ep_gre(o: _Obj) -> dict:
    local = _ip_addr(*o.get("local-ip", True))
    remote, rpath = o.get("remote-ip", True)
    remote = _ip_addr(remote, rpath)
    if ipaddress.ip_address(local).version != ipaddress.ip_address(remote).version:
        raise ModelError("local-ip and remote-ip must be of the same IP version", rpath)
    params: dict[str, Any] = {"local-ip": local, "remote-ip": remote}
    for key, check in (("gre-key", lambda v, p: _num(v, p, 0, 2**32 - 1)),
                       ("ttl", lambda v, p: _num(v, p, 1, 255)), ("secure", _bool)):
        value, path = o.get(key)
        if value is not None:
            params[key] = check(value, path)
    old, opath = o.get("safe")              # what unlite read before the UN's own "secure"
    if old is not None:
        if "secure" in params:
            raise ModelError("'safe' and 'secure' both given: 'secure' is the UN's key", opath)
        params["secure"] = _bool(old, opath)
        o.w.append(f"key 'safe' read as 'secure' at {o.path} (the UN's name)")
    ifname = _ep_ifname(o, False)
    if ifname is not None:
        params["if-name"] = ifname
    return params


def _ep_internal(o: _Obj) -> dict:
    return {"internal-group": validate_id(*o.get("internal-group", True), "internal-group")}


def _ep_host_stack(o: _Obj) -> dict:
    conf, cpath = o.get("configuration", True)
    conf = _str(conf, cpath).lower()
    if conf not in ("static", "dhcp", "pppoe"):
        raise ModelError(f"configuration must be static, dhcp or pppoe, not {_show(conf)}", cpath)
    params = {"configuration": conf}
    ipv4, ipath = o.get("ipv4", conf == "static", hint=" (configuration is static)")
    if ipv4 is not None:
        params["ipv4"] = _ip_iface(ipv4, ipath, 4)
    return params


_EP_PARSERS = {"interface": _ep_interface, "vlan": _ep_vlan, "gre-tunnel": _ep_gre,
               "internal": _ep_internal, "host-stack": _ep_host_stack}


def _endpoint(w: list, value, path: str, seen: dict) -> Endpoint:
    o = _Obj(w, value, path)
    eid, ipath = o.get("id", True)
    _unique(seen, validate_id(eid, ipath, "endpoint id"), ipath, "endpoint id")
    name, npath = o.get("name")
    etype, tpath = o.get("type", True)
    if _str(etype, tpath) not in _EP_PARSERS:
        raise ModelError(f"unknown endpoint type {_show(etype)}: known types are "
                         f"{', '.join(ENDPOINT_TYPES)}", tpath)
    spec = _Obj(w, *o.get(etype, True, hint=f" for an endpoint of type '{etype}'"))
    params = _EP_PARSERS[etype](spec)
    spec.done()
    o.done()
    return Endpoint(eid, None if name is None else _text(name, npath), etype, params, path)


# ---------------------------------------------------------------- flow rules

_NUMBERS = {
    "ether_type": 0xFFFF, "vlan_id": 4095, "vlan_pcp": 7, "ip_dscp": 63, "ip_ecn": 3,
    "protocol": 255, "source_port": 65535, "dest_port": 65535, "sctp_src": 65535,
    "sctp_dst": 65535, "icmpv4_type": 255, "icmpv4_code": 255, "icmpv6_type": 255,
    "icmpv6_code": 255, "arp_opcode": 65535, "ipv6_flabel": 0xFFFFF, "mpls_label": 0xFFFFF,
    "mpls_tc": 7,
}
_MACS = {"source_mac", "dest_mac", "eth_src_mask", "eth_dst_mask", "arp_sha", "arp_tha",
         "ipv6_nd_sll", "ipv6_nd_tll"}
_NETS = {"source_ip": 4, "dest_ip": 4, "ipv4_src": 4, "ipv4_dst": 4, "arp_spa": 4,
         "arp_tpa": 4, "ipv6_src": 6, "ipv6_dst": 6}
_MASKS = {"ipv4_src_mask": 4, "ipv4_dst_mask": 4, "arp_spa_mask": 4, "arp_tpa_mask": 4,
          "ipv6_src_mask": 6, "ipv6_dst_mask": 6}
_ADDRS = {"ipv6_nd_target": 6}
_SYNONYMS = {"source_ip": "ipv4_src", "dest_ip": "ipv4_dst"}
_MASK_BASE = {"eth_src_mask": "source_mac", "eth_dst_mask": "dest_mac",
              "ipv4_src_mask": "ipv4_src", "ipv4_dst_mask": "ipv4_dst",
              "arp_spa_mask": "arp_spa", "arp_tpa_mask": "arp_tpa",
              "ipv6_src_mask": "ipv6_src", "ipv6_dst_mask": "ipv6_dst"}
MATCH_FIELDS = frozenset({"port_in", *_NUMBERS, *_MACS, *_NETS, *_MASKS, *_ADDRS})


def _match_value(name: str, value, path: str):
    if name in _NUMBERS:
        return _num(value, path, 0, _NUMBERS[name])
    if name in _MACS:
        return _mac(value, path)
    if name in _NETS:
        return _ip_net(value, path, _NETS[name])
    if name in _MASKS:
        return _ip_addr(value, path, _MASKS[name])
    return _ip_addr(value, path, _ADDRS[name])


def _match(w: list, value, path: str, vnfs: dict, endpoints: dict) -> Match:
    o = _Obj(w, value, path)
    port_in = _portref(*o.get("port_in", True, hint=": a big-switch rule must say where "
                              "traffic enters"), vnfs, endpoints)
    fields: dict = {}
    where: dict = {}          # normalised name -> (document key, path, field name)
    prefixed = set()          # network fields given with an explicit /prefix
    for key, raw in o.d.items():
        if key in o.used:
            continue
        name = key if key in MATCH_FIELDS else next(
            (f for f in MATCH_FIELDS if f.lower() == key.lower()), None)
        kpath = _join(path, key)
        if name is None:
            raise ModelError(f"unknown match field {_show(key)}", kpath)
        if name == "port_in":
            raise ModelError(f"{_show(key)} repeats port_in", kpath)
        if name != key:
            w.append(f"key {_show(key)} read as '{name}' at {path}")
        val = _match_value(name, raw, kpath)
        canon = _SYNONYMS.get(name, name)
        if name in _NETS and "/" in raw:
            prefixed.add(canon)
        if canon in fields:
            first, _, first_name = where[canon]
            if first_name == name:
                raise ModelError(f"match field {name} given twice ({_show(first)} and "
                                 f"{_show(key)})", kpath)
            if fields[canon] != val:
                raise ModelError(f"{key} {_show(val)} contradicts {first} "
                                 f"{_show(fields[canon])}", kpath)
            continue
        fields[canon], where[canon] = val, (key, kpath, name)
    for mask, base in _MASK_BASE.items():
        if mask in fields:
            if base not in fields:
                also = {"ipv4_src": " (or source_ip)", "ipv4_dst": " (or dest_ip)"}.get(base, "")
                raise ModelError(f"{mask} needs {base}{also} in the same match", where[mask][1])
            if base in prefixed:
                raise ModelError(f"{where[base][0]} has a /prefix and {mask} a mask: give one "
                                 "of them", where[mask][1])
    return Match(port_in, tuple(sorted(fields.items())))


_ACTIONS = ("output_to_port", "push_vlan", "pop_vlan")


def _action(w: list, value, path: str, vnfs: dict, endpoints: dict) -> Action:
    if not isinstance(value, dict):
        raise ModelError(f"an action must be an object, not {_tname(value)}", path)
    found = []
    for key in value:
        name = next((a for a in _ACTIONS if a == key or a.lower() == key.lower()), None)
        if name is None:
            raise ModelError(f"unknown action {_show(key)}: known actions are "
                             f"{', '.join(_ACTIONS)}", _join(path, key))
        if name != key:
            w.append(f"key {_show(key)} read as '{name}' at {path}")
        found.append((name, value[key], _join(path, key)))
    if len(found) != 1:
        raise ModelError("an action object needs exactly one of " + ", ".join(_ACTIONS) +
                         f" (found {len(found)}); use one object per action", path)
    name, raw, kpath = found[0]
    if name == "output_to_port":
        return Action("output", port=_portref(raw, kpath, vnfs, endpoints))
    if name == "push_vlan":
        return Action("push_vlan", vlan=_num(raw, kpath, 1, 4094))
    if not _bool(raw, kpath):
        raise ModelError("pop_vlan must be true", kpath)
    return Action("pop_vlan")


def _rule(w: list, value, path: str, vnfs: dict, endpoints: dict, seen: dict) -> Rule:
    o = _Obj(w, value, path)
    rid, ipath = o.get("id", True)
    _unique(seen, validate_id(rid, ipath, "rule id"), ipath, "rule id")
    prio, ppath = o.get("priority")
    prio = DEFAULT_PRIORITY if prio is None else _num(prio, ppath, 0, 65535)
    match = _match(w, *o.get("match", True), vnfs, endpoints)
    raw, apath = o.get("actions", True)
    if not _list(raw, apath):
        raise ModelError("actions must not be empty", apath)
    actions = tuple(_action(w, a, f"{apath}[{i}]", vnfs, endpoints) for i, a in enumerate(raw))
    if not any(a.kind == "output" for a in actions):
        raise ModelError("a rule needs an output_to_port action", apath)
    o.done()
    pin = match.port_in
    port = vnfs[pin.id].port(pin.port) if pin.kind == "vnf" else None
    return Rule(rid, prio, match, actions, path, port.mac if port and port.trusted else None)


# ---------------------------------------------------------------- documents

class _DupKeys(dict):
    """A decoded JSON object in which some key occurred more than once."""
    dups: tuple = ()


def _pairs(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen, dups = set(), []
        for key, _ in pairs:
            if key in seen:
                dups.append(key)
            seen.add(key)
        out = _DupKeys(out)
        out.dups = tuple(dups)
    return out


def _loads(text) -> object:
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ModelError(f"malformed JSON: not UTF-8 text (byte {e.start})") from None
    text = text.removeprefix("\ufeff")
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as e:
        raise ModelError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno} "
                         f"(char {e.pos})") from None
    except RecursionError:
        raise ModelError(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:   # e.g. an integer literal with thousands of digits
        raise ModelError(f"malformed JSON: {e}") from None


def _copy(value, path: str, depth: int = 1):
    """Deep copy of a JSON value, refusing deep nesting, duplicate or non-string keys,
    NaN/infinities and non-JSON types."""
    if isinstance(value, (dict, list, tuple)):
        if depth > MAX_DEPTH:
            raise ModelError(f"nested deeper than {MAX_DEPTH} levels", path)
        if isinstance(value, list | tuple):
            return [_copy(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        if isinstance(value, _DupKeys):
            raise ModelError(f"duplicate key {_show(value.dups[0])} in one object",
                             _join(path, value.dups[0]))
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ModelError(f"object keys must be strings, not {_tname(key)}", path)
            out[key] = _copy(item, _join(path, key), depth + 1)
        return out
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise ModelError("NaN and infinities are not valid JSON numbers", path)
    raise ModelError(f"not a JSON value: {type(value).__name__}", path)


def parse_graph(doc, graph_id: str | None = None) -> Graph:
    """Parse and validate an NF-FG: a dict, or JSON text (str/bytes).

    `graph_id` (from the URL) wins over forwarding-graph.id; a mismatch is a warning.
    Raises ModelError (status 400) naming the JSON path of the first invalid value."""
    if isinstance(doc, (str, bytes, bytearray, memoryview)):
        doc = _loads(doc)
    doc = _copy(doc, "$")
    w: list[str] = []
    top = _Obj(w, doc, "$", 'a JSON object {"forwarding-graph": {...}}')
    fg_key = top.key("forwarding-graph") or "forwarding-graph"
    fg = _Obj(w, *top.get("forwarding-graph", True))
    top.done()

    doc_id, id_path = fg.get("id")
    if doc_id is not None:
        validate_id(doc_id, id_path, "graph id")
    if graph_id is not None:
        validate_id(graph_id, "graph_id", "graph id")
        if doc_id is not None and doc_id != graph_id:
            w.append(f"forwarding-graph.id {_show(doc_id)} differs from the graph id "
                     f"{_show(graph_id)} of the request; using {_show(graph_id)}")
    gid = graph_id if graph_id is not None else doc_id
    if gid is None:
        raise ModelError("graph id is missing", "$.forwarding-graph.id")
    name, npath = fg.get("name")
    name = None if name is None else _text(name, npath)

    raw, path = fg.get("VNFs")
    vnfs: dict = {}
    seen: dict = {}
    host_ports: dict = {}
    for i, item in enumerate(_list(raw, path)):
        vnf = _vnf(w, item, f"{path}[{i}]", seen, host_ports)
        vnfs[vnf.id] = vnf
    raw, path = fg.get("end-points")
    endpoints: dict = {}
    seen = {}
    for i, item in enumerate(_list(raw, path)):
        ep = _endpoint(w, item, f"{path}[{i}]", seen)
        endpoints[ep.id] = ep

    rules: list = []
    bs, bpath = fg.get("big-switch")
    if bs is not None:
        bs = _Obj(w, bs, bpath)
        raw, path = bs.get("flow-rules")
        seen = {}
        by_match: dict = {}
        for i, item in enumerate(_list(raw, path)):
            rule = _rule(w, item, f"{path}[{i}]", vnfs, endpoints, seen)
            other = by_match.setdefault((rule.priority, rule.match), rule)
            if other is not rule:
                raise ModelError(f"rule {_show(rule.id)} has the same priority and match as "
                                 f"rule {_show(other.id)}: which one applies is undefined",
                                 _join(rule.path, "match"))
            rules.append(rule)
        bs.done()
    fg.done()

    fg_doc = {"id": gid, **{k: v for k, v in fg.d.items() if k.lower() != "id"}}
    out = {k: (fg_doc if k == fg_key else v) for k, v in doc.items()}
    return Graph(gid, name, tuple(vnfs.values()), tuple(endpoints.values()), tuple(rules),
                 tuple(w), out)
