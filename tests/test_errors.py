"""One error shape (unlite/errors.py): every layer's error is an ``UnliteError`` with its
status, path and fault, and the REST API answers each the same way. In-process, through the
WSGI app over a stand-in node whose ``put`` raises what a layer would (no socket, no root)."""
from __future__ import annotations

import errno
import io
import json
import types
from pathlib import Path

import pytest

from unlite import api
from unlite.changes import Busy, Changes, Runner
from unlite.compute.native import ComputeError
from unlite.compute.package import PackageError
from unlite.errors import UnliteError
from unlite.model import ModelError
from unlite.network import SteeringError
from unlite.node import NodeError
from unlite.store import StoreError

# (the error a layer raises, the status, path and fault the API must answer with)
CASES = [
    (ModelError("must be a string", "$.forwarding-graph.VNFs[0].name"), 400,
     "$.forwarding-graph.VNFs[0].name", None),
    (NodeError("graph id 'x' cannot be used: choose another id", "$.id (URL)", 403), 403,
     "$.id (URL)", None),
    (NodeError("no graph 'x'", status=404), 404, None, None),
    (ComputeError("NF 'nf1' (fw) cannot run here: missing nft", "DependencyFailure",
                  "$.forwarding-graph.VNFs[0].name"), 422, "$.forwarding-graph.VNFs[0].name",
     "DependencyFailure"),
    (SteeringError("tc cannot match this", "$.forwarding-graph.big-switch.flow-rules[0]"),
     422, "$.forwarding-graph.big-switch.flow-rules[0]", None),
    (PackageError("no NNF 'nosuch' in the repository"), 422, None, None),
    (Busy(8), 503, None, None),
    (StoreError(Path("/var/lib/unlite/graphs/g1.json"), OSError(errno.ENOSPC, "No space")),
     507, None, None),
]


def test_every_layer_raises_the_one_error_shape():
    for e, status, path, fault in CASES:
        assert isinstance(e, UnliteError), type(e)
        assert e.describe()[:4] == (status, e.message, path, fault), type(e)
    s = CASES[-1][0]
    assert isinstance(s, OSError) and s.errno == errno.ENOSPC     # still an OSError
    assert "in /var/lib/unlite/graphs" in s.message and "disk is full" in s.message
    assert str(CASES[0][0]) == "$.forwarding-graph.VNFs[0].name: must be a string"
    assert isinstance(CASES[0][0], ValueError)                      # the model's callers


class Raising:
    """A node whose every change raises ``error``."""

    def __init__(self, error):
        self.error = error
        self.tenants = types.SimpleNamespace(enabled=False, authenticate=lambda token: None)
        self.changes, self.runner = Changes(), Runner()

    def put(self, gid, doc, tenant=None):
        raise self.error


def put(node, body=b'{"forwarding-graph": {}}'):
    env = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/NF-FG/g1", "QUERY_STRING": "",
           "SERVER_NAME": "t", "SERVER_PORT": "80", "wsgi.input": io.BytesIO(body),
           "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json",
           "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
           "SERVER_PROTOCOL": "HTTP/1.1"}
    out = {}

    def start(status, headers, exc_info=None):
        out["status"] = int(status.split()[0])

    body = b"".join(api.make_app(node)(env, start))
    return out["status"], json.loads(body)


@pytest.mark.parametrize("case", CASES, ids=[f"{type(c[0]).__name__}-{c[1]}" for c in CASES])
def test_the_api_answers_each_layers_error_with_its_status_path_and_fault(case):
    e, status, path, fault = case
    code, body = put(Raising(e))
    assert code == status and body["error"] == e.message and body["path"] == path, body
    assert body.get("fault") == fault, body


def test_an_unknown_error_is_a_500_naming_its_type_not_a_traceback():
    code, body = put(Raising(KeyError("chains")))
    assert code == 500 and body["error"].startswith("internal error: KeyError"), body
    assert "Traceback" not in json.dumps(body)


class Keeping(Raising):
    """A node that keeps the body it was handed."""

    def put(self, gid, doc, tenant=None):
        self.got = doc
        raise NodeError("kept", status=409)


def test_a_large_body_is_read_once_into_memory_not_spooled_to_a_file(monkeypatch):
    """Bottle spools a body past its MEMFILE_MAX (100 KiB) into a temporary file (on a
    router, more RAM in /tmp and one more copy); the API raises it to its own limit."""
    import bottle

    def no_file(*a, **kw):
        raise AssertionError("the body went to a temporary file")
    monkeypatch.setattr(bottle, "NamedTemporaryFile", no_file)
    doc = b'{"forwarding-graph": {"name": "' + b"x" * 300_000 + b'"}}'
    node = Keeping(None)
    assert put(node, doc)[0] == 409 and node.got == doc
    code, body = put(node, b" " * (api.MAX_BODY + 1))
    assert code == 413 and body["error"] == f"body larger than {api.MAX_BODY} bytes"
