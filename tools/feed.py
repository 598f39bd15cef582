"""``make feed``: unlite's OpenWrt packages and a signed opkg feed, without an OpenWrt SDK.

    python3 tools/feed.py [-o build/feed] [--key SECRET_KEY] [--unsigned] [--release N]

Packages (the SDK Makefiles in ``openwrt/`` build the same ones):
- ``unlite``               daemon + CLI (``/usr/lib/unlite``, ``/usr/bin/unlite``), procd init
                           script, UCI config (conffile), rpcd plugin + ACL
- ``luci-app-unlite``      the LuCI page (JavaScript view, menu entry, ACL)
- ``unlite-usp``           the USP Service (``unlite/usp/``), optional; depends on obuspa
                           (``openwrt/obuspa``: not in OpenWrt's feeds)
- ``unlite-nnf-NAME``      one per NNF in ``nnf/``: the packed NNF in ``/usr/share/unlite/nnf``,
                           depending on the OpenWrt packages its template's dependencies name
``python3-bottle`` comes from OpenWrt's packages feed: depended on, not bundled.

The feed folder: the ipks, ``Packages`` (each control + Filename, Size, SHA256sum, as
OpenWrt's ``ipkg-make-index.sh``), ``Packages.gz``, ``Packages.sig`` (ed25519, usign/signify
format, over ``Packages``) and ``unlite-feed.pub`` (the key to trust on the router).
Reproducible: same sources, key and SOURCE_DATE_EPOCH (default: the last commit's time) →
byte-identical files (Ed25519 signatures are deterministic). Without ``--key``, a throw-away
key is made once in ``build/feed-key/`` (git-ignored) and reused; it is never committed.
Signing runs ``signify-openbsd`` (Debian package signify-openbsd), a build-time tool.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ipk  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "files"
RELEASE = "1"
URL = "https://example.invalid/unlite"
SIGNIFY = "signify-openbsd"
DEFAULT_KEY = ROOT / "build" / "feed-key" / "unlite-feed.sec"

# What the daemon needs on the box. The python3-* packages are the ones whose modules the daemon
# imports (tests/test_openwrt.py runs it with only these modules importable):
# python3-codecs for unicodedata, which Bottle imports; -email for http.client; -urllib, -logging.
UNLITE_DEPENDS = ["python3-light", "python3-logging", "python3-urllib", "python3-email",
                  "python3-codecs", "python3-bottle", "ip-full", "kmod-veth", "nftables",
                  "kmod-nft-netdev", "kmod-nft-fwd-netdev"]

# NNF template dependency (executable) → OpenWrt package; None: busybox or base-files has it
# unlite-usp: the Service, and the Broker it registers with (openwrt/obuspa: not in OpenWrt's
# feeds)
USP_DEPENDS = ["unlite", "obuspa"]
EXEC_PACKAGES = {
    "ip": "ip-full", "nft": "nftables", "tc": "tc-full", "iptables": "iptables-nft",
    "ip6tables": "ip6tables-nft", "ebtables": "ebtables-nft", "conntrack": "conntrack",
    "swanctl": "strongswan-swanctl", "charon": "strongswan-charon", "unshare": "unshare",
    "ovs-vsctl": "openvswitch", "ovs-ofctl": "openvswitch", "dnsmasq": "dnsmasq",
    "sh": None, "mount": None, "umount": None, "sed": None, "awk": None, "grep": None,
    "sleep": None, "kill": None, "cat": None, "tr": None, "cut": None, "ping": None,
    "nc": None, "logger": None, "timeout": None, "mkdir": None, "rm": None,
}
# kernel modules an NNF's scripts need that its template cannot name
NNF_KMODS = {"bridge": ["kmod-bridge"], "shared-bridge": ["kmod-bridge"],
             "firewall": ["kmod-bridge", "kmod-nft-bridge"],
             "firewall-ebtables": ["kmod-bridge", "kmod-nft-bridge"],
             "nat": ["kmod-nft-nat"],
             # charon's plugins are separate OpenWrt packages the template cannot name
             "ipsec-client": ["kmod-tun", "strongswan-mod-vici", "strongswan-mod-socket-default",
                              "strongswan-mod-kernel-netlink", "strongswan-mod-kernel-libipsec",
                              "strongswan-mod-kdf", "strongswan-mod-openssl",
                              "strongswan-mod-nonce", "strongswan-mod-random"]}

POSTINST = """#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
"""
PRERM = """#!/bin/sh
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
"""
# Sourced by default_postinst before it enables (and, on a live box, starts) /etc/init.d/*.
UNLITE_POSTINST = """#!/bin/sh
# offline (image builder: IPKG_INSTROOT set): touch nothing outside the root
[ -n "${IPKG_INSTROOT}" ] && exit 0
# compile once now, not on every start (the package ships sources: any python3 3.x)
python3 -m compileall -q /usr/lib/unlite/unlite >/dev/null 2>&1
# rpcd rereads its ACLs (unlite.json) and asks its exec plugins for their methods: ours,
# /usr/libexec/rpcd/unlite, declines (prints {}) in the default mode, option ubus 'daemon',
# where the daemon registers ubus object "unlite" itself; in mode 'rpcd' it is the object
[ -x /etc/init.d/rpcd ] && /etc/init.d/rpcd reload
exit 0
"""
UNLITE_PRERM = """#!/bin/sh
# the bytecode compiled at install time is not in the package's file list: remove it
rm -rf "${IPKG_INSTROOT}"/usr/lib/unlite/unlite/__pycache__ \
	"${IPKG_INSTROOT}"/usr/lib/unlite/unlite/*/__pycache__ \
	"${IPKG_INSTROOT}"/usr/lib/unlite/unlite/*/*/__pycache__
exit 0
"""
# After the files are gone ($1: "remove"; "upgrade VERSION" when opkg replaces the package: the
# new one's postinst reloads rpcd then). @RMDIRS@: the package's own folders (postrm_rmdirs).
UNLITE_POSTRM = """#!/bin/sh
@RMDIRS@
[ -n "${IPKG_INSTROOT}" ] && exit 0
[ "$1" = "upgrade" ] && exit 0
# rpcd forgets the plugin (ubus object "unlite" in mode 'rpcd') and its ACL
[ -x /etc/init.d/rpcd ] && /etc/init.d/rpcd reload
exit 0
"""
# unlite-usp: compiled as unlite's sources are; a daemon told to be a USP Service (option usp)
# imports it only at its start: restart it (on_exit 'keep': it adopts what runs, no traffic cut)
USP_POSTINST = """#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
python3 -m compileall -q /usr/lib/unlite/unlite/usp >/dev/null 2>&1
if [ -n "$(uci -q get unlite.main.usp)" ] && /etc/init.d/unlite running; then
	/etc/init.d/unlite restart
fi
exit 0
"""
USP_PRERM = """#!/bin/sh
rm -rf "${IPKG_INSTROOT}"/usr/lib/unlite/unlite/usp/__pycache__
exit 0
"""
USP_POSTRM = """#!/bin/sh
@RMDIRS@
exit 0
"""
LUCI_POSTRM = """#!/bin/sh
@RMDIRS@
exit 0
"""
LUCI_POSTINST = """#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
rm -f /tmp/luci-indexcache /tmp/luci-indexcache.*
rm -rf /tmp/luci-modulecache/
# the new ACL group luci-app-unlite
[ -x /etc/init.d/rpcd ] && /etc/init.d/rpcd reload
exit 0
"""


class FeedError(Exception):
    pass


def postrm_rmdirs(files, dirs, under):
    """Shell lines that remove a package's own folders once empty, deepest first. opkg's
    ``PKG.list`` holds files only, so ``opkg remove`` leaves every folder behind; ``under``:
    the folders that are the package's alone (all below them too), never shared ones like
    /usr/share/rpcd. ``rmdir`` leaves a folder that still holds something (a user's NNF)."""
    own = set()
    for path in list(files) + list(dirs):
        parts = path.split("/")
        for i in range(2, len(parts) + (1 if path in dirs else 0)):
            d = "/".join(parts[:i])
            if any(d == u or d.startswith(u + "/") for u in under):
                own.add(d)
    order = sorted(own, key=lambda d: (-d.count("/"), d))
    return "\n".join(f'rmdir "${{IPKG_INSTROOT}}{d}" 2>/dev/null' for d in order)


def version(release=RELEASE):
    """The packages' version: unlite's ``__version__``, ``-``, the package release (OpenWrt's
    PKG_RELEASE). A new release of the same code (packaging fixes) is what makes ``opkg
    upgrade`` take the new ipks: opkg compares versions, never contents."""
    if not re.fullmatch(r"[0-9]+", str(release)):
        raise FeedError(f"release {release!r}: a number (OpenWrt's PKG_RELEASE), e.g. 2")
    text = (ROOT / "unlite" / "__init__.py").read_text()
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'") + "-" + str(release)
    raise FeedError("no __version__ in unlite/__init__.py")


def source_date_epoch():
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
                             capture_output=True, text=True, timeout=10)
        return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else 0
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def _file(rel, mode=None):
    p = FILES / rel.lstrip("/")
    if not p.is_file():
        raise FeedError(f"missing {p}")
    return p.read_bytes(), mode if mode is not None else (0o755 if p.stat().st_mode & 0o111
                                                          else 0o644)


# -- the packages ----------------------------------------------------------------------------
def unlite_package(ver):
    files = {
        "/usr/bin/unlite": ((ROOT / "openwrt/unlite/files/unlite.sh").read_bytes(), 0o755),
        "/etc/init.d/unlite": _file("/etc/init.d/unlite", 0o755),
        "/etc/config/unlite": _file("/etc/config/unlite", 0o600),   # tokens live here
        "/usr/libexec/rpcd/unlite": _file("/usr/libexec/rpcd/unlite", 0o755),
        "/usr/share/rpcd/acl.d/unlite.json": _file("/usr/share/rpcd/acl.d/unlite.json", 0o644),
    }
    src = ROOT / "unlite"
    for p in sorted(src.rglob("*.py")):
        if "__pycache__" in p.parts or p.relative_to(src).parts[0] == "usp":
            continue                                    # usp/: the unlite-usp package
        files["/usr/lib/unlite/unlite/" + p.relative_to(src).as_posix()] = (p.read_bytes(),
                                                                            0o644)
    for p in sorted((src / "ui").iterdir()):            # the dashboard the daemon serves at /ui
        if p.suffix in (".html", ".js", ".css"):
            files["/usr/lib/unlite/unlite/ui/" + p.name] = (p.read_bytes(), 0o644)
    dirs = ["/usr/share/unlite/nnf"]
    postrm = UNLITE_POSTRM.replace("@RMDIRS@", "# opkg leaves folders: ours go once empty\n"
                                   + postrm_rmdirs(files, dirs, ["/usr/lib/unlite",
                                                                 "/usr/share/unlite"]))
    return ipk.Package(
        name="unlite", version=ver, section="net", depends=list(UNLITE_DEPENDS),
        source="feeds/unlite/unlite", url=URL,
        description="Native network functions node (NF-FG API, netns NNFs, nft steering)\n"
                    "unlite deploys Universal Node NF-FG forwarding graphs as native network\n"
                    "functions: shell-script packages run in network namespaces, wired with\n"
                    "veth ports and steered by nftables netdev rules. REST API, CLI, procd\n"
                    "service, UCI config and the ubus object 'unlite' (rpcd plugin).",
        files=files, dirs=dirs, conffiles=["/etc/config/unlite"],
        scripts={"postinst": POSTINST, "prerm": PRERM, "postinst-pkg": UNLITE_POSTINST,
                 "prerm-pkg": UNLITE_PRERM, "postrm": postrm})


def usp_package(ver):
    """unlite-usp: the USP Service (unlite/usp/), optional: only a gateway managed over USP
    needs it, and obuspa with it."""
    src = ROOT / "unlite" / "usp"
    files = {f"/usr/lib/unlite/unlite/usp/{p.name}": (p.read_bytes(), 0o644)
             for p in sorted(src.glob("*.py"))}
    return ipk.Package(
        name="unlite-usp", version=ver, section="net", depends=list(USP_DEPENDS),
        source="feeds/unlite/unlite-usp", url=URL,
        description="unlite as a USP (TR-369) Service\n"
                    "Lets a USP controller manage unlite through the gateway's USP Broker\n"
                    "(obuspa): graphs as TR-181 SoftwareModules DeploymentUnits, NFs as\n"
                    "ExecutionUnits; option usp in /etc/config/unlite turns it on.",
        files=files,
        scripts={"postinst": POSTINST, "prerm": PRERM, "postinst-pkg": USP_POSTINST,
                 "prerm-pkg": USP_PRERM, "postrm": USP_POSTRM.replace("@RMDIRS@", postrm_rmdirs(
                     files, [], ["/usr/lib/unlite/unlite/usp"]))})


def luci_package(ver):
    paths = ["/www/luci-static/resources/view/unlite/graphs.js",
             "/www/luci-static/resources/unlite/graph.js",       # the drawing core (a link)
             "/usr/share/luci/menu.d/luci-app-unlite.json",
             "/usr/share/rpcd/acl.d/luci-app-unlite.json"]
    return ipk.Package(
        name="luci-app-unlite", version=ver, section="luci", depends=["luci-base", "unlite"],
        source="feeds/unlite/luci-app-unlite", url=URL,
        description="LuCI page for unlite\n"
                    "Lists the deployed NF-FG graphs with their status, shows the node's\n"
                    "capabilities, deploys a pasted graph and deletes graphs, through the\n"
                    "ubus object 'unlite'.",
        files={p: _file(p, 0o644) for p in paths},
        scripts={"postinst": POSTINST, "prerm": PRERM, "postinst-pkg": LUCI_POSTINST,
                 "postrm": LUCI_POSTRM.replace("@RMDIRS@", postrm_rmdirs(
                     paths, [], ["/www/luci-static/resources/unlite",
                                 "/www/luci-static/resources/view/unlite"]))})


def nnf_depends(template_path):
    t = json.loads(Path(template_path).read_text())
    name = t["name"]
    deps = t.get("dependencies", {})
    caps = deps.get("capability", []) if isinstance(deps, dict) else \
        [{"name": d, "type": "executable"} for d in deps]
    out = ["unlite"]
    for c in caps:
        kind, dep = c.get("type", "executable"), c["name"]
        if kind == "package":
            pkg = dep
        elif dep in EXEC_PACKAGES:
            pkg = EXEC_PACKAGES[dep]
        else:
            raise FeedError(f"NNF {name}: no OpenWrt package known for executable '{dep}': "
                            f"add it to EXEC_PACKAGES in tools/feed.py")
        if pkg and pkg not in out:
            out.append(pkg)
    for k in NNF_KMODS.get(Path(template_path).parent.name, []):   # by folder
        if k not in out:
            out.append(k)
    return out


def nnf_package(src_dir, ver, epoch, work):
    """unlite-nnf-DIR: the NNF packed as ``unlite nnf pack`` does, in the node's catalog. Named
    after its folder, as the catalog file is: flavours of one function (``firewall`` and
    ``firewall-ebtables``) share a functional name but are separate packages."""
    sys.path.insert(0, str(ROOT))
    from unlite.compute.package import pack
    t = json.loads((Path(src_dir) / "template.json").read_text())
    name = Path(src_dir).name
    out = Path(work) / f"{name}.tgz"
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)        # pack() stamps members with it
    try:
        pack(src_dir, out)
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    base = "/usr/share/unlite/nnf/"
    files = {base + f"{name}.tgz": (out.read_bytes(), 0o644),
             base + f"{name}.json": (out.with_suffix(".json").read_bytes(), 0o644)}
    return ipk.Package(
        name=f"unlite-nnf-{name.lower()}", version=ver, section="net",
        depends=nnf_depends(Path(src_dir) / "template.json"),
        source="feeds/unlite/unlite-nnf", url=URL,
        description=f"unlite native network function: {t['name']}"
                    + (f" ({t['flavour']})" if t.get("flavour") else "")
                    + f"\n{t.get('description', '')}",
        files=files, scripts={"postinst": POSTINST, "prerm": PRERM})


def packages(epoch, work, release=RELEASE):
    ver = version(release)
    pkgs = [unlite_package(ver), luci_package(ver), usp_package(ver)]
    for tpl in sorted((ROOT / "nnf").glob("*/template.json")):
        pkgs.append(nnf_package(tpl.parent, ver, epoch, work))
    return sorted(pkgs, key=lambda p: p.name)


# -- keys and signatures (usign = signify format) --------------------------------------------
def _b64_line(path):
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2 or not lines[0].startswith("untrusted comment:"):
        raise FeedError(f"{path}: not a usign/signify key file")
    return base64.b64decode(lines[1])


def public_key(secret_key):
    """(fingerprint hex, public key file text) derived from a usign/signify secret key: the
    ed25519 secret key's second half is the public key."""
    raw = _b64_line(secret_key)
    if len(raw) != 104 or raw[:2] != b"Ed" or raw[2:4] != b"BK":
        raise FeedError(f"{secret_key}: not an ed25519 secret key in usign/signify format")
    if int.from_bytes(raw[4:8], "big") != 0:
        raise FeedError(f"{secret_key}: the key has a passphrase; use one without "
                        f"(signify -G -n / usign -G)")
    keynum, pub = raw[32:40], raw[72:104]
    fp = keynum.hex()
    text = (f"untrusted comment: unlite feed key {fp}\n"
            f"{base64.b64encode(b'Ed' + keynum + pub).decode()}\n")
    return fp, text


def throwaway_key(path=DEFAULT_KEY):
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pub = path.with_suffix(".pub")
    _signify(["-G", "-n", "-c", "unlite throw-away feed key", "-p", str(pub),
              "-s", str(path)])
    print(f"feed: made a throw-away signing key {path} (not for production: pass --key)",
          file=sys.stderr)
    return path


def _signify(args):
    if not shutil.which(SIGNIFY):
        raise FeedError(f"{SIGNIFY} not found: apt-get install signify-openbsd "
                        f"(or build with --unsigned)")
    p = subprocess.run([SIGNIFY, *args], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    if p.returncode:
        raise FeedError(f"{SIGNIFY} {' '.join(args)}: {p.stderr.strip()}")
    return p


def sign(secret_key, message_path, sig_path):
    """Packages.sig with usign's comment line (the comment is untrusted: opkg and signify
    ignore it; a fixed one keeps the file independent of the key's file name)."""
    fp, _ = public_key(secret_key)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sig"
        _signify(["-S", "-s", str(secret_key), "-m", str(message_path), "-x", str(out)])
        b64 = out.read_text().splitlines()[1]
    raw = base64.b64decode(b64)
    if len(raw) != 74 or raw[:2] != b"Ed" or raw[2:10].hex() != fp:
        raise FeedError("signify wrote an unexpected signature")
    Path(sig_path).write_text(f"untrusted comment: signed by key {fp}\n{b64}\n")


# -- the feed --------------------------------------------------------------------------------
def index(entries):
    """Packages text: per ipk its control with Filename/Size/SHA256sum before Description."""
    out = []
    for filename, blob, control in entries:
        extra = f"Filename: {filename}\nSize: {len(blob)}\nSHA256sum: {ipk.sha256(blob)}\n"
        head, sep, desc = control.partition("Description:")
        out.append(head + extra + sep + desc + "\n")
    return "".join(out)


def build_feed(out_dir, key=None, unsigned=False, epoch=None, release=RELEASE):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.ipk")) + [out / n for n in ("Packages", "Packages.gz",
                                                            "Packages.sig", "unlite-feed.pub")]:
        if old.exists():
            old.unlink()
    epoch = source_date_epoch() if epoch is None else epoch
    entries = []
    with tempfile.TemporaryDirectory(prefix="unlite-feed-") as work:
        for pkg in packages(epoch, work, release):
            blob, control = ipk.build(pkg, epoch)
            (out / pkg.filename).write_bytes(blob)
            entries.append((pkg.filename, blob, control))
    text = index(entries)
    (out / "Packages").write_text(text)
    (out / "Packages.gz").write_bytes(ipk._gzip(text.encode()))
    fp = None
    if not unsigned:
        key = Path(key) if key else throwaway_key()
        fp, pub = public_key(key)
        (out / "unlite-feed.pub").write_text(pub)
        sign(key, out / "Packages", out / "Packages.sig")
    return {"dir": out, "packages": [e[0] for e in entries], "fingerprint": fp,
            "epoch": epoch}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-o", "--out", default=str(ROOT / "build" / "feed"), help="feed folder")
    p.add_argument("--key", help="usign/signify secret key (default: a throw-away key in "
                                 "build/feed-key/)")
    p.add_argument("--unsigned", action="store_true", help="no Packages.sig")
    p.add_argument("--release", default=RELEASE,
                   help=f"package release, the version's '-N' (default {RELEASE}): raise it "
                        f"to publish new ipks of the same unlite version (opkg upgrade)")
    a = p.parse_args()
    try:
        r = build_feed(a.out, a.key, a.unsigned, release=a.release)
    except (FeedError, ipk.IpkError) as e:
        sys.exit(f"feed: {e}")
    for name in r["packages"]:
        print(f"{r['dir'] / name}  {(r['dir'] / name).stat().st_size} bytes")
    signed = (f"Packages.sig (key {r['fingerprint']}), unlite-feed.pub" if r["fingerprint"]
              else "unsigned")
    print(f"{r['dir']}: Packages, Packages.gz, {signed}")


if __name__ == "__main__":
    main()
