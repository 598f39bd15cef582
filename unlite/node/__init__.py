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

One class, ``Node``, made of one part per job (each a mixin in its own module, sharing the
state ``__init__`` sets up):

- ``transactions``  put, delete; ``_plan`` → ``_steps`` → ``Steps.run``; the node lock and
                    the scripts run without it; end-point and control-port checks
- ``restart``       ``restore`` (adopt, repair by difference, deploy), ``shutdown``, ``detach``
- ``world``         ``check_world``: the running graphs against the kernel
- ``reads``         ids, get, status, summaries (no lock)
- ``actions``       one NF's stop, start, pause, resume
- ``tenancy``       ownership and what a tenant may see, change and be told
- ``capabilities``  what the node offers
- ``records``       ``Deployed``, ``Plan``, ``NodeError`` and the helpers the parts share
"""
from __future__ import annotations

import threading
from pathlib import Path

from .. import network
from ..changes import Changes, Runner
from ..compute.native import NativeDriver
from ..compute.package import Repository
from ..events import Events
from ..resolver import DEFAULT_PREFER, Resolver
from ..store import Store
from ..tenants import LEGACY_ROOT, Tenants
from .actions import NfActions
from .capabilities import Capabilities
from .reads import Reads
from .records import Deployed, NodeError, Plan
from .restart import Restart
from .tenancy import Tenancy
from .transactions import Transactions
from .world import World

__all__ = ["Deployed", "Node", "NodeError", "Plan"]


class Node(Tenancy, Reads, Capabilities, NfActions, Transactions, Restart, World):
    def __init__(self, state_dir, run_dir, nnf_dir, backend="nft", prefer=None,
                 tenants=None, **backend_options):
        self.store = Store(state_dir, run_dir, legacy_owner=LEGACY_ROOT)
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
