"""``unlite`` command line (the CLI contract: DESIGN.md, README "CLI").

``unlite serve`` runs the daemon; every other command is a thin client of a running daemon
(``--url``, default ``$UNLITE_URL`` or http://127.0.0.1:8080), except ``nnf pack`` which
builds an NNF package locally.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from . import settings, tune_malloc, uci


def add_setting(subparser, setting):
    """One ``serve`` flag from its row in ``settings.SETTINGS``."""
    flags = [setting.short, setting.flag] if setting.short else [setting.flag]
    if setting.kind == "bool":
        subparser.add_argument(*flags, action="store_true", help=setting.help)
        return
    default = setting.value()
    shown = f" (default {default})" if default else ""
    if setting.router != setting.default:
        shown += f" (/etc/config/unlite: {setting.router})"
    subparser.add_argument(*flags, default=default, choices=setting.choices,
                           metavar=setting.metavar, help=setting.help + shown)


def lean_imports():
    """Keep OpenSSL out of the daemon (~5 MB of RSS): it never speaks TLS itself and hashes
    with Python's builtin sha256. This is the module set of OpenWrt's ``python3-light``,
    which ships neither ``ssl`` nor ``_hashlib``; https package fetches use the system's
    fetcher (``sh.fetch``). Must run before anything imports http.client or hashlib."""
    for name in ("ssl", "_hashlib"):
        sys.modules.setdefault(name, None)      # "import ssl" now raises ImportError


def default_limits(memory, pids):
    """``--nf-memory`` and ``--nf-pids`` → the caps of an NF whose template sets none."""
    from .compute.cgroup.limits import LimitError, parse
    out, memory, pids = {}, str(memory).strip(), str(pids).strip()
    for flag, key, value in (("--nf-memory (UCI nf_memory)", "memory", memory),
                             ("--nf-pids (UCI nf_pids)", "pids", pids)):
        if value in ("", "0"):
            continue
        try:
            out.update(parse({key: int(value) if key == "pids" and value.isdigit() else value}))
        except LimitError as e:
            raise ValueError(f"{flag}: {str(e).split(': ', 1)[1]}") from None
    return out


def cmd_serve(a):
    tune_malloc()                          # done already when run as python -m unlite
    lean_imports()
    uci_warnings = []
    if a.uci:                                   # settings from UCI; flags given win
        try:
            uci_warnings = uci.apply_serve_args(a)
        except uci.UciError as e:
            print(f"unlite: {e}", file=sys.stderr)
            return 2
    from .api import make_server_for, make_unix_server_for
    from .node import Node
    setup_logging(a.verbose, a.syslog)
    # only now: the file may say where logs go (verbose), and under procd a line on stderr
    # is logged as daemon.err whatever it says, while a warning belongs in daemon.warn
    for warning in uci_warnings:
        logging.getLogger("unlite").warning("%s", warning)
    host, _, port = a.listen.rpartition(":")
    from .network import SteeringError
    from .sh import CommandError
    opts = {"datapath": a.ovs_datapath} if a.backend == "ovs" else {}
    try:
        from .tenants import from_config
        node = Node(a.state_dir, a.run_dir, a.nnf_dir, a.backend,
                    prefer=a.prefer.split(",") if a.prefer else None,
                    tenants=from_config(getattr(a, "tenants", None) or {}), **opts)
    except SteeringError as e:
        print(f"unlite: {e.message}", file=sys.stderr)
        return 1
    try:
        node.compute.default_limits = default_limits(a.nf_memory, a.nf_pids)
    except ValueError as e:
        print(f"unlite: {e}", file=sys.stderr)
        node.shutdown()
        return 2
    usp_tenant = None
    if getattr(a, "usp_tenant", None):
        usp_tenant = node.tenants.by_name.get(a.usp_tenant)
        if usp_tenant is None:
            print(f"unlite: --usp-tenant (UCI usp_tenant) '{a.usp_tenant}' is no tenant: add "
                  f"config tenant '{a.usp_tenant}' or leave it unset (root)", file=sys.stderr)
            node.shutdown()
            return 2
    try:
        node.restore()
    except (SteeringError, CommandError) as e:
        print(f"unlite: cannot set up the '{a.backend}' backend: {e}", file=sys.stderr)
        node.shutdown()
        return 1
    server = make_server_for(node, host.strip("[]") or "127.0.0.1", int(port))
    servers = [server]
    if a.socket:                                # the same API for the rpcd plugin
        try:
            servers.append(make_unix_server_for(node, a.socket))
        except OSError as e:
            print(f"unlite: cannot serve on unix socket: {e}", file=sys.stderr)
            server.server_close()
            node.shutdown()
            return 1
        threading.Thread(target=servers[1].serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
    bus = start_ubus(node, a.ubus, a.ubus_socket)
    usp = None
    if getattr(a, "usp", None):                 # a USP Service on the Broker's socket
        try:
            from .usp.service import start as start_usp
        except ImportError as e:                # the node serves on: its graphs, its traffic
            logging.getLogger("unlite").error(
                "--usp (UCI usp) given, but unlite's USP Service is not installed (%s): "
                "install the unlite-usp package", e)
        else:
            usp = start_usp(node, a.usp, a.state_dir, tenant=usp_tenant)
    from .watch import Watch
    watch = Watch(node).start()
    stop = threading.Event()
    on_exit = [getattr(a, "on_exit", "stop")]

    def on_signal(signum, frame):
        stop.set()
        for srv in servers:
            threading.Thread(target=srv.shutdown, daemon=True).start()

    def on_usr1(signum, frame):             # /etc/init.d/unlite stop (not restart, upgrade)
        on_exit[0] = "stop"

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_usr1)
    logging.getLogger("unlite").info("listening on %s (backend %s, NNFs from %s)",
                                     a.listen, a.backend, a.nnf_dir)
    print(f"unlite listening on http://{a.listen}", flush=True)
    if a.socket:
        print(f"unlite listening on unix:{a.socket}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if bus is not None:
            bus.stop()                          # ubusd drops the object with the connection
        if usp is not None:
            usp.stop()
        for srv in servers[1:]:
            srv.server_close()                  # removes the socket file
        watch.stop()
        if on_exit[0] == "keep":
            node.detach()
        else:
            node.shutdown()
    return 0


def start_ubus(node, mode, path):
    """The daemon on ubus: 'daemon' registers object unlite and sends events, 'rpcd' only
    sends events (rpcd's exec plugin is the object), 'off' nothing. No ubusd (not OpenWrt)
    or an object unlite that exists already: said, and the daemon goes on without it."""
    log = logging.getLogger("unlite.ubus")
    if mode == "off":
        return None
    if not os.path.exists(path):
        log.info("no ubusd at %s: no ubus object, no ubus events", path)
        return None
    from .ubus.native import NativeObject
    from .ubus.wire import UbusError
    try:
        bus = NativeObject(node, path, register=mode == "daemon").start()
    except UbusError as e:
        log.warning("%s: ubus object unlite is not the daemon's (is rpcd's exec plugin "
                    "/usr/libexec/rpcd/unlite enabled too? option ubus says which one)", e)
        return None
    log.info("ubus: %s on %s", "object unlite and events" if mode == "daemon"
             else "events (object unlite: rpcd's exec plugin)", path)
    return bus


class _Syslog(logging.Handler):
    """One datagram per line of a record to the system log (OpenWrt's logd, busybox syslogd)
    with the record's own level: procd would log every stderr line as daemon.err.

    Shaped for small system logs: busybox syslogd keeps the first 1023 bytes of a datagram
    (its 1 KiB read buffer; measured) and shows its lines as one, so a long traceback lost
    its last line, the exception. Each line is therefore a datagram of its own, cut into
    pieces of ``MAX_DATAGRAM`` bytes at most, every piece with the level, the ident and
    the logger's name. A system log that restarted (a new socket at the same path) is
    reconnected to once per record instead of losing every later line."""
    LEVELS = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))   # err warn info
    FACILITY = 3                                # daemon
    MAX_DATAGRAM = 1000

    def __init__(self, path="/dev/log"):
        super().__init__()
        self.path = path
        self.sock = self._connect()             # OSError: no system log here
        self.ident = f"unlite[{os.getpid()}]: "

    def _connect(self):
        import socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def datagrams(self, record):
        """The datagrams of one record: ``<PRI>unlite[PID]: LOGGER LINE`` each."""
        sev = next((s for lvl, s in self.LEVELS if record.levelno >= lvl), 7)   # debug
        head = f"<{self.FACILITY * 8 + sev}>{self.ident}{record.name} ".encode()
        room = max(16, self.MAX_DATAGRAM - len(head))
        out = []
        for line in self.format(record).splitlines():
            data = line.rstrip().encode(errors="replace")
            while data:
                piece = data[:room].decode(errors="ignore").encode()   # whole characters
                if not piece:                   # room smaller than one character: never
                    piece = data[:room]
                out.append(head + piece)
                data = data[len(piece):]
        return out

    def _send(self, data):
        try:
            self.sock.send(data)
        except OSError:                         # the log daemon restarted: its new socket
            self.sock.close()
            self.sock = self._connect()
            self.sock.send(data)

    def emit(self, record):
        try:
            for data in self.datagrams(record):
                self._send(data)
        except OSError:
            self.handleError(record)

    def close(self):
        self.sock.close()
        super().close()


def setup_logging(verbose, syslog=False):
    """Logging of ``unlite serve``: to the system log with each record's level (``--syslog``,
    as the procd init script runs it), else to stderr with a timestamp. Without a system
    log at /dev/log it says so on stderr and logs there."""
    level = logging.DEBUG if verbose else logging.INFO
    if syslog:
        try:
            handler = _Syslog()
        except OSError as e:
            print(f"unlite: no system log at /dev/log ({e.strerror}): logging to stderr",
                  file=sys.stderr)
        else:
            handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
            logging.basicConfig(level=level, handlers=[handler])
            return
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _call(a, method, path, body=None):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(a.url.rstrip("/") + path, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            data = r.read()
    except urllib.error.HTTPError as e:
        data = e.read()
        try:
            err = json.loads(data)
            msg = err.get("error", data.decode())
            where = f" (at {err['path']})" if err.get("path") else ""
        except ValueError:
            msg, where = data.decode(errors="replace"), ""
        print(f"unlite: {e.code}: {msg}{where}", file=sys.stderr)
        return 1
    except urllib.error.URLError as e:
        print(f"unlite: cannot reach the daemon at {a.url}: {e.reason}", file=sys.stderr)
        return 2
    if data.strip():
        print(json.dumps(json.loads(data), indent=1))
    return 0


def cmd_graph(a):
    if a.action == "apply":
        body = Path(a.file).read_bytes() if a.file != "-" else sys.stdin.buffer.read()
        gid = a.id
        if gid is None:
            try:
                gid = json.loads(body)["forwarding-graph"].get("id")
            except (ValueError, KeyError, TypeError, AttributeError):
                gid = None
        return _call(a, "PUT", f"/NF-FG/{gid}", body) if gid else _call(a, "POST", "/NF-FG/",
                                                                         body)
    if a.action == "list":
        return _call(a, "GET", "/NF-FG/")
    if not a.id:
        print(f"unlite: graph {a.action} needs an ID", file=sys.stderr)
        return 2
    path = {"get": f"/NF-FG/{a.id}", "delete": f"/NF-FG/{a.id}",
            "status": f"/NF-FG/status/{a.id}"}[a.action]
    return _call(a, "DELETE" if a.action == "delete" else "GET", path)


def cmd_caps(a):
    return _call(a, "GET", "/capabilities")


def cmd_nnf(a):
    from .compute.package import PackageError, pack
    if a.action == "pack":
        try:
            digest = pack(a.dir, a.output, a.template)
        except PackageError as e:
            print(f"unlite: {e}", file=sys.stderr)
            return 1
        print(f"{a.output} sha256={digest}")
        return 0
    return _call(a, "GET", "/nnfs")


def parser():
    p = argparse.ArgumentParser(prog="unlite", description="Native network functions node")
    p.add_argument("--url", default=settings.url(),
                   help="daemon URL for client commands (default %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the daemon")
    for setting in settings.SETTINGS:           # flags, defaults and help: settings.py
        add_setting(s, setting)
    s.add_argument("--syslog", action="store_true",
                   help="log to the system log (/dev/log) with each record's level")
    s.add_argument("--uci", metavar="FILE", help="read settings from a UCI file, e.g. "
                   "/etc/config/unlite (flags given here win)")
    s.set_defaults(func=cmd_serve)
    uci.mark_defaults(s)
    g = sub.add_parser("graph", help="apply, list, get, status or delete graphs")
    g.add_argument("action", choices=["apply", "list", "get", "status", "delete"])
    g.add_argument("file_or_id", nargs="?", help="FILE for apply, ID otherwise")
    g.add_argument("--id", help="graph id for apply (default: the file's forwarding-graph.id)")
    g.set_defaults(func=cmd_graph)
    c = sub.add_parser("caps", help="show the node's capabilities")
    c.set_defaults(func=cmd_caps)
    n = sub.add_parser("nnf", help="pack an NNF or list the daemon's catalog")
    n.add_argument("action", choices=["pack", "list"])
    n.add_argument("dir", nargs="?", help="NNF source folder (pack)")
    n.add_argument("-o", "--output", help="output .tgz (pack)")
    n.add_argument("--template", metavar="FILE", help="the template.json to pack, when DIR "
                   "holds only scripts (e.g. a UN native NF folder, kept unchanged)")
    n.set_defaults(func=cmd_nnf)
    return p


def main(argv=None):
    a = parser().parse_args(argv)
    if a.cmd == "graph":
        if a.action == "apply":
            a.file = a.file_or_id
            if not a.file:
                print("unlite: graph apply needs a FILE", file=sys.stderr)
                return 2
        else:
            a.id = a.id or a.file_or_id
    if a.cmd == "nnf" and a.action == "pack" and not (a.dir and a.output):
        print("unlite: nnf pack needs DIR and -o FILE.tgz", file=sys.stderr)
        return 2
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
