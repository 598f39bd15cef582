"""ubus object ``unlite`` registered by the daemon itself, and its events without a process.

- ``InProcess``     the backend of ``methods.call`` on the node itself, as the unix socket's
                    caller (admin); the same errors as the REST API (``api.describe``)
- ``NativeObject``  one ``wire.Connection`` to ubusd: registers ``unlite`` with the method
                    table's signature, answers reads on the reader thread (they never take
                    the node's lock) and each change on a thread of its own (``node.runner``:
                    bounded, answered "pending" after ``ANSWER_WITHIN``); publishes the node's
                    events as ubus events ``unlite.graph`` / ``unlite.nf`` on the same socket

``serve --ubus SOCKET`` (UCI ``option ubus``) turns it on. If ubusd already has an object
``unlite`` (rpcd's exec plugin enabled as well), the daemon says so and goes on without it.
"""
from __future__ import annotations

import json
import logging
import queue
import threading

from .. import sh
from ..httpd import MAX_BODY
from ..tenants import ROOT
from . import methods, wire

log = logging.getLogger("unlite.ubus")


class InProcess:
    def __init__(self, node):
        self.node = node

    def _do(self, fn, *args):
        from ..api import KNOWN, describe
        try:
            return fn(*args)
        except KNOWN as e:
            status, message, path, fault, extra = describe(e)
            raise methods.Failure(message, status=status, path=path, fault=fault,
                                  **(extra or {})) from None
        except sh.CommandError as e:
            log.error("command failed: %s", e)
            raise methods.Failure(f"a system command failed: {e}", status=500) from None

    def summaries(self):
        return self._do(self.node.summaries, ROOT)

    def get(self, gid):
        return self._do(self.node.get, gid, ROOT)

    def status(self, gid):
        return self._do(self.node.status, gid, ROOT)

    def capabilities(self):
        return self._do(self.node.capabilities)

    def _change(self, gid, op, fn, wait):
        done, answer = self._do(self.node.runner.run, lambda: self._do(fn), wait)
        if done:
            return answer
        return methods.pending(gid, *self.node.changes.under_way(gid, op))

    def put(self, gid, graph, wait):
        body = graph.encode() if isinstance(graph, str) else json.dumps(graph).encode()
        if len(body) > MAX_BODY:
            raise methods.Failure(f"the graph is {len(body)} bytes, more than the daemon "
                                  f"takes ({MAX_BODY})", status=413, path="graph")
        def put():
            return {"id": gid, "created": self.node.put(gid, body, ROOT)}
        return self._change(gid, "put", put, wait)

    def delete(self, gid, wait):
        def delete():
            self.node.delete(gid, ROOT)
            return {"id": gid, "deleted": True}
        return self._change(gid, "delete", delete, wait)

    def nf(self, gid, nf, action, wait):
        return self._change(gid, "nf", lambda: self.node.nf_action(gid, nf, action, ROOT),
                            wait)


class NativeObject:
    NAME = "unlite"

    def __init__(self, node, path=wire.DEFAULT_SOCKET, register=True):
        self.node, self.path, self.register = node, path, register
        self.backend = InProcess(node)
        self.conn = wire.Connection(path)
        self._events = None

    def start(self):
        """Connect and register (raises wire.UbusError), then serve on a thread (which reads
        ubusd's answers to the events even when nothing is registered)."""
        self.conn.connect()
        if self.register:
            try:
                self.conn.add_object(self.NAME, {m.name: m.args
                                                 for m in methods.METHODS.values()},
                                     self._on_call)
            except wire.UbusError:
                self.conn.close()
                raise
        self._events = self.node.events.subscribe()
        threading.Thread(target=self.conn.serve, name="ubus", daemon=True).start()
        threading.Thread(target=self._send_events, name="ubus-events", daemon=True).start()
        return self

    def stop(self):
        self.conn.close()
        if self._events is not None:
            self.node.events.unsubscribe(self._events)
            self._events.offer(None)

    def _on_call(self, call):
        m = methods.METHODS.get(call.method)
        if m is None:                       # as libubus (and rpcd's plugin object) answer
            call.reply(None, wire.METHOD_NOT_FOUND)
        elif m.access == "write":
            threading.Thread(target=self._answer, args=(call,), name="ubus-change",
                             daemon=True).start()
        else:
            self._answer(call)

    def _answer(self, call):
        try:
            reply = methods.call(self.backend, call.method, call.args)
        except methods.Failure as e:
            reply = e.body
        except Exception as e:  # noqa: BLE001 - the caller gets the cause, the log the trace
            log.exception("ubus call unlite.%s", call.method)
            reply = {"error": f"internal error: {type(e).__name__}: {e}", "status": 500}
        call.reply(reply)

    def _send_events(self):
        sub = self._events
        while True:
            try:
                item = sub.q.get()
            except queue.Empty:         # pragma: no cover - get() blocks
                continue
            if item is None:
                return
            _, kind, data = item
            if sub.lost:
                data, sub.lost = dict(data, lost=sub.lost), 0
            try:
                self.conn.send_event(f"unlite.{kind}", data)
            except OSError as e:
                log.warning("ubus event unlite.%s not sent: %s", kind, e)
