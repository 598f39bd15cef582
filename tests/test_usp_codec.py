"""The USP codec (unlite/usp/codec.py): round trips, proto3 wire rules, hostile bytes, the UDS
framing. No root, no obuspa (tests/test_usp.py talks to the real Broker)."""
import pytest

from unlite.usp import codec
from unlite.usp.codec import MsgType


def test_varint_fixed32_and_string_bytes_by_hand():
    # Get{param_paths: ["Device."], max_depth: 2}: field 1 LEN, field 2 fixed32 (wire type 5)
    b = codec.encode("Get", {"param_paths": ["Device."], "max_depth": 2})
    assert b == b"\x0a\x07Device.\x15\x02\x00\x00\x00"
    assert codec.decode("Get", b) == {"param_paths": ["Device."], "max_depth": 2}


def test_defaults_are_not_written_and_an_empty_submessage_is():
    assert codec.encode("Header", {"msg_id": "", "msg_type": 0}) == b""
    rec = codec.record("to", "from")                      # UDSConnect: an empty message, set
    assert codec.decode("Record", rec)["uds_connect"] == {}


@pytest.mark.parametrize("t,p", [
    (MsgType.GET_RESP, {"req_path_results": [{"requested_path": "Device.X.",
        "resolved_path_results": [{"resolved_path": "Device.X.A.1.",
                                   "result_params": {"Name": "n", "Status": "Active"}}]}]}),
    (MsgType.REGISTER, {"allow_partial": True, "reg_paths": [{"path": "Device.SoftwareModules."}]}),
    (MsgType.REGISTER_RESP, {"registered_path_results": [{"requested_path": "Device.S.",
        "oper_status": {"oper_failure": {"err_code": 7029, "err_msg": "owned"}}}]}),
    (MsgType.OPERATE, {"command": "Device.S.InstallDU()", "command_key": "k", "send_resp": True,
                       "input_args": {"URL": "file:///g.json"}}),
    (MsgType.OPERATE_RESP, {"operation_results": [
        {"executed_command": "Device.S.InstallDU()",
         "req_obj_path": "Device.LocalAgent.Request.1"}]}),
    (MsgType.NOTIFY, {"subscription_id": "1-2", "oper_complete": {"obj_path": "Device.S.",
        "command_name": "InstallDU()", "command_key": "k",
        "cmd_failure": {"err_code": 7223, "err_msg": "VNFs[0].vnf_template: missing"}}}),
    (MsgType.ERROR, {"err_code": 7000, "err_msg": "no"}),
    (MsgType.GET_SUPPORTED_DM_RESP, {"req_obj_results": [{"req_obj_path": "Device.S.",
        "supported_objs": [{"supported_obj_path": "Device.S.DeploymentUnit.{i}.",
                            "is_multi_instance": True,
                            "supported_params": [{"param_name": "UUID", "value_type": 8}],
                            "supported_commands": [{"command_name": "Uninstall()",
                                                    "command_type": 2}]}]}]}),
    (MsgType.ADD_RESP, {"created_obj_results": [{
        "requested_path": "Device.LocalAgent.Subscription.",
        "oper_status": {"oper_success": {"instantiated_path": "Device.LocalAgent.Subscription.1.",
                                         "unique_keys": {"ID": "x"}}}}]}),
    (MsgType.DELETE_RESP, {"deleted_obj_results": [{"requested_path": "Device.L.S.1.",
        "oper_status": {"oper_success": {"affected_paths": ["Device.L.S.1."]}}}]}),
])
def test_msg_round_trip_inside_a_record(t, p):
    m = codec.msg("id-1", t, p)
    rec = codec.record("agent", "service", codec.encode("Msg", m))
    r = codec.open_record(rec)
    assert (r["to_id"], r["from_id"], r["version"]) == ("agent", "service", codec.VERSION)
    assert codec.payload(r["msg"]) == ("id-1", t, p)


def test_unknown_fields_are_skipped():
    extra = b"\x58\x01" + b"\x62\x03abc"                  # field 11 varint, field 12 LEN
    assert codec.decode("Get", extra + b"\x0a\x01x") == {"param_paths": ["x"]}


@pytest.mark.parametrize("bad", [b"\x0a\x09short", b"\x15\x01", b"\x08", b"\x0a\x02\xff\xfe",
                                 b"\x0b", b"\xff" * 11, b"\x08\x01"])
def test_hostile_bytes_are_a_codec_error(bad):
    with pytest.raises(codec.CodecError):
        codec.decode("Get", bad)


def test_uds_frames_in_pieces_and_a_bad_sync():
    f = codec.frame(codec.TLV_HANDSHAKE, b"os::x") + codec.frame(codec.TLV_RECORD, b"\x01\x02")
    r = codec.FrameReader()
    got = [t for i in range(len(f)) for t in r.feed(f[i:i + 1])]
    assert got == [(1, b"os::x"), (3, b"\x01\x02")]
    assert f[:8] == b"_USP\x00\x00\x00\x0a"                # length = the TLV: 1 + 4 + 5 bytes
    with pytest.raises(codec.CodecError):
        codec.FrameReader().feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(codec.CodecError):
        codec.FrameReader().feed(b"_USP\xff\xff\xff\xff")


# Records obuspa (the Broker, make obuspa) sent to unlite's Service, captured from the socket:
# each decodes to what the Broker's own protocol trace showed and encodes back byte for byte.
REAL = __import__("pathlib").Path(__file__).parent / "data" / "usp"


@pytest.mark.parametrize("name,msg_type,check", [
    ("register_resp", MsgType.REGISTER_RESP, lambda p: p["registered_path_results"][0]
     ["oper_status"]["oper_success"]["registered_path"] == "Device.SoftwareModules."),
    ("get_supported_dm", MsgType.GET_SUPPORTED_DM,
     lambda p: p["obj_paths"] == ["Device.SoftwareModules."] and p["return_commands"]),
    ("get_subscriptions", MsgType.GET,
     lambda p: p == {"param_paths": ["Device.LocalAgent.Subscription."]}),
    ("add_subscription", MsgType.ADD, lambda p: {s["param"]: s["value"] for s in
     p["create_objs"][0]["param_settings"]}["NotifType"] == "OperationComplete"),
    ("get_instances", MsgType.GET_INSTANCES, lambda p: len(p["obj_paths"]) == 3),
    ("get_search", MsgType.GET,
     lambda p: p["param_paths"] == ['Device.SoftwareModules.DeploymentUnit.[DUID=="x"].UUID']),
    ("operate_install", MsgType.OPERATE, lambda p: p["input_args"] == {"URL": "file:///nonexistent.json"}
     and p["command"] == "Device.SoftwareModules.InstallDU()" and p["send_resp"]),
])
def test_records_obuspa_sent_decode_and_encode_back_byte_for_byte(name, msg_type, check):
    data = (REAL / f"{name}.bin").read_bytes()
    r = codec.open_record(data)
    assert (r["from_id"], r["to_id"]) == ("proto::broker-test", "proto::unlite")
    _, t, p = codec.payload(r["msg"])
    assert t == msg_type and check(p)
    assert codec.record(r["to_id"], r["from_id"], codec.encode("Msg", r["msg"])) == data
