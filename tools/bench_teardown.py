"""``make bench``, teardown part: unlite's deploy and delete beside a container's, the same
kernel objects — a network namespace, two veths (node side up, NF side configured), one
process — made and removed, round by round interleaved so that load cancels:

- **floor**: bare ``ip -batch`` (namespace and veths; one batch inside) and the process
  started with ``ip netns exec``; removed by kill, ``ip -batch netns del``;
- **crun** (prplOS's OCI runtime), as podman drives it: the same named namespace and veths,
  the process a container joining it (``crun run -d``; ``crun delete -f``). On this machine's
  hybrid cgroups crun runs with ``--cgroup-manager=disabled`` in a mount namespace without
  the cgroup2 mount (it refuses hybrid mode otherwise). "crun: not installed" when it is not;
- **unlite**: graphs of 1 and 2 ``idle`` NFs (the same objects: a namespace, two ports
  steered into each other, no end-point; its start script leaves one ``sleep`` running) and
  of 1 ``bridge`` NF (``make bench``'s NF: a Linux bridge in its namespace, which the kernel
  takes longer to free) through the REST API, PUT → 201 and DELETE → 204; and with
  ``--base REV`` the unlite of another commit beside this one (a before/after in one run).

A delete is over when the kernel has freed the veths (their names are free again):
unlite's DELETE returns only then; for the floor and crun, which return before, both times.
Veths just made take the kernel longer to free than settled ones (it waits for work their
creation queued), so every delete runs twice: right after the deploy ("young") and after
``--age`` s ("settled"). Median of ``--runs``.

Run alone: ``python tools/bench_teardown.py [--runs 15] [--base REV]``.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netlab  # noqa: E402

ROOT = netlab.ROOT
CRUN = ["crun", "--cgroup-manager=disabled"]


def pair_graph(gid, n, nf="bridge"):
    """``n`` NFs (1 or 2) whose ports are steered into each other: no end-point."""
    vnfs = [{"id": f"nf{i}", "name": nf, "ports": [{"id": "inout:0"}, {"id": "inout:1"}]}
            for i in range(1, n + 1)]
    a, b = ("vnf:nf1:inout:0", "vnf:nf1:inout:1") if n == 1 else \
        ("vnf:nf1:inout:1", "vnf:nf2:inout:0")
    rules = [{"id": i, "priority": 1, "match": {"port_in": x}, "actions": [{"output_to_port": y}]}
             for i, x, y in (("ab", a, b), ("ba", b, a))]
    if n == 2:
        c, d = "vnf:nf1:inout:0", "vnf:nf2:inout:1"
        rules += [{"id": "cd", "priority": 1, "match": {"port_in": c},
                   "actions": [{"output_to_port": d}]},
                  {"id": "dc", "priority": 1, "match": {"port_in": d},
                   "actions": [{"output_to_port": c}]}]
    return {"forwarding-graph": {"id": gid, "VNFs": vnfs, "end-points": [],
                                 "big-switch": {"flow-rules": rules}}}


def catalog(work):
    """The packed catalog and ``idle``: an NF whose start leaves one process (``sleep``)."""
    repo, src = work / "nnf", work / "idle"
    shutil.copytree(ROOT / "build" / "nnf", repo)
    src.mkdir()
    (src / "template.json").write_text(json.dumps({
        "name": "idle", "multitenancy": True, "timeout": 10,
        "ports": [{"label": "inout", "min": 0, "max": 8}],
        "dependencies": {"capability": [{"name": "sleep", "type": "executable"}]}}))
    (src / "start").write_text("#!/bin/sh\nsleep 100000 </dev/null >/dev/null 2>&1 &\n")
    (src / "start").chmod(0o755)
    subprocess.run([sys.executable, "-m", "unlite", "nnf", "pack", str(src), "-o",
                    str(repo / "idle.tgz")], check=True, cwd=ROOT, capture_output=True)
    return repo


# -- the helper: runs inside the node's namespace and times the floor and crun itself --------
def _private_mounts():
    """A mount namespace of our own without the cgroup2 mount (crun refuses hybrid cgroups);
    mounts made outside still show here (slave)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:                       # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    libc.mount(None, b"/", None, 0x4000 | 0x80000, None)    # MS_REC | MS_SLAVE
    if os.path.ismount("/sys/fs/cgroup/unified"):
        libc.umount2(b"/sys/fs/cgroup/unified", 2)          # MNT_DETACH


def _bundle(work, netns_dir):
    """An OCI bundle whose process is ``sleep`` (and its libraries), joining a named netns."""
    b = Path(work) / "bundle"
    rootfs = b / "rootfs"
    sleep = shutil.which("sleep")
    libs = [w for w in subprocess.run(["ldd", sleep], capture_output=True, text=True).stdout.split()
            if w.startswith("/")]
    for f in [sleep, *libs]:
        dst = rootfs / f.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(f), dst)
    subprocess.run(["crun", "spec"], cwd=b, check=True)
    conf = json.loads((b / "config.json").read_text())
    conf["process"].update(args=["/" + sleep.lstrip("/"), "100000"], terminal=False)
    conf["linux"]["namespaces"] = [n for n in conf["linux"]["namespaces"]
                                   if n["type"] != "network"] + [
        {"type": "network", "path": f"{netns_dir}/NETNS"}]
    (b / "config.json").write_text(json.dumps(conf))
    return b


class Helper:
    """The floor's and crun's objects, made and removed from inside the node's namespace."""

    def __init__(self, work, crun):
        self.work, self.crun, self.procs = Path(work), crun, {}
        from unlite.watch import wait_links_gone
        self.wait_links_gone = wait_links_gone
        if crun:
            _private_mounts()
            self.bundle = _bundle(work, "/run/netns")
            self.template = (self.bundle / "config.json").read_text()

    @staticmethod
    def _ip(lines, ns=None):
        subprocess.run(["ip", *(["-n", ns] if ns else []), "-batch", "-"],
                       input="\n".join(lines) + "\n", text=True, check=True)

    def make(self, how, i):
        ns, hosts = f"ulbt{os.getpid() % 1000}-{how}{i}", [f"ulbt{how[0]}{i}a", f"ulbt{how[0]}{i}b"]
        t = time.perf_counter()
        self._ip([f"netns add {ns}"] + [x for k, h in enumerate(hosts) for x in (
            f"link add {h} type veth peer name p{k} netns {ns}", f"link set {h} addrgenmode none",
            f"link set {h} up")])
        self._ip(["link set lo up"] + [x for k in range(2) for x in (
            f"link set p{k} addrgenmode none", f"link set p{k} up")], ns=ns)
        if how == "floor":
            self.procs[i] = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "100000"],
                                             start_new_session=True)
        else:
            b = self.bundle
            (b / "config.json").write_text(self.template.replace("NETNS", ns))
            subprocess.run([*CRUN, "run", "-d", "--bundle", str(b), ns], check=True,
                           stdin=subprocess.DEVNULL)
        return {"ms": (time.perf_counter() - t) * 1e3, "ns": ns, "hosts": hosts}

    def free(self, how, i, ns, hosts):
        t = time.perf_counter()
        if how == "floor":
            p = self.procs.pop(i)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        else:
            subprocess.run([*CRUN, "delete", "-f", ns], check=True)
        self._ip([f"netns del {ns}"])
        ret = time.perf_counter()
        left = self.wait_links_gone(hosts, 5.0)
        gone = time.perf_counter()
        return {"ret": (ret - t) * 1e3, "gone": (gone - t) * 1e3, "left": left}


def helper_main(work, crun):
    h = Helper(work, crun)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            out = getattr(h, cmd.pop("op"))(**cmd)
        except Exception as e:          # noqa: BLE001 - reported to the bench, which stops
            out = {"error": repr(e)}
        print(json.dumps(out), flush=True)


class HelperProc:
    def __init__(self, gw, work, crun):
        self.p = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{gw}", sys.executable, __file__, "--helper",
             str(work), "1" if crun else "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.call()

    def call(self, **cmd):
        if cmd:
            self.p.stdin.write(json.dumps(cmd) + "\n")
            self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline() or '{"error": "the helper exited"}')
        if "error" in out:
            raise RuntimeError(f"bench helper: {out['error']}")
        return out

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def measure(runs, age, base, work):
    lab, helper, made = netlab.Lab("ulbt"), None, {}
    crun = shutil.which("crun") is not None
    try:
        gw = lab.ns("gw")
        repo = catalog(work)
        daemons = {"unlite": netlab.Daemon(gw, work / "cur", repo).start()}
        if base:
            daemons[f"unlite {base[0]}"] = netlab.Daemon(gw, work / "base-run", repo,
                                                         port=8081, root=base[1]).start()
        helper = HelperProc(gw, work, crun)
        shapes = {"1 idle NF": (1, "idle"), "2 idle NFs": (2, "idle"),
                  "1 bridge NF": (1, "bridge")}
        kinds = ["floor"] + (["crun"] if crun else []) + [
            f"{name}, {shape}" for name in daemons for shape in shapes]
        res = {k: {"deploy": [], "ret": [], "young": [], "settled": []} for k in kinds}
        for r in range(runs):
            for k in kinds:
                for phase in ("young", "settled"):
                    if k in ("floor", "crun"):
                        m = helper.call(op="make", how=k, i=r)
                        made[m["ns"]] = k
                        if phase == "settled":
                            time.sleep(age)
                        f = helper.call(op="free", how=k, i=r, ns=m["ns"], hosts=m["hosts"])
                        made.pop(m["ns"])
                        if f["left"]:
                            raise RuntimeError(f"{k}: veths {f['left']} never went")
                        res[k]["deploy"].append(m["ms"])
                        if phase == "young":
                            res[k]["ret"].append(f["ret"])
                        res[k][phase].append(f["gone"])
                    else:
                        name, shape = k.split(", ", 1)
                        n, nf = shapes[shape]
                        d, gid = daemons[name], f"t{n}{nf}"
                        graph = pair_graph(gid, n, nf)
                        put = f"/NF-FG/{gid}"
                        res[k]["deploy"].append(timed(lambda d=d, p=put, g=graph:
                                                      d.api("PUT", p, g)))
                        if phase == "settled":
                            time.sleep(age)
                        ms = timed(lambda d=d, p=put: d.api("DELETE", p))
                        res[k][phase].append(ms)
                        if phase == "young":
                            res[k]["ret"].append(ms)
        for d in daemons.values():
            d.stop()
        left = netlab.unlite_objects(gw)
        if any(left.values()):
            raise RuntimeError(f"unlite left kernel objects behind: {left}")
        return res, crun
    finally:
        if helper:
            helper.close()
        for ns in made:                     # what a failure left of the floor's or crun's
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        lab.close()


def checkout(rev, work):
    """The tree of commit ``rev`` in ``work``/base (for a before/after in one run)."""
    dst = work / "base"
    dst.mkdir()
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True,
                         check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=tar, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dst / "unlite")], check=True)
    return dst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--age", type=float, default=0.25, help="s a settled graph lives (0.25)")
    ap.add_argument("--base", metavar="REV", help="also the unlite of commit REV, beside")
    ap.add_argument("--helper", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.helper:
        return helper_main(a.helper[0], a.helper[1] == "1")
    if os.geteuid() != 0:
        sys.exit("bench_teardown: needs root (namespaces)")
    with tempfile.TemporaryDirectory(prefix="unlite-bench-teardown-") as tmp:
        work = Path(tmp)
        base = None
        if a.base:
            rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", a.base],
                                 capture_output=True, text=True, check=True).stdout.strip()
            base = (rev, checkout(a.base, work))
        res, crun = measure(a.runs, a.age, base, work)
    med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in res.items()}
    print(f"\n## Teardown beside a container's (netns + 2 veths + 1 process; median of "
          f"{a.runs}, interleaved)\n")
    if not crun:
        print("crun: not installed (apt-get install crun): floor and unlite only\n")
    anchor = "crun" if crun else "floor"
    print("| who | deploy | delete returns (young) | veths gone: young | settled "
          f"({a.age * 1e3:.0f} ms) | gone vs floor: young / settled "
          f"| vs {anchor}: young / settled |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    fl, an = med["floor"], med[anchor]
    for k, m in med.items():
        print(f"| {k} | {m['deploy']:.1f} ms | {m['ret']:.1f} ms | {m['young']:.1f} ms | "
              f"{m['settled']:.1f} ms | {m['young'] / fl['young']:.2f}× / "
              f"{m['settled'] / fl['settled']:.2f}× | {m['young'] / an['young']:.2f}× / "
              f"{m['settled'] / an['settled']:.2f}× |")
    print(f"\ndeploy: unlite's is PUT → 201 (namespace, veths, nft rules, the start script); "
          f"{'crun' if crun else 'the floor'}'s the namespace, veths and process. "
          "A delete is over when the veths' names are free (unlite's DELETE returns then).")


if __name__ == "__main__":
    main()
