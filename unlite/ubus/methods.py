"""The methods of ubus object ``unlite``: one table for both ways the object exists.

- the daemon's own object (``unlite/ubus/native.py``): calls answered in-process;
- rpcd's exec plugin (``unlite/ubus/rpcd.py``): a process per call, a client of the
  daemon's unix socket; the fallback where the daemon does not register the object.

Both check the arguments here, call the same five operations of a *backend* (``summaries``,
``get``, ``status``, ``capabilities``, ``put``, ``delete``, ``nf``) and shape the same
answers, so a caller cannot tell them apart but by speed. Every failure is an answer object
``{"error": TEXT, "status": HTTP-like code, "path": JSON path?, ...}`` (ubus status 0), never
a traceback: ``ubus call`` prints it, LuCI shows its text.

A change (put, delete, nf) that is not finished after ``ANSWER_WITHIN`` seconds is answered
``{"id", "pending": true, "status": "deploying"|"updating"|"deleting", "change": {...}}`` and
goes on; its outcome is in ``status``/``list`` (``change``) and the ``unlite.graph`` events.
This module imports nothing beyond ``re``: the exec plugin starts once per call.
"""
from __future__ import annotations

import re

from .blobmsg import STRING, TABLE

ANSWER_WITHIN = 5.0     # seconds a change may take before its call is answered "pending"
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NF_ACTIONS = ("stop", "start", "pause", "resume")


class Method:
    def __init__(self, name, args, access, doc):
        self.name, self.args, self.access, self.doc = name, args, access, doc


# The table: name, arguments {name: blobmsg type}, ACL group part (rpcd acl.d), what it does.
METHODS = {m.name: m for m in (
    Method("list", {}, "read", "one line per graph: id, name, status, counts, faults, "
                               "last change"),
    Method("get", {"id": STRING}, "read", "the graph as stored"),
    Method("status", {"id": STRING}, "read", "per-NF state and per-rule counters, last change"),
    Method("capabilities", {}, "read", "functional, infrastructure and resource capabilities"),
    Method("put", {"id": STRING, "graph": TABLE}, "write",
           "deploy or update a graph (an NF-FG object, or its JSON text)"),
    Method("delete", {"id": STRING}, "write", "remove a graph and everything it made"),
    Method("nf", {"id": STRING, "nf": STRING, "action": STRING}, "write",
           "stop, start, pause or resume one NF"),
)}


def exec_signature():
    """What an rpcd exec plugin prints for ``list``: method -> example arguments (rpcd
    derives the types from the JSON values: "str" a string, {} a table)."""
    return {m.name: {a: ("str" if t == STRING else {}) for a, t in m.args.items()}
            for m in METHODS.values()}


class Failure(Exception):
    """An answer that is an error object."""

    def __init__(self, message, **extra):
        super().__init__(message)
        self.body = {"error": message, **{k: v for k, v in extra.items() if v is not None}}


def check(method, args):
    """The call's arguments, checked (rpcd's ``ubus_rpc_session`` dropped)."""
    if method not in METHODS:
        raise Failure(f"unknown method '{method}' (methods: {', '.join(METHODS)})")
    if not isinstance(args, dict):
        raise Failure("arguments must be a JSON object")
    args = {k: v for k, v in args.items() if k != "ubus_rpc_session"}
    known = METHODS[method].args
    for k in args:
        if k not in known:
            takes = ", ".join(known) or "no arguments"
            raise Failure(f"unknown argument '{k}' for {method} (takes: {takes})", path=k)
    for k in known:
        if k not in args:
            raise Failure(f"{method} needs argument '{k}'", path=k)
    if "id" in known:
        gid = args["id"]
        if not isinstance(gid, str) or not ID_RE.match(gid):
            raise Failure(f"invalid graph id {gid!r}: must be 1-64 letters, digits, '_', '.' "
                          f"or '-', starting with a letter or digit", path="id")
    if "nf" in known:
        if not isinstance(args["nf"], str) or not ID_RE.match(args["nf"]):
            raise Failure(f"invalid NF id {args['nf']!r}", path="nf")
        if args["action"] not in NF_ACTIONS:
            raise Failure(f"action must be one of {', '.join(NF_ACTIONS)}", path="action")
    if "graph" in known:
        g = args["graph"]
        if not (isinstance(g, dict) or (isinstance(g, str) and g.strip())):
            raise Failure("argument 'graph' must be an NF-FG object or its JSON text",
                          path="graph")
    return args


def call(backend, method, args, wait=ANSWER_WITHIN):
    """The answer object of ``method`` (raises Failure)."""
    a = check(method, args)
    if method == "list":
        return {"graphs": backend.summaries()}
    if method == "get":
        return backend.get(a["id"])
    if method == "status":
        return backend.status(a["id"])
    if method == "capabilities":
        return backend.capabilities()
    if method == "put":
        return backend.put(a["id"], a["graph"], wait)
    if method == "delete":
        return backend.delete(a["id"], wait)
    return backend.nf(a["id"], a["nf"], a["action"], wait)


def pending(gid, status, change):
    """The answer to a change still under way when its call is answered."""
    status = status or "changing"
    return {"id": gid, "pending": True, "status": status, "change": change,
            "info": f"still {status} after {ANSWER_WITHIN:g} s; it goes on: follow it with "
                    f"'status' (change) or the unlite.graph events"}
