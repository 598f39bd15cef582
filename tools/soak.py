"""``make soak``: many clients on a live daemon for a while; errors, latency, RSS, leaks.

N client threads (each in the gateway's network namespace, each with its own pair of
end-point interfaces so its graphs never collide with another's) loop for T seconds over:
reads (list, status, capabilities: 60 %), deploys and updates of their graph (a bridge NF,
a new version each time: 25 %), and deletes (15 %). Any 5xx, any unexpected 4xx or
transport error counts as an error. At the end every graph is deleted, the daemon stopped,
and the kernel searched for anything unlite left.

RSS is read at start, after a warm-up (one client makes each kind of request once: the
first ones read the NNF catalog and the package database, and the first deploy loads
tarfile to unpack its package, all kept), after each round and at the end: growth from the
warm-up on is what load costs.

Then the attack mix (``tools/attack.py``: 500 idle sockets, slowloris heads, header floods,
half-sent requests, all renewed as the daemon cuts them off) beside the same clients for
``--attack-seconds``: their p50/p99 with and without it, /healthz's, and the daemon's peak
threads, fds and RSS meanwhile.

    python tools/soak.py [--clients 20] [--seconds 60] [--attack-seconds 30] [--backend nft]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import attack  # noqa: E402
import netlab  # noqa: E402
from bench import rss_kb  # noqa: E402

CATALOG = netlab.ROOT / "build" / "nnf"


def graph(gid, a, b, version):
    g = {"forwarding-graph": {
        "id": gid, "VNFs": [{"id": "nf", "name": "bridge", "ports": [
            {"id": "inout:0"}, {"id": "inout:1"}],
            "unify-env-variables": [{"variable": f"VERSION={version}"}]}],
        "end-points": [{"id": "a", "type": "interface", "interface": {"if-name": a}},
                       {"id": "b", "type": "interface", "interface": {"if-name": b}}],
        "big-switch": {"flow-rules": [
            {"id": f"r{i}", "priority": 10, "match": {"port_in": src},
             "actions": [{"output_to_port": dst}]}
            for i, (src, dst) in enumerate([("endpoint:a", "vnf:nf:inout:0"),
                                            ("vnf:nf:inout:0", "endpoint:a"),
                                            ("vnf:nf:inout:1", "endpoint:b"),
                                            ("endpoint:b", "vnf:nf:inout:1")])]}}}
    return json.dumps(g).encode()


class Client:
    def __init__(self, port, i, stats):
        self.base, self.i, self.stats = f"http://127.0.0.1:{port}", i, stats
        self.gid, self.version, self.deployed = f"soak{i}", 0, False
        self.rng = random.Random(i)

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            e.read()
            status = e.code
        except OSError as e:
            status = f"transport: {e}"
        self.stats.add(method, time.perf_counter() - t, status in ok, status, path)
        return status

    def step(self):
        x = self.rng.random()
        if x < 0.6:
            which = self.rng.choice(["/NF-FG/", f"/NF-FG/status/{self.gid}", "/capabilities"])
            ok = (200, 404) if "status" in which and not self.deployed else (200,)
            self.call("GET", which, ok=ok)
        elif x < 0.85:
            self.version += 1
            st = self.call("PUT", f"/NF-FG/{self.gid}",
                           graph(self.gid, f"sa{self.i}", f"sb{self.i}", self.version))
            self.deployed = self.deployed or st == 201
        elif self.deployed:
            self.call("DELETE", f"/NF-FG/{self.gid}")
            self.deployed = False


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat, self.errors, self.count, self.samples = {}, 0, 0, []

    def add(self, method, seconds, ok, status, path):
        with self.lock:
            self.count += 1
            self.lat.setdefault(method, []).append(seconds * 1000)
            if not ok:
                self.errors += 1
                if len(self.samples) < 10:
                    self.samples.append(f"{method} {path} → {status}")


def warm_up(c):
    """Each kind of request the clients make, once."""
    c.call("GET", "/NF-FG/")
    c.call("GET", "/capabilities")
    c.call("GET", f"/NF-FG/status/{c.gid}", ok=(404,))
    for version in (1, 2):
        c.call("PUT", f"/NF-FG/{c.gid}", graph(c.gid, f"sa{c.i}", f"sb{c.i}", version))
    c.call("GET", f"/NF-FG/status/{c.gid}")
    c.call("DELETE", f"/NF-FG/{c.gid}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else 0.0


def _proc(pid):
    """(threads, open fds, RSS in MB) of process ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    return threads, len(os.listdir(f"/proc/{pid}/fd")), rss_kb(pid) / 1024


def under_attack(d, gw, pool, clients, seconds):
    """The clients' loop again for ``seconds``, beside the attack mix and a /healthz probe
    every 50 ms; their Stats, the probe's, the attackers' counts, peak threads/fds/RSS."""
    stats, probes = Stats(), Stats()
    for c in clients:
        c.stats = stats
    probe = Client(d.port, "probe", probes)
    peak = [0, 0, 0.0]
    stop = time.monotonic() + seconds

    def run(c):
        while time.monotonic() < stop:
            c.step()

    def watch():
        netlab._enter(gw)
        while time.monotonic() < stop:
            probe.call("GET", "/healthz")
            peak[:] = [max(x, y) for x, y in zip(peak, _proc(d.proc.pid))]
            time.sleep(0.05)

    print(f"soak: the same beside the attack mix for {seconds:.0f} s…", file=sys.stderr)
    with attack.Attack(d.port, gw, idle=500, slow=8, flood=4, half=100) as mix:
        watcher = threading.Thread(target=watch)
        watcher.start()
        list(pool.map(run, clients))
        watcher.join()
    time.sleep(1)
    return {"stats": stats, "probes": probes, "made": mix.made, "answers": mix.answers,
            "peak": peak, "after": _proc(d.proc.pid), "seconds": seconds}


def print_attack(u, calm):
    """The attack phase's rows of the table."""
    def row(what, st):
        xs = [x for v in st.lat.values() for x in v]
        return f"| {what} p50 / p99 (ms) | {pct(xs, 50):.1f} / {pct(xs, 99):.1f} |"
    made = ", ".join(f"{k} {v}" for k, v in sorted(u["made"].items()))
    cut = ", ".join(f"{k} {v}" for k, v in sorted(u["answers"].items(), key=str))
    print(row("clients without attack: all", calm))
    gets = Stats()
    gets.lat = {"GET": u["stats"].lat.get("GET", [])}
    print(row(f"clients beside the attack ({u['seconds']:.0f} s): all", u["stats"]))
    print(row("clients beside the attack: GET", gets))
    print(row("/healthz every 50 ms beside the attack", u["probes"]))
    print(f"| requests, errors beside the attack | {u['stats'].count}, "
          f"{u['stats'].errors + u['probes'].errors} |")
    print(f"| attack connections opened | {made} |")
    print(f"| attack connections ended (answer or cut) | {cut} |")
    t, f, r = u["peak"]
    print(f"| daemon peak threads / fds / RSS (MB) under attack | {t} / {f} / {r:.1f} |")
    t, f, r = u["after"]
    print(f"| daemon threads / fds / RSS (MB) after it | {t} / {f} / {r:.1f} |")
    if u["stats"].samples or u["probes"].samples:
        print("\nfirst errors beside the attack:\n  "
              + "\n  ".join(u["stats"].samples + u["probes"].samples))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--backend", default="nft", choices=["nft", "tc"])
    p.add_argument("--rounds", type=int, default=3,
                   help="split the time in rounds and print RSS after each: growth that "
                        "stops after the first round is the peak concurrency's thread "
                        "stacks and allocator pools, growth in every round a leak")
    p.add_argument("--attack-seconds", type=float, default=30,
                   help="then the same clients beside the attack mix (0: none)")
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (namespaces)")
    lab = netlab.Lab("ulsk")
    work = Path(tempfile.mkdtemp(prefix="unlite-soak-"))
    d, stats, left, under = None, Stats(), None, None
    try:
        gw = lab.ns("gw")
        lines = []
        for i in range(a.clients):
            for side in "ab":
                lines += [f"link add s{side}{i} type veth peer name s{side}{i}p",
                          f"link set s{side}{i} up", f"link set s{side}{i}p up"]
        netlab.sh("ip", "-n", gw, "-batch", "-", input="\n".join(lines) + "\n")
        d = netlab.Daemon(gw, work / "d", CATALOG, backend=a.backend).start()
        time.sleep(0.5)
        cold = rss_kb(d.proc.pid) / 1024
        clients = [Client(d.port, i, stats) for i in range(a.clients)]
        warm = Client(d.port, 0, Stats())       # its own graph, on client 0's interfaces
        warm.gid = "soak-warm-up"
        with concurrent.futures.ThreadPoolExecutor(1, initializer=netlab._enter,
                                                   initargs=(gw,)) as one:
            one.submit(warm_up, warm).result()
        if warm.stats.errors:
            sys.exit(f"soak: warm-up failed: {warm.stats.samples}")
        time.sleep(0.5)
        rss0 = rss_kb(d.proc.pid) / 1024
        rounds = []

        def run(c):
            while time.monotonic() < stop:
                c.step()

        print(f"soak: {a.clients} clients × {a.seconds:.0f} s on backend {a.backend}…",
              file=sys.stderr)
        with concurrent.futures.ThreadPoolExecutor(a.clients, initializer=netlab._enter,
                                                   initargs=(gw,)) as pool:
            for _ in range(a.rounds):
                stop = time.monotonic() + a.seconds / a.rounds
                list(pool.map(run, clients))
                time.sleep(0.5)
                rounds.append(rss_kb(d.proc.pid) / 1024)
            if a.attack_seconds:
                under = under_attack(d, gw, pool, clients, a.attack_seconds)
            list(pool.map(lambda c: c.deployed and c.call("DELETE", f"/NF-FG/{c.gid}"),
                          clients))
        time.sleep(0.5)
        rss1 = rss_kb(d.proc.pid) / 1024
        d.stop()
        left = {k: v for k, v in netlab.unlite_objects(gw).items() if v}
    finally:
        if d:
            d.stop()
        lab.close()
        shutil.rmtree(work, ignore_errors=True)
    allms = [x for xs in stats.lat.values() for x in xs]
    print(f"\nunlite soak — {a.clients} clients × {a.seconds:.0f} s, backend {a.backend}\n")
    print("| metric | value |\n|---|---:|")
    print(f"| requests | {stats.count} |")
    print(f"| errors | {stats.errors} |")
    for m, xs in sorted(stats.lat.items()):
        print(f"| {m} p50 / p99 (ms) | {pct(xs, 50):.1f} / {pct(xs, 99):.1f} |")
    print(f"| all p50 / p99 (ms) | {pct(allms, 50):.1f} / {pct(allms, 99):.1f} |")
    print(f"| daemon RSS at start, after warm-up (MB) | {cold:.1f}, {rss0:.1f} "
          f"({rss0 - cold:+.2f}) |")
    print(f"| daemon RSS warm → end (MB) | {rss0:.1f} → {rss1:.1f} ({rss1 - rss0:+.2f}) |")
    print(f"| RSS after each round (MB) | {' → '.join(f'{r:.1f}' for r in rounds)} |")
    if len(rounds) > 1:
        print(f"| RSS growth after round 1 (MB) | {rounds[-1] - rounds[0]:+.2f} |")
    if under:
        print_attack(under, stats)
    print(f"| leaked kernel objects | {sum(len(v) for v in left.values()) if left else 0} |")
    if stats.samples:
        print("\nfirst errors:\n  " + "\n  ".join(stats.samples))
    errors = stats.errors + (under["stats"].errors + under["probes"].errors if under else 0)
    if errors or left:
        sys.exit(f"soak: {errors} errors, leaks: {left or 'none'}")


if __name__ == "__main__":
    main()
