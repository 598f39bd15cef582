"""The daemon's eyes on the kernel: ``node.check_world()`` when something changes.

- a netlink socket (``NETLINK_ROUTE``, group ``RTMGRP_LINK``) in the node's namespace: a link
  that appears, goes or changes state (an end-point interface unplugged, ``pppoe-wan``
  coming up, an NF's veth deleted) wakes the check within ``SETTLE`` s (events in a burst
  are one check);
- every ``INTERVAL`` s otherwise: what sends no netlink event (an NF process that exits, is
  OOM-killed or SIGSTOPped).

One thread, blocking in ``select`` between checks; stdlib only. Where netlink cannot be
opened (not Linux, a sandbox), the periodic check alone runs.

The same link events end a teardown's wait for the kernel (``wait_links_gone``): a deleted
namespace's veths are freed by the kernel later, in a work queue; the wait wakes on each
``RTM_DELLINK`` instead of sleeping and polling.
"""
from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time

log = logging.getLogger("unlite.watch")

INTERVAL = 5.0      # s between checks when the kernel says nothing
SETTLE = 0.05       # s to let a burst of link events end
_RTMGRP_LINK = 1
_RTM_DELLINK = 17
_NLMSG = struct.Struct("=IHHII")        # nlmsghdr: len, type, flags, seq, pid
_IFINDEX = struct.Struct("=i")          # ifinfomsg.ifi_index, 4 bytes into it
POLL_CAP = 0.002    # s between looks when netlink cannot say (and a check against lost events)


def link_socket():
    """A non-blocking ``NETLINK_ROUTE`` socket subscribed to link events in this network
    namespace, or None where netlink cannot be opened (the error is logged at debug)."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.bind((0, _RTMGRP_LINK))
        s.setblocking(False)
        return s
    except (OSError, AttributeError) as e:
        log.debug("no netlink link events: %s", e)
        return None


def _deleted(sock):
    """Interface indexes of the ``RTM_DELLINK`` messages waiting on ``sock``; None when the
    kernel dropped some (ENOBUFS: look at every name again)."""
    gone = set()
    try:
        while True:
            buf = sock.recv(65536)
            if not buf:
                return gone
            off = 0
            while off + _NLMSG.size <= len(buf):
                length, kind = _NLMSG.unpack_from(buf, off)[:2]
                if length < _NLMSG.size:
                    break
                if kind == _RTM_DELLINK and off + _NLMSG.size + 8 <= len(buf):
                    gone.add(_IFINDEX.unpack_from(buf, off + _NLMSG.size + 4)[0])
                off += (length + 3) & ~3
    except (BlockingIOError, InterruptedError):
        return gone
    except OSError:
        return None


def _index(name):
    try:
        return socket.if_nametoindex(name)
    except (OSError, ValueError):
        return None


def wait_links_gone(names, timeout):
    """Wait until no interface of ``names`` exists in this network namespace; return those
    left after ``timeout`` s. Woken by the kernel's ``RTM_DELLINK`` of each (the moment it
    frees it), never a growing sleep; a look by name every ``POLL_CAP`` s too, as the only
    way where netlink cannot be opened."""
    sock = link_socket() if names else None     # subscribed before the first look
    try:
        left = {i: n for n in names if (i := _index(n)) is not None}
        deadline = time.monotonic() + timeout
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            if sock is None:
                time.sleep(min(POLL_CAP, wait))
                gone = None
            elif select.select([sock], [], [], min(wait, 25 * POLL_CAP))[0]:
                gone = _deleted(sock)
            else:
                gone = None                     # quiet: look by name (lost events, renames)
            if gone:
                left = {i: n for i, n in left.items() if i not in gone}
            else:                               # nothing said, or not all of it
                left = {i: n for i, n in left.items() if _index(n) == i}
        return sorted(left.values())
    finally:
        if sock is not None:
            sock.close()


class Watch:
    def __init__(self, node, interval=INTERVAL):
        self.node, self.interval = node, interval
        self._stop = threading.Event()
        self._sock = link_socket()
        if self._sock is None:
            log.info("no netlink link events: checking every %.0f s only", interval)
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
