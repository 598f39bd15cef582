"""Property tests of the NF-FG model (hypothesis): whatever arrives, the model answers with a
Graph or a ModelError that names a JSON path — never another exception."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unlite.model import Graph, ModelError, parse_graph

EXAMPLES = sorted((Path(__file__).parent / "data" / "un-examples").glob("*.json"))
SEEDS = [json.loads(p.read_text()) for p in EXAMPLES]

scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | \
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=12), kids, max_size=4),
                           max_leaves=20)


def _parse(doc):
    try:
        g = parse_graph(doc, "g")
    except ModelError as e:
        assert e.path.startswith("$"), e.path
        assert e.message and e.status in (400, 413, 422)
        return None
    assert isinstance(g, Graph)
    return g


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_gives_a_graph_or_a_model_error(value):
    _parse(value)
    _parse({"forwarding-graph": value})


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SEEDS))), st.data(), json_values)
def test_one_mutated_field_of_a_real_graph_is_parsed_or_named(seed, data, value):
    doc = copy.deepcopy(SEEDS[seed])
    paths = [p for p in _paths(doc) if p]
    where = data.draw(st.sampled_from(paths))
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    _parse(doc)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(range(len(SEEDS))))
def test_parsing_is_deterministic_and_text_equals_object(seed):
    doc = SEEDS[seed]
    assert parse_graph(doc, "g") == parse_graph(json.dumps(doc), "g") == \
        parse_graph(json.dumps(doc).encode(), "g")
