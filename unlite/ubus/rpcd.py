"""rpcd's exec plugin behind ubus object ``unlite``, where the daemon does not register the
object itself (UCI ``option ubus 'rpcd'``; see ``unlite/ubus/__init__.py``).

rpcd runs ``/usr/libexec/rpcd/unlite list`` when it starts (or reloads) and ``... call
METHOD`` (arguments as JSON on stdin) for each ``ubus call unlite METHOD``. ``list`` prints
the method table only in 'rpcd' mode and ``{}`` otherwise, so rpcd registers nothing and
the daemon's own object is the only ``unlite``. Each call is one HTTP request to the daemon
over its unix socket (``unlite serve --socket``); the answer is one JSON object on stdout.

Limits of this path, each answered with an error that names it (never a truncated-JSON
message): rpcd hands a plugin at most 65,536 bytes of arguments (``RPCD_STDIN``) and keeps
256 KiB of its output; it kills a call after its ``-t`` (read from rpcd's command line, the
real setting: stock OpenWrt passes ``-t 30`` from /etc/config/rpcd), so a change not done
within ``ANSWER_WITHIN`` seconds is answered "pending" and goes on in the daemon.

Imports: json, os, re, socket, sys, and ``unlite.uci`` only when a call needs the config
file (no dataclasses, no http.client, no email: this process starts once per call).
"""
from __future__ import annotations

import json
import os
import re
import socket
import sys

from .. import settings
from . import methods
from .methods import ANSWER_WITHIN, Failure

UCI_FILE = "/etc/config/unlite"
RPCD_STDIN = 65536           # rpcd passes at most this much of the arguments
RPCD_DEFAULT_TIMEOUT = 120   # rpcd's own default without -t (stock OpenWrt passes -t 30)
MAX_REPLY = 240 * 1024       # rpcd truncates plugin output at 256 KiB
MAX_INPUT = (1 << 20) + 4096
MAX_HTTP = 8 << 20
ALTERNATIVES = ("deploy it with 'unlite graph apply FILE' on the router, PUT /NF-FG/ID over "
                "the REST API, or set option ubus 'daemon' in /etc/config/unlite (the daemon's "
                "own ubus object takes up to 1 MiB)")


# -- configuration ---------------------------------------------------------------------------
def _main_options():
    """The options of ``config unlite``; None when there is no file."""
    path = os.environ.get("UNLITE_UCI") or UCI_FILE
    if not os.path.exists(path):
        return None
    from .. import uci
    try:
        for s in uci.load(path):
            if s.type == "unlite":
                return s.options
    except uci.UciError as e:
        raise Failure(f"cannot read {path}: {e}") from None
    return {}


def mode():
    """daemon | rpcd | off: who registers ubus object unlite (UCI option ubus)."""
    ubus = settings.BY_NAME["ubus"]
    value = (_main_options() or {}).get("ubus", ubus.default)
    return value if value in ubus.choices else ubus.default


def socket_path():
    env = os.environ.get("UNLITE_SOCKET")
    if env:
        return env
    options = _main_options()
    if options is None:                 # no file: where the package's file puts it
        return settings.router("socket")
    value = options.get("socket", settings.BY_NAME["socket"].default)
    if not value or not isinstance(value, str):     # the daemon opens none either
        raise Failure(f"the daemon has no unix socket: set option socket in "
                      f"{UCI_FILE} and run /etc/init.d/unlite reload")
    return value


def rpcd_timeout(pid=None):
    """Seconds rpcd lets this call run: its ``-t`` (the parent's command line), rpcd's own
    default without one, or None when the parent is not rpcd (a person, a test)."""
    pid = os.getppid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    if os.path.basename(argv[0]) != "rpcd":
        return None
    for i, a in enumerate(argv[1:], 1):
        v = argv[i + 1] if a == "-t" and i + 1 < len(argv) else a[2:] if a.startswith("-t") \
            else None
        if v:
            try:
                return max(1, int(v, 0))
            except ValueError:
                return None
    return RPCD_DEFAULT_TIMEOUT


# -- the daemon over its unix socket ---------------------------------------------------------
def http(path_, method, target, body=b"", timeout=120.0, headers=()):
    """(status, parsed JSON body or None) of one request to the daemon at unix socket path_."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path_)
        except (FileNotFoundError, ConnectionRefusedError):
            raise Failure(f"the unlite daemon is not running (nothing answers on {path_}); "
                          f"start it with /etc/init.d/unlite start", socket=path_) from None
        except OSError as e:
            raise Failure(f"cannot reach the unlite daemon at {path_}: {e.strerror}",
                          socket=path_) from None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers)
        head = (f"{method} {target} HTTP/1.0\r\nHost: localhost\r\n{head}"
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
        raise Failure(f"the daemon did not answer within {timeout:.0f} s (before rpcd's "
                      f"timeout); a change may still be under way: check 'status'") from None
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


class OverSocket:
    """``methods.call``'s backend: the REST API on the daemon's unix socket."""

    def __init__(self, path, limit=None):
        self.path = path
        self.timeout = max(1.0, limit - 1.0) if limit else 120.0     # answer before rpcd kills
        self.wait = max(0.5, min(ANSWER_WITHIN, limit - 3.0)) if limit else ANSWER_WITHIN

    def _request(self, method, target, body=b"", change=False):
        headers = [("Prefer", f"respond-async, wait={self.wait:g}")] if change else []
        status, doc = http(self.path, method, target, body, self.timeout, headers)
        if status >= 400:
            doc = doc if isinstance(doc, dict) else {}
            extra = {k: doc[k] for k in ("path", "fault", "fault-detail", "change")
                     if doc.get(k) is not None}
            raise Failure(str(doc.get("error") or f"HTTP {status}"), status=status, **extra)
        if status == 202:
            doc = doc or {}
            return None, methods.pending(doc.get("nffg-uuid"), doc.get("status"),
                                         doc.get("change"))
        return status, doc

    def summaries(self):
        return (self._request("GET", "/graphs")[1] or {}).get("graphs", [])

    def get(self, gid):
        return self._request("GET", f"/NF-FG/{gid}")[1]

    def status(self, gid):
        return self._request("GET", f"/NF-FG/status/{gid}")[1]

    def capabilities(self):
        return self._request("GET", "/capabilities")[1]

    def put(self, gid, graph, wait):
        body = json.dumps(graph).encode() if isinstance(graph, dict) else graph.encode()
        status, doc = self._request("PUT", f"/NF-FG/{gid}", body, change=True)
        return doc if status is None else {"id": gid, "created": bool((doc or {}).get("created"))}

    def delete(self, gid, wait):
        status, doc = self._request("DELETE", f"/NF-FG/{gid}", change=True)
        return doc if status is None else {"id": gid, "deleted": True}

    def nf(self, gid, nf, action, wait):
        return self._request("POST", f"/NF-FG/{gid}/VNFs/{nf}/{action}", change=True)[1]


# -- rpcd's command line ---------------------------------------------------------------------
def _emit(obj):
    text = json.dumps(obj)
    if len(text) > MAX_REPLY:
        text = json.dumps({"error": f"the answer is {len(text)} bytes, more than rpcd passes "
                                    f"on from a plugin ({MAX_REPLY}): use the REST API for it, "
                                    f"or set option ubus 'daemon'"})
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _arguments(raw):
    if len(raw) > MAX_INPUT:
        raise Failure(f"arguments larger than {MAX_INPUT} bytes")
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        if len(raw) >= RPCD_STDIN:
            raise Failure(f"the arguments were cut at {RPCD_STDIN:,} bytes: rpcd hands an exec "
                          f"plugin no more than that; {ALTERNATIVES}", status=413) from None
        raise Failure(f"arguments are not JSON: {e}") from None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["list"]:
        try:
            _emit(methods.exec_signature() if mode() == "rpcd" else {})
        except Failure:
            _emit({})
        return 0
    if len(argv) != 2 or argv[0] != "call":
        print("usage: unlite list | unlite call METHOD  (rpcd exec plugin; arguments as "
              "JSON on stdin)", file=sys.stderr)
        return 1
    try:
        args = _arguments(sys.stdin.buffer.read(MAX_INPUT + 1))
        methods.check(argv[1], args)
        backend = OverSocket(socket_path(), rpcd_timeout())
        _emit(methods.call(backend, argv[1], args))
    except Failure as e:
        _emit(e.body)
    except Exception as e:  # noqa: BLE001 - rpcd must get JSON; the cause is in the text
        _emit({"error": f"internal error in the rpcd plugin: {type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
