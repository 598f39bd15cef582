"""A graph's rule counters are read with one nfnetlink dump of its table (``nfnl.rules``),
not by ``nft -j list table``, which first reads every table: on a table made by ``nft -f``
with traffic through it, the dump and ``nft -j`` agree rule by rule (chain, order, comment,
packets, bytes), and ``NftSwitch.counters`` gives what it gave from ``nft``; a table with no
counter and an absent one give {}; where the socket cannot be used ``nft`` is executed, with
the same answer. In a child Python inside a scratch namespace (real kernel, real nft)."""
from __future__ import annotations

import os
import shutil

import pytest

import netlab
from unlite import nfnl

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"),
                                reason="needs root and nft")

CHILD = r"""
import json, socket, struct, subprocess, sys, time
from unlite import nfnl, sh
from unlite.network.nft import NftSwitch

subprocess.run(["ip", "link", "add", "va", "type", "veth", "peer", "name", "vb"], check=True)
for dev in ("va", "vb"):
    subprocess.run(["ip", "link", "set", dev, "up"], check=True)
many = "".join(f'add rule netdev ul_t in_vb ether type 0x88b6 counter comment "m{i}"\n'
               for i in range(300))               # a dump of several datagrams
subprocess.run(["nft", "-f", "-"], text=True, check=True, input=
    'add table netdev ul_t { comment "unlite graph t"; }\n'
    'add chain netdev ul_t in_lo { type filter hook ingress device "lo" priority 0; '
    'policy accept; }\n'
    'add chain netdev ul_t in_vb { type filter hook ingress device "vb" priority 0; '
    'policy drop; }\n'
    'add rule netdev ul_t in_lo ip protocol icmp counter comment "icmp"\n'
    'add rule netdev ul_t in_lo meta l4proto udp counter comment "udp"\n'
    'add rule netdev ul_t in_lo counter\n'                         # no comment: not a rule id
    'add rule netdev ul_t in_lo meta l4proto tcp comment "no-counter"\n'
    'add rule netdev ul_t in_vb ether type 0x88b5 counter comment "frames"\n' + many +
    'add table netdev ul_empty\n'
    'add chain netdev ul_empty c { type filter hook ingress device "lo" priority 1; }\n'
    'add rule netdev ul_empty c ip protocol icmp comment "no counter here"\n')

subprocess.run(["ping", "-c", "4", "-i", "0.01", "-q", "127.0.0.1"], check=True,
               capture_output=True)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in range(7):
    u.sendto(b"x" * (10 + n), ("127.0.0.1", 9))
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
p.bind(("va", 0))
src = p.getsockname()[4]
for n in range(5):                                 # raw frames out of va, into vb's chain
    p.send(b"\xff" * 6 + src + struct.pack("!H", 0x88B5) + bytes(46 + n))
time.sleep(0.2)

def listed(table):
    out = []
    for o in sh.nft_json("list", "table", "netdev", table):
        r = o.get("rule")
        if r:
            c = [e["counter"] for e in r["expr"] if "counter" in e]
            out.append([r["chain"], r["handle"], r.get("comment"),
                        [c[-1]["packets"], c[-1]["bytes"]] if c else None])
    return out

def dumped(table):
    return [[r["chain"], r["handle"], r["comment"], list(r["counter"]) if r["counter"]
             else None] for r in nfnl.rules("netdev", table)]

sw = NftSwitch()
table = lambda gid: "ul_t" if gid == "t" else "ul_empty" if gid == "e" else "ul_none"
import unlite.network.nft as nftmod
nftmod.table_name = table
out = {"listed": listed("ul_t"), "dumped": dumped("ul_t"),
       "from_nft": NftSwitch._counters_nft("ul_t"), "counters": sw.counters("t"),
       "empty": [sw.counters("e"), dumped("ul_empty")], "absent": [sw.counters("x"),
       dumped("ul_none")]}
if sys.argv[1] == "no-socket":
    def refuse(*a, **k):
        raise OSError("no netlink here")
    socket.socket = refuse
    try:
        nfnl.rules("netdev", "ul_t")
        out["refused"] = None
    except nfnl.Unusable as e:
        out["refused"] = str(e)
    out["fallback"] = [sw.counters("t"), sw.counters("e"), sw.counters("x")]
print(json.dumps(out))
"""


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("mode", ["netlink", "no-socket"])
def test_counters_from_one_rule_dump(mode):
    out = netlab.python_in_ns(CHILD, mode, name="nftc")
    assert out["dumped"] == out["listed"]               # rule by rule, in order
    assert len(out["listed"]) == 305
    c = out["counters"]
    assert c == out["from_nft"]
    assert c["icmp"]["packets"] == 4 + 4 + 7            # echo, reply; port unreachable
    assert c["udp"]["packets"] == 7 and c["udp"]["bytes"] == 7 * 38 + sum(range(7))
    assert c["frames"] == {"packets": 5, "bytes": 5 * 46 + sum(range(5))}   # no MAC header
    assert c["m0"] == {"packets": 0, "bytes": 0} and len(c) == 303
    assert "no-counter" not in c
    assert out["empty"] == [{}, [["c", 2, "no counter here", None]]]
    assert out["absent"] == [{}, []]
    if mode == "no-socket":
        assert out["refused"].startswith("no nfnetlink socket")
        assert out["fallback"] == [c, {}, {}]


def test_comment_is_the_type_0_tlv_of_the_userdata():
    assert nfnl._comment(b"\x00\x04r-1\x00") == "r-1"
    assert nfnl._comment(b"\x01\x04\x00\x00\x00\x01\x00\x03ab\x00") == "ab"   # after another
    assert nfnl._comment(b"") is None and nfnl._comment(b"\x01\x01\x00") is None
