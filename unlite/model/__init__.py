"""The NF-FG data model: parse and validate Universal Node graphs (see nffg.py)."""
from .nffg import (DEFAULT_PRIORITY, ENDPOINT_TYPES, MATCH_FIELDS, MAX_DEPTH, RESERVED_ENV,
                   Action, Control, Endpoint, Graph, Match, ModelError, Port, PortRef, Rule,
                   VNF, parse_graph, validate_id)

__all__ = ["ModelError", "parse_graph", "validate_id", "Port", "Control", "VNF", "Endpoint",
           "PortRef", "Match", "Action", "Rule", "Graph", "DEFAULT_PRIORITY", "MATCH_FIELDS",
           "ENDPOINT_TYPES", "RESERVED_ENV", "MAX_DEPTH"]
