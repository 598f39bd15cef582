"""Answers are compact JSON from the C encoder; indented only when asked (``?pretty``), for a
human at curl. In-process, through the WSGI app (no socket, no root)."""
from __future__ import annotations

import io
import json
import types

import pytest

from conftest import bridge_graph
from unlite import api
from unlite.node import NodeError


class Graphs:
    """The reads ``GET /NF-FG/`` and ``/graphs`` make, over stored documents."""

    def __init__(self, n):
        self.tenants = types.SimpleNamespace(enabled=False, authenticate=lambda token: None)
        self.docs = {f"g{i}": bridge_graph(f"g{i}") for i in range(n)}
        self.graphs = self.docs

    def ids(self, tenant=None):
        return sorted(self.docs)

    def get(self, gid, tenant=None):
        if gid not in self.docs:
            raise NodeError(f"no graph '{gid}'", status=404)
        return self.docs[gid]

    def summaries(self, tenant=None):
        return [{"id": g, "name": f"graph {g}", "status": "complete", "vnfs": 1,
                 "faults": []} for g in self.ids()]


def call(node, path, query=""):
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
           "SERVER_NAME": "t", "SERVER_PORT": "80", "wsgi.input": io.BytesIO(),
           "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
           "SERVER_PROTOCOL": "HTTP/1.1"}
    out = {}

    def start(status, headers, exc_info=None):
        out["status"], out["headers"] = int(status.split()[0]), dict(headers)

    body = b"".join(api.make_app(node)(env, start)).decode()
    return out["status"], out["headers"], body


@pytest.mark.parametrize("path", ["/NF-FG/", "/NF-FG", "/graphs", "/NF-FG/g1",
                                  "/NF-FG/nosuch", "/no/such/route"])
def test_compact_by_default_indented_when_asked(path):
    node = Graphs(3)
    status, headers, compact = call(node, path)
    assert headers["Content-Type"] == "application/json"
    assert compact.endswith("\n") and "\n" not in compact[:-1]      # one line
    for q in ("pretty", "pretty=1", "pretty=true", "x=1&pretty"):
        s, _, indented = call(node, path, q)
        assert s == status
        assert json.loads(indented) == json.loads(compact)
        if path != "/no/such/route":            # Bottle's own errors stay one line
            assert indented.startswith("{\n "), (q, indented[:40])
    for q in ("pretty=0", "pretty=false", "pretty=no"):
        assert call(node, path, q)[2] == compact


def test_compact_is_what_the_c_encoder_writes():
    node = Graphs(20)
    body = call(node, "/NF-FG/")[2]
    want = {"NF-FG": [{"nffg-uuid": g, **node.get(g)} for g in node.ids()]}
    assert body == json.dumps(want, separators=(",", ":")) + "\n"
    assert json.decoder.c_scanstring is not None and json.encoder.c_make_encoder is not None
