"""A change as data: a queue of steps, each with its undo (after pyroute2's ndb transaction).

The node turns a graph change (create, update by difference, delete, a restart's repair) into
one ``Steps`` and runs it; nothing else in unlite holds an undo:

- ``Steps.add(name, do, undo)``  queue a step; ``undo`` puts back what ``do`` made. By default
                      it also runs when ``do`` itself failed halfway (``partial``: creating
                      three NFs can fail at the second; the undo frees what exists and is
                      idempotent). ``partial=False`` for a step that is all or nothing (one
                      nft transaction, an atomic file write): its undo runs only if it ended.
- ``Steps.commit(name, do)``  the commit point: once it returns, the change has happened.
- ``Steps.then(name, do)``  work after the commit point (free what the old version had):
                      a failure is logged, never raised — nothing after the commit point
                      turns a success into an error.
- ``Steps.run()``     the steps in order; on a failure before the commit, the undos of the
                      steps begun so far in reverse (each undo's own failure logged, the rest
                      still run), then the error goes on to the caller.

A step may name a fault point (``unlite/faults.py``) passed once it ends: a test can then kill
the daemon at that instant and check what the next start makes of it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from . import faults

log = logging.getLogger("unlite.steps")


@dataclass
class Step:
    name: str
    do: Callable[[], object]
    undo: Callable[[], object] | None = None
    partial: bool = True            # undo also when do failed halfway
    point: str | None = None        # the fault point passed once it ends
    kind: str = "step"              # step | commit | then


class Steps:
    def __init__(self, what: str):
        self.what = what            # for the log: "graph g1"
        self.steps: list[Step] = []
        self.done: list[str] = []   # the names of the steps that ended (tests, the log)

    def add(self, name, do, undo=None, partial=True, point=None) -> Steps:
        self.steps.append(Step(name, do, undo, partial, point))
        return self

    def commit(self, name, do, point=None) -> Steps:
        self.steps.append(Step(name, do, None, False, point, "commit"))
        return self

    def then(self, name, do, point=None) -> Steps:
        self.steps.append(Step(name, do, None, False, point, "then"))
        return self

    def names(self):
        return [s.name for s in self.steps]

    def run(self):
        begun: list[Step] = []
        committed = False
        for s in self.steps:
            if s.kind == "then" and not committed:
                committed = True            # no commit step: the last step was the point
            if committed:
                self._after(s)
                continue
            ended = False
            try:
                s.do()
                ended = True
                self.done.append(s.name)
                if s.point:                 # an error injected there: undone like the rest
                    faults.point(s.point)
            except BaseException:
                if s.undo and (ended or s.partial):
                    begun.append(s)
                self._undo(begun, s.name)
                raise
            begun.append(s)
            committed = s.kind == "commit"

    def _after(self, s: Step):
        try:
            s.do()
        except Exception as e:          # the change happened: say what is left over
            log.error("%s: after the change, %s failed: %s", self.what, s.name, e)
        else:
            self.done.append(s.name)
        if s.point:
            faults.point(s.point)

    def _undo(self, begun, failed):
        for s in reversed(begun):
            if s.undo is None:
                continue
            try:
                s.undo()
            except Exception as e:      # the rest of the rollback still runs
                log.error("%s: undoing %s (after %s failed): %s", self.what, s.name, failed, e)
