"""The rpcd exec plugin (files/usr/libexec/rpcd/unlite → unlite/rpcd.py) against a real daemon
listening on a unix socket (``unlite serve --socket``), executed as rpcd executes it:
``unlite list`` and ``echo ARGS | unlite call METHOD``. There is no rpcd/ubus on Debian; what
rpcd adds (the session argument, ``{}`` for no arguments) is reproduced here.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, bridge_graph

PLUGIN = ROOT / "files/usr/libexec/rpcd/unlite"
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


def plugin(*args, stdin="", sock=None, plugin_path=PLUGIN, pythonpath=ROOT):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(pythonpath)}
    if sock:
        env["UNLITE_SOCKET"] = str(sock)
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


def test_list_prints_the_method_signatures_and_the_acls_cover_them():
    p = plugin("list")
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


def test_usage_errors():
    assert plugin().returncode == 1
    assert plugin("call").returncode == 1
    assert "usage" in plugin("frobnicate").stderr


def test_every_call_against_a_running_daemon(gateway, make_daemon, sockdir):
    sock = sockdir / "unlite.sock"
    d = make_daemon(extra=("--socket", str(sock)))
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600

    caps = call("capabilities", sock=sock)
    assert "bridge" in [f["name"] for f in caps["functional-capabilities"]]
    assert call("list", sock=sock) == {"graphs": []}
    assert call("list", sock=sock, raw="") == {"graphs": []}         # no arguments at all

    assert call("put", {"id": "g1", "graph": bridge_graph("g1")}, sock=sock) == \
        {"id": "g1", "created": True}
    gateway.addr(0, "10.77.0.1/24")
    gateway.addr(1, "10.77.0.2/24")
    assert gateway.ping(0, "10.77.0.2"), "no traffic through the graph deployed over ubus"
    # the graph as JSON text (what LuCI's textarea holds) updates it in place
    again = call("put", {"id": "g1", "graph": json.dumps(bridge_graph("g1"))}, sock=sock)
    assert again == {"id": "g1", "created": False}

    (g,) = call("list", sock=sock)["graphs"]
    assert g["id"] == "g1" and g["name"] == "graph g1" and g["vnfs"] == 1
    assert g["flow-rules"] == 4 and g["faults"] == [] and g["status"]
    assert call("get", {"id": "g1"}, sock=sock)["forwarding-graph"]["id"] == "g1"
    status = call("status", {"id": "g1"}, sock=sock)
    assert status["VNFs"][0]["state"] == "Active"
    assert any(r["packets"] for r in status["flow-rules"])
    # one NF: pause (no traffic), resume
    assert call("nf", {"id": "g1", "nf": "nf1", "action": "pause"}, sock=sock)["state"] == \
        "Paused"
    assert not gateway.ping(0, "10.77.0.2", count=1)
    assert call("nf", {"id": "g1", "nf": "nf1", "action": "resume"}, sock=sock)["state"] == \
        "Active"
    assert gateway.ping(0, "10.77.0.2")
    assert call("nf", {"id": "g1", "nf": "nf1", "action": "resume"}, sock=sock)["status"] == 409

    # validation errors come back as objects with the JSON path, and change nothing
    bad = call("put", {"id": "g2", "graph": {"forwarding-graph": {"VNFs": [{"id": "a b"}]}}},
               sock=sock)
    assert bad["status"] == 400 and bad["path"] == "$.forwarding-graph.VNFs[0].id"
    assert "invalid VNF id" in bad["error"]
    assert [x["id"] for x in call("list", sock=sock)["graphs"]] == ["g1"]
    assert call("get", {"id": "nosuch"}, sock=sock)["status"] == 404

    # bad arguments never reach the daemon (ids would become URL paths)
    requests = lambda: d.log_path.read_text().count('unix "')     # noqa: E731
    before = requests()
    for args, words in [({"id": "../capabilities"}, "invalid graph id"),
                        ({"id": 5}, "invalid graph id"),
                        ({}, "needs argument 'id'"),
                        ({"id": "g1", "extra": 1}, "unknown argument 'extra'")]:
        assert words in call("get", args, sock=sock)["error"]
    assert "action must be" in call("nf", {"id": "g1", "nf": "nf1", "action": "x"},
                                    sock=sock)["error"]
    assert "invalid NF id" in call("nf", {"id": "g1", "nf": "../x", "action": "stop"},
                                   sock=sock)["error"]
    assert "must be an NF-FG" in call("put", {"id": "g3", "graph": 7}, sock=sock)["error"]
    assert "must be an NF-FG" in call("put", {"id": "g3", "graph": " "}, sock=sock)["error"]
    assert "not JSON" in call("put", raw="{nope", sock=sock)["error"]
    assert "must be a JSON object" in call("put", raw="[1]", sock=sock)["error"]
    assert "unknown method" in call("reboot", sock=sock)["error"]
    assert requests() == before, "a refused call reached the daemon"

    assert call("delete", {"id": "g1"}, sock=sock) == {"id": "g1", "deleted": True}
    assert call("delete", {"id": "g1"}, sock=sock)["status"] == 404
    assert call("list", sock=sock) == {"graphs": []}

    d.stop()
    assert not sock.exists(), "the daemon left its socket file behind"
    down = call("list", sock=sock)
    assert "not running" in down["error"] and down["socket"] == str(sock)


@pytest.mark.parametrize("backend", ["nft"])          # the socket does not depend on it
def test_a_stale_socket_file_is_replaced(backend, gateway, make_daemon, sockdir):
    sock = sockdir / "unlite.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))                   # bound and closed: what a killed daemon leaves
    s.close()
    make_daemon(extra=("--socket", str(sock)))
    assert call("list", sock=sock) == {"graphs": []}


def test_socket_path_from_uci_and_errors(tmp_path, monkeypatch):
    from unlite import rpcd
    conf = tmp_path / "unlite"
    conf.write_text("config unlite 'main'\n\toption socket '/run/x/unlite.sock'\n")
    monkeypatch.delenv("UNLITE_SOCKET", raising=False)
    monkeypatch.setattr(rpcd, "UCI_FILE", str(conf))
    assert rpcd.socket_path() == "/run/x/unlite.sock"
    conf.write_text("config unlite 'main'\n\toption socket ''\n")
    with pytest.raises(rpcd.Failure, match="no unix socket"):
        rpcd.socket_path()
    conf.write_text("config unlite 'main'\n\toption socket 'unterminated\n")
    with pytest.raises(rpcd.Failure, match="cannot read"):
        rpcd.socket_path()
    monkeypatch.setattr(rpcd, "UCI_FILE", str(tmp_path / "absent"))
    assert rpcd.socket_path() == rpcd.DEFAULT_SOCKET


def test_an_answer_too_large_for_ubus_becomes_an_error(capsys):
    from unlite import rpcd
    rpcd._emit({"blob": "x" * (rpcd.MAX_REPLY + 1)})
    out = json.loads(capsys.readouterr().out)
    assert "more than ubus can carry" in out["error"]
    rpcd._emit({"small": 1})
    assert json.loads(capsys.readouterr().out) == {"small": 1}
