"""ubus object ``unlite`` through OpenWrt's own ubusd, rpcd and uhttpd (tests/owrt.py), in both
of its modes: registered by the daemon itself (``daemon``) and by rpcd's exec plugin
(``rpcd``). The same calls must give the same answers in both; what differs is measured in
``make bench`` and the limits each path has (rpcd's 64 KiB of arguments, its ``-t``).
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

import netlab
import owrt
from conftest import CATALOG, bridge_graph

MODES = ("daemon", "rpcd")


class Userland:
    """OpenWrt's ubusd, rpcd and uhttpd in a sandbox, set up for one mode of the object, with
    two rpcd logins: viewer (read) and operator (read and write)."""

    def __init__(self, path, mode, rpcd_timeout=None):
        owrt.require()
        self.root = owrt.Root(path, ubus=mode)
        if rpcd_timeout:
            self.root.set_rpcd_timeout(rpcd_timeout)
        self.root.add_login("viewer", "viewer-pw", read=["unlite"])
        self.root.add_login("operator", "operator-pw", read=["unlite"], write=["unlite"])
        self.sb = owrt.Sandbox(self.root, http=True).start()


@pytest.fixture(scope="module")
def userlands(tmp_path_factory):
    """One sandbox per mode for the whole module (a sandbox's stop takes seconds); each test
    has a daemon of its own."""
    made = {}

    def get(mode):
        if mode not in made:
            made[mode] = Userland(tmp_path_factory.mktemp(f"owrt-{mode}") / "root", mode)
        return made[mode]
    yield get
    for u in made.values():
        u.sb.stop()


class Box:
    """An unlite daemon in the gateway namespace, connected to a sandboxed OpenWrt userland
    (``userland``: shared; else one of its own, stopped with the box)."""

    def __init__(self, gateway, tmp_path, mode, nnf_dir=None, rpcd_timeout=None,
                 userland=None):
        owrt.require()
        self.mode, self.gw = mode, gateway
        self.own = userland is None
        u = userland or Userland(tmp_path / "root", mode, rpcd_timeout)
        self.root, self.sb = u.root, u.sb
        self.daemon = netlab.Daemon(gateway.ns, tmp_path / "d", nnf_dir or CATALOG, extra=(
            "--socket", str(self.root.socket), "--ubus", mode,
            "--ubus-socket", str(self.root.ubus_socket)))

    def start(self):
        try:
            self.daemon.start()
        except BaseException:
            if self.own:
                self.sb.stop()
            raise
        return self

    def stop(self):
        try:
            self.daemon.stop()
        finally:
            if self.own:
                self.sb.stop()
        assert self.daemon.proc.returncode == 0, self.daemon.log()

    def call(self, method, args=None, **kw):
        return self.sb.call("unlite", method, args, **kw)

    def ucode_call(self, method, args_file, timeout=30):
        """A call from ucode (what rpcd plugins and LuCI's backend are written in): its
        arguments are not a command-line argument, so they may be larger than 128 KiB."""
        script = ("let c = require('ubus').connect(null, %d); "
                  "let a = json(require('fs').readfile('%s')); "
                  "let r = c.call('unlite', '%s', a); "
                  "print(r ? r : {ubus_error: c.error()}, '\\n');" % (timeout, args_file, method))
        p = self.sb.exec("ucode", "-e", script, timeout=timeout + 30)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)


@pytest.fixture(params=MODES)
def box(request, gateway, tmp_path, userlands):
    b = Box(gateway, tmp_path, request.param, userland=userlands(request.param)).start()
    yield b
    b.stop()


NFT = pytest.mark.parametrize("backend", ["nft"])      # the object does not depend on it


def _requests(box):
    return box.daemon.log_path.read_text().count('unix "')


@NFT
def test_one_object_with_every_method_in_either_mode(box):
    out = box.sb.ubus("-v", "list", "unlite")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("'unlite' @") == 1
    for m in ("list", "get", "status", "capabilities", "put", "delete", "nf"):
        assert f'"{m}":' in out.stdout, out.stdout
    assert '"get":{"id":"String"}' in out.stdout
    # rpcd asked its plugin, which answers for the mode the UCI file names
    p = box.sb.exec("/usr/libexec/rpcd/unlite", "list")
    sig = json.loads(p.stdout)
    assert (sig == {}) == (box.mode == "daemon"), sig


@NFT
def test_every_call_and_every_error(box):
    gw = box.gw
    caps = box.call("capabilities")
    assert "bridge" in [f["name"] for f in caps["functional-capabilities"]]
    assert box.call("list") == {"graphs": []}

    assert box.call("put", {"id": "g1", "graph": bridge_graph("g1")}) == \
        {"id": "g1", "created": True}
    gw.addr(0, "10.77.0.1/24")
    gw.addr(1, "10.77.0.2/24")
    assert gw.ping(0, "10.77.0.2"), "no traffic through the graph deployed over ubus"
    # the graph as JSON text (what LuCI's textarea holds) updates it in place
    assert box.call("put", {"id": "g1", "graph": json.dumps(bridge_graph("g1"))}) == \
        {"id": "g1", "created": False}

    (g,) = box.call("list")["graphs"]
    assert (g["id"], g["name"], g["status"], g["vnfs"], g["flow-rules"], g["faults"]) == \
        ("g1", "graph g1", "complete", 1, 4, [])
    assert g["change"]["op"] == "put" and g["change"]["state"] == "done"
    assert box.call("get", {"id": "g1"})["forwarding-graph"]["id"] == "g1"
    status = box.call("status", {"id": "g1"})
    assert status["VNFs"][0]["state"] == "Active"
    assert any(r["packets"] for r in status["flow-rules"])

    assert box.call("nf", {"id": "g1", "nf": "nf1", "action": "pause"})["state"] == "Paused"
    assert not gw.ping(0, "10.77.0.2", count=1)
    assert box.call("nf", {"id": "g1", "nf": "nf1", "action": "resume"})["state"] == "Active"
    assert gw.ping(0, "10.77.0.2")
    again = box.call("nf", {"id": "g1", "nf": "nf1", "action": "resume"})
    assert again["status"] == 409 and "cannot resume" in again["error"]

    # validation errors: an object with the JSON path; nothing changes
    bad = box.call("put", {"id": "g2", "graph": {"forwarding-graph": {"VNFs": [{"id": "a b"}]}}})
    assert bad["status"] == 400 and bad["path"] == "$.forwarding-graph.VNFs[0].id"
    assert "invalid VNF id" in bad["error"]
    assert [x["id"] for x in box.call("list")["graphs"]] == ["g1"]
    missing = box.call("get", {"id": "nosuch"})
    assert missing["status"] == 404 and missing["error"] == "no graph 'nosuch'"

    # bad arguments are refused before the daemon (ids would become URL paths)
    before = _requests(box)
    for args, words in [({"id": "../capabilities"}, "invalid graph id"),
                        ({"id": 5}, "invalid graph id"),
                        ({}, "needs argument 'id'"),
                        ({"id": "g1", "extra": 1}, "unknown argument 'extra'")]:
        assert words in box.call("get", args)["error"]
    assert "action must be" in box.call("nf", {"id": "g1", "nf": "nf1", "action": "x"})["error"]
    assert "invalid NF id" in box.call("nf", {"id": "g1", "nf": "../x",
                                              "action": "stop"})["error"]
    assert "must be an NF-FG" in box.call("put", {"id": "g3", "graph": 7})["error"]
    assert "must be an NF-FG" in box.call("put", {"id": "g3", "graph": " "})["error"]
    assert _requests(box) == before, "a refused call reached the daemon"
    with pytest.raises(AssertionError, match="Method not found"):
        box.call("reboot")

    assert box.call("delete", {"id": "g1"}) == {"id": "g1", "deleted": True}
    gone = box.call("delete", {"id": "g1"})
    assert gone["status"] == 404 and gone["change"]["op"] == "delete"
    assert box.call("list") == {"graphs": []}


@NFT
def test_events_reach_ubus_listen(box):
    events = box.sb.listen("unlite.graph", "unlite.nf")
    box.call("put", {"id": "ev", "graph": bridge_graph("ev")})
    box.call("nf", {"id": "ev", "nf": "nf1", "action": "pause"})
    box.call("delete", {"id": "ev"})
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        seen = [(k, d.get("event") or d.get("state")) for e in events.lines()
                for k, d in e.items()]
        if ("unlite.graph", "deleted") in seen:
            break
        time.sleep(0.1)
    assert seen == [("unlite.graph", "deploying"), ("unlite.graph", "created"),
                    ("unlite.nf", "Paused"), ("unlite.graph", "deleting"),
                    ("unlite.graph", "deleted")], seen


def big_graph(gid, size=200 << 10):
    """A bridge graph of ``size`` bytes or more: one rule per source address."""
    g = bridge_graph(gid)
    rules = g["forwarding-graph"]["big-switch"]["flow-rules"]
    i = 0
    while len(json.dumps(g)) < size:
        rules.append({"id": f"s{i}", "priority": 20, "match": {
            "port_in": "endpoint:ep0", "ether_type": "0x0800",
            "source_ip": f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}/32"},
            "actions": [{"output_to_port": "vnf:nf1:inout:0"}]})
        i += 1
    return g


@NFT
def test_a_200_KiB_graph(box):
    g = big_graph("big")
    size = len(json.dumps(g))
    (box.root.path / "run/big.json").write_text(json.dumps({"id": "big", "graph": g}))
    out = box.ucode_call("put", "/run/big.json", timeout=60)
    if box.mode == "daemon":
        assert out == {"id": "big", "created": True}, out
        assert box.call("list")["graphs"][0]["flow-rules"] == len(
            g["forwarding-graph"]["big-switch"]["flow-rules"])
        box.call("delete", {"id": "big"})
    else:                   # rpcd cut the arguments at 64 KiB: said so, nothing deployed
        assert out["status"] == 413 and "65,536 bytes" in out["error"], out
        assert "unlite graph apply FILE" in out["error"] and "Unterminated" not in out["error"]
        assert box.call("list") == {"graphs": []}
    assert size > 200 << 10


def _slow_repo(nnf_repo, seconds, fail=False):
    return nnf_repo("slow", {"start": f"sleep {seconds}" + ("\nexit 1" if fail else ""),
                             "stop": "true"}, timeout=60)


@NFT
@pytest.mark.parametrize("mode", MODES)
def test_a_slow_deploy_is_answered_pending_and_reads_go_on(gateway, tmp_path, nnf_repo, mode,
                                                           userlands):
    box = Box(gateway, tmp_path, mode, _slow_repo(nnf_repo, 8),
              userland=userlands(mode)).start()
    try:
        t0 = time.monotonic()
        ans = box.call("put", {"id": "s", "graph": bridge_graph("s", nf="slow")})
        took = time.monotonic() - t0
        assert ans["pending"] is True and ans["status"] == "deploying", ans
        assert ans["change"]["state"] == "running"
        assert took < 7.5, f"the call waited {took:.1f} s for an 8 s deploy"
        t0 = time.monotonic()
        (g,) = box.call("list")["graphs"]           # a read is not held by the deploy
        assert time.monotonic() - t0 < 2 and g["status"] == "deploying"
        assert box.call("status", {"id": "s"})["status"] == "deploying"
        deadline = time.monotonic() + 30
        while box.call("status", {"id": "s"}).get("status") != "complete":
            assert time.monotonic() < deadline, box.call("status", {"id": "s"})
            time.sleep(0.3)
        assert box.call("status", {"id": "s"})["change"]["state"] == "done"
        assert box.call("delete", {"id": "s"}) == {"id": "s", "deleted": True}
    finally:
        box.stop()


@NFT
def test_a_slow_failure_is_told_after_the_answer(gateway, tmp_path, nnf_repo, userlands):
    box = Box(gateway, tmp_path, "daemon", _slow_repo(nnf_repo, 6, fail=True),
              userland=userlands("daemon")).start()
    try:
        events = box.sb.listen("unlite.graph")
        assert box.call("put", {"id": "f", "graph": bridge_graph("f", nf="slow")})["pending"]
        deadline = time.monotonic() + 30
        while (st := box.call("status", {"id": "f"})).get("status") == "deploying":
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert st["status"] == 404 and st["change"]["state"] == "failed", st
        assert "start" in st["change"]["error"]
        assert box.call("list") == {"graphs": []}
        time.sleep(0.5)
        told = [e["unlite.graph"] for e in events.lines()]
        assert [e["event"] for e in told] == ["deploying", "failed"]
        assert told[1]["error"] == st["change"]["error"]
    finally:
        box.stop()


@NFT
def test_rpcd_timeout_comes_from_rpcd_itself(gateway, tmp_path, nnf_repo):
    """rpcd -t 4 (from /etc/config/rpcd): the plugin answers before rpcd kills it."""
    box = Box(gateway, tmp_path, "rpcd", _slow_repo(nnf_repo, 8), rpcd_timeout=4).start()
    try:
        t0 = time.monotonic()
        ans = box.call("put", {"id": "t", "graph": bridge_graph("t", nf="slow")})
        assert ans["pending"] is True, ans
        assert time.monotonic() - t0 < 4, "the plugin did not answer within rpcd's -t"
        deadline = time.monotonic() + 30
        while box.call("status", {"id": "t"}).get("status") != "complete":
            assert time.monotonic() < deadline
            time.sleep(0.3)
        box.call("delete", {"id": "t"})
    finally:
        box.stop()


@NFT
def test_uhttpd_sessions_and_acls(box):
    sb = box.sb
    viewer, operator = sb.login("viewer", "viewer-pw"), sb.login("operator", "operator-pw")
    assert sb.jsonrpc(viewer, "unlite", "list") == {"jsonrpc": "2.0", "id": 1,
                                                    "result": [0, {"graphs": []}]}
    graph = bridge_graph("j")
    for method, args in (("put", {"id": "j", "graph": graph}), ("delete", {"id": "j"}),
                         ("nf", {"id": "j", "nf": "nf1", "action": "stop"})):
        r = sb.jsonrpc(viewer, "unlite", method, args)
        assert r["error"]["code"] == -32002, r              # Access denied
    assert box.call("list") == {"graphs": []}
    r = sb.jsonrpc(operator, "unlite", "put", {"id": "j", "graph": graph})
    assert r["result"] == [0, {"id": "j", "created": True}], r
    st = sb.jsonrpc(viewer, "unlite", "status", {"id": "j"})["result"][1]
    assert st["VNFs"][0]["state"] == "Active"
    # uhttpd refuses a POST over 64 KiB itself (LuCI's page says so before sending)
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "call", "params": [
        operator, "unlite", "put", {"id": "b", "graph": big_graph("b", 70 << 10)}]}).encode()
    try:
        r = sb.jsonrpc(None, None, None, raw=big)
        assert r["error"]["code"] == -32700, r              # Parse error
    except ConnectionResetError:        # it answered and closed while the body still came
        pass
    assert [g["id"] for g in box.call("list")["graphs"]] == ["j"]
    assert sb.jsonrpc(operator, "unlite", "delete", {"id": "j"})["result"] == \
        [0, {"id": "j", "deleted": True}]


@NFT
@pytest.mark.parametrize("mode", MODES)
def test_daemon_down_and_a_second_daemon(gateway, tmp_path, mode, userlands):
    box = Box(gateway, tmp_path, mode, userland=userlands(mode)).start()
    try:
        other_node = gateway.lab.ns("gw2")
        second = netlab.Daemon(other_node, tmp_path / "d2", CATALOG, extra=(
            "--ubus", mode, "--ubus-socket", str(box.root.ubus_socket))).start()
        second.stop()
        if mode == "daemon":
            assert "ubus object unlite is not the daemon's" in second.log()
        assert box.call("list") == {"graphs": []}, "the second daemon took the object"
        box.daemon.stop()
        if mode == "daemon":         # the object went with the daemon's connection
            assert box.sb.ubus("list", "unlite").returncode != 0
        else:                        # rpcd's object stays and says why it cannot answer
            down = box.call("list")
            assert "not running" in down["error"], down
    finally:
        box.stop()


def test_python_ubus_bindings_refuse_what_uhttpd_forwards(tmp_path):
    """Why the daemon speaks ubus itself (unlite/ubus/wire.py): the python bindings (0.1.3,
    OpenWrt's python3-ubus) answer every call forwarded by uhttpd — which adds
    ubus_rpc_session to the arguments — "Invalid argument", so LuCI could not use them. If
    a new version fixes it, this fails: reconsider them then."""
    owrt.require()
    wheels = sorted((owrt.PREFIX / "wheels").glob("ubus-*.whl"))
    if not wheels:
        owrt.require("wheels/ubus-*.whl (build.sh ... pyubus)")
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-index", str(wheels[-1])],
                   check=True, env={k: v for k, v in os.environ.items()
                                    if k != "PIP_FIND_LINKS"})
    root = owrt.Root(tmp_path / "root")
    (root.path / "usr/share/rpcd/acl.d/pyt.json").write_text(json.dumps(
        {"pyt": {"description": "t", "read": {"ubus": {"pyt": ["*"]}}}}))
    root.add_login("viewer", "viewer-pw", read=["pyt"])
    sb = owrt.Sandbox(root, http=True).start()
    script = tmp_path / "obj.py"
    script.write_text("import sys, ubus\nubus.connect(socket_path=sys.argv[1])\n"
                      "ubus.add('pyt', {'list': {'method': lambda h, d: h.reply({'ok': 1}), "
                      "'signature': {}}})\nprint('ready', flush=True)\n"
                      "while True: ubus.loop(200)\n")
    proc = subprocess.Popen([str(venv / "bin/python"), str(script), str(root.ubus_socket)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert sb.call("pyt", "list") == {"ok": 1}              # the CLI: no extra argument
        sid = sb.login("viewer", "viewer-pw")
        assert sb.jsonrpc(sid, "pyt", "list")["result"] == [2]  # uhttpd: Invalid argument
    finally:
        proc.kill()
        proc.wait()
        sb.stop()


@NFT
def test_the_list_says_why_a_graph_failed(gateway, tmp_path, userlands):
    """A stored graph that cannot come back at start (its interface is gone) is listed as
    failed with the reason in faults, not `"faults": []`."""
    box = Box(gateway, tmp_path, "daemon", userland=userlands("daemon")).start()
    try:
        assert box.call("put", {"id": "w", "graph": bridge_graph("w", ("eth2", "eth3"))}) == \
            {"id": "w", "created": True}
        box.daemon.stop()                               # the graph stays stored
        netlab.sh("ip", "-n", gateway.ns, "link", "del", "eth3")
        box.daemon = box.daemon.restarted()
        (g,) = box.call("list")["graphs"]
        assert g["status"] == "failed", g
        (fault,) = g["faults"]
        assert fault["vnf"] is None and "'eth3' does not exist" in fault["fault"], g
        st = box.call("status", {"id": "w"})
        assert st["status"] == "failed" and "'eth3' does not exist" in st["error"]
        assert box.call("delete", {"id": "w"}) == {"id": "w", "deleted": True}
    finally:
        box.stop()
