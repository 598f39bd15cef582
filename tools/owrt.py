"""The real OpenWrt userland for the tests and benchmarks: ubusd, rpcd, uhttpd, procd, LuCI,
opkg, usign, apk, built from ../shared/third_party/openwrt by its build.sh (``.ci/run`` does
it, cached by the tarballs' sha256) and run in its sandbox (a private mount namespace over a
rootfs folder: the host's /etc, /usr, /var never change).

- ``PREFIX``, ``BUNDLE``        where the programs are built, where their sources and scripts are
- ``missing()``                 why the userland cannot be used here, or None; ``require()``
                                skips a test with that reason — or fails it when
                                ``UNLITE_REQUIRE_OPENWRT=1`` (CI: a missing build is a failure,
                                never a silent pass)
- ``Root``                      a rootfs folder with unlite's files laid out as the ``unlite``
                                package installs them (code linked, not copied), its UCI file,
                                its ACLs; optionally LuCI (24.10 or master) and
                                ``add_luci_app()``: luci-app-unlite's files
- ``BareRoot``                  a root with nothing of unlite (opkg and apk tests), its sandbox
- ``Sandbox``                   ``start`` / ``stop`` / ``exec`` / ``ubus`` / ``call`` (ubus CLI),
                                ``listen`` (``ubus listen`` in the background), ``jsonrpc`` and
                                ``login`` (uhttpd's /ubus with rpcd sessions); with procd
                                (``procd=True`` or a network namespace's name): ``instances``
                                (procd's view of a service) and ``logread`` (the system log)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = Path(os.environ.get("OPENWRT_BUNDLE", ROOT.parent / "shared/third_party/openwrt"))
PREFIX = Path(os.environ.get("OPENWRT_USERLAND", "/opt/openwrt-userland"))
SANDBOX = BUNDLE / "sandbox.sh"
BUILD_HINT = (f"build it with: sh {BUNDLE}/build.sh {BUNDLE}/src {PREFIX} core luci pyubus "
              f"apk (what .ci/run does)")


def missing(*needs):
    """Why the real userland cannot run here (None: it can). ``needs``: extra programs under
    PREFIX (e.g. 'sbin/procd', 'bin/opkg')."""
    if not BUNDLE.is_dir():
        return f"no OpenWrt bundle at {BUNDLE} (../shared/third_party/openwrt)"
    for rel in ("sbin/ubusd", "sbin/rpcd", "bin/ubus", "bin/uhttpd", *needs):
        if not (PREFIX / rel).exists():
            return f"OpenWrt userland not built ({PREFIX / rel} missing): {BUILD_HINT}"
    if os.geteuid() != 0:
        return "the OpenWrt sandbox needs root (mount namespaces)"
    if not shutil.which("busybox"):
        return "busybox is not installed (the sandbox's /bin/sh): apt-get install busybox"
    return None


def require(*needs):
    """In a test: skip it (with the reason) when the userland is missing."""
    import pytest
    why = missing(*needs)
    if why is None:
        return
    if os.environ.get("UNLITE_REQUIRE_OPENWRT") == "1":
        pytest.fail(f"UNLITE_REQUIRE_OPENWRT=1 but {why}")
    pytest.skip(why)


def until(what, check, timeout=20):
    """Poll ``check()`` until it returns something true (returned), or fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def service_pid(sb, service, other_than=None):
    """The pid of ``service``'s running procd instance (not ``other_than``), else a false
    value: what tests wait for after a start, a respawn or a package upgrade."""
    i = sb.instances(service).get("instance1") or {}
    return i.get("running") and i.get("pid") != other_than and i["pid"]


def unlite_list(run):
    """``ubus call unlite list`` through ``run`` (a command runner inside the sandbox): the
    answer, or False while the object does not answer."""
    p = run("ubus", "-t", "2", "call", "unlite", "list")
    return p.returncode == 0 and json.loads(p.stdout)


def first_graph_complete(run):
    g = (unlite_list(run) or {}).get("graphs") or [{}]
    return g[0].get("status") == "complete"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Root:
    """A router's rootfs folder for the sandbox, with the ``unlite`` package's files."""

    def __init__(self, path, ubus="daemon", luci=None, uci_extra=""):
        self.path = Path(path)
        p = self.path
        for d in ("etc/config", "usr/libexec/rpcd", "usr/share/rpcd/acl.d", "usr/lib/unlite",
                  "usr/bin", "run/unlite", "etc/init.d"):
            (p / d).mkdir(parents=True, exist_ok=True)
        if luci:                      # first: it writes etc/config/{rpcd,uhttpd}
            subprocess.run(["sh", str(BUNDLE / "luci.sh"), str(p), luci], check=True,
                           capture_output=True, env=dict(os.environ, PREFIX=str(PREFIX)))
        # the package's files (code linked: the checkout is what runs), and Bottle where
        # OpenWrt's python3-bottle puts it for the python3 inside (Debian's /usr/bin/python3)
        os.symlink(ROOT / "unlite", p / "usr/lib/unlite/unlite")
        import bottle
        site = p / "usr/lib/python3/dist-packages"
        site.mkdir(parents=True, exist_ok=True)
        if not (site / "bottle.py").exists() and not Path("/usr/lib/python3/dist-packages/"
                                                          "bottle.py").exists():
            os.symlink(bottle.__file__, site / "bottle.py")
        for rel, mode in (("usr/libexec/rpcd/unlite", 0o755), ("etc/init.d/unlite", 0o755),
                          ("usr/share/rpcd/acl.d/unlite.json", 0o644),
                          ("usr/share/rpcd/acl.d/luci-app-unlite.json", 0o644)):
            shutil.copy(ROOT / "files" / rel, p / rel)
            os.chmod(p / rel, mode)
        shutil.copy(ROOT / "openwrt/unlite/files/unlite.sh", p / "usr/bin/unlite")
        os.chmod(p / "usr/bin/unlite", 0o755)
        self.socket = p / "run/unlite/unlite.sock"      # /var/run/unlite/unlite.sock inside
        self.ubus_socket = p / "run/ubus/ubus.sock"      # /var/run/ubus/ubus.sock inside
        self.write_uci(ubus, uci_extra)

    def write_uci(self, ubus="daemon", extra=""):
        text = (ROOT / "files/etc/config/unlite").read_text()
        text = text.replace("option ubus 'daemon'", f"option ubus '{ubus}'")
        assert f"option ubus '{ubus}'" in text, "files/etc/config/unlite has no option ubus"
        (self.path / "etc/config/unlite").write_text(text + extra)

    def set_options(self, **options):
        """Set options of ``config unlite 'main'`` in ROOT/etc/config/unlite (before the
        sandbox starts: the host's edits of a running overlay may stay unseen inside; change
        it from inside, with ``uci``, once it runs). An option the file lacks is added."""
        conf = self.path / "etc/config/unlite"
        lines = conf.read_text().splitlines()
        start = lines.index("config unlite 'main'")
        end = next((i for i in range(start + 1, len(lines))
                    if not lines[i].startswith(("\t", " "))), len(lines))
        for key, value in options.items():
            line = f"\toption {key} '{value}'"
            at = next((i for i in range(start + 1, end)
                       if lines[i].split()[:2] == ["option", key]), None)
            if at is None:
                lines.insert(end, line)
                end += 1
            else:
                lines[at] = line
        conf.write_text("\n".join(lines) + "\n")

    def set_rpcd_timeout(self, seconds):
        conf = self.path / "etc/config/rpcd"
        text = conf.read_text() if conf.exists() else \
            "config rpcd\n\toption socket /var/run/ubus/ubus.sock\n\toption timeout 30\n"
        conf.write_text(text.replace("option timeout 30", f"option timeout {seconds}"))

    # luci-app-unlite's files, as openwrt/luci-app-unlite/Makefile installs them
    LUCI_APP_FILES = ("www/luci-static/resources/unlite/graph.js",
                      "www/luci-static/resources/view/unlite/graphs.js",
                      "usr/share/luci/menu.d/luci-app-unlite.json",
                      "usr/share/rpcd/acl.d/luci-app-unlite.json")

    def add_luci_app(self):
        """Lay out the ``luci-app-unlite`` package (its view, the drawing core, menu entry and
        ACL) over a Root made with ``luci=``. Copies, not links: uhttpd serves only files
        whose real path is under its docroot (ROOT/www)."""
        for rel in self.LUCI_APP_FILES:
            dst = self.path / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / "files" / rel, dst)      # follows graph.js' link
            os.chmod(dst, 0o644)
        return self

    def add_login(self, user, password, read=(), write=()):
        """An rpcd login (``config login``) with a SHA-512 crypt hash and its ACL groups."""
        hashed = subprocess.run(["openssl", "passwd", "-6", "-salt", "unlitetest", password],
                                check=True, capture_output=True, text=True).stdout.strip()
        conf = self.path / "etc/config/rpcd"
        lines = [f"\nconfig login\n\toption username '{user}'\n\toption password '{hashed}'\n"]
        lines += [f"\tlist read '{g}'\n" for g in read] + [f"\tlist write '{g}'\n" for g in write]
        with open(conf, "a") as f:
            f.write("".join(lines))


class BareRoot:
    """A rootfs folder that holds nothing of unlite (a package manager's tests: the packages
    bring it), its Sandbox (``procd``: as Sandbox's), and what such tests do inside."""
    RPCD_STAND_IN = ("#!/bin/sh\n# stands in for OpenWrt's /etc/init.d/rpcd (not in the bundle; "
                     "the sandbox's rpcd runs outside procd): records each call\n"
                     "echo \"$*\" >> /run/rpcd-init.calls\n")

    def __init__(self, path, procd=None):
        self.path = Path(path)                  # what Sandbox reads of its root
        (self.path / "run").mkdir(parents=True)
        self.sb = Sandbox(self, procd=procd)

    def write(self, rel, text, mode=0o644):
        """A file of the root, before the sandbox starts."""
        assert not self.sb.started, "write files of the overlays before start"
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    def stand_in_rpcd(self):
        self.write("etc/init.d/rpcd", self.RPCD_STAND_IN, 0o755)

    def rpcd_calls(self):
        """The arguments of each call of the stand-in /etc/init.d/rpcd, in order."""
        f = self.path / "run/rpcd-init.calls"
        return f.read_text().split("\n")[:-1] if f.exists() else []

    def run(self, *cmd, timeout=120):
        return self.sb.exec(*map(str, cmd), timeout=timeout)

    def exists(self, path):
        """Is there something at ``path`` inside (a file, folder or link)?"""
        return self.run("sh", "-c", f'[ -e "{path}" ] || [ -L "{path}" ]').returncode == 0


class Sandbox:
    def __init__(self, root: Root, http=False, procd=None):
        self.root, self.procd = root, procd
        self.port = free_port() if http else None
        self.started = False
        self._bg = []

    def _sh(self, *args, check=True, timeout=120, **kw):
        return subprocess.run(["sh", str(SANDBOX), *args], capture_output=True, text=True,
                              timeout=timeout, check=check,
                              env=dict(os.environ, PREFIX=str(PREFIX)), **kw)

    def start(self):
        # the sandbox shares /run/netns with the host: it must exist and be a shared mount
        subprocess.run(["ip", "netns", "add", "ulsbx-probe"], capture_output=True)
        subprocess.run(["ip", "netns", "del", "ulsbx-probe"], capture_output=True)
        args = ["start", str(self.root.path)]
        if self.port:
            args.append(f"127.0.0.1:{self.port}")
        pin = None
        if self.procd is True:
            args.append("--procd")
        elif self.procd:
            pin, name = self._pin_netns(self.procd)
            args.append(f"--procd={name}")
        try:
            p = self._sh(*args, check=False)
        finally:
            if pin is not None:             # procd is in the namespace now (or failed)
                pin.kill()
                pin.wait()
        if p.returncode != 0:
            self._sh("stop", str(self.root.path), check=False)
            raise AssertionError(f"sandbox did not start:\n{p.stdout}\n{p.stderr}")
        self.started = True
        return self

    @staticmethod
    def _pin_netns(netns):
        """sandbox.sh ``--procd=NETNS`` enters /run/netns/NETNS from inside its mount
        namespace, whose /run/netns is a bind of the host's without the namespaces mounted
        on it before the sandbox started (a plain bind is not recursive): a namespace that
        exists already is an empty file there, and nsenter fails with "Invalid argument".
        So name it through a process kept in it for the time of ``start``: the sandbox sees
        the host's /proc, and "../../proc/PID/ns/net" relative to /run/netns is its
        namespace (sandbox.sh also leaves ``lo`` alone for a named namespace, as it should).
        Returns (the process, the name to pass)."""
        if not os.path.exists(f"/run/netns/{netns}"):
            raise AssertionError(f"no network namespace /run/netns/{netns} for procd")
        pin = subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", "--", "sleep",
                                "infinity"])
        mine = os.stat(f"/run/netns/{netns}").st_ino
        deadline = time.monotonic() + 5
        while True:                         # until nsenter has entered it and exec'd sleep
            try:
                if os.stat(f"/proc/{pin.pid}/ns/net").st_ino == mine:
                    return pin, f"../../proc/{pin.pid}/ns/net"
            except OSError:
                pass
            if pin.poll() is not None or time.monotonic() > deadline:
                pin.kill()
                raise AssertionError(f"cannot keep a process in network namespace {netns}")
            time.sleep(0.01)

    def stop(self):
        for proc in self._bg:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.started:
            self._sh("stop", str(self.root.path), check=False)
            self.started = False

    def log(self, name):
        f = Path(f"{self.root.path}.{name}.log")
        return f.read_text(errors="replace") if f.exists() else ""

    # -- inside ----------------------------------------------------------------------------
    def exec(self, *cmd, check=False, timeout=120, input=None):
        return self._sh("exec", str(self.root.path), *cmd, check=check, timeout=timeout,
                        input=input)

    def ubus(self, *args, timeout=60):
        return self.exec("ubus", *args, timeout=timeout)

    def call(self, obj, method, args=None, timeout=30):
        """``ubus call OBJ METHOD ARGS``: the answer object (AssertionError on a failed
        call, with ubus' own message)."""
        cmd = ["ubus", "-t", str(timeout), "call", obj, method]
        if args is not None:
            cmd.append(json.dumps(args))
        p = self.exec(*cmd, timeout=timeout + 30)
        if p.returncode != 0:
            raise AssertionError(f"ubus call {obj} {method} failed ({p.returncode}): "
                                 f"{p.stderr.strip() or p.stdout.strip()}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def instances(self, service):
        """procd's instances of ``service`` ({name: {"running", "pid", "command", ...}}, pids
        of procd's PID namespace, which ``exec`` enters); {} when procd has no such service."""
        p = self.exec("ubus", "call", "service", "list", json.dumps({"name": service}))
        if p.returncode != 0:
            raise AssertionError(f"ubus call service list: {p.stderr.strip()}")
        return (json.loads(p.stdout or "{}").get(service) or {}).get("instances", {})

    def logread(self):
        """The system log (busybox syslogd in procd's namespaces: procd's instances' stdout
        and stderr, and what they send to /dev/log) as dicts: facility, level (busybox's
        names: err, warn, info, debug...), ident, pid (int or None), message."""
        p = self.exec("logread")
        if p.returncode != 0:
            raise AssertionError(f"logread failed (sandbox started with procd?): {p.stderr}")
        out = []
        for line in p.stdout.splitlines():
            m = re.match(r"^\w{3} [ \d]\d [\d:]{8} \S+ (\w+)\.(\w+) ([^\s:\[]+)(?:\[(\d+)\])?: "
                         r"?(.*)$", line)
            if m:
                out.append({"facility": m[1], "level": m[2], "ident": m[3],
                            "pid": int(m[4]) if m[4] else None, "message": m[5]})
        return out

    def listen(self, *events):
        """Start ``ubus listen EVENT...`` inside; ``.lines()`` reads what it printed."""
        path = self.root.path.parent / f"listen-{len(self._bg)}.out"
        out = open(path, "w")
        proc = subprocess.Popen(["sh", str(SANDBOX), "exec", str(self.root.path), "ubus",
                                 "listen", *events], stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PREFIX=str(PREFIX)))
        self._bg.append(proc)
        time.sleep(0.3)                             # registered before the test goes on

        class Listener:
            def lines(self_):
                return [json.loads(ln) for ln in path.read_text().splitlines()
                        if ln.startswith("{")]
        return Listener()

    # -- uhttpd's /ubus (JSON-RPC with rpcd sessions) --------------------------------------
    def jsonrpc(self, sid, obj, method, args=None, raw=None, timeout=60):
        body = raw if raw is not None else json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "call",
             "params": [sid, obj, method, args or {}]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/ubus", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def login(self, user, password):
        r = self.jsonrpc("0" * 32, "session", "login", {"username": user,
                                                         "password": password})
        assert r.get("result", [None])[0] == 0, f"login {user}: {r}"
        return r["result"][1]["ubus_rpc_session"]
