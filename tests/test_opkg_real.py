"""The feed ``make feed`` builds (tools/feed.py) through OpenWrt's real opkg (opkg-lede), with
its signature check (opkg-key → usign), in the bundle's sandbox (tools/owrt.py).

tests/test_feed.py checks the files without opkg; here opkg itself reads them: ``opkg update``
checks ``Packages.sig`` against the key ``opkg-key add`` trusted (``/etc/opkg/keys/FINGERPRINT.pub``
inside the sandbox, also for an offline root), ``opkg install/upgrade/remove`` works on an
offline root (``opkg -o``, what image builders fill) and on the sandbox's own root with procd
running, where the maintainer scripts start, restart and stop the service.

Two things stand in for what is not here:
- OpenWrt's packages the ipks depend on (python3-light, ip-full, kmod-*, luci-base...): a feed
  of empty packages with those names. opkg-lede refuses to install a package whose Depends no
  feed provides, even with ``--nodeps`` or ``--force-depends`` ("cannot find dependency X",
  then "found, but incompatible with the architectures configured"), so they must exist; the
  programs they would bring are Debian's (python3, ip, nft), Bottle a link where
  python3-bottle puts it.
- ``/etc/init.d/rpcd`` (OpenWrt's rpcd init script is not in the bundle, and the sandbox's
  rpcd runs outside procd): a script that records each call.

Offline roots live in the sandbox root's ``run/`` folder, which is the sandbox's ``/run`` by a
bind mount: what opkg writes inside is what the test reads outside (under the host's /tmp it
would land in the sandbox's /tmp overlay, a tmpfs). Times are printed (``pytest -s``).
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import netlab
import owrt
from owrt import until
from test_hitless import Pinger
from conftest import ROOT, bridge_graph

sys.path.insert(0, str(ROOT / "tools"))
import feed  # noqa: E402
import ipk  # noqa: E402

EPOCH = 1700000000
USIGN = owrt.PREFIX / "bin/usign"
NFT = pytest.mark.parametrize("backend", ["nft"])      # opkg does not care which one runs
IMAGE = ["unlite", "luci-app-unlite", "unlite-usp", "unlite-nnf-bridge"]
CONFIG = "/etc/config/unlite"
SHIPPED_CONFIG = (ROOT / "files/etc/config/unlite").read_bytes()




def output(p):
    """A finished command's exit status and output, for assertion messages."""
    return f"(exit {p.returncode})\n{p.stdout}\n{p.stderr}"


# -- the feeds -------------------------------------------------------------------------------
def stand_in_feed(out, provided, key):
    """A signed feed of empty packages named as OpenWrt's, one per name the packages of feed
    folder ``provided`` depend on that it does not hold itself."""
    stanzas = [ipk.parse_control(s) for s in (provided / "Packages").read_text().split("\n\n")
               if s.strip()]
    have = {s["Package"] for s in stanzas}
    wanted = sorted({d.strip() for s in stanzas for d in s.get("Depends", "").split(",")
                     if d.strip()} - have)
    out.mkdir()
    entries = []
    for name in wanted:
        pkg = ipk.Package(name=name, version="1", description=f"stand-in for OpenWrt's {name}")
        blob, control = ipk.build(pkg, EPOCH)
        (out / pkg.filename).write_bytes(blob)
        entries.append((pkg.filename, blob, control))
    text = feed.index(entries)
    (out / "Packages").write_text(text)
    (out / "Packages.gz").write_bytes(ipk._gzip(text.encode()))
    feed.sign(key, out / "Packages", out / "Packages.sig")
    return wanted


def usign_key(folder, name):
    """A fresh key made by OpenWrt's usign (the tool a router has): (secret, public)."""
    sec, pub = folder / f"{name}.sec", folder / f"{name}.pub"
    subprocess.run([str(USIGN), "-G", "-s", str(sec), "-p", str(pub), "-c", f"{name} key"],
                   check=True, capture_output=True)
    return sec, pub


def tampered_copy(src, dst):
    """A copy of feed folder ``src`` to break (the original stays good)."""
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def feeds(tmp_path_factory):
    """v1 and v2 (release 2) of the feed signed with a fresh usign key, the stand-ins, and
    broken copies of v1. Built before any sandbox of the module starts (files of the host's
    /tmp made later may stay unseen inside)."""
    owrt.require("bin/opkg", "bin/usign", "sbin/procd")
    if not shutil.which(feed.SIGNIFY):
        pytest.skip(f"{feed.SIGNIFY} not installed (make feed signs with it): "
                    f"apt-get install signify-openbsd")
    d = tmp_path_factory.mktemp("feeds")
    key, _ = usign_key(d, "unlite-test")
    t0 = time.monotonic()
    v1 = feed.build_feed(d / "v1", key=key, epoch=EPOCH, release="1")
    build_s = time.monotonic() - t0
    v2 = feed.build_feed(d / "v2", key=key, epoch=EPOCH, release="2")
    f = SimpleNamespace(key=key, v1=v1["dir"], v2=v2["dir"], openwrt=d / "openwrt",
                        pub=v1["dir"] / "unlite-feed.pub", fingerprint=v1["fingerprint"],
                        version1=feed.version("1"), version2=feed.version("2"), bad={})
    f.stand_ins = stand_in_feed(f.openwrt, f.v1, key)
    print(f"\nfeed built in {build_s:.2f} s ({len(v1['packages'])} ipks); "
          f"{len(f.stand_ins)} stand-ins")

    # the index changed after signing: unlite's entry points to another ipk (an attacker's)
    bad = f.bad["index"] = tampered_copy(f.v1, d / "bad-index")
    evil = ipk.Package(name="unlite", version=f.version1, description="not unlite",
                       files={"/usr/bin/unlite": (b"#!/bin/sh\necho evil\n", 0o755)})
    blob, _ = ipk.build(evil, EPOCH)
    good = (bad / evil.filename).read_bytes()
    (bad / evil.filename).write_bytes(blob)
    text = (bad / "Packages").read_text()
    text = text.replace(f"Size: {len(good)}\n", f"Size: {len(blob)}\n").replace(
        ipk.sha256(good), ipk.sha256(blob))
    assert ipk.sha256(blob) in text
    (bad / "Packages").write_text(text)
    (bad / "Packages.gz").write_bytes(ipk._gzip(text.encode()))
    # an ipk's bytes changed (same size), or its size, the signed index left as it was
    name = f"unlite_{f.version1}_all.ipk"
    bad = f.bad["ipk-bytes"] = tampered_copy(f.v1, d / "bad-ipk-bytes")
    raw = bytearray((bad / name).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (bad / name).write_bytes(bytes(raw))
    bad = f.bad["ipk-size"] = tampered_copy(f.v1, d / "bad-ipk-size")
    (bad / name).write_bytes((bad / name).read_bytes() + b"\0")
    # a good feed signed by a key the box does not trust
    other, _ = usign_key(d, "other")
    f.bad["untrusted-key"] = feed.build_feed(d / "bad-key", key=other, epoch=EPOCH,
                                             release="1")["dir"]
    return f


def opkg_conf(*sources):
    """/etc/opkg.conf as OpenWrt's (dest root, lists in /var, signatures checked), arch all,
    with ``src/gz NAME file://FOLDER`` for each (name, folder)."""
    lines = ["dest root /", "lists_dir ext /var/opkg-lists", "option check_signature 1",
             "arch all 1"]
    lines += [f"src/gz {name} file://{path}" for name, path in sources]
    return "\n".join(lines) + "\n"


# -- the sandbox and its roots ---------------------------------------------------------------
class Box(owrt.BareRoot):
    """OpenWrt's opkg, opkg-key, usign, ubusd and rpcd (procd too if ``procd``) in the bundle's
    sandbox over a rootfs folder that holds nothing of unlite: the packages bring it."""

    def __init__(self, tmp_path, feeds, procd=None):
        super().__init__(tmp_path / "root", procd)
        self.feeds = feeds

    def start(self):
        self.sb.start()
        p = self.run("opkg-key", "add", str(self.feeds.pub))      # the router's way to trust
        assert p.returncode == 0, output(p)
        assert (self.path / f"etc/opkg/keys/{self.feeds.fingerprint}.pub").is_file()
        return self

    def stop(self):
        self.sb.stop()


class OfflineRoot:
    """A root for ``opkg -o`` in the sandbox's /run (ROOT/run, bound on it): ``inside`` is its
    path for opkg, ``host`` the same folder for the test."""

    def __init__(self, box, name, conf):
        self.box, self.inside, self.host = box, f"/run/{name}", box.path / "run" / name
        (self.host / "var/lock").mkdir(parents=True)        # opkg -o locks ROOT/var/lock
        (self.host / "etc").mkdir()
        (self.host / "etc/opkg.conf").write_text(conf)

    def opkg(self, *args, conf="opkg.conf", env=()):
        return self.box.run("env", *env, "opkg", "-o", self.inside,
                            "-f", f"{self.inside}/etc/{conf}", *args)

    def status(self):
        """opkg's status file: {package: its fields}."""
        f = self.host / "usr/lib/opkg/status"
        if not f.exists():
            return {}
        stanzas = [ipk.parse_control(s) for s in f.read_text().split("\n\n") if s.strip()]
        return {s["Package"]: s for s in stanzas}

    def add_base_files(self):
        """What base-files brings to a real image (the bundle's copies of OpenWrt's rc.common,
        /lib/functions.sh, procd.sh...; libubox's jshn.sh): default_postinst needs them."""
        for src in ("openwrt-files", "openwrt-files-newer"):       # later ones win
            shutil.copytree(owrt.BUNDLE / "src" / src, self.host, dirs_exist_ok=True)
        jshn = self.host / "usr/share/libubox/jshn.sh"
        jshn.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(owrt.PREFIX / "share/libubox/jshn.sh", jshn)
        (self.host / "etc/rc.d").mkdir()


@pytest.fixture(scope="module")
def box(feeds, tmp_path_factory):
    """One sandbox (no procd) for the offline tests, each with roots of its own: stopping one
    takes seconds here (its processes linger as zombies until this machine's PID 1 reaps)."""
    b = Box(tmp_path_factory.mktemp("offline"), feeds).start()
    yield b
    b.stop()


_roots = itertools.count()


def offline(box, *sources):
    """A new offline root whose opkg.conf lists v1 (or ``sources``) and the stand-ins."""
    f = box.feeds
    return OfflineRoot(box, f"root{next(_roots)}", opkg_conf(
        *(sources or [("unlite", f.v1)]), ("openwrt", f.openwrt)))


def update(off, conf="opkg.conf", feeds=2):
    p = off.opkg("update", conf=conf)
    assert p.returncode == 0, output(p)
    assert p.stdout.count("Signature check passed.") == feeds, output(p)
    return p


def read_ipk(folder, name, version):
    return ipk.read((folder / f"{name}_{version}_all.ipk").read_bytes())


def timed(call):
    t0 = time.monotonic()
    p = call()
    return p, time.monotonic() - t0


# -- 1. install ------------------------------------------------------------------------------
def test_signed_feed_installs_into_an_offline_root(box):
    f = box.feeds
    off = offline(box)
    update(off)
    p, took = timed(lambda: off.opkg("install", *IMAGE))
    assert p.returncode == 0, output(p)
    print(f"\nopkg install {' '.join(IMAGE)} (offline, with "
          f"{len(p.stdout.split('Installing ')) - 1 - len(IMAGE)} stand-ins): {took:.2f} s")

    status = off.status()
    info = off.host / "usr/lib/opkg/info"
    for name in IMAGE:
        pkg = read_ipk(f.v1, name, f.version1)
        assert status[name]["Version"] == f.version1
        assert status[name]["Status"] == "install user installed"     # asked for by name
        listed = sorted(ln.split("\t")[0] for ln in
                        (info / f"{name}.list").read_text().splitlines())
        assert listed == pkg.files(), f"opkg's {name}.list is not the ipk's files"
        for m in pkg.data.getmembers():
            dest = off.host / m.name
            if m.isdir():
                assert dest.is_dir(), m.name
                continue
            assert dest.read_bytes() == pkg.data.extractfile(m).read(), m.name
            assert dest.stat().st_mode & 0o7777 == m.mode, f"{m.name}: mode"
        for script in ("control", "postinst", "prerm"):
            assert (info / f"{name}.{script}").is_file(), f"{name}.{script}"
    for name in ("python3-light", "python3-bottle", "nftables", "luci-base", "kmod-bridge"):
        assert status[name]["Status"] == "install ok installed", f"{name}: a dependency"
    # the conffile, recorded with the sha256 of what was installed (opkg-lede; md5 before)
    conf = off.host / CONFIG.lstrip("/")
    assert conf.read_bytes() == SHIPPED_CONFIG and conf.stat().st_mode & 0o777 == 0o600
    assert status["unlite"]["Conffiles"].split() == [CONFIG, hashlib.sha256(
        SHIPPED_CONFIG).hexdigest()]
    # offline, opkg runs no maintainer script (without --force-postinstall): nothing enabled
    assert not (off.host / "etc/rc.d").exists()
    assert not (off.host / "usr/lib/unlite/unlite/__pycache__").exists()


# -- 2. upgrade ------------------------------------------------------------------------------
def test_upgrade_keeps_an_edited_config_and_puts_the_new_one_beside_it(box):
    f = box.feeds
    off = offline(box)
    (off.host / "etc/opkg-v2.conf").write_text(opkg_conf(("unlite", f.v2),
                                                         ("openwrt", f.openwrt)))
    update(off)
    p = off.opkg("install", "unlite")
    assert p.returncode == 0, output(p)
    conf = off.host / CONFIG.lstrip("/")
    edited = conf.read_text().replace("option listen '127.0.0.1:8080'",
                                      "option listen '192.0.2.1:8080'")
    assert edited != conf.read_text()
    conf.write_text(edited)

    update(off, conf="opkg-v2.conf")
    p = off.opkg("list-upgradable", conf="opkg-v2.conf")
    assert f"unlite - {f.version1} - {f.version2}" in p.stdout, output(p)
    p, took = timed(lambda: off.opkg("upgrade", "unlite", conf="opkg-v2.conf"))
    print(f"\nopkg upgrade unlite (offline): {took:.2f} s")
    assert p.returncode == 0, output(p)          # the conffile note is an "error" on stderr
    assert f"Upgrading unlite on root from {f.version1} to {f.version2}" in p.stdout
    assert "is different from the conffile in the new package" in p.stderr, output(p)
    assert off.status()["unlite"]["Version"] == f.version2
    assert conf.read_text() == edited, "the upgrade replaced the edited /etc/config/unlite"
    new = off.host / (CONFIG.lstrip("/") + "-opkg")
    assert new.read_bytes() == SHIPPED_CONFIG
    for c in (conf, new):                         # tenants' tokens: root only, both of them
        assert c.stat().st_mode & 0o777 == 0o600, c
    # the new package's files are in place, none of v1's left that v2 lacks
    pkg = read_ipk(f.v2, "unlite", f.version2)
    assert pkg.data.extractfile("./usr/bin/unlite").read() == \
        (off.host / "usr/bin/unlite").read_bytes()
    assert CONFIG in off.opkg("list-changed-conffiles").stdout


# -- 3. remove -------------------------------------------------------------------------------
def test_remove_deletes_the_files_and_keeps_an_edited_config(box):
    f = box.feeds
    off = offline(box)
    update(off)
    p = off.opkg("install", "unlite", "unlite-nnf-bridge")
    assert p.returncode == 0, output(p)
    conf = off.host / CONFIG.lstrip("/")
    conf.write_text(conf.read_text() + "\n# edited\n")
    files = {n: read_ipk(f.v1, n, f.version1).files() for n in ("unlite", "unlite-nnf-bridge")}

    # opkg refuses to remove a package others depend on, and says how to force it
    p = off.opkg("remove", "unlite")
    assert p.returncode != 0 and "No packages removed" in p.stdout, output(p)
    assert "unlite-nnf-bridge" in p.stderr and "--force-removal-of-dependent-packages" in \
        p.stderr, output(p)
    assert all((off.host / x.lstrip("/")).exists() for x in files["unlite"])

    p = off.opkg("remove", "unlite-nnf-bridge", "unlite")
    assert p.returncode == 0, output(p)
    assert f"Not deleting modified conffile {off.inside}{CONFIG}" in p.stdout, output(p)
    left = [x for n in files for x in files[n]
            if x != CONFIG and (off.host / x.lstrip("/")).exists()]
    assert left == [], f"opkg remove left package files: {left}"
    assert conf.read_text().endswith("# edited\n"), "the edited config went with the package"
    status = off.status()
    assert "unlite" not in status and "unlite-nnf-bridge" not in status
    assert not list((off.host / "usr/lib/opkg/info").glob("unlite*"))
    # what the removed packages pulled in stays (opkg removes no dependency by itself)
    assert status["python3-light"]["Status"] == "install ok installed"


# -- 4. tampering ----------------------------------------------------------------------------
def test_a_tampered_index_or_an_untrusted_key_is_refused(box):
    """``opkg update`` exits 0 even then: it prints "Signature check failed." and drops the
    list, so only a package installed before stays installable. Check the output."""
    f = box.feeds
    for case in ("index", "untrusted-key"):
        off = offline(box, ("unlite", f.bad[case]))
        p = off.opkg("update")
        print(f"\nopkg update of a feed with a bad signature ({case}): exit {p.returncode}")
        assert "Signature check failed." in p.stdout, output(p)
        assert p.stdout.count("Signature check passed.") == 1, output(p)   # the stand-ins'
        assert not (off.host / "var/opkg-lists/unlite").exists(), "the bad list was kept"
        p = off.opkg("install", "unlite")
        assert p.returncode != 0 and "Unknown package 'unlite'" in p.stdout, output(p)
        assert "unlite" not in off.status()
        assert not (off.host / "usr/bin/unlite").exists()


@pytest.mark.parametrize("case", ["ipk-bytes", "ipk-size"])
def test_a_tampered_ipk_is_refused_and_nothing_is_installed(box, case):
    off = offline(box, ("unlite", box.feeds.bad[case]))
    update(off)                                   # the index is the signed one
    p = off.opkg("install", "unlite")
    assert p.returncode != 0, output(p)
    assert "Checksum or size mismatch for package unlite" in p.stderr, output(p)
    assert off.status() == {}, "opkg installed something (a dependency?) before refusing"
    assert not (off.host / "usr/bin/unlite").exists()


# -- 5. image builder: offline root with the scripts run -------------------------------------
def test_image_builder_root_enables_the_service_and_starts_nothing(feeds, tmp_path):
    """As OpenWrt's include/rootfs.mk builds an image: ``opkg --force-postinstall install``
    with IPKG_NO_SCRIPT=1 (the postinst returns at once), then each PKG.postinst run by
    ``bash`` with IPKG_INSTROOT=ROOT. The init script is enabled in ROOT only; procd (running
    beside it) gets no service, rpcd no reload, python3 compiles nothing."""
    box = Box(tmp_path, feeds, procd=True)
    box.stand_in_rpcd()
    box.start()
    try:
        img = offline(box)
        img.add_base_files()
        update(img)
        p = img.opkg("--force-postinstall", "install", *IMAGE,
                     env=["IPKG_NO_SCRIPT=1", f"IPKG_INSTROOT={img.inside}"])
        assert p.returncode == 0, output(p)
        assert not (img.host / "etc/rc.d/S95unlite").exists(), "IPKG_NO_SCRIPT ignored"
        scripts = sorted(p.name for p in (img.host / "usr/lib/opkg/info").glob("*.postinst"))
        assert [s for s in scripts if "unlite" in s] == sorted(f"{n}.postinst" for n in IMAGE)
        for s in scripts:
            p = box.run("sh", "-c", f'cd {img.inside} && IPKG_INSTROOT={img.inside} '
                                    f'bash ./usr/lib/opkg/info/{s}')
            assert p.returncode == 0, f"{s}: {output(p)}"

        rc_d = img.host / "etc/rc.d"
        assert sorted(os.listdir(rc_d)) == ["K10unlite", "S95unlite"]
        assert os.readlink(rc_d / "S95unlite") == "../init.d/unlite"
        assert box.sb.instances("unlite") == {}, "an offline install started the service"
        assert box.rpcd_calls() == [], "an offline install reloaded the box's rpcd"
        assert not box.exists("/etc/rc.d/S95unlite"), "enabled on the box, not in the image"
        assert not list(img.host.rglob("__pycache__")), "compiled bytecode into the image"
        ps = box.run("ps", "-eo", "args").stdout
        assert "-m unlite" not in ps and "/usr/bin/unlite" not in ps, ps
    finally:
        box.stop()


# -- 6. live: the maintainer scripts under the real procd ------------------------------------
@NFT
def test_live_install_starts_upgrade_restarts_remove_stops(gateway, feeds, tmp_path):
    """``opkg install`` on the box itself (IPKG_INSTROOT empty), procd running in the gateway
    namespace: postinst compiles the bytecode, reloads rpcd, enables and starts
    /etc/init.d/unlite, whose daemon (the shipped /etc/config/unlite, unchanged) registers ubus
    object ``unlite`` and deploys a graph; ``opkg upgrade`` stops it (old prerm), replaces
    the files and starts the new one, which restores the graph; ``opkg remove`` stops it
    (prerm), tears the graph down and leaves no file of the package.

    Dependencies come from the stand-in feed (see the module's docstring), not from
    ``--nodeps``/``--force-depends``, which opkg-lede does not honour for a package whose
    dependencies no feed has. luci-app-unlite is left out: /www is not among the sandbox's
    overlays, so opkg would write it on the host."""
    f = feeds
    box = Box(tmp_path, feeds, procd=gateway.ns)
    box.write("etc/opkg.conf", opkg_conf(("unlite", f.v1), ("openwrt", f.openwrt)))
    box.write("etc/opkg-v2.conf", opkg_conf(("unlite", f.v2), ("openwrt", f.openwrt)))
    box.stand_in_rpcd()
    import bottle                   # where python3-bottle puts it for the python3 inside
    site = box.path / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True)
    if not Path("/usr/lib/python3/dist-packages/bottle.py").exists():
        os.symlink(bottle.__file__, site / "bottle.py")
    box.start()
    sb = box.sb

    running = functools.partial(owrt.service_pid, sb, "unlite")
    answers = functools.partial(owrt.unlite_list, box.run)
    graph_complete = functools.partial(owrt.first_graph_complete, box.run)

    try:
        p = box.run("opkg", "update")
        assert p.returncode == 0 and p.stdout.count("Signature check passed.") == 2, output(p)
        p, took = timed(lambda: box.run("opkg", "install", "unlite", "unlite-nnf-bridge"))
        assert p.returncode == 0, output(p)
        pid = until("procd runs unlite after opkg install", running)
        up = time.monotonic()
        assert until("ubus object unlite answers", answers) == {"graphs": []}
        print(f"\nopkg install unlite unlite-nnf-bridge (live): {took:.2f} s; "
              f"ubus object answering {time.monotonic() - up + took:.2f} s after the start")
        assert box.exists("/etc/rc.d/S95unlite") and box.exists("/etc/rc.d/K10unlite")
        assert box.rpcd_calls() == ["reload"]
        assert box.exists("/usr/lib/unlite/unlite/__pycache__"), "postinst compiled nothing"
        caps = sb.call("unlite", "capabilities")
        assert [c["name"] for c in caps["functional-capabilities"]] == ["bridge"]

        out = sb.call("unlite", "put", {"id": "g1", "graph": bridge_graph("g1")})
        assert out == {"id": "g1", "created": True}, out
        gateway.addr(0, "10.78.0.1/24")
        gateway.addr(1, "10.78.0.2/24")
        assert gateway.ping(0, "10.78.0.2"), "no traffic through the graph"

        p = box.run("opkg", "-f", "/etc/opkg-v2.conf", "update")
        assert p.returncode == 0, output(p)
        nfs = sb.call("unlite", "status", {"id": "g1"})["VNFs"]
        pinger = Pinger(gateway.hosts[0], "10.78.0.2")
        t0 = time.monotonic()
        p, took = timed(lambda: box.run("opkg", "-f", "/etc/opkg-v2.conf", "upgrade", "unlite"))
        assert p.returncode == 0, output(p)
        assert f"Upgrading unlite on root from {f.version1} to {f.version2}" in p.stdout
        new = until("procd runs the upgraded unlite", lambda: running(other_than=pid))
        until("the graph restored after the upgrade", graph_complete, timeout=30)
        sent, received = pinger.stop()          # the NF ran on while the daemon was replaced
        assert sent > 20 and received == sent, f"{sent - received} of {sent} pings lost"
        assert sb.call("unlite", "status", {"id": "g1"})["VNFs"] == nfs, "the NF was made anew"
        print(f"opkg upgrade unlite (live): {took:.2f} s; new daemon with the graph "
              f"restored {time.monotonic() - t0:.2f} s after the command started")
        assert gateway.ping(0, "10.78.0.2"), "no traffic after the upgrade"
        assert box.exists("/etc/rc.d/S95unlite"), "the upgrade disabled the service"
        assert box.rpcd_calls() == ["reload", "reload"]     # the new postinst's (not postrm's)
        assert new != pid

        p, took = timed(lambda: box.run("opkg", "remove", "unlite-nnf-bridge", "unlite"))
        assert p.returncode == 0, output(p)
        t0 = time.monotonic()
        until("procd drops unlite after opkg remove", lambda: sb.instances("unlite") == {},
              timeout=40)
        print(f"opkg remove (live): {took:.2f} s; daemon gone "
              f"{time.monotonic() - t0 + took:.2f} s after the command started")
        assert box.run("ubus", "-t", "1", "list", "unlite").returncode != 0
        assert netlab.unlite_objects(gateway.ns) == netlab.EMPTY, "the graph outlived it"
        assert box.rpcd_calls() == ["reload"] * 3
        for gone in ("/usr/bin/unlite", "/etc/init.d/unlite", "/usr/libexec/rpcd/unlite",
                     "/etc/rc.d/S95unlite", "/etc/rc.d/K10unlite", CONFIG,   # not edited
                     "/usr/lib/unlite", "/usr/share/unlite"):    # the folders: postrm's rmdir
            assert not box.exists(gone), f"{gone} outlived opkg remove"
        # the graphs the daemon kept are the user's data, not package files
        assert box.exists("/etc/unlite")
    finally:
        box.stop()
