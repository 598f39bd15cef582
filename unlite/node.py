"""The node: turns a desired graph into kernel objects, as one transaction.

``Node.put(id, doc)`` deploys a new graph or updates a running one by difference:

1. parse and validate (model), ask the backend what it can carry, check the end-points
   exist and belong to no other graph (and to the caller, with tenants), plan every NF
   instance (resolved package, dependencies, names);
2. record the plan (runtime record), then create only the NF instances that are new or
   changed — a changed NF gets a new instance beside the old one, an NF whose only change
   is its port set keeps its instance and gets the new ports hot-plugged (Table II update),
   a single-instance NF (``multitenancy: false``) gets the graph's own ports — and the
   end-point devices;
3. steer: one backend transaction that rewrites only the chains whose rules changed;
4. start the new instances (they can already talk through the graph), run ``update`` in
   the hot-plugged ones, store the desired graph (the commit point), then unplug the ports
   and stop and delete the instances nobody uses any more.

Any failure before the commit point puts the old rules back, undoes what 2 made and leaves
the previous version running. A delete stops the NFs while they are still steered (their
stop scripts in parallel), deletes their namespaces in one batch, removes the rules while
the kernel frees the veths, and returns once netlink says they are gone.
Mutations are serialised by one lock; reads never take it. A graph's NF scripts (start,
update, stop) run without it, the graph marked busy: other graphs' changes go on meanwhile, and
check their end-points, veths and control ports against the change under way (``_pending``)
as if it ran; a change of the same graph waits (``_settle``). Each graph's last change (put or
delete: queued, running, done or failed, with the error and its path) is in ``changes``, shown
by ``status`` and ``summaries`` and told as events (deploying/updating/deleting, then
created/updated/deleted/failed); ``runner`` lets a caller stop waiting for a long change.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import faults, names, network, sh
from .changes import Changes, Runner
from .compute import states
from .compute.native import ComputeError, Instance, NativeDriver
from .compute.package import Repository, missing_dependencies
from .model import Graph, ModelError, parse_graph, validate_id
from .events import Events
from .tenants import LEGACY_ROOT, Tenants, owner_of
from .resolver import DEFAULT_PREFER, Resolver
from .network import Attach, SteeringError, control, endpoints
from .network.endpoints import EpLink
from .steps import Steps
from .store import CorruptFile, Store, StoreError
from .errors import UnliteError

log = logging.getLogger("unlite.node")


class NodeError(UnliteError):
    """A change the node refuses: a conflict, another tenant's, a missing graph or NF."""


@dataclass
class Deployed:
    graph: Graph
    instances: dict[str, Instance]          # NF id → instance
    chains: dict                            # backend's desired state
    links: dict[str, EpLink] = field(default_factory=dict)   # end-point id → devices we made
    state: str = "complete"                 # "degraded": the kernel says an NF is not well
    error: dict | None = None
    warnings: list[str] = field(default_factory=list)
    backend: str = ""                       # the steering backend that holds its chains
    problems: list[str] = field(default_factory=list)    # what the last world check found

    def record(self):
        return {"graph": self.graph.id, "backend": self.backend, "chains": self.chains,
                "instances": [i.to_dict() for i in self.instances.values()],
                "links": [ln.to_dict() for ln in self.links.values()]}


@dataclass
class Plan:
    """A change planned (``Node._plan``): what it makes, hot-plugs and frees."""
    graph: Graph
    old: Deployed | None
    hot: dict                       # NF id → (kept instance with new ports, added, removed)
    fresh: list[Instance]           # instances to make (new NFs, or changed ones anew)
    gone: list[Instance]            # the old version's instances nobody uses any more
    fresh_links: list[EpLink]       # end-point devices to make
    gone_links: list[EpLink]        # and to delete after the commit
    new: Deployed                   # the graph as it will run


class Node:
    def __init__(self, state_dir, run_dir, nnf_dir, backend="nft", prefer=None,
                 tenants=None, **backend_options):
        self.store = Store(state_dir, run_dir)
        self.tenants = tenants or Tenants()
        self.repo = Repository(nnf_dir, Path(run_dir) / "pkg")
        self.resolver = Resolver(self.repo, prefer if prefer is not None else DEFAULT_PREFER)
        self.compute = NativeDriver(self.repo, run_dir, self.resolver)
        self.switch = network.get(backend, **backend_options)
        self.events = Events()
        self.lock = threading.Lock()
        self._quiet = threading.Condition(self.lock)    # a graph's unlocked scripts ended
        self._busy: set[str] = set()        # graphs whose scripts run without the lock
        self._pending: dict[str, Deployed] = {}     # changes under way: the graph as it will
                                                    # run (its devices and ports exist already)
        self.graphs: dict[str, Deployed] = {}
        self.failed: dict[str, dict] = {}   # graphs stored but not running (after a restart)
        self.set_aside: list[str] = []      # unreadable state files renamed at start
        self.changes = Changes()            # each graph's last change (unlite/changes.py)
        self.runner = Runner()              # changes that outlive their caller's wait
        self._snapshot = None               # the datapath as read once at restore

    # -- tenants ----------------------------------------------------------------------------------
    def _owner(self, gid):
        try:
            rec = self.store.owners.get(gid)
        except CorruptFile as e:            # nobody's: only the admin sees it (set aside at start)
            log.error("%s", e)
            return "(unreadable owner record)"
        name = rec.get("tenant") if rec else None
        return None if name == LEGACY_ROOT else name   # older versions' root (tenants.py)

    def _visible(self, gid, tenant):
        if tenant is None or tenant.admin:
            return True
        c = self.changes.get(gid)
        owner = self._owner(gid) or (c.tenant if c and c.new else None)
        return owner is not None and owner == tenant.owner

    def _exists(self, gid):
        """Deployed, stored but failed, or being deployed for the first time."""
        c = self.changes.get(gid)
        return gid in self.graphs or gid in self.failed or bool(c and c.pending and c.new)

    def _must_see(self, gid, tenant):
        """404 for a graph that does not exist — or that belongs to another tenant; the
        error carries the graph's last change (a first deploy that failed) for its owner."""
        if not (self._exists(gid) and self._visible(gid, tenant)):
            c = self.changes.get(gid)
            seen = c and (tenant is None or tenant.admin
                          or (c.tenant is not None and c.tenant == tenant.owner))
            raise NodeError(f"no graph '{gid}'", status=404,
                            extra={"change": c.to_dict()} if seen else None)

    def _check_owner(self, gid, tenant):
        """A tenant changes only its own graphs (and not one another tenant is deploying).
        The answer says the id is taken, nothing of whose (no oracle beyond that)."""
        if tenant is None or tenant.admin:
            return
        if self._exists(gid) and not self._visible(gid, tenant):
            raise NodeError(f"graph id '{gid}' cannot be used: choose another id",
                            "$.id (URL)", 403)

    def _named(self, gid, tenant):
        """A graph as an error text for ``tenant`` names it: by id if it may see it, else
        as 'another graph' (a tenant learns no id, no owner of anybody else's)."""
        return f"graph '{gid}'" if self._visible(gid, tenant) else "another graph"

    def _seen_of(self, graphs, tenant):
        return [g for g in graphs if self._visible(g, tenant)]

    def _check_tenant(self, graph, tenant):
        if tenant is None or tenant.admin:
            return
        self._check_owner(graph.id, tenant)
        for ep in graph.endpoints:
            if ep.type == "host-stack":
                raise NodeError(f"end-point '{ep.id}': tenant '{tenant.name}' may not attach "
                                "the node's own stack", f"{ep.path}.type", 403)
            if ep.ifname and not tenant.may_use(ep.ifname):
                raise NodeError(f"end-point '{ep.id}': tenant '{tenant.name}' may not use "
                                f"interface '{ep.ifname}'", f"{ep.path}.{ep.type}.if-name", 403)
        for v in graph.vnfs:
            for c in v.control:
                if not tenant.control_addresses(c.host_port):
                    raise NodeError(f"tenant '{tenant.name}' may not take node TCP port "
                                    f"{c.host_port} for unify-control (the tenant's UCI "
                                    "section grants none: list control 'ADDR:PORT')",
                                    f"{c.path}.host-tcp-port", 403)

    def _publish(self, gid, kind, data):
        owner = self._owner(gid)
        self.events.publish(kind, {**data, "tenant": owner} if owner else data)

    def _scope(self, gid):
        """Whose internal groups a graph joins: its owner's (tenants never share one)."""
        owner = self._owner(gid)
        return "" if owner is None or (self.tenants.by_name.get(owner) and
                                       self.tenants.by_name[owner].admin) else owner

    # -- reads (no lock) ----------------------------------------------------------------------
    def ids(self, tenant=None):
        return sorted(g for g in set(self.graphs) | set(self.failed)
                      if self._visible(g, tenant))

    def get(self, gid, tenant=None):
        self._must_see(gid, tenant)
        d = self.graphs.get(gid)
        if d:
            return d.graph.doc
        doc = self._stored(gid) if gid in self.failed else None
        if doc is None:
            raise NodeError(f"no graph '{gid}'", status=404)
        return doc

    def _stored(self, gid):
        """The stored graph of a failed one; None if its file is gone or unreadable now."""
        try:
            return self.store.desired.get(gid)
        except CorruptFile as e:
            log.error("%s", e)
            return None

    def status(self, gid, tenant=None):
        self._must_see(gid, tenant)
        self.check_world(gid)                        # from the kernel, unless a change runs
        d = self.graphs.get(gid)
        c = self.changes.get(gid)
        change = {"change": c.to_dict()} if c else {}
        if d is None:
            if gid in self.failed:
                f = self.failed[gid]
                return {"id": gid, "status": "failed", "error": f.get("error"),
                        **({"waiting-for": f["waiting-for"]} if f.get("waiting-for") else {}),
                        "percentage_completed": 0, **change}
            if c and c.pending:                      # a first deploy, queued or running
                return {"id": gid, "status": c.progress(), "percentage_completed": 0,
                        "VNFs": [], "flow-rules": [], "warnings": [], **change}
            raise NodeError(f"no graph '{gid}'", status=404)
        counters = self.switch.counters(gid, d.chains)
        return {
            "id": gid, "status": d.state, "backend": self.switch.name,
            "percentage_completed": 100,                 # the UN's field: deployed
            **({"problems": list(d.problems)} if d.problems else {}),
            "VNFs": [self._nf_status(i, tenant) for i in d.instances.values()],
            "flow-rules": [{"id": r.id, "priority": r.priority,
                            **counters.get(r.id, {"packets": None, "bytes": None})}
                           for r in d.graph.rules],
            "warnings": list(d.graph.warnings), **change,
        }

    def summaries(self, tenant=None):
        """One line per graph the caller may see, deployed, failed or being deployed: what
        ``ubus call unlite list`` and the LuCI page show (no counters: no kernel read)."""
        gids = set(self.ids(tenant)) | {c.gid for c in self.changes.pending_new()
                                        if self._visible(c.gid, tenant)}
        return [s for s in (self._summary(g) for g in sorted(gids)) if s]

    def _summary(self, gid):
        d, c = self.graphs.get(gid), self.changes.get(gid)
        if d is not None:
            fg, status = d.graph.doc.get("forwarding-graph") or {}, d.state
            faults = [{"vnf": i.nf, "fault": i.fault} for i in d.instances.values() if i.fault]
            faults += [{"vnf": None, "fault": p} for p in d.problems if p.startswith("end-point")]
        elif gid in self.failed:
            fg = (self._stored(gid) or {}).get("forwarding-graph") or {}
            status, err = "failed", self.failed[gid].get("error")
            faults = [{"vnf": None, "fault": err}]
        elif c and c.pending:
            fg, status, faults = {}, c.progress(), []
        else:
            return None                              # deleted meanwhile
        fg = fg if isinstance(fg, dict) else {}
        out = {"id": gid, "name": fg.get("name"),
               "status": c.progress() if c and c.pending else status,
               "vnfs": len(fg.get("VNFs") or []), "end-points": len(fg.get("end-points") or []),
               "flow-rules": len((fg.get("big-switch") or {}).get("flow-rules") or []),
               "faults": faults}
        if c:
            out["change"] = c.to_dict()
        return out

    def capabilities(self, tenant=None):
        """What the node offers; a tenant's counts are of its own graphs (and it sees no
        other's set-aside files)."""
        funcs = []
        best = self.resolver.preferred()
        for t in self.repo.templates():
            if not missing_dependencies(t):          # only what can run now
                funcs.append({"name": t.name, "flavour": t.flavour, "aliases": list(t.aliases),
                              "multitenancy": t.multitenancy, "ports": list(t.ports),
                              "preferred": best.get(t.name) is t})
        mem = _meminfo()
        mine = [d for g, d in list(self.graphs.items()) if self._visible(g, tenant)]
        steering = self.switch.features()
        return {
            "functional-capabilities": funcs,
            "infrastructure": {"arch": os.uname().machine, "kernel": os.uname().release,
                               "execution-environments": ["native"],
                               "steering-backend": self.switch.name,
                               "steering": {**steering, "probe": self.switch.probe_result},
                               "endpoint-types": steering["endpoint-types"]},
            "resources": {"cpus": os.cpu_count(), "memory-free-kb": mem.get("MemAvailable"),
                          "memory-total-kb": mem.get("MemTotal"), "graphs": len(mine),
                          "nfs": sum(len(d.instances) for d in mine)},
            # state files that could not be read at start
            "set-aside": list(self.set_aside) if tenant is None or tenant.admin else [],
        }

    # -- one NF (paper Table II) ----------------------------------------------------------------
    NF_ACTIONS = states.ASKED           # an action → the states it is accepted in

    def nf_action(self, gid, nf, action, tenant=None):
        """Stop, start, pause or resume one NF of a running graph; its namespace, ports and
        steering stay. Returns the NF's status. (Runtime only: a restart of the daemon
        starts every NF of the stored graphs.)"""
        if action not in self.NF_ACTIONS:
            raise NodeError(f"unknown NF action '{action}' (known: "
                            f"{', '.join(self.NF_ACTIONS)})", "$.action", 404)
        with self.lock:
            self._settle(gid)
            d = self.graphs.get(gid)
            if d is None or not self._visible(gid, tenant):
                raise NodeError(f"no running graph '{gid}'", status=404)
            inst = d.instances.get(nf)
            if inst is None:
                raise NodeError(f"graph '{gid}' has no NF '{nf}'", status=404)
            if inst.shared:
                raise NodeError(f"NF '{nf}' is a single instance shared by graphs: one "
                                f"graph cannot {action} it", status=409)
            if inst.state not in self.NF_ACTIONS[action]:
                raise NodeError(f"NF '{nf}' is {inst.state}: cannot {action} it (only when "
                                f"{' or '.join(self.NF_ACTIONS[action])})", status=409)
            try:
                if action == "stop":
                    self._unlocked(gid, self.compute.stop, inst)
                elif action == "start":
                    inst.fault = inst.fault_detail = None
                    self._unlocked(gid, self.compute.start, inst)
                else:
                    getattr(self.compute, action)(inst)
            finally:                          # success or fault: record and tell
                self.store.runtime.put(gid, d.record())
                self._publish(gid, "nf", {"graph": gid, "nf": nf, "state": inst.state,
                                           "fault": inst.fault})
            return self._nf_status(inst, tenant)

    def _nf_status(self, i, tenant=None):
        out = {"id": i.nf, "name": i.name, "implementation": i.impl, "state": i.state,
               "fault": i.fault, "fault-detail": i.fault_detail, "netns": i.netns,
               "ports": [{"id": p.id, "ifname": p.ifname, "host-ifname": p.host}
                         for p in i.ports]}
        if i.shared:                      # one instance serving several graphs
            out["state"], by = self.compute.shared_view(i)
            out["shared-by"] = self._seen_of(by, tenant)      # others' graphs: unnamed
        if i.control:
            out["control"] = [{"host-tcp-port": h, "vnf-tcp-port": v,
                               "address": i.ctl["addr"].split("/")[0] if i.ctl else None}
                              for h, v in i.control]
        return out

    # -- changes ------------------------------------------------------------------------------
    def post(self, doc, tenant=None):
        """Create a graph under a new UUID, as the UN's server does (the body's
        forwarding-graph.id, if any, is not used: a warning says so)."""
        gid = _uuid4()
        self.put(gid, doc, tenant)
        return gid

    def put(self, gid, doc, tenant=None):
        """Deploy or update graph ``gid``. Returns True when it was created."""
        validate_id(gid, "$.id (URL)", "graph id")
        self._check_owner(gid, tenant)               # before any record of the attempt
        change = self.changes.begin(gid, "put", owner_of(tenant),
                                    new=not self._exists(gid))
        try:
            graph = parse_graph(doc, gid)
            with self.lock:
                created = self._put(graph, tenant, change)
        except BaseException as e:
            self.changes.finish(change, e)
            raise
        self.changes.finish(change)
        return created

    def _put(self, graph, tenant, change):
        gid = graph.id
        self._settle(gid)
        old = self.graphs.get(gid)
        self._check_tenant(graph, tenant)
        change.new = old is None and gid not in self.failed
        self.changes.running(change)
        # a new graph gets its caller as owner (over any stale record a crash left); root's
        # graphs are nobody's
        new_graph = old is None and gid not in self.failed
        new_owner = new_graph and owner_of(tenant) is not None
        try:
            if new_owner:                  # before the deploy: it scopes internal groups
                self.store.owners.put(gid, {"tenant": tenant.owner})   # (and the events)
            elif new_graph:
                self.store.owners.delete(gid)
            self._publish(gid, "graph", {"id": gid, "event": change.progress(),
                                         "status": "complete" if old else "absent"})
            self._deploy(graph, old, tenant=tenant)
        except Exception as e:
            if new_owner:
                self.store.owners.delete(gid)
            self._publish(gid, "graph", {"id": gid, "event": "failed",
                                         "status": "complete" if old else "absent",
                                         **_error_of(e)})
            raise
        self.failed.pop(gid, None)
        self._publish(gid, "graph", {"id": gid, "event": "updated" if old else "created",
                                     "status": "complete"})
        return old is None

    def delete(self, gid, tenant=None):
        self._must_see(gid, tenant)
        change = self.changes.begin(gid, "delete", owner_of(tenant))
        try:
            with self.lock:
                self._delete(gid, tenant, change)
        except BaseException as e:
            self.changes.finish(change, e)
            raise
        self.changes.finish(change)

    def _delete(self, gid, tenant, change):
        """Called with the node lock; lets go of it while the graph's stop scripts run."""
        self._settle(gid)
        self._must_see(gid, tenant)
        self.changes.running(change)
        self._publish(gid, "graph", {"id": gid, "event": "deleting",
                                     "status": "failed" if gid in self.failed else "complete"})
        d = self.graphs.get(gid)
        insts = list(reversed(list(d.instances.values()))) if d else []
        s = Steps(f"graph {gid}")
        if d is not None:
            # while still steered: an NF's goodbye (an IPsec client's IKE DELETE) gets out;
            # in parallel: the graph waits for its slowest; without the node lock: a hanging
            # script holds up this graph only
            s.add("stop", lambda: self._unlocked(gid, self.compute.stop_all, insts))
            if _forwards(d):
                s.add("control", lambda: self._unforward(gid))

            def unsteer():          # while the kernel frees the namespaces' veths
                self.switch.remove(gid, d.chains)
                faults.point("delete:unsteered")
                endpoints.delete(d.links.values())
            s.add("free", lambda: self.compute.teardown(insts, stop=False, meanwhile=unsteer),
                  point="delete:freed")
            s.add("unlist", lambda: self.graphs.pop(gid, None))
        s.add("forget", lambda: (self.failed.pop(gid, None), self.store.runtime.delete(gid)),
              point="delete:forgotten")
        s.commit("unstore", lambda: self.store.desired.delete(gid))
        s.then("tell", lambda: self._publish(gid, "graph", {"id": gid, "event": "deleted",
                                                            "status": "absent"}))
        s.then("disown", lambda: self.store.owners.delete(gid))
        s.run()

    def _unforward(self, gid):
        try:
            self._forward(drop=gid)
        except sh.CommandError as e:        # its NFs go anyway: the forwards lead nowhere
            log.error("graph %s: could not remove its control ports: %s", gid, e)

    # -- a graph's scripts without the node lock --------------------------------------------------
    def _settle(self, gid):
        """(With the node lock) wait until no script of graph ``gid`` runs unlocked."""
        while gid in self._busy:
            self._quiet.wait()

    def _wait_quiet(self, until):
        """(With the node lock) wait until no graph's scripts run unlocked, or ``until``
        (a ``time.monotonic()``) has passed."""
        while self._busy and (left := until - time.monotonic()) > 0:
            self._quiet.wait(left)

    def _unlocked(self, gid, fn, *args):
        """(With the node lock) run ``fn`` without it, graph ``gid`` marked busy: changes of
        other graphs go on meanwhile; one of this graph, a shutdown and the world check wait
        (or skip it)."""
        self._busy.add(gid)
        self.lock.release()
        try:
            return fn(*args)
        finally:
            self.lock.acquire()
            self._busy.discard(gid)
            self._quiet.notify_all()

    def _deploy(self, graph, old: Deployed | None, store=True, tenant=None):
        """Make ``graph`` run (over ``old``, by difference): plan, then run its steps."""
        self._steps(self._plan(graph, old, tenant), store).run()

    def _plan(self, graph, old: Deployed | None, tenant=None) -> Plan:
        """What a change makes, keeps, hot-plugs and frees: checked and computed, nothing
        touched yet. Every NF that cannot be planned is named in one answer."""
        self.switch.check(graph)
        endpoints.check(graph, kernel_tunnels=not self.switch.tunnel_ports)
        self._check_endpoints(graph, tenant)
        self._check_control(graph, old, tenant)
        prev = old.instances if old else {}
        plan, unplanned = {}, []
        for v in graph.vnfs:
            try:
                inst = self.compute.plan(graph.id, v)
                o = prev.get(v.id)
                if o and o.netns == inst.netns and not inst.shared and _readdressed(o, inst):
                    inst = self.compute.plan(graph.id, v, fixed_ports=True)
            except ComputeError as e:
                unplanned.append(e)
                continue
            plan[v.id] = inst
        if len(unplanned) == 1:
            raise unplanned[0]
        if unplanned:
            first = unplanned[0]
            raise NodeError(f"{len(unplanned)} NFs cannot be deployed: "
                            + "; ".join(e.message for e in unplanned), first.path,
                            first.status, extra={"fault": first.fault, "errors": [
                                {"error": e.message, "path": e.path, "fault": e.fault}
                                for e in unplanned]})
        # Same instance (namespace) as before: kept as is, or with ports hot-plugged.
        kept, hot = {}, {}
        for k, inst in plan.items():
            o = prev.get(k)
            if o is None or (o.netns, o.shared) != (inst.netns, inst.shared):
                continue
            replug = self.compute.replug(o, inst)
            if replug is None:
                kept[k] = o
            elif o.state == states.PAUSED:
                raise NodeError(f"NF '{k}' is paused: resume it before changing its ports",
                                f"{graph.vnf(k).path}.ports", 409)
            else:
                hot[k] = replug                             # (new instance, added, removed)
        links = endpoints.plan(graph, self._scope(graph.id), self.switch.kernel_vlan)
        old_links = {ln.dev: ln for ln in (old.links.values() if old else ())}
        links = {k: old_links.get(ln.dev, ln) for k, ln in links.items()}
        devs = {x.dev for x in links.values()}
        return Plan(
            graph, old, hot,
            fresh=[inst for k, inst in plan.items() if k not in kept and k not in hot],
            gone=[inst for k, inst in prev.items() if k not in kept and k not in hot],
            fresh_links=[ln for ln in links.values() if ln.dev not in old_links],
            gone_links=[ln for dev, ln in old_links.items() if dev not in devs],
            new=Deployed(graph, {k: kept.get(k) or (hot[k][0] if k in hot else plan[k])
                                 for k in plan}, {}, links, backend=self.switch.name))

    def _steps(self, p: Plan, store=True) -> Steps:
        """A planned change as steps, each with its undo. Up to the commit point (the desired
        graph stored) a failure undoes them in reverse: the old rules back first, the
        previous version runs on. After it, what the old version had and the new one lacks
        is freed, and nothing turns the success into an error."""
        gid, old, new, hot = p.graph.id, p.old, p.new, p.hot
        prev = old.instances if old else {}
        runtime, compute, switch = self.store.runtime, self.compute, self.switch
        made, plugged, told = [], [], []
        old_chains = old.chains if old else {}

        def record():           # every object before it exists: old + new together
            runtime.put(gid, {
                "graph": gid, "backend": switch.name, "chains": old_chains,
                "instances": [replace(i, ports=i.ports + hot[k][1]).to_dict() if k in hot
                              else i.to_dict() for k, i in prev.items()]
                + [i.to_dict() for i in p.fresh],
                "links": [ln.to_dict() for ln in
                          list(old.links.values() if old else ()) + p.fresh_links]})

        def unrecord():
            if old:
                runtime.put(gid, old.record())
            else:
                runtime.delete(gid)

        def create():
            for inst in p.fresh:
                made.append(inst)
                (compute.attach if inst.shared else compute.create)(inst)

        def plug():
            for inst, added, _ in hot.values():
                plugged.append(added)
                compute.add_ports(inst, added)

        def unplug():
            for ports in plugged:
                compute.remove_ports(ports)

        def compile_rules():
            new.chains = switch.compile(p.graph, self._devices(p.graph, new))
            rec = runtime.get(gid)
            rec["chains_next"] = new.chains             # recorded before the switch has it
            runtime.put(gid, rec)

        def unsteer():
            if old:
                switch.apply(gid, new.chains, old.chains)
            else:
                switch.remove(gid, new.chains)

        forwarded = []

        def forward():          # unify-control: its addresses exist once the instances do
            if _forwards(new) or (old and _forwards(old)):
                forwarded.append(gid)
                self._forward()

        def unforward():
            if forwarded:
                self._pending.pop(gid, None)        # the running version's forwards back
                self._forward()

        def start():
            for inst in p.fresh:
                (compute.activate if inst.shared else compute.start)(inst)
                faults.point("deploy:started")

        def update():
            for k, (inst, added, removed) in hot.items():
                told.append(k)
                compute.update(inst, added, removed)

        # the NFs' scripts without the node lock (a hanging one holds up this graph only),
        # unless a single instance shared with other graphs is among them
        alone = not any(i.shared for i in p.fresh) and not any(
            i.shared for i, _, _ in hot.values())

        def unlocked(fn):
            return (lambda: self._unlocked(gid, fn)) if alone else fn

        def untell():                                   # the NF learnt of ports that go
            for k in told:
                try:
                    compute.update(prev[k], removed=hot[k][1])
                except ComputeError:
                    pass

        def adopt():
            self.graphs[gid] = new
            self._pending.pop(gid, None)

        def free():
            for _, _, removed in hot.values():
                compute.remove_ports(removed)
            compute.teardown(reversed(p.gone))
            endpoints.delete(p.gone_links)

        s = Steps(f"graph {gid}")
        # what other changes check against while this one's scripts run without the lock
        s.add("pending", lambda: self._pending.__setitem__(gid, new),
              lambda: self._pending.pop(gid, None))
        s.add("record", record, unrecord, partial=False, point="deploy:recorded")
        s.add("devices", lambda: endpoints.create(
            p.fresh_links, kernel_tunnels=not switch.tunnel_ports),
            lambda: endpoints.delete(p.fresh_links))
        s.add("create", create, lambda: compute.teardown(reversed(made)))
        s.add("hot-plug", plug, unplug)
        s.add("compile", compile_rules)
        # steer, then start: a start script can already talk through its graph (a VPN
        # client reaching its server, a DHCP client its server)
        s.add("steer", lambda: switch.apply(gid, old_chains, new.chains), unsteer,
              partial=False)
        s.add("control", forward, unforward, point="deploy:steered")
        s.add("start", unlocked(start))
        s.add("update", unlocked(update) if hot else update, untell)
        if store:
            s.commit("store", lambda: self.store.desired.put(gid, p.graph.doc))
        s.then("adopt", adopt)
        s.then("free", free)
        s.then("rewrite record", lambda: runtime.put(gid, new.record()),
               point="deploy:stored")
        return s

    def _every(self):
        """(gid, Deployed) of every graph that holds kernel objects: the running ones and
        the changes under way (a graph being updated: both its versions)."""
        return [*self.graphs.items(), *self._pending.items()]

    def _check_control(self, graph, old, tenant=None):
        """unify-control host ports: free on this node (no other graph's, no listening
        socket's), and a way to forward them (nft)."""
        held = {h: gid for gid, d in self._every() if gid != graph.id
                for h, _, _, _ in _forwards(d)}
        mine = {h for h, _, _, _ in _forwards(old)} if old else set()
        for v in graph.vnfs:
            for c in v.control:
                path = f"{c.path}.host-tcp-port"
                if not sh.have("nft"):
                    raise NodeError("unify-control needs nftables (nft) on this node", path, 422)
                if c.host_port in held:
                    raise NodeError(f"host TCP port {c.host_port} is already forwarded for "
                                    f"{self._named(held[c.host_port], tenant)}", path, 409)
                if c.host_port not in mine and control.listening(c.host_port):
                    raise NodeError(f"host TCP port {c.host_port} is in use on this node "
                                    "(a socket listens on it)", path, 409)

    def _forward(self, drop=None):
        """Rewrite the node's unify-control forwards: every running graph's but ``drop``'s
        (a graph being deleted), a change under way's new version in place of its running
        one."""
        graphs = {gid: d for gid, d in {**self.graphs, **self._pending}.items() if gid != drop}
        control.apply([(*f, self._control_addresses(gid, f[0]))
                       for gid, d in graphs.items() for f in _forwards(d)])

    def _control_addresses(self, gid, port):
        """Where graph ``gid``'s unify-control ``port`` opens: None for every local address
        (root's and an admin tenant's graphs), else the addresses its owner is granted for
        that port now (an owner no longer configured: nowhere)."""
        owner = self._owner(gid)
        if owner is None:
            return None
        t = self.tenants.by_name.get(owner)
        if t is not None and t.admin:
            return None
        return t.control_addresses(port) if t else []

    def _check_endpoints(self, graph, tenant=None):
        """Every end-point's interface exists, is not unlite's own, and its traffic belongs
        to no other end-point: an ``interface`` end-point takes the whole interface, a
        ``vlan`` end-point one tag of it (409 when another graph holds it). Interfaces are
        compared by ifindex: one interface has one index whatever name a graph gives it (an
        altname, ``ip link property add``). A veth whose other end is unlite's (an NF's port
        the NF moved into the node's namespace) is that NF's, not an end-point (409)."""
        ours = {p.host: gid for gid, d in self._every() for i in d.instances.values()
                for p in i.ports}
        known = {}

        def index(name):                # another graph's interface: its index, or its name
            if name not in known:       # while it is gone (a degraded graph)
                info = sh.link(name)
                known[name] = info["index"] if info else name
            return known[name]
        held = [(index(ep.ifname), ep.params.get("vlan-id"), gid, ep.id)
                for gid, d in self._every() if gid != graph.id
                for ep in d.graph.endpoints if ep.ifname]
        mine = []
        for ep in graph.endpoints:
            name, vid = ep.ifname, ep.params.get("vlan-id")
            if name is None:
                continue
            path = f"{ep.path}.{ep.type}.if-name"
            if name in ours or names.is_ours(name):
                info = None
            else:
                info = sh.link(name)
                if info is None:
                    raise NodeError(f"end-point '{ep.id}': interface '{name}' does not "
                                    "exist on this node", path, 422)
            if info is None or info["name"] in ours or names.is_ours(info["name"]):
                raise NodeError(f"interface '{name}' of end-point '{ep.id}' belongs to "
                                "unlite itself and cannot be an end-point", path, 422)
            peer = _ifname(info["peer"]) if info["peer"] else None
            if peer and (peer in ours or names.is_ours(peer)):
                whose = self._named(ours[peer], tenant) if peer in ours else "a graph"
                raise NodeError(f"end-point '{ep.id}': interface '{name}' is the port of an "
                                f"NF of {whose}, moved into the node's namespace (its veth "
                                f"peer is {peer})", path, 409)
            what = f"interface '{name}'" + (f" VLAN {vid}" if vid is not None else "")
            if name != info["name"]:
                what += f" ('{info['name']}')"
            for other, ovid, gid, eid in held + mine:
                if other == info["index"] and (vid is None or ovid is None or vid == ovid):
                    if gid == graph.id:
                        raise NodeError(f"end-points '{eid}' and '{ep.id}' both use {what}",
                                        path, 422)
                    raise NodeError(f"end-point '{ep.id}': {what} is already used by "
                                    f"{self._named(gid, tenant)}", path, 409)
            mine.append((info["index"], vid, graph.id, ep.id))

    @staticmethod
    def _devices(graph, d: Deployed):
        """Port reference → where it meets the switch on this node."""
        devs = {f"endpoint:{ep.id}": Attach(d.links[ep.id].dev) if ep.id in d.links
                else Attach(ep.ifname, ep.params.get("vlan-id")) for ep in graph.endpoints}
        for nf, inst in d.instances.items():
            for p in inst.ports:
                devs[f"vnf:{nf}:{p.id}"] = Attach(p.host)
        return devs

    # -- start and stop of the daemon ------------------------------------------------------------
    def _put_aside(self, folder, gid, what, err):
        """A state file that cannot be used: renamed (kept for the operator), logged,
        listed in the capabilities; the rest of the node boots."""
        bad = folder.set_aside(gid)
        self.set_aside.append(str(bad))
        log.error("%s of graph %s is unreadable (%s): set aside as %s", what, gid, err, bad)
        return bad

    def restore(self):
        """At start: adopt what a previous run left running, repair or remove the rest,
        deploy what is stored but not running. An unreadable file is set aside
        (``<id>.json.bad``), never a reason not to start.

        A graph is adopted — taken over untouched, no NF restarted, no packet lost — when
        its runtime record matches the stored graph (same NF instances and ports, same
        end-point devices, the same rules compiled) and the kernel (``_adoptable``). Any
        other record is removed (what it names, nothing else) and its graph deployed anew.
        """
        t0 = time.monotonic()
        self.switch.setup()
        desired = set(self.store.desired.keys())
        adopted = set()
        self._snapshot = self.switch.snapshot()         # the datapath, read once
        records, repairs = {}, {}
        resolver = getattr(self.compute, "resolver", None)
        with resolver.once_each() if resolver else contextlib.nullcontext():
            self._restore_records(desired, adopted, records, repairs)
        self._snapshot = None
        self._restore_rest(desired, adopted, repairs, t0)

    def _restore_records(self, desired, adopted, records, repairs):
        """Adopt each runtime record that matches; keep what still runs well of the others
        that can be repaired (``repairs``: graph id → its salvaged old version); remove the
        rest (``restore``)."""
        for gid in self.store.runtime.keys():
            try:
                rec = self.store.runtime.get(gid) or {}
                insts = [Instance.from_dict(d) for d in rec.get("instances", [])]
                links = [EpLink(**ln) for ln in rec.get("links", [])]
            except (CorruptFile, TypeError, KeyError, ValueError, AttributeError) as e:
                self._put_aside(self.store.runtime, gid, "the runtime record", e)
                continue
            records[gid] = rec, insts, links
        self.compute.load_shared([i for _, insts, _ in records.values() for i in insts
                                  if i.shared])
        for gid, (rec, insts, links) in records.items():
            why = self._adopt(gid, rec, insts, links) if gid in desired else \
                "its graph is no longer stored"
            if why is None:
                adopted.add(gid)
                log.info("graph %s: adopted as it runs (%d NFs)", gid, len(insts))
                continue
            old = self._salvage(gid, rec, insts, links) if gid in desired else None
            if old is not None:
                repairs[gid] = old
                log.info("graph %s: not adopted (%s): repaired by difference (%d of %d NFs "
                         "kept)", gid, why, len(old.instances), len(insts))
                continue
            log.info("graph %s: not adopted (%s): removed, deployed anew", gid, why)
            self._remove_record(gid, rec, insts, links)

    def _remove_record(self, gid, rec, insts, links):
        """Remove what a runtime record names (and nothing else), then the record."""
        switch = self.switch if rec.get("backend", self.switch.name) == self.switch.name \
            else _other_backend(rec["backend"])
        if switch is not None:
            switch.remove(gid, rec.get("chains"))
            if rec.get("chains_next"):
                switch.remove(gid, rec["chains_next"])
        self.compute.teardown(insts)
        endpoints.delete(links)
        self.store.runtime.delete(gid)

    def _salvage(self, gid, rec, insts, links) -> Deployed | None:
        """A record that cannot be adopted whole, as the old version of a change that repairs
        it (``_repair``): the NFs that still run as recorded are kept (their processes, their
        state: a firewall's connections, an IPsec client's SAs), the broken ones freed first
        and made again by the plan. None (touching nothing) when the record is past such
        repair: a change was under way, another backend's rules, a single instance shared
        with other graphs, a stored graph that cannot be read."""
        if rec.get("chains_next") is not None or \
                rec.get("backend", self.switch.name) != self.switch.name:
            return None
        if any(i.shared for i in insts) or len({i.nf for i in insts}) != len(insts):
            return None
        try:
            graph = parse_graph(self.store.desired.get(gid), gid)
        except (CorruptFile, ModelError):
            return None
        broken = [i for i in insts if i.state not in states.SETTLED
                  or self.compute.problem(i)]
        gone = [ln for ln in links if any(
            dev and not sh.link_exists(dev) for dev in (ln.dev, ln.peer, ln.bridge))
            and not (ln.kind == "gre-tunnel" and self.switch.tunnel_ports)]
        chains = rec.get("chains") or {}
        # rules that name a device freed here (or gone) would be stale once it is made again
        # (a new ifindex, a new OVS port number): removed, and the graph's rules put anew
        if broken or gone or self.switch.verify(gid, chains, self._snapshot):
            self.switch.remove(gid, chains)
            chains = {}
        self.compute.teardown(broken)
        endpoints.delete(gone)
        well = [i for i in insts if i not in broken]
        for i in well:
            self.compute.adopt(i)
        old = Deployed(graph, {i.nf: i for i in well}, chains,
                       {ln.endpoint: ln for ln in links if ln not in gone},
                       backend=self.switch.name)
        self.store.runtime.put(gid, old.record())
        return old

    def _repair(self, gid, doc, old: Deployed):
        """Make a stored graph run again over what of it still runs (``_salvage``), by the
        same steps as an update; if that fails, what is left is removed and the graph
        deployed anew (or failed, saying why)."""
        try:
            with self.lock:
                self._deploy(parse_graph(doc, gid), old, store=False)
        except (UnliteError, sh.CommandError) as e:
            log.error("graph %s could not be repaired (%s): removed, deployed anew", gid, e)
            self._remove_record(gid, old.record(), list(old.instances.values()),
                                list(old.links.values()))
            return self._redeploy(gid, doc)
        self.failed.pop(gid, None)
        log.info("graph %s: repaired", gid)
        return True

    def _restore_rest(self, desired, adopted, repairs, t0):
        """Single-instance NFs no graph uses, owner records, the graphs not adopted."""
        self.compute.clean_shared()
        for gid in self.store.owners.keys():
            try:
                self.store.owners.get(gid)
            except CorruptFile as e:
                self._put_aside(self.store.owners, gid, "the owner record", e)
                continue
            if gid not in desired:                 # left by a crash during a first deploy
                self.store.owners.delete(gid)
        for gid in sorted(desired - adopted):
            try:
                doc = self.store.desired.get(gid)
            except CorruptFile as e:
                bad = self._put_aside(self.store.desired, gid, "the stored graph", e)
                self._fail(gid, f"its stored graph could not be read ({e.why}): set aside as "
                                f"{bad}")
                continue
            if gid in repairs:
                self._repair(gid, doc, repairs[gid])
            else:
                self._redeploy(gid, doc)
        if any(_forwards(d) for d in self.graphs.values()):
            self._forward()                 # the adopted graphs' too, in one transaction
        else:
            control.remove()
        log.info("restored %d graphs in %.1f ms: %d adopted, %d repaired or deployed, "
                 "%d failed", len(desired), (time.monotonic() - t0) * 1e3, len(adopted),
                 len(self.graphs) - len(adopted), len(self.failed))

    def _adopt(self, gid, rec, insts, links):
        """Take over graph ``gid`` as a previous run left it; None when done, else why not
        (nothing is touched then)."""
        if rec.get("chains_next") is not None:
            return "a change was under way when the daemon stopped"
        if rec.get("backend", self.switch.name) != self.switch.name:
            return f"its rules are on the '{rec['backend']}' backend"
        try:
            graph = parse_graph(self.store.desired.get(gid), gid)
        except (CorruptFile, ModelError) as e:
            return f"its stored graph cannot be used: {e}"
        by_nf = {i.nf: i for i in insts}
        if set(by_nf) != {v.id for v in graph.vnfs} or len(by_nf) != len(insts):
            return "its NF instances are not the stored graph's"
        for v in graph.vnfs:
            i = by_nf[v.id]
            ports = {q.id: q.host for q in i.ports}
            try:                    # as planned, or planned with its ports fixed (readdressed)
                if not any(p.netns == i.netns and {q.id: q.host for q in p.ports} == ports
                           for p in (self.compute.plan(gid, v, fixed)
                                     for fixed in (False, True))):
                    return f"NF '{v.id}' is not what the stored graph asks for now"
            except ComputeError as e:
                return f"NF '{v.id}' cannot be planned: {e.message}"
            if i.state not in states.SETTLED:
                return f"NF '{v.id}' was {i.state}"
            why = self.compute.shared_problem(i) if i.shared else self.compute.problem(i)
            if why:
                return f"NF '{v.id}': {why}"
        planned = endpoints.plan(graph, self._scope(gid), self.switch.kernel_vlan)
        if sorted(ln.dev for ln in planned.values()) != sorted(ln.dev for ln in links):
            return "its end-point devices are not the stored graph's"
        for ln in links:
            for dev in (ln.dev, ln.peer, ln.bridge):
                if dev and not sh.link_exists(dev) and not (ln.kind == "gre-tunnel" and
                                                            self.switch.tunnel_ports):
                    return f"end-point device {dev} is gone"
        try:
            self._check_endpoints(graph)
        except NodeError as e:
            return e.message
        d = Deployed(graph, {v.id: by_nf[v.id] for v in graph.vnfs}, rec.get("chains") or {},
                     {ln.endpoint: ln for ln in links}, backend=self.switch.name)
        try:
            chains = self.switch.compile(graph, self._devices(graph, d))
        except SteeringError as e:
            return f"its rules cannot be compiled now: {e.message}"
        if chains != d.chains:
            return "its recorded rules are not the stored graph's"
        why = self.switch.verify(gid, chains, self._snapshot)
        if why:
            return why
        for i in d.instances.values():
            self.compute.adopt(i)
        self.graphs[gid] = d
        return None

    def _redeploy(self, gid, doc):
        """Deploy a stored graph at start (or when what it waits for appears)."""
        try:
            graph = parse_graph(doc, gid)
            missing = [(ep, ep.ifname) for ep in graph.endpoints
                       if ep.ifname and not sh.link_exists(ep.ifname)]
            if missing:                 # pppoe-wan, wlan0, a USB modem: not there yet
                self._fail(gid, "; ".join(f"end-point '{ep.id}': interface '{n}' does not "
                                          "exist (yet): deployed when it appears"
                                          for ep, n in missing),
                           waiting=sorted({n for _, n in missing}))
                return False
            with self.lock:
                self._deploy(graph, None, store=False)
        except (UnliteError, sh.CommandError) as e:
            log.error("graph %s could not be restored: %s", gid, e)
            self._fail(gid, str(e))
            return False
        self.failed.pop(gid, None)
        return True

    def _fail(self, gid, err, waiting=None):
        self.failed[gid] = {"error": err, **({"waiting-for": waiting} if waiting else {})}
        self._publish(gid, "graph", {"id": gid, "event": "failed", "status": "failed",
                                     "error": err})

    # -- the world: is what runs what the records say? ---------------------------------------
    def check_world(self, gid=None, blocking=False):
        """Compare the running graphs (or one) with the kernel: an NF whose namespace, port
        or process is gone (or stopped) becomes ``Failed`` (fault ``FailureWhileActive``,
        the reason in ``fault-detail``, an ``nf`` event) and its graph ``degraded``; a graph
        whose end-point interface is gone is ``degraded`` too, and gets its rules back when
        the interface returns. A stored graph waiting for an interface is deployed once it
        exists. Skipped (returns False) while a change holds the node lock, unless
        ``blocking``: a read never waits for a deploy."""
        if not self.lock.acquire(blocking=blocking):
            return False
        try:
            for g in [gid] if gid else list(self.graphs):
                d = self.graphs.get(g)
                if d is not None and g not in self._busy:    # its own change looks after it
                    self._check_graph(g, d)
            waiting = [g for g, f in self.failed.items() if f.get("waiting-for") and
                       (gid is None or g == gid) and all(sh.link_exists(n)
                                                         for n in f["waiting-for"])]
        finally:
            self.lock.release()
        for g in waiting:
            try:
                doc = self.store.desired.get(g)
            except CorruptFile as e:
                self._fail(g, str(e))
                continue
            if doc is not None and self._redeploy(g, doc):
                log.info("graph %s: its interfaces appeared: deployed", g)
                self._publish(g, "graph", {"id": g, "event": "created", "status": "complete",
                                           "reason": "its end-point interfaces appeared"})
        return True

    def _check_graph(self, gid, d):
        problems, changed = [], False
        for inst in d.instances.values():
            if inst.shared:
                continue
            self.compute.cap_log(inst)      # a previous run handed its output to a cat
            if inst.state in states.SETTLED:
                why = self.compute.problem(inst)
                if why:
                    log.error("graph %s: NF %s failed: %s", gid, inst.nf, why)
                    states.move(inst, "fail", "FailureWhileActive", why)
                    changed = True
                    self._publish(gid, "nf", {"graph": gid, "nf": inst.nf, "state": inst.state,
                                              "fault": inst.fault, "detail": why})
            if inst.state == states.FAILED:
                problems.append(f"NF '{inst.nf}': {inst.fault_detail or inst.fault}")
        gone = [ep for ep in d.graph.endpoints if ep.ifname and not sh.link_exists(ep.ifname)]
        problems += [f"end-point '{ep.id}': interface '{ep.ifname}' is gone" for ep in gone]
        if not gone and any(ep.ifname for ep in d.graph.endpoints) and \
                any(p.startswith("end-point") for p in d.problems):
            self._resteer(gid, d)            # back: its rules died with the old device
        state = "degraded" if problems else "complete"
        if state != d.state or problems != d.problems:
            d.state, d.problems = state, problems
            self._publish(gid, "graph", {"id": gid, "event": state, "status": state,
                                         "problems": problems})
        if changed:
            try:
                self.store.runtime.put(gid, d.record())
            except StoreError as e:
                log.error("graph %s: %s", gid, e)

    def _resteer(self, gid, d):
        """Put a graph's rules back: an end-point interface was made again, and the rules
        that sent to the old one (by ifindex) or hooked it are dead, whatever they show."""
        log.info("graph %s: its end-point interfaces are back: re-applying its rules", gid)
        try:            # a VLAN device went with its parent interface: made again on it
            endpoints.create([ln for ln in d.links.values()
                              if ln.kind == "vlan" and not sh.link_exists(ln.dev)])
            self.switch.remove(gid, d.chains)
            self.switch.apply(gid, {}, d.chains)
        except (SteeringError, sh.CommandError) as e:
            log.error("graph %s: could not re-apply its rules: %s", gid, e)

    STOP_DEADLINE = 20.0    # s for every stop script at shutdown (procd's term_timeout: 30)

    def shutdown(self):
        """Stop every NF and remove every kernel object (the desired graphs stay stored for
        the next start). Stop scripts run in parallel, all within ``STOP_DEADLINE`` — those
        of a graph being deleted meanwhile included (its delete ends it)."""
        t0 = time.monotonic()
        with self.lock:
            self.compute.stop_all([i for g, d in self.graphs.items() if g not in self._busy
                                   for i in d.instances.values()], self.STOP_DEADLINE)
            self._wait_quiet(t0 + self.STOP_DEADLINE)
            for gid, d in list(self.graphs.items()):
                if gid in self._busy:           # still stopping past the deadline: its own
                    continue                    # delete frees it
                self.switch.remove(gid, d.chains)
                self.compute.teardown(reversed(list(d.instances.values())), stop=False)
                endpoints.delete(d.links.values())
                self.store.runtime.delete(gid)
                del self.graphs[gid]
            control.remove()
            self.switch.shutdown()

    def detach(self):
        """Leave everything running for the next start to adopt: wait for a change under way
        to end (its records are then complete) and touch nothing."""
        with self.lock:
            self._wait_quiet(time.monotonic() + self.STOP_DEADLINE)
            sh.hand_over_outputs()      # NF daemons printing into our pipes: to a cat each
            log.info("leaving %d graphs running for the next start", len(self.graphs))


def _other_backend(name):
    """The backend a record's rules are on, when it is not this run's (None: unavailable)."""
    try:
        return network.get(name)
    except (SteeringError, ValueError, KeyError) as e:
        log.error("cannot remove rules of backend %s: %s", name, e)
        return None


def _error_of(e):
    """An event's error fields: unlite's own error says where, any other just what."""
    if isinstance(e, UnliteError):
        return {"error": e.message, "path": e.path}
    return {"error": str(e), "path": None}


def _uuid4():
    """A random UUID in its text form, as the UN names POSTed graphs (the uuid module is
    not in OpenWrt's python3-light)."""
    b = bytearray(os.urandom(16))
    b[6], b[8] = (b[6] & 0x0F) | 0x40, (b[8] & 0x3F) | 0x80      # version 4, RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _forwards(d: Deployed):
    """unify-control forwards of a deployed graph: [(host port, NF address, NF port, dev)]."""
    return [(h, i.ctl["addr"].split("/")[0], v, i.ctl["host"])
            for i in d.instances.values() if i.ctl for h, v in i.control]


def _readdressed(old, planned):
    """Does a port both instances have change its MAC or address? (then the NF is made
    anew: its scripts configured the old addresses)"""
    return any((q := planned.port(p.id)) and (q.mac, q.ip) != (p.mac, p.ip) for p in old.ports)


def _meminfo():
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def _ifname(index):
    """The primary name of interface ``index`` here, or None."""
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None
