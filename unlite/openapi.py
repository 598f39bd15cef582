"""The OpenAPI 3.0 description of the REST API (served at ``/openapi.json``)."""
from __future__ import annotations


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _resp(desc, schema=None):
    r = {"description": desc}
    if schema:
        r["content"] = {"application/json": {"schema": schema}}
    return r


ERRORS = {str(c): _resp(d, _ref("Error")) for c, d in (
    (400, "malformed or invalid NF-FG (path names the fault)"),
    (404, "no such graph"), (409, "conflicts with another graph"),
    (413, "body too large"),
    (422, "valid NF-FG this node cannot honour (unknown NF, missing interface or dependency, "
          "unsupported endpoint type or match field)"))}

GID = {"name": "gid", "in": "path", "required": True,
       "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}}


def document(version):
    body = {"required": True, "content": {"application/json": {"schema": _ref("NFFG")}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "unlite", "version": version,
                 "description": "Universal Node compatible NF-FG API of unlite, a native "
                                "network function node for OpenWrt gateways."},
        "paths": {
            "/NF-FG/": {
                "get": {"summary": "List graphs",
                        "responses": {"200": _resp("graphs", {"type": "object", "properties": {
                            "NF-FG": {"type": "array", "items": _ref("NFFG")}}})}},
                "post": {"summary": "Deploy a graph under a new id", "requestBody": body,
                         "responses": {"201": _resp("created", {"type": "object", "properties": {
                             "nffg-uuid": {"type": "string"}}}), **ERRORS}}},
            "/NF-FG/{gid}": {
                "parameters": [GID],
                "get": {"summary": "The graph as stored",
                        "responses": {"200": _resp("graph", _ref("NFFG")), "404": ERRORS["404"]}},
                "put": {"summary": "Create, or update by difference", "requestBody": body,
                        "responses": {"201": _resp("created"), "200": _resp("updated"),
                                      **ERRORS}},
                "delete": {"summary": "Remove the graph and every kernel object it made",
                           "responses": {"204": _resp("deleted"), "404": ERRORS["404"]}}},
            "/NF-FG/status/{gid}": {
                "parameters": [GID],
                "get": {"summary": "Per-NF state and per-rule counters",
                        "responses": {"200": _resp("status", _ref("Status")),
                                      "404": ERRORS["404"]}}},
            "/NF-FG/{gid}/VNFs/{nf}/{action}": {
                "parameters": [GID, {"name": "nf", "in": "path", "required": True,
                                     "schema": GID["schema"]},
                               {"name": "action", "in": "path", "required": True,
                                "schema": {"type": "string",
                                           "enum": ["stop", "start", "pause", "resume"]}}],
                "post": {"summary": "Stop, start, pause (freeze, ports down) or resume one NF "
                                    "of a running graph",
                         "responses": {"200": _resp("the NF's status", {"type": "object"}),
                                       "404": ERRORS["404"],
                                       "409": _resp("not allowed in the NF's state",
                                                    _ref("Error")),
                                       "422": ERRORS["422"]}}},
            "/login": {"post": {
                "summary": "Trade a tenant's name and token for a session token (when tenants "
                           "are configured)", "security": [],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["username", "password"], "properties": {
                        "username": {"type": "string"}, "password": {"type": "string"}}}}}},
                "responses": {"200": _resp("session token", {"type": "object", "properties": {
                    "token": {"type": "string"}}}), "401": _resp("refused", _ref("Error"))}}},
            "/events": {"get": {"summary": "Server-sent events: graph and NF state changes",
                                "responses": {"200": {"description": "text/event-stream"}}}},
            "/capabilities": {"get": {"summary": "Functional, infrastructure and resource "
                                                 "capabilities",
                                      "responses": {"200": _resp("capabilities",
                                                                 {"type": "object"})}}},
            "/nnfs": {"get": {"summary": "NNF catalog",
                              "responses": {"200": _resp("catalog", {"type": "object"})}}},
            "/healthz": {"get": {"summary": "Liveness",
                                 "responses": {"200": _resp("ok", {"type": "object"})}}},
        },
        "security": [{"token": []}, {"bearer": []}, {}],
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"}, "path": {"type": "string", "nullable": True},
                "fault": {"type": "string"}}},
            "NFFG": {"type": "object", "required": ["forwarding-graph"], "properties": {
                "forwarding-graph": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"},
                    "VNFs": {"type": "array", "items": {"type": "object"}},
                    "end-points": {"type": "array", "items": {"type": "object"}},
                    "big-switch": {"type": "object", "properties": {
                        "flow-rules": {"type": "array", "items": {"type": "object"}}}}}}}},
            "Status": {"type": "object", "properties": {
                "id": {"type": "string"}, "status": {"type": "string"},
                "VNFs": {"type": "array", "items": {"type": "object"}},
                "flow-rules": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "packets": {"type": "integer", "nullable": True},
                    "bytes": {"type": "integer", "nullable": True}}}}}},
        }},
    }
