"""``make bench`` (part): unlite as a USP Service on the obuspa Broker, and a fleet of three
gateways (not a test; needs root and ``make obuspa``).

Three gateways: each a namespace with eth0/eth1 facing two hosts, its own ``unlite serve
--usp`` and its own obuspa Broker (tools/usp_lab.py). Rows:
- USP Get through one Broker from a controller on its agent socket (Python, unlite's codec),
  per call, medians of interleaved rounds: a parameter the Broker holds itself
  (``Device.LocalAgent.EndpointID``), one unlite serves (``ExecEnv.1.Name``: the Broker asks
  unlite's Service), the whole ``Device.SoftwareModules.`` tree with 1 and 10 graphs, and a
  search expression;
- the fleet: one controller (the three Brokers' CLIs, started together) installs the demo graph
  (tools/demo-graph.json: firewall → NAT) on all three with ``InstallDU(URL)``, waits for each
  DU's EUs to be Active (read through its Broker), then ``Uninstall()`` on all three: wall
  time of each step for the fleet.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402
import usp_lab  # noqa: E402

CATALOG = netlab.ROOT / "build" / "nnf"
DEMO = netlab.ROOT / "tools" / "demo-graph.json"
SM = usp_lab.SM


class Gateway:
    def __init__(self, lab, work, i):
        self.ns = lab.ns(f"gw{i}")
        for k in range(2):
            lab.link(self.ns, f"eth{k}", lab.ns(f"h{i}{k}"), "eth0")
        self.broker = usp_lab.Broker(work / f"broker{i}").start(trace=False)
        self.daemon = netlab.Daemon(self.ns, work / f"d{i}", CATALOG, port=8080,
                                    extra=("--usp", self.broker.controller))

    def start(self):
        self.daemon.start()
        usp_lab.wait_for("unlite registered", lambda: SM + "ExecEnv.1.Name" in
                         self.broker.get(SM + "ExecEnv.1."))
        return self

    def eus_active(self, ctl):
        got = ctl.get(SM + "ExecutionUnit.*.Status")[SM + "ExecutionUnit.*.Status"]
        return len(got) == 2 and all(v.get("Status") == "Active" for v in got.values())

    def dus(self, ctl):
        return ctl.get(SM + "DeploymentUnitNumberOfEntries")[
            SM + "DeploymentUnitNumberOfEntries"][SM]["DeploymentUnitNumberOfEntries"]

    def close(self):
        self.daemon.stop()
        self.broker.stop()


def per_call(ctl, path, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        ctl.get(path)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200, help="Gets per row and round")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    if not os.access(usp_lab.OBUSPA, os.X_OK):
        print(f"bench_usp: skipped: no obuspa at {usp_lab.OBUSPA} (make obuspa)")
        return 0
    lab, work = netlab.Lab(), Path(tempfile.mkdtemp(prefix="ulusp-"))
    gws, ctls = [], []
    try:
        for i in range(3):
            gws.append(Gateway(lab, work, i).start())
        ctls = [usp_lab.Controller(g.broker) for g in gws]
        g0, c0 = gws[0], ctls[0]
        graph = json.loads(DEMO.read_text())
        rows = {"Broker's own parameter (`Device.LocalAgent.EndpointID`)":
                "Device.LocalAgent.EndpointID",
                "unlite's parameter (`ExecEnv.1.Name`)": SM + "ExecEnv.1.Name",
                "`Device.SoftwareModules.` (1 graph: 1 DU, 2 EUs)": SM,
                'search `DeploymentUnit.[DUID=="g1"].Status`':
                SM + 'DeploymentUnit.[DUID=="g1"].Status'}
        g0.daemon.api("PUT", "/NF-FG/g1", graph)
        res = {k: [] for k in rows}
        for _ in range(a.rounds):
            for k, path in rows.items():
                res[k] += per_call(c0, path, a.calls)
        for i in range(2, 11):
            g0.daemon.api("PUT", f"/NF-FG/g{i}", {"forwarding-graph": {
                **graph["forwarding-graph"], "id": f"g{i}",
                "end-points": [{"id": e["id"], "type": "internal",
                                "internal": {"internal-group": f"b{i}{e['id']}"}}
                               for e in graph["forwarding-graph"]["end-points"]]}})
        tree10 = []
        for _ in range(a.rounds):
            tree10 += per_call(c0, SM, a.calls)
        print(f"\nUSP Get through obuspa (one Broker, controller on its agent socket), medians of "
              f"{a.rounds * a.calls} calls\n")
        print("| Get | median | p95 |\n|---|---:|---:|")
        tree = "`Device.SoftwareModules.` (10 graphs: 10 DUs, 20 EUs)"
        for k, v in list(res.items()) + [(tree, tree10)]:
            v = sorted(v)
            print(f"| {k} | {statistics.median(v):.2f} ms | {v[int(len(v) * 0.95)]:.2f} ms |")
        for i in range(1, 11):
            g0.daemon.api("DELETE", f"/NF-FG/g{i}")

        url = f"file://{DEMO}"
        pool = concurrent.futures.ThreadPoolExecutor(3)
        t = time.perf_counter()
        outs = list(pool.map(lambda g: g.broker.c("operate", f'{SM}InstallDU(URL="{url}")'), gws))
        assert all("Started successfully" in o for o in outs), outs
        answered = time.perf_counter() - t
        for g, c in zip(gws, ctls):
            usp_lab.wait_for("EUs Active", lambda g=g, c=c: g.eus_active(c), timeout=120)
        installed = time.perf_counter() - t
        dus = [next(iter(c.get(SM + 'DeploymentUnit.[DUID=="home"].')
                         [SM + 'DeploymentUnit.[DUID=="home"].'])) for c in ctls]
        t = time.perf_counter()
        outs = list(pool.map(lambda g, du: g.broker.c("operate", f"{du}Uninstall()"), gws, dus))
        assert all("Started successfully" in o for o in outs), outs
        for g, c in zip(gws, ctls):
            usp_lab.wait_for("no DU", lambda g=g, c=c: g.dus(c) == "0", timeout=120)
        removed = time.perf_counter() - t
        print("\nfleet of 3 gateways (each: unlite + its obuspa Broker), the demo graph "
              "(firewall → NAT) on all three at once\n")
        print("| step | fleet wall time |\n|---|---:|")
        print("| InstallDU answered by all three Brokers (CLI, async) | "
              f"{answered * 1000:.0f} ms |")
        print("| InstallDU until every EU Active (read through each Broker) | "
              f"{installed * 1000:.0f} ms |")
        print(f"| Uninstall until no DU left | {removed * 1000:.0f} ms |")
    finally:
        for c in ctls:
            c.close()
        for g in gws:
            g.close()
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
