"""``make bench``: how light unlite is, measured side by side in one run (not a test).

Rows (the targets README's "How light: make bench" gives; the paper's NNF figures beside):
- daemon start: ``unlite serve`` launched → first answer on /healthz;
- NNF start overhead: deploying a 1-NF graph through the REST API (PUT → 201, NF running and
  steered) minus running the same NF's ``start`` script directly in an existing netns whose
  veth ports already exist — the cost unlite adds (paper: 727 ms NNF vs 154 ms direct);
- a 10-NF chain's deploy time, and its ratio to the 1-NF deploy;
- delete of the 1-NF graph;
- daemon RSS idle (beside the bare interpreter's) and with 50 graphs of 2 NFs each
  (100 namespaces).

Each timing is the median of ``--runs`` (default 20) repetitions; min and max are printed too.
Traffic is checked once through each graph shape, so the figures are for graphs that work.
Everything made is removed at the end, also on failure.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402

ROOT = netlab.ROOT
CATALOG = ROOT / "build" / "nnf"
NF = "bridge"                                  # the NF measured: one exec of `ip -batch`


def chain_graph(gid, n, eps=("eth0", "eth1")):
    """eps[0] → nf1 → … → nfN → eps[1] and back, every NF a 2-port bridge."""
    vnfs = [{"id": f"nf{i}", "name": NF, "ports": [{"id": "inout:0"}, {"id": "inout:1"}]}
            for i in range(1, n + 1)]
    hops = ["endpoint:a"] + [x for i in range(1, n + 1)
                             for x in (f"vnf:nf{i}:inout:0", f"vnf:nf{i}:inout:1")] + ["endpoint:b"]
    rules = []
    for k in range(0, len(hops), 2):
        a, b = hops[k], hops[k + 1]
        rules += [{"id": f"f{k}", "priority": 10, "match": {"port_in": a},
                   "actions": [{"output_to_port": b}]},
                  {"id": f"r{k}", "priority": 10, "match": {"port_in": b},
                   "actions": [{"output_to_port": a}]}]
    return {"forwarding-graph": {
        "id": gid, "VNFs": vnfs,
        "end-points": [{"id": "a", "type": "interface", "interface": {"if-name": eps[0]}},
                       {"id": "b", "type": "interface", "interface": {"if-name": eps[1]}}],
        "big-switch": {"flow-rules": rules}}}


def ms(seconds):
    return seconds * 1000.0


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def stats(samples):
    return statistics.median(samples), min(samples), max(samples)


class Bench:
    def __init__(self, runs):
        self.runs = runs
        self.rows = []                      # (metric, median, min, max, unit, target)
        self.lab = netlab.Lab("ulb")
        self.work = Path(tempfile.mkdtemp(prefix="unlite-bench-"))
        self.daemon = None

    def row(self, metric, samples, unit, target=""):
        med, lo, hi = stats(samples) if isinstance(samples, list) else (samples,) * 3
        self.rows.append((metric, med, lo, hi, unit, target))
        print(f"  {metric}: {med:.1f} {unit}", file=sys.stderr, flush=True)
        return med

    # -- the topology: gateway with eth0/eth1 facing two hosts --------------------------------
    def setup(self):
        self.gw = self.lab.ns("gw")
        self.h1, self.h2 = self.lab.ns("h1"), self.lab.ns("h2")
        self.lab.link(self.gw, "eth0", self.h1, "eth0", ip_b="10.30.0.1/24")
        self.lab.link(self.gw, "eth1", self.h2, "eth0", ip_b="10.30.0.2/24")

    def check_traffic(self, what):
        p = self.lab.run(self.h1, "ping", "-c1", "-w3", "10.30.0.2")
        if p.returncode:
            raise RuntimeError(f"{what}: no traffic through the graph:\n{p.stdout}{p.stderr}")

    def start_daemon(self):
        samples = []
        for i in range(5):
            d = netlab.Daemon(self.gw, self.work / f"d{i}", CATALOG)
            t = time.perf_counter()
            d.proc = subprocess.Popen(d.argv, stdout=open(d.log_path, "ab"),
                                      stderr=subprocess.STDOUT, cwd=ROOT,
                                      env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                      start_new_session=True)
            while True:
                if d.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited:\n{d.log()}")
                try:
                    d.api("GET", "/healthz", timeout=1)
                    break
                except (OSError, netlab.ApiError):
                    time.sleep(0.002)
            samples.append(time.perf_counter() - t)
            if i < 4:
                d.stop()
            else:
                self.daemon = d
        self.row("daemon start (to first /healthz)", [ms(s) for s in samples], "ms", "≤ 300")
        time.sleep(0.5)
        self.rss_idle = rss_kb(self.daemon.proc.pid) / 1024

    # -- NNF start overhead --------------------------------------------------------------------
    def direct_start(self):
        """The NF's own start script in an existing netns with its ports (the baseline)."""
        ns = self.lab.ns("direct")
        self.lab.link(self.gw, "dq0", ns, "p0")
        self.lab.link(self.gw, "dq1", ns, "p1")
        pkg = ROOT / "nnf" / NF
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        argv = ["ip", "netns", "exec", ns, "/bin/sh"]
        samples = []
        for _ in range(self.runs):
            samples.append(timed(lambda: subprocess.run(
                argv + ["start", "G", "NF", "2", "p0", "p1"], cwd=pkg, env=env, check=True)))
            subprocess.run(argv + ["stop", "G", "NF", "2", "p0", "p1"], cwd=pkg, env=env,
                           check=True)
            subprocess.run(["ip", "-n", ns, "link", "del", "br0"], stderr=subprocess.DEVNULL)
        return [ms(s) for s in samples]

    def deploy_samples(self, n, runs):
        graph = chain_graph("bench", n)
        deploy, delete = [], []
        for i in range(runs):
            deploy.append(timed(lambda: self.daemon.api("PUT", "/NF-FG/bench", graph)))
            if i == 0:
                self.check_traffic(f"{n}-NF chain")
            delete.append(timed(lambda: self.daemon.api("DELETE", "/NF-FG/bench")))
        return [ms(s) for s in deploy], [ms(s) for s in delete]

    # -- many graphs ---------------------------------------------------------------------------
    def many_graphs(self, count=50, nfs=2):
        lines = []
        for i in range(2 * count):     # endpoint interfaces (veth: no dummy module here)
            lines += [f"link add mg{i} type veth peer name mgp{i}", f"link set mg{i} up",
                      f"link set mgp{i} up"]
        netlab.sh("ip", "-n", self.gw, "-batch", "-", input="\n".join(lines) + "\n")
        t = time.perf_counter()
        for g in range(count):
            self.daemon.api("PUT", f"/NF-FG/m{g}",
                            chain_graph(f"m{g}", nfs, (f"mg{2 * g}", f"mg{2 * g + 1}")))
        total = time.perf_counter() - t
        objs = netlab.unlite_objects(self.gw)
        if len(objs["netns"]) != count * nfs:
            raise RuntimeError(f"expected {count * nfs} NF namespaces, found {len(objs['netns'])}")
        time.sleep(0.5)
        rss = rss_kb(self.daemon.proc.pid) / 1024
        for g in range(count):
            self.daemon.api("DELETE", f"/NF-FG/m{g}")
        return total, rss

    def run(self):
        print("measuring (this takes about a minute)…", file=sys.stderr)
        self.setup()
        self.start_daemon()
        direct = self.row(f"'{NF}' start script run directly in an existing netns",
                          self.direct_start(), "ms")
        dep1, del1 = self.deploy_samples(1, self.runs)
        api1 = self.row("1-NF graph deploy via REST (PUT → 201)", dep1, "ms")
        self.rows.append(("NNF start overhead (deploy − direct start)", api1 - direct,
                          min(dep1) - direct, max(dep1) - direct, "ms", "≤ 15 (paper: 573)"))
        self.row("1-NF graph delete via REST", del1, "ms")
        dep10, _ = self.deploy_samples(10, max(5, self.runs // 4))
        api10 = self.row("10-NF chain deploy via REST", dep10, "ms")
        self.rows.append(("10-NF chain / 1-NF deploy", api10 / api1, api10 / api1, api10 / api1,
                          "×", "≤ 10"))
        bare = int(subprocess.run(
            [sys.executable, "-c", "print(open('/proc/self/status').read()"
                                   ".split('VmRSS:')[1].split()[0])"],
            capture_output=True, text=True, check=True).stdout) / 1024
        self.row("python3 interpreter alone (same venv, for scale)", bare, "MB")
        self.row("daemon RSS idle", self.rss_idle, "MB", "≤ 12")
        self.row("daemon RSS idle − interpreter", self.rss_idle - bare, "MB")
        total, rss50 = self.many_graphs()
        self.row("deploy 50 graphs × 2 NFs, one after another", ms(total), "ms")
        self.row("daemon RSS with 50 graphs × 2 NFs", rss50, "MB", "≤ 20 (with 100)")
        self.rows.append(("RSS growth per graph", (rss50 - self.rss_idle) * 1024 / 50,
                          None, None, "KB", ""))
        self.rows += feed_rows()

    def close(self):
        if self.daemon:
            self.daemon.stop()
        left = netlab.unlite_objects(self.gw) if getattr(self, "gw", None) else None
        self.lab.close()
        shutil.rmtree(self.work, ignore_errors=True)
        return left

    def table(self):
        paper = [("paper: NNF start (IPsec client NNF)", "727 ms"),
                 ("paper: direct launch of the same software", "154 ms")]
        head = ("metric", "median", "min", "max", "unit", "target")
        body = [(m, f"{a:.2f}" if u == "×" else f"{a:.1f}",
                 "" if lo is None or lo == a else f"{lo:.1f}",
                 "" if hi is None or hi == a else f"{hi:.1f}", u, t)
                for m, a, lo, hi, u, t in self.rows]
        body += [(m, v.split()[0], "", "", v.split()[1], "") for m, v in paper]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        fmt = lambda r: "| " + " | ".join(c.ljust(w) if i in (0, 4, 5) else c.rjust(w)
                                         for i, (c, w) in enumerate(zip(r, widths))) + " |"
        print(fmt(head))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in body:
            print(fmt(r))


def feed_rows():
    """OpenWrt footprint rows: each ipk's size and the unlite package's Installed-Size (the
    uncompressed data tar, as opkg reports it), from a feed built like ``make feed``; beside
    each ipk the apk of the same package (``make feed-apk``, OpenWrt 25.12+), when apk-tools v3
    is there to build it."""
    import apk
    import feed
    import ipk
    rows = []
    with tempfile.TemporaryDirectory(prefix="unlite-bench-feed-") as d:
        r = feed.build_feed(Path(d) / "ipk", unsigned=True)
        try:
            a = apk.build_repo(Path(d) / "apk", unsigned=True, epoch=r["epoch"])
            apks = {n.rsplit("-", 2)[0]: a["dir"] / n for n in a["packages"]}   # NAME-V-rN
        except apk.ApkError as e:
            print(f"bench: no apk sizes: {e}", file=sys.stderr)
            apks = {}
        for name in r["packages"]:
            blob = (r["dir"] / name).read_bytes()
            kb = len(blob) / 1024
            unlite = name.startswith("unlite_")
            rows.append((f"ipk {name}", kb, None, None, "KB", "≤ 100" if unlite else ""))
            pkg = name.split("_")[0]
            if pkg in apks:
                rows.append((f"apk {apks[pkg].name}", apks[pkg].stat().st_size / 1024, None,
                             None, "KB", "≤ 100" if unlite else ""))
            if unlite:
                inst = int(ipk.read(blob).fields["Installed-Size"]) / 1024
                rows.append(("unlite installed size (Installed-Size)", inst, None, None, "KB",
                             ""))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=20, help="repetitions per timing (default 20)")
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (namespaces)")
    b = Bench(a.runs)
    try:
        b.run()
    finally:
        left = b.close()
    print(f"\nunlite bench — {a.runs} runs per timing, NF '{NF}', backend nft, "
          f"kernel {os.uname().release}, {os.uname().machine}\n")
    b.table()
    if left and any(left.values()):
        sys.exit(f"bench: unlite left kernel objects behind: {left}")


if __name__ == "__main__":
    main()
