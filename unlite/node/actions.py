"""One NF of a running graph (paper Table II): stop, start, pause, resume; its status line.
"""
from __future__ import annotations

import logging

from ..compute import states
from .records import NodeError

log = logging.getLogger("unlite.node")


class NfActions:
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
