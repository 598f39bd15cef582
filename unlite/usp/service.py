"""unlite as a USP Service on a USP Broker (obuspa): one thread inside ``unlite serve``.

It connects to the Broker's controller Unix domain socket, sends the UDS handshake (its
endpoint id), Registers ``Device.SoftwareModules.`` (``Device.X_UNLITE_NFV.``, the same shape,
when the Broker answers 7029: an LCM owns it) and answers the Broker from memory (model.py):
Get, GetSupportedDM, GetInstances; Add/Get/Delete of its own ``Device.LocalAgent.Subscription.``
table (the Broker keeps its controllers' subscriptions there); Operate ``InstallDU(URL)`` and
``DeploymentUnit.{i}.Update(URL)`` (by difference), ``DeploymentUnit.{i}.Uninstall()``,
``ExecutionUnit.{i}.SetRequestedState(Idle|Active)`` and ``.Restart()`` (an NF's stop and
start), answered at once and run in a thread of their own, then a Notify OperationComplete
(and for a DU a ``DUStateChange!`` event) to the subscriptions that asked: a failure carries
TR-181's fault code (faults.py) and unlite's JSON path in its string. A DU's URL is file://,
http:// or https:// (fetch.py); ``Update()`` without one uses the DU's last. The whole face
acts as one caller, ``tenant`` (None: root, every graph; the Broker decides which of its
controllers may reach it, by their roles). A lost Broker is retried every ``RETRY`` seconds.
"""
import json
import logging
import os
import socket
import threading
import time
import uuid
from itertools import count

from . import codec, fetch, model
from .codec import MsgType
from .faults import Code, for_error

log = logging.getLogger("unlite.usp")
RETRY = 2.0
MAX_GRAPH_FILE = fetch.MAX_BYTES
NOT_SUPPORTED, INTERNAL, NOT_CREATABLE = Code.NOT_SUPPORTED, Code.INTERNAL, Code.NOT_CREATABLE
CMD_FAILURE, INVALID_ARGS, INVALID_PATH = Code.CMD_FAILURE, Code.INVALID_ARGS, Code.INVALID_PATH
ALREADY_IN_USE = Code.ALREADY_IN_USE


class UspService:
    def __init__(self, node, socket_path, endpoint_id="proto::unlite", instances=None,
                 version="", tenant=None):
        self.node, self.path, self.eid, self.version = node, socket_path, endpoint_id, version
        self.tenant = tenant             # who the face acts as (None: root)
        self.creds = {}                  # a DU's last Username, Password: memory only
        self.inst = model.Instances(instances)
        self.root = None                 # the registered root, once the Broker said yes
        self.broker = None               # the Broker's endpoint id (its handshake)
        self.subs = {}                   # Device.LocalAgent.Subscription.{i} -> params
        self.sub_next = 1
        self.sock = None
        self.wlock = threading.Lock()    # one writer at a time (the reader, command threads)
        self.ids = count(1)
        self.stopping = threading.Event()
        self.registered = threading.Event()
        self.thread = None
        self._vc_last = None             # the values ValueChange compares with (when watched)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        self.thread = threading.Thread(target=self._run, name="usp", daemon=True)
        self.thread.start()
        events = getattr(self.node, "events", None)
        if events is not None:
            self._events = events.subscribe()
            threading.Thread(target=self._value_changes, name="usp-events", daemon=True).start()
        return self

    def stop(self):
        self.stopping.set()
        if getattr(self, "_events", None) is not None:
            self.node.events.unsubscribe(self._events)
            self._events.offer(None)
        s = self.sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run(self):
        self._said = False               # an outage is logged once, until registered again
        while not self.stopping.is_set():
            try:
                self._session()
            except (OSError, codec.CodecError) as e:
                if not self.stopping.is_set() and not self._said:
                    self._said = True
                    log.warning("USP Broker at %s: %s (retrying every %.0f s)", self.path, e, RETRY)
            finally:
                self.registered.clear()
                if self.sock is not None:
                    self.sock.close()
                    self.sock = None
            self.stopping.wait(RETRY)

    def _session(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        self.sock, self.subs, self.sub_next, self.broker = s, {}, 1, None
        self._send_frame(codec.TLV_HANDSHAKE, self.eid.encode())
        reader = codec.FrameReader()
        roots = list(model.ROOTS)
        while not self.stopping.is_set():
            data = s.recv(65536)
            if not data:
                raise OSError("the Broker closed the connection")
            for t, v in reader.feed(data):
                if t == codec.TLV_HANDSHAKE:
                    self.broker = v.decode(errors="replace")
                    log.info("USP: connected to Broker %s on %s", self.broker, self.path)
                    self._register(roots[0])
                elif t == codec.TLV_RECORD and self.broker is not None:
                    self._record(v, roots)
                elif t == codec.TLV_ERROR:
                    raise OSError(f"the Broker refused: {v.decode(errors='replace')}")

    # -- sending ---------------------------------------------------------------------------
    def _send_frame(self, t, data):
        with self.wlock:
            if self.sock is None:
                raise OSError("not connected")
            self.sock.sendall(codec.frame(t, data))

    def _send(self, msg_id, msg_type, payload):
        m = codec.encode("Msg", codec.msg(msg_id, msg_type, payload))
        self._send_frame(codec.TLV_RECORD, codec.record(self.broker, self.eid, m))

    def _register(self, root):
        self.pending_root = root
        self._send(f"unlite-reg-{next(self.ids)}", MsgType.REGISTER,
                   {"allow_partial": False, "reg_paths": [{"path": root}]})

    # -- receiving -------------------------------------------------------------------------
    def _record(self, data, roots):
        try:
            r = codec.open_record(data)
        except codec.CodecError as e:         # R-UDS.23: say so, then drop the connection
            self._send_frame(codec.TLV_ERROR, f"bad USP record: {e}".encode())
            raise
        if "msg" not in r:
            return                                     # a connect or disconnect record
        try:
            mid, t, p = codec.payload(r["msg"])
        except codec.CodecError as e:
            log.warning("USP: %s", e)
            return
        if t == MsgType.REGISTER_RESP:
            return self._registered(p, roots)
        if t == MsgType.ERROR and mid.startswith("unlite-reg-"):
            return self._register_failed(p.get("err_code", 0), p.get("err_msg", ""), roots)
        if t in (MsgType.ERROR, MsgType.NOTIFY_RESP):
            return
        handler = {MsgType.GET: self._get, MsgType.GET_SUPPORTED_DM: self._gsdm,
                   MsgType.GET_INSTANCES: self._get_instances, MsgType.ADD: self._add,
                   MsgType.DELETE: self._delete, MsgType.OPERATE: self._operate}.get(t)
        if handler is None:
            return self._send(mid, MsgType.ERROR, {"err_code": NOT_SUPPORTED,
                                                   "err_msg": f"message type {t} not supported"})
        try:
            rt, ans = handler(p)
        except model.PathError as e:
            rt, ans = MsgType.ERROR, {"err_code": e.code, "err_msg": e.message}
        except Exception as e:                # noqa: BLE001 - a bug must not end the service
            log.exception("USP: message type %s", t)
            rt, ans = MsgType.ERROR, {"err_code": INTERNAL, "err_msg": f"internal error: {e}"}
        self._send(mid, rt, ans)

    def _registered(self, p, roots):
        for res in p.get("registered_path_results", []):
            st = res.get("oper_status", {})
            if "oper_success" in st:
                self.root = self.pending_root
                log.info("USP: registered %s", self.root)
                self._said = False
                self.registered.set()
                return
            f = st.get("oper_failure", {})
            return self._register_failed(f.get("err_code", 0), f.get("err_msg", ""), roots)

    def _register_failed(self, code, msg, roots):
        if code == ALREADY_IN_USE and self.pending_root == roots[0] and len(roots) > 1:
            log.info("USP: %s is owned by another Service (7029): registering %s",
                     roots[0], roots[1])
            return self._register(roots[1])
        log.error("USP: Register %s refused: %s %s", self.pending_root, code, msg)

    # -- the data model --------------------------------------------------------------------
    def objects(self):
        objs = model.snapshot(self.node, self.root or model.ROOTS[0], self.inst, self.version,
                              self.tenant)
        for n, s in self.subs.items():
            objs[f"{model.SUBSCRIPTIONS}{n}."] = dict(s)
        return objs

    def known(self):
        return model.schema_paths(self.root or model.ROOTS[0])

    def _get(self, p):
        objs = self.objects()
        results = []
        for path in p.get("param_paths", []):
            try:
                found = model.resolve(objs, path, self.known(), p.get("max_depth", 0))
                results.append({"requested_path": path, "resolved_path_results": [
                    {"resolved_path": o, "result_params": v} for o, v in found
                    if v or path.endswith(".")]})
            except model.PathError as e:
                results.append({"requested_path": path, "err_code": e.code, "err_msg": e.message})
        return MsgType.GET_RESP, {"req_path_results": results}

    def _gsdm(self, p):
        root = self.root or model.ROOTS[0]
        out = []
        for req in p.get("obj_paths", []):
            objs = model.supported(root, req)
            if objs:
                out.append({"req_obj_path": req, "data_model_inst_uri": "urn:unlite:nfv-1",
                            "supported_objs": objs})
            else:
                out.append({"req_obj_path": req, "err_code": INVALID_PATH,
                            "err_msg": f"not supported: {req}"})
        return MsgType.GET_SUPPORTED_DM_RESP, {"req_obj_results": out}

    def _get_instances(self, p):
        objs = self.objects()
        out = []
        for req in p.get("obj_paths", []):
            try:
                found = [o for o, _ in model.resolve(objs, req, self.known())]
            except model.PathError as e:
                out.append({"requested_path": req, "err_code": e.code, "err_msg": e.message})
                continue
            depth = len(req.rstrip(".").split("."))
            insts = [o for o in found if o.rstrip(".").rsplit(".", 1)[-1].isdigit() and
                     (not p.get("first_level_only") or len(o.rstrip(".").split(".")) <= depth + 2)]
            out.append({"requested_path": req,
                        "curr_insts": [{"instantiated_obj_path": o} for o in insts]})
        return MsgType.GET_INSTANCES_RESP, {"req_path_results": out}

    def _add(self, p):
        out = []
        for obj in p.get("create_objs", []):
            path = obj.get("obj_path", "")
            if path != model.SUBSCRIPTIONS:
                out.append({"requested_path": path, "oper_status": {"oper_failure": {
                    "err_code": NOT_CREATABLE, "err_msg": f"cannot add to {path}"}}})
                continue
            n = self.sub_next
            self.sub_next += 1
            self.subs[n] = {s.get("param", ""): s.get("value", "")
                            for s in obj.get("param_settings", [])}
            if self.subs[n].get("NotifType") == "ValueChange" and self._vc_last is None:
                self._vc_last = self._params()
            out.append({"requested_path": path, "oper_status": {"oper_success": {
                "instantiated_path": f"{path}{n}.", "unique_keys": {}}}})
        return MsgType.ADD_RESP, {"created_obj_results": out}

    def _delete(self, p):
        out = []
        for path in p.get("obj_paths", []):
            gone = [n for n in self.subs if _match_ref(path, f"{model.SUBSCRIPTIONS}{n}.")]
            for n in gone:
                del self.subs[n]
            out.append({"requested_path": path, "oper_status": {"oper_success": {
                "affected_paths": [f"{model.SUBSCRIPTIONS}{n}." for n in gone]}}})
        return MsgType.DELETE_RESP, {"deleted_obj_results": out}

    # -- commands --------------------------------------------------------------------------
    def _operate(self, p):
        cmd, key = p.get("command", ""), p.get("command_key", "")
        root = self.root or model.ROOTS[0]
        args = p.get("input_args", {})
        fail = None
        if cmd == root + "InstallDU()":
            url = args.get("URL", "")
            job = lambda: self._install(url, args)                              # noqa: E731
            if not url:
                fail = (INVALID_ARGS, "InstallDU: URL is required")
        elif cmd.startswith(root + "DeploymentUnit.") and \
                cmd.endswith((".Uninstall()", ".Update()")):
            num, _, verb = cmd[len(root + "DeploymentUnit."):].partition(".")
            gid = self.inst.key_of("du", int(num)) if num.isdigit() else None
            if gid is None or gid not in self.node.ids(self.tenant):
                return MsgType.ERROR, {"err_code": INVALID_PATH, "err_msg": f"no such DU: {cmd}"}
            if verb == "Uninstall()":
                job = lambda: self._uninstall(gid)                              # noqa: E731
            else:
                url = args.get("URL", "")
                if not url:                     # the last URL, and its credentials
                    url = self.inst.url(gid)
                    user, pw = self.creds.get(gid, ("", ""))
                    args = {"Username": user, "Password": pw, **args}
                job = lambda: self._update(gid, url, args)                      # noqa: E731
                if not url:
                    fail = (INVALID_ARGS, "Update: URL is required (this DU has no last URL)")
        elif cmd.startswith(root + "ExecutionUnit.") and cmd.endswith((".SetRequestedState()",
                                                                        ".Restart()")):
            num, _, verb = cmd[len(root + "ExecutionUnit."):].partition(".")
            gnf = self._eu(self.inst.key_of("eu", int(num)) if num.isdigit() else None)
            if gnf is None:
                return MsgType.ERROR, {"err_code": INVALID_PATH, "err_msg": f"no such EU: {cmd}"}
            want = args.get("RequestedState", "")
            if verb == "Restart()":
                job = lambda: self._nf(gnf, ("stop", "start"))                  # noqa: E731
            elif want in ("Idle", "Active"):
                job = lambda: self._nf(gnf, ("stop",) if want == "Idle" else ("start",))  # noqa
            else:
                fail = (INVALID_ARGS, f"SetRequestedState: RequestedState must be Idle or "
                        f"Active, not '{want}'")
        else:
            return MsgType.ERROR, {"err_code": INVALID_PATH, "err_msg": f"no such command: {cmd}"}
        if fail:
            res = {"executed_command": cmd,
                   "cmd_failure": {"err_code": fail[0], "err_msg": fail[1]}}
            return MsgType.OPERATE_RESP, {"operation_results": [res]}
        obj, name = cmd.rsplit(".", 1) if not cmd.endswith(".InstallDU()") \
            else (root[:-1], "InstallDU()")
        threading.Thread(target=self._complete, args=(obj + ".", name, key, job),
                         name="usp-cmd", daemon=True).start()
        return MsgType.OPERATE_RESP, {"operation_results": [
            {"executed_command": cmd, "req_obj_path": "Device.LocalAgent.Request."}]}

    def _complete(self, obj, name, key, job):
        start = _now()
        gid = None
        try:
            res = job() or {}
            gid = res.get("DUID")
            out = {"req_output_args": {"output_args": res}}
            fault = (0, "")
        except CommandFailed as e:
            out = {"cmd_failure": {"err_code": e.code, "err_msg": e.message}}
            gid, fault = e.gid, (e.code, e.message)
        except Exception as e:                       # noqa: BLE001 - said to the controller
            log.exception("USP: %s%s", obj, name)
            out = {"cmd_failure": {"err_code": INTERNAL, "err_msg": f"{type(e).__name__}: {e}"}}
            fault = (INTERNAL, out["cmd_failure"]["err_msg"])
        self._notify("OperationComplete", obj + name, {
            "oper_complete": {"obj_path": obj, "command_name": name, "command_key": key, **out}})
        root = self.root or model.ROOTS[0]
        op = {"InstallDU()": "Install", "Update()": "Update", "Uninstall()": "Uninstall"}.get(name)
        if op is None:
            return                                   # an EU's command: no DU changed state
        self._notify("Event", root + model.DU_STATE_CHANGE[0],
                     {"event": {"obj_path": root, "event_name": model.DU_STATE_CHANGE[0],
                                "params": self._du_state(gid, op, fault, start)}})

    def _du_state(self, gid, op, fault, start):
        """DUStateChange!'s arguments for graph ``gid`` after operation ``op``."""
        objs = self.objects()
        du = next((p for p, v in objs.items() if ".DeploymentUnit." in p and
                   v.get("DUID") == gid), "") if gid else ""
        v = objs.get(du, {})
        installed = bool(du)
        return {"UUID": model.du_uuid(gid) if gid else "", "DeploymentUnitRef": du[:-1],
                "Version": "", "CurrentState": ("Installed" if installed else "Uninstalled")
                if not fault[0] or installed else "Failed",
                "Resolved": v.get("Resolved", "false"),
                "ExecutionUnitRefList": v.get("ExecutionUnitList", ""),
                "StartTime": start, "CompleteTime": _now(), "OperationPerformed": op,
                "Fault.FaultCode": str(fault[0]), "Fault.FaultString": fault[1]}

    def _notify(self, kind, path, body):
        """Send a Notify to every enabled subscription of ``kind`` naming ``path``."""
        for s in list(self.subs.values()):
            if s.get("NotifType") != kind or s.get("Enable", "true") != "true":
                continue
            if any(_match_ref(ref.strip(), path) for ref in s.get("ReferenceList", "").split(",")):
                try:
                    self._send(f"unlite-notify-{next(self.ids)}", MsgType.NOTIFY,
                               {"subscription_id": s.get("ID", ""), "send_resp": False, **body})
                except OSError as e:
                    log.warning("USP: %s %s not sent: %s", kind, path, e)

    def _install(self, url, args):
        want = args.get("UUID", "")
        if want:
            try:
                uuid.UUID(want)
            except ValueError:
                raise CommandFailed(Code.INVALID_UUID,
                                    f"UUID: '{want}' is not an RFC 4122 UUID") from None
        ee = args.get("ExecutionEnvRef", "").rstrip(".")
        root = self.root or model.ROOTS[0]
        if ee and ee != root + "ExecEnv.1":
            raise CommandFailed(Code.UNKNOWN_EE, f"ExecutionEnvRef: '{ee}' is not "
                                f"{root}ExecEnv.1 (unlite's only one)")
        doc = read_graph(url, None, args.get("Username", ""), args.get("Password", ""))
        fg = doc.get("forwarding-graph") if isinstance(doc, dict) else None
        gid = fg.get("id") if isinstance(fg, dict) else None
        if not isinstance(gid, str) or not gid:
            raise CommandFailed(Code.CORRUPTED, "$.forwarding-graph.id: the graph needs an id")
        if want and want.lower() != model.du_uuid(gid):
            raise CommandFailed(Code.INVALID_UUID, f"UUID: '{want}' is not this graph's: "
                                f"{model.du_uuid(gid)} (v5 of '{gid}' in unlite's namespace)")
        c = self.node.changes.get(gid)
        if gid in self.node.ids(self.tenant) or c and c.pending and self._sees(gid):
            raise CommandFailed(Code.DUPLICATE_DU, f"$.forwarding-graph.id: '{gid}' is "
                                "installed already: Update() its DU instead", gid)
        _node_call(self.node.put, gid, doc, self.tenant, gid=gid)
        self._remember(gid, url, args)
        return {"DUID": gid, "UUID": model.du_uuid(gid)}

    def _remember(self, gid, url, args):
        """The DU's URL (on flash, with its instance numbers) and credentials (memory only:
        after a restart an Update() of a protected URL needs them again)."""
        self.inst.set_url(gid, url)
        self.creds[gid] = (args.get("Username", ""), args.get("Password", ""))

    def _update(self, gid, url, args):
        self._installed(gid)
        doc = read_graph(url, gid, args.get("Username", ""), args.get("Password", ""))
        fg = doc.get("forwarding-graph") if isinstance(doc, dict) else None
        new = fg.get("id", gid) if isinstance(fg, dict) else gid
        if new != gid:
            raise CommandFailed(Code.CORRUPTED, f"$.forwarding-graph.id: '{new}' is not this "
                                f"DU's graph '{gid}' (InstallDU makes another)", gid)
        _node_call(self.node.put, gid, doc, self.tenant, gid=gid)
        self._remember(gid, url, args)
        return {"DUID": gid, "UUID": model.du_uuid(gid)}

    def _installed(self, gid):
        """7229 unless the DU is Installed: no other change of its graph under way."""
        c = self.node.changes.get(gid)
        if c is not None and c.pending:
            raise CommandFailed(Code.INVALID_DU_STATE, f"DU '{gid}' is {c.progress()}: "
                                "try again once it is Installed", gid)

    def _sees(self, gid):
        c = self.node.changes.get(gid)
        t = self.tenant
        return t is None or t.admin or c is not None and c.tenant == t.owner

    def _params(self):
        """{parameter path: value} of the tree (not the subscription table)."""
        return {o + k: v for o, ps in self.objects().items()
                if not o.startswith(model.SUBSCRIPTIONS) for k, v in ps.items()}

    def _value_changes(self):
        """ValueChange: on each graph or NF event, the tree read again and every parameter
        that changed since the last look (or since the subscription was made) sent to the
        ValueChange subscriptions naming it (EU Status and faults, DU Status, the counts)."""
        while not self.stopping.is_set():
            item = self._events.get(timeout=5)
            if item is None:
                if self.stopping.is_set():
                    return
                continue
            last = self._vc_last
            if last is None or not self.registered.is_set():
                continue
            try:
                now = self._params()
            except Exception:                       # noqa: BLE001 - the next event retries
                log.exception("USP: ValueChange")
                continue
            self._vc_last = now
            for path, v in now.items():
                if path in last and last[path] != v:
                    self._notify("ValueChange", path, {"value_change": {
                        "param_path": path, "param_value": v}})

    def _eu(self, key):
        """(graph, NF) of an EU key '<graph>.<nf>' (a graph id may hold dots: looked up)."""
        if not key:
            return None
        seen = set(self.node.ids(self.tenant))
        for gid, d in dict(self.node.graphs).items():
            if gid not in seen:
                continue
            for nf in d.instances:
                if f"{gid}.{nf}" == key:
                    return gid, nf
        return None

    def _nf(self, gnf, actions):
        gid, nf = gnf
        for a in actions:
            st = _node_call(self.node.nf_action, gid, nf, a, self.tenant)
        return {"Status": model.EU_STATUS.get(st["state"], "Idle")}

    def _uninstall(self, gid):
        self._installed(gid)
        _node_call(self.node.delete, gid, self.tenant, gid=gid)
        self.creds.pop(gid, None)
        return {"DUID": gid}


class CommandFailed(Exception):
    def __init__(self, code, message, gid=None):
        super().__init__(message)
        self.code, self.message, self.gid = code, message, gid


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _node_call(fn, *args, gid=None):
    from ..errors import UnliteError
    try:
        return fn(*args)
    except UnliteError as e:            # any layer's refusal: its code, its path in the string
        code, message = for_error(e)
        raise CommandFailed(code, message, gid) from None


def read_graph(url, gid=None, username="", password=""):
    """An NF-FG JSON document from a URL (fetch.py): a failure is a CommandFailed with
    TR-181's transfer fault, a document that is not JSON 7219."""
    try:
        data = fetch.read(url, username, password, MAX_GRAPH_FILE)
    except fetch.FetchFailed as e:
        raise CommandFailed(e.code, e.message, gid) from None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CommandFailed(Code.CORRUPTED, f"$: {url} is not JSON: {e}", gid) from None


def _match_ref(ref, path):
    """A subscription's ReferenceList entry (object path, command path, '*' segments)
    against a path: the entry names it or an object above it."""
    if not ref:
        return False
    r, p = ref.rstrip(".").split("."), path.rstrip(".").split(".")
    if ref.endswith(".") and len(r) > len(p) or not ref.endswith(".") and len(r) != len(p):
        return False
    return all(a == b or (a == "*" and b.isdigit()) for a, b in zip(r, p))


def start(node, socket_path, state_dir=None, version="", tenant=None):
    """The service thread; None when no socket path is given."""
    if not socket_path:
        return None
    inst = os.path.join(state_dir, "usp-instances.json") if state_dir else None
    return UspService(node, socket_path, instances=inst, version=version,
                      tenant=tenant).start()
