"""USP (TR-369) messages as Python dicts: a protobuf wire codec for the few messages a USP
Service needs, stdlib only.

- ``SCHEMA`` is the .proto files (usp-record-1-4, usp-msg-1-4) as data: each message maps a
  field number to (name, kind, message-or-None, repeated). Kinds: string, bytes, bool, enum,
  fixed32, uint64, msg, map (map<string, string>, a dict). A oneof is its fields, of which a
  dict holds one.
- ``encode(name, dict)`` / ``decode(name, bytes)``: proto3 rules (defaults not written,
  unknown fields skipped, a truncated or malformed buffer is a ``CodecError``).
- ``record`` / ``open_record``: a Record (no-session, or UDSConnect) around a packed Msg;
  ``msg`` / ``msg_type``: a Msg's header and body; ``MsgType`` its numbers.
- ``frame`` / ``FrameReader``: the UDS MTP framing ("_USP", a 4-byte length, TLVs of type 1
  handshake, 2 error, 3 USP Record).
"""
import struct

VERSION = "1.3"


class CodecError(ValueError):
    pass


def _f(*fields):
    return {n: (name, kind, sub, rep) for n, name, kind, sub, rep in fields}


S, B, BOOL, E = "string", "bytes", "bool", "enum"
F32, U64, M, MAP = "fixed32", "uint64", "msg", "map"
R = True   # repeated
_ = False

SCHEMA = {
    "Record": _f((1, "version", S, None, _), (2, "to_id", S, None, _), (3, "from_id", S, None, _),
                 (4, "payload_security", E, None, _), (5, "mac_signature", B, None, _),
                 (6, "sender_cert", B, None, _),
                 (7, "no_session_context", M, "NoSessionContextRecord", _),
                 (12, "disconnect", M, "DisconnectRecord", _),
                 (13, "uds_connect", M, "Empty", _)),
    "NoSessionContextRecord": _f((2, "payload", B, None, _)),
    "DisconnectRecord": _f((1, "reason", S, None, _), (2, "reason_code", F32, None, _)),
    "Empty": {},
    "Msg": _f((1, "header", M, "Header", _), (2, "body", M, "Body", _)),
    "Header": _f((1, "msg_id", S, None, _), (2, "msg_type", E, None, _)),
    "Body": _f((1, "request", M, "Request", _), (2, "response", M, "Response", _),
               (3, "error", M, "Error", _)),
    "Request": _f((1, "get", M, "Get", _), (2, "get_supported_dm", M, "GetSupportedDM", _),
                  (3, "get_instances", M, "GetInstances", _), (4, "set", M, "Set", _),
                  (5, "add", M, "Add", _), (6, "delete", M, "Delete", _),
                  (7, "operate", M, "Operate", _), (8, "notify", M, "Notify", _),
                  (10, "register", M, "Register", _), (11, "deregister", M, "Deregister", _)),
    "Response": _f((1, "get_resp", M, "GetResp", _),
                   (2, "get_supported_dm_resp", M, "GetSupportedDMResp", _),
                   (3, "get_instances_resp", M, "GetInstancesResp", _),
                   (4, "set_resp", M, "SetResp", _), (5, "add_resp", M, "AddResp", _),
                   (6, "delete_resp", M, "DeleteResp", _),
                   (7, "operate_resp", M, "OperateResp", _),
                   (8, "notify_resp", M, "NotifyResp", _),
                   (10, "register_resp", M, "RegisterResp", _),
                   (11, "deregister_resp", M, "DeregisterResp", _)),
    "Error": _f((1, "err_code", F32, None, _), (2, "err_msg", S, None, _),
                (3, "param_errs", M, "ParamError", R)),
    "ParamError": _f((1, "param_path", S, None, _), (2, "err_code", F32, None, _),
                     (3, "err_msg", S, None, _)),
    "Get": _f((1, "param_paths", S, None, R), (2, "max_depth", F32, None, _)),
    "GetResp": _f((1, "req_path_results", M, "GetReqPathResult", R)),
    "GetReqPathResult": _f((1, "requested_path", S, None, _), (2, "err_code", F32, None, _),
                           (3, "err_msg", S, None, _),
                           (4, "resolved_path_results", M, "ResolvedPathResult", R)),
    "ResolvedPathResult": _f((1, "resolved_path", S, None, _), (2, "result_params", MAP, None, _)),
    "GetSupportedDM": _f((1, "obj_paths", S, None, R), (2, "first_level_only", BOOL, None, _),
                         (3, "return_commands", BOOL, None, _), (4, "return_events", BOOL, None, _),
                         (5, "return_params", BOOL, None, _),
                         (6, "return_unique_key_sets", BOOL, None, _)),
    "GetSupportedDMResp": _f((1, "req_obj_results", M, "GsdmReqObjResult", R)),
    "GsdmReqObjResult": _f((1, "req_obj_path", S, None, _), (2, "err_code", F32, None, _),
                           (3, "err_msg", S, None, _), (4, "data_model_inst_uri", S, None, _),
                           (5, "supported_objs", M, "SupportedObject", R)),
    "SupportedObject": _f((1, "supported_obj_path", S, None, _), (2, "access", E, None, _),
                          (3, "is_multi_instance", BOOL, None, _),
                          (4, "supported_commands", M, "SupportedCommand", R),
                          (5, "supported_events", M, "SupportedEvent", R),
                          (6, "supported_params", M, "SupportedParam", R),
                          (7, "divergent_paths", S, None, R),
                          (8, "unique_key_sets", M, "UniqueKeySet", R)),
    "SupportedParam": _f((1, "param_name", S, None, _), (2, "access", E, None, _),
                         (3, "value_type", E, None, _), (4, "value_change", E, None, _)),
    "SupportedCommand": _f((1, "command_name", S, None, _), (2, "input_arg_names", S, None, R),
                           (3, "output_arg_names", S, None, R), (4, "command_type", E, None, _)),
    "SupportedEvent": _f((1, "event_name", S, None, _), (2, "arg_names", S, None, R)),
    "UniqueKeySet": _f((1, "key_names", S, None, R)),
    "GetInstances": _f((1, "obj_paths", S, None, R), (2, "first_level_only", BOOL, None, _)),
    "GetInstancesResp": _f((1, "req_path_results", M, "GiReqPathResult", R)),
    "GiReqPathResult": _f((1, "requested_path", S, None, _), (2, "err_code", F32, None, _),
                          (3, "err_msg", S, None, _), (4, "curr_insts", M, "CurrInstance", R)),
    "CurrInstance": _f((1, "instantiated_obj_path", S, None, _), (2, "unique_keys", MAP, None, _)),
    "Set": _f((1, "allow_partial", BOOL, None, _), (2, "update_objs", M, "SetObject", R)),
    "SetObject": _f((1, "obj_path", S, None, _), (2, "param_settings", M, "ParamSetting", R)),
    "ParamSetting": _f((1, "param", S, None, _), (2, "value", S, None, _),
                       (3, "required", BOOL, None, _)),
    "SetResp": _f((1, "updated_obj_results", M, "ObjResult", R)),
    "Add": _f((1, "allow_partial", BOOL, None, _), (2, "create_objs", M, "SetObject", R)),
    "AddResp": _f((1, "created_obj_results", M, "ObjResult", R)),
    # AddResp/DeleteResp/RegisterResp share this shape: requested_path + a oneof failure/success
    "ObjResult": _f((1, "requested_path", S, None, _), (2, "oper_status", M, "OperStatus", _)),
    "OperStatus": _f((1, "oper_failure", M, "Failure", _), (2, "oper_success", M, "Success", _)),
    "Failure": _f((1, "err_code", F32, None, _), (2, "err_msg", S, None, _)),
    # the union of AddResp's, DeleteResp's and RegisterResp's OperationSuccess: distinct numbers
    # within each, read by the name the caller expects
    "Success": _f((1, "instantiated_path", S, None, _), (2, "param_errs", M, "ParamErr", R),
                  (3, "unique_keys", MAP, None, _)),
    "DeleteSuccess": _f((1, "affected_paths", S, None, R),
                        (2, "unaffected_path_errs", M, "UnaffectedErr", R)),
    "RegisterSuccess": _f((1, "registered_path", S, None, _)),
    "ParamErr": _f((1, "param", S, None, _), (2, "err_code", F32, None, _),
                   (3, "err_msg", S, None, _)),
    "UnaffectedErr": _f((1, "unaffected_path", S, None, _), (2, "err_code", F32, None, _),
                        (3, "err_msg", S, None, _)),
    "Delete": _f((1, "allow_partial", BOOL, None, _), (2, "obj_paths", S, None, R)),
    "DeleteResp": _f((1, "deleted_obj_results", M, "DeleteObjResult", R)),
    "DeleteObjResult": _f((1, "requested_path", S, None, _),
                          (2, "oper_status", M, "DeleteOperStatus", _)),
    "DeleteOperStatus": _f((1, "oper_failure", M, "Failure", _),
                           (2, "oper_success", M, "DeleteSuccess", _)),
    "Operate": _f((1, "command", S, None, _), (2, "command_key", S, None, _),
                  (3, "send_resp", BOOL, None, _), (4, "input_args", MAP, None, _)),
    "OperateResp": _f((1, "operation_results", M, "OperationResult", R)),
    "OperationResult": _f((1, "executed_command", S, None, _), (2, "req_obj_path", S, None, _),
                          (3, "req_output_args", M, "OutputArgs", _),
                          (4, "cmd_failure", M, "Failure", _)),
    "OutputArgs": _f((1, "output_args", MAP, None, _)),
    "Notify": _f((1, "subscription_id", S, None, _), (2, "send_resp", BOOL, None, _),
                 (3, "event", M, "Event", _), (4, "value_change", M, "ValueChange", _),
                 (5, "obj_creation", M, "ObjCreation", _), (6, "obj_deletion", M, "ObjDeletion", _),
                 (7, "oper_complete", M, "OperationComplete", _)),
    "Event": _f((1, "obj_path", S, None, _), (2, "event_name", S, None, _),
                (3, "params", MAP, None, _)),
    "ValueChange": _f((1, "param_path", S, None, _), (2, "param_value", S, None, _)),
    "ObjCreation": _f((1, "obj_path", S, None, _), (2, "unique_keys", MAP, None, _)),
    "ObjDeletion": _f((1, "obj_path", S, None, _)),
    "OperationComplete": _f((1, "obj_path", S, None, _), (2, "command_name", S, None, _),
                            (3, "command_key", S, None, _),
                            (4, "req_output_args", M, "OutputArgs", _),
                            (5, "cmd_failure", M, "Failure", _)),
    "NotifyResp": _f((1, "subscription_id", S, None, _)),
    "Register": _f((1, "allow_partial", BOOL, None, _), (2, "reg_paths", M, "RegPath", R)),
    "RegPath": _f((1, "path", S, None, _)),
    "RegisterResp": _f((1, "registered_path_results", M, "RegisterResult", R)),
    "RegisterResult": _f((1, "requested_path", S, None, _),
                         (2, "oper_status", M, "RegisterOperStatus", _)),
    "RegisterOperStatus": _f((1, "oper_failure", M, "Failure", _),
                             (2, "oper_success", M, "RegisterSuccess", _)),
    "Deregister": _f((1, "paths", S, None, R)),
}
MAP_ENTRY = _f((1, "key", S, None, _), (2, "value", S, None, _))


class MsgType:
    ERROR, GET, GET_RESP, NOTIFY, SET, SET_RESP, OPERATE, OPERATE_RESP = range(8)
    ADD, ADD_RESP, DELETE, DELETE_RESP = 8, 9, 10, 11
    GET_SUPPORTED_DM, GET_SUPPORTED_DM_RESP, GET_INSTANCES, GET_INSTANCES_RESP = 12, 13, 14, 15
    NOTIFY_RESP, REGISTER, REGISTER_RESP, DEREGISTER, DEREGISTER_RESP = 16, 19, 20, 21, 22


# ---- wire primitives ----

def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf, i):
    shift = n = 0
    while True:
        if i >= len(buf):
            raise CodecError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7
        if shift >= 70:
            raise CodecError("varint too long")


def _key(num, wt):
    return _varint(num << 3 | wt)


def _ld(num, data):
    return _key(num, 2) + _varint(len(data)) + data


def _encode_value(num, kind, sub, v):
    if kind == S:
        return _ld(num, v.encode())
    if kind == B:
        return _ld(num, bytes(v))
    if kind in (BOOL, E, U64):
        return _key(num, 0) + _varint(int(v))
    if kind == F32:
        return _key(num, 5) + struct.pack("<I", int(v) & 0xFFFFFFFF)
    if kind == M:
        return _ld(num, encode(sub, v))
    raise CodecError(f"kind {kind}")


def encode(name, d):
    """A dict as the protobuf bytes of message ``name`` (field order: by number)."""
    fields = SCHEMA[name] if name != "_map" else MAP_ENTRY
    out = bytearray()
    for num in sorted(fields):
        fname, kind, sub, rep = fields[num]
        v = d.get(fname)
        if v is None:
            continue
        if kind == MAP:
            for k in sorted(v):
                out += _ld(num, encode("_map", {"key": k, "value": v[k]}))
        elif rep:
            for item in v:
                out += _encode_value(num, kind, sub, item)
        elif kind == M:
            out += _ld(num, encode(sub, v))   # a set sub-message is written, even empty
        elif v not in ("", b"", 0, False):
            out += _encode_value(num, kind, sub, v)
    return bytes(out)


def decode(name, buf):
    """The protobuf bytes of message ``name`` as a dict (only the fields present, repeated
    ones as lists, maps as dicts); unknown fields are skipped."""
    fields = SCHEMA[name] if name != "_map" else MAP_ENTRY
    buf = memoryview(bytes(buf))
    out = {}
    i = 0
    while i < len(buf):
        k, i = _read_varint(buf, i)
        num, wt = k >> 3, k & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 5:
            if i + 4 > len(buf):
                raise CodecError("truncated fixed32")
            v = struct.unpack_from("<I", buf, i)[0]
            i += 4
        elif wt == 1:
            if i + 8 > len(buf):
                raise CodecError("truncated fixed64")
            v = struct.unpack_from("<Q", buf, i)[0]
            i += 8
        elif wt == 2:
            n, i = _read_varint(buf, i)
            if i + n > len(buf):
                raise CodecError("truncated field")
            v = bytes(buf[i:i + n])
            i += n
        else:
            raise CodecError(f"wire type {wt}")
        if num not in fields:
            continue
        fname, kind, sub, rep = fields[num]
        want = 2 if kind in (S, B, M, MAP) else 5 if kind == F32 else 0
        if wt != want:
            raise CodecError(f"{name}.{fname}: wire type {wt}")
        if kind == S:
            try:
                v = v.decode()
            except UnicodeDecodeError:
                raise CodecError(f"{name}.{fname}: not UTF-8") from None
        elif kind == BOOL:
            v = bool(v)
        elif kind == M:
            v = decode(sub, v)
        elif kind == MAP:
            e = decode("_map", v)
            out.setdefault(fname, {})[e.get("key", "")] = e.get("value", "")
            continue
        if rep:
            out.setdefault(fname, []).append(v)
        else:
            out[fname] = v
    return out


# ---- Msg and Record ----

_BODY = {  # msg_type -> (body part, field in it)
    MsgType.GET: ("request", "get"), MsgType.GET_RESP: ("response", "get_resp"),
    MsgType.NOTIFY: ("request", "notify"), MsgType.SET: ("request", "set"),
    MsgType.SET_RESP: ("response", "set_resp"), MsgType.OPERATE: ("request", "operate"),
    MsgType.OPERATE_RESP: ("response", "operate_resp"), MsgType.ADD: ("request", "add"),
    MsgType.ADD_RESP: ("response", "add_resp"), MsgType.DELETE: ("request", "delete"),
    MsgType.DELETE_RESP: ("response", "delete_resp"),
    MsgType.GET_SUPPORTED_DM: ("request", "get_supported_dm"),
    MsgType.GET_SUPPORTED_DM_RESP: ("response", "get_supported_dm_resp"),
    MsgType.GET_INSTANCES: ("request", "get_instances"),
    MsgType.GET_INSTANCES_RESP: ("response", "get_instances_resp"),
    MsgType.NOTIFY_RESP: ("response", "notify_resp"),
    MsgType.REGISTER: ("request", "register"), MsgType.REGISTER_RESP: ("response", "register_resp"),
    MsgType.DEREGISTER: ("request", "deregister"),
    MsgType.DEREGISTER_RESP: ("response", "deregister_resp"),
}


def msg(msg_id, msg_type, payload):
    """A Msg dict: header + the body that ``msg_type`` names (an Error's payload is the Error)."""
    if msg_type == MsgType.ERROR:
        body = {"error": payload}
    else:
        part, field = _BODY[msg_type]
        body = {part: {field: payload}}
    return {"header": {"msg_id": msg_id, "msg_type": msg_type}, "body": body}


def payload(m):
    """(msg_id, msg_type, the body's message dict) of a decoded Msg."""
    h = m.get("header", {})
    t = h.get("msg_type", 0)
    body = m.get("body", {})
    if t == MsgType.ERROR:
        return h.get("msg_id", ""), t, body.get("error", {})
    part, field = _BODY.get(t, (None, None))
    if part is None:
        raise CodecError(f"message type {t} not handled")
    return h.get("msg_id", ""), t, body.get(part, {}).get(field, {})


def record(to_id, from_id, packed_msg=None):
    """A Record's bytes: no-session around ``packed_msg``, or UDSConnect when it is None."""
    r = {"version": VERSION, "to_id": to_id, "from_id": from_id}
    if packed_msg is None:
        r["uds_connect"] = {}
    else:
        r["no_session_context"] = {"payload": packed_msg}
    return encode("Record", r)


def open_record(data):
    """A Record's dict; its no-session Msg decoded as ``msg`` (None for a connect record)."""
    r = decode("Record", data)
    if "no_session_context" in r:
        r["msg"] = decode("Msg", r["no_session_context"].get("payload", b""))
    return r


# ---- UDS MTP framing ----

SYNC = b"_USP"
TLV_HANDSHAKE, TLV_ERROR, TLV_RECORD = 1, 2, 3
MAX_FRAME = 4 << 20


def frame(tlv_type, data):
    """A UDS frame holding one TLV."""
    tlv = struct.pack(">BI", tlv_type, len(data)) + data
    return SYNC + struct.pack(">I", len(tlv)) + tlv


class FrameReader:
    """Feed bytes, get (type, value) TLVs of whole frames; a bad sync or a frame over
    MAX_FRAME raises CodecError (the caller drops the connection)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 8:
            if self.buf[:4] != SYNC:
                raise CodecError("UDS frame without _USP sync")
            n = struct.unpack_from(">I", self.buf, 4)[0]
            if n > MAX_FRAME:
                raise CodecError(f"UDS frame of {n} bytes")
            if len(self.buf) < 8 + n:
                break
            body = bytes(self.buf[8:8 + n])
            del self.buf[:8 + n]
            i = 0
            while i + 5 <= len(body):
                t, ln = struct.unpack_from(">BI", body, i)
                i += 5
                if i + ln > len(body):
                    raise CodecError("truncated TLV")
                out.append((t, body[i:i + ln]))
                i += ln
        return out
