"""The VNF resolver: a graph asks for a *function* ("firewall"); the node picks the best
implementation it has (paper: functional capabilities, not images).

Candidates are the repository's templates matching the VNF (template file name, functional
name or alias). Among them, those whose dependencies are all present win; then the flavour
preference order (``unlite serve --prefer nftables,ebtables``, UCI ``option prefer``);
then repository order. A function none of whose flavours can run is refused naming what each
one misses.
"""
from __future__ import annotations

import contextlib

from .compute.package import missing_dependencies

DEFAULT_PREFER = ("nftables", "linux-bridge", "ebtables", "iptables")


class Resolver:
    def __init__(self, repo, prefer=DEFAULT_PREFER):
        self.repo = repo
        self.prefer = [p.strip().lower() for p in prefer if p.strip()]
        self._memo = None

    @contextlib.contextmanager
    def once_each(self):
        """Within: each function resolved, its package checked and its dependencies probed
        once, not once per NF (a restart plans every NF of every graph: 100 graphs of one
        function are one lookup). Only for a pass that runs no script: the check before a
        script runs is the package's own. Nested (a restart's pass plans each graph): the
        outer pass's memo serves both."""
        if self._memo is not None:
            yield self
            return
        self._memo = {}
        try:
            yield self
        finally:
            self._memo = None

    def missing(self, t):
        """``missing_dependencies(t)``, memoised within ``once_each``."""
        memo = self._memo
        if memo is None:
            return missing_dependencies(t)
        key = ("missing", t.dependencies)   # the index's and the package's copy alike
        if key not in memo:
            memo[key] = missing_dependencies(t)
        return memo[key]

    def _rank(self, t):
        flavour = (t.flavour or "").lower()
        return self.prefer.index(flavour) if flavour in self.prefer else len(self.prefer)

    def pick(self, templates):
        """Index of the best of ``templates``."""
        runnable = [i for i, t in enumerate(templates) if not self.missing(t)]
        pool = runnable or list(range(len(templates)))
        return min(pool, key=lambda i: (self._rank(templates[i]), i))

    def resolve(self, name, template=None):
        memo = self._memo
        if memo is None:
            return self.repo.resolve(name, template, self.pick)
        key = ("resolve", name, template)
        if key not in memo:
            memo[key] = self.repo.resolve(name, template, self.pick)
        return memo[key]

    def why_not(self, name, template=None):
        """"flavour: missing ..." for each candidate that cannot run (for error messages)."""
        out = []
        for t in self.repo.candidates(name, template):
            missing = missing_dependencies(t)
            if missing:
                out.append(f"{t.flavour or t.name}: missing {', '.join(missing)}")
        return out

    def preferred(self):
        """{function name: the template the resolver picks for it} over the whole catalog."""
        by_name: dict[str, list] = {}
        for t in self.repo.templates():
            by_name.setdefault(t.name, []).append(t)
        return {n: ts[self.pick(ts)] for n, ts in by_name.items()}
