"""What the node offers (the UN's capabilities): functional (the NNFs that can run here),
infrastructure (arch, kernel, steering backend and what it can do) and resources.
"""
from __future__ import annotations

import logging
import os

from ..compute.package import missing_dependencies
from .records import _meminfo

log = logging.getLogger("unlite.node")


class Capabilities:
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
