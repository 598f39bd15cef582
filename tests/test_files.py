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
                 + [ROOT / "files/etc/init.d/unlite", ROOT / "openwrt/unlite/files/unlite.sh"])


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
    from unlite.uci import SERVE_OPTIONS
    assert set(options) <= set(SERVE_OPTIONS), set(options) - set(SERVE_OPTIONS)
    assert 'serve --uci "$CONFIG"' in (ROOT / "files/etc/init.d/unlite").read_text()
