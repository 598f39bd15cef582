"""The OpenWrt packages and the signed feed ``make feed`` builds (tools/feed.py, tools/ipk.py).

Each ipk is unpacked and checked the way opkg reads it (openwrt.md: gzip'd GNU tar, ./-rooted
members, control fields, Installed-Size = uncompressed data tar); the feed index is checked
against the files; ``Packages.sig`` is verified with signify-openbsd (usign's format); the
feed is installed into a scratch root laid out as opkg does, and the maintainer scripts are
run there offline. Nothing here needs root or namespaces.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import feed  # noqa: E402
import ipk  # noqa: E402

SIGNIFY = shutil.which("signify-openbsd")
EPOCH = 1700000000
NNFS = sorted(p.parent.name for p in (ROOT / "nnf").glob("*/template.json"))  # package = folder
NAMES = sorted(["unlite", "luci-app-unlite", "unlite-usp"] + [f"unlite-nnf-{n}" for n in NNFS])
needs_signify = pytest.mark.skipif(not SIGNIFY, reason="signify-openbsd not installed "
                                                       "(apt-get install signify-openbsd)")


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    if not SIGNIFY:
        return None
    d = tmp_path_factory.mktemp("key")
    subprocess.run([SIGNIFY, "-G", "-n", "-c", "test key", "-p", str(d / "t.pub"),
                    "-s", str(d / "t.sec")], check=True, capture_output=True)
    return d / "t.sec"


@pytest.fixture(scope="module")
def built(tmp_path_factory, key):
    out = tmp_path_factory.mktemp("feed")
    r = feed.build_feed(out, key=key, unsigned=key is None, epoch=EPOCH)
    r["ipks"] = {ipk.read((out / f).read_bytes()).fields["Package"]: out / f
                 for f in r["packages"]}
    return r


def tar_headers(raw: bytes):
    """(name, typeflag, magic) of every header block of an uncompressed tar."""
    off, out = 0, []
    while off + 512 <= len(raw):
        block = raw[off:off + 512]
        if block == b"\0" * 512:
            break
        size = int(block[124:136].strip(b"\0 ") or b"0", 8)
        out.append((block[:100].rstrip(b"\0").decode(), block[156:157], block[257:265]))
        off += 512 + (size + 511) // 512 * 512
    return out


def check_gzip(blob, what):
    assert blob[:2] == b"\x1f\x8b", f"{what}: not gzip"
    flags, mtime = blob[3], int.from_bytes(blob[4:8], "little")
    assert not flags & 0x08, f"{what}: gzip header carries a file name (not gzip -n)"
    assert mtime == 0, f"{what}: gzip header carries a time"
    return gzip.decompress(blob)


def check_tar(raw, what):
    heads = tar_headers(raw)
    assert heads, f"{what}: empty tar"
    for name, flag, magic in heads:
        assert flag not in (b"x", b"g"), f"{what}: pax header for {name} (opkg mis-reads pax)"
        assert magic == b"ustar  \0", f"{what}: {name} is not GNU tar format"
    t = tarfile.open(fileobj=io.BytesIO(raw))
    for m in t.getmembers():
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), f"{what}: owner of {m.name}"
        assert m.mtime == EPOCH, f"{what}: mtime of {m.name}"
        assert m.name == "." or m.name.startswith("./"), f"{what}: {m.name} not ./-rooted"
    return t


# -- the ipks --------------------------------------------------------------------------------
def test_feed_holds_one_ipk_per_package_and_no_bundled_bottle(built):
    assert sorted(built["ipks"]) == NAMES
    for name, path in built["ipks"].items():
        assert path.name == f"{name}_{feed.version()}_all.ipk"
    assert not any("bottle" in p.name for p in built["dir"].iterdir())


@pytest.mark.parametrize("name", NAMES)
def test_ipk_structure_and_control_fields(built, name):
    blob = built["ipks"][name].read_bytes()
    outer = check_tar(check_gzip(blob, "ipk"), "outer")
    assert [m.name for m in outer.getmembers()] == \
        ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]     # ipkg-build's order
    assert outer.extractfile("./debian-binary").read() == b"2.0\n"
    data_raw = check_gzip(outer.extractfile("./data.tar.gz").read(), "data.tar.gz")
    ctl_raw = check_gzip(outer.extractfile("./control.tar.gz").read(), "control.tar.gz")
    data, ctl = check_tar(data_raw, "data"), check_tar(ctl_raw, "control")

    control = ctl.extractfile("./control").read().decode()
    fields = ipk.parse_control(control)
    order = [k for k in ipk.FIELD_ORDER if k in fields]
    assert list(fields) == order, "control fields out of OpenWrt's order"
    for k in ("Package", "Version", "Depends", "Source", "SourceName", "License", "Section",
              "Architecture", "Installed-Size", "Description"):
        assert fields.get(k), f"control field {k} missing"
    assert fields["Package"] == name == fields["SourceName"]
    assert fields["Version"] == feed.version() and re.fullmatch(r"\d+\.\d+\.\d+-\d+",
                                                                 fields["Version"])
    assert fields["Architecture"] == "all"
    assert int(fields["Installed-Size"]) == len(data_raw)         # as ipkg-build computes it
    assert fields["License"] == "Apache-2.0"

    members = {m.name: m for m in data.getmembers()}
    for n, m in members.items():
        if m.isdir():
            assert m.mode == 0o755, n
        else:
            assert m.isfile(), f"{n}: only files and folders expected"
            assert "/".join(n.split("/")[:-1]) in members, f"{n}: parent folder not in the tar"
            assert "__pycache__" not in n and not n.endswith(".pyc"), n

    ctl_names = sorted(m.name for m in ctl.getmembers() if m.isfile())
    assert "./control" in ctl_names and "./postinst" in ctl_names and "./prerm" in ctl_names
    for m in ctl.getmembers():
        if m.isfile() and m.name != "./control" and m.name != "./conffiles":
            text = ctl.extractfile(m).read().decode()
            assert m.mode == 0o755 and text.startswith("#!/bin/sh\n"), m.name
            p = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True)
            assert p.returncode == 0, f"{name} {m.name}: {p.stderr}"
    if "./conffiles" in ctl_names:
        for c in ctl.extractfile("./conffiles").read().decode().split():
            assert "." + c in members, f"conffile {c} not in the package"


def test_unlite_package_contents(built):
    pkg = ipk.read(built["ipks"]["unlite"].read_bytes())
    files = set(pkg.files())
    for f in ("/usr/bin/unlite", "/etc/init.d/unlite", "/etc/config/unlite",
              "/usr/libexec/rpcd/unlite", "/usr/share/rpcd/acl.d/unlite.json",
              "/usr/lib/unlite/unlite/__init__.py", "/usr/lib/unlite/unlite/__main__.py",
              "/usr/lib/unlite/unlite/cli.py", "/usr/lib/unlite/unlite/api.py",
              "/usr/lib/unlite/unlite/uci.py", "/usr/lib/unlite/unlite/ubus/rpcd.py",
              "/usr/lib/unlite/unlite/node/__init__.py", "/usr/lib/unlite/unlite/network/nft.py"):
        assert f in files, f"{f} missing from the unlite ipk"
    src = {"/usr/lib/unlite/unlite/" + p.relative_to(ROOT / "unlite").as_posix()
           for p in (ROOT / "unlite").rglob("*.py") if "__pycache__" not in p.parts}
    usp = {f for f in src if f.startswith("/usr/lib/unlite/unlite/usp/")}
    assert usp and src - usp <= files, f"sources missing: {sorted(src - usp - files)}"
    assert not usp & files, "the USP Service is unlite-usp's"
    assert not any("bottle" in f for f in files), "Bottle comes from OpenWrt's python3-bottle"
    modes = {m.name: m.mode for m in pkg.data.getmembers()}
    assert modes["./etc/config/unlite"] == 0o600          # it holds tenants' tokens
    assert modes["./etc/init.d/unlite"] == modes["./usr/libexec/rpcd/unlite"] == 0o755
    assert modes["./usr/bin/unlite"] == 0o755
    assert "./usr/share/unlite/nnf" in modes                     # the NNF packages' catalog
    assert pkg.control_file("conffiles") == "/etc/config/unlite\n"
    deps = pkg.fields["Depends"].split(", ")
    assert deps == feed.UNLITE_DEPENDS
    for d in ("python3-light", "python3-bottle", "ip-full", "kmod-veth", "nftables",
              "kmod-nft-netdev", "kmod-nft-fwd-netdev"):
        assert d in deps
    for s in ("postinst-pkg", "prerm-pkg", "postrm"):
        assert pkg.control_file(s), f"unlite has no {s}"


def test_usp_package_is_the_usp_service_and_needs_obuspa(built):
    pkg = ipk.read(built["ipks"]["unlite-usp"].read_bytes())
    want = sorted(f"/usr/lib/unlite/unlite/usp/{p.name}"
                  for p in (ROOT / "unlite" / "usp").glob("*.py"))
    assert pkg.files() == want and "/usr/lib/unlite/unlite/usp/service.py" in want
    assert pkg.fields["Depends"] == "unlite, obuspa" == ", ".join(feed.USP_DEPENDS)
    for s in ("postinst-pkg", "prerm-pkg", "postrm"):
        assert pkg.control_file(s), f"unlite-usp has no {s}"
    assert "usp/__pycache__" in pkg.control_file("prerm-pkg")
    assert 'rmdir "${IPKG_INSTROOT}/usr/lib/unlite/unlite/usp"' in pkg.control_file("postrm")


def test_luci_package_contents(built):
    pkg = ipk.read(built["ipks"]["luci-app-unlite"].read_bytes())
    assert pkg.files() == ["/usr/share/luci/menu.d/luci-app-unlite.json",
                           "/usr/share/rpcd/acl.d/luci-app-unlite.json",
                           "/www/luci-static/resources/unlite/graph.js",
                           "/www/luci-static/resources/view/unlite/graphs.js"]
    assert pkg.fields["Depends"] == "luci-base, unlite" and pkg.fields["Section"] == "luci"


@pytest.mark.parametrize("nnf", NNFS)
def test_nnf_package_is_the_packed_nnf_with_its_dependencies(built, nnf, tmp_path):
    pkg = ipk.read(built["ipks"][f"unlite-nnf-{nnf}"].read_bytes())
    base = "/usr/share/unlite/nnf/"
    assert pkg.files() == [base + f"{nnf}.json", base + f"{nnf}.tgz"]
    tgz = pkg.data.extractfile("." + base + f"{nnf}.tgz").read()
    index = json.loads(pkg.data.extractfile("." + base + f"{nnf}.json").read())
    src = ROOT / "nnf" / nnf                       # the package is named after the folder
    assert index["sha256"] == hashlib.sha256(tgz).hexdigest()
    assert index["name"] == json.loads((src / "template.json").read_text())["name"]
    # the same bytes `unlite nnf pack` makes with the same SOURCE_DATE_EPOCH
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "unlite", "nnf", "pack", str(src), "-o",
                    str(tmp_path / f"{nnf}.tgz")], check=True, env=env, capture_output=True)
    assert (tmp_path / f"{nnf}.tgz").read_bytes() == tgz
    deps = pkg.fields["Depends"].split(", ")
    assert deps[0] == "unlite"
    t = json.loads((src / "template.json").read_text())
    for c in t["dependencies"]["capability"]:
        want = c["name"] if c["type"] == "package" else feed.EXEC_PACKAGES[c["name"]]
        assert want is None or want in deps, f"{nnf}: {c['name']} → {want} not in {deps}"


def test_nnf_dependency_without_openwrt_package_is_a_clear_error(tmp_path):
    (tmp_path / "template.json").write_text(json.dumps(
        {"name": "x", "dependencies": {"capability": [{"name": "frobnicate",
                                                       "type": "executable"}]}}))
    with pytest.raises(feed.FeedError, match="frobnicate.*EXEC_PACKAGES"):
        feed.nnf_depends(tmp_path / "template.json")


def test_sdk_makefiles_match_the_built_packages(built):
    """openwrt/*/Makefile (SDK builds) install the same files with the same dependencies."""
    def depends(makefile, package):
        text = (ROOT / "openwrt" / makefile / "Makefile").read_text().replace("\\\n", " ")
        m = re.search(rf"define Package/{re.escape(package)}\n.*?DEPENDS:=([^\n]*)", text,
                      re.S)
        assert m, f"no DEPENDS for {package} in openwrt/{makefile}/Makefile"
        return [d.lstrip("+") for d in m.group(1).split()]

    assert depends("unlite", "unlite") == feed.UNLITE_DEPENDS
    assert depends("luci-app-unlite", "luci-app-unlite") == ["luci-base", "unlite"]
    assert depends("unlite-usp", "unlite-usp") == feed.USP_DEPENDS
    for nnf in NNFS:
        got = ipk.read(built["ipks"][f"unlite-nnf-{nnf}"].read_bytes()).fields["Depends"]
        assert sorted(depends("unlite-nnf", f"unlite-nnf-{nnf}")) == sorted(got.split(", "))
    for name, mk in (("unlite", "unlite"), ("luci-app-unlite", "luci-app-unlite"),
                     ("unlite-usp", "unlite-usp")):
        text = (ROOT / "openwrt" / mk / "Makefile").read_text()
        for f in ipk.read(built["ipks"][name].read_bytes()).files():
            if not f.startswith("/usr/lib/unlite/"):
                assert f in text or f.rsplit("/", 1)[0] in text, f"{mk}/Makefile lacks {f}"


# -- the feed --------------------------------------------------------------------------------
def test_packages_index_matches_the_ipks(built):
    d = built["dir"]
    text = (d / "Packages").read_text()
    assert check_gzip((d / "Packages.gz").read_bytes(), "Packages.gz") == text.encode()
    stanzas = [ipk.parse_control(s) for s in text.split("\n\n") if s.strip()]
    assert [s["Package"] for s in stanzas] == NAMES
    for s in stanzas:
        path = d / s["Filename"]
        blob = path.read_bytes()
        assert int(s["Size"]) == len(blob)
        assert s["SHA256sum"] == hashlib.sha256(blob).hexdigest()
        control = ipk.read(blob).fields
        assert {k: v for k, v in s.items() if k not in ("Filename", "Size", "SHA256sum")} \
            == control
        keys = list(s)
        assert keys.index("SHA256sum") == keys.index("Description") - 1


@needs_signify
def test_packages_sig_verifies_with_signify_and_fails_when_tampered(built, key, tmp_path):
    d = built["dir"]
    pub = d / "unlite-feed.pub"
    ok = subprocess.run([SIGNIFY, "-V", "-p", str(pub), "-m", str(d / "Packages"),
                         "-x", str(d / "Packages.sig")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "Packages"
    bad.write_bytes((d / "Packages").read_bytes().replace(b"Size: ", b"Size:  ", 1))
    nok = subprocess.run([SIGNIFY, "-V", "-p", str(pub), "-m", str(bad),
                          "-x", str(d / "Packages.sig")], capture_output=True, text=True)
    assert nok.returncode != 0, "a changed Packages still verifies"
    # usign's format: comment line + base64("Ed" + 8-byte key id + 64-byte signature); the
    # public key is the one signify generated with the secret key
    comment, b64 = (d / "Packages.sig").read_text().splitlines()
    sig = base64.b64decode(b64)
    assert comment.startswith("untrusted comment: ") and len(sig) == 74 and sig[:2] == b"Ed"
    assert sig[2:10].hex() == built["fingerprint"]
    assert pub.read_text().splitlines()[1] == key.with_suffix(".pub").read_text().splitlines()[1]
    assert base64.b64decode(pub.read_text().splitlines()[1])[2:10] == sig[2:10]


@needs_signify
def test_throwaway_key_is_made_once_and_reused(tmp_path):
    k = feed.throwaway_key(tmp_path / "k" / "feed.sec")
    assert k.exists() and oct(k.stat().st_mode & 0o777) == "0o600"
    fp1, pub1 = feed.public_key(k)
    assert feed.throwaway_key(tmp_path / "k" / "feed.sec") == k
    assert feed.public_key(k) == (fp1, pub1)
    assert not subprocess.run(["git", "-C", str(ROOT), "ls-files", "--error-unmatch",
                               "build/feed-key"], capture_output=True).returncode == 0


def test_builds_are_reproducible(built, key, tmp_path):
    again = feed.build_feed(tmp_path / "again", key=key, unsigned=key is None, epoch=EPOCH)
    names = sorted(p.name for p in built["dir"].iterdir())
    assert names == sorted(p.name for p in again["dir"].iterdir())
    for n in names:
        assert (built["dir"] / n).read_bytes() == (again["dir"] / n).read_bytes(), n
    other = feed.build_feed(tmp_path / "other", unsigned=True, epoch=EPOCH + 1)
    assert (other["dir"] / "Packages").read_bytes() != (built["dir"] / "Packages").read_bytes()


# -- installed into a scratch root, as opkg lays it out --------------------------------------
def install_all(ipks, root):
    order = ["unlite", "luci-app-unlite"] + [n for n in sorted(ipks) if n.startswith("unlite-")]
    return {n: ipk.opkg_install(ipks[n], root) for n in order}


def test_feed_installs_into_a_scratch_root(built, tmp_path):
    root = tmp_path / "root"
    pkgs = install_all(built["ipks"], root)
    info = root / "usr/lib/opkg/info"
    for name, p in pkgs.items():
        listed = (info / f"{name}.list").read_text().split()
        assert listed == p.files()
        for f in listed:
            assert (root / f.lstrip("/")).is_file(), f
        for s in ("control", "postinst", "prerm"):
            assert (info / f"{name}.{s}").is_file(), f"{name}.{s}"
    for f in ("etc/init.d/unlite", "usr/libexec/rpcd/unlite", "usr/bin/unlite"):
        assert os.access(root / f, os.X_OK), f
    for nnf in NNFS:
        assert (root / f"usr/share/unlite/nnf/{nnf}.tgz").is_file()
    status = (root / "usr/lib/opkg/status").read_text()
    md5 = hashlib.md5((root / "etc/config/unlite").read_bytes()).hexdigest()
    assert "Package: unlite\n" in status and f"Conffiles:\n /etc/config/unlite {md5}\n" in status
    # every shell script that lands on the box parses (busybox ash is POSIX sh)
    scripts = [root / "etc/init.d/unlite", root / "usr/libexec/rpcd/unlite",
               root / "usr/bin/unlite"] + sorted(p for p in info.iterdir()
                                                 if p.suffix in (".postinst", ".prerm",
                                                                 ".postrm", ".postinst-pkg",
                                                                 ".prerm-pkg"))
    for s in scripts:
        p = subprocess.run(["sh", "-n", str(s)], capture_output=True, text=True)
        assert p.returncode == 0, f"{s}: {p.stderr}"
    for j in root.rglob("*.json"):
        json.loads(j.read_text())


def test_an_edited_conffile_survives_an_upgrade(built, tmp_path):
    root = tmp_path / "root"
    ipk.opkg_install(built["ipks"]["unlite"], root)
    conf = root / "etc/config/unlite"
    conf.write_text(conf.read_text().replace("127.0.0.1:8080", "127.0.0.1:9090"))
    ipk.opkg_install(built["ipks"]["unlite"], root)
    assert "127.0.0.1:9090" in conf.read_text()
    assert "127.0.0.1:8080" in (root / "etc/config/unlite-opkg").read_text()


FUNCTIONS_SH = """# stand-in for /lib/functions.sh: default_postinst sources PKG.postinst-pkg
# from the (offline) root, as base-files does, and records that it ran
default_postinst() {
	local pkgname=$(basename ${1%.*})
	echo "default_postinst $pkgname" >> "${IPKG_INSTROOT}/ran"
	if [ -f "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.postinst-pkg" ]; then
		( . "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.postinst-pkg" )
	fi
}
default_prerm() {
	local pkgname=$(basename ${1%.*})
	echo "default_prerm $pkgname" >> "${IPKG_INSTROOT}/ran"
	if [ -f "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.prerm-pkg" ]; then
		( . "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.prerm-pkg" )
	fi
}
"""


def _stub_path(tmp_path):
    """A PATH whose python3 records its arguments instead of running."""
    bin_ = tmp_path / "stub-bin"
    bin_.mkdir()
    (bin_ / "python3").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/python3-calls\n")
    (bin_ / "python3").chmod(0o755)
    return f"{bin_}:/usr/bin:/bin"


def test_maintainer_scripts_offline_touch_only_the_root(built, tmp_path):
    root = tmp_path / "root"
    install_all(built["ipks"], root)
    info = root / "usr/lib/opkg/info"
    env = {"PATH": _stub_path(tmp_path), "IPKG_INSTROOT": str(root)}
    # no /lib/functions.sh in the root: the generic scripts do nothing and succeed
    p = subprocess.run(["sh", str(info / "unlite.postinst")], env=env, capture_output=True)
    assert p.returncode == 0 and not (root / "ran").exists()
    (root / "lib").mkdir()
    (root / "lib/functions.sh").write_text(FUNCTIONS_SH)
    caches = [root / "usr/lib/unlite/unlite/__pycache__",
              root / "usr/lib/unlite/unlite/network/__pycache__"]
    for c in caches:                     # what compileall left on the box
        c.mkdir()
        (c / "x.cpython-311.pyc").write_bytes(b"")
    for name in ("unlite", "luci-app-unlite"):
        for script in ("postinst", "prerm"):
            p = subprocess.run(["sh", "-x", str(info / f"{name}.{script}")], env=env,
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            assert "rpcd" not in p.stderr.replace("# ", ""), \
                f"{name}.{script} offline would reload rpcd:\n{p.stderr}"
    assert (root / "ran").read_text().split("\n")[:4] == [
        "default_postinst unlite", "default_prerm unlite", "default_postinst luci-app-unlite",
        "default_prerm luci-app-unlite"]
    assert not (tmp_path / "python3-calls").exists(), "offline postinst compiled bytecode"
    assert not any(c.exists() for c in caches), "prerm left the compiled bytecode"
    assert (root / "usr/lib/unlite/unlite/cli.py").is_file()
    p = subprocess.run(["sh", str(info / "unlite.postrm")], env=env, capture_output=True)
    assert p.returncode == 0


def test_unlite_postinst_pkg_live_compiles_and_reloads_rpcd(built, tmp_path):
    root = tmp_path / "root"
    ipk.opkg_install(built["ipks"]["unlite"], root)
    env = {"PATH": _stub_path(tmp_path)}                          # IPKG_INSTROOT unset: live
    p = subprocess.run(["sh", "-x", str(root / "usr/lib/opkg/info/unlite.postinst-pkg")],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "python3-calls").read_text() == \
        "-m compileall -q /usr/lib/unlite/unlite\n"
    assert "-x /etc/init.d/rpcd" in p.stderr                     # reloads rpcd where it exists


def test_the_prerm_removes_the_bytecode_of_every_package_folder():
    """Bytecode compiled at install time is in no file list: the prerm's globs must reach the
    deepest package folder (``unlite/compute/cgroup``), in the feed's and OpenWrt's Makefile."""
    folders = {p.parent.relative_to(ROOT / "unlite") for p in (ROOT / "unlite").rglob("*.py")
               if "__pycache__" not in p.parts}
    makefile = (ROOT / "openwrt" / "unlite" / "Makefile").read_text()
    for script in (feed.UNLITE_PRERM, makefile):
        globs = {g.count("*/") for g in re.findall(r"/usr/lib/unlite/unlite/((?:\*/)*)__pycache__",
                                                    script)}
        assert {len(f.parts) for f in folders} <= globs, (sorted(globs), sorted(folders))
