"""Graph and NF state changes, published so LuCI and firmware need not poll.

- ``Events.publish(kind, data)`` hands an event to every subscriber: each REST stream
  (``GET /events``, server-sent events) and, on OpenWrt, the daemon's ubus connection, which
  sends it as ubus event ``unlite.<kind>`` (``ubus listen unlite.graph``; no process per
  event: ``unlite/ubus/native.py``).
- Publishing never blocks a deploy: each subscriber has a bounded queue (a client that stops
  reading loses the oldest events and gets a ``lost`` count).

Kinds: ``graph`` {id, event: deploying|updating|deleting (a change starts) then
created|updated|deleted|failed, status, error?, path?}, ``nf`` {graph, nf, state, fault?}.
"""
from __future__ import annotations

import json
import queue
import threading

QUEUE = 256


class Subscription:
    def __init__(self):
        self.q = queue.Queue(QUEUE)
        self.lost = 0

    def offer(self, item):
        while True:
            try:
                self.q.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.q.get_nowait()
                    self.lost += 1
                except queue.Empty:
                    pass

    def get(self, timeout):
        """(kind, data) or None after ``timeout`` seconds without an event."""
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None


class Events:
    def __init__(self):
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = 0

    def subscribe(self):
        s = Subscription()
        with self._lock:
            self._subs.append(s)
        return s

    def unsubscribe(self, s):
        with self._lock:
            if s in self._subs:
                self._subs.remove(s)

    def publish(self, kind, data):
        with self._lock:
            self._seq += 1
            item = (self._seq, kind, data)
            for s in self._subs:
                s.offer(item)


def sse(sub, heartbeat=15.0, allow=None, gone=None, poll=1.0):
    """The server-sent-event lines of a subscription (a generator for the HTTP response);
    ``allow(data)`` filters what this listener may see (a tenant: its own graphs);
    ``gone()``, asked every ``poll`` seconds while no event comes, says the listener has
    closed its end, which ends the stream (else only a failed keep-alive would)."""
    yield ": unlite events\n\n"
    wait = min(poll, heartbeat) if gone else heartbeat
    quiet = 0.0                 # seconds since the listener was last sent anything
    while True:
        item = sub.get(wait)
        if item is None:
            if gone and gone():
                return
            quiet += wait
            if quiet >= heartbeat:
                quiet = 0.0
                yield ": keep-alive\n\n"
            continue
        seq, kind, data = item
        if allow and not allow(data):
            continue
        if sub.lost:
            data = dict(data, lost=sub.lost)
            sub.lost = 0
        quiet = 0.0
        yield f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
