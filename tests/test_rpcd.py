"""The rpcd exec plugin (files/usr/libexec/rpcd/unlite → unlite/ubus/rpcd.py) on its own: what
it prints for rpcd's ``list`` in each mode, how it finds the socket and rpcd's timeout, and
the errors it gives without reaching a daemon. Through the real rpcd, ubusd and uhttpd, with
a daemon, in both modes: tests/test_ubus_real.py.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT

PLUGIN = ROOT / "files/usr/libexec/rpcd/unlite"
# the plugin's "python3" is the tests' interpreter (a router's is /usr/bin/python3), not a
# version manager's shim found first on PATH (pyenv's is a shell script: 80 ms a call)
PATH = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
ACLS = [ROOT / "files/usr/share/rpcd/acl.d/unlite.json",
        ROOT / "files/usr/share/rpcd/acl.d/luci-app-unlite.json"]
READ = {"list", "get", "status", "capabilities"}
WRITE = {"put", "delete", "nf"}
SESSION = {"ubus_rpc_session": "0123456789abcdef0123456789abcdef"}   # rpcd adds it


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="ulr-", dir="/tmp")     # unix socket paths: ≤ 107 bytes
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def plugin(*args, stdin="", sock=None, plugin_path=PLUGIN, pythonpath=ROOT, uci=None):
    env = {"PATH": PATH, "PYTHONPATH": str(pythonpath)}
    if sock:
        env["UNLITE_SOCKET"] = str(sock)
    if uci:
        env["UNLITE_UCI"] = str(uci)
    p = subprocess.run([str(plugin_path), *args], input=stdin, capture_output=True, text=True,
                       env=env, timeout=150)
    return p


def call(method, args=None, sock=None, raw=None, **kw):
    """What ``ubus call unlite METHOD ARGS`` gets back: exactly one JSON object."""
    stdin = raw if raw is not None else json.dumps({**SESSION, **(args or {})})
    p = plugin("call", method, stdin=stdin, sock=sock, **kw)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout
    out = json.loads(p.stdout)
    assert isinstance(out, dict), p.stdout
    return out


def test_list_prints_the_method_signatures_and_the_acls_cover_them(tmp_path):
    conf = tmp_path / "unlite"
    conf.write_text("config unlite 'main'\n\toption ubus 'rpcd'\n")
    p = plugin("list", uci=conf)
    assert p.returncode == 0, p.stderr
    sig = json.loads(p.stdout)
    assert sig == {"list": {}, "get": {"id": "str"}, "put": {"id": "str", "graph": {}},
                   "delete": {"id": "str"}, "status": {"id": "str"}, "capabilities": {},
                   "nf": {"id": "str", "nf": "str", "action": "str"}}
    for acl in ACLS:
        (group, g), = json.loads(acl.read_text()).items()
        assert set(g["read"]["ubus"]["unlite"]) == READ, acl.name
        assert set(g["write"]["ubus"]["unlite"]) == WRITE, acl.name
        assert READ | WRITE == set(sig) and not READ & WRITE
    menu = json.loads((ROOT / "files/usr/share/luci/menu.d/luci-app-unlite.json").read_text())
    assert menu["admin/services/unlite"]["depends"]["acl"] == ["luci-app-unlite"]


def test_list_is_empty_unless_rpcd_is_the_object(tmp_path):
    """rpcd registers no object for a plugin whose list is {}: in the default mode the
    daemon's own object is the only 'unlite'."""
    conf = tmp_path / "unlite"
    for text in ("config unlite 'main'\n\toption ubus 'daemon'\n", "config unlite 'main'\n",
                 "config unlite 'main'\n\toption ubus 'off'\n", "not uci ' at all\n"):
        conf.write_text(text)
        assert json.loads(plugin("list", uci=conf).stdout) == {}, text
    assert json.loads(plugin("list", uci=tmp_path / "absent").stdout) == {}


def test_refused_arguments_never_reach_a_socket(sockdir):
    sock = sockdir / "unlite.sock"          # nothing listens: a call that got there says so
    for method, args, words in [
            ("get", {"id": "../capabilities"}, "invalid graph id"), ("get", {"id": 5}, "invalid"),
            ("get", {}, "needs argument 'id'"), ("get", {"id": "g", "x": 1}, "unknown argument"),
            ("nf", {"id": "g", "nf": "n", "action": "x"}, "action must be"),
            ("nf", {"id": "g", "nf": "../x", "action": "stop"}, "invalid NF id"),
            ("put", {"id": "g", "graph": 7}, "must be an NF-FG"),
            ("reboot", {}, "unknown method")]:
        assert words in call(method, args, sock=sock)["error"], method
    assert "not JSON" in call("put", raw="{nope", sock=sock)["error"]
    assert "must be a JSON object" in call("put", raw="[1]", sock=sock)["error"]
    down = call("list", sock=sock)
    assert "not running" in down["error"] and down["socket"] == str(sock)


def test_arguments_rpcd_cut_are_named_as_such(sockdir):
    """rpcd passes at most 65,536 bytes: the plugin says that, not 'Unterminated string'."""
    big = json.dumps({"id": "g", "graph": {"x": "y" * 70000}})[:65536]
    out = call("put", raw=big, sock=sockdir / "unlite.sock")
    assert out["status"] == 413 and "65,536 bytes" in out["error"]
    assert "unlite graph apply FILE" in out["error"] and "Unterminated" not in out["error"]


def test_rpcd_timeout_is_read_from_rpcd_command_line(tmp_path):
    from unlite.ubus import rpcd
    for argv, want in ((["-s", "/var/run/ubus/ubus.sock", "-t", "30"], 30), (["-t7"], 7),
                       ([], rpcd.RPCD_DEFAULT_TIMEOUT)):
        # a process whose command line is rpcd's (argv[0] "rpcd"), as OpenWrt starts it
        p = subprocess.Popen(["rpcd", "-c", "import time; time.sleep(30)", *argv],
                             executable=sys.executable)
        try:
            for _ in range(200):                            # until it has exec'd
                with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                    if f.read().startswith(b"rpcd\0"):
                        break
                time.sleep(0.01)
            assert rpcd.rpcd_timeout(p.pid) == want, argv
        finally:
            p.kill()
            p.wait()
    assert rpcd.rpcd_timeout(os.getpid()) is None            # not rpcd: no limit known
    b = rpcd.OverSocket("/x", limit=30)
    assert b.timeout == 29 and b.wait == 5
    b = rpcd.OverSocket("/x", limit=4)
    assert b.timeout == 3 and b.wait == 1


def test_usage_errors():
    assert plugin().returncode == 1
    assert plugin("call").returncode == 1
    assert "usage" in plugin("frobnicate").stderr


def test_socket_path_from_uci_and_errors(tmp_path, monkeypatch):
    from unlite.ubus import rpcd
    conf = tmp_path / "unlite"
    conf.write_text("config unlite 'main'\n\toption socket '/run/x/unlite.sock'\n")
    monkeypatch.delenv("UNLITE_SOCKET", raising=False)
    monkeypatch.delenv("UNLITE_UCI", raising=False)
    monkeypatch.setattr(rpcd, "UCI_FILE", str(conf))
    assert rpcd.socket_path() == "/run/x/unlite.sock"
    conf.write_text("config unlite 'main'\n\toption socket ''\n")
    with pytest.raises(rpcd.Failure, match="no unix socket"):
        rpcd.socket_path()
    conf.write_text("config unlite 'main'\n\toption socket 'unterminated\n")
    with pytest.raises(rpcd.Failure, match="cannot read"):
        rpcd.socket_path()
    conf.write_text("config unlite 'main'\n\toption backend 'nft'\n")
    with pytest.raises(rpcd.Failure, match="no unix socket"):
        rpcd.socket_path()              # no option: the daemon opens no socket (settings.py)
    monkeypatch.setattr(rpcd, "UCI_FILE", str(tmp_path / "absent"))
    assert rpcd.socket_path() == "/var/run/unlite/unlite.sock"      # the shipped file's


def test_an_answer_too_large_for_ubus_becomes_an_error(capsys):
    from unlite.ubus import rpcd
    rpcd._emit({"blob": "x" * (rpcd.MAX_REPLY + 1)})
    out = json.loads(capsys.readouterr().out)
    assert "more than rpcd passes on" in out["error"]
    rpcd._emit({"small": 1})
    assert json.loads(capsys.readouterr().out) == {"small": 1}


@pytest.mark.parametrize("backend", ["nft"])          # the socket does not depend on it
def test_a_stale_socket_file_is_replaced(backend, gateway, make_daemon, sockdir):
    sock = sockdir / "unlite.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))                   # bound and closed: what a killed daemon leaves
    s.close()
    d = make_daemon(extra=("--socket", str(sock)))
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert call("list", sock=sock) == {"graphs": []}
    d.stop()
    assert not sock.exists(), "the daemon left its socket file behind"


def test_the_light_copies_in_the_method_table_match_the_daemon():
    """methods.py keeps its own id pattern and NF actions (the exec plugin must not import
    the model or the node): they are the daemon's, not a drifting copy."""
    from unlite.model.nffg import ID_RE
    from unlite.node import Node
    from unlite.ubus import methods
    assert methods.ID_RE.pattern == f"^{ID_RE.pattern}$"
    assert list(methods.NF_ACTIONS) == list(Node.NF_ACTIONS)
