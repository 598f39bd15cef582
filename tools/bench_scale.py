"""``make bench``, scale part: the ladder. One daemon (nft) is filled with N graphs of 2 NFs
(``bridge``, their ports steered into each other: no end-point) for N = 1, 10, 50, 100; at
each N, side by side: a probe graph's PUT and DELETE (median of ``--probes``), a status GET,
``GET /graphs`` (the answer of ``ubus call unlite list``: one request whatever N) beside one
graph's ``GET /NF-FG/<id>``, ``GET /NF-FG/`` (every graph; compact, beside ``?pretty``: the
indented answer every call had before), and the daemon's RSS; each as a
ratio to its N = 1 figure (the issue's goal: within 1.3× at N = 500). At the end every graph
is deleted, timed against the time it took to make them (goal: under 2×).

``--base REV`` runs the unlite of commit REV beside, in a namespace of its own filled to the
same N, every measure taken in turn from each (a before/after in one run).

Run alone: ``python tools/bench_scale.py [--sizes 1,10,50,100] [--probes 9] [--base REV]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402
from bench_teardown import checkout, pair_graph  # noqa: E402


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ms(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def med(fn, n):
    return statistics.median(ms(fn) for _ in range(n))


def ladder(sizes, probes, work, base=None):
    """The ladder for this tree and, with ``base`` ((name, tree) of another commit), for
    that one beside it: each daemon in a namespace of its own, filled to the same N, every
    probe and read taken in turn from each (interleaved). {name: rows}, create, delete."""
    lab = netlab.Lab("ulsc")
    trees = {"this": None, **({base[0]: base[1]} if base else {})}
    rows = {name: [] for name in trees}
    made, create, delete = 0, {n: 0.0 for n in trees}, {n: 0.0 for n in trees}
    try:
        nodes = {}
        for i, (name, tree) in enumerate(trees.items()):
            gw = lab.ns(f"gw{i}")
            nodes[name] = (gw, netlab.Daemon(gw, work / f"d{i}", port=8080,
                                             root=tree).start())
        probe = pair_graph("probe", 2)

        def turns(fn, n):
            """fn(api) n times on each daemon, in turn: {name: [ms]}."""
            out = {name: [] for name in nodes}
            for _ in range(n):
                for name, (_, d) in nodes.items():
                    out[name].append(ms(lambda d=d: fn(d.api)))
            return out

        for n in sizes:
            while made < n:
                for name, (_, d) in nodes.items():
                    create[name] += ms(lambda d=d, made=made: d.api("PUT", f"/NF-FG/g{made}",
                                                     pair_graph(f"g{made}", 2))) / 1e3
                made += 1
            put, dele = {name: [] for name in nodes}, {name: [] for name in nodes}
            for _ in range(probes):         # interleaved: a PUT, then its DELETE
                for name, (_, d) in nodes.items():
                    put[name].append(ms(lambda d=d: d.api("PUT", "/NF-FG/probe", probe)))
                    dele[name].append(ms(lambda d=d: d.api("DELETE", "/NF-FG/probe")))
            time.sleep(1.0)                 # the probes' link events checked (watch)
            reads = {"status": turns(lambda api: api("GET", "/NF-FG/status/g0"), 20),
                     "list": turns(lambda api: api("GET", "/graphs"), 20),
                     "get": turns(lambda api: api("GET", "/NF-FG/g0"), 20),
                     "all": turns(lambda api: api("GET", "/NF-FG/"), 10),
                     "pretty": turns(lambda api: api("GET", "/NF-FG/?pretty"), 10)}
            for name, (_, d) in nodes.items():
                row = {"n": n, "put": statistics.median(put[name]),
                       "delete": statistics.median(dele[name]),
                       **{k: statistics.median(v[name]) for k, v in reads.items()},
                       "rss": rss_mb(d.proc.pid)}
                rows[name].append(row)
                print(f"  {name} N={n}: {row}", file=sys.stderr, flush=True)
        for i in range(made):
            for name, (_, d) in nodes.items():
                delete[name] += ms(lambda d=d, i=i: d.api("DELETE", f"/NF-FG/g{i}")) / 1e3
        for gw, d in nodes.values():
            d.stop()
            left = netlab.unlite_objects(gw)
            if any(left.values()):
                raise RuntimeError(f"unlite left kernel objects behind: {left}")
        return rows, create, delete, made
    finally:
        lab.close()


def table(name, rows, create, delete, made):
    one = rows[0]
    print(f"\n## Scale ladder ({name}): N graphs × 2 NFs (bridge, nft; medians; ratio to "
          f"N = {one['n']})\n")
    print("| N | probe PUT | status GET | `GET /graphs` (ubus list) | one `GET /NF-FG/<id>` "
          "| list / one GET | `GET /NF-FG/` | `?pretty` (indented) / compact | probe DELETE "
          "| RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        x = lambda k, r=r: f"{r[k]:.1f} ms ({r[k] / one[k]:.2f}×)"  # noqa: E731
        print(f"| {r['n']} | {x('put')} | {x('status')} | {r['list']:.2f} ms "
              f"({r['list'] / one['list']:.2f}×) | {r['get']:.2f} ms | "
              f"{r['list'] / r['get']:.1f}× | {r['all']:.1f} ms | "
              f"{r['pretty'] / r['all']:.2f}× | {x('delete')} | "
              f"{r['rss']:.1f} MB |")
    print(f"\ndeleting all {made} graphs: {delete:.1f} s, making them: {create:.1f} s "
          f"(delete / create {delete / create:.2f}×; goal < 2×)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,50,100")
    ap.add_argument("--probes", type=int, default=9)
    ap.add_argument("--base", metavar="REV", help="also the unlite of commit REV, beside "
                    "(its own namespace, the same N, every measure interleaved)")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench_scale: needs root (namespaces)")
    sizes = [int(x) for x in a.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="unlite-bench-scale-") as tmp:
        base = None
        if a.base:
            rev = subprocess.run(["git", "-C", str(netlab.ROOT), "rev-parse", "--short",
                                  a.base], capture_output=True, text=True,
                                 check=True).stdout.strip()
            base = (rev, checkout(a.base, Path(tmp)))
        rows, create, delete, made = ladder(sizes, a.probes, Path(tmp), base)
    for name in rows:
        table(name, rows[name], create[name], delete[name], made)


if __name__ == "__main__":
    main()
