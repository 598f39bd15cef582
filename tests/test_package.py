"""NNF packages and repository (unlite/compute/package.py, template.py, archive.py,
dependencies.py) and the NNFs in nnf/, run for real.

The first part is pure file work (pack, resolve, verify, tar-slip refusal). The second runs
each NNF the way the native driver does — ``ip netns exec NS sh start G NF N IF...`` inside a
namespace with veth ports — and sends real traffic through it between two more namespaces.
Every namespace is named ``utpk-*`` and deleted by exact name in a fixture.
"""
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from unlite.compute import archive as A, dependencies as D, package as P
from unlite.compute.package import PackageError, Repository, load_template, pack

NNF = Path(__file__).resolve().parent.parent / "nnf"
TPL = {"name": "evil", "vnf-type": "native", "ports": [{"label": "inout", "min": 1, "max": 2}]}


@pytest.fixture
def repo(tmp_path):
    """A repository with the three NNFs packed into it (tgz + json index entries)."""
    root = tmp_path / "repo"
    for n in ("bridge", "firewall", "nat"):
        pack(NNF / n, root / f"{n}.tgz")
    return Repository(root, tmp_path / "cache")


def members(tgz):
    with tarfile.open(tgz) as t:
        return {m.name: m for m in t.getmembers()}


# -- pack ---------------------------------------------------------------------------------
def test_pack_is_reproducible(tmp_path):
    a = pack(NNF / "firewall", tmp_path / "a" / "firewall.tgz")
    time.sleep(0.01)
    os.utime(NNF / "firewall" / "start")           # a newer mtime changes nothing
    b = pack(NNF / "firewall", tmp_path / "b" / "firewall.tgz")
    da, db = (tmp_path / x / "firewall.tgz" for x in "ab")
    assert a == b == hashlib.sha256(da.read_bytes()).hexdigest()
    assert da.read_bytes() == db.read_bytes()
    raw = da.read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08     # gzip: mtime 0, no file name
    m = members(da)
    assert sorted(m) == ["start", "stop", "template.json"]
    assert m["start"].mode == 0o755 and m["template.json"].mode == 0o644
    assert {(x.uid, x.gid, x.uname, x.gname, x.mtime) for x in m.values()} == {(0, 0, "root",
                                                                                 "root", 0)}
    index = json.loads((tmp_path / "a" / "firewall.json").read_text())
    assert index["uri"] == "firewall.tgz" and index["sha256"] == a and index["name"] == "firewall"


def test_pack_refuses_symlink_and_bad_template(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(NNF / "bridge", src)
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(PackageError, match="symlink 'link'"):
        pack(src, tmp_path / "x.tgz")
    (src / "link").unlink()
    (src / "template.json").write_text('{"name": "b", "ports": []}')
    with pytest.raises(PackageError, match="ports"):
        pack(src, tmp_path / "x.tgz")
    assert not (tmp_path / "x.tgz").exists()


# -- resolve ------------------------------------------------------------------------------
def test_resolve_by_name_alias_and_template(repo, tmp_path):
    fw = repo.resolve("firewall")
    assert fw.template.name == "firewall" and fw.template.flavour == "nftables"
    assert fw.dir == tmp_path / "cache" / fw.sha256
    assert os.access(fw.script("start"), os.X_OK) and fw.script("pause") is None
    assert repo.resolve("nativeNat").template.name == "nat"
    assert repo.resolve("example").template.name == "bridge"
    assert repo.resolve("whatever", "nativeNat.json").template.name == "nat"   # alias
    assert repo.resolve("whatever", "firewall.json").template.name == "firewall"  # file stem
    assert repo.resolve("firewall") is fw                                      # reused
    assert sorted(t.name for t in repo.templates()) == ["bridge", "firewall", "nat"]
    with pytest.raises(PackageError) as e:
        repo.resolve("ids")
    assert e.value.status == 422 and "no NNF named 'ids'" in str(e.value)
    assert str(repo.root) in str(e.value)
    with pytest.raises(PackageError, match="template 'ids.json'"):
        repo.resolve("firewall", "ids.json")


def test_listing_reads_the_index_not_the_archives_it_pins(repo, caplog):
    """The catalog (``/capabilities``) comes from the .json entries alone: a pinned .tgz
    is read only when a graph needs it (and then its sha256 decides)."""
    (repo.root / "nat.tgz").write_bytes(b"not a tar archive")
    with caplog.at_level("WARNING", "unlite.package"):
        assert sorted(t.name for t in repo.templates()) == ["bridge", "firewall", "nat"]
    assert caplog.records == []
    with pytest.raises(PackageError, match="sha256"):
        repo.resolve("nat")


def test_bare_tgz_and_packages_added_while_running(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    r = Repository(root, tmp_path / "cache")
    assert r.templates() == []
    with pytest.raises(PackageError):
        r.resolve("bridge")
    sha = pack(NNF / "bridge", tmp_path / "out" / "bridge.tgz")
    shutil.copy(tmp_path / "out" / "bridge.tgz", root / "br.tgz")     # no .json beside it
    pkg = r.resolve("nativeBr")
    assert pkg.sha256 == sha and (pkg.dir / "template.json").is_file()


def test_uri_forms(tmp_path):
    sha = pack(NNF / "nat", tmp_path / "store" / "nat.tgz")
    index = json.loads((tmp_path / "store" / "nat.json").read_text())
    root = tmp_path / "repo"
    root.mkdir()

    def entry(uri, **kw):
        (root / "nat.json").write_text(json.dumps({**index, "uri": uri, **kw}))
        return Repository(root, tmp_path / f"cache-{uuid.uuid4().hex}")

    assert entry(f"file://{tmp_path}/store/nat.tgz").resolve("nat").sha256 == sha
    assert entry("../store/nat.tgz").resolve("nat").sha256 == sha
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "store"))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()          # shutdown() waits one poll interval
    try:
        url = f"http://127.0.0.1:{srv.server_port}/nat.tgz"
        assert entry(url).resolve("nativeNat").sha256 == sha
    finally:
        srv.shutdown()
    with pytest.raises(PackageError, match="unsupported uri scheme 'ftp'"):
        entry("ftp://example.invalid/nat.tgz").resolve("nat")
    bad = "0" * 64
    with pytest.raises(PackageError, match=f"expected {bad}, got {sha}"):
        entry("../store/nat.tgz", sha256=bad).resolve("nat")
    with pytest.raises(PackageError, match="sha256"):
        entry("../store/nat.tgz", sha256=None).resolve("nat")
    with pytest.raises(PackageError, match="index says 'nat2'"):
        entry("../store/nat.tgz", name="nat2").resolve("nat2")


def test_sha_mismatch_of_a_replaced_package(repo, tmp_path):
    good = repo.root / "firewall.tgz"
    shutil.copy(repo.root / "bridge.tgz", good)          # .json still pins the real firewall
    with pytest.raises(PackageError, match="sha256 mismatch"):
        repo.resolve("firewall")
    assert not list((tmp_path / "cache").glob("*"))      # nothing unpacked


def test_an_unpacked_package_is_checked_at_each_use_and_unpacked_again(repo, tmp_path):
    """A cache folder missing a file, holding a changed or an extra one, is replaced from the
    catalog; when the catalog cannot give it again, the package is refused (issue 15)."""
    pkg = repo.resolve("firewall")
    start, extra = pkg.dir / "start", pkg.dir / "update"
    good = start.read_bytes()
    harms = {"cache removed": lambda: shutil.rmtree(tmp_path / "cache"),
             "start removed": start.unlink,
             "start changed": lambda: start.write_text("#!/bin/sh\nexit 0\n"),
             "start not executable": lambda: start.chmod(0o644),
             "a script added": lambda: extra.write_text("#!/bin/sh\nexit 0\n")}
    for what, harm in harms.items():
        harm()
        again = repo.resolve("firewall")
        assert again.dir == pkg.dir and start.read_bytes() == good, what
        assert os.access(start, os.X_OK) and not extra.exists(), what
    start.write_text("#!/bin/sh\nexit 0\n")          # a restart finds it changed
    assert Repository(repo.root, tmp_path / "cache").resolve("firewall").dir == pkg.dir
    assert start.read_bytes() == good
    (repo.root / "firewall.tgz").unlink()             # the catalog cannot give it again
    repo.ensure(pkg.sha256)                           # whole: nothing to do
    start.unlink()
    for call in (lambda: repo.resolve("firewall"), lambda: repo.ensure(pkg.sha256)):
        with pytest.raises(PackageError, match=r"files in .* lack 'start', and it cannot "
                                               r"be unpacked again: .*cannot fetch"):
            call()


# -- tar-slip -----------------------------------------------------------------------------
def ti(name, type=tarfile.REGTYPE, size=0, **kw):
    t = tarfile.TarInfo(name)
    t.type, t.size, t.mode = type, size, 0o644
    for k, v in kw.items():
        setattr(t, k, v)
    return t


EVIL = f"utpk-evil-{uuid.uuid4().hex[:8]}"
SLIPS = {
    "absolute": ([ti(f"/tmp/{EVIL}", size=3)], "absolute path"),
    "dotdot": ([ti(f"../{EVIL}", size=3)], "'..'"),
    "nested-dotdot": ([ti(f"sub/../../{EVIL}", size=3)], "'..'"),
    "symlink": ([ti("start", tarfile.SYMTYPE, linkname="/bin/sh")], "links are not allowed"),
    "symlink-dir": ([ti("d", tarfile.SYMTYPE, linkname="/tmp"), ti(f"d/{EVIL}", size=3)],
                    "links are not allowed"),
    "hardlink": ([ti("start", tarfile.LNKTYPE, linkname="template.json")], "links"),
    "device": ([ti("null", tarfile.CHRTYPE, devmajor=1, devminor=3)], "not a regular file"),
    "fifo": ([ti("fifo", tarfile.FIFOTYPE)], "not a regular file"),
    "oversized": ([ti("big", size=A.MAX_MEMBER + 1)], "'big'"),
    "too-many": ([ti(f"f{i}", size=1) for i in range(A.MAX_MEMBERS)], "more than 64"),
    "total": ([ti(f"f{i}", size=A.MAX_MEMBER) for i in range(5)], "over"),
    "backslash": ([ti(f"..\\{EVIL}", size=3)], "backslash"),
}


def make_tgz(path, entries, template=True):
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        if template:
            data = json.dumps(TPL).encode()
            tar.addfile(ti("template.json", size=len(data)), io.BytesIO(data))
        for t in entries:
            tar.addfile(t, io.BytesIO(b"\0" * t.size) if t.isreg() else None)


@pytest.mark.parametrize("case", SLIPS)
def test_tar_slip_refused(tmp_path, case):
    entries, why = SLIPS[case]
    root, cache = tmp_path / "repo", tmp_path / "cache"
    root.mkdir()
    make_tgz(root / "evil.tgz", entries)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(PackageError) as e:
        Repository(root, cache).resolve("evil")
    assert why in str(e.value) and "evil.tgz" in str(e.value)
    after = sorted(str(p) for p in tmp_path.rglob("*") if p != cache)
    assert after == before                                  # no half folder, no temp left
    assert not os.path.lexists(f"/tmp/{EVIL}") and not list(tmp_path.parent.glob(EVIL))


def test_archive_without_template(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    make_tgz(root / "x.tgz", [ti("start", size=3)], template=False)
    with pytest.raises(PackageError, match="no template.json"):
        Repository(root, tmp_path / "cache").resolve("x")


# -- template, dependencies, ports --------------------------------------------------------
def test_load_template_errors_name_the_field():
    with pytest.raises(PackageError, match=r"t.json: template field 'name'"):
        load_template({"ports": TPL["ports"]}, "t.json")
    with pytest.raises(PackageError, match=r"'ports\[0\].max'"):
        load_template({**TPL, "ports": [{"label": "inout", "min": 2, "max": 1}]}, "t.json")
    with pytest.raises(PackageError, match="not valid JSON"):
        load_template(b"{", "t.json")
    with pytest.raises(PackageError, match="'vnf-type'"):
        load_template({**TPL, "vnf-type": "docker"}, "t.json")
    t = load_template({**TPL, "dependencies": ["nft", {"name": "x", "type": "package"}]}, "t")
    assert t.dependencies == (("nft", "executable"), ("x", "package")) and t.timeout == 10


def test_missing_dependencies(tmp_path, monkeypatch):
    db = tmp_path / "status"
    db.write_text("Package: utpk-installed\nStatus: install user installed\n\n"
                  "Package: iptables\nStatus: deinstall ok config-files\n\n"
                  "Status: install ok installed\nPackage: utpk-last")  # no blank line at the end
    monkeypatch.setattr(D, "PACKAGE_DBS", (str(db), str(tmp_path / "none")))
    t = load_template({**TPL, "dependencies": {"capability": [
        {"name": "sh", "type": "executable"}, {"name": "utpk-no-such-tool", "type": "executable"},
        {"name": "utpk-installed", "type": "package"}, {"name": "iptables", "type": "package"},
        {"name": "utpk-last", "type": "package"}]}}, "t")
    assert P.missing_dependencies(t) == ["executable 'utpk-no-such-tool'", "package 'iptables'"]
    monkeypatch.setattr(D, "PACKAGE_DBS", (str(tmp_path / "none"),))   # no database: which()
    assert P.missing_dependencies(t) == ["executable 'utpk-no-such-tool'",
                                         "package 'utpk-installed'", "package 'utpk-last'"]
    fw = load_template((NNF / "firewall" / "template.json").read_bytes(), "fw")
    assert P.missing_dependencies(fw, path="") == []      # ip, nft found in the sbin dirs


def test_check_ports():
    fw = load_template((NNF / "firewall" / "template.json").read_bytes(), "fw")
    br = load_template((NNF / "bridge" / "template.json").read_bytes(), "br")
    assert fw.check_ports(["inout:0", "inout:1"]) is None
    assert "gives 1" in fw.check_ports(["inout:0"])
    assert "index out of range" in fw.check_ports(["inout:0", "inout:1", "inout:2"])
    assert "label 'lan' unknown" in fw.check_ports(["lan:0", "inout:1"])
    assert "twice" in fw.check_ports(["inout:0", "inout:0"])
    assert "LABEL:INDEX" in fw.check_ports(["eth0", "inout:1"])
    assert br.check_ports([f"inout:{i}" for i in range(16)]) is None
    assert br.check_ports([]) is not None


# -- the NNFs, for real -------------------------------------------------------------------
SERVER = r"""
import select, socket, sys
socks = []
for spec in sys.argv[1:]:                   # tcp:PORT or udp:PORT; answer the peer's address
    proto, port = spec.split(":")
    if proto == "tcp":
        s = socket.create_server(("", int(port)))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", int(port)))
    socks.append((proto, s))
print("ready", flush=True)
while True:
    for proto, s in socks:
        if s in select.select([x for _, x in socks], [], [])[0]:
            if proto == "tcp":
                c, peer = s.accept(); c.sendall(peer[0].encode()); c.close()
            else:
                _, peer = s.recvfrom(100); s.sendto(peer[0].encode(), peer)
"""
CLIENT = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        c = socket.create_connection((host, port), timeout=1)
    else:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(1)
        c.sendto(b"x", (host, port))
    print(c.recv(100).decode())
except OSError as e:
    sys.exit(f"{proto}/{port}: {e}")
"""


class Lab:
    """Namespaces named utpk-<tag>-<role>, veths between them, processes inside them."""

    def __init__(self):
        self.tag, self.ns, self.procs = uuid.uuid4().hex[:6], {}, []

    def run(self, *argv, check=True):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        assert p.returncode == 0 or not check, f"{argv}: {p.stderr}"
        return p

    def add(self, *roles):
        for role in roles:
            self.ns[role] = f"utpk-{self.tag}-{role}"
            self.run("ip", "netns", "add", self.ns[role])
            self.run("ip", "-n", self.ns[role], "link", "set", "lo", "up")

    def link(self, a, ifa, b, ifb, ip_a=None, ip_b=None):
        self.run("ip", "-n", self.ns[a], "link", "add", ifa, "type", "veth", "peer", "name",
                 ifb, "netns", self.ns[b])
        for role, ifc, ip in ((a, ifa, ip_a), (b, ifb, ip_b)):
            if ip:
                self.run("ip", "-n", self.ns[role], "addr", "add", ip, "dev", ifc)
            self.run("ip", "-n", self.ns[role], "link", "set", ifc, "up")

    def ex(self, role, *argv, check=True):
        return self.run("ip", "netns", "exec", self.ns[role], *argv, check=check)

    def ping(self, role, dst):
        """True once one echo reply comes back (up to 3 s: a FAILED ARP entry left by an
        earlier negative check needs a retransmit before the path works)."""
        return self.ex(role, "ping", "-c1", "-w3", dst, check=False).returncode == 0

    def no_ping(self, role, dst):
        return self.ex(role, "ping", "-c1", "-W1", dst, check=False).returncode != 0

    def serve(self, role, *specs):
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[role], sys.executable, "-c",
                              SERVER, *specs], stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout.readline().strip() == "ready"

    def connect(self, role, proto, host, port):
        """The peer address the server saw, or None if the connection failed."""
        p = self.ex(role, sys.executable, "-c", CLIENT, proto, host, str(port), check=False)
        return p.stdout.strip() if p.returncode == 0 else None

    def nnf(self, pkg, action, role, ports, tmp_path, **env):
        """Run a lifecycle script exactly as the native driver does."""
        rd = tmp_path / "run"
        rd.mkdir(exist_ok=True)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "UNLITE_ACTION": action,
               "UNLITE_GRAPH_ID": "G1", "UNLITE_NF_ID": "NF1",
               "UNLITE_NF_NAME": pkg.template.name, "UNLITE_NETNS": self.ns[role],
               "UNLITE_PORTS": " ".join(ports),
               "UNLITE_PORT_IDS": " ".join(f"inout:{i}" for i in range(len(ports))),
               "UNLITE_RUN_DIR": str(rd), "UNLITE_PKG_DIR": str(pkg.dir),
               "UNLITE_CONFIG": str(rd / "config.json"), **env}
        return subprocess.run(["ip", "netns", "exec", self.ns[role], "sh", action, "G1", "NF1",
                               str(len(ports)), *ports], cwd=pkg.dir, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=pkg.template.timeout)

    def cleanup(self):
        for p in self.procs:
            p.kill()
            p.wait()
        for ns in self.ns.values():
            for pid in self.run("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            self.run("ip", "netns", "del", ns, check=False)


@pytest.fixture
def lab():
    if os.geteuid() != 0:
        pytest.skip("not root: running NNFs needs network namespaces")
    for tool in ("ip", "nft", "ping"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":" + D.EXTRA_PATH):
            pytest.skip(f"'{tool}' not installed")
    lab = Lab()
    try:
        yield lab
    finally:
        lab.cleanup()


def test_bridge_nnf(lab, repo, tmp_path):
    pkg = repo.resolve("nativeBr")
    lab.add("nf", "a", "b", "c")
    for i, host in enumerate("abc"):
        lab.link(host, "eth0", "nf", f"p{i}", ip_a=f"10.99.0.{i + 1}/24")
    assert lab.no_ping("a", "10.99.0.2")                       # not wired yet
    r = lab.nnf(pkg, "start", "nf", ["p0", "p1", "p2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert lab.ping("a", "10.99.0.2") and lab.ping("a", "10.99.0.3") and lab.ping("c", "10.99.0.2")
    assert lab.nnf(pkg, "stop", "nf", ["p0", "p1", "p2"], tmp_path).returncode == 0
    assert lab.no_ping("a", "10.99.0.2")
    r = lab.nnf(pkg, "start", "nf", ["p0", "p1", "p2"], tmp_path)     # restart after stop
    assert r.returncode == 0, r.stderr
    assert lab.ping("a", "10.99.0.3")


def test_firewall_nnf(lab, repo, tmp_path):
    pkg = repo.resolve("firewall", "firewall.json")
    lab.add("nf", "a", "b")
    lab.link("a", "eth0", "nf", "p0", ip_a="10.99.1.1/24")
    lab.link("b", "eth0", "nf", "p1", ip_a="10.99.1.2/24")
    ports = ["p0", "p1"]
    for bad in ("23;reboot", "23,,445", "70000"):
        r = lab.nnf(pkg, "start", "nf", ports, tmp_path, BLOCK_TCP_PORTS=bad)
        assert r.returncode == 2 and "BLOCK_TCP_PORTS" in r.stderr, r.stderr
    r = lab.nnf(pkg, "start", "nf", ports, tmp_path, BLOCK_TCP_PORTS="23,445",
                BLOCK_UDP_PORTS="5353")
    assert r.returncode == 0, r.stderr
    lab.serve("b", "tcp:23", "tcp:8080", "udp:5353", "udp:5354")
    assert lab.ping("a", "10.99.1.2")
    assert lab.connect("a", "tcp", "10.99.1.2", 8080) == "10.99.1.1"   # L2-transparent
    assert lab.connect("a", "tcp", "10.99.1.2", 23) is None
    assert lab.connect("a", "udp", "10.99.1.2", 5354) == "10.99.1.1"
    assert lab.connect("a", "udp", "10.99.1.2", 5353) is None
    rules = lab.ex("nf", "nft", "list", "table", "bridge", "unlite_fw").stdout
    assert "tcp dport { 23, 445 } counter packets 0" not in rules        # it did drop
    assert lab.nnf(pkg, "stop", "nf", ports, tmp_path).returncode == 0
    assert "unlite_fw" not in lab.ex("nf", "nft", "list", "ruleset").stdout


def test_nat_nnf(lab, repo, tmp_path):
    pkg = repo.resolve("whatever", "nativeNat.json")
    lab.add("nf", "lan", "wan")
    lab.link("lan", "eth0", "nf", "p0", "192.168.77.2/24", "192.168.77.1/24")  # graph unify-ip
    lab.link("wan", "eth0", "nf", "p1", ip_a="10.98.0.2/24")                 # WAN_IP below
    lab.ex("lan", "ip", "route", "add", "default", "via", "192.168.77.1")
    lab.serve("wan", "tcp:8080")
    assert lab.connect("lan", "tcp", "10.98.0.2", 8080) is None             # no routing yet
    r = lab.nnf(pkg, "start", "nf", ["p0", "p1"], tmp_path, WAN_IP="10.98.0.1/24",
                LAN_IP="192.168.99.1/24", DEFAULT_GW="10.98.0.2")
    assert r.returncode == 0, r.stderr
    assert lab.connect("lan", "tcp", "10.98.0.2", 8080) == "10.98.0.1"      # masqueraded
    assert lab.ping("lan", "10.98.0.2")
    assert "192.168.99.1" not in lab.ex("nf", "ip", "addr").stdout          # graph's IP kept
    assert "default via 10.98.0.2" in lab.ex("nf", "ip", "route").stdout
    assert lab.nnf(pkg, "stop", "nf", ["p0", "p1"], tmp_path).returncode == 0
    assert lab.connect("lan", "tcp", "10.98.0.2", 8080) is None
