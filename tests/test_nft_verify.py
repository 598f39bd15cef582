"""A restart reads every graph's nft rules back once (``NftSwitch.snapshot``: three
nfnetlink dumps of the netdev family — tables, chains, rules with their output devices —
not one ``nft -j list ruleset`` exec and its JSON) and ``verify`` tells what differs. On
tables made by ``NftSwitch.apply`` (real kernel, real nft, in a child Python inside a
scratch namespace), the dumps and nft's JSON shape the tables alike and ``verify`` gives
the same answer from both: intact, a rule gone, a chain more, an output device made again
(its old ifindex), the table gone; where the socket cannot be used nft is executed."""
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
from unlite.network import nft
from unlite.network.nft import NftSwitch, table_name

def ip(*a):
    subprocess.run(["ip", *a], check=True)

for a, b in (("va", "vb"), ("vc", "vd")):
    ip("link", "add", a, "type", "veth", "peer", "name", b)
    for dev in (a, b):
        ip("link", "set", dev, "up")
sw = NftSwitch()
state = {"va": ['ether type ip counter dup to "vc" fwd to "vb" comment "r1"',
                'counter fwd to "vd" comment "r2"'],
         "vc": ['ip protocol icmp counter fwd to "va" comment "r3"'], "vd": []}
for g in ("g1", "g2", "g3", "g4", "g5"):
    sw.apply(g, {}, state)
sw.apply("other", {}, {"vb": ['counter fwd to "va" comment "x"']})
nf = f"netdev {table_name('g2')} {nft.chain_name('va')}"
handle = [o["rule"]["handle"] for o in sh.nft_json("list", "chain", *nf.split())
          if "rule" in o][1]
sh.nft_apply(f"delete rule {nf} handle {handle}\n")                 # g2: a rule gone
sh.nft_apply(f"add chain netdev {table_name('g3')} in_extra\n")     # g3: a chain more
sw.remove("g4")                                                     # g4: the table gone
out = {}

def answers():
    snap = sw.snapshot()
    return {"snapshot": {g: snap.get(table_name(g)) for g in ("g1", "g2", "other")},
            "verify": {g: sw.verify(g, state, snap) for g in ("g1", "g2", "g3", "g4")},
            "alone": {g: sw.verify(g, state) for g in ("g1", "g2", "g3", "g4")}}

out["netlink"] = answers()
ip("link", "del", "vc")                                              # all: vc made again
ip("link", "add", "vc", "type", "veth", "peer", "name", "vd")
out["remade"] = sw.verify("g1", state, sw.snapshot())
real = socket.socket
def refuse(*a, **k):
    raise OSError("no netlink here")
socket.socket = refuse
out["nft"] = sw.verify("g1", state, sw.snapshot())
ip("link", "del", "vc")
ip("link", "add", "vc", "type", "veth", "peer", "name", "vd")
sw.apply("g5", state, {})
sw.apply("g5", {}, state)
out["nft-fresh"] = sw.verify("g5", state, sw.snapshot())
print(json.dumps(out))
"""


def test_snapshot_from_nfnetlink_dumps_verifies_as_nft_does():
    out = netlab.python_in_ns(CHILD, name="nftv")
    n = out["netlink"]
    g1 = n["snapshot"]["g1"]
    assert g1 == {"in_va": [["r1", ["vc", "vb"]], ["r2", ["vd"]]], "in_vc": [["r3", ["va"]]],
                  "in_vd": []}, g1
    assert n["snapshot"]["other"] == {"in_vb": [["x", ["va"]]]}
    assert n["snapshot"]["g2"]["in_va"] == [["r1", ["vc", "vb"]]]
    v = n["verify"]
    assert v["g1"] is None
    assert v["g2"].startswith("nft chain in_va holds rules")
    assert v["g3"].startswith("its nft chains are") and "in_extra" in v["g3"]
    assert v["g4"].startswith("its nft table") and v["g4"].endswith("is gone")
    assert n["alone"] == v, "nft's JSON of one table says the same"
    # a device made again under its old name: the rules still send to the old ifindex
    found = (out["remade"] or "").split(", not ")[0]
    assert found.startswith("nft chain in_va holds rules [('r1', ['") and "'vc'" not in found \
        and "'vd'" not in found, out["remade"]
    assert out["nft"] == out["remade"], "the nft fallback says the same"
    assert out["nft-fresh"] is None
