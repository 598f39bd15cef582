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

import pytest

from owrt import until
from netlab import ApiError

from conftest import ROOT, bridge_graph
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
                lambda: re.search(r'cmd_failure \{\s*err_code: 7022\s*err_msg: "([^"]*)"',
                                  broker.log.read_text()))
    assert "VNFs[0].ports[0].id" in log.group(1), log.group(1)
    ev = until("DUStateChange! Failed", lambda: broker.events(CurrentState="Failed"))[0]
    assert ev["Fault.FaultCode"] == "7022" and "VNFs[0].ports[0].id" in ev["Fault.FaultString"]
    assert graph_status(d, "bad") == 404
    assert broker.get(sm)[sm + "DeploymentUnitNumberOfEntries"] == "0"

    # a URL that is not file://: refused before anything runs
    out = broker.c("operate", f'{sm}InstallDU(URL="http://example.invalid/g.json")')
    until("the URL's fault", lambda: "only file:// URLs" in broker.log.read_text())


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
