"""``make bench`` (part): ubus object ``unlite`` on OpenWrt's own ubusd, rpcd and uhttpd, side by
side in one run (not a test; tools/owrt.py runs them in a sandbox).

Rows:
- ``ubus call unlite list`` per call, from ucode (the language of rpcd's and LuCI's own
  backends) in a loop: the daemon's own object vs rpcd's exec plugin (a CPython per call),
  and the same answer over the REST API on the daemon's unix socket (``GET /graphs``) from
  Python; interleaved rounds, medians of every call;
- the same through uhttpd's ``/ubus`` JSON-RPC (what LuCI does), per call;
- the server-side CPU time per minute of an open LuCI page: the calls the page makes in a
  minute (its poll loop, as graphs.js says: ``list`` every 5 s, ``get`` + ``status`` of the
  drawn graph every 2 s, ``capabilities`` every 30 s) replayed through uhttpd, CPU of ubusd +
  rpcd (+ its plugin processes) + uhttpd + the daemon measured from /proc.

Each mode gets its own sandbox and daemon; one graph is deployed in each (a 1-NF bridge).
Then, on the daemon's object, ``list`` beside one graph's ``get`` with 1, 10 and 50 graphs:
``list`` is one call whatever their number; its answer is a line per graph.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402
import owrt  # noqa: E402

CATALOG = netlab.ROOT / "build" / "nnf"
TICK = os.sysconf("SC_CLK_TCK")
# graphs.js' polls in 60 s: the list every 5 s, the drawn graph (get + status) every 2 s,
# the capabilities every 30 s
PAGE_MINUTE = ([("list", None)] * 12 + [("get", "b1"), ("status", "b1")] * 30
               + [("capabilities", None)] * 2)


def bridge(gid):
    return {"forwarding-graph": {
        "id": gid, "VNFs": [{"id": "nf1", "name": "bridge",
                             "ports": [{"id": "inout:0"}, {"id": "inout:1"}]}],
        "end-points": [{"id": "a", "type": "interface", "interface": {"if-name": "eth0"}},
                       {"id": "b", "type": "interface", "interface": {"if-name": "eth1"}}],
        "big-switch": {"flow-rules": [
            {"id": "f", "priority": 1, "match": {"port_in": "endpoint:a"},
             "actions": [{"output_to_port": "vnf:nf1:inout:0"}]},
            {"id": "r", "priority": 1, "match": {"port_in": "endpoint:b"},
             "actions": [{"output_to_port": "vnf:nf1:inout:1"}]}]}}}


class Mode:
    def __init__(self, lab, work, mode):
        self.mode = mode
        gw = lab.ns(f"gw{mode[0]}")
        for i in range(2):
            lab.link(gw, f"eth{i}", lab.ns(f"h{mode[0]}{i}"), "eth0")
        self.root = owrt.Root(work / f"root-{mode}", ubus=mode)
        self.root.add_login("viewer", "viewer-pw", read=["unlite"])
        self.sb = owrt.Sandbox(self.root, http=True)
        self.daemon = netlab.Daemon(gw, work / f"d-{mode}", CATALOG, extra=(
            "--socket", str(self.root.socket), "--ubus", mode,
            "--ubus-socket", str(self.root.ubus_socket)))

    def start(self):
        self.sb.start()
        self.daemon.start()
        assert self.sb.call("unlite", "put", {"id": "b1", "graph": bridge("b1")}) == \
            {"id": "b1", "created": True}
        self.sid = self.sb.login("viewer", "viewer-pw")
        return self

    def ucode_list(self, n, method="list", args="{}"):
        """Seconds per call of n `list` (or ``method``) calls from one ucode process."""
        script = ("let c = require('ubus').connect(); let t = []; "
                  "for (let i = 0; i < %d; i++) { let a = clock(true); "
                  "c.call('unlite', '%s', %s); let b = clock(true); "
                  "push(t, (b[0] - a[0]) * 1e9 + (b[1] - a[1])); } print(t, '\\n');"
                  % (n, method, args))
        p = self.sb.exec("ucode", "-e", script, timeout=600)
        assert p.returncode == 0, p.stderr
        return [ns / 1e9 for ns in json.loads(p.stdout)]

    def jsonrpc_list(self, n):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            r = self.sb.jsonrpc(self.sid, "unlite", "list")
            out.append(time.perf_counter() - t)
            assert r["result"][0] == 0, r
        return out

    def rest_list(self, n):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(self.root.socket))
            s.sendall(b"GET /graphs HTTP/1.0\r\nHost: x\r\n\r\n")
            while s.recv(65536):
                pass
            s.close()
            out.append(time.perf_counter() - t)
        return out

    def pids(self):
        names = {}
        for line in Path(f"{self.root.path}.pids").read_text().splitlines():
            name, pid = line.split()[:2]
            names[name] = int(pid)
        return [names[n] for n in ("ubusd", "rpcd", "uhttpd")] + [self.daemon.proc.pid]

    def page_minute_cpu(self):
        """CPU seconds (user+sys, children reaped included) of the server side for the
        calls an open LuCI page makes in one minute."""
        def cpu():
            total = 0
            for pid in self.pids():
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in f[11:15])      # utime stime cutime cstime
            return total / TICK
        before = cpu()
        for method, gid in PAGE_MINUTE:
            r = self.sb.jsonrpc(self.sid, "unlite", method, {"id": gid} if gid else {})
            assert r["result"][0] == 0, r
        time.sleep(0.3)                                  # plugin processes reaped
        return cpu() - before

    def close(self):
        try:
            if self.daemon.proc and self.daemon.proc.poll() is None:
                self.sb.call("unlite", "delete", {"id": "b1"})
        finally:
            self.daemon.stop()
            self.sb.stop()


def list_ladder(mode, sizes, calls):
    """``list`` (one call, every graph's line) beside one graph's ``get``, from ucode to the
    daemon's object, with ``sizes`` graphs deployed (1-NF bridges, no end-point)."""
    from bench_teardown import pair_graph
    rows, made = [], 1                                # b1 is there
    for n in sizes:
        while made < n:
            assert mode.sb.call("unlite", "put", {"id": f"s{made}", "graph": pair_graph(
                f"s{made}", 1)}).get("created"), "put"
            made += 1
        lst, get = [], []
        for _ in range(3):                            # interleaved rounds
            lst += mode.ucode_list(calls)
            get += mode.ucode_list(calls, "get", '{"id": "b1"}')
        rows.append((n, med_ms(lst), med_ms(get)))
    for i in range(1, made):
        mode.sb.call("unlite", "delete", {"id": f"s{i}"})
    return rows


def med_ms(xs):
    return statistics.median(xs) * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200, help="calls per mode and round")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    why = owrt.missing()
    if why:
        print(f"bench_ubus: skipped: {why}")
        return 0
    lab, work = netlab.Lab(), Path(tempfile.mkdtemp(prefix="ulbu-"))
    modes = []
    try:
        for name in ("daemon", "rpcd"):
            modes.append(Mode(lab, work, name))
            modes[-1].start()
        native, plugin = modes
        res = {k: [] for k in ("native", "plugin", "rest", "rpc-native", "rpc-plugin")}
        few = max(10, a.calls // 10)             # the plugin costs a process per call
        for _ in range(a.rounds):                # interleaved: load affects all alike
            res["native"] += native.ucode_list(a.calls)
            res["plugin"] += plugin.ucode_list(few)
            res["rest"] += native.rest_list(a.calls)
            res["rpc-native"] += native.jsonrpc_list(few)
            res["rpc-plugin"] += plugin.jsonrpc_list(few)
        cpu = {m.mode: m.page_minute_cpu() for m in modes}
        n, pl = med_ms(res["native"]), med_ms(res["plugin"])
        print(f"\nubus object unlite — OpenWrt's ubusd/rpcd/uhttpd, 1 graph, medians of "
              f"{len(res['native'])} / {len(res['plugin'])} calls ({a.rounds} rounds)\n")
        print("| path | per call | vs the daemon's object |\n|---|---:|---:|")
        rows = [("`list` from ucode → the daemon's own object", n),
                ("`list` from ucode → rpcd exec plugin (CPython per call)", pl),
                ("`GET /graphs` over the unix socket (REST, Python client)",
                 med_ms(res["rest"])),
                ("`list` via uhttpd /ubus JSON-RPC → the daemon's object",
                 med_ms(res["rpc-native"])),
                ("`list` via uhttpd /ubus JSON-RPC → rpcd exec plugin",
                 med_ms(res["rpc-plugin"]))]
        for what, v in rows:
            print(f"| {what} | {v:.2f} ms | {v / n:.1f}× |")
        print(f"\nexec plugin / daemon's object: **{pl / n:.0f}×** (target ≥ 30×; the "
              f"object's median target ≤ 1 ms: {'met' if n <= 1 else 'MISSED'})")
        print(f"\nserver CPU per minute of an open LuCI page ({len(PAGE_MINUTE)} calls: list "
              f"every 5 s, get + status every 2 s, capabilities every 30 s): daemon's object "
              f"{cpu['daemon'] * 1000:.0f} ms, "
              f"exec plugin {cpu['rpcd'] * 1000:.0f} ms "
              f"({cpu['rpcd'] / max(cpu['daemon'], 1 / TICK):.0f}×)")
        print(f"\n`list` is one call whatever the number of graphs (`node.summaries`, no kernel "
              f"read); its answer grows by a line per graph (from ucode → the daemon's object, "
              f"medians of {3 * a.calls // 4}):\n")
        print("| graphs | `list` | one graph's `get` | list / get |\n|---:|---:|---:|---:|")
        for n, lst, get in list_ladder(native, (1, 10, 50), a.calls // 4):
            print(f"| {n} | {lst:.2f} ms | {get:.2f} ms | {lst / get:.1f}× |")
    finally:
        for m in modes:
            m.close()
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
