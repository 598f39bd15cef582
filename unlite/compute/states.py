"""An NF instance's state: one enum, one table of its transitions, one function that moves it
(after netifd's interface states). The driver (``native.py``), the node, the status, the
events, ubus and USP all read these names; nothing else assigns a state.

    Idle ──start──▶ Starting ──started──▶ Active ──pause──▶ Paused
      ▲                                     │  ◀──resume───   │
      └──────stopped──── Stopping ◀──stop───┴─────────────────┘
    any ──fail──▶ Failed (with a fault: DESIGN.md)     any ──freed──▶ Idle (teardown)

``Failed`` can be started again or stopped. ``ASKED`` is the other table: which states a user's
action (REST ``/NF-FG/<g>/VNFs/<nf>/<action>``, ubus ``nf``, USP ``SetRequestedState``) is
accepted in; the driver's own moves (a delete stops an NF in any state) are ``TRANSITIONS``.
"""
from __future__ import annotations

from enum import Enum

from ..errors import UnliteError


class NFState(str, Enum):
    IDLE = "Idle"
    STARTING = "Starting"
    ACTIVE = "Active"
    STOPPING = "Stopping"
    PAUSED = "Paused"
    FAILED = "Failed"

    __str__ = str.__str__           # "Active" in text and f-strings, as in the records
    __format__ = str.__format__     # type: ignore[assignment]


IDLE, STARTING, ACTIVE, STOPPING, PAUSED, FAILED = NFState
ANY = tuple(NFState)

# event → (the states it may happen in, the state it leads to)
TRANSITIONS: dict[str, tuple[tuple[NFState, ...], NFState]] = {
    "start": ((IDLE, FAILED), STARTING),
    "started": ((STARTING,), ACTIVE),
    "pause": ((ACTIVE,), PAUSED),
    "resume": ((PAUSED,), ACTIVE),
    "stop": (ANY, STOPPING),
    "stopped": ((STOPPING, FAILED), IDLE),     # a stop script that failed: its fault stays
    "fail": (ANY, FAILED),
    "freed": (ANY, IDLE),
}

# a user's action → the states it is accepted in
ASKED: dict[str, tuple[NFState, ...]] = {
    "stop": (ACTIVE, PAUSED, FAILED), "start": (IDLE, FAILED),
    "pause": (ACTIVE,), "resume": (PAUSED,)}

SETTLED = (ACTIVE, PAUSED, IDLE)    # no script under way, no fault: what a restart adopts


class IllegalTransition(UnliteError):
    """A move the table has no arrow for: a bug in unlite, said as one."""
    status = 500


def move(inst, event, fault=None, detail=None):
    """Move ``inst`` (anything with ``state``, ``fault``, ``fault_detail``) by ``event``.
    ``fail`` records ``fault`` and ``detail``; ``started`` clears them."""
    allowed, to = TRANSITIONS[event]
    if inst.state not in allowed:
        raise IllegalTransition(f"NF '{getattr(inst, 'nf', '?')}': no '{event}' from "
                                f"{inst.state} (the NF state table)")
    inst.state = to
    if event == "fail":
        inst.fault, inst.fault_detail = fault, detail
    elif event == "started":
        inst.fault = inst.fault_detail = None
    return to
