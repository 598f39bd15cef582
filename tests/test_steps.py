"""The change engine (``unlite/steps.py``), in-process and without root: steps run in order,
a failure before the commit undoes what began in reverse (a step that failed halfway too,
unless it is all or nothing), an undo's own failure does not cut the rollback short, and
nothing after the commit point turns the change into an error."""
from __future__ import annotations

import logging

import pytest

from unlite.steps import Steps


def _steps(log, fail=None, undo_fails=(), then_fails=False):
    def do(name):
        def f():
            log.append(f"do {name}")
            if name == fail:
                raise RuntimeError(f"{name} broke")
        return f

    def undo(name):
        def f():
            log.append(f"undo {name}")
            if name in undo_fails:
                raise OSError(f"undo of {name} broke")
        return f

    s = Steps("graph g")
    s.add("record", do("record"), undo("record"), partial=False)
    s.add("create", do("create"), undo("create"))
    s.add("steer", do("steer"), undo("steer"), partial=False)
    s.add("start", do("start"))
    s.commit("store", do("store"))
    s.then("free", do("free") if not then_fails else _raise)
    s.then("rewrite", do("rewrite"))
    return s


def _raise():
    raise OSError("no space left")


def test_the_steps_run_in_order():
    log = []
    s = _steps(log)
    s.run()
    assert log == ["do record", "do create", "do steer", "do start", "do store", "do free",
                   "do rewrite"]
    assert s.done == ["record", "create", "steer", "start", "store", "free", "rewrite"]


def test_a_failure_undoes_what_began_in_reverse():
    log = []
    with pytest.raises(RuntimeError, match="start broke"):
        _steps(log, fail="start").run()
    assert log == ["do record", "do create", "do steer", "do start",
                   "undo steer", "undo create", "undo record"]


def test_a_step_that_failed_halfway_is_undone_unless_all_or_nothing():
    log = []
    with pytest.raises(RuntimeError):
        _steps(log, fail="create").run()            # three NFs, the second broke
    assert log[-2:] == ["undo create", "undo record"]
    log = []
    with pytest.raises(RuntimeError):
        _steps(log, fail="steer").run()             # one nft transaction: nothing to undo
    assert log[-3:] == ["do steer", "undo create", "undo record"]


def test_an_undo_that_fails_does_not_cut_the_rollback_short(caplog):
    log = []
    with caplog.at_level(logging.ERROR, "unlite.steps"), pytest.raises(RuntimeError):
        _steps(log, fail="start", undo_fails=("steer",)).run()
    assert log[-3:] == ["undo steer", "undo create", "undo record"]
    assert "undoing steer (after start failed): undo of steer broke" in caplog.text


def test_nothing_after_the_commit_turns_success_into_an_error(caplog):
    log = []
    s = _steps(log, then_fails=True)
    with caplog.at_level(logging.ERROR, "unlite.steps"):
        s.run()                                     # does not raise
    assert "do rewrite" in log and "undo" not in " ".join(log)
    assert "free" not in s.done and "rewrite" in s.done
    assert "graph g: after the change, free failed: no space left" in caplog.text
