"""The rpcd exec plugin behind ubus object ``unlite`` (design contract 2).

rpcd runs ``/usr/libexec/rpcd/unlite list`` once to learn the methods and
``/usr/libexec/rpcd/unlite call METHOD`` (arguments as a JSON object on stdin) for each
``ubus call unlite METHOD``. Each call becomes one HTTP request to the running daemon over its
unix socket (``unlite serve --socket``); the answer is one JSON object on stdout.

- ``METHODS``       the ubus signature (what ``list`` prints)
- ``call``          arguments → checked request → daemon → reply object
- ``http``          a minimal HTTP/1.0 client for a unix socket (no http.client/email import:
                    the plugin starts once per call, on a router every import costs)
- ``socket_path``   $UNLITE_SOCKET, else option ``socket`` of /etc/config/unlite, else
                    /var/run/unlite/unlite.sock

Every failure (bad arguments, daemon down, daemon error, reply too large) is a JSON object
``{"error": TEXT, ...}`` on stdout with exit code 0, never a traceback: rpcd turns non-JSON
output into a bare "Invalid argument" that tells the caller nothing.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sys

DEFAULT_SOCKET = "/var/run/unlite/unlite.sock"
UCI_FILE = "/etc/config/unlite"
TIMEOUT = 100.0               # rpcd kills a plugin call after 120 s: answer before that
MAX_REPLY = 240 * 1024        # rpcd truncates plugin output at 256 KiB
MAX_INPUT = (1 << 20) + 4096  # the daemon takes bodies up to 1 MiB
MAX_HTTP = 8 << 20
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# method -> example arguments (rpcd derives the ubus signature from the JSON types)
METHODS = {
    "list": {},
    "get": {"id": "str"},
    "put": {"id": "str", "graph": {}},
    "delete": {"id": "str"},
    "status": {"id": "str"},
    "capabilities": {},
    "nf": {"id": "str", "nf": "str", "action": "str"},    # stop | start | pause | resume
}
NF_ACTIONS = ("stop", "start", "pause", "resume")


class Failure(Exception):
    """An answer that is an error object."""

    def __init__(self, message, **extra):
        super().__init__(message)
        self.body = {"error": message, **extra}


# -- the daemon over its unix socket ---------------------------------------------------------
def socket_path():
    env = os.environ.get("UNLITE_SOCKET")
    if env:
        return env
    if os.path.exists(UCI_FILE):
        from . import uci
        try:
            for s in uci.load(UCI_FILE):
                if s.type == "unlite" and isinstance(s.options.get("socket"), str):
                    if not s.options["socket"]:
                        raise Failure(f"the daemon has no unix socket: set option socket in "
                                      f"{UCI_FILE} and run /etc/init.d/unlite reload")
                    return s.options["socket"]
        except uci.UciError as e:
            raise Failure(f"cannot read {UCI_FILE}: {e}") from None
    return DEFAULT_SOCKET


def http(path_, method, target, body=b""):
    """(status, parsed JSON body or None) of one request to the daemon at unix socket path_."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        try:
            s.connect(path_)
        except (FileNotFoundError, ConnectionRefusedError):
            raise Failure(f"the unlite daemon is not running (nothing answers on {path_}); "
                          f"start it with /etc/init.d/unlite start", socket=path_) from None
        except OSError as e:
            raise Failure(f"cannot reach the unlite daemon at {path_}: {e.strerror}",
                          socket=path_) from None
        head = (f"{method} {target} HTTP/1.0\r\nHost: localhost\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        s.sendall(head.encode("ascii") + body)
        chunks, size = [], 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_HTTP:
                raise Failure(f"the daemon's answer is larger than {MAX_HTTP} bytes")
    except socket.timeout:
        raise Failure(f"the daemon did not answer within {TIMEOUT:.0f} s (rpcd would kill "
                      f"this call at 120 s); the change may still be under way: check "
                      f"'status'") from None
    finally:
        s.close()
    data = b"".join(chunks)
    head, sep, payload = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/\d\.\d (\d{3})", head)
    if not sep or not m:
        raise Failure("the daemon sent a malformed HTTP answer")
    status = int(m.group(1))
    if not payload.strip():
        return status, None
    try:
        return status, json.loads(payload)
    except ValueError:
        raise Failure(f"the daemon answered {status} with a body that is not JSON") from None


def _request(method, target, body=b""):
    status, doc = http(socket_path(), method, target, body)
    if status >= 400:
        doc = doc if isinstance(doc, dict) else {}
        extra = {k: doc[k] for k in ("path", "fault", "fault-detail") if doc.get(k) is not None}
        raise Failure(str(doc.get("error") or f"HTTP {status}"), status=status, **extra)
    return doc


# -- the methods -----------------------------------------------------------------------------
def _check_args(method, args):
    if not isinstance(args, dict):
        raise Failure("arguments must be a JSON object")
    args = {k: v for k, v in args.items() if k != "ubus_rpc_session"}
    known = METHODS[method]
    for k in args:
        if k not in known:
            takes = ", ".join(known) or "no arguments"
            raise Failure(f"unknown argument '{k}' for {method} (takes: {takes})")
    for k in known:
        if k not in args:
            raise Failure(f"{method} needs argument '{k}'")
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
    return args


def _summary(graph, status):
    fg = graph.get("forwarding-graph", {}) if isinstance(graph, dict) else {}
    vnfs = status.get("VNFs") or []
    return {"id": status.get("id") or fg.get("id"), "name": fg.get("name"),
            "status": status.get("status"),
            "vnfs": len(fg.get("VNFs") or []),
            "end-points": len(fg.get("end-points") or []),
            "flow-rules": len((fg.get("big-switch") or {}).get("flow-rules") or []),
            "faults": [{"vnf": v.get("id"), "fault": v.get("fault")}
                       for v in vnfs if v.get("fault")]}


def call(method, args):
    """The reply object of ubus method ``method`` (raises Failure)."""
    if method not in METHODS:
        raise Failure(f"unknown method '{method}' (methods: {', '.join(METHODS)})")
    a = _check_args(method, args)
    if method == "list":
        doc = _request("GET", "/NF-FG/") or {}
        graphs = []
        for g in doc.get("NF-FG") or []:
            gid = ((g.get("forwarding-graph") or {}).get("id")
                   if isinstance(g, dict) else None)
            try:
                st = _request("GET", f"/NF-FG/status/{gid}") if gid else {}
            except Failure as e:                 # deleted meanwhile: show, don't fail
                st = {"id": gid, "status": "unknown", "error": e.body["error"]}
            graphs.append(_summary(g, st or {}))
        return {"graphs": graphs}
    if method == "get":
        return _request("GET", f"/NF-FG/{a['id']}")
    if method == "status":
        return _request("GET", f"/NF-FG/status/{a['id']}")
    if method == "delete":
        _request("DELETE", f"/NF-FG/{a['id']}")
        return {"id": a["id"], "deleted": True}
    if method == "capabilities":
        return _request("GET", "/capabilities")
    if method == "nf":
        return _request("POST", f"/NF-FG/{a['id']}/VNFs/{a['nf']}/{a['action']}")
    graph = a["graph"]                           # put: an object, or the JSON text of one
    if isinstance(graph, dict):
        body = json.dumps(graph).encode()
    elif isinstance(graph, str) and graph.strip():
        body = graph.encode()
    else:
        raise Failure("argument 'graph' must be an NF-FG object or its JSON text",
                      path="graph")
    doc = _request("PUT", f"/NF-FG/{a['id']}", body) or {}
    return {"id": a["id"], "created": bool(doc.get("created"))}


# -- rpcd's command line ---------------------------------------------------------------------
def _emit(obj):
    text = json.dumps(obj)
    if len(text) > MAX_REPLY:
        text = json.dumps({"error": f"the answer is {len(text)} bytes, more than ubus can "
                                    f"carry ({MAX_REPLY}): use the REST API for it"})
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["list"]:
        _emit(METHODS)
        return 0
    if len(argv) != 2 or argv[0] != "call":
        print("usage: unlite list | unlite call METHOD  (rpcd exec plugin; arguments as "
              "JSON on stdin)", file=sys.stderr)
        return 1
    try:
        raw = sys.stdin.buffer.read(MAX_INPUT + 1)
        if len(raw) > MAX_INPUT:
            raise Failure(f"arguments larger than {MAX_INPUT} bytes")
        try:
            args = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise Failure(f"arguments are not JSON: {e}") from None
        _emit(call(argv[1], args))
    except Failure as e:
        _emit(e.body)
    except Exception as e:  # noqa: BLE001 - rpcd must get JSON; the cause is in the text
        _emit({"error": f"internal error in the rpcd plugin: {type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
