"""Schemathesis against a live daemon: every operation of its own ``/openapi.json``, fuzzed.

The daemon runs in the gateway namespace (one backend: the API is the same on all three)
with the document's example graph ``home`` deployed, so that examples and generated
requests reach a real graph and a real NF. Schemathesis sends, per operation, the
document's examples, its coverage cases (every method the path does not have, every
field missing or of the wrong type, ...) and ``EXAMPLES`` fuzzed requests. For every one:

- no 5xx, and the answer is one the document describes (status, content type, body);
  schema-violating requests are refused, valid ones accepted (see ``CONFIG``);
- a refused request (any 4xx) changed nothing: the graphs (``GET /NF-FG/``) and the kernel
  objects unlite made (NF namespaces, veths, nft tables, qdiscs) are as before.

It runs twice: with the API open, and with tenants, where ``home`` is alice's and every
generated request carries bob's token: then, whatever bob is answered, alice's graphs,
her NFs' states and her namespaces never change either. A second test sends raw requests
schemathesis does not make (bytes that are not UTF-8, a bad Content-Length, a broken
chunked body), which once got 500s or acted on another graph.

Generation is seeded (``UNLITE_SCHEMA_SEED``, default 1) so a run is reproducible; set
another seed, or ``UNLITE_SCHEMA_EXAMPLES`` higher, to explore.
"""
from __future__ import annotations

import json
import os
import socket

import pytest

schemathesis = pytest.importorskip("schemathesis")

import requests  # noqa: E402  (schemathesis's dependency)
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from urllib3.connection import HTTPConnection  # noqa: E402
from urllib3.connectionpool import HTTPConnectionPool  # noqa: E402

import netlab  # noqa: E402
from conftest import ALICE, BOB, TWO_TENANTS_UCI  # noqa: E402
from unlite import __version__  # noqa: E402
from unlite.openapi import EXAMPLE, document  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

EXAMPLES = int(os.environ.get("UNLITE_SCHEMA_EXAMPLES", 25))   # fuzzed requests / operation
SEED = int(os.environ.get("UNLITE_SCHEMA_SEED", 1))
TIMEOUT = 30             # seconds for one answer; a GET /events stream (which never ends by
STREAM = 2.0             # itself) is read until it has been silent this long

UCI = TWO_TENANTS_UCI

# A request that satisfies the NF-FG schema may still be refused: JSON Schema cannot say
# that a rule's ports must be those of the same graph (400), nor which NFs and interfaces
# this node has (422). Everywhere else valid data must be accepted.
# A login may be refused for failing too often (429: the fuzzer fails a lot). The first entry
# that applies wins (and schemathesis 4.32 reads an entry's filters as alternatives).
CONFIG = SchemathesisConfig.from_dict({"seed": SEED, "operations": [{
    "include-path-regex": "^/login$",
    "checks": {"positive_data_acceptance": {"expected-statuses": [
        "2xx", "400", "401", "429"]}}}, {
    "include-path-regex": "^/NF-FG/(\\{gid\\})?$", "include-method": ["PUT", "POST"],
    "checks": {"positive_data_acceptance": {"expected-statuses": [
        "2xx", "400", "401", "403", "404", "409", "422"]}}}]})

# The operations come from the document the daemon serves (``live`` checks that it serves
# this one): schemathesis builds its tests when pytest collects them, before any daemon runs.
schema = schemathesis.openapi.from_dict(document(__version__), config=CONFIG)


@pytest.fixture
def backend():
    return "nft"


def netns_session(pool):
    """A requests session whose sockets are opened by ``pool``'s thread, which sits in the
    gateway namespace (``netlab.Daemon.pool``): the daemon listens on that namespace's
    loopback, while schemathesis and hypothesis run in pytest's thread."""
    class Connection(HTTPConnection):
        def _new_conn(self):
            return pool.submit(super()._new_conn).result()

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class Adapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool}

    session = requests.Session()
    session.mount("http://", Adapter())
    return session


class Live:
    """The daemon, a session to it, and what it holds: graphs and kernel objects; with
    tenants, also what alice holds (her graphs, her NFs' states, her namespaces)."""

    def __init__(self, daemon, gateway, tenants):
        self.daemon, self.gateway, self.tenants = daemon, gateway, tenants
        self.session = netns_session(daemon.pool)
        self.base = f"http://127.0.0.1:{daemon.port}"
        self.owner = {"X-Auth-Token": ALICE} if tenants else {}
        self.caller = {"X-Auth-Token": BOB} if tenants else {}
        served = self.get("/openapi.json")
        assert served == schema.raw_schema, "the daemon serves another /openapi.json"
        before = set(netlab.unlite_objects(gateway.ns)["netns"])
        r = self.session.put(self.base + "/NF-FG/home", json=EXAMPLE, headers=self.owner,
                             timeout=TIMEOUT)
        assert r.status_code == 201, r.text
        self.alice_ns = set(netlab.unlite_objects(gateway.ns)["netns"]) - before
        assert self.alice_ns, "the example graph made no NF namespace"
        self.held = self.snapshot()
        self.alice = self.alice_view() if tenants else None

    def get(self, path, headers=None):
        r = self.session.get(self.base + path, headers=headers or self.owner, timeout=TIMEOUT)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def snapshot(self):
        """Everything a refused request must leave as it was (as an admin would see it)."""
        views = [self.get("/NF-FG/", h) for h in ([self.owner, self.caller] if self.tenants
                                                  else [{}])]
        return {"graphs": views, **netlab.unlite_objects(self.gateway.ns)}

    def alice_view(self):
        return {"graphs": self.get("/NF-FG/"),
                "states": {v["id"]: v["state"] for v in self.get("/NF-FG/status/home")["VNFs"]}}


@pytest.fixture(params=["open", "tenants"])
def live(request, gateway, make_daemon, tmp_path):
    extra = ()
    if request.param == "tenants":
        (tmp_path / "unlite.uci").write_text(UCI)
        extra = ("--uci", str(tmp_path / "unlite.uci"))
    return Live(make_daemon(extra=extra), gateway, request.param == "tenants")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_as_documented(case, live):
    timeout = (TIMEOUT, STREAM) if case.path == "/events" else TIMEOUT
    response = case.call(base_url=live.base, session=live.session, headers=live.caller,
                         timeout=timeout)
    now = live.snapshot()
    what = f"{case.method} {case.formatted_path} answered {response.status_code}"
    before, live.held = live.held, now
    if 400 <= response.status_code < 500:
        assert now == before, f"{what} but changed the node"
    if live.tenants:
        assert live.alice_view() == live.alice, f"{what} to bob and changed alice's graph"
        assert live.alice_ns <= set(now["netns"]), f"{what} to bob and removed alice's NF"
    case.validate_response(response, headers=live.caller, transport_kwargs={
        "base_url": live.base, "session": live.session, "headers": live.caller,
        "timeout": timeout})


def _raw(live, request):
    """Send bytes as they are; (status, JSON body) of the answer."""
    def call():
        with socket.create_connection(("127.0.0.1", live.daemon.port), timeout=TIMEOUT) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            data = b"".join(iter(lambda: s.recv(65536), b""))
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)
    return live.daemon.pool.submit(call).result()


def test_what_generated_requests_cannot_say(live):
    """Requests schemathesis does not make (it sends well-formed HTTP with UTF-8 text): the
    answer is still a JSON 4xx, never a 5xx, and changes nothing."""
    login = '{"username": "alice", "password": "\\ud800"}'       # JSON allows lone surrogates
    alice = b"X-Auth-Token: %s\r\n" % ALICE.encode() if live.tenants else b""
    cases = [
        (b"PUT /NF-FG/x HTTP/1.1\r\n%sContent-Length: abc\r\n\r\n{}" % alice, 400),
        (b"PUT /NF-FG/x HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n" % alice,
         400),
        # Bottle drops bytes that are not UTF-8 from a path: this would delete graph "home"
        (b"DELETE /NF-FG/ho%%FFme HTTP/1.1\r\n%s\r\n" % alice, 400),
        (b"GET /NF-FG/ HTTP/1.1\r\nX-Auth-Token: \xff\xfe\r\n\r\n", 401 if live.tenants else 200),
        (b"GET /NF-FG/ HTTP/1.1\r\nAuthorization: Bearer \xe9\r\n\r\n",
         401 if live.tenants else 200),
        (b"POST /login HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(login), login.encode()),
         401),
    ]
    for request, expected in cases:
        status, body = _raw(live, request)
        assert status == expected and (status == 200 or body["error"]), (request, body)
        assert live.snapshot() == live.held, f"{request!r} changed the node"
