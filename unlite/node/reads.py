"""The reads: ids, a graph's document, its status and the one-line summaries. No lock: a read
never waits for a change (a status read runs the world check only when the lock is free).
"""
from __future__ import annotations

import logging

from ..store import CorruptFile
from .records import NodeError

log = logging.getLogger("unlite.node")


class Reads:
    def ids(self, tenant=None):
        return sorted(g for g in set(self.graphs) | set(self.failed)
                      if self._visible(g, tenant))

    def sees(self, gid, tenant=None):
        """May ``tenant`` see graph ``gid`` (running, failed or being deployed)?"""
        return self._visible(gid, tenant)

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
