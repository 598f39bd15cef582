"""The Universal Node's own tooling works against unlite unchanged: its graphs (with the
values its orchestrators send), its REST server's answers where its client depends on them,
and a client that speaks exactly as the UN's ``virtualizer.py`` does (written from reading
it: login → the bare token; PUT → only 201 is success; then status, list, delete)."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest

import netlab
from conftest import ROOT, bridge_graph
from unlite.compute.package import PackageError, load_template, pack
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
    with pytest.raises(ModelError, match="list"):  # a list's "" is a type error
        parse_graph({"forwarding-graph": {"id": "x", "VNFs": ""}})
    with pytest.raises(ModelError) as e:       # a required field stays required
        parse_graph(dict(g, **{"forwarding-graph": dict(fg, VNFs=[dict(vnf, name="")])}), "er")
    assert e.value.path == "$.forwarding-graph.VNFs[0].name"


def test_a_trusted_port_rewrites_the_source_mac_of_what_enters_from_it():
    """As the UN's match parser: every rule whose port_in is a trusted NF port gets the
    port's own MAC as the source it sets; an untrusted or unmarked port, none; a trusted
    port without a MAC is refused (as the UN refuses it), at its ``trusted``."""
    g = bridge_graph("t")
    ports = g["forwarding-graph"]["VNFs"][0]["ports"]
    ports[0]["trusted"] = "false"
    ports[1].update(trusted=True, mac="02:AA:00:00:00:01")
    graph = parse_graph(g, "t")
    rewrite = {r.id: r.set_src_mac for r in graph.rules}
    assert rewrite == {"r0": None, "r1": None, "r2": "02:aa:00:00:00:01", "r3": None}
    assert not [x for x in graph.warnings if "trust" in x]
    del ports[1]["mac"]
    with pytest.raises(ModelError) as e:
        parse_graph(g, "t")
    assert e.value.path == "$.forwarding-graph.VNFs[0].ports[1].trusted"
    assert "has no 'mac'" in e.value.message


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


# -- the UN's native NFs: bash scripts, the UN launcher's exit status ------------------------
UN_NATIVE = ROOT.parent / "shared" / "un-native"


def _pack_un(name, template, repo):
    if not (UN_NATIVE / name / "start").is_file():
        pytest.skip(f"no {UN_NATIVE / name} (the UN's native NFs, ../shared/un-native)")
    for tool in ("bash", "brctl", "ifconfig", "iptables"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            pytest.fail(f"{tool} is not installed (.ci/run installs bridge-utils, net-tools)")
    out = repo / f"{template}.tgz"
    pack(UN_NATIVE / name, out, ROOT / "nnf/un-native" / f"{name}.template.json")
    return out


def test_a_bash_script_must_name_bash_and_exit_success_is_checked(tmp_path, nnf_repo):
    src = tmp_path / "b"
    src.mkdir()
    (src / "template.json").write_text(json.dumps(
        {"name": "b", "ports": [{"label": "inout", "min": 0, "max": 2}]}))
    (src / "start").write_text("#!/bin/bash\nfor (( i=0; i<$3; i++ )); do :; done\n")
    (src / "start").chmod(0o755)
    with pytest.raises(PackageError, match=r"'start' runs with /bin/bash .* name 'bash'"):
        pack(src, tmp_path / "b.tgz")
    (src / "template.json").write_text(json.dumps(
        {"name": "b", "ports": [{"label": "inout", "min": 0, "max": 2}],
         "dependencies": ["bash"], "exit-success": [1]}))
    pack(src, tmp_path / "b.tgz")
    for bad in ([], [256], "1", [True]):
        with pytest.raises(PackageError, match="exit-success"):
            load_template({"name": "x", "ports": [{"label": "a", "min": 0, "max": 1}],
                           "exit-success": bad}, "t")


@NFT
def test_the_uns_bridge_and_nat_run_unchanged(backend, gateway, nnf_repo, make_daemon):
    repo = nnf_repo.path
    _pack_un("bridge", "un-bridge", repo)
    _pack_un("NAT", "un-nat", repo)
    d = make_daemon(nnf_dir=repo)
    # the bridge between eth0 and eth1: one L2 segment
    assert d.api("PUT", "/NF-FG/b", bridge_graph("b", nf="un-bridge"))[0] == 201
    gateway.addr(0, "10.82.0.1/24")
    gateway.addr(1, "10.82.0.2/24")
    assert gateway.ping(0, "10.82.0.2"), "no traffic through the UN's bridge"
    st = d.api("GET", "/NF-FG/status/b")[1]
    assert st["VNFs"][0]["state"] == "Active"          # its start ended with exit 1: success
    d.api("DELETE", "/NF-FG/b")
    # the NAT between eth2 (192.168.1.0/24) and eth3 (192.168.2.0/24), masquerading
    assert d.api("PUT", "/NF-FG/n", bridge_graph("n", ("eth2", "eth3"), nf="un-nat"))[0] == 201
    gateway.addr(2, "192.168.1.2/24", via="192.168.1.1")
    gateway.addr(3, "192.168.2.2/24")
    assert gateway.ping(2, "192.168.2.2"), "no traffic through the UN's NAT"
    p = gateway.lab.run(gateway.hosts[3], "ip", "neigh", "show")
    assert "192.168.2.1" in p.stdout and "192.168.1.2" not in p.stdout    # masqueraded
    d.api("DELETE", "/NF-FG/n")


@NFT
def test_exit_0_of_a_un_script_is_its_failure(backend, gateway, nnf_repo, make_daemon):
    """Under the UN's convention exit 0 is what its scripts do when they refuse to run."""
    nnf_repo("unfail", {"start": "exit 0"}, **{"exit-success": [1]})
    d = make_daemon(nnf_dir=nnf_repo.path)
    with pytest.raises(netlab.ApiError) as e:
        d.api("PUT", "/NF-FG/u", bridge_graph("u", nf="unfail"))
    assert e.value.status == 422 and "start script exited 0" in e.value.body["error"]
    assert "success is exit 1" in e.value.body["error"]
    assert d.api("GET", "/NF-FG/")[1] == {"NF-FG": []}
