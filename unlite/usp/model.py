"""The node as TR-181 SoftwareModules, read from memory (never the node lock), and a path
resolver over it.

- ``SCHEMA``: the supported objects under the registered root (``Device.SoftwareModules.`` or
  ``Device.X_UNLITE_NFV.``): their parameters and commands, for GetSupportedDM;
- ``Instances``: stable instance numbers (a graph's DU number, an NF's EU number), kept in a
  file when given one, never reused while the service runs;
- ``snapshot(node, root, inst)``: every object instance as ``{path: {param: value}}``
  (``ExecEnv.1`` the node, ``DeploymentUnit.{i}`` a graph, ``ExecutionUnit.{i}`` an NF);
- ``resolve(objs, expr)``: a path expression (partial path, ``*``, ``[Key=="v"]`` search with
  ``==``/``!=`` and ``&&``) → the matching (object path, params) pairs, or a ``PathError``.
"""
import json
import os
import re
import threading
import uuid

# vendor namespace of the DU UUIDs (v5 of graph ids): uuid5(NAMESPACE_DNS, "unlite.nfv")
VENDOR_NS = uuid.uuid5(uuid.NAMESPACE_DNS, "unlite.nfv")
ROOTS = ("Device.SoftwareModules.", "Device.X_UNLITE_NFV.")
SUBSCRIPTIONS = "Device.LocalAgent.Subscription."

STR, BOOL, UINT, INT = 8, 2, 9, 6        # GetSupportedDMResp.ParamValueType
ASYNC = 2                                # CmdType

DU_STATE_CHANGE = ("DUStateChange!", ["UUID", "DeploymentUnitRef", "Version", "CurrentState",
                                     "Resolved", "ExecutionUnitRefList", "StartTime",
                                     "CompleteTime", "OperationPerformed", "Fault.FaultCode",
                                     "Fault.FaultString"])
EVENTS = {"": [DU_STATE_CHANGE]}          # relative object path -> its events

SCHEMA = [  # (relative object path, multi-instance, [(param, type)], [(command, inputs)])
    ("", False, [("ExecEnvNumberOfEntries", UINT), ("DeploymentUnitNumberOfEntries", UINT),
                 ("ExecutionUnitNumberOfEntries", UINT)],
     [("InstallDU()", ["URL", "UUID", "Username", "Password", "ExecutionEnvRef"])]),
    ("ExecEnv.{i}.", True, [("Enable", BOOL), ("Status", STR), ("Name", STR), ("Type", STR),
                            ("Vendor", STR), ("Version", STR), ("X_UNLITE_SteeringBackend", STR)],
     []),
    ("DeploymentUnit.{i}.", True, [("UUID", STR), ("DUID", STR), ("Name", STR), ("Status", STR),
                                   ("Resolved", BOOL), ("URL", STR), ("Vendor", STR),
                                   ("Version", STR), ("ExecutionUnitList", STR),
                                   ("ExecutionEnvRef", STR)],
     [("Uninstall()", []), ("Update()", ["URL", "Username", "Password"])]),
    ("ExecutionUnit.{i}.", True, [("EUID", STR), ("Name", STR), ("ExecEnvLabel", STR),
                                  ("Status", STR), ("ExecutionFaultCode", STR),
                                  ("ExecutionFaultMessage", STR), ("Vendor", STR),
                                  ("Version", STR), ("ExecutionEnvRef", STR),
                                  ("X_UNLITE_State", STR)],
     [("SetRequestedState()", ["RequestedState"]), ("Restart()", [])]),
]

EU_STATUS = {"Idle": "Idle", "Starting": "Starting", "Active": "Active", "Stopping": "Stopping",
             "Paused": "Idle", "Failed": "Idle"}   # TR-181's four; the rest in X_UNLITE_State
DU_STATUS = {"deploying": "Installing", "updating": "Updating", "deleting": "Uninstalling"}


class PathError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class Instances:
    """Instance numbers by key ('du:<graph>', 'eu:<graph>.<nf>'): the same number for the same
    key across reads and (with a file) restarts; a new key gets the next number."""

    def __init__(self, path=None):
        self.path, self.nums, self.next = path, {}, {"du": 1, "eu": 1}
        self.urls: dict[str, str] = {}   # a DU's last URL (Update() without one uses it)
        self.lock = threading.Lock()     # the Broker's reader and the events thread both read
        if path and os.path.exists(path):
            try:
                with open(path) as f:
                    d = json.load(f)
                self.nums = {k: int(v) for k, v in d.get("instances", {}).items()}
                self.next = {k: int(v) for k, v in d.get("next", self.next).items()}
                self.urls = {str(k): str(v) for k, v in d.get("urls", {}).items()}
            except (OSError, ValueError, AttributeError, TypeError):
                self.nums, self.urls = {}, {}      # a bad file: numbered anew, never fatal

    def number(self, kind, key):
        k = f"{kind}:{key}"
        with self.lock:
            n = self.nums.get(k)
            if n is None:
                n = self.nums[k] = self.next[kind]
                self.next[kind] = n + 1
                self._save()
            return n

    def forget(self, kind, keep):
        """Drop numbers of keys no longer present (their numbers are not reused)."""
        with self.lock:
            gone = [k for k in self.nums
                    if k.startswith(kind + ":") and k[len(kind) + 1:] not in keep]
            for k in gone:
                del self.nums[k]
                if kind == "du":
                    self.urls.pop(k[3:], None)
            if gone:
                self._save()

    def url(self, gid):
        with self.lock:
            return self.urls.get(gid, "")

    def set_url(self, gid, url):
        with self.lock:
            if self.urls.get(gid) != url:
                self.urls[gid] = url
                self._save()

    def key_of(self, kind, n):
        with self.lock:
            items = list(self.nums.items())
        for k, v in items:
            if v == n and k.startswith(kind + ":"):
                return k[len(kind) + 1:]
        return None

    def _save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        try:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump({"instances": self.nums, "next": self.next, "urls": self.urls}, f)
            os.replace(tmp, self.path)
        except OSError:
            pass                                   # numbers stay right in memory


def du_uuid(gid):
    return str(uuid.uuid5(VENDOR_NS, gid))


def snapshot(node, root, inst, version="", tenant=None):
    """{object path: {param: str}} of the whole tree, from the node's memory (no lock, no
    kernel read: what the last deploy or world check left): the graphs ``tenant`` sees
    (None: every graph)."""
    ee = root + "ExecEnv.1."
    objs = {ee: {"Enable": "true", "Status": "Up", "Name": "unlite", "Type": "NNF (ip netns)",
                 "Vendor": "unlite", "Version": version,
                 "X_UNLITE_SteeringBackend": getattr(node.switch, "name", "")}}
    dus, eus = {}, {}
    graphs = dict(node.graphs)                     # copies: a change may run meanwhile
    failed = dict(node.failed)
    pending = {c.gid: c for c in node.changes.pending_new()}
    every = set(graphs) | set(failed) | set(pending)
    for gid in sorted(g for g in every if tenant is None or node.sees(g, tenant)):
        d = graphs.get(gid)
        c = node.changes.get(gid)
        if d is not None:
            fg = d.graph.doc.get("forwarding-graph") or {}
            status = DU_STATUS.get(c.progress(), "Installed") if c and c.pending else "Installed"
            resolved = "true"
            nfs = list(d.instances.values())
        else:
            fg = {}
            status = DU_STATUS.get(c.progress(), "Installing") if c and c.pending else "Installed"
            resolved = "false"
            nfs = []
        n = inst.number("du", gid)
        eu_paths = []
        for i in nfs:
            en = inst.number("eu", f"{gid}.{i.nf}")
            p = f"{root}ExecutionUnit.{en}."
            eu_paths.append(p)
            eus[p] = {"EUID": f"{gid}.{i.nf}", "Name": i.name or i.nf,
                      "ExecEnvLabel": i.netns or "",
                      "Status": EU_STATUS.get(i.state, "Idle"),
                      "ExecutionFaultCode": i.fault or "NoFault",
                      "ExecutionFaultMessage": (i.fault_detail or "")[:256],
                      "Vendor": "", "Version": "", "ExecutionEnvRef": ee[:-1],
                      "X_UNLITE_State": i.state}
        dus[f"{root}DeploymentUnit.{n}."] = {
            "UUID": du_uuid(gid), "DUID": gid, "Name": str(fg.get("name") or gid),
            "Status": status, "Resolved": resolved, "URL": inst.url(gid), "Vendor": "",
            "Version": "",
            "ExecutionUnitList": ",".join(p[:-1] for p in eu_paths), "ExecutionEnvRef": ee[:-1]}
    inst.forget("du", every)
    top = {root: {"ExecEnvNumberOfEntries": "1", "DeploymentUnitNumberOfEntries": str(len(dus)),
                  "ExecutionUnitNumberOfEntries": str(len(eus))}}
    return {**top, **objs, **_by_number(dus), **_by_number(eus)}


def _by_number(objs):
    return dict(sorted(objs.items(), key=lambda kv: int(kv[0].rstrip(".").rsplit(".", 1)[1])))


# ---- the resolver ----

_SEARCH = re.compile(r'\s*([A-Za-z_][\w]*)\s*(==|!=)\s*(?:"([^"]*)"|([^&"\s]+))\s*')


def _split(expr):
    """Path segments, a [search] kept whole (it may hold dots inside quotes)."""
    out, cur, depth, quote = [], "", 0, False
    for ch in expr:
        if ch == '"':
            quote = not quote
        elif not quote and ch == "[":
            depth += 1
        elif not quote and ch == "]":
            depth -= 1
        if ch == "." and depth == 0 and not quote:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if depth or quote:
        raise PathError(7008, f"unbalanced search expression in '{expr}'")
    return out, cur                             # object segments, trailing parameter (or "")


def _search(seg, params):
    terms = seg[1:-1].split("&&")
    for t in terms:
        m = _SEARCH.fullmatch(t)
        if not m:
            raise PathError(7008, f"search expression '{seg}': want Key==\"value\" [&& ...]")
        key, op, v = m.group(1), m.group(2), m.group(3) if m.group(3) is not None else m.group(4)
        have = params.get(key)
        if have is None or (have == v) != (op == "=="):
            return False
    return True


def _match(segs, path, objs):
    """Does the object path start with the expression's segments?"""
    parts = path.rstrip(".").split(".")
    if len(parts) < len(segs):
        return False
    for k, s in enumerate(segs):
        p = parts[k]
        if s == "*":
            if not p.isdigit():
                return False
        elif s.startswith("[") and s.endswith("]"):
            if not p.isdigit() or not _search(s, objs.get(".".join(parts[:k + 1]) + ".", {})):
                return False
        elif s != p:
            return False
    return True


def schema_paths(root):
    """Every supported object path (with {i}) under ``root``, and the subscription table."""
    return [root + rel for rel, *_ in SCHEMA] + [SUBSCRIPTIONS + "{i}."]


def _known(expr, paths):
    """A table (or parameter) of the supported model, named without an instance number: no
    instance yet is an empty answer, not 7026 (a number that is not there is 7026)."""
    if re.search(r"\.\d+(?=\.)", expr):
        return False
    generic = re.sub(r"\.(\d+|\*|\[[^\]]*\])(?=\.)", ".{i}", expr)
    if not generic.endswith("."):
        obj, _, param = generic.rpartition(".")
        return any(p == obj + "." and param in _params_of(p) for p in paths)
    return any(p.startswith(generic) or generic + "{i}." == p for p in paths)


def _params_of(path):
    for rel, _m, params, _c in SCHEMA:
        if path.endswith("." + rel) or rel == "" and path.count(".") == 2:
            return {n for n, _t in params}
    return set()


def resolve(objs, expr, known=(), max_depth=0):
    """[(object path, {param: value})] an expression names; an object (partial) path gives
    every object under it with all its parameters, ``max_depth`` levels of it when not 0 (1:
    the object itself; a table and its instances are one level). 7026 for a path that is not
    there (unless it has a wildcard or search: then no match is an empty answer)."""
    segs, param = _split(expr)
    wild = any(s == "*" or s.startswith("[") for s in segs)
    out = []
    for path, params in objs.items():
        if not _match(segs, path, objs):
            continue
        if param:
            if len(path.rstrip(".").split(".")) != len(segs):
                continue
            if param in params:
                out.append((path, {param: params[param]}))
        else:
            below = path.rstrip(".").split(".")[len(segs):]
            if max_depth and sum(not p.isdigit() for p in below) >= max_depth:
                continue
            out.append((path, dict(params)))
    if not out and not wild and not _known(expr, known):
        raise PathError(7026, f"no such path: {expr}")
    return out


def supported(root, req):
    """GetSupportedDMResp.SupportedObjectResult dicts for the schema under ``req``."""
    out = []
    for rel, multi, params, cmds in SCHEMA:
        p = root + rel
        if not (p.startswith(req) or req.startswith(p)) and req not in ("Device.", ""):
            continue
        out.append({"supported_obj_path": p, "access": 0, "is_multi_instance": multi,
                    "supported_params": [{"param_name": n, "access": 0, "value_type": t,
                                          "value_change": 1} for n, t in params],
                    "supported_commands": [{"command_name": c, "input_arg_names": a,
                                            "command_type": ASYNC} for c, a in cmds],
                    "supported_events": [{"event_name": e, "arg_names": a}
                                         for e, a in EVENTS.get(rel, [])]})
    return out
