"""The USP Service's protocol handling (unlite/usp/service.py) against a Broker played by the
test on a Unix socket: no root, no obuspa (tests/test_usp.py has the real one). Hostile or
unexpected input gets a USP error or a UDS error, and the service goes on."""
import socket
import sys

import pytest

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_usp_model import _inst, _node  # noqa: E402

from unlite.usp import codec  # noqa: E402
from unlite.usp.codec import MsgType  # noqa: E402
from unlite.usp.service import UspService  # noqa: E402

BROKER = "proto::fake-broker"


class FakeBroker:
    def __init__(self, path):
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(10)
        self.conn, self.reader, self.pending = None, codec.FrameReader(), []

    def accept(self, owned=()):
        """Handshake, then answer the Service's Registers (7029 for a path in ``owned``)."""
        self.conn, _ = self.srv.accept()
        self.conn.settimeout(10)
        self.reader, self.pending = codec.FrameReader(), []
        t, v = self.next()
        assert t == codec.TLV_HANDSHAKE and v == b"proto::unlite"
        self.conn.sendall(codec.frame(codec.TLV_HANDSHAKE, BROKER.encode()))
        while True:
            mid, mt, p = self.msg()
            assert mt == MsgType.REGISTER
            path = p["reg_paths"][0]["path"]
            st = ({"oper_failure": {"err_code": 7029, "err_msg": "owned"}} if path in owned
                  else {"oper_success": {"registered_path": path}})
            self.send(mid, MsgType.REGISTER_RESP, {"registered_path_results": [
                {"requested_path": path, "oper_status": st}]})
            if path not in owned:
                return path

    def next(self):
        while not self.pending:
            data = self.conn.recv(65536)
            if not data:
                return None, None
            self.pending += self.reader.feed(data)
        return self.pending.pop(0)

    def msg(self):
        t, v = self.next()
        assert t == codec.TLV_RECORD, (t, v)
        r = codec.open_record(v)
        assert r["to_id"] == BROKER and r["from_id"] == "proto::unlite"
        return codec.payload(r["msg"])

    def send(self, mid, mt, p):
        m = codec.encode("Msg", codec.msg(mid, mt, p))
        self.conn.sendall(codec.frame(codec.TLV_RECORD, codec.record("proto::unlite", BROKER, m)))

    def ask(self, mt, p):
        self.send("q", mt, p)
        return self.msg()

    def close(self):
        if self.conn:
            self.conn.close()
        self.srv.close()


@pytest.fixture
def pair(tmp_path):
    node = _node({"home": [_inst("fw", "Active")]})
    node.ids = lambda tenant=None: list(node.graphs)
    b = FakeBroker(str(tmp_path / "b.sock"))
    s = UspService(node, str(tmp_path / "b.sock")).start()
    yield b, s, node
    s.stop()
    b.close()


def test_registers_then_answers_and_falls_back_on_7029(pair):
    b, s, _ = pair
    assert b.accept(owned={"Device.SoftwareModules."}) == "Device.X_UNLITE_NFV."
    _, t, p = b.ask(MsgType.GET, {"param_paths": ["Device.X_UNLITE_NFV.DeploymentUnit.*.DUID"]})
    assert t == MsgType.GET_RESP
    assert p["req_path_results"][0]["resolved_path_results"] == [
        {"resolved_path": "Device.X_UNLITE_NFV.DeploymentUnit.1.",
         "result_params": {"DUID": "home"}}]
    _, t, p = b.ask(MsgType.GET_SUPPORTED_DM, {"obj_paths": ["Device.X_UNLITE_NFV."]})
    objs = p["req_obj_results"][0]["supported_objs"]
    assert [o["supported_obj_path"] for o in objs][:2] == ["Device.X_UNLITE_NFV.",
                                                           "Device.X_UNLITE_NFV.ExecEnv.{i}."]
    assert objs[0]["supported_events"][0]["event_name"] == "DUStateChange!"


def test_what_it_does_not_do_is_a_usp_error_and_it_goes_on(pair):
    b, s, node = pair
    b.accept()
    _, t, p = b.ask(MsgType.SET, {"update_objs": [{"obj_path": "Device.SoftwareModules.",
                                                   "param_settings": []}]})
    assert (t, p["err_code"]) == (MsgType.ERROR, 7001)
    _, t, p = b.ask(MsgType.ADD,
                    {"create_objs": [{"obj_path": "Device.SoftwareModules.DeploymentUnit."}]})
    assert p["created_obj_results"][0]["oper_status"]["oper_failure"]["err_code"] == 7019
    _, t, p = b.ask(MsgType.OPERATE,
                    {"command": "Device.SoftwareModules.DeploymentUnit.9.Uninstall()"})
    assert (t, p["err_code"]) == (MsgType.ERROR, 7026)
    _, t, p = b.ask(MsgType.OPERATE, {"command": "Device.SoftwareModules.InstallDU()"})
    assert p["operation_results"][0]["cmd_failure"]["err_code"] == 7027      # no URL
    node.graphs = None                                     # a bug: the read fails
    _, t, p = b.ask(MsgType.GET, {"param_paths": ["Device.SoftwareModules."]})
    assert (t, p["err_code"]) == (MsgType.ERROR, 7003)
    node.graphs = {}
    _, t, p = b.ask(MsgType.GET,
                    {"param_paths": ["Device.SoftwareModules.DeploymentUnitNumberOfEntries"]})
    assert p["req_path_results"][0]["resolved_path_results"][0]["result_params"] == \
        {"DeploymentUnitNumberOfEntries": "0"}


def test_a_record_that_is_not_protobuf_is_a_uds_error_then_a_new_connection(pair, monkeypatch):
    from unlite.usp import service
    monkeypatch.setattr(service, "RETRY", 0.1)          # its reconnect, sooner
    b, s, _ = pair
    b.accept()
    b.conn.sendall(codec.frame(codec.TLV_RECORD, b"\x0a\xff garbage"))
    t, v = b.next()
    assert t == codec.TLV_ERROR and b"bad USP record" in v
    assert b.next() == (None, None)                        # it hung up
    b.conn.close()
    assert b.accept() == "Device.SoftwareModules."         # and came back, registered again
