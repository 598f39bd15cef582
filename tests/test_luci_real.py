"""LuCI's page for unlite (luci-app-unlite) in the real LuCI, 24.10 and master, in headless
Chromium.

Per LuCI line, one router for the module: LuCI laid out by ``owrt.Root(luci=LINE)`` with
luci-app-unlite's files, served by the sandbox's uhttpd on 127.0.0.1 of the host (where
Chromium runs), and a daemon in a gateway namespace registered on that sandbox's ubusd. The
user logs in through LuCI's form and opens Services → Network functions; then:

- the demo graph pasted and deployed is drawn (both NFs, in the legend's words); a bad graph's
  error is marked at its JSON path; delete clears the drawing; the capabilities follow;
- a read-only login (ACL read only) gets a read-only page; rpc errors read without LuCI's
  JavaScript stack; a failed graph's fault (``"vnf": null``) is listed;
- a deploy slower than LuCI's 20 s XHR timeout shows "deploying…", then "deployed";
- a graph one byte over uhttpd's 65,536-byte POST limit is refused before anything is sent
  (with the ways around); one exactly at the limit goes through uhttpd and deploys;
- Chromium's console has no error from the page (LuCI's login page answers 403: expected).

Every test leaves no graph and no kernel object behind. A screenshot of the page with the
demo graph goes to results/ui/luci-real.png (24.10; git-ignored: docs/luci-real.png is a
copy of one).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netlab
import owrt
from conftest import CATALOG, Gateway, bridge_graph
from test_ui import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, _no_browser, css, wait

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tools/demo-graph.json"
SCREENSHOT = ROOT / "results" / "ui" / "luci-real.png"     # never into the source tree
LINES = ("24.10", "master")
ROOT_LOGIN = ("root", "luci-sandbox")                   # luci.sh's login
VIEWER = ("viewer", "viewer-pw")
# A read-only login needs, besides read access to luci-app-unlite, the groups LuCI's own
# calls need on every page: "unauthenticated" (session access: LuCI asks it after any
# "Access denied", and a denied answer logs the user out; luci getFeatures) and "luci-base"
# (uci changes, for the header's change counter).
VIEWER_GROUPS = ("unauthenticated", "luci-base", "luci-app-unlite")
SLOW_START = 22                 # s: longer than LuCI's 20 s XHR timeout
SLOW_STOP = 7                   # s: longer than the 5 s after which a call is answered pending
POST_LIMIT = 65536              # uhttpd's UH_UBUS_MAX_POST_SIZE
PAGE = "/cgi-bin/luci/admin/services/unlite"


def slow_repo(path):
    """The catalog plus NNF "slow" (an NF whose start takes SLOW_START s, its stop
    SLOW_STOP s)."""
    repo = path / "nnf-repo"
    shutil.copytree(CATALOG, repo)
    src = path / "nnf-src/slow"
    src.mkdir(parents=True)
    (src / "template.json").write_text(json.dumps({
        "name": "slow", "multitenancy": True, "timeout": 60,
        "ports": [{"label": "inout", "min": 0, "max": 8}],
        "dependencies": {"capability": [{"name": "ip", "type": "executable"}]}}))
    for action, body in (("start", f"sleep {SLOW_START}"), ("stop", f"sleep {SLOW_STOP}")):
        (src / action).write_text(f"#!/bin/sh\n{body}\n")
        (src / action).chmod(0o755)
    subprocess.run([sys.executable, "-m", "unlite", "nnf", "pack", str(src), "-o",
                    str(repo / "slow.tgz")], check=True, cwd=ROOT, capture_output=True)
    return repo


class Router:
    """A LuCI line in the sandbox (uhttpd on the host's 127.0.0.1) and the unlite daemon of a
    gateway namespace, registered on the sandbox's ubusd."""

    def __init__(self, line, tmp):
        self.line, self.tmp = line, tmp
        self.lab = netlab.Lab()
        self.gw = Gateway(self.lab)
        self.root = owrt.Root(tmp / "root", luci=line).add_luci_app()
        self.root.add_login(*VIEWER, read=VIEWER_GROUPS)
        self.sb = owrt.Sandbox(self.root, http=True)
        self.daemon = netlab.Daemon(self.gw.ns, tmp / "d", slow_repo(tmp), extra=(
            "--socket", str(self.root.socket), "--ubus", "daemon",
            "--ubus-socket", str(self.root.ubus_socket)))
        self.base = None

    def start(self):
        self.sb.start()
        self.base = f"http://127.0.0.1:{self.sb.port}"
        self.daemon.start()
        return self

    def stop(self):
        try:
            try:
                self.daemon.stop()
            finally:
                self.sb.stop()
            left = netlab.unlite_objects(self.gw.ns)
        finally:
            self.lab.close()
        assert left == netlab.EMPTY, f"unlite leaked: {left}"

    def call(self, method, args=None):
        return self.sb.call("unlite", method, args)

    def graphs(self):
        return [g["id"] for g in self.call("list")["graphs"]]

    def assert_clean(self):
        """No graph left, nothing of one in the kernel (the daemon's own objects aside)."""
        assert self.graphs() == []
        assert netlab.unlite_objects(self.gw.ns, graphs_only=True) == netlab.EMPTY


@pytest.fixture(scope="module", params=LINES)
def router(request, tmp_path_factory):
    owrt.require()
    r = Router(request.param, tmp_path_factory.mktemp(f"luci-{request.param}")).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One headless Chromium for the module, in the host's network namespace (uhttpd's)."""
    why = _no_browser()
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    tmp = tmp_path_factory.mktemp("chromium")
    opts = Options()
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={tmp / 'profile'}",):
        opts.add_argument(flag)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")            # selenium-manager may never download
        drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER,
                                               log_output=str(tmp / "driver.log")),
                               options=opts)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture
def browser(chromium, router):
    """The browser, logged out, its console read clean at the start; at the end no error in
    the console but LuCI's login page's 403."""
    chromium.delete_all_cookies()         # both lines are 127.0.0.1: one cookie jar
    chromium.get_log("browser")
    yield chromium
    errors = [e for e in chromium.get_log("browser") if e["level"] == "SEVERE"
              and not (e["source"] == "network" and "403 (Forbidden)" in e["message"])]
    assert not errors, errors


# -- helpers -------------------------------------------------------------------------------
def login(drv, router, user, password, path=PAGE):
    """LuCI's login form (LuCI answers the page 403 with the form until logged in)."""
    drv.get(router.base + path)
    # (sysauth.js moves the form into a modal dialog: typed into once it is shown there)
    name = wait(drv, lambda _: [e for e in css(drv, 'input[name="luci_username"]')
                                if e.is_displayed() and e.is_enabled()], what="the login form")[0]
    name.clear()
    name.send_keys(user)
    css(drv, 'input[name="luci_password"]')[0].send_keys(password)
    css(drv, 'input[name="luci_password"]')[0].submit()
    wait(drv, lambda _: not css(drv, 'input[name="luci_password"]') and css(drv, "#view"),
         what="logged in")


def open_page(drv, router, user=ROOT_LOGIN):
    login(drv, router, *user)
    wait(drv, lambda _: css(drv, "#unlite-graphs"), what="the unlite page")


def text(drv, sel):
    found = css(drv, sel)
    return found[0].text if found else ""


def paste(drv, value, gid=""):
    """The textarea gets ``value`` at once (typing 60 KiB key by key is slow)."""
    drv.execute_script("document.getElementById('unlite-nffg').value = arguments[0];"
                       "document.getElementById('unlite-id').value = arguments[1];", value, gid)


def deploy(drv):
    css(drv, "#unlite-deploy-button")[0].click()


def outcome(drv):
    return text(drv, "#unlite-deploy-result")


def confirm(drv):
    """Accept the page's confirm() dialog."""
    from selenium.webdriver.support import expected_conditions as EC
    wait(drv, EC.alert_is_present(), what="the confirmation")
    drv.switch_to.alert.accept()


def nf_states(drv):
    return {g.get_attribute("data-nf"): g.get_attribute("data-state")
            for g in css(drv, "#unlite-drawing svg g[data-nf]")}


def running(drv):
    return text(drv, '#unlite-caps tr[data-cap="running"] td:last-child')


COUNT_PUTS = """
window.unlitePuts = 0;
var send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function(body) {
  if (typeof body == 'string' && body.indexOf('"unlite","put"') >= 0) window.unlitePuts++;
  return send.apply(this, arguments);
};
"""


def request_size(gid, graph, sid="0" * 32):
    """The body rpc.js sends for put (compact JSON, as JSON.stringify), with the page's
    10-digit request id."""
    return len(json.dumps({"jsonrpc": "2.0", "id": 1000000000, "method": "call",
                           "params": [sid, "unlite", "put", {"id": gid, "graph": graph}]},
                          separators=(",", ":")).encode())


def exactly(gid, size):
    """A bridge graph whose put request (as the page counts it) is ``size`` bytes: rules
    added while one more fits, the rest made up by the graph's name (at most 256 chars)."""
    g = bridge_graph(gid)
    fg, i = g["forwarding-graph"], 0
    fg["name"] = ""
    rules = fg["big-switch"]["flow-rules"]
    while request_size(gid, g) <= size:
        rules.append({"id": f"s{i}", "priority": 20, "match": {
            "port_in": "endpoint:ep0", "ether_type": "0x0800",
            "source_ip": f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}/32"},
            "actions": [{"output_to_port": "vnf:nf1:inout:0"}]})
        i += 1
    rules.pop()
    fg["name"] = "x" * (size - request_size(gid, g))
    assert request_size(gid, g) == size and len(fg["name"]) <= 256
    return g


# -- tests ---------------------------------------------------------------------------------
def test_deploy_draw_mark_and_delete(router, browser):
    b = browser
    login(b, router, *ROOT_LOGIN, path="/cgi-bin/luci/")
    entry = wait(b, lambda _: css(b, 'a[href$="/admin/services/unlite"]'), what="the menu")[0]
    assert entry.get_attribute("textContent").strip() == "Network functions (unlite)"
    b.get(entry.get_attribute("href"))                    # Services → Network functions
    wait(b, lambda _: css(b, "#unlite-graphs"), what="the unlite page")
    assert css(b, "#view .cbi-map")[0].get_attribute("data-writable") == "1"
    assert "No graph is deployed." in text(b, "#unlite-graphs")
    assert text(b, "#unlite-drawing-title") == "Graph"
    assert running(b) == "0 / 0"
    funcs = text(b, '#unlite-caps tr[data-cap="functions"] td:last-child')
    assert "firewall (nftables; preferred)" in funcs and "firewall (ebtables)" in funcs, funcs
    assert "bridge (linux-bridge; also nativeBr, example)" in funcs, funcs

    # the demo graph, pasted: listed, drawn with both NFs in the legend's words, counted
    demo = DEMO.read_text()
    paste(b, demo)
    deploy(b)
    wait(b, lambda _: "Graph home deployed." in outcome(b), timeout=30, what="deployed")
    wait(b, lambda _: nf_states(b) == {"fw": "active", "nat": "active"}, what="NFs drawn")
    states = [t.text for t in css(b, "#unlite-drawing g[data-nf] .ulg-state")]
    legend = css(b, "#unlite-drawing g[data-legend]")[0].text
    assert states == ["running", "running"] and "running" in legend, (states, legend)
    assert "Active" not in css(b, "#unlite-drawing svg")[0].text
    assert {g.get_attribute("data-endpoint") for g in css(b, "#unlite-drawing g[data-endpoint]")} \
        == {"lan", "wan"}
    assert len(css(b, "#unlite-drawing path[data-rule]")) == 6
    assert text(b, "#unlite-drawing-title") == "Graph home — complete"
    assert css(b, 'tr[data-graph="home"] td[data-status="complete"]')
    wait(b, lambda _: running(b) == "1 / 2", what="capabilities refreshed")
    # live: pings from the LAN host through firewall and NAT move the drawn counters
    gw = router.gw
    gw.addr(0, "192.168.77.2/24", via="192.168.77.1")
    gw.addr(1, "198.51.100.2/24")
    assert gw.ping(0, "198.51.100.2")
    wait(b, lambda _: int(css(b, '#unlite-drawing g[data-rule="r1"]')[0]
                          .get_attribute("data-packets") or 0) >= 3, what="counters moving")
    if router.line == LINES[0]:
        b.execute_script("window.scrollTo(0, 0)")       # the whole page, in one picture
        b.set_window_size(1400, b.execute_script("return document.body.scrollHeight") + 140)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        b.save_screenshot(str(SCREENSHOT))
        b.set_window_size(1400, 1000)

    # a bad graph: the daemon's message, without any stack, its JSON path marked in the text
    bad = json.dumps(bridge_graph("bad", ("eth2", "eth3"), nf="nosuch"), indent=2)
    paste(b, bad)
    deploy(b)
    wait(b, lambda _: css(b, "#unlite-deploy-result mark.ulg-mark"), what="the marked error")
    said = outcome(b)
    assert said.startswith("Not deployed: no NNF named 'nosuch'"), said
    assert "(at $.forwarding-graph.VNFs[0].name)" in said
    assert "ClassConstructor" not in said and "\n  at " not in said
    assert text(b, "#unlite-deploy-result mark.ulg-mark") == '"name": "nosuch"'
    start, end = b.execute_script("var t = document.getElementById('unlite-nffg');"
                                  "return [t.selectionStart, t.selectionEnd];")
    assert bad[start:end] == '"name": "nosuch"'
    assert router.graphs() == ["home"]

    # delete (confirmed): gone from the list, the drawing and its heading cleared, 0 / 0
    css(b, 'button[data-delete="home"]')[0].click()
    confirm(b)
    wait(b, lambda _: "No graph is deployed." in text(b, "#unlite-graphs"), what="home gone")
    wait(b, lambda _: text(b, "#unlite-drawing-title") == "Graph", what="heading cleared")
    assert text(b, "#unlite-drawing") == "No graph selected."
    wait(b, lambda _: running(b) == "0 / 0", what="capabilities refreshed")
    router.assert_clean()


def test_read_only_login(router, browser):
    """ACL read only: no deploy form, no delete button; LuCI's rpc error (the daemon down)
    reads without a stack; a graph that failed at restore shows its reason. (eth3 stays
    deleted for this router's later tests: they use eth0 and eth1.)"""
    b, r = browser, router
    assert r.call("put", {"id": "w", "graph": bridge_graph("w", ("eth2", "eth3"))})["created"]
    r.daemon.stop()                      # the graph stays stored; its interface goes away
    netlab.sh("ip", "-n", r.gw.ns, "link", "del", "eth3")
    try:
        open_page(b, r, VIEWER)
        said = wait(b, lambda _: text(b, "#unlite-graphs"), what="the list's error")
        assert said.startswith("The ubus object unlite is not there: is the unlite daemon "
                               "running?"), said
        assert "ClassConstructor" not in said and "handleCallReply" not in said
        assert css(b, "#view .cbi-map")[0].get_attribute("data-writable") == "0"
        assert "Read-only access" in text(b, "#unlite-readonly")
        assert not css(b, "#unlite-nffg") and not css(b, "#unlite-deploy-button")

        r.daemon = r.daemon.restarted()
        row = wait(b, lambda _: css(b, 'tr[data-graph="w"]'), timeout=10, what="w listed")[0]
        assert row.find_element("css selector", "td[data-status]").text == "failed"
        fault = row.find_element("css selector", "td.unlite-faults").text
        assert fault.startswith("graph: ") and "'eth3' does not exist" in fault, fault
        assert not css(b, "button[data-delete]") and not css(b, ".cbi-button-remove")
        assert [x.text for x in row.find_elements("css selector", "button")] == \
            ["Show", "Status"]
    finally:
        if r.daemon.proc.poll() is not None:
            r.daemon = r.daemon.restarted()
        assert r.call("delete", {"id": "w"}) == {"id": "w", "deleted": True}
    r.assert_clean()


def test_a_deploy_slower_than_the_xhr_timeout(router, browser):
    """put answered pending after 5 s: "deploying…" with the time, then the outcome read from
    status, never "Not deployed"; a slow delete likewise."""
    b = browser
    open_page(b, router)
    paste(b, json.dumps(bridge_graph("slow", nf="slow"), indent=2))
    t0 = time.monotonic()
    deploy(b)
    seen = []

    def said(_):
        seen.append(outcome(b))
        return "deployed." in seen[-1] or "Not deployed" in seen[-1]
    wait(b, lambda _: "Graph slow deploying…" in outcome(b), timeout=10, what="deploying…")
    wait(b, said, timeout=SLOW_START + 20, what="the outcome")
    took = time.monotonic() - t0
    assert not [s for s in seen if "Not deployed" in s or "timed out" in s], seen
    assert outcome(b) == "Graph slow deployed.", seen[-5:]
    assert took > 20, f"deployed in {took:.1f} s: not slower than LuCI's timeout"
    assert router.call("status", {"id": "slow"})["status"] == "complete"
    wait(b, lambda _: nf_states(b) == {"nf1": "active"}, what="slow drawn")

    # a delete slower than 5 s: told it goes on, then that it is done
    css(b, 'button[data-delete="slow"]')[0].click()
    confirm(b)
    wait(b, lambda _: "Graph slow deleting…" in text(b, "#maincontent"), timeout=10,
         what="deleting…")
    wait(b, lambda _: "Graph slow deleted." in text(b, "#maincontent"), timeout=SLOW_STOP + 10,
         what="deleted")
    wait(b, lambda _: "No graph is deployed." in text(b, "#unlite-graphs"), what="slow gone")
    assert text(b, "#unlite-drawing-title") == "Graph"
    router.assert_clean()


def test_a_graph_over_uhttpds_post_limit(router, browser):
    """One byte over: refused with the limit, its size and the ways around, nothing sent;
    exactly at the limit: sent, taken by uhttpd and deployed (the page counts as uhttpd
    does)."""
    b = browser
    open_page(b, router)
    b.execute_script(COUNT_PUTS)
    paste(b, json.dumps(exactly("big", POST_LIMIT + 1)))          # one byte over
    deploy(b)
    said = wait(b, lambda _: text(b, "#unlite-too-big"), what="the size error")
    assert "a request of 65,537 bytes" in said, said
    assert "over 65,536 bytes" in said and "uhttpd's /ubus" in said
    assert 'unlite graph apply FILE' in said and "PUT it to /NF-FG/big" in said
    assert b.execute_script("return window.unlitePuts") == 0
    assert router.graphs() == []

    # just within: padded to exactly the limit (as the page counts), sent and deployed
    fits = exactly("fits", POST_LIMIT)
    paste(b, json.dumps(fits))
    deploy(b)
    wait(b, lambda _: "Sending" not in outcome(b), timeout=30, what="fits answered")
    assert outcome(b) == "Graph fits deployed.", outcome(b)
    assert b.execute_script("return window.unlitePuts") == 1
    assert router.graphs() == ["fits"]
    assert router.call("delete", {"id": "fits"})["deleted"]
    router.assert_clean()
