"""nftables through libnftables in the daemon and by executing ``nft`` give the same
results: the same transaction lands, the same listing comes back, a refused rule raises
CommandError with nft's own message, a delete of what is not there is quiet when unchecked.
Each mode runs in a child Python inside a scratch namespace (real kernel, real nft)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import netlab
from conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"),
                                reason="needs root and nft")

CHILD = r"""
import json, sys
from unlite import sh
out = {"lib": sh._nft() is not None}
sh.nft_apply('add table netdev ul_t { comment "t"; }\n'
             'add chain netdev ul_t in_lo { type filter hook ingress device "lo" priority 0; '
             'policy drop; }\n'
             'add rule netdev ul_t in_lo ip saddr 10.0.0.0/8 counter fwd to "lo" comment "r1"\n')
objs = sh.nft_json("list", "table", "netdev", "ul_t")
out["listing"] = [{k: {f: v for f, v in o[k].items() if f != "handle"}} for o in objs
                  for k in o if k != "metainfo"]
try:
    sh.nft_apply('add rule netdev ul_t in_lo nosuch thing\n')
    out["refused"] = None
except sh.CommandError as e:
    line = e.stderr.splitlines()[0]         # nft: "/dev/stdin:1:28-33: Error: ..."
    out["refused"] = [e.argv, e.code != 0, line[line.index("Error:"):]]
sh.nft_apply("delete table netdev ul_t\n")
sh.nft_apply("delete table netdev ul_t\n", check=False)      # gone: quiet
out["after"] = [o for o in sh.nft_json("list", "tables", "netdev") if "table" in o]
print(json.dumps(out))
"""


def _run(ns, mode):
    env = dict(os.environ, PYTHONPATH=str(ROOT), UNLITE_NFT=mode)
    p = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", CHILD],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_libnftables_and_the_nft_program_agree():
    lab = netlab.Lab()
    try:
        ns = lab.ns("nft")
        lib, ex = _run(ns, "lib"), _run(ns, "exec")
    finally:
        lab.close()
    assert ex["lib"] is False
    if not lib["lib"]:
        pytest.skip("no libnftables (or ctypes) here: only the nft program was tried")
    assert lib["listing"] == ex["listing"] and len(lib["listing"]) == 3
    rule = next(o["rule"] for o in lib["listing"] if "rule" in o)
    assert rule["comment"] == "r1" and any("fwd" in e for e in rule["expr"])
    assert lib["refused"] == ex["refused"]
    assert lib["refused"][0] == ["nft", "-f", "-"] and lib["refused"][1]
    assert lib["refused"][2].startswith("Error:")
    assert lib["after"] == ex["after"] == []
