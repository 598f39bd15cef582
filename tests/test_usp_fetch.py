"""A DU's URL (unlite/usp/fetch.py) and the fault codes (unlite/usp/faults.py), no root: real
HTTP and HTTPS servers on loopback in this process, the real curl for https where the daemon
has no TLS of its own. Every failure has its TR-181 code and a sentence naming the URL."""
import base64
import http.server
import json
import socket
import subprocess
import threading
import time

import pytest

from unlite.usp import fetch
from unlite.usp.faults import Code, for_error
from unlite.usp.service import CommandFailed, read_graph

GRAPH = {"forwarding-graph": {"id": "home", "VNFs": [], "end-points": [], "big-switch": {}}}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        if self.path == "/graph.json":
            return self._send(200, json.dumps(GRAPH).encode())
        if self.path == "/private.json":
            if auth != "Basic " + base64.b64encode(b"op:s3cret").decode():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="du"')
                self.send_header("Content-Length", "0")
                return self.end_headers()
            return self._send(200, json.dumps(GRAPH).encode())
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/graph.json")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if self.path == "/huge":
            return self._send(200, b" " * ((1 << 20) + 10))
        if self.path == "/slow":
            time.sleep(1.5)
            return self._send(200, b"{}")
        if self.path == "/cut":                 # says 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"a": 1234')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(404, b"no")

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(tls=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def http_url():
    srv = _serve()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def https_url(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    srv = _serve((str(cert), str(key)))
    yield f"https://127.0.0.1:{srv.server_address[1]}", str(cert)
    srv.shutdown()


def _fails(code, words, url, **kw):
    with pytest.raises(fetch.FetchFailed) as e:
        fetch.read(url, **kw)
    assert (e.value.code, words in e.value.message) == (code, True), e.value.message


def test_file_urls(tmp_path):
    p = tmp_path / "g.json"
    p.write_text(json.dumps(GRAPH))
    assert json.loads(fetch.read(f"file://{p}")) == GRAPH
    assert json.loads(fetch.read(f"file://localhost{p}")) == GRAPH
    _fails(Code.CANNOT_ACCESS, "cannot read", f"file://{p}.missing")
    _fails(Code.UNSUPPORTED_PROTOCOL, "another host", f"file://other-host{p}")
    p.write_text(" " * ((1 << 20) + 1))
    _fails(Code.SYSTEM_RESOURCES, "is over 1048576 bytes", f"file://{p}")


def test_schemes_and_credentials_in_the_url_are_refused():
    _fails(Code.UNSUPPORTED_PROTOCOL, "not 'ftp:'", "ftp://127.0.0.1/g.json")
    _fails(Code.UNSUPPORTED_PROTOCOL, "not 'gopher:'", "gopher://127.0.0.1/")
    _fails(Code.INVALID_ARGS, "belong in Username and Password", "http://op:pw@127.0.0.1/g")
    _fails(Code.INVALID_ARGS, "is not a URL", "http://127.0.0.1:99999999/")


def test_http(http_url):
    assert json.loads(fetch.read(f"{http_url}/graph.json")) == GRAPH
    assert json.loads(fetch.read(f"{http_url}/moved")) == GRAPH          # http -> http
    assert json.loads(fetch.read(f"{http_url}/private.json", "op", "s3cret")) == GRAPH
    _fails(Code.TRANSFER_AUTH, "HTTP 401", f"{http_url}/private.json")
    _fails(Code.TRANSFER_AUTH, "HTTP 401", f"{http_url}/private.json", username="op",
           password="wrong")
    _fails(Code.CANNOT_ACCESS, "HTTP 404", f"{http_url}/nothing")
    _fails(Code.CANNOT_ACCESS, "HTTP 302", f"{http_url}/to-file")          # never file:
    _fails(Code.SYSTEM_RESOURCES, "is over", f"{http_url}/huge")
    _fails(Code.INCOMPLETE, "", f"{http_url}/slow", timeout=0.3)
    _fails(Code.INCOMPLETE, "broke off", f"{http_url}/cut")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()                                    # nobody listens there now
    _fails(Code.CANNOT_CONTACT, "cannot reach", f"http://127.0.0.1:{port}/graph.json")


@pytest.mark.parametrize("tls_in_python", [True, False], ids=["urllib", "system-fetcher"])
def test_https(https_url, monkeypatch, tls_in_python):
    """The daemon has no TLS of its own (cli.lean_imports): https goes through curl here
    (uclient-fetch on OpenWrt); a process that has it uses urllib. Both trust the test's CA
    only through the environment, as a router's fetcher trusts its CA bundle."""
    url, ca = https_url
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    monkeypatch.setenv("CURL_CA_BUNDLE", ca)
    monkeypatch.setattr(fetch, "_has_tls", lambda: tls_in_python)
    assert json.loads(fetch.read(f"{url}/graph.json")) == GRAPH
    assert json.loads(fetch.read(f"{url}/private.json", "op", "s3cret")) == GRAPH
    _fails(Code.TRANSFER_AUTH, "401", f"{url}/private.json", username="op", password="no")
    _fails(Code.CANNOT_ACCESS, "404", f"{url}/nothing")
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("CURL_CA_BUNDLE")
    with pytest.raises(fetch.FetchFailed) as e:     # an untrusted certificate: not read
        fetch.read(f"{url}/graph.json")
    assert e.value.code in (Code.CANNOT_CONTACT, Code.CANNOT_ACCESS)


def test_a_document_that_is_not_json_is_7219(tmp_path):
    for body in (b"{not json", b"\xff\xfe"):
        p = tmp_path / "g.json"
        p.write_bytes(body)
        with pytest.raises(CommandFailed) as e:
            read_graph(f"file://{p}")
        assert e.value.code == Code.CORRUPTED and "is not JSON" in e.value.message


def test_the_fault_codes_are_tr181s():
    """Pinned: TR-181's DU faults are CWMP's 90xx in the data-model range (7229 is the one
    TR-369 cites); USP's own are TR-369's table. A change here is a change of the wire."""
    assert {c.name: int(c) for c in Code if c >= 7200} == {
        "TRANSFER_AUTH": 7212, "UNSUPPORTED_PROTOCOL": 7213, "CANNOT_CONTACT": 7216,
        "CANNOT_ACCESS": 7217, "INCOMPLETE": 7218, "CORRUPTED": 7219, "INVALID_UUID": 7222,
        "UNKNOWN_EE": 7223, "EE_MISMATCH": 7225, "DUPLICATE_DU": 7226,
        "SYSTEM_RESOURCES": 7227, "UNKNOWN_DU": 7228, "INVALID_DU_STATE": 7229}


def test_each_layers_error_gets_its_code_and_its_path():
    from unlite.changes import Busy
    from unlite.compute.native import ComputeError
    from unlite.compute.template import PackageError
    from unlite.model.nffg import ModelError
    from unlite.network.base import SteeringError
    from unlite.node.records import NodeError
    from unlite.store import StoreError
    cases = [
        (ModelError("must be a string", "$.forwarding-graph.VNFs[0].id"), Code.CORRUPTED,
         "$.forwarding-graph.VNFs[0].id: must be a string"),
        (Busy(8), Code.RESOURCES_EXCEEDED, "8 changes are already under way"),
        (StoreError(__import__("pathlib").Path("/x/g.json"), OSError(28, "No space left")),
         Code.SYSTEM_RESOURCES, "the disk is full"),
        (ComputeError("NF 'fw': start script exited 1"), Code.CMD_FAILURE,
         "[FailureOnStart] NF 'fw': start script exited 1"),
        (ComputeError("NF 'fw' cannot run here", "Unstartable", "$.VNFs[0]"),
         Code.EE_MISMATCH, "$.VNFs[0]: NF 'fw' cannot run here"),
        (ComputeError("missing nft", "DependencyFailure"), Code.EE_MISMATCH, "missing nft"),
        (PackageError("no NNF 'x'"), Code.EE_MISMATCH, "no NNF 'x'"),
        (SteeringError("tc cannot carry it", "$.big-switch"), Code.EE_MISMATCH,
         "$.big-switch: tc cannot carry it"),
        (NodeError("graph id 'g' cannot be used", "$.id (URL)", 403), Code.PERMISSION_DENIED,
         "$.id (URL): graph id"),
        (NodeError("no graph 'g'", status=404), Code.UNKNOWN_DU, "no graph 'g'"),
        (NodeError("eth1 is used by another graph", "$.end-points[0]", 409),
         Code.REQUEST_DENIED, "$.end-points[0]: eth1"),
    ]
    for err, code, words in cases:
        got, message = for_error(err)
        assert (got, words in message) == (code, True), (err, got, message)
