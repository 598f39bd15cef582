"""Changes in flight: what each graph's last change is doing, and changes that outlive their
caller's patience.

A deploy can take longer than its caller waits (LuCI gives up after 20 s, rpcd kills an exec
plugin after its ``-t``, the ``ubus`` CLI after 30 s). So a change can run in the background:

- ``Change``        one graph's last change: op (put | delete | nf), state (queued → running →
                    done | failed), the error and its JSON path; the node keeps one per graph
                    (``Node.changes``) and shows it in status, the list and the events;
- ``Runner.run(fn, wait)``  runs ``fn`` on a thread of its own and waits at most ``wait``
                    seconds: ``(True, result)`` when it finished (its exception re-raised),
                    ``(False, None)`` when it goes on — the caller answers "deploying" and the
                    outcome reaches ``status``/``list`` and the events. At most ``limit``
                    changes run or wait at once; one more is refused with ``Busy``, so one
                    client cannot pile up threads.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from .errors import UnliteError

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
log = logging.getLogger("unlite.changes")
KEEP = 256                  # change records kept (the oldest finished ones go first)


@dataclass
class Change:
    gid: str
    op: str                                  # put | delete | nf
    tenant: str | None = None
    new: bool = False                        # a put of a graph that is not deployed yet
    state: str = QUEUED
    error: str | None = None
    path: str | None = None
    status: int | None = None                # the HTTP status of a failure
    started: float = 0.0
    finished: float | None = None

    @property
    def pending(self):
        return self.state in (QUEUED, RUNNING)

    def progress(self):
        """What a list shows while it runs: deploying, updating, deleting, changing."""
        return {"put": "deploying" if self.new else "updating", "delete": "deleting"}.get(
            self.op, "changing")

    def to_dict(self):
        out = {"op": self.op, "state": self.state, "started": round(self.started, 3)}
        if self.finished is not None:
            out["finished"] = round(self.finished, 3)
        if self.error is not None:
            out.update(error=self.error, path=self.path, status=self.status)
        return out


class Changes:
    """The last change of each graph (bounded: the oldest finished records are dropped)."""

    def __init__(self, keep=KEEP):
        self.keep = keep
        self._by_gid: OrderedDict[str, Change] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, gid, op, tenant=None, new=False):
        c = Change(gid, op, tenant, new, started=time.time())
        with self._lock:
            self._by_gid.pop(gid, None)
            self._by_gid[gid] = c
            while len(self._by_gid) > self.keep:
                old = next((k for k, v in self._by_gid.items() if not v.pending), None)
                if old is None:
                    break
                del self._by_gid[old]
        return c

    def get(self, gid) -> Change | None:
        return self._by_gid.get(gid)

    def under_way(self, gid, op):
        """(status word, change record or None) for the answer to a call whose change ``op``
        (put, delete, nf) of graph ``gid`` goes on after the call: its record if it is the
        one running (an NF action has none)."""
        c = self._by_gid.get(gid)
        if c and c.pending and c.op == op:
            return c.progress(), c.to_dict()
        return "changing", None

    def pending_new(self):
        """Graphs whose first deploy is queued or running (not in the node's graphs yet)."""
        return [c for c in list(self._by_gid.values()) if c.pending and c.new]

    @staticmethod
    def running(c: Change):
        c.state = RUNNING

    @staticmethod
    def finish(c: Change, error=None):
        """Done, or failed with ``error`` (an exception with message/path/status or not)."""
        c.finished = time.time()
        if error is None:
            c.state = DONE
            return
        c.state = FAILED
        c.error = getattr(error, "message", None) or str(error) or type(error).__name__
        c.path = getattr(error, "path", None)
        c.status = getattr(error, "status", None) or 500


class Busy(UnliteError):
    """More changes in flight than the runner takes."""
    status = 503

    def __init__(self, limit):
        super().__init__(f"{limit} changes are already under way on this node: try again "
                         "when one has finished")


class Runner:
    def __init__(self, limit=8):
        self.limit = limit
        self._slots = threading.Semaphore(limit)

    def run(self, fn, wait):
        """(True, fn's result) if ``fn`` finishes within ``wait`` seconds (its exception is
        raised here), else (False, None) while it goes on in the background."""
        if not self._slots.acquire(blocking=False):
            raise Busy(self.limit)
        done = threading.Event()
        out = {}
        lock = threading.Lock()

        def job():
            try:
                out["result"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the waiter, or logged
                out["error"] = e
            finally:
                self._slots.release()
                with lock:
                    done.set()
                    alone = out.get("left")
            if alone and "error" in out:       # nobody waits: the change record tells it
                log.warning("a change finished in the background failed: %s", out["error"])

        threading.Thread(target=job, name="change", daemon=True).start()
        done.wait(wait)
        with lock:
            if not done.is_set():
                out["left"] = True
                return False, None
        if "error" in out:
            raise out["error"]
        return True, out.get("result")
