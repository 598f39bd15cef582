"""The node's records of a graph: what runs (``Deployed``), what a change plans (``Plan``),
the node's own error (``NodeError``) and small helpers of the node's modules.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from .. import network
from ..compute.native import Instance
from ..model import Graph
from ..network import SteeringError
from ..network.endpoints import EpLink
from ..errors import UnliteError

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


def _forwards(d: Deployed):
    """unify-control forwards of a deployed graph: [(host port, NF address, NF port, dev)]."""
    return [(h, i.ctl["addr"].split("/")[0], v, i.ctl["host"])
            for i in d.instances.values() if i.ctl for h, v in i.control]


def _readdressed(old, planned):
    """Does a port both instances have change its MAC or address? (then the NF is made
    anew: its scripts configured the old addresses)"""
    return any((q := planned.port(p.id)) and (q.mac, q.ip) != (p.mac, p.ip) for p in old.ports)


def _uuid4():
    """A random UUID in its text form, as the UN names POSTed graphs (the uuid module is
    not in OpenWrt's python3-light)."""
    b = bytearray(os.urandom(16))
    b[6], b[8] = (b[6] & 0x0F) | 0x40, (b[8] & 0x3F) | 0x80      # version 4, RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _error_of(e):
    """An event's error fields: unlite's own error says where, any other just what."""
    if isinstance(e, UnliteError):
        return {"error": e.message, "path": e.path}
    return {"error": str(e), "path": None}


def _ifname(index):
    """The primary name of interface ``index`` here, or None."""
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


def _other_backend(name):
    """The backend a record's rules are on, when it is not this run's (None: unavailable)."""
    try:
        return network.get(name)
    except (SteeringError, ValueError, KeyError) as e:
        log.error("cannot remove rules of backend %s: %s", name, e)
        return None


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
