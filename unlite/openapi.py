"""The OpenAPI 3.0 description of the REST API (served at ``/openapi.json``).

``tests/test_schema.py`` fuzzes a live daemon with this document (schemathesis): every
answer must be one described here (status, content type, body), so the document and the
API cannot drift apart unnoticed. The NF-FG schema says what the parser in
``unlite.model`` checks field by field — never more (what it says is invalid, the daemon
refuses) — and leaves to that parser what JSON Schema cannot say (a rule's ports must exist
in the same graph; key-case slips are read with a warning; the end-point object named by
``type`` is the one read).
"""
from __future__ import annotations

from .model.nffg import ID_RE, ID_RULE, PORT_ID_RE

ID = f"^{ID_RE.pattern}$"                       # graph, NF, end-point and rule ids
# An optional field's "" is absent, as the UN reads it (mac "", vnf_template "", ...).
PORT_ID = f"^{PORT_ID_RE.pattern}$"
MAC = "^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _resp(desc, schema=None, media="application/json"):
    r = {"description": desc}
    if schema:
        r["content"] = {media: {"schema": schema}}
    return r


def _obj(required=(), nullable=False, **props):
    """An object schema; a property name's '__' stands for '-' (big__switch: big-switch)."""
    o = {"type": "object", "properties": {k.replace("__", "-"): v for k, v in props.items()}}
    if required:
        o["required"] = list(required)
    if nullable:
        o["nullable"] = True
    return o


def _str(nullable=False, **kw):
    return {"type": "string", **({"nullable": True} if nullable else {}), **kw}


def _list(items, nullable=True, **kw):
    return {"type": "array", "items": items, **({"nullable": True} if nullable else {}), **kw}


ERRORS = {c: _resp(d, _ref("Error")) for c, d in (
    (400, "malformed or invalid request (for an NF-FG, path names the faulty value)"),
    (401, "tenants are configured and the call carries no valid token"),
    (403, "the graph id is taken, or the tenant may not use an end-point or a unify-control "
          "port (the message names nothing of another tenant's)"),
    (404, "no such graph (or it belongs to another tenant), NF or action"),
    (409, "conflicts with another graph (an end-point interface in use) or with the NF's "
          "state"),
    (413, "body larger than 1 MiB"),
    (429, "too many failed logins of this user name or from this address: try again after "
          "Retry-After seconds"),
    (422, "valid NF-FG this node cannot honour (unknown NF, missing interface or dependency, "
          "unsupported end-point type or match field, a lifecycle script failed)"),
    (503, "too many event streams open, or too many changes under way: try again later"),
    (507, "a state file could not be written (the folder is named: a full disk); nothing "
          "changed"))}


def _errors(*codes):
    return {str(c): ERRORS[c] for c in codes}


def _param(name, desc, schema, example=None):
    p = {"name": name, "in": "path", "required": True, "description": desc, "schema": schema}
    if example is not None:
        p["example"] = example
    return p


GID = _param("gid", f"graph id: {ID_RULE}", _str(pattern=ID), "home")
NF = _param("nf", "the NF's id in the graph", _str(pattern=ID), "br")
ACTION = _param("action", "stop, start, pause (freeze, ports down) or resume",
                _str(enum=["stop", "start", "pause", "resume"]), "pause")

# What a graph is made of (UN NF-FG; unknown fields are kept and reported as warnings).
PORT = _obj(("id",), id=_str(pattern=PORT_ID, description="e.g. inout:0 (template label: "
                                                          "index)"),
            name=_str(True, maxLength=256), mac=_str(True, pattern=f"^$|{MAC}"),
            unify__ip=_str(True, description="address/prefix of the port, e.g. 10.0.0.1/24"),
            trusted={"description": "true or false; true (the UN's trusted port): what the NF "
                                    "sends from this port leaves with the port's mac as its "
                                    "source (a mac is then required)"})
VNF = _obj(("id", "name"), id=_str(pattern=ID),
           name=_str(pattern=ID, description="the function (e.g. firewall, nat); the node "
                                             "picks an implementation (GET /capabilities)"),
           vnf_template=_str(True, description="template file name, e.g. firewall.json"),
           ports=_list(PORT),
           unify__env__variables=_list({"description": '{"variable": "NAME=value"} or '
                                                     '"NAME=value"'}),
           unify__control=_list(_obj(("host-tcp-port", "vnf-tcp-port"))))
ENDPOINT = _obj(("id", "type"), id=_str(pattern=ID), name=_str(True, maxLength=256),
                type=_str(enum=["interface", "vlan", "gre-tunnel", "internal", "host-stack"],
                          description="the object of the same name says more: interface "
                                      "{if-name}, vlan {vlan-id, if-name}, internal "
                                      "{internal-group}, host-stack {configuration, ipv4}, "
                                      "gre-tunnel {local-ip, remote-ip, gre-key}"))
RULE = _obj(("id", "match", "actions"), id=_str(pattern=ID),
            priority={"description": "0-65535, default 32768; a number or a string "
                                     "(\"0x0a\" is hex)"},
            match={**_obj(("port_in",), port_in=_str(description="endpoint:<id> or "
                                                                 "vnf:<nf>:<port>")),
                   "description": "port_in and any of the match fields of the UN (ether_type, "
                                  "vlan_id, source_ip, dest_port, protocol, ...)"},
            actions=_list({"type": "object", "minProperties": 1, "maxProperties": 1,
                           "description": "one of output_to_port (endpoint:<id> or "
                                          "vnf:<nf>:<port>), push_vlan (1-4094), pop_vlan "
                                          "(true)"}, nullable=False, minItems=1))
NFFG = _obj(("forwarding-graph",), forwarding__graph=_obj(
    id=_str(True, pattern=f"^$|{ID}", description="in PUT the URL's id wins; \"\" is absent"),
    name=_str(True, maxLength=256), VNFs=_list(_ref("VNF")),
    end__points=_list(_ref("EndPoint")),
    big__switch=_obj(nullable=True, flow__rules=_list(_ref("FlowRule")))))


def _rules():
    pairs = [("lan", "endpoint:lan", "vnf:br:inout:0"),
             ("lan-back", "vnf:br:inout:0", "endpoint:lan"),
             ("wan", "vnf:br:inout:1", "endpoint:wan"),
             ("wan-back", "endpoint:wan", "vnf:br:inout:1")]
    return [{"id": i, "priority": 10, "match": {"port_in": a},
             "actions": [{"output_to_port": b}]} for i, a, b in pairs]


EXAMPLE = {"forwarding-graph": {
    "id": "home", "name": "LAN to WAN through a bridge NF",
    "VNFs": [{"id": "br", "name": "bridge", "ports": [{"id": "inout:0"}, {"id": "inout:1"}]}],
    "end-points": [{"id": "lan", "type": "interface", "interface": {"if-name": "eth0"}},
                   {"id": "wan", "type": "interface", "interface": {"if-name": "eth1"}}],
    "big-switch": {"flow-rules": _rules()}}}

TOKEN: list[dict] = [{"token": []}, {"bearer": []}, {}]      # a token when tenants are configured
PUBLIC: list[dict] = []


def document(version):
    body = {"required": True, "content": {"application/json": {"schema": _ref("NFFG"),
                                                               "example": EXAMPLE}}}
    deployed = _resp("created or updated (201 both: the UN's client takes only 201 as done; "
                     "'created' tells which)", _obj(
        ("nffg-uuid",), nffg__uuid=_str(), created={"type": "boolean"}))
    anything = {"type": "object"}
    later = {"202": _resp("with Prefer: respond-async[, wait=N] (RFC 7240): not done within "
                          "N seconds and going on; its outcome: GET /NF-FG/status/{gid} "
                          "(change) and the events", _obj(
                              ("nffg-uuid", "status"), nffg__uuid=_str(), status=_str(
                                  description="deploying, updating, deleting, changing"),
                              change=_ref("Change")))}
    prefer = {"name": "Prefer", "in": "header", "required": False, "schema": _str(),
              "description": "respond-async, wait=N: answer 202 after N seconds (at most 60) "
                             "if the change is not done, and let it go on",
              "example": "respond-async, wait=5"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "unlite", "version": version,
                 "description": "Universal Node compatible NF-FG API of unlite, a native "
                                "network function node for OpenWrt gateways. Every error "
                                "is JSON {error, path} and changes nothing."},
        "paths": {
            "/NF-FG/": {
                "get": {"summary": "List graphs (a tenant: its own)",
                        "responses": {"200": _resp("graphs", _obj(
                            ("NF-FG",), NF__FG={"type": "array", "items": {
                                "allOf": [_ref("NFFG"), _obj(("nffg-uuid",),
                                                             nffg__uuid=_str())]}})),
                            **_errors(401)}},
                "post": {"summary": "Deploy a graph under a new id", "requestBody": body,
                         "responses": {"201": _resp("created under a new UUID, as the UN does (the "
                                                    "body's id is not used; Location: "
                                                    "/NF-FG/{uuid})", _obj(
                             ("nffg-uuid",), nffg__uuid=_str())),
                             **_errors(400, 401, 403, 409, 413, 422)}}},
            "/NF-FG/{gid}": {
                "parameters": [GID],
                "get": {"summary": "The graph as stored",
                        "responses": {"200": _resp("graph", _ref("NFFG")),
                                      **_errors(401, 404)}},
                "put": {"summary": "Create, or update by difference (a failed update keeps "
                                   "the running version)", "requestBody": body,
                        "parameters": [prefer],
                        "responses": {"201": deployed, **later,
                                      **_errors(400, 401, 403, 409, 413, 422, 503, 507)}},
                "delete": {"summary": "Remove the graph and every kernel object it made",
                           "parameters": [prefer],
                           "responses": {"204": _resp("deleted"), **later,
                                         **_errors(401, 404, 503)}}},
            "/graphs": {"get": {
                "summary": "One line per graph (deployed, failed or being deployed): what "
                           "ubus call unlite list and the LuCI page show",
                "responses": {"200": _resp("graphs", _obj(("graphs",), graphs={
                    "type": "array", "items": _ref("Summary")})), **_errors(401)}}},
            "/NF-FG/status/{gid}": {
                "parameters": [GID],
                "get": {"summary": "Per-NF state and per-rule counters",
                        "responses": {"200": _resp("status", _ref("Status")),
                                      **_errors(401, 404)}}},
            "/NF-FG/{gid}/VNFs/{nf}/{action}": {
                "parameters": [GID, NF, ACTION],
                "post": {"summary": "Stop, start, pause (freeze, ports down) or resume one NF "
                                    "of a running graph", "parameters": [prefer],
                         "responses": {"200": _resp("the NF's status", _ref("NFStatus")),
                                       **later, **_errors(401, 404, 409, 422, 503)}}},
            "/login": {"post": {
                "summary": "Trade a tenant's name and token for a session token (when tenants "
                           "are configured)", "security": PUBLIC,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _obj(("username", "password"), username=_str(),
                                   password=_str())}}},
                "responses": {"200": _resp("the session token, bare (as the UN's; also in "
                                           "the X-Auth-Token header)", _str(),
                                           media="text/plain; charset=utf-8"),
                              **_errors(400, 413, 429),
                              "401": _resp("unknown user or wrong password", _ref("Error"))}}},
            "/events": {"get": {
                "summary": "Server-sent events: graph (created, updated, deleted, failed) and "
                           "NF state changes (a tenant: its own graphs')",
                "responses": {"200": {"description": "an endless stream: event graph, data "
                                                     "{id, event, status, error?}; event nf, "
                                                     "data {graph, nf, state, fault?}; a "
                                                     "comment every 15 s",
                                      "content": {"text/event-stream": {}}},
                              **_errors(401, 503)}}},
            "/capabilities": {"get": {"summary": "Functional, infrastructure and resource "
                                                 "capabilities",
                                      "responses": {"200": _resp("capabilities", _obj(
                                          ("functional-capabilities", "infrastructure",
                                           "resources"),
                                          functional__capabilities={"type": "array",
                                                                   "items": anything},
                                          infrastructure=anything, resources=anything)),
                                          **_errors(401)}}},
            "/nnfs": {"get": {"summary": "NNF catalog",
                              "responses": {"200": _resp("catalog", _obj(
                                  ("nnfs",), nnfs={"type": "array", "items": anything})),
                                  **_errors(401)}}},
            "/healthz": {"get": {"summary": "Liveness", "security": PUBLIC,
                                 "responses": {"200": _resp("ok", _obj(
                                     ("status",), status=_str(), version=_str(),
                                     graphs={"type": "integer"}))}}},
            "/openapi.json": {"get": {"summary": "This document", "security": PUBLIC,
                                      "responses": {"200": _resp("OpenAPI 3.0", anything)}}},
            "/ui/{name}": {"get": {
                "summary": "The dashboard's files (GET /ui/ is index.html; /ui redirects there)",
                "security": PUBLIC,
                "parameters": [_param("name", "a file of the dashboard",
                                      _str(), "index.html")],
                "responses": {"200": {"description": "the file", "content": {
                    t: {"schema": _str()} for t in ("text/html; charset=utf-8",
                                                    "text/javascript; charset=utf-8",
                                                    "text/css; charset=utf-8")}},
                    **_errors(404)}}},
        },
        "security": TOKEN,
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _obj(("error",), error=_str(), path=_str(True), fault=_str(
                    description="FailureOnStart, DependencyFailure, Unstartable, ..."),
                    fault__detail={"description": "a failed script's last stderr lines"},
                    change=_ref("Change")),
                "Change": _obj(("op", "state"), nullable=True, op=_str(
                    enum=["put", "delete"]), state=_str(
                    enum=["queued", "running", "done", "failed"]),
                    started={"type": "number"}, finished={"type": "number"},
                    error=_str(True), path=_str(True),
                    status={"type": "integer", "nullable": True}),
                "Summary": _obj(("id", "status"), id=_str(), name=_str(True), status=_str(
                    description="complete, failed, deploying, updating, deleting"),
                    vnfs={"type": "integer"}, end__points={"type": "integer"},
                    flow__rules={"type": "integer"},
                    faults={"type": "array", "items": _obj(vnf=_str(True), fault=_str(True))},
                    change=_ref("Change")),
                "NFFG": NFFG, "VNF": VNF, "EndPoint": ENDPOINT, "FlowRule": RULE,
                "Status": _obj(("id", "status"), id=_str(), status=_str(
                    description="complete, failed, deploying, updating, ..."), backend=_str(),
                    percentage_completed={"type": "integer", "description":
                                          "100 once complete (the UN's field)"},
                    error=_str(description="why a graph failed at restore"),
                    VNFs={"type": "array", "items": _ref("NFStatus")},
                    flow__rules={"type": "array", "items": _obj(
                        ("id",), id=_str(), priority={"type": "integer"},
                        packets={"type": "integer", "nullable": True},
                        bytes={"type": "integer", "nullable": True})},
                    warnings={"type": "array", "items": _str()}, change=_ref("Change")),
                "NFStatus": _obj(("id", "state"), id=_str(), name=_str(), state=_str(
                    description="Idle, Starting, Active, Stopping, Paused, Failed"),
                    fault=_str(True), fault__detail={"description": "a failed script's last "
                                                                    "stderr lines"},
                    netns=_str(True), ports={"type": "array", "items": anything})},
        },
    }
