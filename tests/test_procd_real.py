"""``/etc/init.d/unlite`` under OpenWrt's real procd (tools/owrt.py's sandbox with ``--procd``
in the gateway namespace, OpenWrt's own rc.common and procd.sh under busybox ash): what an
OpenWrt user does with a service, and what they expect to see.

The daemon procd starts is the package's ``/usr/bin/unlite`` with the test's UCI file; its
logs go to busybox syslogd (``logread``) as on a router. Pids are procd's PID namespace's,
which ``Sandbox.exec`` enters. Timings measured here are printed (``pytest -s``) and asserted
against procd's own limits (respawn delay, ``term_timeout``).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time

import pytest

import netlab
import owrt
from owrt import until
from conftest import CATALOG, bridge_graph

NFT = pytest.mark.parametrize("backend", ["nft"])      # procd does not care which one runs
INIT = "/etc/init.d/unlite"
COMMAND = ["/usr/bin/unlite", "serve", "--uci", "/etc/config/unlite", "--syslog"]


# what the init script asks procd for: OpenWrt's usual respawn (threshold 3600 s, 5 s before
# each restart, 5 retries) and 30 s between SIGTERM and SIGKILL for the daemon's cleanup
RESPAWN = {"threshold": 3600, "timeout": 5, "retry": 5}
TERM_TIMEOUT = 30




class Router:
    """OpenWrt's ubusd, rpcd and procd with unlite's package files; procd (and so the
    daemon it starts) in the gateway namespace, where eth0..eth3 are."""

    def __init__(self, gateway, tmp_path, ubus="daemon", **options):
        owrt.require("sbin/procd")
        self.gw = gateway
        self.root = owrt.Root(tmp_path / "root", ubus=ubus)
        # state_dir /etc/unlite and run_dir /var/run/unlite (the file's own) are this
        # rootfs' etc/unlite and run/unlite: fresh folders already
        self.root.set_options(nnf_dir=CATALOG, **options)
        self.sb = owrt.Sandbox(self.root, procd=gateway.ns)

    def start(self):
        self.sb.start()
        return self

    def stop(self):
        if self.instance():     # as a user does: the NFs go (a bare SIGTERM keeps them)
            self.init("stop")
            until("no unlite process is left", lambda: not self.daemons(), TERM_TIMEOUT)
        self.sb.stop()          # deletes procd's services first: the daemon gets SIGTERM

    def init(self, action):
        """``/etc/init.d/unlite ACTION`` inside (the CompletedProcess)."""
        return self.sb.exec(INIT, action, timeout=60)

    def sh(self, script):
        p = self.sb.exec("sh", "-c", script)
        assert p.returncode == 0, f"{script}: {p.stderr or p.stdout}"
        return p.stdout

    def instance(self):
        """procd's ``instance1`` of service unlite (None: no such instance)."""
        return self.sb.instances("unlite").get("instance1")

    def daemons(self):
        """Pids of every ``unlite serve`` process in procd's PID namespace."""
        out = self.sh("ps -eo pid=,args=")
        return sorted(int(ln.split()[0]) for ln in out.splitlines()
                      if "-m unlite serve" in ln)

    def running_pid(self, other_than=None):
        """The instance's pid once procd says it runs (and it is not ``other_than``)."""
        i = self.instance()
        return i and i.get("running") and i.get("pid") != other_than and i["pid"]

    def healthz(self, port=8080):
        """Does the REST API answer on 127.0.0.1:PORT of procd's (the gateway's) namespace?"""
        p = self.sb.exec("python3", "-c", "import sys, urllib.request as u; "
                         "print(u.urlopen(sys.argv[1], timeout=2).status)",
                         f"http://127.0.0.1:{port}/healthz", timeout=30)
        return p.returncode == 0 and p.stdout.strip() == "200"

    def answers(self):
        """Does ubus object unlite (the daemon's own) answer?"""
        return self.sb.exec("ubus", "-t", "2", "call", "unlite", "list").returncode == 0

    def started(self, other_than=None, timeout=20):
        """Wait for a running instance (a new one: not ``other_than``) whose daemon answers
        on ubus; its pid."""
        pid = until("procd runs unlite", lambda: self.running_pid(other_than), timeout)
        until(f"unlite (pid {pid}) answers on ubus", self.answers, timeout)
        return pid

    def log(self, pid=None):
        """The system log's lines of the daemon (of ``pid`` if given)."""
        return [e for e in self.sb.logread() if e["ident"] == "unlite"
                and (pid is None or e["pid"] == pid)]

    def deploy(self, gid, eps=("eth0", "eth1")):
        out = self.sb.call("unlite", "put", {"id": gid, "graph": bridge_graph(gid, eps)})
        assert out == {"id": gid, "created": True}, out


@pytest.fixture
def router(gateway, tmp_path):
    r = Router(gateway, tmp_path).start()
    yield r
    r.stop()


@NFT
def test_start_runs_one_instance_that_answers(router):
    t0 = time.monotonic()
    p = router.init("start")
    init_s = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    pid = router.started()
    up_s = time.monotonic() - t0
    print(f"\ninit.d start returned in {init_s:.2f} s; daemon answering on ubus "
          f"{up_s:.2f} s after the call")
    inst = router.instance()
    assert inst["running"] and inst["command"] == COMMAND, inst
    assert inst["term_timeout"] == TERM_TIMEOUT and inst.get("respawn") == RESPAWN, inst
    assert router.daemons() == [pid]                  # the wrapper exec'd: one process
    assert router.sb.call("unlite", "list") == {"graphs": []}
    # the object is the daemon's own (not rpcd's plugin), said by the daemon that runs
    assert any("ubus: object unlite and events" in e["message"] for e in router.log(pid)), \
        router.sb.logread()
    status = router.init("status")
    assert (status.returncode, status.stdout.strip()) == (0, "running"), status
    assert router.init("running").returncode == 0
    assert up_s < 10, f"the daemon took {up_s:.1f} s to answer"


@NFT
def test_kill_9_is_respawned_and_puts_the_graph_back(router):
    gw = router.gw
    assert router.init("start").returncode == 0
    old = router.started()
    router.deploy("g1")
    gw.addr(0, "10.77.0.1/24")
    gw.addr(1, "10.77.0.2/24")
    assert gw.ping(0, "10.77.0.2"), "no traffic through the graph"

    delay = router.instance()["respawn"]["timeout"]
    assert router.sb.exec("kill", "-9", str(old)).returncode == 0
    t0 = time.monotonic()
    new = until("procd respawns unlite", lambda: router.running_pid(other_than=old),
                delay + 10)
    respawn_s = time.monotonic() - t0
    until("the respawned daemon answers", router.answers, 20)
    answer_s = time.monotonic() - t0
    print(f"\nkill -9 -> new pid {respawn_s:.2f} s (respawn delay {delay} s), "
          f"answering {answer_s:.2f} s")
    assert delay - 0.5 <= respawn_s <= delay + 3, respawn_s
    assert router.daemons() == [new]
    # the new daemon removed what the killed one left and deployed the stored graph again
    (g,) = router.sb.call("unlite", "list")["graphs"]
    assert (g["id"], g["status"]) == ("g1", "complete"), g
    assert router.sb.call("unlite", "status", {"id": "g1"})["VNFs"][0]["state"] == "Active"
    assert gw.ping(0, "10.77.0.2"), "no traffic through the graph after the respawn"


@NFT
def test_reload_restarts_only_on_a_change(router):
    assert router.init("start").returncode == 0
    first = router.started()

    # no change: procd compares the instance (command, the file's checksum) and keeps it
    assert router.init("reload").returncode == 0
    t_end = time.monotonic() + 1.5      # a restart would have sent SIGTERM during reload
    while time.monotonic() < t_end:     # (procd does it at once): the pid must not change
        assert router.running_pid() == first and router.daemons() == [first]
        time.sleep(0.1)

    # a change as a user makes it (uci, then reload): the daemon restarts with it
    router.sh("uci set unlite.main.listen='127.0.0.1:8081' && uci set unlite.main.verbose=1"
              " && uci commit unlite")
    assert router.init("reload").returncode == 0
    second = router.started(other_than=first)
    assert router.daemons() == [second]
    assert router.healthz(8081) and not router.healthz(8080)
    assert any(e["level"] == "debug" for e in router.log(second)), router.log(second)
    assert not any(e["level"] == "debug" for e in router.log(first))

    # LuCI's "Save & Apply" and reload_config: the config.change event, the reload trigger
    router.sh("uci set unlite.main.listen='127.0.0.1:8082' && uci commit unlite")
    router.sb.call("service", "event", {"type": "config.change",
                                        "data": {"package": "unlite"}})
    third = router.started(other_than=second)
    assert router.healthz(8082) and not router.healthz(8081)
    assert router.daemons() == [third]


@NFT
def test_restart_then_stop_leave_no_process_and_no_kernel_object(router):
    gw = router.gw
    assert router.init("start").returncode == 0
    first = router.started()
    router.deploy("g1")
    assert netlab.unlite_objects(gw.ns, graphs_only=True) != netlab.EMPTY

    # restart = stop + start at once: the old daemon exits leaving the NF running (option
    # on_exit 'keep'), the new one adopts it: the same namespace, nothing made again
    nfs = router.sb.call("unlite", "status", {"id": "g1"})["VNFs"]
    before = netlab.unlite_objects(gw.ns, graphs_only=True)
    assert router.init("restart").returncode == 0
    second = router.started(other_than=first)
    assert router.daemons() == [second]
    (g,) = router.sb.call("unlite", "list")["graphs"]
    assert (g["id"], g["status"]) == ("g1", "complete"), g
    assert router.sb.call("unlite", "status", {"id": "g1"})["VNFs"] == nfs
    assert netlab.unlite_objects(gw.ns, graphs_only=True) == before
    assert any("adopted as it runs" in e["message"] for e in router.log(second))
    assert router.root.socket.exists()

    assert router.init("stop").returncode == 0
    until("procd drops service unlite", lambda: not router.sb.instances("unlite"), 20)
    until("no unlite process is left", lambda: not router.daemons(), TERM_TIMEOUT)
    assert "unlite" not in router.sh("ps -eo args=")
    assert netlab.unlite_objects(gw.ns) == netlab.EMPTY       # the daemon removed it all
    assert not router.root.socket.exists()
    assert router.sb.exec("ubus", "list", "unlite").returncode != 0
    status = router.init("status")
    assert (status.returncode, status.stdout.strip()) == (3, "inactive"), status
    # the desired graph stays stored (flash) for the next start
    assert (router.root.path / "etc/unlite/graphs/g1.json").exists()


@NFT
def test_enable_and_disable_make_and_remove_the_rc_links(router):
    rc = router.root.path / "etc/rc.d"
    assert router.init("enabled").returncode != 0
    assert router.init("enable").returncode == 0
    for link in ("S95unlite", "K10unlite"):
        assert (rc / link).is_symlink() and str((rc / link).readlink()) == "../init.d/unlite"
        assert router.sb.exec("test", "-L", f"/etc/rc.d/{link}").returncode == 0
    assert router.init("enabled").returncode == 0
    assert router.init("disable").returncode == 0
    assert not [p.name for p in rc.iterdir() if p.name.endswith("unlite")]
    assert router.init("enabled").returncode != 0
    assert router.instance() is None, "enable/disable must not start anything"


@NFT
def test_socket_off_means_no_socket_and_the_plugin_says_so(gateway, tmp_path):
    r = Router(gateway, tmp_path, ubus="rpcd", socket="").start()
    try:
        assert r.init("start").returncode == 0
        pid = until("procd runs unlite", r.running_pid, 20)
        until("the REST API answers", r.healthz, 20)
        cmdline = r.sh(f"tr '\\0' ' ' </proc/{pid}/cmdline")
        assert "--socket" not in cmdline, cmdline
        assert not r.root.socket.exists()
        assert "unlite.sock" not in r.sh(f"cat /proc/{pid}/net/unix")
        assert not any(p.suffix == ".sock" for p in (r.root.path / "run/unlite").iterdir())
        # rpcd's exec plugin is object unlite here; without a socket it says what to do
        out = r.sb.call("unlite", "list")
        assert "the daemon has no unix socket" in out["error"], out
        assert "option socket" in out["error"] and "reload" in out["error"], out
    finally:
        r.stop()


@NFT
def test_log_levels_reach_syslog_as_themselves(gateway, tmp_path):
    r = Router(gateway, tmp_path, colour="blue").start()      # an option unlite lacks
    try:
        assert r.init("start").returncode == 0
        pid = r.started()
        lines = r.log(pid)
        info = [e for e in lines if "listening on 127.0.0.1:8080" in e["message"]]
        assert [e["level"] for e in info] == ["info"], lines
        warn = [e for e in lines if "option 'colour' is unknown" in e["message"]]
        assert [(e["facility"], e["level"]) for e in warn] == [("daemon", "warn")], lines
        assert not [e for e in lines if e["level"] == "err"], lines
    finally:
        r.stop()


@NFT
def test_sigterm_by_procd_finishes_well_within_term_timeout(router):
    assert router.init("start").returncode == 0
    router.started()
    router.deploy("g1")
    router.deploy("g2", ("eth2", "eth3"))
    term_timeout = router.instance()["term_timeout"]
    t0 = time.monotonic()
    assert router.init("stop").returncode == 0
    until("the daemon exits on SIGTERM", lambda: not router.daemons(), term_timeout + 5)
    stop_s = time.monotonic() - t0
    print(f"\ninit.d stop -> daemon gone (2 graphs removed) {stop_s:.2f} s "
          f"(term_timeout {term_timeout} s)")
    assert stop_s < term_timeout / 3, stop_s
    said = router.sb.log("procd") + json.dumps(router.sb.logread())
    assert "sending SIGKILL" not in said
    assert netlab.unlite_objects(router.gw.ns) == netlab.EMPTY


# -- the handler behind --syslog, against a socket of our own --------------------------------
def test_syslog_handler_keeps_levels_lines_and_reconnects(tmp_path):
    from unlite.cli import _Syslog
    path = str(tmp_path / "log")

    def listener():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(2)
        return s

    def received(s):
        out = []
        s.settimeout(0.2)
        try:
            while True:
                out.append(s.recv(65536))
        except socket.timeout:
            return out

    log = listener()
    h = _Syslog(path)
    h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    rec = logging.LogRecord("unlite.node", logging.WARNING, __file__, 1, "x" * 2500, None, None)
    try:
        raise ValueError("the last line")
    except ValueError:
        err = logging.LogRecord("unlite", logging.ERROR, __file__, 1, "it broke", None,
                                sys.exc_info())
    h.handle(rec)
    h.handle(err)
    got = received(log)
    head = f"unlite[{os.getpid()}]: ".encode()
    assert all(len(d) <= _Syslog.MAX_DATAGRAM for d in got)
    warn = [d for d in got if d.startswith(b"<28>" + head + b"unlite.node ")]
    assert b"".join(d.split(b" ", 2)[2] for d in warn) == b"WARNING " + b"x" * 2500
    errs = [d for d in got if d.startswith(b"<27>" + head + b"unlite ")]
    assert errs[0].endswith(b"ERROR it broke") and errs[-1].endswith(
        b"ValueError: the last line"), errs
    assert len(warn) + len(errs) == len(got)

    # the system log restarts: a new socket at the same path; the next record reaches it
    log.close()
    (tmp_path / "log").unlink()
    log = listener()
    h.handle(logging.LogRecord("unlite", logging.INFO, __file__, 1, "after", None, None))
    assert received(log) == [b"<30>" + head + b"unlite INFO after"]
    h.close()
    log.close()
