"""What every steering backend provides (paper Table I), and the checks they share.

A backend turns a graph's flow rules into its switch's rules. The node gives it a map
"port reference → device on this node" and asks it to ``check`` a graph (what it cannot
carry is refused with a 422 naming the field), ``compile`` it into a comparable desired
state, ``apply`` the difference from the previous state in one step, read ``counters``,
and ``remove`` everything of a graph.
"""
from __future__ import annotations


class SteeringError(Exception):
    def __init__(self, message, path=None, status=422):
        super().__init__(message)
        self.message, self.path, self.status = message, path, status


class Switch:
    name = "?"
    endpoint_types: tuple[str, ...] = ()
    unsupported_fields: dict[str, str] = {}
    supported_actions = ("output",)

    def check(self, graph):
        """Raise SteeringError for the first thing of ``graph`` this backend cannot carry."""
        for ep in graph.endpoints:
            if ep.type not in self.endpoint_types:
                raise SteeringError(
                    f"end-point '{ep.id}' has type '{ep.type}', which the '{self.name}' "
                    f"backend does not support yet (supported: {', '.join(self.endpoint_types)})",
                    f"{ep.path}.type")
        for rule in graph.rules:
            for key, _ in rule.match.fields:
                if key in self.unsupported_fields:
                    raise SteeringError(f"match field '{key}' is not supported by the "
                                        f"'{self.name}' backend: {self.unsupported_fields[key]}",
                                        f"{rule.path}.match.{key}")
            for i, act in enumerate(rule.actions):
                if act.kind not in self.supported_actions:
                    raise SteeringError(f"action '{act.kind}' is not supported by the "
                                        f"'{self.name}' backend yet", f"{rule.path}.actions[{i}]")
            self.rule_text(rule, _AnyDev())

    def rule_text(self, rule, devs):  # pragma: no cover - abstract
        raise NotImplementedError


class _AnyDev(dict):
    """A device map that answers any port with a placeholder (for check())."""

    def __missing__(self, key):
        return "dev"
