"""Fixtures: a gateway namespace with eth0..eth3 facing four host namespaces, a daemon inside
it, NNF repositories, and after every test a check that unlite left no kernel object behind.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import netlab  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
CATALOG = ROOT / "build" / "nnf"


ROOT_FIXTURES = {"gateway", "backend", "daemon", "make_daemon", "lab",   # "lab": test_package
                 "scratch_port", "direct"}                  # test_steering, test_ipsec


def pytest_collection_modifyitems(items):
    """Mark what needs root (namespaces, the OpenWrt sandbox): ``make unit`` runs the rest
    (``-m "not root"``), in seconds, as any user."""
    for item in items:
        if ROOT_FIXTURES & set(getattr(item, "fixturenames", ())) \
                or item.path.name.endswith("_real.py"):
            item.add_marker(pytest.mark.root)


def pytest_terminal_summary(terminalreporter):
    """Say which kernel features this run had, so a reader knows what host or VM covered, and
    (in the kernel lab) how many kernel tests passed on each backend."""
    if netlab.KERNEL_LAB:
        per = {}
        for rep in terminalreporter.stats.get("passed", []):
            if rep.when == "call" and "kernel" in rep.keywords:
                b = next((b for b in BACKENDS if f"[{b}" in rep.nodeid), "no backend")
                per[b] = per.get(b, 0) + 1
        terminalreporter.write_line("kernel tests passed: " + ", ".join(
            f"{b} {n}" for b, n in sorted(per.items())))
    if netlab._found:
        datapath = netlab.ovs_datapath()
        where = "the kernel lab (make test-kernel)" if netlab.KERNEL_LAB else "this host"
        have = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in sorted(netlab._found.items()))
        terminalreporter.write_line(f"kernel features on {where}, {os.uname().release}: {have}; "
                                    f"OVS datapath {datapath}")


class Gateway:
    """gw namespace with eth0..eth3, each facing host namespace h1..h4 (``eth0`` inside)."""

    def __init__(self, lab, n=4):
        self.lab = lab
        self.ns = lab.ns("gw")
        self.hosts = []
        for i in range(n):
            h = lab.ns(f"h{i + 1}")
            lab.link(self.ns, f"eth{i}", h, "eth0")
            self.hosts.append(h)

    def addr(self, host_index, cidr, via=None):
        h = self.hosts[host_index]
        netlab.sh("ip", "-n", h, "addr", "add", cidr, "dev", "eth0")
        if via:
            netlab.sh("ip", "-n", h, "route", "add", "default", "via", via)

    def ping(self, host_index, dest, count=3, interval="0.2", wait="1"):
        """Any reply from ``count`` pings? Each waits ``wait`` s for its reply (stretched in
        the kernel lab, where an emulated CPU makes OVS's first upcalls slow)."""
        p = self.lab.run(self.hosts[host_index], "ping", "-c", str(count), "-i", interval,
                         "-W", f"{float(wait) * netlab.SLACK:g}", dest,
                         timeout=30 * netlab.SLACK)
        return p.returncode == 0


BACKENDS = ("nft", "tc", "ovs")


def _skip_reason(backend):
    if backend == "ovs" and not shutil.which("ovs-vswitchd", path=os.environ.get("PATH", "")
                                             + ":/usr/sbin:/sbin"):
        return "Open vSwitch is not installed (apt-get install openvswitch-switch)"
    return None


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every integration test runs on every steering backend."""
    why = _skip_reason(request.param)
    if why:
        pytest.skip(f"{request.param}: {why}")
    return request.param


@pytest.fixture
def gateway(backend, tmp_path):
    """The gateway (with its own Open vSwitch for the ovs backend); at teardown, after the
    daemon stopped, no unlite object may remain."""
    lab = netlab.Lab()
    left, ovs = None, None
    try:
        gw = Gateway(lab)
        gw.backend = backend
        if backend == "ovs":
            ovs = gw.ovs = netlab.Ovs(gw.ns, tmp_path / "ovs").start()
        else:
            gw.ovs = None
        yield gw
        left = netlab.unlite_objects(gw.ns, ovs)
    finally:
        if ovs:
            ovs.stop()
        for ns in netlab.unlite_objects(lab.namespaces[0])["netns"] if lab.namespaces else ():
            lab.namespaces.append(ns)       # remove leaks too, so one failure stays one
        lab.close()
    assert left == netlab.EMPTY, f"unlite leaked: {left}"


@pytest.fixture
def make_daemon(gateway, tmp_path):
    """Start ``unlite serve`` in the gateway namespace (stopped and checked at teardown)."""
    daemons = []

    def start(nnf_dir=None, **kw):
        kw.setdefault("backend", gateway.backend)
        if gateway.ovs:
            kw.setdefault("env", gateway.ovs.env)
        d = netlab.Daemon(gateway.ns, tmp_path / f"d{len(daemons)}", nnf_dir or CATALOG, **kw)
        daemons.append(d)
        return d.start()

    yield start
    for d in daemons:
        d.stop()
        if not getattr(d, "killed", False):        # a test may kill -9 it on purpose
            assert d.proc.returncode == 0, f"daemon exited {d.proc.returncode}:\n{d.log()}"


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()


@pytest.fixture
def nnf_repo(tmp_path):
    """An NNF repository of its own: the packed catalog plus NNFs a test writes."""
    repo = tmp_path / "nnf-repo"
    shutil.copytree(CATALOG, repo)

    def add(pkg, scripts, **template):
        """Pack NNF ``pkg`` (its folder and file name; also its functional name unless
        ``template`` says ``name=``) with ``scripts`` {action: body}."""
        src = tmp_path / "nnf-src" / pkg
        src.mkdir(parents=True)
        t = {"name": pkg, "multitenancy": True, "timeout": 10,
             "ports": [{"label": "inout", "min": 0, "max": 8}],
             "dependencies": {"capability": [{"name": "ip", "type": "executable"}]}}
        t.update(template)
        (src / "template.json").write_text(json.dumps(t))
        for action, body in scripts.items():
            f = src / action
            f.write_text("#!/bin/sh\n" + body + "\n")
            f.chmod(0o755)
        subprocess.run([sys.executable, "-m", "unlite", "nnf", "pack", str(src), "-o",
                        str(repo / f"{pkg}.tgz")], check=True, cwd=ROOT, capture_output=True)
        return repo

    add.path = repo
    return add


# Two tenants, each allowed two of the gateway's interfaces (tenant and schema tests).
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"
TWO_TENANTS_UCI = f"""
config tenant 'alice'
	list token '{ALICE}'
	list interface 'eth0'
	list interface 'eth1'

config tenant 'bob'
	list token '{BOB}'
	list interface 'eth2'
	list interface 'eth3'
"""


def un_example(name):
    return json.loads((DATA / "un-examples" / name).read_text())


def bridge_graph(gid="g1", eps=("eth0", "eth1"), nf="bridge", env=None, rules=None):
    """Two interface end-points joined through one 2-port NF, both directions."""
    vnf = {"id": "nf1", "name": nf, "ports": [{"id": "inout:0", "name": "data-port"},
                                              {"id": "inout:1", "name": "data-port"}]}
    if env:
        vnf["unify-env-variables"] = [{"variable": f"{k}={v}"} for k, v in env.items()]
    pairs = [("endpoint:ep0", "vnf:nf1:inout:0"), ("vnf:nf1:inout:0", "endpoint:ep0"),
             ("vnf:nf1:inout:1", "endpoint:ep1"), ("endpoint:ep1", "vnf:nf1:inout:1")]
    return {"forwarding-graph": {
        "id": gid, "name": f"graph {gid}", "VNFs": [vnf],
        "end-points": [{"id": f"ep{i}", "type": "interface", "interface": {"if-name": e}}
                       for i, e in enumerate(eps)],
        "big-switch": {"flow-rules": rules if rules is not None else [
            {"id": f"r{i}", "priority": 10, "match": {"port_in": a},
             "actions": [{"output_to_port": b}]} for i, (a, b) in enumerate(pairs)]}}}
