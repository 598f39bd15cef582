"""``make bench``, scale part: the ladder. One daemon (nft) is filled with N graphs of 2 NFs
(``bridge``, their ports steered into each other: no end-point) for N = 1, 10, 50, 100; at
each N, side by side: a probe graph's PUT and DELETE (median of ``--probes``), a status GET,
``GET /graphs`` (the answer of ``ubus call unlite list``: one request whatever N) beside one
graph's ``GET /NF-FG/<id>``, ``GET /NF-FG/`` (every graph; compact, beside ``?pretty``: the
indented answer every call had before), and the daemon's RSS; each as a
ratio to its N = 1 figure (the issue's goal: within 1.3× at N = 500). At the end every graph
is deleted, timed against the time it took to make them (goal: under 2×).

Run alone: ``python tools/bench_scale.py [--sizes 1,10,50,100] [--probes 9]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402
from bench_teardown import pair_graph  # noqa: E402


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


def ladder(sizes, probes, work):
    lab = netlab.Lab("ulsc")
    rows, made, create = [], 0, 0.0
    try:
        gw = lab.ns("gw")
        d = netlab.Daemon(gw, work / "d").start()
        api = d.api
        probe = pair_graph("probe", 2)
        for n in sizes:
            t = time.perf_counter()
            while made < n:
                api("PUT", f"/NF-FG/g{made}", pair_graph(f"g{made}", 2))
                made += 1
            create += time.perf_counter() - t
            put, dele = [], []
            for _ in range(probes):         # interleaved: a PUT, then its DELETE
                put.append(ms(lambda: api("PUT", "/NF-FG/probe", probe)))
                dele.append(ms(lambda: api("DELETE", "/NF-FG/probe")))
            time.sleep(0.3)
            row = {"n": n, "put": statistics.median(put), "delete": statistics.median(dele),
                   "status": med(lambda: api("GET", "/NF-FG/status/g0"), 20),
                   "list": med(lambda: api("GET", "/graphs"), 20),
                   "get": med(lambda: api("GET", "/NF-FG/g0"), 20),
                   "all": med(lambda: api("GET", "/NF-FG/"), 10),
                   "pretty": med(lambda: api("GET", "/NF-FG/?pretty"), 10),
                   "rss": rss_mb(d.proc.pid)}
            rows.append(row)
            print(f"  N={n}: {row}", file=sys.stderr, flush=True)
        t = time.perf_counter()
        for i in range(made):
            api("DELETE", f"/NF-FG/g{i}")
        delete = time.perf_counter() - t
        d.stop()
        left = netlab.unlite_objects(gw)
        if any(left.values()):
            raise RuntimeError(f"unlite left kernel objects behind: {left}")
        return rows, create, delete, made
    finally:
        lab.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,50,100")
    ap.add_argument("--probes", type=int, default=9)
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench_scale: needs root (namespaces)")
    sizes = [int(x) for x in a.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="unlite-bench-scale-") as tmp:
        rows, create, delete, made = ladder(sizes, a.probes, Path(tmp))
    one = rows[0]
    print(f"\n## Scale ladder: N graphs × 2 NFs (bridge, nft; medians; ratio to N = {one['n']})\n")
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


if __name__ == "__main__":
    main()
