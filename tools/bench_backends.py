"""``make bench``, steering part: the three backends side by side, in one run.

Per backend (nft, tc, ovs with the userspace datapath):
- rule install: PUT of a graph with no NF and 1, then 100, flow rules between two end-point
  interfaces (median of ``runs``; each deploy is deleted again);
- throughput: iperf3 (one TCP stream, ``--seconds``) host → host through a 1-NF chain (the
  ``bridge`` NNF) steered by the backend, beside the same NF wired to the hosts with direct
  veths (no switch at all), measured in the same run.

Run alone: ``python tools/bench_backends.py``; ``make bench`` runs it after the main table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402
from bench import chain_graph, ms, timed  # noqa: E402

ROOT = netlab.ROOT
CATALOG = ROOT / "build" / "nnf"
BACKENDS = ("nft", "tc", "ovs")


def rules_graph(gid, n):
    """eth0 → eth1: n rules, each TCP to its own port (the last one any IPv4)."""
    rules = [{"id": f"r{i}", "priority": 1000 + i,
              "match": {"port_in": "endpoint:a", "ether_type": "0x800", "protocol": "6",
                        "dest_port": str(10000 + i)},
              "actions": [{"output_to_port": "endpoint:b"}]} for i in range(n - 1)]
    rules.append({"id": "any", "priority": 1, "match": {"port_in": "endpoint:a"},
                  "actions": [{"output_to_port": "endpoint:b"}]})
    return {"forwarding-graph": {
        "id": gid, "VNFs": [],
        "end-points": [{"id": "a", "type": "interface", "interface": {"if-name": "eth0"}},
                       {"id": "b", "type": "interface", "interface": {"if-name": "eth1"}}],
        "big-switch": {"flow-rules": rules}}}


def iperf(lab, client, server_ip, seconds):
    out = lab.run(client, "iperf3", "-c", server_ip, "-t", str(seconds), "-J",
                  timeout=seconds + 20)
    if out.returncode:
        raise RuntimeError(f"iperf3 failed: {out.stdout[-500:]}{out.stderr[-500:]}")
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


class Topology:
    """gw with eth0/eth1 facing h1 (10.40.0.1) and h2 (10.40.0.2); an iperf3 server on h2."""

    def __init__(self, lab, work):
        self.lab, self.work = lab, work
        self.gw, self.h1, self.h2 = lab.ns("gw"), lab.ns("h1"), lab.ns("h2")
        lab.link(self.gw, "eth0", self.h1, "eth0", ip_b="10.40.0.1/24")
        lab.link(self.gw, "eth1", self.h2, "eth0", ip_b="10.40.0.2/24")
        lab.spawn(self.h2, "iperf3", "-s")
        time.sleep(0.3)


def direct_throughput(lab, seconds):
    """The bridge NNF with the hosts wired straight to its ports (the baseline)."""
    a, nf, b = lab.ns("da"), lab.ns("dnf"), lab.ns("db")
    lab.link(a, "eth0", nf, "p0", ip_a="10.41.0.1/24")
    lab.link(b, "eth0", nf, "p1", ip_a="10.41.0.2/24")
    netlab.sh("ip", "netns", "exec", nf, "/bin/sh", ROOT / "nnf" / "bridge" / "start", "G",
              "NF", "2", "p0", "p1")
    lab.spawn(b, "iperf3", "-s")
    time.sleep(0.3)
    return iperf(lab, a, "10.41.0.2", seconds)


def measure(backend, runs, seconds):
    lab = netlab.Lab("ulbb")
    work = Path(tempfile.mkdtemp(prefix="unlite-bench-"))
    ovs = daemon = None
    try:
        top = Topology(lab, work)
        env = None
        if backend == "ovs":
            ovs = netlab.Ovs(top.gw, work / "ovs").start()
            env = ovs.env
        daemon = netlab.Daemon(top.gw, work / "d", CATALOG, backend=backend, env=env).start()
        res = {}
        for n in (1, 100):
            g = rules_graph("rules", n)
            samples = []
            for _ in range(runs):
                samples.append(ms(timed(lambda g=g: daemon.api("PUT", "/NF-FG/rules", g))))
                daemon.api("DELETE", "/NF-FG/rules")
            res[f"rules{n}"] = statistics.median(samples)
        daemon.api("PUT", "/NF-FG/tp", chain_graph("tp", 1))
        if lab.run(top.h1, "ping", "-c1", "-w3", "10.40.0.2").returncode:
            raise RuntimeError(f"{backend}: no traffic through the 1-NF chain")
        res["gbps"] = iperf(lab, top.h1, "10.40.0.2", seconds)
        daemon.api("DELETE", "/NF-FG/tp")
        return res
    finally:
        if daemon:
            daemon.stop()
        if ovs:
            ovs.stop()
        lab.close()
        shutil.rmtree(work, ignore_errors=True)


def available(backend):
    if backend == "ovs" and not shutil.which("ovs-vswitchd", path="/usr/sbin:/sbin:"
                                             + os.environ.get("PATH", "")):
        return "Open vSwitch not installed"
    if not shutil.which("iperf3"):
        return "iperf3 not installed"
    return None


def table(runs=10, seconds=3, backends=BACKENDS):
    print(f"measuring the steering backends ({', '.join(backends)})…", file=sys.stderr)
    lab = netlab.Lab("ulbd")
    try:
        direct = direct_throughput(lab, seconds)
    finally:
        lab.close()
    rows = []
    for b in backends:
        why = available(b)
        if why:
            rows.append((b, None, why))
            continue
        rows.append((b, measure(b, runs, seconds), None))
    print(f"\nsteering backends — rule install: median of {runs} PUTs of a graph with no NF; "
          f"throughput: iperf3 1 TCP stream, {seconds} s, through the 'bridge' NNF\n")
    print("| backend | 1 rule (ms) | 100 rules (ms) | per extra rule (ms) | 1-NF chain (Gbit/s) "
          "| vs direct veths |")
    print("|---|---:|---:|---:|---:|---:|")
    for b, r, why in rows:
        if r is None:
            print(f"| {b} | skipped: {why} | | | | |")
            continue
        per = (r["rules100"] - r["rules1"]) / 99
        print(f"| {b} | {r['rules1']:.1f} | {r['rules100']:.1f} | {per:.2f} | {r['gbps']:.2f} "
              f"| {r['gbps'] / direct * 100:.0f} % |")
    print(f"| direct veths (no switch) | | | | {direct:.2f} | 100 % |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--backends", default=",".join(BACKENDS))
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (namespaces)")
    table(a.runs, a.seconds, a.backends.split(","))


if __name__ == "__main__":
    main()
