"""``make bench``, restart part: how long a restarted daemon takes to be back, with 1, 10 and
100 graphs running, adopting them (``--on-exit keep``) beside deploying them anew
(``--on-exit stop``: what every restart did before), in one run.

Per N: N graphs of one 2-port ``bridge`` NF each (a namespace, two veths, two steered
chains); then, ``runs`` times each, SIGTERM and start again, timed from the exec to the first
``/healthz`` answer (the daemon answers only once it has restored everything), and the
daemon's own ``restore`` time (its log line). "NF restarts" counts NFs made again (their
veths are new; 0: every NF adopted).

Run alone: ``python tools/bench_restart.py [--sizes 1,10,100] [--runs 3]``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402

ROOT = netlab.ROOT


def loop_graph(gid):
    """One bridge NF whose two ports are steered into each other: no end-point needed."""
    a, b = "vnf:nf1:inout:0", "vnf:nf1:inout:1"
    return {"forwarding-graph": {"id": gid, "VNFs": [{"id": "nf1", "name": "bridge", "ports": [
        {"id": "inout:0"}, {"id": "inout:1"}]}], "end-points": [], "big-switch": {
        "flow-rules": [{"id": "ab", "priority": 1, "match": {"port_in": a},
                        "actions": [{"output_to_port": b}]},
                       {"id": "ba", "priority": 1, "match": {"port_in": b},
                        "actions": [{"output_to_port": a}]}]}}}


def nf_ports(gw):
    """{node-side veth: ifindex}: an NF made again has new veths (ifindexes are not reused
    at once, namespace inode numbers are)."""
    links = netlab.sh("ip", "-n", gw, "-j", "link", "show", "type", "veth").stdout
    return {ln["ifname"]: ln["ifindex"] for ln in json.loads(links or "[]")
            if ln["ifname"].startswith("ul")}


def restart(d, mode):
    """SIGTERM the daemon, start it again in ``mode``: (ms to /healthz, restore ms)."""
    os.kill(d.proc.pid, signal.SIGTERM)
    d.proc.wait(timeout=60)
    d.argv[d.argv.index("--on-exit") + 1] = mode
    mark = d.log_path.stat().st_size
    t0 = time.monotonic()
    d.start(timeout=120)
    up = (time.monotonic() - t0) * 1e3
    m = re.findall(r"restored \d+ graphs in ([\d.]+) ms", d.log_path.read_text()[mark:])
    return up, float(m[-1]) if m else float("nan")


def measure(n, runs, work):
    lab = netlab.Lab()
    try:
        gw = lab.ns("gw")
        d = netlab.Daemon(gw, work / f"n{n}", extra=("--on-exit", "keep")).start()
        for i in range(n):
            code = d.api("PUT", f"/NF-FG/g{i}", loop_graph(f"g{i}"))[0]
            assert code == 201, code
        row = {}
        for mode in ("keep", "stop"):
            restart(d, mode)                    # the running daemon now exits in ``mode``
            ups, restores, restarted = [], [], 0
            for _ in range(runs):
                before = nf_ports(gw)
                up, rest = restart(d, mode)
                after = nf_ports(gw)
                restarted += sum(1 for k, v in after.items() if before.get(k) != v) // 2
                ups.append(up)
                restores.append(rest)
            row[mode] = (statistics.median(ups), statistics.median(restores), restarted / runs)
        os.kill(d.proc.pid, signal.SIGTERM)        # mode is "stop" now: it removes it all
        d.proc.wait(timeout=120)
        return row
    finally:
        lab.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,100")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench_restart: needs root (namespaces)")
    print("\n## Restart: adopting what runs vs deploying it anew (nft, median of "
          f"{a.runs})\n")
    print("| graphs | adopt: to /healthz | adopt: restore | NF restarts | anew: to /healthz "
          "| anew: restore | NF restarts | anew / adopt |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="unlite-bench-restart-") as tmp:
        for n in (int(x) for x in a.sizes.split(",")):
            r = measure(n, a.runs, Path(tmp))
            (ku, kr, kn), (su, sr, sn) = r["keep"], r["stop"]
            print(f"| {n} | {ku:.0f} ms | {kr:.1f} ms | {kn:.0f} | {su:.0f} ms | {sr:.1f} ms "
                  f"| {sn:.0f} | {sr / kr:.1f}× |", flush=True)
    print("\nadopt: the NFs go on running across the restart (0 NF restarts); anew: each "
          "restart stops every NF, removes it and deploys it again. to /healthz includes "
          "the interpreter's start (~0.1 s here).")


if __name__ == "__main__":
    main()
