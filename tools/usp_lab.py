"""obuspa as a USP Broker and a USP controller in Python, for the USP tests and bench_usp
(not shipped).

- ``Broker(dir)``: obuspa (``make obuspa``) with its own database (-f), CLI socket (-s) and
  factory-reset file (-r): a controller socket for Services (unlite's ``--usp``), an agent
  socket for controllers (the Broker's MTP 1), and controller 1 (the CLI's) subscribed to the
  OperationComplete of InstallDU(), Update(), Uninstall(), SetRequestedState() and Restart()
  (obuspa runs an async command only for a controller subscribed to its completion), to
  DUStateChange! and to the ValueChange of every EU's Status; ``c(...)`` runs
  ``obuspa -c``, ``get(path)`` parses its answer, ``events()`` reads the DUStateChange! events
  the Broker received out of its protocol trace;
- ``Controller(broker)``: a USP controller on the agent socket (UDS handshake, then USP
  records, unlite's codec): ``get(*paths)`` → the GetResp.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from unlite.usp import codec  # noqa: E402
from unlite.usp.codec import MsgType  # noqa: E402

OBUSPA = os.environ.get("OBUSPA", "/opt/obuspa/obuspa")
SM = "Device.SoftwareModules."


def wait_for(what, check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {timeout} s")


class Broker:
    def __init__(self, d):
        d = Path(d)
        d.mkdir(parents=True)
        self.dir, self.cli = d, str(d / "cli")
        self.controller = str(d / "broker_controller")     # Services connect here
        self.agent = str(d / "broker_agent")               # controllers connect here
        refs = (f"{SM}InstallDU(),{SM}DeploymentUnit.*.Uninstall(),{SM}DeploymentUnit.*.Update(),"
                f"{SM}ExecutionUnit.*.SetRequestedState(),{SM}ExecutionUnit.*.Restart()")
        uds = "Device.UnixDomainSockets.UnixDomainSocket"
        sub = "Device.LocalAgent.Subscription"
        lines = {
            "Device.LocalAgent.EndpointID": "proto::unlite-test-broker",
            f"{uds}.1.Alias": "cpe-1", f"{uds}.1.Mode": "Listen", f"{uds}.1.Path": self.controller,
            f"{uds}.2.Alias": "cpe-2", f"{uds}.2.Mode": "Listen", f"{uds}.2.Path": self.agent,
            "Device.LocalAgent.MTP.1.Alias": "cpe-2",
            "Device.LocalAgent.MTP.1.Protocol": "UDS",
            "Device.LocalAgent.MTP.1.UDS.UnixDomainSocketRef": f"{uds}.2",
            "Device.LocalAgent.MTP.1.Enable": "true",
            "Device.LocalAgent.Controller.1.Alias": "cli",
            "Device.LocalAgent.Controller.1.Enable": "true",
            "Device.LocalAgent.Controller.1.EndpointID": "self::cli",
            "Device.LocalAgent.Controller.1.AssignedRole":
                "Device.LocalAgent.ControllerTrust.Role.1",
            f"{sub}.1.Enable": "true", f"{sub}.1.ID": "unlite-test-opcomplete",
            f"{sub}.1.Recipient": "Device.LocalAgent.Controller.1",
            f"{sub}.1.NotifType": "OperationComplete", f"{sub}.1.ReferenceList": refs,
            f"{sub}.1.Persistent": "true",
            f"{sub}.2.Enable": "true", f"{sub}.2.ID": "unlite-test-dustatechange",
            f"{sub}.2.Recipient": "Device.LocalAgent.Controller.1",
            f"{sub}.2.NotifType": "Event", f"{sub}.2.ReferenceList": f"{SM}DUStateChange!",
            f"{sub}.2.Persistent": "true",
            f"{sub}.3.Enable": "true", f"{sub}.3.ID": "unlite-test-valuechange",
            f"{sub}.3.Recipient": "Device.LocalAgent.Controller.1",
            f"{sub}.3.NotifType": "ValueChange",
            f"{sub}.3.ReferenceList": f"{SM}ExecutionUnit.*.Status",
            f"{sub}.3.Persistent": "true",
            "Internal.Reboot.Cause": "LocalFactoryReset",
        }
        (d / "reset.txt").write_text("".join(f'{k} "{v}"\n' for k, v in lines.items()))
        self.log = d / "broker.log"
        self.proc = None

    def start(self, trace=True):
        d = self.dir
        argv = [OBUSPA, "-f", str(d / "usp.db"), "-s", self.cli, "-r", str(d / "reset.txt"),
                "-v", "3" if trace else "1", "-l", str(self.log), "-i", "lo"]
        self.proc = subprocess.Popen(argv + (["-p"] if trace else []),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for("obuspa's sockets", lambda: all(os.path.exists(p) for p in
                                                 (self.controller, self.agent, self.cli)))
        return self

    def c(self, *args):
        p = subprocess.run([OBUSPA, "-s", self.cli, "-c", *args], capture_output=True,
                           text=True, timeout=60)
        return p.stdout + p.stderr

    def get(self, path):
        """{path: value} of ``obuspa -c get``."""
        return dict(re.findall(r"^(\S+) => (.*)$", self.c("get", path), re.M))

    def events(self, **want):
        """The DUStateChange! events the Broker received whose arguments include ``want``
        (Fault_FaultString for Fault.FaultString; a value may be a predicate)."""
        out = []
        for block in re.findall(r'event_name: "DUStateChange!"(.*?)\n\s*\}\s*\}\s*\}',
                                self.log.read_text(), re.S):
            args = dict(re.findall(r'key: "([^"]*)"\s*value: "([^"]*)"', block))
            if all(v(args.get(k.replace("_", "."))) if callable(v)
                   else args.get(k.replace("_", ".")) == v for k, v in want.items()):
                out.append(args)
        return out

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


class Controller:
    """A USP controller on the Broker's agent socket."""

    def __init__(self, broker, endpoint_id="proto::unlite-test-controller"):
        self.eid = endpoint_id
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(35)                 # obuspa answers a Service's silence in 30 s
        self.sock.connect(broker.agent)
        self.reader, self.pending, self.n = codec.FrameReader(), [], 0
        self.sock.sendall(codec.frame(codec.TLV_HANDSHAKE, self.eid.encode()))
        self.broker = self._next(codec.TLV_HANDSHAKE).decode()

    def _next(self, want):
        while True:
            while self.pending:
                t, v = self.pending.pop(0)
                if t == want:
                    return v
            data = self.sock.recv(65536)
            if not data:
                raise OSError("the Broker closed the connection")
            self.pending += self.reader.feed(data)

    def request(self, msg_type, payload):
        """Send one request; (msg_type, payload) of the Broker's answer to it."""
        self.n += 1
        mid = f"ctl-{self.n}"
        m = codec.encode("Msg", codec.msg(mid, msg_type, payload))
        self.sock.sendall(codec.frame(codec.TLV_RECORD, codec.record(self.broker, self.eid, m)))
        while True:
            r = codec.open_record(self._next(codec.TLV_RECORD))
            if "msg" in r:
                got, t, p = codec.payload(r["msg"])
                if got == mid:
                    return t, p

    def get(self, *paths, max_depth=0):
        """{requested path: {resolved object path: {param: value}}} (or the error dict)."""
        t, p = self.request(MsgType.GET, {"param_paths": list(paths), "max_depth": max_depth})
        if t == MsgType.ERROR:
            raise OSError(f"USP Error {p.get('err_code')}: {p.get('err_msg')}")
        out = {}
        for res in p.get("req_path_results", []):
            if res.get("err_code"):
                out[res["requested_path"]] = {"err_code": res["err_code"],
                                              "err_msg": res.get("err_msg", "")}
            else:
                out[res["requested_path"]] = {r["resolved_path"]: r.get("result_params", {})
                                              for r in res.get("resolved_path_results", [])}
        return out

    def close(self):
        self.sock.close()
