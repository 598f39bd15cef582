"""OpenWrt integration: the UCI config (unlite/uci.py, ``serve --uci``), the daemon's Python
footprint, and the installed feed working end to end.

The footprint test installs the feed into a scratch root (as opkg lays it out) and runs the
daemon *from that root* with only the modules OpenWrt's python3-light and the packages the
unlite ipk depends on ship (tools/openwrt_py3.py), configured by the root's
/etc/config/unlite; a graph of an NNF from the root's catalog is deployed through the root's
rpcd plugin and carries packets.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, bridge_graph

sys.path.insert(0, str(ROOT / "tools"))
import feed  # noqa: E402
import ipk  # noqa: E402
import netlab  # noqa: E402
import openwrt_py3  # noqa: E402

from unlite import cli, uci  # noqa: E402

SHIPPED_UCI = ROOT / "files/etc/config/unlite"


# -- UCI -------------------------------------------------------------------------------------
def test_shipped_uci_config_parses_and_names_only_known_options():
    sections = uci.load(SHIPPED_UCI)
    assert [(s.type, s.name) for s in sections] == [("unlite", "main")]
    opts = sections[0].options
    assert set(opts) <= set(uci.SETTINGS)
    assert opts["socket"] == "/var/run/unlite/unlite.sock" and opts["backend"] == "nft"
    assert uci.truth(opts["verbose"]) is False
    # the commented-out tenant example is valid UCI once uncommented
    text = SHIPPED_UCI.read_text()
    example = "\n".join(ln[1:] for ln in text.splitlines() if ln.startswith("#config tenant")
                        or ln.startswith(("#\tlist ", "#\toption ")))
    (t,) = uci.parse(example)
    assert t.type == "tenant" and t.name == "alice" and len(t.options["token"]) == 1
    assert t.options["interface"] == ["lan2"] and t.options["admin"] == "0"


def test_uci_syntax():
    text = """package unlite
# comment
config unlite 'main'
	option listen "127.0.0.1:81"   # trailing comment
	option nnf_dir /usr/share/x
	list token 'a b'
	list token c'd'

config tenant
	option name anon
"""
    main, anon = uci.parse(text)
    assert (main.type, main.name, main.line) == ("unlite", "main", 3)
    assert main.options == {"listen": "127.0.0.1:81", "nnf_dir": "/usr/share/x",
                            "token": ["a b", "cd"]}
    assert anon.name is None and anon.options == {"name": "anon"}


@pytest.mark.parametrize("text, words", [
    ("option a 'b'\n", ":1: 'option' before any 'config'"),
    ("config unlite 'main'\n\toption a 'unterminated\n", ":2: No closing quotation"),
    ("config unlite 'ma in'\n", ":1: invalid section type or name"),
    ("config unlite main\nconfig unlite main\n", ":2: section 'main' defined twice"),
    ("config x\n\toption a-b 'c'\n", ":2: invalid option name"),
    ("config x\n\toption a\n", ":2: expected: option KEY 'VALUE'"),
    ("config x\n\toption a 'b'\n\tlist a 'c'\n", ":3: 'a' is already an option"),
    ("config x\n\tfrobnicate a 'b'\n", ":2: unknown statement 'frobnicate'"),
])
def test_uci_errors_name_file_and_line(text, words):
    with pytest.raises(uci.UciError) as e:
        uci.parse(text, "/etc/config/unlite")
    assert str(e.value).startswith("/etc/config/unlite:") and words in str(e.value)


def test_truth():
    assert [uci.truth(v) for v in ("1", "yes", "on", "true", "Enabled")] == [True] * 5
    assert [uci.truth(v) for v in ("0", "no", "off", "false", "disabled")] == [False] * 5
    with pytest.raises(uci.UciError, match="not a boolean"):
        uci.truth("maybe")


def serve_args(tmp_path, text, *flags):
    conf = tmp_path / "unlite"
    conf.write_text(text)
    a = cli.parser().parse_args(["serve", "--uci", str(conf), *flags])
    return a, uci.apply_serve_args(a)


def test_uci_settings_fill_what_the_command_line_leaves_open(tmp_path):
    text = ("config unlite 'main'\n\toption listen '127.0.0.1:9191'\n"
            "\toption state_dir '/srv/state'\n\toption socket '/run/u.sock'\n"
            "\toption verbose '1'\n\toption backend 'tc'\n\toption colour 'red'\n")
    a, warnings = serve_args(tmp_path, text)
    assert (a.listen, a.state_dir, a.socket, a.verbose, a.backend) == \
        ("127.0.0.1:9191", "/srv/state", "/run/u.sock", True, "tc")
    assert a.run_dir == "/var/run/unlite"                        # not in the file: default
    assert any("'colour' is unknown" in w for w in warnings)
    # flags given win, even when they repeat the default value
    a, _ = serve_args(tmp_path, text, "--listen", "127.0.0.1:8080", "--backend", "nft",
                      "--state-dir", "/x")
    assert (a.listen, a.backend, a.state_dir, a.socket) == \
        ("127.0.0.1:8080", "nft", "/x", "/run/u.sock")


def test_uci_option_usp_turns_the_usp_service_on(tmp_path):
    a, _ = serve_args(tmp_path, "config unlite 'main'\n")
    assert a.usp is None                                         # off by default
    a, _ = serve_args(tmp_path, "config unlite 'main'\n\toption usp '/var/run/usp/b'\n")
    assert a.usp == "/var/run/usp/b"
    a, _ = serve_args(tmp_path, "config unlite 'main'\n\toption usp ''\n")
    assert a.usp is None
    a, _ = serve_args(tmp_path, "config unlite 'main'\n\toption usp '/x'\n", "--usp", "/y")
    assert a.usp == "/y"
    shipped = SHIPPED_UCI.read_text()
    assert "\t#option usp '/var/run/usp/broker_controller_path'" in shipped


def test_uci_values_are_checked_like_flags(tmp_path):
    with pytest.raises(uci.UciError, match="'sctp' is not one of nft"):
        serve_args(tmp_path, "config unlite 'main'\n\toption backend 'sctp'\n")
    with pytest.raises(uci.UciError, match="not ADDR:PORT"):
        serve_args(tmp_path, "config unlite 'main'\n\toption listen '8080'\n")
    with pytest.raises(uci.UciError, match="not a boolean"):
        serve_args(tmp_path, "config unlite 'main'\n\toption verbose 'loud'\n")
    with pytest.raises(uci.UciError, match="must be an option, not a list"):
        serve_args(tmp_path, "config unlite 'main'\n\tlist listen '1.2.3.4:5'\n")
    with pytest.raises(uci.UciError, match="cannot read UCI file"):
        uci.apply_serve_args(cli.parser().parse_args(["serve", "--uci",
                                                      str(tmp_path / "absent")]))
    t1, t2, t3 = "bob-token-0123456789", "bob-token-abcdefghij", "eve-token-0123456789"
    a, w = serve_args(tmp_path, f"config tenant 'bob'\n\tlist token '{t1}'\n"
                                f"\tlist token '{t2}'\n\tlist interface 'eth1'\n"
                                f"config tenant 'eve'\n\toption token '{t3}'\n"
                                "\toption admin '1'\n")
    assert a.tenants == {"bob": {"tokens": [t1, t2], "interfaces": ["eth1"], "admin": False,
                                 "control": []},
                         "eve": {"tokens": [t3], "interfaces": [], "admin": True, "control": []}}
    a, _ = serve_args(tmp_path, f"config tenant 'bob'\n\tlist token '{t1}'\n"
                                "\tlist control '192.168.1.1:19050'\n"
                                "\tlist control '10.0.0.1:8000-8009'\n")
    assert a.tenants["bob"]["control"] == [["192.168.1.1", 19050, 19050],
                                           ["10.0.0.1", 8000, 8009]]
    for bad in ("19050", "192.168.1.1", "192.168.1.300:80", "10.0.0.1:0", "10.0.0.1:9-8",
                "[::1]:80"):
        with pytest.raises(uci.UciError, match=r"unlite:1: tenant 'bob' control: .* is not "
                                               r"ADDR:PORT"):
            serve_args(tmp_path, f"config tenant 'bob'\n\tlist token '{t1}'\n"
                                 f"\tlist control '{bad}'\n")
    assert any("no 'config unlite' section" in x for x in w)
    with pytest.raises(uci.UciError, match="at least 16 characters"):
        serve_args(tmp_path, "config tenant 'bob'\n\tlist token 'short'\n")
    # the unix socket's caller was called 'admin': a tenant of that name would own root's
    # graphs of older versions (issue 15)
    with pytest.raises(uci.UciError, match=r"unlite:3: tenant 'admin': the name 'admin' is "
                                           r"reserved .* rename the section"):
        serve_args(tmp_path, f"config tenant 'bob'\n\tlist token '{t1}'\nconfig tenant "
                             f"'admin'\n\tlist token '{t3}'\n\toption admin '0'\n")


def test_serve_with_a_broken_uci_file_exits_2_naming_the_line(tmp_path):
    conf = tmp_path / "unlite"
    conf.write_text("config unlite 'main'\n\toption backend 'sctp'\n")
    p = subprocess.run([sys.executable, "-m", "unlite", "serve", "--uci", str(conf)],
                       capture_output=True, text=True, cwd=ROOT, timeout=30,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 2 and f"{conf}:1" in p.stderr and "sctp" in p.stderr


def test_init_script_passes_the_uci_file_and_reloads_on_change():
    init = (ROOT / "files/etc/init.d/unlite").read_text()
    assert 'serve --uci "$CONFIG" --syslog' in init and "CONFIG=/etc/config/unlite" in init
    assert 'procd_set_param file "$CONFIG"' in init
    assert "procd_add_reload_trigger unlite" in init and "respawn" in init
    assert "config_get" not in init         # the daemon reads every option itself


# -- LuCI ------------------------------------------------------------------------------------
VIEW = ROOT / "files/www/luci-static/resources/view/unlite/graphs.js"


@pytest.mark.skipif(not shutil.which("node"), reason="node not installed (JS syntax check)")
def test_luci_view_is_valid_javascript(tmp_path):
    # LuCI loads a view as the body of a function (it ends in "return view.extend(...)")
    wrapped = tmp_path / "view.js"
    wrapped.write_text("(function() {\n" + VIEW.read_text() + "\n});\n")
    p = subprocess.run(["node", "--check", str(wrapped)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_luci_view_calls_only_plugin_methods_with_their_arguments():
    from unlite.ubus import methods
    text = VIEW.read_text()
    assert "'require rpc';" in text and "'require view';" in text and "view.extend(" in text
    decls = re.findall(r"rpc\.declare\(\{ object: '(\w+)', method: '(\w+)'"
                       r"(?:, params: \[ ([^\]]*) \])?", text)
    declared = {m for _, m, _ in decls}
    assert declared <= set(methods.METHODS), declared - set(methods.METHODS)
    assert {"list", "put", "delete", "status", "capabilities"} <= declared
    for obj, method, params in decls:
        assert obj == "unlite"
        names = re.findall(r"'(\w+)'", params)
        assert names == list(methods.METHODS[method].args), method
    menu = json.loads((ROOT / "files/usr/share/luci/menu.d/luci-app-unlite.json").read_text())
    (entry,) = menu.values()
    assert entry["action"] == {"type": "view", "path": "unlite/graphs"}
    assert VIEW.name == "graphs.js" and VIEW.parent.name == "unlite"


# -- the installed feed, run with OpenWrt's module set ---------------------------------------
@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The feed (unsigned: signing is test_feed's) installed into a scratch root."""
    base = tmp_path_factory.mktemp("openwrt")
    r = feed.build_feed(base / "feed", unsigned=True, epoch=1700000000)
    root = base / "root"
    pkgs = {}
    for name in sorted(r["packages"], key=lambda n: (not n.startswith("unlite_"), n)):
        p = ipk.opkg_install(r["dir"] / name, root)
        pkgs[p.fields["Package"]] = p
    return root, pkgs


def test_allowed_module_set():
    light = openwrt_py3.allowed(["python3-light"])
    for m in ("json", "socket", "http", "wsgiref", "socketserver", "hashlib", "tarfile",
              "ipaddress", "subprocess", "threading", "shlex"):
        assert m in light, m
    for m in ("_ssl", "_hashlib", "logging", "email", "urllib",
              "unicodedata", "asyncio", "ctypes", "uuid", "xml", "lzma", "tkinter",
              "bottle"):
        assert m not in light, m
    full = openwrt_py3.allowed(feed.UNLITE_DEPENDS)
    assert {"logging", "email", "urllib", "unicodedata", "bottle"} <= full
    assert "_ssl" not in full and "asyncio" not in full


@pytest.mark.parametrize("backend", ["nft"])                   # OpenWrt's default backend
def test_installed_feed_runs_with_openwrt_modules_only(backend, gateway, installed):
    root, pkgs = installed
    depends = pkgs["unlite"].fields["Depends"].split(", ")
    work = Path(tempfile.mkdtemp(prefix="ulo-", dir="/tmp"))    # short unix socket path
    sock, report = work / "unlite.sock", work / "modules.json"
    import bottle
    launcher = [sys.executable, "-S", str(ROOT / "tools/openwrt_py3.py"),
                "--report", str(report), "--depends", ",".join(depends),
                "--path", str(root / "usr/lib/unlite"),
                "--path", str(Path(bottle.__file__).parent), "--"]
    d = netlab.Daemon(gateway.ns, work / "d", root / "usr/share/unlite/nnf", backend=backend,
                      extra=("--uci", str(root / "etc/config/unlite"), "--socket", str(sock)))
    i = d.argv.index("-m")
    assert d.argv[i:i + 3] == ["-m", "unlite", "serve"]
    d.argv[i - 1:i + 2] = launcher                              # python3 -m unlite → launcher
    plugin = root / "usr/libexec/rpcd/unlite"
    # the installed plugin puts /usr/lib/unlite first (absent here), then this: the root's copy
    env = {"PATH": os.environ["PATH"], "UNLITE_SOCKET": str(sock),
           "PYTHONPATH": str(root / "usr/lib/unlite")}

    def ubus(method, args=None):
        p = subprocess.run([str(plugin), "call", method], input=json.dumps(args or {}),
                           capture_output=True, text=True, env=env, timeout=150)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        return json.loads(p.stdout)

    try:
        d.start()
        assert not Path("/usr/lib/unlite").exists(), "this machine has unlite installed"
        caps = ubus("capabilities")
        names = {f["name"] for f in caps["functional-capabilities"]}
        assert {"bridge", "firewall", "nat"} <= names          # from the unlite-nnf-* ipks
        graph = bridge_graph("ow", nf="firewall", env={"BLOCK_TCP_PORTS": "23"})
        assert ubus("put", {"id": "ow", "graph": graph}) == {"id": "ow", "created": True}
        gateway.addr(0, "10.78.0.1/24")
        gateway.addr(1, "10.78.0.2/24")
        assert gateway.ping(0, "10.78.0.2"), "no traffic through the installed firewall NNF"
        assert ubus("list")["graphs"][0]["status"]
        assert ubus("delete", {"id": "ow"}) == {"id": "ow", "deleted": True}
    finally:
        d.stop()
        shutil.rmtree(work / "d" / "state", ignore_errors=True)
    assert d.proc.returncode == 0, d.log()
    rep = json.loads(report.read_text())
    shutil.rmtree(work, ignore_errors=True)
    assert rep["unlite_file"].startswith(str(root)), "the daemon did not run the installed code"
    ok = openwrt_py3.allowed(depends)
    imported = {m.partition(".")[0] for m in rep["imported"]}
    assert imported <= ok, f"modules OpenWrt would not have: {sorted(imported - ok)}"
    assert "ssl" not in imported and "_hashlib" not in imported
    print("refused optional imports:", rep["refused"])


def _imports_with(depends, *modules):
    import bottle
    argv = [sys.executable, "-S", str(ROOT / "tools/openwrt_py3.py"), "--depends",
            ",".join(depends), "--path", str(ROOT), "--path", str(Path(bottle.__file__).parent)]
    for m in modules:
        argv += ["--import", m]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_each_python_dependency_is_needed_and_the_plugin_needs_only_light():
    daemon = ("unlite.cli", "unlite.api", "unlite.node", "unlite.network.nft")
    py = [d for d in feed.UNLITE_DEPENDS if d.startswith("python3-")]
    ok = _imports_with(py, *daemon)
    assert ok.returncode == 0, ok.stderr
    for drop in py:
        if drop == "python3-light":
            continue
        p = _imports_with([d for d in py if d != drop], *daemon)
        assert p.returncode == 1 and "ModuleNotFoundError" in p.stderr, \
            f"unlite depends on {drop} but imports nothing from it"
    # the rpcd plugin starts once per ubus call: it stays within python3-light
    p = _imports_with(["python3-light"], "unlite.ubus.rpcd", "unlite.uci")
    assert p.returncode == 0, p.stderr
