"""The apk repository ``make feed-apk`` builds (tools/apk.py) through the real apk-tools v3 of
OpenWrt 25.12 and later (3.0.6, from the bundle), with its signature check.

The offline roots are what an image builder fills: ``apk --root ROOT add --no-scripts``
(OpenWrt's rootfs.mk does the same, then runs each package's ``post-install`` itself with
``IPKG_INSTROOT=ROOT``). No ``--allow-untrusted`` anywhere: each root trusts the repository's
public key in ``ROOT/etc/apk/keys/``, as a router does. apk runs on the host here (``--root``
confines it to ROOT; with ``--no-scripts`` it executes nothing). The live test installs on the
sandbox's own root (``/``) with procd running, where the scripts enable, start and stop the
service.

What stands in for what is not here:
- OpenWrt's packages the apks depend on (python3-light, ip-full, kmod-*, luci-base...): a
  signed repository of empty packages with those names (versions that just meet the apks'
  constraints: python3-light 3.10, python3-bottle 0.12.25), as tests/test_opkg_real.py does for
  opkg. apk refuses a package whose dependencies no repository has ("unable to select
  packages"); the programs they would bring are Debian's (python3, ip, nft), Bottle a link
  where python3-bottle puts it.
- ``/etc/init.d/rpcd`` (live test): a script that records each call.

Times are printed (``pytest -s``).
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
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
import apk  # noqa: E402
import feed  # noqa: E402
import ipk  # noqa: E402

EPOCH = 1700000000
APK = owrt.PREFIX / "bin/apk"
IMAGE = ["unlite", "luci-app-unlite", "unlite-usp", "unlite-nnf-bridge"]
CONFIG = "etc/config/unlite"
SHIPPED_CONFIG = (ROOT / "files/etc/config/unlite").read_bytes()
NNFS = sorted(p.parent.name for p in (ROOT / "nnf").glob("*/template.json"))
NAMES = sorted(["unlite", "luci-app-unlite", "unlite-usp"] + [f"unlite-nnf-{n}" for n in NNFS])
APK_DB = ("lib/apk/db", "etc/apk", "var/cache/apk", "var/log/apk.log")   # apk's, not packages'




def output(p):
    return f"(exit {p.returncode})\n{p.stdout}\n{p.stderr}"


def timed(call):
    t0 = time.monotonic()
    p = call()
    return p, time.monotonic() - t0


# -- the repositories ------------------------------------------------------------------------
def ec_key(path):
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    str(path)], check=True, capture_output=True)
    return path


def stand_in_repo(out, ipks, key, versions=None):
    """A signed repository of empty packages named as OpenWrt's, one per dependency of the
    ``ipks`` (name → ipk.Ipk) that they do not hold themselves, at the version the apks'
    constraint names (else 1), or ``versions[name]``."""
    have = set(ipks)
    wanted = sorted({d for i in ipks.values() for d in i.fields["Depends"].split(", ")} - have)
    versions = versions or {}
    pkgs = [ipk.Package(name=n, description=f"stand-in for OpenWrt's {n}",
                        version=versions.get(n, apk.APK_CONSTRAINTS.get(n, ">=1")[2:]) + "-1")
            for n in wanted]
    apk.build_repo(out, key=key, epoch=EPOCH, packages=pkgs)
    return wanted


def flip_a_bit(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    """v1 and v2 (release 2) signed with a fresh P-256 key, the ipks of v1 (to compare with),
    the stand-ins (and stand-ins with a python3-light too old), and broken copies of v1.
    Built before any sandbox of the module starts (files of the host's /tmp made later may
    stay unseen inside)."""
    owrt.require("bin/apk")
    d = tmp_path_factory.mktemp("repos")
    key, other = ec_key(d / "unlite-test.pem"), ec_key(d / "other.pem")
    t0 = time.monotonic()
    v1 = apk.build_repo(d / "v1", key=key, epoch=EPOCH, release="1")
    build_s = time.monotonic() - t0
    v2 = apk.build_repo(d / "v2", key=key, epoch=EPOCH, release="2")
    ipk_feed = feed.build_feed(d / "ipk", unsigned=True, epoch=EPOCH, release="1")
    ipks = {}
    for f in ipk_feed["packages"]:
        i = ipk.read((ipk_feed["dir"] / f).read_bytes())
        ipks[i.fields["Package"]] = i
    r = SimpleNamespace(key=key, v1=v1["dir"], v2=v2["dir"], ipks=ipks, openwrt=d / "openwrt",
                        old_python=d / "old-python", pub=v1["public_key"],
                        version1=apk.apk_version(feed.version("1")),
                        version2=apk.apk_version(feed.version("2")), bad={},
                        build_s=build_s, names=v1["packages"])
    r.stand_ins = stand_in_repo(r.openwrt, ipks, key)
    stand_in_repo(r.old_python, ipks, key, {"python3-light": "3.9"})
    print(f"\napk repository built in {build_s:.2f} s ({len(v1['packages'])} apks); "
          f"{len(r.stand_ins)} stand-ins")

    bad = r.bad["index"] = d / "bad-index"                   # changed after signing
    shutil.copytree(r.v1, bad)
    flip_a_bit(bad / apk.INDEX)
    bad = r.bad["apk"] = d / "bad-apk"                       # an apk changed, index intact
    shutil.copytree(r.v1, bad)
    flip_a_bit(bad / f"unlite-{r.version1}.apk")
    r.bad["unsigned"] = apk.build_repo(d / "unsigned", unsigned=True, epoch=EPOCH)["dir"]
    r.bad["other-key"] = apk.build_repo(d / "other-key", key=other, epoch=EPOCH)["dir"]
    return r


class ApkRoot:
    """An offline root (``apk --root``) that trusts the repositories' key (``pub``) and uses
    the repository folders ``repos`` (their packages.adb)."""

    def __init__(self, path, repos, pub):
        self.path = Path(path)
        self.repos = [Path(r) for r in repos]
        (self.path / "etc/apk/keys").mkdir(parents=True)
        (self.path / "etc/apk/keys" / apk.PUBLIC_KEY).write_text(pub)

    def apk(self, *args, repos=None):
        cmd = [str(APK), "--root", str(self.path)]
        for r in repos or self.repos:
            cmd += ["--repository", str(r / apk.INDEX)]
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    def installed(self):
        """apk's database: {package: version}."""
        db = self.path / "lib/apk/db/installed"
        out, name = {}, None
        for line in (db.read_text().splitlines() if db.exists() else []):
            if line.startswith("P:"):
                name = line[2:]
            elif line.startswith("V:"):
                out[name] = line[2:]
        return out

    def files(self):
        """Every file, link and folder under the root that is not apk's own database."""
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*")
                      if not any(str(p.relative_to(self.path)).startswith(a) for a in APK_DB)
                      and not any(a.startswith(str(p.relative_to(self.path)) + "/")
                                  for a in APK_DB))

    def scripts(self):
        """The scripts apk keeps (lib/apk/db/scripts.tar.gz): {(package, type): text}."""
        out = {}
        with tarfile.open(self.path / "lib/apk/db/scripts.tar.gz") as t:
            for m in t.getmembers():
                nv, _, kind = m.name.rpartition(".")
                pkg = nv.rsplit(".", 1)[0].rsplit("-", 2)[0]      # NAME-VER-rN.Xhash
                out[(pkg, kind)] = t.extractfile(m).read().decode()
        return out


def new_root(tmp_path, repos, name="root", *extra):
    return ApkRoot(tmp_path / name, [repos.v1, repos.openwrt, *extra], repos.pub)


def install(root, *names):
    p = root.apk("add", "--initdb", "--no-scripts", *names)
    assert p.returncode == 0, output(p)
    return p


# -- 0. the repository -----------------------------------------------------------------------
def test_repository_holds_one_apk_per_package_and_verifies_with_its_key(repos, tmp_path):
    assert repos.names == sorted(f"{n}-{repos.version1}.apk" for n in NAMES)
    assert repos.version1.endswith("-r1") and repos.version2.endswith("-r2")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "unlite.pem").write_text(repos.pub)
    p = subprocess.run([str(APK), "--keys-dir", str(keys), "verify",
                        str(repos.v1 / apk.INDEX)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip().endswith("packages.adb: OK"), output(p)
    p = subprocess.run([str(APK), "--keys-dir", str(tmp_path), "verify",      # no key there
                        str(repos.v1 / apk.INDEX)], capture_output=True, text=True)
    assert p.returncode == 1 and "UNTRUSTED signature" in p.stdout, output(p)
    # apk v3 packages carry no signature: the signed index holds their hashes
    p = subprocess.run([str(APK), "--keys-dir", str(keys), "verify",
                        str(repos.v1 / f"unlite-{repos.version1}.apk")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "UNTRUSTED signature" in p.stdout, output(p)
    # OpenWrt's arch for PKGARCH all, and the dependencies with apk's constraints
    dump = "\n".join(_dump_without_signature(repos.v1 / apk.INDEX))
    assert dump.count("\n    arch: noarch\n") == len(NAMES), dump
    for dep in ("python3-light>=3.10", "python3-bottle>=0.12.25", "ip-full",
                f"unlite>={repos.version1.rsplit('-r', 1)[0]}"):
        assert f"\n      - {dep}\n" in dump, dep
    # the published public key is the signing key's
    pub = subprocess.run(["openssl", "ec", "-in", str(repos.key), "-pubout"], check=True,
                         capture_output=True, text=True).stdout
    assert (repos.v1 / apk.PUBLIC_KEY).read_text() == pub == repos.pub


def _dump_without_signature(index):
    p = subprocess.run([str(APK), "adbdump", str(index)], capture_output=True, text=True)
    assert p.returncode == 0, output(p)
    return [ln for ln in p.stdout.splitlines() if not ln.startswith("# sig ")]


def test_builds_are_reproducible_but_for_the_signature(repos, tmp_path):
    t0 = time.monotonic()
    again = apk.build_repo(tmp_path / "again", key=repos.key, epoch=EPOCH, release="1")
    print(f"\nrebuilt in {time.monotonic() - t0:.2f} s (first build {repos.build_s:.2f} s)")
    assert again["packages"] == repos.names
    for n in repos.names:
        assert (again["dir"] / n).read_bytes() == (repos.v1 / n).read_bytes(), n
    a, b = repos.v1 / apk.INDEX, again["dir"] / apk.INDEX
    assert a.read_bytes() != b.read_bytes(), "two ECDSA signatures are expected to differ"
    assert _dump_without_signature(a) == _dump_without_signature(b)
    # and the index does change with the packages' time stamps
    other = apk.build_repo(tmp_path / "other", unsigned=True, epoch=EPOCH + 1)
    assert _dump_without_signature(other["index"]) != _dump_without_signature(a)


def test_versions_and_a_missing_apk_are_clear():
    assert apk.apk_version("0.1.0-1") == "0.1.0-r1"     # apk refuses 0.1.0-1 (exit 99)
    with pytest.raises(apk.ApkError, match="expected X.Y.Z-N"):
        apk.apk_version("0.1.0")
    with pytest.raises(apk.ApkError, match="make openwrt-userland"):
        apk.find_apk("/nonexistent/apk")


def test_a_wrong_key_is_refused_and_the_previous_build_stays(repos, tmp_path):
    out = tmp_path / "repo"
    shutil.copytree(repos.v1, out)
    rsa = tmp_path / "rsa.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(rsa), "2048"], check=True,
                   capture_output=True)
    for bad in (rsa, tmp_path / "missing.pem"):
        with pytest.raises(apk.ApkError, match="ECDSA P-256|no such key file"):
            apk.build_repo(out, key=bad, epoch=EPOCH)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        repos.names + [apk.INDEX, apk.PUBLIC_KEY])


def test_dependency_constraints_follow_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'requires-python = "{apk.APK_CONSTRAINTS["python3-light"]}"' in text
    assert f'"bottle{apk.APK_CONSTRAINTS["python3-bottle"]}"' in text


# -- 1. install ------------------------------------------------------------------------------
def test_signed_repo_installs_into_an_offline_root_as_the_ipk_lays_it_out(repos, tmp_path):
    root = new_root(tmp_path, repos)
    p, took = timed(lambda: root.apk("add", "--initdb", "--no-scripts", *IMAGE))
    assert p.returncode == 0, output(p)
    print(f"\napk add {' '.join(IMAGE)} (offline): {took:.2f} s")
    inst = root.installed()
    assert {n: inst[n] for n in IMAGE} == {n: repos.version1 for n in IMAGE}
    for name in ("python3-light", "python3-bottle", "nftables", "luci-base", "kmod-bridge"):
        assert name in inst, f"{name}: a dependency"

    expected = set()
    for name in IMAGE:
        pkg = repos.ipks[name]
        for m in pkg.data.getmembers():
            rel = m.name[2:]
            if not rel:
                continue
            dest = root.path / rel
            expected.add(rel)
            if m.isdir():
                assert dest.is_dir() and dest.stat().st_mode & 0o7777 == m.mode, rel
                continue
            assert dest.read_bytes() == pkg.data.extractfile(m).read(), rel
            assert dest.stat().st_mode & 0o7777 == m.mode, f"{rel}: mode"
            assert (dest.stat().st_uid, dest.stat().st_gid) == (0, 0), f"{rel}: owner"
        listed = (root.path / f"lib/apk/packages/{name}.list").read_text().splitlines()
        assert listed == pkg.files(), f"{name}.list is not the ipk's files"
    assert (root.path / CONFIG).stat().st_mode & 0o777 == 0o600     # tenants' tokens
    conf = root.path / "lib/apk/packages/unlite.conffiles"
    assert conf.read_text() == "/etc/config/unlite\n"
    assert (root.path / "lib/apk/packages/unlite.conffiles_static").read_text() == \
        f"/etc/config/unlite {hashlib.sha256(SHIPPED_CONFIG).hexdigest()}\n"
    # nothing else: the ipks' files and folders, apk's lists, the stand-ins' (empty) lists
    meta = {"lib", "lib/apk", "lib/apk/packages"} | {
        f"lib/apk/packages/{n}.{k}" for n in inst for k in ("list", "conffiles",
                                                               "conffiles_static")}
    assert set(root.files()) - expected <= meta, sorted(set(root.files()) - expected - meta)
    # --no-scripts: nothing ran (no rc.d links), but apk keeps the scripts for later
    assert not (root.path / "etc/rc.d").exists()
    kept = root.scripts()
    defs = {p.name: p for p in feed.packages(EPOCH, tmp_path)}        # the single source
    for name in IMAGE:
        want = apk.scripts(defs[name])
        got = {k: v for (n, k), v in kept.items() if n == name}
        assert got == want, f"{name}: the scripts apk stored are not the builder's"
        for kind, text in got.items():
            s = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True)
            assert s.returncode == 0 and text.startswith("#!/bin/sh\n"), f"{name} {kind}"
    post = kept[("unlite", "post-install")]
    assert 'export pkgname="unlite"' in post and "\ndefault_postinst\n" in post
    assert "compileall" in post                         # the ipk's postinst-pkg body
    upgrade = kept[("unlite", "post-upgrade")]
    assert upgrade.startswith("#!/bin/sh\nexport PKG_UPGRADE=1\n") and upgrade.index(
        "\ndefault_postinst\n") < upgrade.index("__pycache__") < upgrade.index(
        "compileall") < upgrade.index('"$i" restart')       # opkg's order: old prerm-pkg first
    assert "\ndefault_prerm\n" in kept[("unlite", "pre-deinstall")]
    assert kept[("unlite", "post-deinstall")] == repos.ipks["unlite"].control_file("postrm")


def test_dependency_constraints_are_enforced_by_apk(repos, tmp_path):
    root = ApkRoot(tmp_path / "root", [repos.v1, repos.old_python], repos.pub)
    p = root.apk("add", "--initdb", "--no-scripts", "unlite")
    assert p.returncode != 0, output(p)
    assert "python3-light>=3.10" in p.stderr and "unable to select packages" in p.stderr, \
        output(p)
    assert "unlite" not in root.installed() and not (root.path / "usr/bin/unlite").exists()


# -- 2. upgrade ------------------------------------------------------------------------------
def test_upgrade_keeps_an_edited_config_and_puts_the_new_one_beside_it(repos, tmp_path):
    root = new_root(tmp_path, repos)
    install(root, *IMAGE)
    conf = root.path / CONFIG
    edited = conf.read_text().replace("option listen '127.0.0.1:8080'",
                                      "option listen '192.0.2.1:8080'")
    assert edited != conf.read_text()
    conf.write_text(edited)

    v2 = [repos.v2, repos.openwrt]
    p, took = timed(lambda: root.apk("upgrade", "--no-scripts", repos=v2))
    print(f"\napk upgrade (offline): {took:.2f} s")
    assert p.returncode == 0, output(p)
    assert f"Upgrading unlite ({repos.version1} -> {repos.version2})" in p.stdout, output(p)
    assert "Installing file to etc/config/unlite.apk-new" in p.stdout, output(p)
    assert {n: root.installed()[n] for n in IMAGE} == {n: repos.version2 for n in IMAGE}
    assert conf.read_text() == edited, "the upgrade replaced the edited /etc/config/unlite"
    new = root.path / (CONFIG + ".apk-new")
    assert new.read_bytes() == SHIPPED_CONFIG
    for c in (conf, new):                        # tenants' tokens: root only, both of them
        assert c.stat().st_mode & 0o777 == 0o600, c
    assert (root.path / "usr/bin/unlite").read_bytes() == \
        repos.ipks["unlite"].data.extractfile("./usr/bin/unlite").read()

    # an unedited config is simply replaced
    plain = new_root(tmp_path, repos, "plain")
    install(plain, "unlite")
    p = plain.apk("upgrade", "--no-scripts", repos=v2)
    assert p.returncode == 0 and "apk-new" not in p.stdout, output(p)
    assert not (plain.path / (CONFIG + ".apk-new")).exists()
    assert (plain.path / CONFIG).read_bytes() == SHIPPED_CONFIG


# -- 3. remove -------------------------------------------------------------------------------
def test_del_removes_every_packaged_file(repos, tmp_path):
    root = new_root(tmp_path, repos)
    install(root, *IMAGE)
    files = {n: repos.ipks[n].files() for n in IMAGE}

    # unlite alone: apk only takes it out of the world file while others need it, exit 0
    p = root.apk("del", "--no-scripts", "unlite")
    assert p.returncode == 0, output(p)
    assert "World updated, but the following packages are not removed due to:" in p.stdout
    needs = re.search(r"unlite:((?:\s+[a-z0-9-]+)+)", p.stdout)
    assert needs and sorted(needs.group(1).split()) == sorted(n for n in IMAGE if n != "unlite"), \
        output(p)
    assert root.installed()["unlite"] == repos.version1
    assert all((root.path / f.lstrip("/")).exists() for f in files["unlite"])

    p, took = timed(lambda: root.apk("del", "--no-scripts", *IMAGE))
    print(f"\napk del {' '.join(IMAGE)} (offline): {took:.2f} s")
    assert p.returncode == 0, output(p)
    assert root.installed() == {}, "apk del also removes what only they needed (not opkg)"
    assert root.files() == [], f"apk del left: {root.files()}"     # folders too, config too

    # an edited config stays, and only it
    edited = new_root(tmp_path, repos, "edited")
    install(edited, "unlite")
    conf = edited.path / CONFIG
    conf.write_text(conf.read_text() + "\n# edited\n")
    p = edited.apk("del", "--no-scripts", "unlite")
    assert p.returncode == 0, output(p)
    assert conf.read_text().endswith("# edited\n")
    assert edited.files() == ["etc/config", CONFIG]


# -- 4. tampering ----------------------------------------------------------------------------
# apk's words for each broken index. A flipped bit of packages.adb (deflate-compressed, its
# signature randomised at each build) lands in a different place of the stream each time, and
# apk's reason varies with it: "UNTRUSTED signature", "ADB block error", "unexpected end of
# file", "file format is invalid or inconsistent" were all seen; each is a refusal.
REFUSED = {"index": r"[^\n]+", "unsigned": "UNTRUSTED signature",
           "other-key": "UNTRUSTED signature"}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_tampered_unsigned_or_untrusted_index_is_refused(repos, tmp_path, case):
    """``apk update`` only warns and exits 0 then; ``apk add`` of a package not yet installed
    fails, and ``apk verify`` is the check that says so."""
    index = repos.bad[case] / apk.INDEX

    def says(text):
        """apk's reason for refusing the index, from its output (None: it gave none)."""
        m = re.search(rf"{re.escape(str(index))}: ({REFUSED[case]})", text)
        return m and m[1]

    root = ApkRoot(tmp_path / "root", [repos.bad[case], repos.openwrt], repos.pub)
    p = root.apk("add", "--initdb", repos=[repos.openwrt])        # an empty database
    assert p.returncode == 0, output(p)
    p = root.apk("update")
    print(f"\napk update with a bad index ({case}): exit {p.returncode}, {says(p.stderr)!r}")
    assert p.returncode == 0, output(p)
    assert "WARNING: opening" in p.stderr and says(p.stderr), output(p)
    p = root.apk("add", "--no-scripts", "unlite")
    assert p.returncode != 0, output(p)
    assert says(p.stderr) and "unlite (no such package)" in p.stderr, output(p)
    assert root.installed() == {} and not (root.path / "usr/bin/unlite").exists()
    p = subprocess.run([str(APK), "--keys-dir", str(root.path / "etc/apk/keys"), "verify",
                        str(index)], capture_output=True, text=True)
    assert p.returncode == 1 and says(p.stdout + p.stderr), output(p)


def test_a_tampered_apk_is_refused_and_none_of_it_is_installed(repos, tmp_path):
    root = ApkRoot(tmp_path / "root", [repos.bad["apk"], repos.openwrt], repos.pub)
    p = root.apk("add", "--initdb", "--no-scripts", "unlite")
    assert p.returncode != 0, output(p)
    assert f"ERROR: unlite-{repos.version1}: file integrity error" in p.stderr, output(p)
    assert "unlite" not in root.installed()
    assert not [f for f in root.files() if "unlite" in f], root.files()
    # unlike opkg, apk has installed the dependencies before it met the bad file
    assert "python3-light" in root.installed()


# -- 5. image builder: the post-install scripts run with IPKG_INSTROOT -----------------------
def test_image_builder_root_enables_the_service_and_starts_nothing(repos, tmp_path):
    """As OpenWrt's rootfs.mk: ``apk add --no-scripts``, then each ``*.post-install`` of
    lib/apk/db/scripts.tar run by ``bash`` with IPKG_INSTROOT=ROOT (with base-files' shell
    side in ROOT). The init script is enabled in ROOT only; python3 compiles nothing and
    rpcd is not reloaded (traced, and a python3 on PATH that records calls)."""
    root = new_root(tmp_path, repos)
    for src in ("openwrt-files", "openwrt-files-newer"):            # later ones win
        shutil.copytree(owrt.BUNDLE / "src" / src, root.path, dirs_exist_ok=True)
    jshn = root.path / "usr/share/libubox/jshn.sh"
    jshn.parent.mkdir(parents=True)
    shutil.copy(owrt.PREFIX / "share/libubox/jshn.sh", jshn)
    install(root, *IMAGE)
    (root.path / "etc/rc.d").mkdir()                     # as rootfs.mk's prepare_rootfs
    stub = tmp_path / "stub-bin"
    stub.mkdir()
    (stub / "python3").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/python3-calls\n")
    (stub / "python3").chmod(0o755)

    scripts = {n: t for (n, k), t in root.scripts().items() if k == "post-install"}
    assert sorted(scripts) == sorted(IMAGE)
    for name, text in sorted(scripts.items()):
        f = tmp_path / f"{name}.post-install"
        f.write_text(text)
        p = subprocess.run(["env", "-i", f"PATH={stub}:/usr/bin:/bin",
                            f"IPKG_INSTROOT={root.path}", "bash", "-x", str(f)],
                           cwd=root.path, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"{name}: {output(p)}"
        assert "rpcd reload" not in p.stderr and " start" not in p.stderr, p.stderr
    rc_d = root.path / "etc/rc.d"
    assert sorted(os.listdir(rc_d)) == ["K10unlite", "S95unlite"]
    assert os.readlink(rc_d / "S95unlite") == "../init.d/unlite"
    assert not (tmp_path / "python3-calls").exists(), "compiled bytecode into the image"
    assert not list(root.path.rglob("__pycache__"))


# -- 6. live: the scripts under the real procd -----------------------------------------------
class Box(owrt.BareRoot):
    """apk, ubusd, rpcd and procd in the bundle's sandbox over a rootfs folder that holds
    nothing of unlite: the repository's packages bring it. apk works on the sandbox's own
    root: its database lands in the /usr overlay (Debian's /lib is /usr/lib) and /etc."""

    def __init__(self, tmp_path, procd):
        super().__init__(tmp_path / "root", procd)


def repositories(*folders):
    """/etc/apk/repositories.d/customfeeds.list: one index URL (here a path) a line."""
    return "".join(f"{Path(f) / apk.INDEX}\n" for f in folders)


@pytest.mark.parametrize("backend", ["nft"])          # apk does not care which one runs
def test_live_add_starts_upgrade_restarts_del_stops(gateway, repos, tmp_path):
    """``apk add`` on the box itself, procd running in the gateway namespace: post-install
    (default_postinst, pkgname exported) enables and starts /etc/init.d/unlite, then the
    ipk's body compiles and reloads rpcd; the daemon registers ubus object ``unlite`` and
    deploys a graph. ``apk upgrade`` runs only the new package's post-upgrade (PKG_UPGRADE=1:
    no re-enable; ``start`` of a running procd service with an unchanged command is a no-op,
    so tools/apk.py's post-upgrade restarts it): the new daemon restores the graph. ``apk
    del`` runs pre-deinstall (default_prerm: stop, disable) and post-deinstall, tears the
    graph down and leaves no file of the package."""
    owrt.require("bin/apk", "sbin/procd")
    box = Box(tmp_path, procd=gateway.ns)
    box.write("etc/apk/keys/" + apk.PUBLIC_KEY, repos.pub)
    box.write("etc/apk/repositories.d/customfeeds.list", repositories(repos.v1, repos.openwrt))
    box.stand_in_rpcd()
    import bottle                   # where python3-bottle puts it for the python3 inside
    site = box.path / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True)
    if not Path("/usr/lib/python3/dist-packages/bottle.py").exists():
        os.symlink(bottle.__file__, site / "bottle.py")
    box.sb.start()
    sb = box.sb

    running = functools.partial(owrt.service_pid, sb, "unlite")
    answers = functools.partial(owrt.unlite_list, box.run)
    graph_complete = functools.partial(owrt.first_graph_complete, box.run)

    try:
        p = box.run("apk", "add", "--initdb")
        assert p.returncode == 0, output(p)
        p = box.run("apk", "update")
        assert p.returncode == 0 and "WARNING" not in p.stderr, output(p)
        p, took = timed(lambda: box.run("apk", "add", "unlite", "unlite-nnf-bridge"))
        assert p.returncode == 0, output(p)
        assert f"Executing unlite-{repos.version1}.post-install" in p.stdout, output(p)
        pid = until("procd runs unlite after apk add", running)
        up = time.monotonic()
        assert until("ubus object unlite answers", answers) == {"graphs": []}
        print(f"\napk add unlite unlite-nnf-bridge (live): {took:.2f} s; ubus object "
              f"answering {time.monotonic() - up + took:.2f} s after the start")
        assert box.exists("/etc/rc.d/S95unlite") and box.exists("/etc/rc.d/K10unlite")
        assert box.rpcd_calls() == ["reload"]
        assert box.exists("/usr/lib/unlite/unlite/__pycache__"), \
            "post-install compiled nothing"
        out = sb.call("unlite", "put", {"id": "g1", "graph": bridge_graph("g1")})
        assert out == {"id": "g1", "created": True}, out
        gateway.addr(0, "10.78.0.1/24")
        gateway.addr(1, "10.78.0.2/24")
        assert gateway.ping(0, "10.78.0.2"), "no traffic through the graph"

        p = box.run("sh", "-c", f"printf '{repositories(repos.v2, repos.openwrt)}' > "
                                "/etc/apk/repositories.d/customfeeds.list && apk update")
        assert p.returncode == 0, output(p)
        nfs = sb.call("unlite", "status", {"id": "g1"})["VNFs"]
        pinger = Pinger(gateway.hosts[0], "10.78.0.2")
        t0 = time.monotonic()
        p, took = timed(lambda: box.run("apk", "upgrade"))
        assert p.returncode == 0, output(p)
        assert f"Upgrading unlite ({repos.version1} -> {repos.version2})" in p.stdout
        assert f"Executing unlite-{repos.version2}.post-upgrade" in p.stdout, output(p)
        assert "pre-deinstall" not in p.stdout, "apk ran the old package's scripts"
        new = until("procd runs the upgraded unlite", lambda: running(other_than=pid))
        until("the graph restored after the upgrade", graph_complete, timeout=30)
        sent, received = pinger.stop()          # the NF ran on while the daemon was replaced
        assert sent > 20 and received == sent, f"{sent - received} of {sent} pings lost"
        assert sb.call("unlite", "status", {"id": "g1"})["VNFs"] == nfs, "the NF was made anew"
        print(f"apk upgrade (live): {took:.2f} s; new daemon with the graph restored "
              f"{time.monotonic() - t0:.2f} s after the command started")
        assert new != pid
        assert box.exists("/etc/rc.d/S95unlite"), "the upgrade disabled the service"
        assert box.exists("/usr/lib/unlite/unlite/__pycache__"), "post-upgrade compiled nothing"
        assert box.rpcd_calls() == ["reload", "reload"]
        assert gateway.ping(0, "10.78.0.2"), "no traffic after the upgrade"

        p, took = timed(lambda: box.run("apk", "del", "unlite-nnf-bridge", "unlite"))
        assert p.returncode == 0, output(p)
        assert f"Executing unlite-{repos.version2}.pre-deinstall" in p.stdout, output(p)
        assert f"Executing unlite-{repos.version2}.post-deinstall" in p.stdout, output(p)
        t0 = time.monotonic()
        until("procd drops unlite after apk del", lambda: sb.instances("unlite") == {},
              timeout=40)
        print(f"apk del (live): {took:.2f} s; daemon gone "
              f"{time.monotonic() - t0 + took:.2f} s after the command started")
        assert box.run("ubus", "-t", "1", "list", "unlite").returncode != 0
        assert netlab.unlite_objects(gateway.ns) == netlab.EMPTY, "the graph outlived it"
        assert box.rpcd_calls() == ["reload"] * 3
        for gone in ("/usr/bin/unlite", "/etc/init.d/unlite", "/usr/libexec/rpcd/unlite",
                     "/etc/rc.d/S95unlite", "/etc/rc.d/K10unlite", "/" + CONFIG,
                     "/usr/lib/unlite", "/usr/share/unlite", "/lib/apk/packages/unlite.list"):
            assert not box.exists(gone), f"{gone} outlived apk del"
        assert box.exists("/etc/unlite")        # the daemon's graphs: the user's data
    finally:
        box.sb.stop()
