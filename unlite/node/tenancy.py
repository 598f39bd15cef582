"""Tenancy: who owns a graph, who may see and change it, and what an error may tell.

Root (the unix socket's caller) and an admin tenant see everything. Another tenant sees and
changes only its own graphs, learns no other's id or owner from an answer (``_named``: "another
graph"), may not attach the node's own stack, uses only the interfaces and unify-control ports
its UCI section grants. A graph's owner is kept in memory and on flash beside the graph
(``store.Owners``).
"""
from __future__ import annotations

from .records import NodeError


class Tenancy:
    def _owner(self, gid):
        """The owning tenant's name; None for root's graphs (``store.Owners``: in memory)."""
        return self.store.owners.get(gid)

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
