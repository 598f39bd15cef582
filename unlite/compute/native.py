"""The native compute driver (paper Table II): an NNF instance = a netns + veth ports + scripts.

``NativeDriver.plan()`` turns a graph's VNF into an ``Instance`` record (names, package,
ports) without touching the kernel; the node stores that record *before* calling
``create()``, so a crash always leaves a record to clean from.

Kernel objects of one instance:
- netns ``ul<node>-<graph>-<nf>-<h6>``: ``<node>`` names the node's own network namespace
  (``sh.node_tag``: two nodes on one host never share a name), then a readable part, then a
  hash of (graph, NF, spec) so two versions of one NF can coexist during an update (make
  before break);
- per port a veth pair: ``ul<10 hex>`` on the node side (≤ 15 bytes), and inside the netns a
  name derived from the port id (``inout:0`` → ``inout0``), with the graph's ``mac`` and
  ``unify-ip`` applied.

Lifecycle scripts run inside the netns (see ``nnf/README.md`` for the contract):
``SCRIPT GRAPH_ID NF_ID N_PORTS IF0 IF1 ...`` with ``UNLITE_*`` variables and the graph's
``unify-env-variables`` in the environment.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import sh
from . import freezer, limits
from .package import PackageError, Repository, missing_dependencies

VETH_GONE_TIMEOUT = 3.0   # s to wait for the kernel to free the veths of deleted namespaces


class ComputeError(Exception):
    """A lifecycle step failed; ``fault`` is one of the named faults of design.md."""

    def __init__(self, message, fault="FailureOnStart", path=None, status=422):
        super().__init__(message)
        self.message, self.fault, self.path, self.status = message, fault, path, status


@dataclass
class PortRec:
    id: str
    ifname: str      # inside the NF's netns
    host: str        # node side of the veth
    mac: str | None = None
    ip: str | None = None


@dataclass
class Instance:
    graph: str
    nf: str
    name: str            # functional name asked for
    impl: str            # resolved implementation: template name (+ flavour)
    netns: str
    pkg_dir: str
    pkg_sha256: str
    timeout: float
    ports: list[PortRec]
    env: list[list[str]] = field(default_factory=list)
    limits: dict = field(default_factory=dict)          # template's memory/pids/cpu
    cgroups: list[str] = field(default_factory=list)    # cgroup.procs files its scripts join
    state: str = "Idle"  # Idle → Starting → Active → Stopping → Idle; Failed
    fault: str | None = None
    fault_detail: str | None = None

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["ports"] = [PortRec(**p) for p in d["ports"]]
        return cls(**d)

    def port(self, port_id):
        return next((p for p in self.ports if p.id == port_id), None)


def _h(*parts, n=10):
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:n]


def _inner_names(port_ids):
    names, seen = [], set()
    for i, pid in enumerate(port_ids):
        n = re.sub(r"[^A-Za-z0-9_.-]", "", pid)
        if not n or len(n) > 15 or n in seen or n in ("lo", ".", ".."):
            n = f"p{i}"
        seen.add(n)
        names.append(n)
    return names


class NativeDriver:
    kind = "native"

    def __init__(self, repo: Repository, run_dir, resolver=None):
        self.repo, self.resolver = repo, resolver
        self.tag = sh.node_tag()
        self.run_dir = Path(run_dir) / "nf"
        self.run_dir.mkdir(parents=True, exist_ok=True)

    # -- planning (no kernel objects) ------------------------------------------------------
    def plan(self, graph_id, vnf):
        """Resolve the package and compute every name; raise ComputeError on bad requests."""
        try:
            pkg = (self.resolver.resolve(vnf.name, vnf.template) if self.resolver
                   else self.repo.resolve(vnf.name, vnf.template))
        except PackageError as e:
            raise ComputeError(e.message, "Unstartable", f"{vnf.path}.name", e.status) from e
        t = pkg.template
        missing = missing_dependencies(t)
        if missing:                         # no flavour of the function can run here
            others = self.resolver.why_not(vnf.name, vnf.template) if self.resolver else []
            raise ComputeError(f"NF '{vnf.id}' ({t.name}) cannot run here: missing "
                               + ", ".join(missing)
                               + (f" (flavours: {'; '.join(others)})" if len(others) > 1
                                  else ""), "DependencyFailure", f"{vnf.path}.name")
        err = t.check_ports([p.id for p in vnf.ports])
        if err:
            raise ComputeError(f"NF '{vnf.id}' ({t.name}): {err}", "Unstartable",
                               f"{vnf.path}.ports")
        spec = json.dumps([vnf.name, vnf.template, [(p.id, p.mac, p.ip) for p in vnf.ports],
                           list(vnf.env), pkg.sha256], sort_keys=True)
        digest = _h(self.tag, graph_id, vnf.id, spec, n=6)
        netns = f"ul{self.tag}-{graph_id[:16]}-{vnf.id[:16]}-{digest}"
        ports = [PortRec(p.id, inner, "ul" + _h(netns, p.id), p.mac, p.ip)
                 for p, inner in zip(vnf.ports, _inner_names([p.id for p in vnf.ports]))]
        impl = t.name + (f" ({t.flavour})" if t.flavour else "")
        return Instance(graph_id, vnf.id, vnf.name, impl, netns, str(pkg.dir), pkg.sha256,
                        t.timeout, ports, [list(kv) for kv in vnf.env], t.limits)

    # -- Table II ------------------------------------------------------------------------------
    def create(self, inst: Instance):
        """Allocate: netns, veth ports (configured), run dir; then the optional create script."""
        rd = self._rundir(inst)
        rd.mkdir(parents=True, exist_ok=True)
        (rd / "config.json").write_text(json.dumps(self._config(inst), indent=1))
        host = [f"netns add {inst.netns}"]
        inner = ["link set lo up"]
        for p in inst.ports:
            host += [f"link add {p.host} type veth peer name {p.ifname} netns {inst.netns}",
                     f"link set {p.host} addrgenmode none", f"link set {p.host} up"]
            # quiet by default: no IPv6 autoconf chatter (RS, DAD) from an NF's ports
            inner.append(f"link set {p.ifname} addrgenmode none")
            if p.mac:
                inner.append(f"link set {p.ifname} address {p.mac}")
            if p.ip:
                inner.append(f"addr add {p.ip} dev {p.ifname}")
            inner.append(f"link set {p.ifname} up")
        try:
            sh.ip_batch(host)
            sh.ip_batch(inner, ns=inst.netns)
        except sh.CommandError as e:
            raise ComputeError(f"NF '{inst.nf}': cannot plumb its ports: {e.stderr}",
                               "Unstartable") from e
        try:
            inst.cgroups = limits.apply(inst.netns, inst.limits)
        except (limits.LimitError, OSError) as e:
            raise ComputeError(f"NF '{inst.nf}': cannot apply its resource limits: {e}",
                               "Unstartable") from e
        self._script(inst, "create", "Unstartable")

    def start(self, inst: Instance):
        inst.state = "Starting"
        self._script(inst, "start", "FailureOnStart")
        inst.state, inst.fault, inst.fault_detail = "Active", None, None

    def pause(self, inst: Instance):
        """Freeze the NF: its optional ``pause`` script, then every process in its namespace
        into a frozen cgroup, and its ports down on the node side, so no traffic moves
        either (a kernel function such as a bridge has no process to freeze)."""
        self._script(inst, "pause", "FailureWhileActive")
        try:
            freezer.freeze(inst.netns, sh.netns_pids([inst.netns]))
        except OSError as e:
            freezer.release(inst.netns)
            raise ComputeError(f"NF '{inst.nf}': cannot freeze its processes: {e}",
                               "FailureWhileActive") from e
        sh.ip_batch([f"link set {p.host} down" for p in inst.ports])
        inst.state = "Paused"

    def resume(self, inst: Instance):
        """Undo pause: ports up, processes thawed (the same processes: nothing restarts)."""
        sh.ip_batch([f"link set {p.host} up" for p in inst.ports])
        try:
            freezer.thaw(inst.netns)
        except OSError as e:
            raise ComputeError(f"NF '{inst.nf}': cannot thaw its processes: {e}",
                               "FailureWhileActive") from e
        inst.state = "Active"
        self._script(inst, "resume", "FailureWhileActive")

    def stop(self, inst: Instance):
        """Stop the NF: its stop script, then kill what is left in its namespace. Keeps the
        namespace and ports. Never raises (a failure is recorded in ``inst.fault``)."""
        if inst.state == "Paused":
            self._unpause(inst)
        inst.state = "Stopping"
        try:
            self._script(inst, "stop", "FailureOnStop")
        except ComputeError:
            pass
        _kill(sh.netns_pids([inst.netns]))
        inst.state = "Idle"

    def _unpause(self, inst):
        try:
            sh.ip_batch([f"link set {p.host} up" for p in inst.ports])
            freezer.thaw(inst.netns)
        except (OSError, sh.CommandError):
            pass

    def delete(self, inst: Instance):
        """Table II's delete of one stopped instance (the node frees many at once with
        ``teardown``)."""
        self.teardown([inst], stop=False)

    def teardown(self, insts, stop=True):
        """Stop (optionally) and free instances: scripts, processes, netns, veths, run dirs.

        Idempotent, never raises. Deleting the namespaces is what frees the ports: the kernel
        then unregisters every veth pair of all of them in one batch (one RCU grace period),
        much cheaper than one ``link del`` per veth. We wait until the node-side ends are
        gone, so no object of the instances outlives the call.
        """
        insts = list(insts)
        for inst in insts:
            try:
                freezer.thaw(inst.netns)      # frozen processes would not die (cgroup v1)
            except OSError:
                pass
            if stop:
                inst.state = "Stopping"
                try:
                    self._script(inst, "stop", "FailureOnStop")
                except ComputeError:
                    pass
            try:
                self._script(inst, "delete", "FailureOnStop")
            except ComputeError:
                pass
            inst.state = "Idle"
        _kill(sh.netns_pids([i.netns for i in insts]))
        sh.ip_batch([f"netns del {i.netns}" for i in insts
                     if os.path.exists(f"/run/netns/{i.netns}")], force=True)
        hosts = [p.host for i in insts for p in i.ports]
        left = sh.wait_links_gone(hosts, VETH_GONE_TIMEOUT)
        if left:                    # e.g. a namespace still pinned by a stray mount or process
            sh.ip_batch([f"link del {h}" for h in left], force=True)
        for inst in insts:
            freezer.release(inst.netns)
            if inst.limits:
                limits.release(inst.netns)
            shutil.rmtree(self._rundir(inst), ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------
    def _rundir(self, inst):
        return self.run_dir / inst.netns

    def _config(self, inst):
        return {"graph": inst.graph, "nf": inst.nf, "name": inst.name, "impl": inst.impl,
                "netns": inst.netns, "ports": [asdict(p) for p in inst.ports],
                "env": dict(inst.env)}

    def _script(self, inst, action, fault):
        script = Path(inst.pkg_dir) / action
        if not (os.path.isfile(script) and os.access(script, os.X_OK)):
            return
        if not os.path.exists(f"/run/netns/{inst.netns}"):
            raise ComputeError(f"NF '{inst.nf}': namespace {inst.netns} is gone", fault)
        rd = self._rundir(inst)
        rd.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in inst.env}
        env.update({
            "PATH": sh.SBIN_PATH, "UNLITE_ACTION": action, "UNLITE_GRAPH_ID": inst.graph,
            "UNLITE_NF_ID": inst.nf, "UNLITE_NF_NAME": inst.name, "UNLITE_NETNS": inst.netns,
            "UNLITE_PORTS": " ".join(p.ifname for p in inst.ports),
            "UNLITE_PORT_IDS": " ".join(p.id for p in inst.ports),
            "UNLITE_RUN_DIR": str(rd), "UNLITE_PKG_DIR": inst.pkg_dir,
            "UNLITE_CONFIG": str(rd / "config.json"),
        })
        if inst.cgroups:
            env["UNLITE_CGROUP_PROCS"] = " ".join(inst.cgroups)
        argv = ["ip", "netns", "exec", inst.netns, "/bin/sh", str(script), inst.graph, inst.nf,
                str(len(inst.ports))] + [p.ifname for p in inst.ports]
        code, tail = sh.run_script(limits.join_argv(inst.cgroups, argv), env, inst.pkg_dir,
                                   rd / "log", inst.timeout)
        if code != 0:
            inst.state, inst.fault, inst.fault_detail = "Failed", fault, tail
            raise ComputeError(f"NF '{inst.nf}' ({inst.impl}): {action} script exited {code}"
                               + (f": {tail}" if tail else ""), fault)



def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
