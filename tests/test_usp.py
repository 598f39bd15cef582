"""unlite as a USP Service on the real obuspa Broker (make obuspa): the daemon in its gateway
namespace connects to the Broker's controller socket, registers Device.SoftwareModules. and
answers what ``obuspa -c`` asks through the Broker: get (partial paths, wildcards, search
expressions), InstallDU(URL), DeploymentUnit.{i}.Update(URL) and .Uninstall() as async
commands, each ending in OperationComplete and a DUStateChange! event (read in the Broker's
protocol trace: what it received and decoded).

Skipped (with the reason) when obuspa is not built; UNLITE_REQUIRE_USP=1 (CI) makes that a
failure."""
import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from owrt import until
from netlab import ApiError

import netlab
from conftest import ALICE, BOB, CATALOG, ROOT, TWO_TENANTS_UCI, bridge_graph
from usp_lab import OBUSPA, Broker, Controller
from test_deploy import SERVER, tcp_ok


def require_obuspa():
    if os.access(OBUSPA, os.X_OK):
        return
    why = f"no obuspa at {OBUSPA} (make obuspa builds it)"
    if os.environ.get("UNLITE_REQUIRE_USP") == "1":
        pytest.fail(f"UNLITE_REQUIRE_USP=1 but {why}")
    pytest.skip(why)


@pytest.fixture
def broker(tmp_path):
    require_obuspa()
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def usp_daemon(gateway, make_daemon, broker):
    d = make_daemon(extra=("--usp", broker.controller))
    until("unlite registered on the Broker",
          lambda: "Device.SoftwareModules.ExecEnv.1.Name" in broker.get("Device.SoftwareModules."))
    return d


def graph_status(d, gid):
    try:
        return d.api("GET", f"/NF-FG/status/{gid}")[1]["status"]
    except ApiError as e:
        return e.status


def test_get_install_update_search_uninstall_through_the_broker(gateway, usp_daemon, broker,
                                                                tmp_path):
    d, sm, gw = usp_daemon, "Device.SoftwareModules.", gateway
    gw.addr(0, "192.168.77.2/24", via="192.168.77.1")          # LAN host, behind the NAT
    gw.addr(1, "198.51.100.2/24")                              # WAN host: TCP 8080 and 445
    gw.lab.spawn(gw.hosts[1], "python3", "-c", SERVER)
    gw.lab.spawn(gw.hosts[1], "python3", "-c", SERVER.replace("8080", "445"))
    got = broker.get(sm)
    assert got[sm + "ExecEnv.1.Name"] == "unlite"
    assert got[sm + "ExecEnv.1.X_UNLITE_SteeringBackend"] == d._args["backend"]
    assert got[sm + "DeploymentUnitNumberOfEntries"] == "0"

    url = f"file://{ROOT}/tools/demo-graph.json"
    out = broker.c("operate", f'{sm}InstallDU(URL="{url}")')
    assert "Started successfully" in out, out
    until("graph home deployed", lambda: graph_status(d, "home") == "complete", timeout=60)
    until("the Broker's OperationComplete", lambda: "oper_complete" in broker.log.read_text())
    ev = until("DUStateChange! Installed", lambda: broker.events(OperationPerformed="Install",
                                                                 CurrentState="Installed"))[0]
    assert ev["DeploymentUnitRef"] == sm + "DeploymentUnit.1" and ev["Fault.FaultCode"] == "0"

    got = broker.get(sm)
    du = {k.rsplit(".", 1)[1]: v for k, v in got.items() if ".DeploymentUnit.1." in k}
    assert du["DUID"] == "home" and du["Status"] == "Installed" and du["Resolved"] == "true"
    assert re.fullmatch(r"[0-9a-f-]{36}", du["UUID"])
    eus = du["ExecutionUnitList"].split(",")
    assert len(eus) == 2
    euids = {got[f"{p}.EUID"] for p in eus}
    assert euids == {"home.fw", "home.nat"}
    assert all(got[f"{p}.Status"] == "Active" for p in eus)
    # traffic passes the graph InstallDU made: LAN -> firewall -> NAT -> WAN, 445 blocked
    assert gw.ping(0, "198.51.100.2")
    until("HTTP through the NAT", lambda: tcp_ok(gw, 0, "198.51.100.2", 8080))
    assert not tcp_ok(gw, 0, "198.51.100.2", 445, timeout=1), "the firewall blocks 445"

    # wildcards and search expressions are resolved by the Service
    assert set(broker.get(sm + "ExecutionUnit.*.EUID").values()) == euids
    assert broker.get(sm + 'DeploymentUnit.[DUID=="home"].UUID') == \
        {sm + "DeploymentUnit.1.UUID": du["UUID"]}
    assert broker.get(sm + 'DeploymentUnit.[DUID=="nope"].UUID') == {}

    # Update(URL): the same graph with another firewall setting, by difference
    doc = json.loads((ROOT / "tools" / "demo-graph.json").read_text())
    doc["forwarding-graph"]["VNFs"][0]["unify-env-variables"] = [{"variable": "BLOCK_TCP_PORTS=23"}]
    newer = tmp_path / "home-v2.json"
    newer.write_text(json.dumps(doc))
    out = broker.c("operate", f'{sm}DeploymentUnit.1.Update(URL="file://{newer}")')
    assert "Started successfully" in out, out
    until("DUStateChange! Update", lambda: broker.events(OperationPerformed="Update",
                                                         CurrentState="Installed"))
    stored = d.api("GET", "/NF-FG/home")[1]["forwarding-graph"]["VNFs"][0]
    assert stored["unify-env-variables"] == [{"variable": "BLOCK_TCP_PORTS=23"}]
    assert graph_status(d, "home") == "complete"
    until("445 open after the Update", lambda: tcp_ok(gw, 0, "198.51.100.2", 445))
    # an Update whose graph is another one is refused, nothing changed
    doc["forwarding-graph"]["id"] = "other"
    newer.write_text(json.dumps(doc))
    broker.c("operate", f'{sm}DeploymentUnit.1.Update(URL="file://{newer}")')
    until("the refused Update", lambda: broker.events(
        OperationPerformed="Update", Fault_FaultString=lambda v: v and "'other'" in v))
    assert graph_status(d, "other") == 404

    out = broker.c("operate", f"{sm}DeploymentUnit.1.Uninstall()")
    assert "Started successfully" in out, out
    until("graph home deleted", lambda: graph_status(d, "home") == 404, timeout=60)
    until("no DU left", lambda: broker.get(sm).get(sm + "DeploymentUnitNumberOfEntries") == "0")
    until("DUStateChange! Uninstalled", lambda: broker.events(OperationPerformed="Uninstall",
                                                              CurrentState="Uninstalled"))


def test_a_bad_graph_is_a_fault_naming_its_path_and_changes_nothing(usp_daemon, broker, tmp_path):
    d, sm = usp_daemon, "Device.SoftwareModules."
    doc = json.loads((ROOT / "tools" / "demo-graph.json").read_text())
    doc["forwarding-graph"]["id"] = "bad"
    doc["forwarding-graph"]["VNFs"][0]["ports"][0]["id"] = 7          # not a string
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    out = broker.c("operate", f'{sm}InstallDU(URL="file://{bad}")')
    assert "Started successfully" in out, out
    # the Broker received (and decoded) the Service's OperationComplete with the fault
    log = until("the fault's OperationComplete",
                lambda: re.search(r'cmd_failure \{\s*err_code: 7219\s*err_msg: "([^"]*)"',
                                  broker.log.read_text()))
    assert "VNFs[0].ports[0].id" in log.group(1), log.group(1)
    ev = until("DUStateChange! Failed", lambda: broker.events(CurrentState="Failed"))[0]
    assert ev["Fault.FaultCode"] == "7219" and "VNFs[0].ports[0].id" in ev["Fault.FaultString"]
    assert graph_status(d, "bad") == 404
    assert broker.get(sm)[sm + "DeploymentUnitNumberOfEntries"] == "0"

    # a URL unlite does not fetch: TR-181's unsupported transfer protocol, nothing made
    broker.c("operate", f'{sm}InstallDU(URL="ftp://192.0.2.1/g.json")')
    until("the URL's fault", lambda: broker.events(Fault_FaultCode="7213"))
    assert broker.get(sm)[sm + "DeploymentUnitNumberOfEntries"] == "0"


AUTH_SERVER = """
import base64, functools, http.server, sys
want = "Basic " + base64.b64encode(b"op:s3cret").decode()
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        super().do_GET()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])),
                                functools.partial(H, directory=sys.argv[1])).serve_forever()
"""


@pytest.mark.parametrize("backend", ["nft"])
def test_install_over_http_with_credentials_then_its_faults_and_an_update_by_its_last_url(
        gateway, usp_daemon, broker, tmp_path):
    """An operator's graph server (HTTP, Basic credentials) in the gateway's namespace:
    InstallDU without the credentials is 7212, with them Installed; the DU shows its URL and
    Update() without one fetches it again (with the same credentials); installing it twice is
    7226, another execution environment 7223, a UUID that is not the graph's 7222."""
    d, sm, gw = usp_daemon, "Device.SoftwareModules.", gateway
    web = tmp_path / "web"
    web.mkdir()
    (web / "home.json").write_text((ROOT / "tools" / "demo-graph.json").read_text())
    gw.lab.spawn(gw.ns, sys.executable, "-c", AUTH_SERVER, web, 8931)
    until("the graph server", lambda: _connects(d, 8931))
    url = "http://127.0.0.1:8931/home.json"

    broker.c("operate", f'{sm}InstallDU(URL="{url}")')
    ev = until("7212", lambda: broker.events(Fault_FaultCode="7212"))[0]
    assert "HTTP 401" in ev["Fault.FaultString"] and ev["CurrentState"] == "Failed"
    assert graph_status(d, "home") == 404

    out = broker.c("operate", f'{sm}InstallDU(URL="{url}",Username="op",Password="s3cret")')
    assert "Started successfully" in out, out
    until("DUStateChange! Installed", lambda: broker.events(OperationPerformed="Install",
                                                            CurrentState="Installed"))
    assert graph_status(d, "home") == "complete"
    assert broker.get(sm + "DeploymentUnit.1.URL") == {sm + "DeploymentUnit.1.URL": url}

    for args, code, words in (
            (f'URL="{url}",Username="op",Password="s3cret"', "7226", "installed already"),
            (f'URL="{url}",ExecutionEnvRef="{sm}ExecEnv.2"', "7223", "ExecEnv.1"),
            (f'URL="{url}",UUID="not-a-uuid"', "7222", "RFC 4122"),
            (f'URL="{url}",Username="op",Password="s3cret",'
             f'UUID="00000000-0000-5000-8000-000000000000"', "7222", "not this graph's")):
        seen = len(broker.events(Fault_FaultCode=code))
        broker.c("operate", f"{sm}InstallDU({args})")
        ev = until(f"fault {code}", lambda c=code, n=seen: broker.events(Fault_FaultCode=c)[n:])[0]
        assert words in ev["Fault.FaultString"], ev
    assert broker.get(sm)[sm + "DeploymentUnitNumberOfEntries"] == "1"

    doc = json.loads((web / "home.json").read_text())
    doc["forwarding-graph"]["VNFs"][0]["unify-env-variables"] = [{"variable": "BLOCK_TCP_PORTS=23"}]
    (web / "home.json").write_text(json.dumps(doc))
    out = broker.c("operate", f"{sm}DeploymentUnit.1.Update()")             # no URL: its last
    assert "Started successfully" in out, out
    until("DUStateChange! Update", lambda: broker.events(OperationPerformed="Update",
                                                         CurrentState="Installed"))
    stored = d.api("GET", "/NF-FG/home")[1]["forwarding-graph"]["VNFs"][0]
    assert stored["unify-env-variables"] == [{"variable": "BLOCK_TCP_PORTS=23"}]
    broker.c("operate", f"{sm}DeploymentUnit.1.Uninstall()")
    until("graph home deleted", lambda: graph_status(d, "home") == 404, timeout=60)


def _connects(d, port):
    def attempt():
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False
    return d.pool.submit(attempt).result()


USP_TENANTS = TWO_TENANTS_UCI + """
config unlite 'main'
	option usp_tenant 'alice'
"""


@pytest.mark.parametrize("backend", ["nft"])      # the face is above the backend
def test_the_usp_face_acts_as_its_tenant(gateway, make_daemon, broker, tmp_path):
    """option usp_tenant 'alice': through the Broker only alice's graphs exist, a graph
    installed there is alice's (her token sees it, bob's does not), and what alice may not do
    is 7006 with the path at fault, nothing made."""
    conf = tmp_path / "unlite.uci"
    conf.write_text(USP_TENANTS)
    d = make_daemon(extra=("--uci", str(conf), "--usp", broker.controller))
    sm = "Device.SoftwareModules."
    until("unlite registered", lambda: sm + "ExecEnv.1.Name" in broker.get(sm))
    d.api("PUT", "/NF-FG/bobs", bridge_graph("bobs", ("eth2", "eth3")), token=BOB)
    assert broker.get(sm)[sm + "DeploymentUnitNumberOfEntries"] == "0"     # bob's: not there

    url = f"file://{ROOT}/tools/demo-graph.json"                          # eth0, eth1: alice's
    broker.c("operate", f'{sm}InstallDU(URL="{url}")')
    until("Installed", lambda: broker.events(OperationPerformed="Install",
                                             CurrentState="Installed"))
    assert d.api("GET", "/NF-FG/status/home", token=ALICE)[1]["status"] == "complete"
    with pytest.raises(ApiError) as e:
        d.api("GET", "/NF-FG/home", token=BOB)
    assert e.value.status == 404

    for gid, eps, words in (("theirs", ("eth2", "eth3"), "may not use interface"),
                            ("bobs", ("eth0", "eth1"), "cannot be used")):
        g = tmp_path / f"{gid}.json"
        g.write_text(json.dumps(bridge_graph(gid, eps)))
        broker.c("operate", f'{sm}InstallDU(URL="file://{g}")')
        ev = until(f"7006 for {gid}", lambda w=words: broker.events(
            Fault_FaultCode="7006", Fault_FaultString=lambda v: v and w in v))[0]
        assert "$." in ev["Fault.FaultString"], ev
    assert broker.get(sm)[sm + "DeploymentUnitNumberOfEntries"] == "1"
    assert [g["nffg-uuid"] for g in d.api("GET", "/NF-FG/", token=BOB)[1]["NF-FG"]] == ["bobs"]
    broker.c("operate", f"{sm}DeploymentUnit.1.Uninstall()")
    until("home deleted", lambda: d.api("GET", "/NF-FG/", token=ALICE)[1] == {"NF-FG": []})
    d.api("DELETE", "/NF-FG/bobs", token=BOB)


def test_register_falls_back_to_a_vendor_root_where_another_service_owns_softwaremodules(
        gateway, make_daemon, broker):
    """An LCM (here a second Service, registered first) owns Device.SoftwareModules.: the
    Broker answers 7029 and unlite registers Device.X_UNLITE_NFV. of the same shape."""
    import types
    from unlite.usp.service import UspService
    lcm_node = types.SimpleNamespace(graphs={}, failed={}, switch=types.SimpleNamespace(name="lcm"),
                                     ids=lambda: [], changes=types.SimpleNamespace(
                                         get=lambda g: None, pending_new=lambda: []))
    lcm = UspService(lcm_node, broker.controller, endpoint_id="proto::other-lcm").start()
    try:
        until("the LCM registered", lambda: lcm.registered.is_set())
        assert lcm.root == "Device.SoftwareModules."
        d = make_daemon(extra=("--usp", broker.controller))
        x = "Device.X_UNLITE_NFV."
        got = until("unlite under its vendor root", lambda: broker.get(x))
        assert got[x + "ExecEnv.1.X_UNLITE_SteeringBackend"] == d._args["backend"]
        assert broker.get("Device.SoftwareModules.")[
            "Device.SoftwareModules.ExecEnv.1.X_UNLITE_SteeringBackend"] == "lcm"
    finally:
        lcm.stop()


def test_a_restarted_broker_gets_unlite_back_with_the_same_instance_numbers(
        gateway, usp_daemon, broker):
    d, sm = usp_daemon, "Device.SoftwareModules."
    d.api("PUT", "/NF-FG/lab", json.loads((ROOT / "tools" / "demo-graph.json").read_text()))
    before = until("DU of graph lab", lambda: broker.get(sm + 'DeploymentUnit.[DUID=="lab"].'))
    broker.stop()
    broker.start()                                   # its database kept; unlite reconnects
    after = until("unlite registered again",
                  lambda: broker.get(sm + 'DeploymentUnit.[DUID=="lab"].'))
    assert after == before and sm + "DeploymentUnit.1.DUID" in after
    assert "USP Broker at" in d.log()                # the loss, said once
    assert d.log().count("USP Broker at") == 1, d.log()
    d.api("DELETE", "/NF-FG/lab")


def test_a_controller_on_the_brokers_agent_socket_gets_the_tree(gateway, usp_daemon, broker):
    """A USP controller (Python, unlite's codec) on the Broker's agent socket: what the Broker
    answers from unlite's Service, partial path, search and a path that is not there."""
    d, sm = usp_daemon, "Device.SoftwareModules."
    d.api("PUT", "/NF-FG/lab", json.loads((ROOT / "tools" / "demo-graph.json").read_text()))
    until("graph lab", lambda: graph_status(d, "lab") == "complete", timeout=60)
    ctl = Controller(broker)
    try:
        got = ctl.get(sm + "DeploymentUnit.", sm + 'ExecutionUnit.[EUID=="lab.fw"].Status',
                      sm + "ExecEnv.1.X_UNLITE_SteeringBackend", sm + "ExecEnv.7.")
        (du_path, du), = got[sm + "DeploymentUnit."].items()
        assert du_path == sm + "DeploymentUnit.1." and du["DUID"] == "lab"
        assert list(got[sm + 'ExecutionUnit.[EUID=="lab.fw"].Status'].values()) == \
            [{"Status": "Active"}]
        assert got[sm + "ExecEnv.1.X_UNLITE_SteeringBackend"] == \
            {sm + "ExecEnv.1.": {"X_UNLITE_SteeringBackend": d._args["backend"]}}
        assert got[sm + "ExecEnv.7."]["err_code"] == 7026
        assert list(ctl.get(sm, max_depth=1)[sm]) == [sm]         # the object itself only
        assert len(ctl.get(sm, max_depth=2)[sm]) == 1 + 1 + 1 + 2  # + ExecEnv, DU, 2 EUs
    finally:
        ctl.close()
    d.api("DELETE", "/NF-FG/lab")


def test_reads_answer_while_a_deploy_holds_the_node(gateway, make_daemon, broker, nnf_repo,
                                                    tmp_path):
    """obuspa waits on every answer of a Service: unlite answers a Get from memory while a
    deploy holds the node lock (an NF whose start script waits for the test), and shows the
    DU as Installing."""
    import threading
    # the NF's own run dir is the one folder its scripts may write (its /tmp is private)
    repo = nnf_repo("slowstart", {"start": 'touch "$UNLITE_RUN_DIR/started"; '
                                           'while [ ! -f "$UNLITE_RUN_DIR/go" ]; do sleep 0.05; '
                                           'done'}, timeout=60)
    d = make_daemon(nnf_dir=repo, extra=("--usp", broker.controller))
    run = d.workdir / "run" / "nf"

    def started():
        return next(run.glob("*/started"), None) is not None

    def go():
        for f in run.glob("*/started"):
            (f.parent / "go").touch()
    sm = "Device.SoftwareModules."
    until("unlite registered", lambda: sm + "ExecEnv.1.Name" in broker.get(sm))
    put = threading.Thread(target=d.api,
                           args=("PUT", "/NF-FG/slow", bridge_graph("slow", nf="slowstart")))
    put.start()
    try:
        until("the NF's start script runs", started)
        ctl = Controller(broker)
        try:
            got = ctl.get(sm + 'DeploymentUnit.[DUID=="slow"].Status')
            assert list(got.values())[0] == {sm + "DeploymentUnit.1.": {"Status": "Installing"}}
        finally:
            ctl.close()
    finally:
        go()
        put.join()
    until("deployed", lambda: graph_status(d, "slow") == "complete")
    got = broker.get(sm + 'DeploymentUnit.[DUID=="slow"].')
    assert got[sm + "DeploymentUnit.1.Status"] == "Installed"
    eu = got[sm + "DeploymentUnit.1.ExecutionUnitList"]
    assert broker.get(eu + ".Status") == {eu + ".Status": "Active"}
    d.api("DELETE", "/NF-FG/slow")


def test_an_eu_is_stopped_started_and_restarted_through_the_broker(gateway, usp_daemon, broker):
    d, sm = usp_daemon, "Device.SoftwareModules."
    d.api("PUT", "/NF-FG/lab", json.loads((ROOT / "tools" / "demo-graph.json").read_text()))
    until("graph lab", lambda: graph_status(d, "lab") == "complete", timeout=60)
    (eu,) = broker.get(sm + 'ExecutionUnit.[EUID=="lab.fw"].EUID')    # its path
    eu = eu[:-len("EUID")]

    def fw_state():
        return {v["id"]: v["state"] for v in d.api("GET", "/NF-FG/status/lab")[1]["VNFs"]}["fw"]

    out = broker.c("operate", f'{eu}SetRequestedState(RequestedState="Idle")')
    assert "Started successfully" in out, out
    until("fw Idle", lambda: fw_state() == "Idle")
    until("EU Idle", lambda: broker.get(eu + "Status") == {eu + "Status": "Idle"})
    # the Broker subscribed unlite to the EU Status's ValueChange (its controller asked): sent
    until("ValueChange Idle", lambda: re.search(
        r'value_change \{\s*param_path: "%sStatus"\s*param_value: "Idle"' % re.escape(eu),
        broker.log.read_text()))
    broker.c("operate", f'{eu}SetRequestedState(RequestedState="Active")')
    until("fw Active", lambda: fw_state() == "Active")
    broker.c("operate", f"{eu}Restart()")
    until("the Restart's OperationComplete",
          lambda: re.search(r'oper_complete \{\s*obj_path: "[^"]*"\s*command_name: "Restart\(\)"',
                            broker.log.read_text()))
    assert fw_state() == "Active"
    out = broker.c("operate", f'{eu}SetRequestedState(RequestedState="Paused")')
    assert "ERROR" in out, out                                     # 7027, nothing changed
    assert fw_state() == "Active"
    d.api("DELETE", "/NF-FG/lab")


@pytest.mark.parametrize("backend", ["nft"])
def test_without_unlite_usp_the_daemon_serves_on_and_says_what_to_install(gateway, tmp_path):
    """``--usp`` on a box where the unlite package is installed and unlite-usp is not (the
    tree without ``unlite/usp/``, as the ipk lays it out): the node is not given up — its
    graphs carry traffic — and the log names the package."""
    import shutil
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "unlite", tree / "unlite",
                    ignore=shutil.ignore_patterns("usp", "__pycache__"))
    # python -S: not the editable install's import hook (it would find /work/main's usp/);
    # Bottle from the site-packages folder named on PYTHONPATH instead
    import bottle
    d = netlab.Daemon(gateway.ns, tmp_path / "d", CATALOG, backend="nft", root=tree,
                      extra=("--usp", str(tmp_path / "no-broker")))
    at = d.argv.index(sys.executable) + 1
    d.argv[at:at] = ["-S"]
    d.pythonpath = f"{tree}:{Path(bottle.__file__).parent}"
    d.start()
    try:
        assert d.api("GET", "/healthz")[0] == 200
        until("the log says it", lambda: "install the unlite-usp package" in d.log())
    finally:
        d.stop()
    assert d.proc.returncode == 0, d.log()


def test_the_shipped_obuspa_first_start_file_makes_a_broker_unlite_registers_on(tmp_path):
    """openwrt/obuspa/files/factory_reset.txt on the real obuspa (its /var/run/usp paths moved
    into the test's folder): both sockets are made, unlite's Service registers, and a
    controller on the agent socket reaches unlite's objects."""
    import subprocess
    import types
    from usp_lab import wait_for
    from unlite.usp.service import UspService
    require_obuspa()
    text = (ROOT / "openwrt/obuspa/files/factory_reset.txt").read_text()
    (tmp_path / "reset.txt").write_text(text.replace("/var/run/usp/", f"{tmp_path}/"))
    p = subprocess.Popen([OBUSPA, "-f", str(tmp_path / "usp.db"), "-r", str(tmp_path / "reset.txt"),
                          "-s", str(tmp_path / "cli"), "-i", "lo", "-v", "1",
                          "-l", str(tmp_path / "log")], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    node = types.SimpleNamespace(graphs={}, failed={}, switch=types.SimpleNamespace(name="nft"),
                                 ids=lambda tenant=None: [], changes=types.SimpleNamespace(
                                     get=lambda g: None, pending_new=lambda: []))
    s = None
    try:
        wait_for("the Broker's sockets", lambda: all(
            (tmp_path / n).exists() for n in ("broker_controller_path", "broker_agent_path")))
        s = UspService(node, str(tmp_path / "broker_controller_path")).start()
        until("unlite registered", s.registered.is_set)
        c = Controller(types.SimpleNamespace(agent=str(tmp_path / "broker_agent_path")))
        got = c.get("Device.SoftwareModules.ExecEnv.1.Name")
        c.close()
        assert got["Device.SoftwareModules.ExecEnv.1.Name"] == {
            "Device.SoftwareModules.ExecEnv.1.": {"Name": "unlite"}}
    finally:
        if s is not None:
            s.stop()
        p.terminate()
        p.wait(timeout=30)

