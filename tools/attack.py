"""Hostile HTTP clients, for ``tests/test_http_front.py`` and ``make soak``'s attack mix.

``Attack(port, ns)`` keeps, from one thread and non-blocking sockets (so that 500 cost
the attacker little too), a number of connections of each kind open to ``127.0.0.1:port``
inside network namespace ``ns``, opening a new one whenever the server closes one:

- ``idle``   connects and sends nothing (as a browser's spare connection, or an attacker);
- ``slow``   slowloris: a request line, then 1 KB header lines every 0.2 s, up to 65 KB;
- ``flood``  a 70 KB head at once (the server should refuse it: 431), again and again;
- ``half``   a request without its end (no blank line, or a body shorter than its length).

``made`` counts the connections opened per kind, ``answers`` the status codes the server
sent them (``closed`` those it closed without one).
"""
from __future__ import annotations

import collections
import select
import socket
import threading
import time

import netlab

_HALF = (b"GET /NF-FG/ HTTP/1.1\r\nHost: x\r\n",
         b"PUT /NF-FG/half HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"forwarding-graph\"")
_FLOOD = b"GET /NF-FG/ HTTP/1.1\r\n" + b"".join(
    b"X-Flood-%d: %s\r\n" % (i, b"f" * 1000) for i in range(70)) + b"\r\n"


class Attack:
    def __init__(self, port, ns, idle=500, slow=4, flood=2, half=100, host="127.0.0.1",
                 source=None):
        self.addr, self.ns, self.source = (host, port), ns, source
        self.want = {"idle": idle, "slow": slow, "flood": flood, "half": half}
        self.made, self.answers = collections.Counter(), collections.Counter()
        self._socks = {}            # fd -> [socket, kind, bytes to send, when next, lines]
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="attack", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def open_count(self):
        return len(self._socks)

    def _open(self, kind, now):
        s = socket.socket()
        s.setblocking(False)
        if self.source:
            s.bind((self.source, 0))
        s.connect_ex(self.addr)
        data = {"idle": b"", "flood": _FLOOD, "half": _HALF[self.made[kind] % 2],
                "slow": b"GET /healthz HTTP/1.1\r\n"}[kind]
        self._socks[s.fileno()] = [s, kind, data, now, 0]
        self._poll.register(s, select.POLLIN)
        self.made[kind] += 1

    def _close(self, fd, answer):
        self.answers[answer] += 1
        self._poll.unregister(fd)
        self._socks.pop(fd)[0].close()

    def _send(self, v, now):
        s, kind, data, when, lines = v
        if kind == "slow" and not data and lines < 65:      # the next header line
            data = v[2] = b"X-Slow-%d: %s\r\n" % (lines, b"s" * 1000)
            v[4] += 1
        if not data or when > now:
            return
        try:
            v[2] = data[s.send(data if kind != "slow" else data[:1100]):]
        except OSError:                 # not connected yet, or its buffer is full
            return
        if kind == "slow":
            v[3] = now + 0.2

    def _run(self):
        netlab._enter(self.ns)
        self._poll = select.poll()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                have = collections.Counter(v[1] for v in self._socks.values())
                for kind, n in self.want.items():
                    for _ in range(min(n - have[kind], 50)):
                        self._open(kind, now)
                for fd, _ in self._poll.poll(0):
                    try:
                        data = self._socks[fd][0].recv(4096)
                    except OSError:
                        data = b""
                    words = data.split(None, 2)
                    self._close(fd, int(words[1]) if data.startswith(b"HTTP/")
                                and len(words) > 1 and words[1].isdigit() else "closed")
                for v in list(self._socks.values()):
                    self._send(v, now)
                time.sleep(0.02)
        finally:
            for v in self._socks.values():
                v[0].close()
            self._socks.clear()
