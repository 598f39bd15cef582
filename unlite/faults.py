"""Fault injection, for tests only: ``UNLITE_FAULT="POINT[@N]=kill|fail[,...]"``.

At the ``N``-th time (default the first) the daemon passes ``POINT``, ``kill`` sends it
SIGKILL (a crash or power cut at that instant) and ``fail`` raises ``FaultInjected`` (an
error at that instant). Without the variable — always, in production: the init script never
sets it — ``point()`` is one dictionary lookup.

Points: ``deploy:recorded`` (runtime record written, nothing made yet), ``deploy:started``
(an NF instance created and started), ``deploy:steered`` (the switch holds the new rules),
``deploy:stored`` (desired graph written); ``delete:unsteered``, ``delete:freed`` (NFs
gone), ``delete:forgotten`` (runtime record gone, desired graph not yet).
"""
from __future__ import annotations

import os
import signal
import threading

POINTS = ("deploy:recorded", "deploy:started", "deploy:steered", "deploy:stored",
          "delete:unsteered", "delete:freed", "delete:forgotten")


class FaultInjected(RuntimeError):
    pass


def _parse(text):
    spec = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        where, _, how = item.partition("=")
        name, _, nth = where.partition("@")
        if name not in POINTS or how not in ("kill", "fail"):
            raise ValueError(f"UNLITE_FAULT: bad item {item!r} (points: {', '.join(POINTS)}; "
                             "actions: kill, fail)")
        spec[name] = (int(nth or 1), how)
    return spec


_SPEC = _parse(os.environ.get("UNLITE_FAULT", ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()


def point(name):
    if not _SPEC or name not in _SPEC:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        nth, how = _SPEC[name]
        if _hits[name] != nth:
            return
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise FaultInjected(f"fault injected at {name}")
