"""The northbound REST API (Universal Node compatible; DESIGN.md), on Bottle.

Routes are three lines each; cross-cutting work lives in ``ErrorPlugin`` (every error becomes
JSON ``{"error", "path"}`` with the right 4xx, never a traceback), ``AuthPlugin`` (tenants)
and ``read_body`` (size limit). ``make_server_for`` / ``make_unix_server_for`` run the app
on ``httpd``'s server: bounded threads (so bounded memory under any load), a slow deploy
never blocks reads and event streams never take a worker.
"""
from __future__ import annotations

import json
import logging
import os
import threading

import bottle

from . import __version__, httpd, sh
from .errors import UnliteError
from .events import sse
from .httpd import MAX_BODY
from .node import NodeError
from .tenants import ROOT, Throttled

log = logging.getLogger("unlite.api")

KNOWN = (UnliteError,)      # every layer's errors (unlite/errors.py)
MAX_WAIT = 60.0             # the longest ``Prefer: wait=N`` honoured (seconds)


def describe(e: UnliteError):
    """(status, message, path, fault, extra) of a known error: the one error shape of the REST
    API and the ubus object."""
    return e.describe()

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
                return _error(*describe(e))
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
    routes (``tenant()``). The unix socket's caller (the file is 0600: root) is ``ROOT``, an
    identity no token or tenant name can stand for."""
    name, api = "unlite-auth", 2

    def __init__(self, tenants):
        self.tenants = tenants

    def apply(self, callback, route):
        def wrapper(*args, **kwargs):
            env = bottle.request.environ
            env["unlite.tenant"] = ROOT if env.get("REMOTE_ADDR") == "unix" else None
            if self.tenants.enabled and env["unlite.tenant"] is None:
                path = bottle.request.path
                if not any(path == p or path.startswith(p + "/") for p in PUBLIC):
                    # the raw header values: Bottle's get_header() fails on non-UTF-8 bytes
                    auth = env.get("HTTP_AUTHORIZATION", "")
                    token = env.get("HTTP_X_AUTH_TOKEN", "").strip() or (
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


def _error(status, message, path=None, fault=None, extra=None):
    body = {"error": message, "path": path, **(extra or {})}
    if fault:
        body["fault"] = fault
    return _json(body, status)


def prefer_wait():
    """The seconds a ``Prefer: respond-async, wait=N`` request (RFC 7240) waits for its
    change before it is answered 202 while the change goes on; None: wait for the end."""
    prefs = [p.strip().lower() for p in bottle.request.environ.get("HTTP_PREFER", "").split(",")]
    if "respond-async" not in prefs:
        return None
    for p in prefs:
        name, _, value = p.partition("=")
        if name.strip() == "wait":
            try:
                return max(0.0, min(float(value.strip().strip('"')), MAX_WAIT))
            except ValueError:
                break
    return 0.0


def change(node, gid, op, fn):
    """Run change ``op`` (put, delete, nf) of ``gid``, ``fn`` (which returns the answer); with
    ``Prefer: respond-async`` answer 202 once the wait is over and let it go on (its outcome:
    GET /NF-FG/status/<gid>)."""
    wait = prefer_wait()
    if wait is None:
        return fn()
    done, answer = node.runner.run(fn, wait)
    if done:
        answer.set_header("Preference-Applied", "respond-async")
        return answer
    status, record = node.changes.under_way(gid, op)
    r = _json({"nffg-uuid": gid, "status": status, "change": record}, 202)
    r.set_header("Preference-Applied", "respond-async")
    r.set_header("Location", f"/NF-FG/status/{gid}")
    return r


def pretty():
    """Does the caller ask for indented JSON (``?pretty``, ``?pretty=1``; not ``=0``)? A
    human at curl does; programs do not, and indenting takes Python's pure-Python encoder
    (5x the C one's time: half of a ``GET /NF-FG/`` of 200 graphs)."""
    try:
        value = bottle.request.query.get("pretty")
    except (RuntimeError, KeyError):          # not in a request (an error raised early)
        return False
    return value is not None and value.strip().lower() not in ("0", "false", "no")


def _json(obj, status=200):
    """The answer ``obj``: compact JSON, C-encoded; indented with ``?pretty``."""
    text = json.dumps(obj, indent=1) if pretty() else json.dumps(obj, separators=(",", ":"))
    return bottle.HTTPResponse(text + "\n", status, {"Content-Type": "application/json"})


def read_body(expected="an NF-FG JSON document"):
    req = bottle.request
    length = req.environ.get("CONTENT_LENGTH", "").strip()
    if length and not length.isdigit():
        raise NodeError(f"Content-Length {length[:20]!r} is not a number", "$", 400)
    if length and int(length) > MAX_BODY:
        raise NodeError(f"body larger than {MAX_BODY} bytes", "$", 413)
    try:
        data = req.body.read(MAX_BODY + 1)
    except OSError as e:                # the client stopped sending (REQUEST_TIMEOUT)
        raise NodeError(f"the body could not be read: {e}", "$", 400) from None
    if len(data) > MAX_BODY:
        raise NodeError(f"body larger than {MAX_BODY} bytes", "$", 413)
    if not data.strip():
        raise NodeError(f"empty body: {expected} is expected", "$", 400)
    return data


def _text(value):
    """A JSON string that is text (a lone surrogate, which JSON allows, is not)."""
    try:
        return isinstance(value, str) and bool(value.encode())
    except UnicodeEncodeError:
        return False


def make_app(node):
    # a body up to our limit stays in one buffer: past its MEMFILE_MAX (100 KiB) Bottle
    # spools it to a temporary file (more RAM in a router's /tmp, one more copy)
    bottle.BaseRequest.MEMFILE_MAX = MAX_BODY
    app = bottle.Bottle()
    app.uninstall(bottle.JSONPlugin)         # every route answers with _json() itself
    app.install(ErrorPlugin())
    app.install(AuthPlugin(node.tenants))

    @app.post("/login")
    def login():
        """The Universal Node's login: {"username", "password"} → a session token."""
        try:
            cred = json.loads(read_body('{"username": ..., "password": ...}'))
        except ValueError as e:
            raise NodeError(f"malformed JSON: {e}", "$", 400) from None
        if not isinstance(cred, dict):
            raise NodeError("expected {\"username\": ..., \"password\": ...}", "$", 400)
        user, password = cred.get("username"), cred.get("password")
        try:
            token = node.tenants.login(user, password, bottle.request.environ.get(
                "REMOTE_ADDR")) if _text(user) and _text(password) else None
        except Throttled as e:
            r = _error(429, str(e))
            r.set_header("Retry-After", str(e.retry))
            return r
        if token is None:
            return _error(401, "unknown user or wrong password")
        # the bare token as text/plain, as the UN answers: its client takes the whole body
        # as the token (whatever its Accept says); the header has it too
        return bottle.HTTPResponse(token, 200, {"Content-Type": "text/plain; charset=utf-8",
                                                "X-Auth-Token": token})

    @app.post("/NF-FG")
    @app.post("/NF-FG/")
    def post_graph():
        gid = node.post(read_body(), tenant())
        r = _json({"nffg-uuid": gid}, 201)
        r.set_header("Location", f"/NF-FG/{gid}")
        return r

    @app.put("/NF-FG/<gid>")
    def put_graph(gid):
        body, who = read_body(), tenant()

        def put():           # 201 for an update too: the UN's client takes only 201 as done
            created = node.put(gid, body, who)
            return _json({"nffg-uuid": gid, "created": created}, 201)
        return change(node, gid, "put", put)

    @app.get("/graphs")
    def graph_summaries():
        """One line per graph: what the ubus object's list and the LuCI page show."""
        return _json({"graphs": node.summaries(tenant())})

    @app.get("/NF-FG")
    @app.get("/NF-FG/")
    def list_graphs():
        return _json({"NF-FG": [{"nffg-uuid": g, **node.get(g, tenant())}
                                for g in node.ids(tenant())]})

    @app.get("/NF-FG/status/<gid>")
    def graph_status(gid):
        return _json(node.status(gid, tenant()))

    @app.get("/NF-FG/<gid>")
    def get_graph(gid):
        return _json(node.get(gid, tenant()))

    @app.delete("/NF-FG/<gid>")
    def delete_graph(gid):
        who = tenant()

        def delete():
            node.delete(gid, who)
            return bottle.HTTPResponse(status=204)
        return change(node, gid, "delete", delete)

    @app.post("/NF-FG/<gid>/VNFs/<nf>/<action>")
    def nf_action(gid, nf, action):
        """Table II on one NF: stop, start, pause, resume."""
        who = tenant()
        return change(node, gid, "nf", lambda: _json(node.nf_action(gid, nf, action, who)))

    @app.get("/events")
    def events():
        """Server-sent events: graph and NF state changes (see unlite/events.py)."""
        t = tenant()
        allow = None if t is None or t.admin else (lambda d: d.get("tenant") == t.name)
        gone = bottle.request.environ.get("unlite.gone")
        bottle.response.content_type = "text/event-stream"
        bottle.response.set_header("Cache-Control", "no-cache")

        def stream():               # subscribes when the server starts sending, not before
            sub = node.events.subscribe()
            try:
                for chunk in sse(sub, allow=allow, gone=gone):
                    yield chunk.encode()
            finally:
                node.events.unsubscribe(sub)
        return stream()

    first_use = threading.Lock()

    @app.get("/capabilities")
    def capabilities():
        # one at a time: the first call reads the NNF catalog and the package database,
        # which the next ones find cached (several first reads at once peak the heap)
        with first_use:
            return _json(node.capabilities(tenant()))

    @app.get("/nnfs")
    def nnfs():
        return _json({"nnfs": [{"name": t.name, "flavour": t.flavour, "aliases": list(t.aliases),
                                "description": t.description, "multitenancy": t.multitenancy,
                                "dependencies": [n for n, _ in t.dependencies]}
                               for t in node.repo.templates()]})

    @app.get("/healthz")
    def healthz():
        # public: with tenants, no count of theirs for whoever asks
        return _json({"status": "ok", "version": __version__,
                      **({} if node.tenants.enabled else {"graphs": len(node.graphs)})})

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

    @app.hook("before_request")
    def utf8_path():
        """Bottle drops the bytes of a path that are not UTF-8 (DELETE /NF-FG/a%FFb would
        delete graph ab): refuse such a path instead."""
        try:
            bottle.request.environ.get("bottle.raw_path", "").encode("latin1").decode()
        except UnicodeError:
            raise _error(400, "the path is not UTF-8") from None

    def bottle_error(err):
        """Errors Bottle makes itself (no route 404, wrong method 405, bad chunked body 400)
        in JSON like every other."""
        bottle.response.content_type = "application/json"
        what = f"{err.status_line}: {bottle.request.method} {bottle.request.path}"
        if err.status_code not in (404, 405) and isinstance(err.body, str) and err.body:
            what += f" ({err.body})"
        return json.dumps({"error": what, "path": None}, separators=(",", ":")) + "\n"
    app.default_error_handler = bottle_error

    return app


def writes(method, path):
    """httpd's lane policy: which requests queue on the write lane (one at a time, behind
    the node's lock) while reads are answered beside them: all but GET, HEAD, OPTIONS
    (``/login`` too, so that sessions change one at a time)."""
    return method not in ("GET", "HEAD", "OPTIONS")


def make_server_for(node, host, port):
    return httpd.tcp_server(make_app(node), host, port, writes=writes)


def make_unix_server_for(node, path):
    """Serve the API on unix socket ``path``. A stale socket file (nobody answering) is
    replaced; a live one means another daemon: OSError."""
    return httpd.unix_server(make_app(node), path, writes=writes)
