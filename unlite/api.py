"""The northbound REST API (Universal Node compatible, design contract 1), on Bottle.

Routes are three lines each; cross-cutting work lives in ``ErrorPlugin`` (every error becomes
JSON ``{"error", "path"}`` with the right 4xx, never a traceback) and ``read_body`` (size
limit). ``serve()`` runs the app on a threaded WSGI server so a slow deploy never blocks
reads.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import bottle

from . import __version__, sh
from .compute.native import ComputeError
from .events import sse
from .compute.package import PackageError
from .model import ModelError
from .network import SteeringError
from .node import NodeError
from .tenants import ADMIN

log = logging.getLogger("unlite.api")

MAX_BODY = 1 << 20  # 1 MiB: a graph is a few KiB; anything larger is a mistake or an attack
KNOWN = (ModelError, NodeError, ComputeError, SteeringError, PackageError)

# The dashboard at /ui: a fixed set of files from unlite/ui (no other path is ever opened).
# graph.js is the drawing core LuCI also loads (as module "unlite.graph": a function body that
# returns a class); the dashboard gets it wrapped the way LuCI's loader runs it.
UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui")
UI_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
            "graph.js": "text/javascript; charset=utf-8", "ui.css": "text/css; charset=utf-8"}
UI_WRAP = {"graph.js": (b"window.unliteGraph = new ((function(window, document, L, baseclass) {\n",
                        b"\n})(window, document, null, window.unliteBaseclass))();\n")}
UI_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
              "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                         "frame-ancestors 'none'; form-action 'none'"}


class ErrorPlugin:
    """Turn every exception into a JSON error: known ones keep their status and path."""
    name, api = "unlite-errors", 2

    def apply(self, callback, route):
        def wrapper(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except bottle.HTTPResponse:
                raise
            except KNOWN as e:
                return _error(getattr(e, "status", 400) or 400, getattr(e, "message", str(e)),
                              getattr(e, "path", None), getattr(e, "fault", None))
            except sh.CommandError as e:
                log.error("command failed: %s", e)
                return _error(500, f"a system command failed: {e}")
            except Exception as e:  # noqa: BLE001 - the cause is logged and returned
                log.exception("internal error on %s %s", bottle.request.method,
                              bottle.request.path)
                return _error(500, f"internal error: {type(e).__name__}: {e}")
        return wrapper


PUBLIC = ("/healthz", "/openapi.json", "/login", "/ui")


class AuthPlugin:
    """With tenants configured, find the caller's tenant from ``X-Auth-Token`` or
    ``Authorization: Bearer`` (401 without a valid one) and keep it in the request for the
    routes (``tenant()``). Calls over the unix socket (root only) act as admin."""
    name, api = "unlite-auth", 2

    def __init__(self, tenants):
        self.tenants = tenants

    def apply(self, callback, route):
        def wrapper(*args, **kwargs):
            env = bottle.request.environ
            env["unlite.tenant"] = None
            if self.tenants.enabled:
                path = bottle.request.path
                if env.get("REMOTE_ADDR") == "unix":
                    env["unlite.tenant"] = ADMIN
                elif not any(path == p or path.startswith(p + "/") for p in PUBLIC):
                    auth = bottle.request.get_header("Authorization", "")
                    token = bottle.request.get_header("X-Auth-Token") or (
                        auth[7:].strip() if auth[:7].lower() == "bearer " else "")
                    who = self.tenants.authenticate(token)
                    if who is None:
                        r = _error(401, "a valid token is needed: X-Auth-Token or "
                                        "Authorization: Bearer (POST /login gives one)")
                        r.set_header("WWW-Authenticate", 'Bearer realm="unlite"')
                        return r
                    env["unlite.tenant"] = who
            return callback(*args, **kwargs)
        return wrapper


def tenant():
    return bottle.request.environ.get("unlite.tenant")


def _error(status, message, path=None, fault=None):
    body = {"error": message, "path": path}
    if fault:
        body["fault"] = fault
    return _json(body, status)


def _json(obj, status=200):
    return bottle.HTTPResponse(json.dumps(obj, indent=1) + "\n", status,
                               {"Content-Type": "application/json"})


def read_body():
    req = bottle.request
    if req.content_length > MAX_BODY:
        raise NodeError(f"body larger than {MAX_BODY} bytes", "$", 413)
    data = req.body.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise NodeError(f"body larger than {MAX_BODY} bytes", "$", 413)
    if not data.strip():
        raise NodeError("empty body: an NF-FG JSON document is expected", "$", 400)
    return data


def make_app(node):
    app = bottle.Bottle()
    app.uninstall(bottle.JSONPlugin)         # every route answers with _json() itself
    app.install(ErrorPlugin())
    app.install(AuthPlugin(node.tenants))

    @app.post("/login")
    def login():
        """The Universal Node's login: {"username", "password"} → a session token."""
        try:
            cred = json.loads(read_body())
        except ValueError as e:
            raise NodeError(f"malformed JSON: {e}", "$", 400) from None
        if not isinstance(cred, dict):
            raise NodeError("expected {\"username\": ..., \"password\": ...}", "$", 400)
        token = node.tenants.login(cred.get("username"), cred.get("password"))
        if token is None:
            return _error(401, "unknown user or wrong password")
        r = _json({"token": token})
        r.set_header("X-Auth-Token", token)
        return r

    @app.post("/NF-FG")
    @app.post("/NF-FG/")
    def post_graph():
        return _json({"nffg-uuid": node.post(read_body(), tenant())}, 201)

    @app.put("/NF-FG/<gid>")
    def put_graph(gid):
        created = node.put(gid, read_body(), tenant())
        return _json({"nffg-uuid": gid, "created": created}, 201 if created else 200)

    @app.get("/NF-FG")
    @app.get("/NF-FG/")
    def list_graphs():
        return _json({"NF-FG": [node.get(g, tenant()) for g in node.ids(tenant())]})

    @app.get("/NF-FG/status/<gid>")
    def graph_status(gid):
        return _json(node.status(gid, tenant()))

    @app.get("/NF-FG/<gid>")
    def get_graph(gid):
        return _json(node.get(gid, tenant()))

    @app.delete("/NF-FG/<gid>")
    def delete_graph(gid):
        node.delete(gid, tenant())
        return bottle.HTTPResponse(status=204)

    @app.post("/NF-FG/<gid>/VNFs/<nf>/<action>")
    def nf_action(gid, nf, action):
        """Table II on one NF: stop, start, pause, resume."""
        return _json(node.nf_action(gid, nf, action, tenant()))

    @app.get("/events")
    def events():
        """Server-sent events: graph and NF state changes (see unlite/events.py)."""
        t = tenant()
        allow = None if t is None or t.admin else (lambda d: d.get("tenant") == t.name)
        sub = node.events.subscribe()
        bottle.response.content_type = "text/event-stream"
        bottle.response.set_header("Cache-Control", "no-cache")

        def stream():
            try:
                for chunk in sse(sub, allow=allow):
                    yield chunk.encode()
            finally:
                node.events.unsubscribe(sub)
        return stream()

    @app.get("/capabilities")
    def capabilities():
        return _json(node.capabilities())

    @app.get("/nnfs")
    def nnfs():
        return _json({"nnfs": [{"name": t.name, "flavour": t.flavour, "aliases": list(t.aliases),
                                "description": t.description, "multitenancy": t.multitenancy,
                                "dependencies": [n for n, _ in t.dependencies]}
                               for t in node.repo.templates()]})

    @app.get("/healthz")
    def healthz():
        return _json({"status": "ok", "version": __version__, "graphs": len(node.graphs)})

    @app.get("/openapi.json")
    def openapi():
        from .openapi import document
        return _json(document(__version__))

    @app.get("/ui")
    def ui_root():
        return bottle.HTTPResponse(status=301, Location="/ui/")

    @app.get("/ui/")
    @app.get("/ui/<name>")
    def ui_file(name="index.html"):
        if name not in UI_FILES:
            return _error(404, f"no file '{name}' in the dashboard")
        with open(os.path.join(UI_DIR, name), "rb") as f:
            data = f.read()
        pre, post = UI_WRAP.get(name, (b"", b""))
        return bottle.HTTPResponse(pre + data + post, 200,
                                   {"Content-Type": UI_FILES[name], **UI_HEADERS})

    @app.error(404)
    @app.error(405)
    def not_found(err):
        bottle.response.content_type = "application/json"
        return json.dumps({"error": f"{err.status_line}: {bottle.request.method} "
                                    f"{bottle.request.path}", "path": None}) + "\n"

    return app


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128        # listen backlog: socketserver's 5 resets bursts of clients


class _Handler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)


def make_server_for(node, host, port):
    return make_server(host, port, make_app(node), server_class=_Server, handler_class=_Handler)


class _UnixServer(_Server):
    """The same WSGI app on a unix stream socket (the rpcd plugin and local tools use it;
    only root may connect: the file is made mode 0600)."""
    address_family = socket.AF_UNIX
    allow_reuse_address = False
    _bound = False

    def server_bind(self):
        path = self.server_address
        old = os.umask(0o177)                   # the socket file is born 0600
        try:
            self.socket.bind(path)
        finally:
            os.umask(old)
        self._bound = True
        self.server_name, self.server_port = "localhost", 0
        self.setup_environ()

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)

    def server_close(self):
        super().server_close()
        if self._bound:                         # never remove a socket someone else made
            try:
                os.unlink(self.server_address)
            except OSError:
                pass


def make_unix_server_for(node, path):
    """Serve the API on unix socket ``path``. A stale socket file (nobody answering) is
    replaced; a live one means another daemon: OSError."""
    path = os.path.abspath(path)
    if len(os.fsencode(path)) > 107:
        raise OSError(f"unix socket path {path} is longer than 107 bytes")
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.exists(path) or os.path.islink(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)                     # left by a daemon that died
        except OSError as e:
            raise OSError(f"{path} exists and is not a usable socket: {e.strerror}") from None
        else:
            raise OSError(f"{path}: another unlite daemon is answering there")
        finally:
            probe.close()
    server = _UnixServer(path, _Handler)
    server.set_app(make_app(node))
    return server
