"""A graph's nft table is deleted with one nfnetlink batch sent by the daemon
(``sh.nft_delete_table``), not by ``nft``, which first reads every other table: the table
and its hooked chains go, an absent one is done, a refused name raises CommandError, and
where the socket cannot be used ``nft`` is executed. In a child Python inside a scratch
namespace (real kernel, real nft)."""
from __future__ import annotations

import os
import shutil

import pytest

import netlab

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"),
                                reason="needs root and nft")

CHILD = r"""
import json, socket, subprocess, sys
from unlite import sh

def make(t):
    subprocess.run(["nft", "-f", "-"], text=True, check=True, input=(
        f'add table netdev {t}\n'
        f'add chain netdev {t} in_lo {{ type filter hook ingress device "lo" priority 0; '
        'policy accept; }\n'
        f'add rule netdev {t} in_lo counter comment "r1"\n'
        'add table ip keep\n'))

def tables():
    return sorted(o["table"]["family"] + " " + o["table"]["name"]
                  for o in sh.nft_json("list", "tables") if "table" in o)

out = {}
make("ul_t")
sh.nft_delete_table("netdev", "ul_t")
out["after"] = tables()
sh.nft_delete_table("netdev", "ul_t")                  # absent: done, checked or not
sh.nft_delete_table("netdev", "ul_t", check=False)
try:
    sh.nft_delete_table("netdev", "x" * 300)
    out["refused"] = None
except sh.CommandError as e:
    out["refused"] = [e.argv[:4], e.code != 0, e.stderr]
if sys.argv[1] == "no-socket":
    def refuse(*a, **k):
        raise OSError("no netlink here")
    socket.socket = refuse
    make("ul_u")
    sh.nft_delete_table("netdev", "ul_u")
    out["fallback"] = tables()
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", ["netlink", "no-socket"])
def test_delete_table_over_nfnetlink(mode):
    out = netlab.python_in_ns(CHILD, mode, name="nft")
    assert out["after"] == ["ip keep"]                  # that table only, the other kept
    argv, failed, why = out["refused"]
    assert argv == ["nft", "delete", "table", "netdev"] and failed and why.startswith("Error:")
    if mode == "no-socket":
        assert out["fallback"] == ["ip keep"]
