"""``make bench-paper``: the paper's Table IV experiment (Fig. 4 testbed) on this machine.

For each NF — the IPsec client the paper measured, and the firewall and NAT NNFs beside it —
a Fig. 4 testbed in namespaces (source → CPE running ``unlite serve`` with the graph
eth0 → NF → eth1 → VPN server → sink, see ``tools/ipsec_lab.py``) and, for the baseline, a
second one where the same NF's start script is launched by hand in a namespace wired straight
to source and server. Measured, each ``--runs`` times (default 10, as in the paper):

- (i)   throughput source → sink: iperf3, two parallel unidirectional TCP streams for
        ``--duration`` s (default 3; the paper used iperf "at the maximum speed"), MSS 1360 so
        the ESP-in-UDP packets (1472 bytes) need no fragmentation; with the CPU time of the
        CPE's processes (the daemon + the NF's) in % of one core, and the whole machine's CPU
        busy share (source, sink and server share these cores too);
- (ii)  RAM: PSS (and RSS) of the NF's processes, and of the unlite daemon;
- (iii) NF image: the packed ``.tgz`` from ``build/nnf``;
- the IPsec client on each ESP datapath this kernel offers (``--esp``): kernel ESP (XFRM, a
  router's kernel; ``make bench-paper-kernel`` runs this under a full kernel in a VM) and
  kernel-libipsec (userspace ESP over TUN, in UDP 4500), side by side with their ratio;
- (iv)  start: deploying the 1-NF graph through the REST API (PUT → 201) vs launching the
        NF's start script directly in a namespace that already has its ports — the cost
        unlite adds (paper: 727 ms NNF vs 154 ms baseline = 573 ms); also the time until a
        ping from the source is first answered by the sink (for the IPsec client: charon up,
        IKE_SA and CHILD_SA negotiated, tunnel carrying traffic).

Each figure is the mean of the runs (as the paper reports), with min / median / max.
Writes ``results/paper/{table.md,chart.svg,results.json}`` and prints the table.
Everything made is removed at the end, also on failure.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ipsec_lab as L  # noqa: E402
import netlab  # noqa: E402
import paper_chart  # noqa: E402

ROOT = netlab.ROOT
CATALOG = ROOT / "build" / "nnf"
OUT = ROOT / "results" / "paper"
KINDS = ("ipsec", "firewall", "nat")
HZ = os.sysconf("SC_CLK_TCK")

# Table IV of the paper (IPsec client; Mbps / CPU load %, RAM MB, NF image MB) and §V's start
# times on the server CPE.
PAPER = [("1) Server CPE — KVM/QEMU", 796, 100, 390.6, 522, "≈3000"),
         ("2) Server CPE — Docker", 1095, 80, 24.2, 240, "350"),
         ("3) Server CPE — NNF", 1094, 80, 19.4, 5, "727 (direct: 154)"),
         ("4) Domestic CPE — NNF", 57.2, 100, 5, 2, ""),
         ("5) Business CPE — NNF", 617, 90, 1.9, 3.7, "")]


def stats(xs):
    return {"mean": statistics.fmean(xs), "min": min(xs), "median": statistics.median(xs),
            "max": max(xs), "n": len(xs)}


# -- measuring helpers ---------------------------------------------------------------------------
class Prober:
    """ICMP echo from inside a namespace (a thread that setns-ed into it), every 2 ms until
    the first reply: how long until traffic flows, without the cost of an exec."""

    def __init__(self, ns):
        self.pool = concurrent.futures.ThreadPoolExecutor(1, initializer=netlab._enter,
                                                          initargs=(ns,))

    def first_reply(self, dest, t0, timeout=10.0):
        return self.pool.submit(self._probe, dest, t0, timeout).result()

    @staticmethod
    def _probe(dest, t0, timeout):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        ident, seq = os.getpid() & 0xFFFF, 0
        try:
            while time.perf_counter() - t0 < timeout:
                seq += 1
                hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"unlite-probe"
                s.sendto(hdr[:2] + struct.pack("!H", _csum(hdr)) + hdr[4:], (dest, 0))
                end = time.perf_counter() + 0.002
                while (left := end - time.perf_counter()) > 0:
                    if not select.select([s], [], [], left)[0]:
                        break
                    pkt = s.recv(2048)
                    icmp = pkt[(pkt[0] & 0x0F) * 4:]
                    if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
                        return time.perf_counter() - t0
            return None
        finally:
            s.close()

    def close(self):
        self.pool.shutdown(wait=False)


def _csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def ns_pids(ns):
    return [int(p) for p in netlab.sh("ip", "netns", "pids", ns).stdout.split()]


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])          # utime + stime (all threads)
        except OSError:
            pass
    return total


def machine_cpu():
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(f), f[3] + f[4]                     # total, idle + iowait


def ip_counters(ns):
    """IPv4 FragCreates + ReasmReqds of a namespace (/proc/net/snmp): fragmentation seen."""
    lines = [ln.split() for ln in netlab.sh("ip", "netns", "exec", ns, "cat",
                                            "/proc/net/snmp").stdout.splitlines()
             if ln.startswith("Ip:")]
    row = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return row["FragCreates"] + row["ReasmReqds"]


def memory_kb(pids):
    """(PSS, RSS) in kB summed over ``pids`` (smaps_rollup)."""
    pss = rss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                k, _, v = line.partition(":")
                if k == "Pss":
                    pss += int(v.split()[0])
                elif k == "Rss":
                    rss += int(v.split()[0])
        except OSError:
            pass
    return pss, rss


# -- one NF --------------------------------------------------------------------------------------
class PaperBench:
    def __init__(self, kind, runs, duration, work, esp=None):
        self.kind, self.runs, self.duration, self.esp = kind, runs, duration, esp
        self.work = work / (f"{kind}-{esp}" if esp else kind)
        self.res = {"nf": L.Fig4.NF[kind] + (f" ({esp})" if esp else "")}
        # the NF's choice forced, and the VPN server's datapath the same
        self.env = {"IPSEC_BACKEND": esp} if esp else {}

    def log(self, msg):
        print(f"  [{self.kind}{' ' + self.esp if self.esp else ''}] {msg}", file=sys.stderr,
              flush=True)

    def run(self):
        self.start_times()
        self.throughput_and_ram()
        self.image()
        return self.res

    def image(self):
        """Size of the package the resolver picked (name + flavour, from the graph status)."""
        impl = self.res["implementation"]            # e.g. "firewall (nftables)"
        name, _, flavour = impl.partition(" (")
        for index in sorted(CATALOG.glob("*.json")):
            t = json.loads(index.read_text())
            if t.get("name") == name and (t.get("flavour") or "") == flavour.rstrip(")"):
                self.res["image"] = t["uri"]
                self.res["image_bytes"] = (CATALOG / t["uri"]).stat().st_size
                return
        raise RuntimeError(f"no catalog entry for the deployed implementation {impl!r}")

    # (iv) start: through unlite vs direct ---------------------------------------------------
    def start_times(self):
        lab, dlab, daemon, probes, fig = netlab.Lab("ulp"), netlab.Lab("ulq"), None, [], None
        try:
            fig = L.Fig4.build(lab, self.kind)
            nf = dlab.ns("nf")
            dfig = L.Fig4.build(dlab, self.kind, gw=nf)
            dfig.psk = fig.psk
            for ifname, ip in zip(("eth0", "eth1"), dfig.nf_addresses()):
                if ip:                       # what unlite does with the graph's unify-ip
                    netlab.sh("ip", "-n", nf, "addr", "add", ip, "dev", ifname)
            if self.kind == "ipsec":
                fig.vpn_server(self.work / "vpn", self.esp)
                dfig.vpn_server(self.work / "vpn-direct", self.esp)
            daemon = netlab.Daemon(fig.gw, self.work / "daemon", CATALOG).start()
            probe, dprobe = Prober(fig.src), Prober(dfig.src)
            probes += [probe, dprobe]
            graph = fig.graph("paper", self.kind, **self.env)
            rundir = self.work / "direct-run"
            rundir.mkdir(parents=True)
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "UNLITE_RUN_DIR": str(rundir),
                   **dfig.graph_env(), **self.env}
            argv = ["ip", "netns", "exec", nf, "/bin/sh"]
            args = ["G", "NF", "2", "eth0", "eth1"]
            pkg = ROOT / "nnf" / L.Fig4.NF[self.kind]
            dep, ready, delete, direct, dready = [], [], [], [], []
            for _ in range(self.runs):
                for h in (fig.src, fig.vpn, dfig.src, dfig.vpn):     # fresh ARP, as at boot
                    netlab.sh("ip", "-n", h, "neigh", "flush", "all")
                t0 = time.perf_counter()
                daemon.api("PUT", "/NF-FG/paper", graph)
                dep.append(time.perf_counter() - t0)
                r = probe.first_reply(L.SINK, t0)
                if r is None:
                    raise RuntimeError(f"{self.kind}: no traffic through the deployed graph"
                                       f"\n{daemon.log()}")
                ready.append(r)
                t1 = time.perf_counter()
                daemon.api("DELETE", "/NF-FG/paper")
                delete.append(time.perf_counter() - t1)

                t0 = time.perf_counter()
                subprocess.run(argv + ["start"] + args, cwd=pkg, env=env, check=True,
                               timeout=60)
                direct.append(time.perf_counter() - t0)
                r = dprobe.first_reply(L.SINK, t0)
                if r is None:
                    raise RuntimeError(f"{self.kind}: no traffic through the hand-run NF")
                dready.append(r)
                subprocess.run(argv + ["stop"] + args, cwd=pkg, env=env, check=True,
                               timeout=60)
            ms = lambda xs: [x * 1e3 for x in xs]  # noqa: E731
            self.res.update(deploy_ms=stats(ms(dep)), ready_ms=stats(ms(ready)),
                            delete_ms=stats(ms(delete)), direct_ms=stats(ms(direct)),
                            direct_ready_ms=stats(ms(dready)),
                            overhead_ms=stats([a - b for a, b in zip(ms(dep), ms(direct))]))
            self.log(f"start via unlite {self.res['deploy_ms']['mean']:.1f} ms, direct "
                     f"{self.res['direct_ms']['mean']:.1f} ms, traffic after "
                     f"{self.res['ready_ms']['mean']:.1f} / "
                     f"{self.res['direct_ready_ms']['mean']:.1f} ms")
        finally:
            for p in probes:
                p.close()
            self._close(lab, daemon, fig)
            dlab.close()

    # (i) throughput with CPU, (ii) RAM ---------------------------------------------------------
    def throughput_and_ram(self):
        lab, daemon = netlab.Lab("ulp"), None
        fig = None
        try:
            fig = L.Fig4.build(lab, self.kind)
            if self.kind == "ipsec":
                fig.vpn_server(self.work / "vpn2", self.esp)
            daemon = netlab.Daemon(fig.gw, self.work / "daemon2", CATALOG).start()
            daemon.api("PUT", "/NF-FG/paper", fig.graph("paper", self.kind, **self.env))
            st = daemon.api("GET", "/NF-FG/status/paper")[1]
            nf_ns = st["VNFs"][0]["netns"]
            self.res["implementation"] = st["VNFs"][0]["implementation"]
            probe = Prober(fig.src)
            try:
                if probe.first_reply(L.SINK, time.perf_counter()) is None:
                    raise RuntimeError(f"{self.kind}: no traffic source → sink")
            finally:
                probe.close()
            lab.spawn(fig.sink, "iperf3", "-s", "-B", L.SINK)
            time.sleep(0.3)
            if self.kind == "ipsec":        # kernel-libipsec's TUN, whose MTU the MSS fits
                links = json.loads(netlab.sh("ip", "-n", nf_ns, "-j", "link", "show").stdout)
                tun = [ln["mtu"] for ln in links if ln["ifname"] == "ipsec0"]
                self.res["datapath"] = "kernel-libipsec" if tun else "kernel ESP"
                self.res["tun_mtu"] = tun[0] if tun else None
            frag_ns = (nf_ns, fig.vpn, fig.src, fig.sink)
            frags0 = sum(ip_counters(ns) for ns in frag_ns)
            cpe = ns_pids(fig.gw) + ns_pids(nf_ns)
            nf_pids = ns_pids(nf_ns)
            mbps, cpe_cpu, mach_cpu, nf_pss, nf_rss, d_pss, d_rss = ([] for _ in range(7))
            for i in range(self.runs):
                c0, m0, t0 = cpu_ticks(cpe), machine_cpu(), time.perf_counter()
                p = lab.run(fig.src, "iperf3", "-c", L.SINK, "-P", "2", "-t",
                            str(self.duration), "-M", str(L.MSS), "-J",
                            timeout=self.duration + 30)
                c1, m1, t1 = cpu_ticks(cpe), machine_cpu(), time.perf_counter()
                try:
                    out = json.loads(p.stdout)
                    bps = out["end"]["sum_received"]["bits_per_second"]
                except (ValueError, KeyError):
                    raise RuntimeError(f"iperf3 failed: {p.stdout[-500:]} {p.stderr}") from None
                mbps.append(bps / 1e6)
                cpe_cpu.append(100.0 * (c1 - c0) / HZ / (t1 - t0))
                mach_cpu.append(100.0 * (1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0])))
                pss, rss = memory_kb(nf_pids)
                nf_pss.append(pss / 1024)
                nf_rss.append(rss / 1024)
                pss, rss = memory_kb([daemon.proc.pid])
                d_pss.append(pss / 1024)
                d_rss.append(rss / 1024)
                self.log(f"run {i + 1}: {mbps[-1]:.0f} Mbit/s, CPE processes "
                         f"{cpe_cpu[-1]:.0f}% of a core, machine {mach_cpu[-1]:.0f}%")
            self.res["fragments"] = sum(ip_counters(ns) for ns in frag_ns) - frags0
            self.res.update(mbps=stats(mbps), cpe_cpu=stats(cpe_cpu), machine_cpu=stats(mach_cpu),
                            nf_pss_mb=stats(nf_pss), nf_rss_mb=stats(nf_rss),
                            daemon_pss_mb=stats(d_pss), daemon_rss_mb=stats(d_rss),
                            nf_processes=[Path(f"/proc/{p}/comm").read_text().strip()
                                          for p in nf_pids if Path(f"/proc/{p}").exists()])
            daemon.api("DELETE", "/NF-FG/paper")
        finally:
            self._close(lab, daemon, fig)

    def _close(self, lab, daemon, fig):
        left = None
        if daemon:
            daemon.stop()
        if fig:
            left = netlab.unlite_objects(fig.gw)
        lab.close()
        if left and any(left.values()):
            raise RuntimeError(f"unlite left kernel objects behind: {left}")


# -- output ---------------------------------------------------------------------------------------
def strongswan_installed_kb():
    p = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Installed-Size}\n",
                        *L.DEBIAN_PACKAGES, "strongswan-libcharon", "libstrongswan"],
                       capture_output=True, text=True)
    return sum(int(x.split()[1]) for x in p.stdout.splitlines() if len(x.split()) == 2)


def f1(x):
    return f"{x:.1f}"


def table(res, meta):
    ips = [r for r in res if r["kind"] == "ipsec"]
    ip = ips[-1] if ips else None               # libipsec's, when both ran
    lines = ["# The paper's Table IV, reproduced on this machine", "",
             f"`make bench-paper` ({Path(__file__).name}), {meta['when']} · {meta['machine']} · "
             f"{meta['runs']} runs per figure: means here, min / median / max below · "
             f"iperf3 -P 2 -t {meta['duration']} -M {L.MSS} · unlite backend nft · "
             "testbed: paper Fig. 4 in namespaces (tools/ipsec_lab.py)", "",
             "| IPsec client implementation | Thr. (Mbps) / CPU load | RAM (MB) | NF image (MB) "
             "| start (ms) |", "|---|---|---|---|---|"]
    for name, thr, cpu, ram, img, start in PAPER:
        lines.append(f"| paper: {name} | {thr} / {cpu}% | {ram} | {img} | {start} |")
    for r in res:
        impl = f"`{r['implementation']}`"
        label = {"ipsec": f"**this machine — unlite NNF {impl}**, {r.get('datapath')}",
                 "firewall": f"this machine — unlite NNF {impl} (not IPsec; for scale)",
                 "nat": f"this machine — unlite NNF {impl} (not IPsec; for scale)"}[r["kind"]]
        lines.append(
            f"| {label} | {r['mbps']['mean']:.0f} / {r['cpe_cpu']['mean']:.0f}% "
            f"| {r['nf_pss_mb']['mean']:.1f} | {r['image_bytes'] / 1e6:.4f} "
            f"| {r['deploy_ms']['mean']:.1f} (direct: {r['direct_ms']['mean']:.1f}) |")
    dp = statistics.fmean(r["daemon_pss_mb"]["mean"] for r in res)
    dr = statistics.fmean(r["daemon_rss_mb"]["mean"] for r in res)
    lines += ["", f"The unlite daemon beside the NF: {dp:.1f} MB PSS ({dr:.1f} MB RSS).", "",
              "CPU load: the CPE's processes (unlite daemon + the NF's) in % of one core; the "
              "paper's is the CPE box's load. RAM: PSS of the NF's processes (firewall and NAT "
              "have none: their rules live in the kernel). NF image: the `.tgz` unlite "
              "downloads; strongSwan itself is a host dependency (Debian packages here: "
              f"{meta['strongswan_kb'] / 1024:.1f} MB installed). Start: PUT → 201 through "
              "the REST API (netns, veths, start script, steering) vs the same start script "
              "launched by hand in a namespace that already has its ports.", "",
              "The IPsec client's start returns once charon runs with the connection loaded and "
              "initiating; unlite steers the graph before it runs start, so the IKE exchange "
              "begins at once. \"PUT → first ping answered\" below adds the IKE exchange to "
              "the deploy, as \"direct start → first ping\" does to the direct start.", ""]
    by = {r.get("datapath"): r for r in ips}
    if len(by) == 2:
        k, u = by["kernel ESP"], by["kernel-libipsec"]
        per = lambda r: r["machine_cpu"]["mean"] / max(r["mbps"]["mean"], 1e-9)  # noqa: E731
        lines += [f"**Kernel ESP vs kernel-libipsec**, same machine, same run: throughput "
                  f"{k['mbps']['mean'] / max(u['mbps']['mean'], 1e-9):.2f}×, the machine's "
                  f"CPU per Mbit/s {per(k) / max(per(u), 1e-9):.2f}× (kernel ESP runs in "
                  "softirq, so the CPE processes' own share says little: "
                  f"{k['cpe_cpu']['mean']:.0f}% vs {u['cpe_cpu']['mean']:.0f}%), NF RAM "
                  f"{k['nf_pss_mb']['mean']:.1f} vs {u['nf_pss_mb']['mean']:.1f} MB; start "
                  f"{k['deploy_ms']['mean']:.0f} vs {u['deploy_ms']['mean']:.0f} ms. The "
                  "paper's Table IV measured the kernel path.", ""]
    if ip and ip.get("tun_mtu"):
        lines += [f"MSS {L.MSS} = kernel-libipsec's TUN MTU (here: {ip['tun_mtu']}) − 40: "
                  "each ESP-in-UDP packet is 1472 bytes on the 1500-byte WAN link; IPv4 "
                  "fragments counted during the runs: "
                  + ", ".join(f"{r['nf']} {r['fragments']}" for r in res) + ".", ""]
    lines += ["## Every figure", "",
              "| NF | metric | mean | min | median | max | unit |", "|---|---|---|---|---|---|---|"]
    rows = [("throughput source → sink", "mbps", "Mbit/s"),
            ("CPU of the CPE's processes", "cpe_cpu", "% of a core"),
            ("CPU of the whole machine (all 4 boxes)", "machine_cpu",
             f"% of {os.cpu_count()} cores"),
            ("NF processes PSS", "nf_pss_mb", "MB"), ("NF processes RSS", "nf_rss_mb", "MB"),
            ("unlite daemon PSS", "daemon_pss_mb", "MB"),
            ("unlite daemon RSS", "daemon_rss_mb", "MB"),
            ("start via unlite (PUT → 201)", "deploy_ms", "ms"),
            ("start script launched directly (baseline)", "direct_ms", "ms"),
            ("**unlite start overhead** (PUT − direct)", "overhead_ms", "ms"),
            ("PUT → first ping answered by the sink", "ready_ms", "ms"),
            ("direct start → first ping answered", "direct_ready_ms", "ms"),
            ("delete via unlite (DELETE → 204)", "delete_ms", "ms")]
    for r in res:
        for label, key, unit in rows:
            s = r[key]
            lines.append(f"| {r['nf']} | {label} | {f1(s['mean'])} | {f1(s['min'])} | "
                         f"{f1(s['median'])} | {f1(s['max'])} | {unit} |")
        lines.append(f"| {r['nf']} | NF image ({r['image']}) | {r['image_bytes']} | | | | bytes |")
        lines.append(f"| {r['nf']} | IPv4 fragments made or reassembled during the iperf3 "
                     f"runs (NF, server, source, sink) | {r['fragments']} | | | | packets |")
    if ip:
        o = ip["overhead_ms"]
        worst = max(o["mean"], o["median"], 1.0)
        lines += ["", f"unlite's start overhead for the IPsec client: **{o['mean']:.1f} ms** mean, "
                  f"{o['median']:.1f} ms median of the paired differences (single runs "
                  f"{o['min']:.0f}…{o['max']:.0f} ms: both launches jitter by tens of ms on this "
                  f"shared 2-core machine), vs the paper's 727 − 154 = **573 ms**: "
                  f"≥ {573 / worst:.0f}× less."]
    lines += ["", "![start times and throughput](chart.svg)", ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10, help="repetitions per figure (default 10)")
    p.add_argument("--duration", type=int, default=3, help="iperf3 seconds per run (default 3)")
    p.add_argument("--nf", action="append", choices=KINDS, help="only these NFs")
    p.add_argument("--out", type=Path, default=OUT, help="results folder (results/paper)")
    p.add_argument("--esp", choices=("auto", "kernel", "libipsec", "both"), default="auto",
                   help="the IPsec client's ESP datapath: auto = both where this kernel has "
                        "ESP, else libipsec")
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-paper: needs root (namespaces)")
    kinds = a.nf or list(KINDS)
    if "ipsec" in kinds and L.strongswan_missing():
        sys.exit(f"bench-paper: {L.strongswan_missing()}")
    for k in kinds:
        if not (CATALOG / f"{L.Fig4.NF[k]}.tgz").is_file():
            sys.exit(f"bench-paper: {CATALOG}/{L.Fig4.NF[k]}.tgz missing: run make install")
    work = Path(tempfile.mkdtemp(prefix="unlite-paper-"))
    t0 = time.monotonic()
    print(f"bench-paper: {', '.join(kinds)}; {a.runs} runs each, iperf3 {a.duration} s "
          "(takes a few minutes)…", file=sys.stderr)
    esps = {"both": ["kernel", "libipsec"], "kernel": ["kernel"], "libipsec": ["libipsec"],
            "auto": ["kernel", "libipsec"] if L.esp_datapath() == "kernel" else ["libipsec"]
            }[a.esp]
    if "kernel" in esps and L.esp_datapath() != "kernel":
        sys.exit("bench-paper: this kernel has no ESP (XFRM): make bench-paper-kernel runs "
                 "the IPsec client under a full kernel")
    res = []
    try:
        for k in kinds:
            for esp in esps if k == "ipsec" else [None]:
                r = PaperBench(k, a.runs, a.duration, work, esp).run()
                r["kind"] = k
                res.append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta = {"when": time.strftime("%Y-%m-%d"), "runs": a.runs, "duration": a.duration,
            "machine": f"{platform.machine()}, {os.cpu_count()} core(s), kernel "
                       f"{os.uname().release}, Python {platform.python_version()}"
                       + (" — in the kernel lab's QEMU VM (emulated CPU when KVM is not "
                          "usable: read the ratios, not the absolute figures)"
                          if netlab.KERNEL_LAB else ""),
            "strongswan_kb": strongswan_installed_kb(), "seconds": time.monotonic() - t0}
    md = table(res, meta)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "table.md").write_text(md)
    (a.out / "chart.svg").write_text(paper_chart.svg(res))
    (a.out / "results.json").write_text(json.dumps({"meta": meta, "results": res}, indent=1))
    print(md)
    print(f"\nwritten: {a.out}/table.md, chart.svg, results.json "
          f"({meta['seconds']:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
