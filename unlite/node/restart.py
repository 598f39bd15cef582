"""The daemon's start and stop: adopt what runs, repair what differs, deploy the rest; stop
everything (``shutdown``) or leave it running for the next start (``detach``).
"""
from __future__ import annotations

import contextlib
import logging
import time

from .. import sh
from ..compute import states
from ..compute.native import ComputeError, Instance
from ..model import ModelError, parse_graph
from ..network import SteeringError, control, endpoints
from ..network.endpoints import EpLink
from ..store import CorruptFile
from ..errors import UnliteError
from .records import NodeError, Deployed, _forwards, _other_backend

log = logging.getLogger("unlite.node")


class Restart:
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

    def _gone_device(self, ln):
        """The first device of end-point link ``ln`` the kernel no longer has, or None (an
        OVS tunnel port is the switch's, not a device)."""
        if ln.kind == "gre-tunnel" and self.switch.tunnel_ports:
            return None
        return next((d for d in (ln.dev, ln.peer, ln.bridge) if d and not sh.link_exists(d)),
                    None)

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
        gone = [ln for ln in links if self._gone_device(ln)]
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
        owners = self.store.owners
        for gid, e in sorted(owners.unreadable.items()):    # the graph is root's from now on
            self._put_aside(owners, gid, "the owner record", e)
        for gid in owners.keys():
            if gid not in desired:                 # left by a crash during a first deploy
                owners.delete(gid)
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
            dev = self._gone_device(ln)
            if dev:
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
