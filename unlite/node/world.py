"""The world check: is what runs what the records say? NF liveness, end-point interfaces gone and
back, stored graphs waiting for an interface.
"""
from __future__ import annotations

import logging

from .. import sh
from ..compute import states
from ..network import SteeringError, endpoints
from ..store import CorruptFile, StoreError

log = logging.getLogger("unlite.node")


class World:
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
