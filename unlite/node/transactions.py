"""Graph changes as transactions: put (create or update by difference) and delete.

``_plan`` computes what a change makes, keeps, hot-plugs and frees, touching nothing;
``_steps`` turns the plan into a ``Steps`` queue (unlite/steps.py), each step with its undo,
the commit point (the desired graph stored) and the work after it. NF scripts run without the
node lock (``_unlocked``), the graph busy and its new version pending (``_pending``); the
checks of end-points, veths and unify-control ports see the pending ones as if they ran.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace

from .. import faults, names, sh
from ..compute import states
from ..compute.native import ComputeError
from ..model import parse_graph, validate_id
from ..tenants import owner_of
from ..network import Attach, control, endpoints
from ..steps import Steps
from .records import NodeError, Deployed, Plan, _forwards, _readdressed, _uuid4, _error_of, _ifname

log = logging.getLogger("unlite.node")


class Transactions:
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
                self.store.owners.set(gid, tenant.owner)    # (and the events)
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
        resolver = self.compute.resolver
        with resolver.once_each() if resolver else contextlib.nullcontext():
            for v in graph.vnfs:    # each function resolved, its dependencies probed, once
                try:
                    inst = self.compute.plan(graph.id, v)
                    o = prev.get(v.id)
                    if o and o.netns == inst.netns and not inst.shared and \
                            _readdressed(o, inst):
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

        # The runtime record is written three times, each before what it must let a crash
        # undo: every object before it exists (old + new together), the new rules before
        # the switch has them, and the new version alone once the old one is freed.
        # The second has the instances as made (control slot, cgroups).
        def record(**more):
            runtime.put(gid, {
                "graph": gid, "backend": switch.name, "chains": old_chains,
                "instances": [replace(i, ports=i.ports + hot[k][1]).to_dict() if k in hot
                              else i.to_dict() for k, i in prev.items()]
                + [i.to_dict() for i in p.fresh],
                "links": [ln.to_dict() for ln in
                          list(old.links.values() if old else ()) + p.fresh_links], **more})

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
            record(chains_next=new.chains)              # before the switch has them

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
