"""A gateway in namespaces, for the demo, the tests and the benchmarks (not shipped).

- ``Lab``: named namespaces + veth links, every object recorded and removed by ``close()``
  (also on failure), addresses and routes, ``run(ns, cmd)`` inside a namespace;
- ``Daemon``: ``unlite serve`` started inside a namespace with ``nsenter --net`` (it must
  stay in the host's mount namespace so the NF namespaces it creates are visible to all),
  and an HTTP client whose socket is opened from inside that namespace (a thread that
  ``setns``-ed into it), so the daemon can listen on the namespace's own loopback.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from unlite.sh import node_tag  # noqa: E402  (the names unlite gives its namespaces)
CLONE_NEWNET = 0x40000000

# Under ``make test-kernel`` (a full kernel in QEMU, often emulated: 7-9x slower) waits
# stretch by this factor, and a kernel feature a test needs that is missing is a failure.
KERNEL_LAB = os.environ.get("UNLITE_KERNEL_LAB") == "1"
SLACK = float(os.environ.get("UNLITE_TEST_SLACK") or (6 if KERNEL_LAB else 1))


def sh(*argv, check=True, input=None, timeout=30):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, input=input,
                       timeout=timeout)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))}: {p.returncode}: {p.stderr.strip()}")
    return p


class Lab:
    """Namespaces and links made for one experiment; ``close()`` removes exactly those."""

    def __init__(self, prefix="ult"):
        self.tag = f"{prefix}{secrets.token_hex(2)}"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def ns(self, name):
        full = f"{self.tag}-{name}"
        self.namespaces.append(full)
        sh("ip", "netns", "add", full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        # quiet hosts: no IPv6 autoconf chatter, so packet counts mean what the test sent
        sh("ip", "netns", "exec", full, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
        return full

    def link(self, ns_a, if_a, ns_b, if_b, ip_a=None, ip_b=None):
        sh("ip", "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
           "netns", ns_b)
        for ns, ifn, ip in ((ns_a, if_a, ip_a), (ns_b, if_b, ip_b)):
            if ip:
                sh("ip", "-n", ns, "addr", "add", ip, "dev", ifn)
            sh("ip", "-n", ns, "link", "set", ifn, "up")

    def route(self, ns, dest, via):
        sh("ip", "-n", ns, "route", "add", dest, "via", via)

    def run(self, ns, *cmd, check=False, timeout=30):
        return sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    def spawn(self, ns, *cmd, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, cmd)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            _killpg(p)
        for ns in reversed(self.namespaces):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


def _killpg(p, sig=signal.SIGKILL):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _enter(ns):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
    finally:
        os.close(fd)


# -- what this kernel has --------------------------------------------------------------------
# Each probe makes its object in a scratch namespace (removed with it) and says yes or no; the
# kernel loads the module on demand where modprobe works. A router's kernel has them all
# (kmod-sched-flower, kmod-sched-core, kmod-8021q, kmod-gre, kmod-ipsec4, kmod-openvswitch).
VETH = ("ip", "link add name pa type veth peer name pb")
CLSACT = ("tc", "qdisc add dev pa clsact")
_PROBES = {
    "flower": [VETH, CLSACT, ("tc", "filter add dev pa ingress protocol ip flower ip_proto tcp "
                                    "action pass")],
    "gact": [VETH, CLSACT, ("tc", "filter add dev pa ingress protocol all u32 match u32 0 0 "
                                  "action drop")],
    "act_vlan": [VETH, CLSACT, ("tc", "filter add dev pa ingress protocol all u32 match u32 0 0 "
                                      "action vlan push id 5")],
    "pedit": [VETH, CLSACT, ("tc", "filter add dev pa ingress protocol all u32 match u32 0 0 "
                                   "action pedit ex munge eth src set 02:00:00:00:00:01")],
    "vlan": [VETH, ("ip", "link add link pa name pa.5 type vlan id 5")],
    "gretap": [("ip", "link add name pg type gretap local 192.0.2.1 remote 192.0.2.2 key 1")],
    "xfrm": [("ip", "xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode "
                    "transport aead rfc4106(gcm(aes)) 0x" + "11" * 20 + " 128")],
    "openvswitch": [("sh", "modprobe -q openvswitch; test -d /sys/module/openvswitch")],
}
_found: dict[str, bool] = {}


def kernel_has(feature):
    """Does this kernel have ``feature`` (a key of ``_PROBES``)? Probed once per process."""
    if feature not in _found:
        ns = f"ulkp{secrets.token_hex(3)}"
        ok = sh("ip", "netns", "add", ns, check=False).returncode == 0
        try:
            for tool, cmd in _PROBES[feature] if ok else ():
                argv = ["sh", "-c", cmd] if tool == "sh" else [tool, *cmd.split()]
                if sh("ip", "netns", "exec", ns, *argv, check=False).returncode:
                    ok = False
                    break
        finally:
            sh("ip", "netns", "del", ns, check=False)
        _found[feature] = ok
    return _found[feature]


def need_kernel(*features):
    """Skip (on a kernel without them: ``make test-kernel`` runs the test on one that has
    them) or, in the kernel lab, fail: every feature the test needs, else None."""
    import pytest
    missing = [f for f in features if not kernel_has(f)]
    if not missing:
        return
    if KERNEL_LAB:
        pytest.fail(f"the kernel lab's kernel lacks {', '.join(missing)}")
    pytest.skip(f"this kernel lacks {', '.join(missing)}: `make test-kernel` runs this "
                "under a full kernel")


def ovs_datapath():
    """The OVS datapath the tests give the daemon: the kernel's where it has the openvswitch
    module (a router's), else userspace (``netdev``). ``UNLITE_TEST_OVS_DATAPATH`` forces."""
    forced = os.environ.get("UNLITE_TEST_OVS_DATAPATH")
    if forced:
        return forced
    return "system" if kernel_has("openvswitch") else "netdev"


class Ovs:
    """A private Open vSwitch (ovsdb-server + ovs-vswitchd) whose switch runs in namespace
    ``ns``, with its own run/db/log folder. ``env`` is what an OVS client (and the unlite
    daemon) needs to reach it. Userspace TSO is on, so TCP through the userspace datapath
    keeps correct checksums."""

    def __init__(self, ns, workdir):
        self.ns, self.dir = ns, Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, OVS_RUNDIR=str(self.dir), OVS_DBDIR=str(self.dir),
                        OVS_LOGDIR=str(self.dir), OVS_SYSCONFDIR=str(self.dir))
        self.db = f"unix:{self.dir}/db.sock"

    def _run(self, *argv, ns=None):
        pre = ["nsenter", f"--net=/run/netns/{ns}"] if ns else []
        p = subprocess.run(pre + [str(a) for a in argv], env=self.env, capture_output=True,
                           text=True, timeout=30)
        if p.returncode:
            raise RuntimeError(f"{' '.join(map(str, argv))}: {p.stderr.strip()}")
        return p.stdout

    def start(self):
        self._run("ovsdb-tool", "create", self.dir / "conf.db",
                  "/usr/share/openvswitch/vswitch.ovsschema")
        self._run("ovsdb-server", self.dir / "conf.db", f"--remote=p{self.db}",
                  f"--pidfile={self.dir}/ovsdb-server.pid", "--detach",
                  f"--log-file={self.dir}/ovsdb-server.log")
        self._run("ovs-vsctl", f"--db={self.db}", "--no-wait", "init")
        self._run("ovs-vsctl", f"--db={self.db}", "--no-wait", "set", "Open_vSwitch", ".",
                  "other_config:userspace-tso-enable=true")
        self._run("ovs-vswitchd", self.db, f"--pidfile={self.dir}/ovs-vswitchd.pid",
                  "--detach", f"--log-file={self.dir}/ovs-vswitchd.log", ns=self.ns)
        return self

    def bridges(self):
        try:
            return self._run("ovs-vsctl", f"--db={self.db}", "--timeout=5", "list-br").split()
        except RuntimeError:
            return []

    def ports(self, bridge):
        try:
            return self._run("ovs-vsctl", f"--db={self.db}", "--timeout=5", "list-ports",
                             bridge).split()
        except RuntimeError:
            return []

    def stop(self):
        for name in ("ovs-vswitchd", "ovsdb-server"):
            try:
                pid = int((self.dir / f"{name}.pid").read_text())
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if _gone(pid):
                        break
                    time.sleep(0.01)
                else:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _gone(pid):
    """Exited (a zombie waiting for a reaper that is not us counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


class ApiError(Exception):
    def __init__(self, status, body, headers=None):
        super().__init__(f"{status}: {body}")
        self.status, self.body, self.headers = status, body, headers or {}


class Daemon:
    """``unlite serve`` inside namespace ``ns``; ``api()`` talks to it from inside ``ns``."""

    def __init__(self, ns, workdir, nnf_dir=None, port=8080, backend="nft", extra=(),
                 env=None, root=None):
        self.ns, self.port, self.env = ns, port, env
        self.root = Path(root or ROOT)          # the unlite tree to run (a bench: another commit's)
        self.pythonpath = None                  # PYTHONPATH if not the tree alone
        self._args = dict(port=port, backend=backend, extra=extra, env=env)
        if backend == "ovs":
            extra = ("--ovs-datapath", ovs_datapath(), *extra)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "daemon.log"
        self.nnf_dir = str(nnf_dir or ROOT / "build" / "nnf")
        self.argv = ["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-m", "unlite",
                     "serve", "--listen", f"127.0.0.1:{port}",
                     "--state-dir", str(self.workdir / "state"),
                     "--run-dir", str(self.workdir / "run"), "--nnf-dir", self.nnf_dir,
                     "--backend", backend, *extra]
        self.proc = None
        # the API's client threads, each in the node's namespace (4: a test may call from
        # several threads at once, and one call must not wait for another's answer)
        self.pool = concurrent.futures.ThreadPoolExecutor(4, initializer=_enter, initargs=(ns,))

    def start(self, timeout=10):
        timeout *= SLACK
        env = dict(self.env or os.environ, PYTHONPATH=self.pythonpath or str(self.root))
        self.proc = subprocess.Popen(self.argv, stdout=open(self.log_path, "ab"),
                                     stderr=subprocess.STDOUT, env=env, cwd=self.root,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"unlite serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("GET", "/healthz", timeout=1)
                return self
            except (OSError, ApiError):
                time.sleep(0.05)
        raise RuntimeError(f"unlite serve did not answer within {timeout}s:\n{self.log()}")

    def restarted(self, **changes):
        """A new daemon (started) on this one's namespace, state and run directories, and
        settings; ``changes`` override some (e.g. ``env=None``)."""
        return Daemon(self.ns, self.workdir, self.nnf_dir,
                      **{**self._args, **changes}).start()

    @contextlib.contextmanager
    def events(self, token=None, until=lambda kind, data: data.get("event") == "deleted",
               timeout=20):
        """Listen to ``GET /events`` from inside the namespace while the body runs; yields
        the list that (kind, data) events are appended to, and at exit waits until an event
        for which ``until(kind, data)`` holds has arrived."""
        seen, ready = [], concurrent.futures.Future()

        def listen():
            req = urllib.request.Request(f"http://127.0.0.1:{self.port}/events", headers={
                "Authorization": f"Bearer {token}"} if token else {})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                if not r.headers["Content-Type"].startswith("text/event-stream"):
                    raise AssertionError(f"/events is {r.headers['Content-Type']}")
                ready.set_result(True)
                kind = None
                for raw in r:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        seen.append((kind, json.loads(line[6:])))
                        if until(*seen[-1]):
                            return

        pool = concurrent.futures.ThreadPoolExecutor(1, initializer=_enter, initargs=(self.ns,))
        done = pool.submit(listen)
        try:
            ready.result(timeout=10)
            yield seen
            done.result(timeout=timeout)
        finally:
            pool.shutdown(wait=False)

    def log(self):
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _killpg(self.proc)
        self.pool.shutdown(wait=False)

    def api(self, method, path, body=None, timeout=60, token=None):
        """(status, JSON or None). Raises ApiError on 4xx/5xx. ``token``: X-Auth-Token."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        url = f"http://127.0.0.1:{self.port}{path}"

        def call():
            headers = {"Content-Type": "application/json"}
            if token:
                headers["X-Auth-Token"] = token
            req = urllib.request.Request(url, data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    data = r.read()
                    if r.headers.get_content_type() == "text/plain":   # /login's token
                        return r.status, data.decode()
                    return r.status, json.loads(data) if data.strip() else None
            except urllib.error.HTTPError as e:
                data = e.read()
                try:
                    payload = json.loads(data)
                except ValueError:
                    payload = data.decode(errors="replace")
                raise ApiError(e.code, payload, dict(e.headers)) from None

        return self.pool.submit(call).result()


def python_in_ns(code, *args, name="py", timeout=60):
    """Run Python ``code`` (with ``args``) in a scratch namespace of its own, unlite
    importable, and return what it printed as JSON (a test of kernel objects made from
    inside the daemon's own process, as the daemon makes them). Fails on a non-zero exit."""
    lab = Lab()
    try:
        ns = lab.ns(name)
        p = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", code,
                            *map(str, args)], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    finally:
        lab.close()
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


EMPTY = {"netns": [], "veths": [], "nft-tables": [], "tc-qdiscs": [], "ovs-bridges": [],
         "ovs-ports": []}
NODE_WIDE_LINKS = ("ulsink", "ul-lsi0")       # tc drop sink, OVS LSI-0 (while the daemon runs)


def unlite_objects(node_ns, ovs=None, graphs_only=False):
    """Kernel objects made by unlite: NF namespaces, node-side links, nft tables, clsact
    qdiscs in the node namespace, OVS bridges and ports (of ``ovs``, when given).
    ``graphs_only`` leaves out the node-wide objects a running daemon keeps."""
    mine = f"ul{node_tag(f'/run/netns/{node_ns}')}-"       # this node's NF namespaces
    ns = sorted(n for n in os.listdir("/run/netns") if n.startswith(mine)) \
        if os.path.isdir("/run/netns") else []
    links = json.loads(sh("ip", "-n", node_ns, "-j", "link", "show").stdout or "[]")
    veths = sorted(ln["ifname"] for ln in links if ln["ifname"].startswith("ul"))
    out = sh("ip", "netns", "exec", node_ns, "nft", "-j", "list", "tables").stdout
    tables = sorted(o["table"]["name"] for o in json.loads(out or '{"nftables": []}')["nftables"]
                    if "table" in o and o["table"]["name"].startswith("ul_"))
    qd = json.loads(sh("tc", "-n", node_ns, "-j", "qdisc", "show").stdout or "[]")
    clsact = sorted(q["dev"] for q in qd if q.get("kind") == "clsact")
    bridges = ovs.bridges() if ovs else []
    ports = sorted(p for b in bridges for p in ovs.ports(b))
    if graphs_only:
        ns = [n for n in ns if n != f"{mine}sink"]
        veths = [v for v in veths if v not in NODE_WIDE_LINKS]
        bridges = [b for b in bridges if b not in NODE_WIDE_LINKS]
    return {"netns": ns, "veths": veths, "nft-tables": tables, "tc-qdiscs": clsact,
            "ovs-bridges": bridges, "ovs-ports": ports}
