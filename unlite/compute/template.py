"""An NNF's template (``template.json``; nnf/README.md): what the function is, its ports, its
dependencies and limits, checked once (``load_template``), and the interpreters its scripts may
ask for. The limits of a package's archive live here too: every module of the NNF package reads
them. Pure: no file but the ones given, no command.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import UnliteError

ACTIONS = ("create", "start", "stop", "update", "delete", "pause", "resume", "status")
MAX_MEMBER = 1 << 20        # bytes of one archive member
MAX_TOTAL = 4 << 20         # bytes of all members
MAX_MEMBERS = 64
MAX_ARCHIVE = 8 << 20       # bytes of the compressed archive we agree to read
FETCH_TIMEOUT = 30.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class PackageError(UnliteError):
    def __init__(self, message, status=422, field="name"):
        super().__init__(message, status=status)
        self.field = field              # the VNF's field at fault: name or vnf_template


@dataclass(frozen=True)
class Template:
    name: str
    flavour: str | None
    aliases: tuple[str, ...]
    multitenancy: bool
    ports: tuple[dict, ...]
    dependencies: tuple[tuple[str, str], ...]
    timeout: float
    description: str
    raw: dict
    ok_exit: tuple[int, ...] = (0,)     # exit statuses that mean success ("exit-success")

    def names(self):
        return (self.name,) + self.aliases

    @property
    def limits(self):
        """{"memory": bytes, "pids": n, "cpu": CPUs} the NF asks for (checked at load)."""
        from .cgroup.limits import parse
        return parse(self.raw.get("limits"))

    def check_ports(self, port_ids):
        """Error text if the graph's port ids (``inout:0`` ...) do not fit the template."""
        spec = {p["label"]: p for p in self.ports}
        count, seen = {}, set()
        for pid in port_ids:
            label, _, idx = str(pid).rpartition(":")
            if not label or not idx.isdigit():
                return f"port id '{pid}' is not LABEL:INDEX (e.g. 'inout:0')"
            if label not in spec:
                return (f"port '{pid}': label '{label}' unknown to {self.name} "
                        f"(it has: {', '.join(spec)})")
            if pid in seen:
                return f"port '{pid}' appears twice"
            seen.add(pid)
            if int(idx) >= spec[label]["max"]:
                return (f"port '{pid}': index out of range for {self.name} "
                        f"('{label}' takes {_range(spec[label])} ports, indexes from 0)")
            count[label] = count.get(label, 0) + 1
        for label, p in spec.items():
            n = count.get(label, 0)
            if not p["min"] <= n <= p["max"]:
                return (f"{self.name} takes {_range(p)} '{label}' ports, "
                        f"the graph gives {n}")
        return None


def _range(p):
    return str(p["min"]) if p["min"] == p["max"] else f"{p['min']}..{p['max']}"


def load_template(data, source):
    """Parse and validate a template (dict, or JSON bytes/str); ``source`` names it in errors."""
    def bad(field, why):
        raise PackageError(f"{source}: template field '{field}': {why}")

    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise PackageError(f"{source}: template is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise PackageError(f"{source}: template must be a JSON object")

    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        bad("name", "required, letters/digits/'_.+-', at most 64 characters")
    flavour = data.get("flavour")
    if flavour is not None and not isinstance(flavour, str):
        bad("flavour", "must be a string")
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and _NAME_RE.match(a)
                                                for a in aliases):
        bad("aliases", "must be a list of names")
    vtype = data.get("vnf-type", "native")
    if vtype != "native":
        bad("vnf-type", f"'{vtype}' is not a native network function")
    mt = data.get("multitenancy", False)
    if not isinstance(mt, bool):
        bad("multitenancy", "must be true or false")

    ports = data.get("ports")
    if not isinstance(ports, list) or not ports:
        bad("ports", "required, a non-empty list of {label, min, max}")
    norm_ports, labels = [], set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            bad(f"ports[{i}]", "must be an object")
        label = p.get("label")
        if not isinstance(label, str) or not label or ":" in label or label in labels:
            bad(f"ports[{i}].label", "required, a unique non-empty string without ':'")
        labels.add(label)
        lim = {}
        for k in ("min", "max"):
            v = p.get(k)
            if isinstance(v, str) and v.isdigit():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(f"ports[{i}].{k}", "required, a non-negative integer")
            lim[k] = v
        if lim["max"] < max(lim["min"], 1):
            bad(f"ports[{i}].max", "must be at least min and at least 1")
        norm_ports.append({**p, **lim})

    deps = data.get("dependencies", [])
    if isinstance(deps, dict):           # the paper's Fig. 3: {"capability": [...]}
        deps = deps.get("capability", [])
        deps = [deps] if isinstance(deps, dict) else deps
    if not isinstance(deps, list):
        bad("dependencies", "must be a list or {\"capability\": [...]}")
    norm_deps = []
    for i, d in enumerate(deps):
        dname, dtype = (d, "executable") if isinstance(d, str) else (
            (d.get("name"), d.get("type", "executable")) if isinstance(d, dict) else (None, None))
        if not isinstance(dname, str) or not _NAME_RE.match(dname):
            bad(f"dependencies[{i}].name", "required, a program or package name")
        if dtype not in ("executable", "package"):
            bad(f"dependencies[{i}].type", "must be 'executable' or 'package'")
        norm_deps.append((dname, dtype))

    timeout = data.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout <= 3600:
        bad("timeout", "seconds, a number in (0, 3600]")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        bad("description", "must be a string")
    if not isinstance(data.get("env", {}), dict):
        bad("env", "must be an object {NAME: description}")
    from .cgroup.limits import LimitError, parse as parse_limits
    try:
        parse_limits(data.get("limits"))
    except LimitError as e:
        bad("limits", str(e))
    ok = data.get("exit-success", [0])
    if not isinstance(ok, list) or not ok or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in ok):
        bad("exit-success", "a non-empty list of exit statuses 0-255 that mean success "
                            "(default [0]; [1] for scripts written for the UN's launcher)")
    return Template(name, flavour, tuple(aliases), mt, tuple(norm_ports), tuple(norm_deps),
                    float(timeout), desc, data, tuple(ok))


SH = {"sh", "ash"}          # what every box has (busybox): run as /bin/sh


def interpreter(head: bytes):
    """The program a script's ``#!`` line names: None for a POSIX shell (or no ``#!``:
    /bin/sh runs it), else (path, [argument]) — ``#!/usr/bin/env bash`` is ("bash", [])."""
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return None
    prog, args = words[0], words[1:2]
    if prog.rsplit("/", 1)[-1] == "env" and args:
        prog, args = args[0], []
    return None if prog.rsplit("/", 1)[-1] in SH else (prog, args)


def check_interpreters(template: Template, scripts, source):
    """Each lifecycle script that is not a POSIX shell script must name its interpreter in
    the template's dependencies (so a node without it says so before anything is made)."""
    deps = {n for n, kind in template.dependencies if kind == "executable"}
    for action, head in scripts:
        it = interpreter(head)
        if it and it[0].rsplit("/", 1)[-1] not in deps:
            name = it[0].rsplit("/", 1)[-1]
            raise PackageError(f"{source}: lifecycle script '{action}' runs with {it[0]} (its "
                               f"#! line): name '{name}' in the template's dependencies "
                               f"({{\"name\": \"{name}\", \"type\": \"executable\"}})")
