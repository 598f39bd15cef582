"""The Universal Node's own tooling works against unlite unchanged: its graphs (with the
values its orchestrators send), its REST server's answers where its client depends on them,
and a client that speaks exactly as the UN's ``virtualizer.py`` does (written from reading
it: login → the bare token; PUT → only 201 is success; then status, list, delete)."""
from __future__ import annotations

import json
import urllib.request

import pytest

import netlab
from conftest import bridge_graph
from unlite.model import ModelError, parse_graph

NFT = pytest.mark.parametrize("backend", ["nft"])       # API behaviour, not steering


# -- the model: what UN graphs carry ----------------------------------------------------------
def test_empty_strings_are_absent_as_the_un_reads_them():
    g = bridge_graph("er")
    fg = g["forwarding-graph"]
    fg["id"] = ""
    vnf = fg["VNFs"][0]
    vnf["vnf_template"] = ""
    vnf["ports"][0].update({"mac": "", "unify-ip": "", "name": ""})
    fg["end-points"][0]["name"] = ""
    graph = parse_graph(g, "er")
    v = graph.vnfs[0]
    assert graph.id == "er" and v.template is None
    assert (v.ports[0].mac, v.ports[0].ip) == (None, None)
    with pytest.raises(ModelError) as e:       # a required field stays required
        parse_graph(dict(g, **{"forwarding-graph": dict(fg, VNFs=[dict(vnf, name="")])}), "er")
    assert e.value.path == "$.forwarding-graph.VNFs[0].name"


def test_gre_secure_is_the_uns_key_and_safe_is_read_as_it():
    def ep(params):
        return parse_graph({"forwarding-graph": {"id": "x", "end-points": [
            {"id": "g", "type": "gre-tunnel", "gre-tunnel": {
                "local-ip": "10.0.0.1", "remote-ip": "10.0.0.2", **params}}]}})
    assert ep({"secure": "true"}).endpoints[0].params["secure"] is True
    old = ep({"safe": False})
    assert old.endpoints[0].params["secure"] is False
    assert any("'safe' read as 'secure'" in w for w in old.warnings)
    with pytest.raises(ModelError, match="both given"):
        ep({"safe": True, "secure": True})


# -- the REST answers its client relies on ---------------------------------------------------
@NFT
def test_unknown_template_of_a_known_nf_blames_the_template(backend, gateway, daemon):
    g = bridge_graph("t")
    g["forwarding-graph"]["VNFs"][0]["vnf_template"] = "client.json"
    with pytest.raises(netlab.ApiError) as e:
        daemon.api("PUT", "/NF-FG/t", g)
    body = e.value.body
    assert e.value.status == 422 and body["path"] == "$.forwarding-graph.VNFs[0].vnf_template"
    assert "no NNF template 'client.json'" in body["error"] and "bridge.json" in body["error"]
    assert "no NNF named 'bridge'" not in body["error"]


@NFT
def test_every_unknown_nf_is_named_in_one_answer(backend, gateway, daemon):
    g = bridge_graph("m")
    fg = g["forwarding-graph"]
    fg["VNFs"] = [dict(fg["VNFs"][0], id=f"nf{i}", name=f"nosuch{i}") for i in (1, 2, 3)]
    fg["big-switch"]["flow-rules"] = []
    with pytest.raises(netlab.ApiError) as e:
        daemon.api("PUT", "/NF-FG/m", g)
    body = e.value.body
    assert e.value.status == 422 and body["error"].startswith("3 NFs cannot be deployed")
    assert [x["path"] for x in body["errors"]] == [
        f"$.forwarding-graph.VNFs[{i}].name" for i in range(3)]
    assert all(f"nosuch{i}" in body["error"] for i in (1, 2, 3))
    assert body["path"] == "$.forwarding-graph.VNFs[0].name"
    assert daemon.api("GET", "/NF-FG/")[1] == {"NF-FG": []}


@NFT
def test_post_list_status_as_the_un_server_answers(backend, gateway, daemon):
    d = daemon

    def raw(method, path, body=None):
        def go():
            req = urllib.request.Request(f"http://127.0.0.1:{d.port}{path}", method=method,
                                         data=json.dumps(body).encode() if body else None)
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), json.loads(r.read() or b"null")
        return d.pool.submit(go).result()

    status, headers, body = raw("POST", "/NF-FG/", bridge_graph("ignored"))
    gid = body["nffg-uuid"]
    assert status == 201 and headers["Location"] == f"/NF-FG/{gid}"
    assert len(gid) == 36 and gid.count("-") == 4 and gid[14] == "4"      # a UUID, as the UN's
    (entry,) = d.api("GET", "/NF-FG/")[1]["NF-FG"]
    assert entry["nffg-uuid"] == gid and entry["forwarding-graph"]["id"] == gid
    st = d.api("GET", f"/NF-FG/status/{gid}")[1]
    assert st["status"] == "complete" and st["percentage_completed"] == 100
    d.api("DELETE", f"/NF-FG/{gid}")


# -- a client that speaks exactly as the UN's virtualizer.py ---------------------------------
UN_USER, UN_TOKEN = "unclient", "un-client-token-0123456789"


@NFT
def test_the_un_client_flow(backend, gateway, make_daemon, tmp_path):
    conf = tmp_path / "unlite"
    conf.write_text(f"config tenant '{UN_USER}'\n\tlist token '{UN_TOKEN}'\n"
                    "\tlist interface 'eth0'\n\tlist interface 'eth1'\n")
    d = make_daemon(extra=("--uci", str(conf)))
    base = f"http://127.0.0.1:{d.port}"

    def request(method, path, data=None, headers=None):
        def go():
            req = urllib.request.Request(base + path, data=data, method=method,
                                         headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()
        return d.pool.submit(go).result()

    # getToken(): Accept: application/json, yet the whole body is taken as the token
    status, text = request("POST", "/login", json.dumps(
        {"username": UN_USER, "password": UN_TOKEN}).encode(),
        {"Accept": "application/json", "Content-Type": "application/json"})
    assert status == 200
    headers = {"Content-Type": "application/json", "X-Auth-Token": text}
    graph = json.dumps(bridge_graph("un")).encode()
    # sendToUniversalNode(): a PUT is done only when it answers 201 — first and every update
    assert request("PUT", "/NF-FG/un", graph, headers)[0] == 201
    gateway.addr(0, "10.81.0.1/24")
    gateway.addr(1, "10.81.0.2/24")
    assert gateway.ping(0, "10.81.0.2")
    st = json.loads(request("GET", "/NF-FG/status/un", headers=headers)[1])
    assert st["percentage_completed"] == 100           # what UN tools poll for
    assert request("PUT", "/NF-FG/un", graph, headers)[0] == 201
    listed = json.loads(request("GET", "/NF-FG/", headers=headers)[1])["NF-FG"]
    assert [e["nffg-uuid"] for e in listed] == ["un"]
    assert request("DELETE", "/NF-FG/un", headers=headers)[0] in (200, 204)
    assert request("GET", "/NF-FG/status/un", headers=headers)[0] == 404
