"""``make feed-apk``: unlite's packages as apk v3 files and a signed apk repository, for OpenWrt
25.12 and later (apk-tools v3 replaced opkg there), beside the opkg feed ``make feed-opkg``
builds for 24.10 and older.

    python3 tools/apk.py [-o build/feed-apk] [--key EC_SECRET.pem] [--unsigned] [--release N]
                         [--apk PATH]

The packages are tools/feed.py's ``packages()``, the single source of what each one holds
(files and modes, folders, dependencies, conffiles, the package-specific maintainer scripts);
here they are only laid out the way OpenWrt's include/package-pack.mk does for apk:

- ``NAME-X.Y.Z-rN.apk`` (apk refuses the ipk's ``X.Y.Z-N``), arch ``noarch``, made by the real
  ``apk mkpkg`` from a staging folder (the format is apk's own ADB: never written here);
- ``/lib/apk/packages/NAME.list`` (every file, one per line: OpenWrt's ``default_postinst`` and
  ``default_prerm`` read it to enable/start and stop/disable ``/etc/init.d/*``), ``NAME.conffiles``
  and ``NAME.conffiles_static`` (path and sha256, for sysupgrade). apk itself keeps an edited
  file under /etc and writes the new one as ``FILE.apk-new`` (its protected paths);
- scripts: ``post-install`` (OpenWrt's lines, ``export pkgname``, ``default_postinst``, then the
  ipk's ``postinst-pkg`` body), ``post-upgrade`` (``PKG_UPGRADE=1``, ``default_postinst``, the
  ``prerm-pkg`` and ``postinst-pkg`` bodies as opkg runs them on an upgrade, and, live, a
  restart of the package's running services: apk runs nothing of the old package, so without it
  the old daemon goes on), ``pre-deinstall`` (``default_prerm`` + the ``prerm-pkg`` body),
  ``post-deinstall`` (the ipk's ``postrm``);
- dependencies: the ipk's names (OpenWrt's apk packages keep them) with the version constraints
  apk can check (``APK_CONSTRAINTS``; the packages of this feed need ``unlite>=X.Y.Z``).

The repository folder: the apks, ``packages.adb`` (made and signed by the real ``apk mkndx``
with an ECDSA P-256 key, as OpenWrt signs its own) and ``unlite-feed.pem``, the public key
for the router's ``/etc/apk/keys/``. apk signs the index only: each package is checked against
the hash the signed index holds. Reproducible: same sources, release and SOURCE_DATE_EPOCH →
byte-identical apks and an index identical but for its signature (ECDSA signatures are
randomised). Without ``--key`` a throw-away key is made once in ``build/feed-key/`` (git-ignored)
and reused. Build-time tools: apk-tools v3 (``make openwrt-userland``) and ``openssl``; as a
user other than root also ``fakeroot`` (the packages' files must belong to root).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feed  # noqa: E402
import ipk  # noqa: E402

ROOT = feed.ROOT
USERLAND = Path(os.environ.get("OPENWRT_USERLAND", "/opt/openwrt-userland"))
DEFAULT_OUT = ROOT / "build" / "feed-apk"
DEFAULT_KEY = ROOT / "build" / "feed-key" / "unlite-apk-secret.pem"
PUBLIC_KEY = "unlite-feed.pem"          # the name to give it in the router's /etc/apk/keys/
INDEX = "packages.adb"
MAINTAINER = "unlite developers"        # the SDK Makefiles' PKG_MAINTAINER

# Version constraints apk checks and opkg's feed does not carry: pyproject.toml's
# requires-python and Bottle version (tests/test_apk_real.py keeps them in step).
APK_CONSTRAINTS = {"python3-light": ">=3.10", "python3-bottle": ">=0.12.25"}
OWN = ("unlite",)                       # depended on as unlite>=X.Y.Z (this build's version)

# OpenWrt's generated script lines (package-pack.mk, CONFIG_USE_APK): @NAME@ is the package
FUNCTIONS = """[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
export root="${IPKG_INSTROOT}"
export pkgname="@NAME@"
"""
POST_INSTALL = ('#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n' + FUNCTIONS
                + "add_group_and_user\ndefault_postinst\n")
PRE_DEINSTALL = "#!/bin/sh\n" + FUNCTIONS + "default_prerm\n"
UPGRADE = "#!/bin/sh\nexport PKG_UPGRADE=1\n"
# Not OpenWrt's, at the end of post-upgrade: apk runs no script of the old package on an
# upgrade (opkg ran its prerm, which stopped the service), and default_postinst's "start" of a
# running procd service with an unchanged command does nothing, so the old code would go on
# running over the new files (tests/test_apk_real.py's live test saw it).
RESTART = """# apk ran nothing of the old package: restart what still runs the old code
if [ -z "${IPKG_INSTROOT}" ]; then
	for i in $(grep -s "^/etc/init.d/" "/lib/apk/packages/${pkgname}.list"); do
		if "$i" running; then "$i" restart; fi
	done
fi
"""


class ApkError(Exception):
    pass


# -- what goes into one apk ------------------------------------------------------------------
def apk_version(version):
    """The ipk's ``X.Y.Z-N`` as apk writes a package release: ``X.Y.Z-rN``."""
    m = re.fullmatch(r"([0-9][0-9a-z._~]*)-([0-9]+)", version)
    if not m:
        raise ApkError(f"version {version!r}: expected X.Y.Z-N (the ipk's), to become "
                       f"X.Y.Z-rN")
    return f"{m[1]}-r{m[2]}"


def base_version(version):
    """``0.1.0-r2`` → ``0.1.0``: what a package of this feed needs of ``unlite``."""
    return version.rsplit("-r", 1)[0]


def apk_depends(pkg, version):
    """The ipk's dependencies as apk ``depends``: the same names (OpenWrt's apk packages are
    named as its ipks were) with the constraints apk can check."""
    out = []
    for name in pkg.depends:
        if name in OWN:
            out.append(f"{name}>={base_version(version)}")
        else:
            out.append(name + APK_CONSTRAINTS.get(name, ""))
    return out


def description(pkg):
    """One line, as package-pack.mk passes ``$(strip description)``: the long text when there
    is one, else the title."""
    title, _, long = pkg.description.strip().partition("\n")
    return " ".join((long.strip() or title).split())


def _body(script):
    """A maintainer script without its ``#!`` line(s), to append (package-pack.mk's
    ``sed '/^\\s*#!/d'``)."""
    return "".join(ln for ln in script.splitlines(keepends=True)
                   if not ln.lstrip().startswith("#!"))


def scripts(pkg):
    """{apk script type: text}, OpenWrt's lines around the ipk's package-specific bodies. The
    ipk's generic ``postinst``/``prerm`` (default_postinst "$0"...) are opkg's: not used. A
    package without scripts gets none."""
    s = pkg.scripts
    if not s:
        return {}                   # an empty package (the tests' stand-ins): none at all
    post_install = POST_INSTALL.replace("@NAME@", pkg.name)
    body, prerm = _body(s.get("postinst-pkg", "")), _body(s.get("prerm-pkg", ""))
    # on an upgrade opkg ran the old prerm-pkg, then the new postinst-pkg: here both, each in
    # a subshell (its "exit 0" ends only it, as with opkg's "( . PKG.postinst-pkg )")
    sub = "".join(f"(\n{b})\n" for b in (prerm, body) if b)
    out = {"post-install": post_install + body,
           "post-upgrade": UPGRADE + _body(post_install) + sub + RESTART,
           "pre-deinstall": PRE_DEINSTALL.replace("@NAME@", pkg.name) + prerm}
    if "preinst" in s:
        out["pre-install"] = s["preinst"]
        out["pre-upgrade"] = UPGRADE + _body(s["preinst"])
    if "postrm" in s:
        out["post-deinstall"] = s["postrm"]
    return out


def metadata(pkg):
    """The lib/apk/packages/ files of ``pkg``: {path: bytes}. ``NAME.list`` holds the
    package's files (not itself, nor the conffiles lists: package-pack.mk lists before it adds
    them), sorted as ``find | sort`` does in the C locale."""
    base = f"/lib/apk/packages/{pkg.name}"
    out = {f"{base}.list": "".join(f"{p}\n" for p in sorted(pkg.files)).encode()}
    if pkg.conffiles:
        conf = sorted(pkg.conffiles)
        out[f"{base}.conffiles"] = "".join(f"{c}\n" for c in conf).encode()
        out[f"{base}.conffiles_static"] = "".join(
            f"{c} {hashlib.sha256(pkg.files[c][0]).hexdigest()}\n" for c in conf).encode()
    return out


def stage(pkg, folder):
    """Lay ``pkg`` out under ``folder`` as the router gets it: its files with their modes,
    its folders, the lib/apk/packages/ files. Every folder 0755, as in the ipk: mkpkg records
    each folder's mode (the staging root's as ``/``), so the builder's umask must not leak in."""
    folder = Path(folder)
    entries = dict(pkg.files)
    for path, data in metadata(pkg).items():
        if path in entries:
            raise ApkError(f"{pkg.name}: {path} is apk's own file, not the package's")
        entries[path] = (data, 0o644)
    folder.mkdir(parents=True, exist_ok=True)
    for d in pkg.dirs:
        (folder / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for path, (data, mode) in entries.items():
        f = folder / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
        f.chmod(mode)
    for d in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        d.chmod(0o755)
    return folder


# -- apk-tools and openssl -------------------------------------------------------------------
def find_apk(path=None):
    """apk-tools v3: ``path``, $APK, the OpenWrt userland's, or ``apk`` on PATH."""
    cands = [path] if path else [os.environ.get("APK"), USERLAND / "bin/apk", shutil.which("apk")]
    for c in cands:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            p = subprocess.run([str(c), "--version"], capture_output=True, text=True,
                               timeout=30)
            if not re.search(r"apk-tools 3\.", p.stdout):
                raise ApkError(f"{c} is not apk-tools v3 ({p.stdout.strip() or p.stderr.strip()}): "
                               f"OpenWrt 25.12 uses apk v3")
            return Path(c)
    raise ApkError(f"apk-tools v3 not found{f' at {path}' if path else ''}: `make "
                   f"openwrt-userland` builds it into {USERLAND}/bin/apk (or pass --apk PATH; "
                   f"make feed-apk APK=PATH)")


def _run(cmd, what, env=None, cwd=None):
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    except FileNotFoundError:
        raise ApkError(f"{what}: {cmd[0]} not found") from None
    if p.returncode:
        out = (p.stderr.strip() + "\n" + p.stdout.strip()).strip()
        raise ApkError(f"{what} failed (exit {p.returncode}): {out}")
    return p


def mkpkg(pkg, out_dir, epoch, apk, work):
    """``apk mkpkg`` of ``pkg`` (an ipk.Package) into ``out_dir``: the file's name. Runs
    under ``fakeroot`` when not root, so that the files belong to root on the router."""
    version = apk_version(pkg.version)
    name = f"{pkg.name}-{version}.apk"
    tree = stage(pkg, Path(work) / pkg.name / "files")
    cmd = [apk, "mkpkg", "--xattrs=no", "--files", tree, "--output", Path(out_dir) / name]
    info = {"name": pkg.name, "version": version, "description": description(pkg),
            "arch": "noarch" if pkg.arch == "all" else pkg.arch, "license": pkg.license,
            "origin": pkg.source, "url": pkg.url, "maintainer": MAINTAINER,
            "depends": " ".join(apk_depends(pkg, version))}
    for key, value in info.items():
        if value:
            cmd += ["--info", f"{key}:{value}"]
    for kind, text in scripts(pkg).items():
        f = Path(work) / pkg.name / kind
        f.write_text(text)
        cmd += ["--script", f"{kind}:{f}"]
    if os.geteuid() != 0:
        if not shutil.which("fakeroot"):
            raise ApkError("building apks as a user other than root needs fakeroot (the "
                           "files must belong to root): apt-get install fakeroot, or run as "
                           "root")
        cmd = ["fakeroot", "--", "sh", "-c", 'chown -R 0:0 "$0" && exec "$@"', tree] + cmd
    _run(cmd, f"apk mkpkg {pkg.name}", env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch)))
    return name


def check_key(secret_key):
    """The secret key must be ECDSA P-256 in PEM, as OpenWrt's (apk also reads RSA keys; the
    router's own keys and its image builder use P-256)."""
    key = Path(secret_key)
    if not key.is_file():
        raise ApkError(f"{key}: no such key file")
    p = subprocess.run(["openssl", "pkey", "-in", str(key), "-noout", "-text"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if p.returncode or "prime256v1" not in p.stdout and "P-256" not in p.stdout:
        raise ApkError(f"{key}: not an ECDSA P-256 secret key in PEM (make one with: openssl "
                       f"ecparam -name prime256v1 -genkey -noout -out KEY.pem)")
    return key


def public_key(secret_key):
    """The PEM public key of ``secret_key`` (what the router trusts in /etc/apk/keys/)."""
    return _run(["openssl", "ec", "-in", check_key(secret_key), "-pubout"],
                "openssl ec -pubout").stdout


def throwaway_key(path=DEFAULT_KEY):
    """An ECDSA P-256 key made once (mode 0600) and reused, so rebuilds verify with the same
    public key. Not for production: publish with a key of your own (--key)."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    old = os.umask(0o077)
    try:
        _run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", tmp],
             "openssl ecparam -genkey")
    finally:
        os.umask(old)
    tmp.chmod(0o600)
    tmp.rename(path)
    print(f"feed-apk: made a throw-away signing key {path} (not for production: pass --key)",
          file=sys.stderr)
    return path


def mkndx(folder, names, apk, key=None, epoch=0):
    """``apk mkndx`` of the apks ``names`` in ``folder`` into ``folder/packages.adb``, signed
    with ``key`` (None: unsigned). ``--allow-untrusted``: mkpkg's packages carry no signature
    (the index's hashes vouch for them), as in OpenWrt's own index build."""
    cmd = [apk, "mkndx", "--allow-untrusted", "--output", INDEX]
    if key:
        cmd += ["--sign-key", Path(key).resolve()]
    _run(cmd + sorted(names), "apk mkndx", cwd=folder,
         env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch)))
    return Path(folder) / INDEX


def verify(index, public_pem, apk):
    """``apk verify`` of a signed index with only ``public_pem`` trusted (``apk update`` warns
    and exits 0 on a bad index: this is the check that fails). Returns apk's output."""
    with tempfile.TemporaryDirectory(prefix="unlite-apk-keys-") as keys:
        (Path(keys) / PUBLIC_KEY).write_text(public_pem)
        p = subprocess.run([str(apk), "--keys-dir", keys, "verify", str(Path(index).resolve())],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if p.returncode:
        raise ApkError(f"apk verify {index}: {(p.stdout + p.stderr).strip()}")
    return p.stdout


# -- the repository --------------------------------------------------------------------------
def build_repo(out_dir=DEFAULT_OUT, key=None, unsigned=False, epoch=None,
               release=feed.RELEASE, apk=None, packages=None):
    """The apk repository folder: one apk per package, ``packages.adb`` (signed unless
    ``unsigned``) and the public key. ``packages``: ipk.Package list to build instead of
    tools/feed.py's (the tests' stand-ins)."""
    apk = find_apk(apk)
    if not unsigned:                    # before anything of a previous build goes
        key = check_key(key) if key else throwaway_key()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.apk")) + [out / INDEX, out / PUBLIC_KEY]:
        if old.exists():
            old.unlink()
    epoch = feed.source_date_epoch() if epoch is None else epoch
    names = []
    with tempfile.TemporaryDirectory(prefix="unlite-apk-") as work:
        pkgs = packages if packages is not None else feed.packages(epoch, work, release)
        for pkg in pkgs:
            pkg.check()
            names.append(mkpkg(pkg, out, epoch, apk, work))
    index = mkndx(out, names, apk, None if unsigned else key, epoch)
    pub = None
    if not unsigned:
        pub = public_key(key)
        (out / PUBLIC_KEY).write_text(pub)
        verify(index, pub, apk)
    return {"dir": out, "packages": sorted(names), "index": index, "public_key": pub,
            "epoch": epoch, "apk": apk}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0].strip("`"))
    p.add_argument("-o", "--out", default=str(DEFAULT_OUT), help="repository folder")
    p.add_argument("--key", help="ECDSA P-256 secret key, PEM (default: a throw-away key in "
                                 "build/feed-key/)")
    p.add_argument("--unsigned", action="store_true", help="packages.adb without a signature "
                                                           "(routers refuse it)")
    p.add_argument("--release", default=feed.RELEASE,
                   help=f"package release, the version's '-rN' (default {feed.RELEASE}): "
                        f"raise it to publish new apks of the same unlite version")
    p.add_argument("--apk", help="apk-tools v3 binary (default: $APK, "
                                 f"{USERLAND}/bin/apk, apk on PATH)")
    a = p.parse_args()
    try:
        r = build_repo(a.out, a.key, a.unsigned, release=a.release, apk=a.apk)
    except (ApkError, feed.FeedError, ipk.IpkError) as e:
        sys.exit(f"feed-apk: {e}")
    for name in r["packages"]:
        print(f"{r['dir'] / name}  {(r['dir'] / name).stat().st_size} bytes")
    signed = f"signed, public key {PUBLIC_KEY}" if r["public_key"] else "unsigned"
    print(f"{r['dir']}: {INDEX} ({signed})")


if __name__ == "__main__":
    main()
