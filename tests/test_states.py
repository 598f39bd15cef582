"""The NF state machine (compute/states.py): one enum, one transition table, one ``move``;
what the records, events and faces read. No root."""
from __future__ import annotations

import json
import types

import pytest

from unlite.compute import states
from unlite.compute.native import Instance
from unlite.compute.states import ACTIVE, FAILED, IDLE, PAUSED, STARTING, NFState, move


def nf(state=IDLE):
    return types.SimpleNamespace(nf="nf1", state=state, fault=None, fault_detail=None)


def test_an_nf_goes_through_its_life_by_the_table():
    i = nf()
    for event, to in [("start", STARTING), ("started", ACTIVE), ("pause", PAUSED),
                      ("resume", ACTIVE), ("stop", states.STOPPING), ("stopped", IDLE)]:
        assert move(i, event) is to
    move(i, "fail", "FailureOnStart", "exit 1")
    assert (i.state, i.fault, i.fault_detail) == (FAILED, "FailureOnStart", "exit 1")
    move(i, "start")                                # a failed NF may start again
    move(i, "started")
    assert (i.state, i.fault, i.fault_detail) == (ACTIVE, None, None)


@pytest.mark.parametrize("state,event", [(IDLE, "started"), (ACTIVE, "start"),
                                         (IDLE, "pause"), (ACTIVE, "resume"),
                                         (PAUSED, "pause"), (ACTIVE, "stopped")])
def test_a_move_the_table_lacks_is_refused_and_changes_nothing(state, event):
    i = nf(state)
    with pytest.raises(states.IllegalTransition, match=f"no '{event}' from {state.value}"):
        move(i, event)
    assert i.state is state


def test_states_are_their_names_in_text_json_and_records():
    assert f"{ACTIVE}" == str(ACTIVE) == "Active" and ACTIVE == "Active"
    assert json.dumps({"s": PAUSED}) == '{"s": "Paused"}'
    rec = {"graph": "g", "nf": "nf1", "name": "bridge", "impl": "bridge", "netns": "ns",
           "pkg_dir": "/p", "pkg_sha256": "0" * 64, "timeout": 10, "ports": [],
           "state": "Paused"}
    assert Instance.from_dict(rec).state is PAUSED
    with pytest.raises(ValueError):                 # a record with a state nobody knows
        Instance.from_dict({**rec, "state": "Dancing"})


def test_the_user_actions_are_the_table_the_ubus_plugin_checks():
    from unlite.ubus import methods                 # (it imports only re: a copy, kept equal)
    assert methods.NF_ACTIONS == tuple(states.ASKED)
    for action, allowed in states.ASKED.items():
        assert set(allowed) <= set(NFState), action
        # what a user may ask is a move of the driver's table from each state it allows
        assert set(allowed) <= set(states.TRANSITIONS[action][0]), action
