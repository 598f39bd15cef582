"""What lands on a router parses: every shipped shell script (POSIX sh, as busybox ash runs
them; Debian's /bin/sh is dash, an equally strict POSIX shell) and the UCI config."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([p for p in (ROOT / "nnf").glob("*/*") if p.name in
                  ("create", "start", "stop", "update", "delete", "pause", "resume", "status")]
                 + [ROOT / "files/etc/init.d/unlite", ROOT / "openwrt/unlite/files/unlite.sh",
                    ROOT / "openwrt/obuspa/files/obuspa.init"])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_parse_as_posix_sh(script):
    assert script.read_text().startswith("#!/bin/sh"), "busybox has only /bin/sh"
    assert script.stat().st_mode & 0o111, "not executable"
    p = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "[[" not in script.read_text(), "bashism: [[ ]]"


def test_uci_config_parses():
    """Every line is a UCI `config`/`option`/`list` statement, a comment or blank."""
    text = (ROOT / "files/etc/config/unlite").read_text()
    sections, options = [], {}
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.fullmatch(r"config (\w+)(?: '(\w+)')?", s)
        if m:
            sections.append(m.group(2))
            continue
        m = re.fullmatch(r"(option|list) (\w+) '([^']*)'", s)
        assert m and sections, f"line {n}: not UCI: {line!r}"
        options[m.group(2)] = m.group(3)
    assert sections == ["main"]
    assert options["backend"] == "nft" and re.fullmatch(r"[\d.]+:\d+", options["listen"])
    # every setting reaches the daemon: the init script hands it the file, it reads them all
    from unlite.settings import BY_NAME
    assert set(options) <= set(BY_NAME), set(options) - set(BY_NAME)
    assert 'serve --uci "$CONFIG"' in (ROOT / "files/etc/init.d/unlite").read_text()


def test_the_shipped_uci_file_says_what_settings_py_says():
    """Defaults live in unlite/settings.py only: the file sets each setting to its router
    value there, or shows it commented out where the daemon's default applies. A default
    changed in one place and not the other fails here."""
    from unlite import uci
    from unlite.settings import SETTINGS
    text = (ROOT / "files/etc/config/unlite").read_text()
    for setting in SETTINGS:
        active = re.findall(rf"^\toption {setting.name} '([^']*)'$", text, re.M)
        commented = re.findall(rf"^\t#option {setting.name} '([^']*)'$", text, re.M)
        assert len(active) + len(commented) == 1, \
            f"option {setting.name}: in the file once (set or commented out), not " \
            f"{len(active) + len(commented)} times"
        if active:
            assert uci.check(setting, active[0], setting.name) == setting.router, \
                f"option {setting.name} '{active[0]}': settings.py says {setting.router!r}"
        else:
            assert setting.router == setting.value(), \
                f"option {setting.name} is commented out, but settings.py gives a router " \
                f"{setting.router!r} that differs from the default {setting.value()!r}"
    # and the init script adds no setting of its own: everything comes from the file
    init = (ROOT / "files/etc/init.d/unlite").read_text()
    assert not re.search(r"--(?!uci|syslog)[a-z-]+", init.split("procd_set_param command")[1]
                         .splitlines()[0])


def test_the_obuspa_package_builds_what_the_tests_run():
    """openwrt/obuspa/Makefile: the commit of ../shared's obuspa tarball and the configure
    flags of tools/build-obuspa.sh (the Broker the USP tests run); its first-start file puts
    the Broker's controller socket where the router's /etc/config/unlite points unlite."""
    mk = (ROOT / "openwrt/obuspa/Makefile").read_text()
    built = (ROOT / "tools/build-obuspa.sh").read_text()
    flags = re.search(r"^\./configure (.*)$", built, re.M).group(1).split()
    assert re.search(r"^CONFIGURE_ARGS \+= (.*)$", mk, re.M).group(1).split() == \
        [f for f in flags if f != "-q"]
    reset = (ROOT / "openwrt/obuspa/files/factory_reset.txt").read_text()
    uci = (ROOT / "files/etc/config/unlite").read_text()
    usp = re.search(r"#option usp '([^']+)'", uci).group(1)
    assert f'UnixDomainSocket.1.Path "{usp}"' in reset
    assert 'UnixDomainSocket.1.Mode "Listen"' in reset
    init = (ROOT / "openwrt/obuspa/files/obuspa.init").read_text()
    assert "-r /etc/obuspa/factory_reset.txt" in init and "/etc/obuspa/factory_reset.txt" in mk
    assert int(re.search(r"^START=(\d+)", init, re.M).group(1)) < int(re.search(
        r"^START=(\d+)", (ROOT / "files/etc/init.d/unlite").read_text(), re.M).group(1))


def test_the_obuspa_package_is_the_commit_in_shared():
    mk = (ROOT / "openwrt/obuspa/Makefile").read_text()
    readme = ROOT.parent / "shared/third_party/usp/README.md"
    if not readme.exists():
        pytest.skip(f"no {readme}: the source commit is not checked")
    commit = re.search(r"`obuspa\.tar\.gz` \|[^|]*\| ([0-9a-f]{40})", readme.read_text()).group(1)
    assert f"PKG_SOURCE_VERSION:={commit}" in mk
