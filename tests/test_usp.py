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
import subprocess

import pytest

from owrt import until
from netlab import ApiError

from conftest import ROOT
from test_deploy import SERVER, tcp_ok

OBUSPA = os.environ.get("OBUSPA", "/opt/obuspa/obuspa")
CLI_SUB = "unlite-test-opcomplete"


def require_obuspa():
    if os.access(OBUSPA, os.X_OK):
        return
    why = f"no obuspa at {OBUSPA} (make obuspa builds it)"
    if os.environ.get("UNLITE_REQUIRE_USP") == "1":
        pytest.fail(f"UNLITE_REQUIRE_USP=1 but {why}")
    pytest.skip(why)


class Broker:
    """obuspa as a USP Broker with its own database, CLI socket and factory-reset file:
    a controller socket for Services, an agent socket, and controller 1 (the CLI's) subscribed
    to the OperationComplete of InstallDU(), Update() and Uninstall() (obuspa runs an async
    command only for a controller subscribed to its completion) and to DUStateChange!."""

    def __init__(self, d):
        d.mkdir()
        self.dir, self.cli = d, str(d / "cli")
        self.controller = str(d / "broker_controller")
        refs = ("Device.SoftwareModules.InstallDU(),Device.SoftwareModules.DeploymentUnit.*.Uninstall(),"
                "Device.SoftwareModules.DeploymentUnit.*.Update()")
        lines = {
            "Device.LocalAgent.EndpointID": "proto::unlite-test-broker",
            "Device.UnixDomainSockets.UnixDomainSocket.1.Alias": "cpe-1",
            "Device.UnixDomainSockets.UnixDomainSocket.1.Mode": "Listen",
            "Device.UnixDomainSockets.UnixDomainSocket.1.Path": self.controller,
            "Device.UnixDomainSockets.UnixDomainSocket.2.Alias": "cpe-2",
            "Device.UnixDomainSockets.UnixDomainSocket.2.Mode": "Listen",
            "Device.UnixDomainSockets.UnixDomainSocket.2.Path": str(d / "broker_agent"),
            "Device.LocalAgent.Controller.1.Alias": "cli",
            "Device.LocalAgent.Controller.1.Enable": "true",
            "Device.LocalAgent.Controller.1.EndpointID": "self::cli",
            "Device.LocalAgent.Controller.1.AssignedRole": "Device.LocalAgent.ControllerTrust.Role.1",
            "Device.LocalAgent.Subscription.1.Enable": "true",
            "Device.LocalAgent.Subscription.1.ID": CLI_SUB,
            "Device.LocalAgent.Subscription.1.Recipient": "Device.LocalAgent.Controller.1",
            "Device.LocalAgent.Subscription.1.NotifType": "OperationComplete",
            "Device.LocalAgent.Subscription.1.ReferenceList": refs,
            "Device.LocalAgent.Subscription.1.Persistent": "true",
            "Device.LocalAgent.Subscription.2.Enable": "true",
            "Device.LocalAgent.Subscription.2.ID": "unlite-test-dustatechange",
            "Device.LocalAgent.Subscription.2.Recipient": "Device.LocalAgent.Controller.1",
            "Device.LocalAgent.Subscription.2.NotifType": "Event",
            "Device.LocalAgent.Subscription.2.ReferenceList": "Device.SoftwareModules.DUStateChange!",
            "Device.LocalAgent.Subscription.2.Persistent": "true",
            "Internal.Reboot.Cause": "LocalFactoryReset",
        }
        (d / "reset.txt").write_text("".join(f'{k} "{v}"\n' for k, v in lines.items()))
        self.log = d / "broker.log"
        self.start()

    def start(self):
        d = self.dir
        self.proc = subprocess.Popen(
            [OBUSPA, "-f", str(d / "usp.db"), "-s", self.cli, "-r", str(d / "reset.txt"),
             "-p", "-v", "3", "-l", str(self.log), "-i", "lo"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        until("obuspa's sockets", lambda: os.path.exists(self.controller) and
              os.path.exists(self.cli))
        return self

    def c(self, *args):
        p = subprocess.run([OBUSPA, "-s", self.cli, "-c", *args], capture_output=True,
                           text=True, timeout=60)
        return p.stdout + p.stderr

    def get(self, path):
        """{path: value} of ``obuspa -c get``."""
        out = self.c("get", path)
        return dict(re.findall(r"^(\S+) => (.*)$", out, re.M))

    def events(self, **want):
        """The DUStateChange! events the Broker received whose arguments include ``want``
        (Fault_FaultString for Fault.FaultString), each as {argument: value}."""
        out = []
        for block in re.findall(r'event_name: "DUStateChange!"(.*?)\n\s*\}\s*\}\s*\}',
                                self.log.read_text(), re.S):
            args = dict(re.findall(r'key: "([^"]*)"\s*value: "([^"]*)"', block))
            if all(args.get(k.replace("_", ".")) == v if not callable(v) else v(args.get(k.replace("_", ".")))
                   for k, v in want.items()):
                out.append(args)
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def broker(tmp_path):
    require_obuspa()
    b = Broker(tmp_path / "broker")
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
