"""The dashboard at /ui and the drawing core LuCI shares with it.

- the /ui route serves a fixed set of small files (no path reaches anything else);
- the drawing core (unlite/ui/graph.js, also files/www/luci-static/resources/unlite/graph.js)
  loads the way LuCI loads a module and finds JSON paths in the text that was sent;
- in a real browser (Debian's headless Chromium, driven by Selenium through Debian's
  chromedriver: nothing is downloaded), against a daemon with a bridge → firewall → NAT graph
  carrying pings: the SVG shows the NFs, their state and every rule with its live counter; a
  graph deploys through the form; a bad graph's error is shown at its place; delete asks first.
  Screenshots go to results/ui/ (git-ignored).

The daemon listens on 127.0.0.1 of the gateway namespace, so the browser runs there too: the
test thread enters that namespace (setns) while it starts chromedriver (and with it Chromium)
and while it talks to it; the namespace's loopback is then the browser's.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import subprocess
import time
import types
from pathlib import Path

import pytest

import netlab
from conftest import bridge_graph
from unlite import api

ROOT = Path(__file__).resolve().parent.parent
UI = ROOT / "unlite" / "ui"
LUCI_CORE = ROOT / "files/www/luci-static/resources/unlite/graph.js"
LUCI_VIEW = ROOT / "files/www/luci-static/resources/view/unlite/graphs.js"
RESULTS = ROOT / "results" / "ui"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--window-size=1400,1000", "--hide-scrollbars")


# -- the route, in-process ---------------------------------------------------------------------
class NoNode:
    """The /ui routes never touch the node: only what building the app reads is here."""
    def __init__(self, auth=False):
        self.tenants = types.SimpleNamespace(enabled=auth, authenticate=lambda token: None)


def wsgi_get(path, auth=False):
    app = api.make_app(NoNode(auth))
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "t",
           "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http",
           "wsgi.errors": io.StringIO(), "SERVER_PROTOCOL": "HTTP/1.1"}
    out = {}

    def start(status, headers, exc_info=None):
        out["status"], out["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(app(env, start))
    return out["status"], out["headers"], body


def test_ui_serves_its_fixed_files_and_nothing_else():
    status, headers, body = wsgi_get("/ui")
    assert status == 301 and headers["Location"].endswith("/ui/")
    status, headers, page = wsgi_get("/ui/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="graph.js"' in page and b'src="app.js"' in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name, kind in (("app.js", "text/javascript"), ("ui.css", "text/css"),
                       ("index.html", "text/html")):
        status, headers, body = wsgi_get(f"/ui/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind), name
        assert body == (UI / name).read_bytes()
    # the drawing core: LuCI's bytes, wrapped as LuCI's loader runs a module
    status, headers, body = wsgi_get("/ui/graph.js")
    core = LUCI_CORE.read_bytes()
    assert status == 200 and core in body and body.index(core) < 200
    for path in ("/ui/../api.py", "/ui/..%2fapi.py", "/ui/%2e%2e/api.py", "/ui/api.py",
                 "/ui/__init__.py", "/ui/ui/app.js", "/ui/app.js/x", "/ui/.", "/ui/..",
                 "/ui//etc/passwd", "/ui/graph.js%00", "/ui/APP.JS", "/ui/index.html/"):
        status, headers, body = wsgi_get(path)
        assert status in (404, 301) and b"import" not in body and b"root:" not in body, path
        if status == 404:
            assert json.loads(body)["error"], path
    # with tenants configured the page itself loads without a token (it asks for one)
    assert wsgi_get("/ui/app.js", auth=True)[0] == 200
    # small: every file of the page together
    assert sum(p.stat().st_size for p in UI.iterdir()) < 40 * 1024


def test_one_drawing_core_for_luci_and_the_dashboard():
    assert LUCI_CORE.resolve() == (UI / "graph.js").resolve(), "one copy in the repository"
    text = LUCI_CORE.read_text()
    assert text.startswith("'use strict';\n'require baseclass';\n")
    assert "return baseclass.extend(" in text
    view = LUCI_VIEW.read_text()
    assert "L.require('unlite.graph')" in view


@pytest.mark.skipif(not shutil.which("node"), reason="node not installed (JS checks)")
def test_core_loads_as_a_luci_module_and_locates_json_paths(tmp_path):
    """Load graph.js as LuCI's loader does (its source as a function body, the 'require'd
    baseclass passed in, the class it returns instantiated) and use its non-DOM parts."""
    script = tmp_path / "check.js"
    script.write_text(LUCI_LOADER + """
const g = load(process.argv[2]);
const doc = JSON.parse(process.argv[3]);
const m = g.model(doc, {VNFs: [{id: 'fw', state: 'Failed', fault: 'x'}],
                        'flow-rules': [{id: 'r8', packets: 1234}]});
const text = JSON.stringify(doc, null, 2);
const at = g.locate(text, '$.forwarding-graph.VNFs[1].name');
const miss = g.locate(text, '$.forwarding-graph.VNFs[2].ports[0].mac');
const broken = '{"forwarding-graph": {\\n "VNFs": [\\n  {"id": }';
console.log(JSON.stringify({
  nodes: m.order.map(n => n.key), rules: m.rules.map(r => [r.id, r.label, r.packets]),
  named: text.slice(at.start, at.end), exact: at.exact,
  missing: text.slice(miss.start, miss.end).split('\\n')[0], missingExact: miss.exact,
  syntax: g.position(broken, "malformed JSON: Expecting value at line 3 column 10 (char 43)"),
  count: [g.count(999), g.count(1234), g.count(2500000)]}));
""")
    p = subprocess.run(["node", str(script), str(LUCI_CORE), json.dumps(chain_graph())],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["nodes"] == ["ep:lan", "ep:wan", "nf:br", "nf:fw", "nf:nat"]
    rules = {r[0]: r for r in out["rules"]}
    assert rules["r8"] == ["r8", "ip", 1234] and rules["r9"][1] == "arp"
    assert rules["r1"][1] == "any"
    assert out["named"] == '"name": "firewall"' and out["exact"]
    assert out["missing"] == "{" and not out["missingExact"]      # the port that lacks it
    assert out["syntax"] == 43
    assert out["count"] == ["999", "1.2k", "2.5M"]


LUCI_LOADER = r"""
const fs = require('fs');
const baseclass = { extend(p) { const C = function() {}; C.prototype = p; C.isSubclass = 1;
                                return C; } };
function load(file) {
  const src = fs.readFileSync(file, 'utf8'), names = [], deps = [];
  for (const m of src.matchAll(/^'require ([\w.]+)';$/gm)) {
    if (m[1] !== 'baseclass') throw new Error('unexpected dependency ' + m[1]);
    names.push('baseclass'); deps.push(baseclass);
  }
  const C = new Function('window', 'document', 'L', ...names, src)({}, {}, {}, ...deps);
  if (!C || !C.isSubclass) throw new TypeError('factory yields invalid constructor');
  return new C();
}
"""


def chain_graph(gid="home"):
    """LAN → bridge → firewall → NAT → WAN; from the WAN only IPv4 and ARP enter."""
    def nf(i, name, **kw):
        return {"id": i, "name": name, "ports": [{"id": "inout:0", "name": "lan side"},
                                                 {"id": "inout:1", "name": "wan side"}], **kw}
    vnfs = [nf("br", "bridge"),
            nf("fw", "firewall", **{"unify-env-variables": [
                {"variable": "BLOCK_TCP_PORTS=23,445"}]}),
            nf("nat", "nat")]
    vnfs[2]["ports"][0]["unify-ip"] = "192.168.77.1/24"
    vnfs[2]["ports"][1]["unify-ip"] = "198.51.100.1/24"
    hops = [("endpoint:lan", "vnf:br:inout:0"), ("vnf:br:inout:1", "vnf:fw:inout:0"),
            ("vnf:fw:inout:1", "vnf:nat:inout:0")]
    rules = []
    for a, b in hops:
        rules += [(a, b, {}), (b, a, {})]
    rules += [("vnf:nat:inout:1", "endpoint:wan", {}),
              ("endpoint:wan", "vnf:nat:inout:1", {"ether_type": "0x0800"}),
              ("endpoint:wan", "vnf:nat:inout:1", {"ether_type": "0x0806"})]
    return {"forwarding-graph": {
        "id": gid, "name": "home: bridge, firewall, NAT", "VNFs": vnfs,
        "end-points": [{"id": "lan", "name": "LAN", "type": "interface",
                        "interface": {"if-name": "eth0"}},
                       {"id": "wan", "name": "WAN", "type": "interface",
                        "interface": {"if-name": "eth1"}}],
        "big-switch": {"flow-rules": [
            {"id": f"r{i}", "priority": 20 if m else 10, "match": {"port_in": a, **m},
             "actions": [{"output_to_port": b}]} for i, (a, b, m) in enumerate(rules, 1)]}}}


# -- in a real browser -------------------------------------------------------------------------
def _no_browser():
    if os.geteuid() != 0:
        return "needs root (namespaces, nft)"
    for exe, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(exe, os.X_OK):
            return f"{exe} missing (apt-get install {pkg})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium missing (pip install -e '.[test]')"
    return None


@contextlib.contextmanager
def in_netns(ns):
    """This thread in network namespace ``ns`` (processes it starts are born there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        netlab._enter(ns)
        try:
            yield
        finally:
            if libc.setns(home, netlab.CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)


@pytest.fixture
def browser(gateway, daemon, tmp_path, monkeypatch):
    why = _no_browser()
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    monkeypatch.setenv("SE_OFFLINE", "true")          # selenium-manager may never download
    opts = Options()
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={tmp_path / 'chromium'}",):
        opts.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "driver.log"))
    with in_netns(gateway.ns):
        drv = webdriver.Chrome(service=service, options=opts)
        try:
            drv.base = f"http://127.0.0.1:{daemon.port}"
            yield drv
        finally:
            drv.quit()


def wait(drv, cond, timeout=20, what="condition"):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(drv, timeout, poll_frequency=0.1).until(
        lambda d: cond(d), message=f"waited {timeout}s for {what}")


def css(drv, sel):
    from selenium.webdriver.common.by import By
    return drv.find_elements(By.CSS_SELECTOR, sel)


def shot(drv, name):
    RESULTS.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(RESULTS / name))


def set_text(drv, text):
    """Paste: the textarea gets ``text`` at once (typing 3 KiB key by key is slow)."""
    ta = css(drv, "#deploy-text")[0]
    drv.execute_script("arguments[0].value = arguments[1];", ta, text)
    return ta


@pytest.mark.parametrize("backend", ["nft"], indirect=True)
def test_dashboard_in_a_browser(gateway, daemon, browser, tmp_path):
    gw, d, b = gateway, daemon, browser
    gw.addr(0, "192.168.77.2/24", via="192.168.77.1")
    gw.addr(1, "198.51.100.2/24")
    assert d.api("PUT", "/NF-FG/home", chain_graph())[0] == 201
    assert gw.ping(0, "198.51.100.2")

    # the graph drawn: end-points, the three NFs running, every rule with its counter
    b.get(b.base + "/ui#home")
    wait(b, lambda _: css(b, 'svg[data-graph="home"] g[data-nf="nat"][data-state="active"]'),
         what="the graph drawn")
    nfs = {g.get_attribute("data-nf"): g.get_attribute("data-state")
           for g in css(b, "#svg svg g[data-nf]")}
    assert nfs == {"br": "active", "fw": "active", "nat": "active"}
    assert {g.get_attribute("data-endpoint") for g in css(b, "#svg g[data-endpoint]")} == \
        {"lan", "wan"}
    arrows = {p.get_attribute("data-rule"): (p.get_attribute("data-from"),
                                             p.get_attribute("data-to"))
              for p in css(b, "#svg path[data-rule]")}
    assert arrows["r3"] == ("vnf:br:inout:1", "vnf:fw:inout:0")
    assert arrows["r5"] == ("vnf:fw:inout:1", "vnf:nat:inout:0")
    assert arrows["r9"] == ("endpoint:wan", "vnf:nat:inout:1") and len(arrows) == 9
    labels = {g.get_attribute("data-rule"): g.text for g in css(b, "#svg g[data-rule]")}
    assert labels["r8"].startswith("r8 ip · ") and labels["r9"].startswith("r9 arp · ")
    assert labels["r1"].startswith("r1 any · ") and labels["r1"][9:].isdigit()
    ports = css(b, '#svg g[data-nf="fw"] g[data-port]')
    assert [p.get_attribute("data-port") for p in ports] == ["inout:0", "inout:1"]
    # left to right as the packets go
    x = {k: css(b, f'#svg g[data-node="{k}"] rect')[0].rect["x"]
         for k in ("ep:lan", "nf:br", "nf:fw", "nf:nat", "ep:wan")}
    assert x["ep:lan"] < x["nf:br"] < x["nf:fw"] < x["nf:nat"] < x["ep:wan"], x
    assert "bridge" in css(b, "#caps-list")[0].text and "nft" in css(b, "#caps-list")[0].text
    assert css(b, '#graph-list tr.selected')[0].get_attribute("data-graph") == "home"

    # live: the page's counters follow the daemon's within a poll or two
    def packets(rule):
        v = css(b, f'#svg g[data-rule="{rule}"]')[0].get_attribute("data-packets")
        return int(v) if v else None
    before = packets("r1")
    assert before and before > 0
    assert gw.ping(0, "198.51.100.2", count=5)
    wait(b, lambda _: (packets("r1") or 0) >= before + 5, timeout=10, what="counters to move")
    api_now = {r["id"]: r["packets"] for r in d.api("GET", "/NF-FG/status/home")[1]["flow-rules"]}
    assert packets("r1") <= api_now["r1"]
    b.set_window_size(1400, 715)             # the page without the empty space below
    shot(b, "dashboard.png")                    # docs/ui-dashboard.png is a copy of this
    b.set_window_size(1400, 1000)

    # a bad graph: the daemon's message, its JSON path, and the place in the text marked
    bad = bridge_graph("bad", eps=("eth2", "eth3"), nf="nosuch")
    text = json.dumps(bad, indent=2)
    set_text(b, text)
    css(b, "#deploy-button")[0].click()
    err = wait(b, lambda _: css(b, "#deploy-error"), what="the error")[0]
    assert "no NNF named 'nosuch'" in err.text
    assert css(b, "#deploy-error .path")[0].text == "$.forwarding-graph.VNFs[0].name"
    assert css(b, "#deploy-result mark.ulg-mark")[0].text == '"name": "nosuch"'
    assert "no NNF named" in css(b, "#deploy-result .ulg-message")[0].text
    start, end = b.execute_script("var t = document.getElementById('deploy-text');"
                                  "return [t.selectionStart, t.selectionEnd];")
    assert text[start:end] == '"name": "nosuch"'
    shot(b, "error.png")
    with pytest.raises(netlab.ApiError):
        d.api("GET", "/NF-FG/bad")

    # broken JSON: the place the parser stopped
    set_text(b, text.replace('"type": "interface",', '"type": "interface"', 1))
    css(b, "#deploy-button")[0].click()
    wait(b, lambda _: "malformed JSON" in css(b, "#deploy-result")[0].text, what="JSON error")
    mark = css(b, "#deploy-result mark.ulg-mark")
    assert mark, css(b, "#deploy-result")[0].text

    # a good graph from a file, through the form: listed, selected, drawn, running
    f = tmp_path / "g2.json"
    f.write_text(json.dumps(bridge_graph("g2", eps=("eth2", "eth3"))))
    set_text(b, "")
    css(b, "#deploy-file")[0].send_keys(str(f))
    wait(b, lambda _: '"g2"' in css(b, "#deploy-text")[0].get_attribute("value"),
         what="the file read")
    css(b, "#deploy-button")[0].click()
    wait(b, lambda _: css(b, 'svg[data-graph="g2"] g[data-nf="nf1"][data-state="active"]'),
         what="g2 drawn")
    assert "deployed" in css(b, "#deploy-result")[0].text
    assert d.api("GET", "/NF-FG/status/g2")[1]["status"] == "complete"
    assert {tr.get_attribute("data-graph") for tr in css(b, "#graph-list tr[data-graph]")} == \
        {"home", "g2"}

    # delete asks first: cancel keeps it, confirm removes it
    css(b, '#graph-list button[data-delete="g2"]')[0].click()
    wait(b, lambda _: css(b, "dialog#confirm[open]"), what="the confirmation")
    assert "g2" in css(b, "#confirm-text")[0].text
    css(b, 'dialog#confirm button[value="cancel"]')[0].click()
    time.sleep(0.3)
    assert d.api("GET", "/NF-FG/status/g2")[0] == 200
    css(b, '#graph-list button[data-delete="g2"]')[0].click()
    wait(b, lambda _: css(b, "dialog#confirm[open]"), what="the confirmation")
    css(b, "#confirm-ok")[0].click()
    wait(b, lambda _: not css(b, '#graph-list tr[data-graph="g2"]'), what="g2 gone from the list")
    with pytest.raises(netlab.ApiError) as e:
        d.api("GET", "/NF-FG/g2")
    assert e.value.status == 404
    logs = [entry for entry in b.get_log("browser") if entry["level"] == "SEVERE"]
    assert not [x for x in logs if "/NF-FG/" not in x["message"]], logs   # API 4xx are expected


# -- the LuCI view, with LuCI's runtime stood in for ------------------------------------------
LUCI_STUB = r"""
var src = arguments[0], canned = arguments[1], withCore = arguments[2];
window.calls = [];
String.prototype.format = function() {
  var a = arguments, i = 0;
  return this.replace(/%[^a-z%]*[a-z]/g, function() { return String(a[i++]); });
};
window._ = function(s) { return s; };
window.E = function(tag, attrs, kids) {
  var n = document.createElement(tag);
  if (Array.isArray(attrs) || typeof attrs != 'object' || attrs instanceof Node) { kids = attrs; attrs = {}; }
  for (var k in attrs || {})
    if (typeof attrs[k] == 'function') n.addEventListener(k, attrs[k]);
    else if (attrs[k] != null) n.setAttribute(k, attrs[k]);
  [].concat(kids == null ? [] : kids).forEach(function(c) {
    if (c != null) n.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  });
  return n;
};
var Class = { extend: function(p) { var C = function() {}; C.prototype = p; return C; } };
function load(text, deps) {
  var names = [], vals = [];
  text.replace(/^'require ([\w.]+)';$/gm, function(m, d) { names.push(d); vals.push(deps[d]); });
  var C = new Function('window', 'document', 'L', ...names, text)(window, document, window.L, ...vals);
  return new C();
}
window.L = {
  env: { sessionid: '0123456789abcdef0123456789abcdef' },
  hasViewPermission: function() { return window.writable !== false; },
  bind: function(fn, self) { var a = [].slice.call(arguments, 2);
    return function() { return fn.apply(self, a.concat([].slice.call(arguments))); }; },
  isObject: function(o) { return o != null && typeof o == 'object'; },
  require: function(name) {
    return name == 'unlite.graph' && withCore ? Promise.resolve(load(src.core, { baseclass: Class }))
      : Promise.reject(new Error('HTTP error 404 while loading class file'));
  }
};
var rpc = { declare: function(d) { return function() {
  var args = {}, a = arguments, r;
  (d.params || []).forEach(function(p, i) { args[p] = a[i]; });
  window.calls.push([ d.method, args ]);
  r = canned[d.method];
  if (d.method == 'get' || d.method == 'status') r = r[args.id];
  return Promise.resolve(JSON.parse(JSON.stringify(r)));
}; } };
var ui = {
  createHandlerFn: function(self, fn) { var a = [].slice.call(arguments, 2);
    return function(ev) { return self[fn].apply(self, a.concat([ ev ])); }; },
  showModal: function(t, kids) { document.body.appendChild(E('div', { id: 'modal' }, kids)); },
  hideModal: function() {}, addNotification: function(t, body) {}
};
var dom = { content: function(n, kids) { n.textContent = '';
  [].concat(kids == null ? [] : kids).forEach(function(c) {
    if (c != null && c !== '') n.appendChild(c instanceof Node ? c : document.createTextNode(String(c))); });
  return n; } };
var poll = { add: function(fn, s) { setInterval(fn, s * 1000); } };
var view = load(src.view, { view: Class, rpc: rpc, ui: ui, dom: dom, poll: poll });
Promise.resolve(view.load()).then(function(data) {
  document.body.appendChild(view.render(data));
  window.viewReady = true;
}, function(e) { window.viewError = String(e); });
"""


@pytest.mark.parametrize("backend", ["nft"], indirect=True)
def test_luci_view_draws_with_the_shared_core(gateway, daemon, browser):
    """graphs.js as LuCI runs it (its modules stood in for; rpc answers are the daemon's own,
    as the rpcd plugin passes them on): the list, the drawing of the first graph by the
    shared core, a deploy error marked in the pasted text; and without the core file the
    page still lists, deploys and shows the status as text."""
    d, b = daemon, browser
    assert d.api("PUT", "/NF-FG/home", chain_graph())[0] == 201
    doc, st = d.api("GET", "/NF-FG/home")[1], d.api("GET", "/NF-FG/status/home")[1]
    bad = json.dumps(bridge_graph("bad", eps=("eth2", "eth3"), nf="nosuch"), indent=2)
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/bad", bad)
    canned = {"list": d.api("GET", "/graphs")[1],
              "capabilities": d.api("GET", "/capabilities")[1],
              "get": {"home": doc}, "status": {"home": st},
              "put": {**e.value.body, "status": e.value.status}, "delete": {}}
    src = {"view": LUCI_VIEW.read_text(), "core": LUCI_CORE.read_text()}

    b.get(b.base + "/healthz")                 # any page of the daemon's origin
    b.execute_script(LUCI_STUB, src, canned, True)
    wait(b, lambda _: css(b, '#unlite-drawing svg[data-graph="home"] g[data-nf="fw"]'),
         what="the LuCI view's drawing")
    assert b.execute_script("return window.viewError || null") is None
    states = {g.get_attribute("data-nf"): g.get_attribute("data-state")
              for g in css(b, "#unlite-drawing g[data-nf]")}
    assert states == {"br": "active", "fw": "active", "nat": "active"}
    assert len(css(b, "#unlite-drawing path[data-rule]")) == 9
    assert css(b, 'tr[data-graph="home"]')
    assert "Graph home" in css(b, "#unlite-drawing-title")[0].text
    calls = b.execute_script("return window.calls")
    assert ["get", {"id": "home"}] in calls and ["status", {"id": "home"}] in calls

    b.execute_script("document.getElementById('unlite-nffg').value = arguments[0]", bad)
    css(b, "button.cbi-button-apply")[0].click()
    wait(b, lambda _: css(b, "#unlite-deploy-result mark.ulg-mark"), what="the marked error")
    assert css(b, "#unlite-deploy-result mark.ulg-mark")[0].text == '"name": "nosuch"'
    assert "no NNF named 'nosuch'" in css(b, "#unlite-deploy-result")[0].text
    shot(b, "luci.png")

    b.get(b.base + "/healthz")
    b.execute_script(LUCI_STUB, src, canned, False)    # graph.js not installed
    wait(b, lambda _: css(b, "#unlite-drawing pre"), what="the status as text")
    assert '"status": "complete"' in css(b, "#unlite-drawing pre")[0].text
    assert css(b, 'tr[data-graph="home"]') and css(b, "#unlite-nffg")
