"""The daemon's eyes on the kernel: ``node.check_world()`` when something changes.

- a netlink socket (``NETLINK_ROUTE``, group ``RTMGRP_LINK``) in the node's namespace: a link
  that appears, goes or changes state (an end-point interface unplugged, ``pppoe-wan``
  coming up, an NF's veth deleted) wakes the check within ``SETTLE`` s (events in a burst
  are one check);
- every ``INTERVAL`` s otherwise: what sends no netlink event (an NF process that exits, is
  OOM-killed or SIGSTOPped).

One thread, blocking in ``select`` between checks; stdlib only. Where netlink cannot be
opened (not Linux, a sandbox), the periodic check alone runs.
"""
from __future__ import annotations

import logging
import select
import socket
import threading
import time

log = logging.getLogger("unlite.watch")

INTERVAL = 5.0      # s between checks when the kernel says nothing
SETTLE = 0.05       # s to let a burst of link events end
_RTMGRP_LINK = 1


def _netlink():
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.bind((0, _RTMGRP_LINK))
        s.setblocking(False)
        return s
    except (OSError, AttributeError) as e:
        log.info("no netlink link events (%s): checking every %.0f s only", e, INTERVAL)
        return None


class Watch:
    def __init__(self, node, interval=INTERVAL):
        self.node, self.interval = node, interval
        self._stop = threading.Event()
        self._sock = _netlink()
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        if self._sock:
            self._sock.close()

    def _drain(self):
        try:
            while self._sock.recv(65536):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:            # ENOBUFS: events were lost; the check reads all
            log.debug("netlink: %s", e)

    def _run(self):
        next_check = time.monotonic() + self.interval
        while not self._stop.is_set():
            wait = max(0.0, next_check - time.monotonic())
            if self._sock is not None:
                ready = select.select([self._sock], [], [], wait)[0]
                if ready:
                    time.sleep(SETTLE)
                    self._drain()
            elif self._stop.wait(wait):
                return
            if self._stop.is_set():
                return
            try:
                self.node.check_world(blocking=True)
            except Exception:               # the watch must outlive any one check
                log.exception("world check failed")
            next_check = time.monotonic() + self.interval
