"""Safe serialization of anything a tracked function receives or returns."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math

import pydantic
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_otel import track
from llm_otel.tracking.serialize import MAX_DEPTH, MAX_ITEMS, to_jsonable


class BadRepr:
    def __repr__(self):
        raise RuntimeError("repr exploded")


class NotAStringRepr:
    def __repr__(self):
        return 42


@dataclasses.dataclass
class Doc:
    id: int
    text: str
    tags: list


class Model(pydantic.BaseModel):
    name: str
    score: float


class Color(enum.Enum):
    RED = "red"


def roundtrip(value, limit=2000):
    out = to_jsonable(value, limit)
    return json.loads(json.dumps(out, allow_nan=False))


def test_recursive_structures_are_cut_at_the_cycle():
    d = {"name": "root"}
    d["self"] = d
    lst = [1]
    lst.append(lst)
    out = roundtrip({"d": d, "l": lst})
    assert out["d"]["self"] == "<cycle: dict>"
    assert out["l"] == [1, "<cycle: list>"]


def test_shared_but_acyclic_references_are_not_cycles():
    shared = {"x": 1}
    assert roundtrip([shared, shared]) == [{"x": 1}, {"x": 1}]


def test_diamond_graph_does_not_explode():
    node = {}
    for _ in range(40):  # 2**40 paths if walked naively
        node = {"a": node, "b": node}
    out = json.dumps(to_jsonable(node, 4000))
    assert len(out) < 10_000


def test_bytes_huge_strings_and_odd_scalars():
    out = roundtrip({"blob": b"\x00\x01" * 500, "big": "x" * 100_000, "nan": math.nan,
                     "when": datetime.datetime(2024, 7, 18, 12, 0), "color": Color.RED, "set": {3, 1, 2}})
    assert out["blob"] == "<bytes: 1000 bytes>"
    assert out["big"].startswith("xxx") and "truncated" in out["big"] and len(out["big"]) < 2100
    assert out["nan"] == "nan"
    assert out["when"] == "2024-07-18T12:00:00"
    assert out["color"] == "red"
    assert out["set"] == [1, 2, 3]


def test_objects_whose_repr_raises_or_lies():
    out = roundtrip([BadRepr(), NotAStringRepr()])
    assert out == ["<BadRepr object (repr failed)>", "<NotAStringRepr object (repr failed)>"]


def test_dataclasses_and_pydantic_models_keep_their_fields():
    out = roundtrip({"doc": Doc(1, "t", ["a"]), "model": Model(name="n", score=0.5)})
    assert out["doc"] == {"__type__": "Doc", "id": 1, "text": "t", "tags": ["a"]}
    assert out["model"] == {"__type__": "Model", "name": "n", "score": 0.5}


def test_generators_and_iterators_are_never_consumed():
    gen = (i for i in range(3))
    out = roundtrip({"gen": gen, "it": iter([1, 2])})
    assert out["gen"].startswith("<generator object")
    assert list(gen) == [0, 1, 2]


def test_size_limits_on_items_and_depth():
    out = roundtrip(list(range(1000)), limit=100_000)
    assert len(out) == MAX_ITEMS + 1 and out[-1] == f"...[{1000 - MAX_ITEMS} more items]"
    deep = current = {}
    for _ in range(50):
        current["n"] = {}
        current = current["n"]
    text = json.dumps(roundtrip(deep))
    assert "nested too deep" in text and text.count("{") <= MAX_DEPTH + 1


def test_a_total_budget_caps_wide_structures():
    out = json.dumps(to_jsonable({f"k{i}": "v" * 500 for i in range(60)}, 3000))
    assert len(out) < 2 * 3000 + 200  # strings capped one by one, the whole at about twice that
    assert "more items" in out


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
                    lambda children: st.lists(children) | st.dictionaries(st.text(), children)
                    | st.tuples(children, children) | st.frozensets(st.integers()), max_leaves=60),
       st.integers(min_value=1, max_value=5000))
def test_any_value_serializes_within_bounds(value, limit):
    out = to_jsonable(value, limit)
    text = json.dumps(out, allow_nan=False)
    assert len(text) <= 2 * max(64, limit) + 2000


def test_tracked_function_with_hostile_arguments_still_runs_and_records(spans):
    cyclic = []
    cyclic.append(cyclic)

    @track
    def f(a, b, c, d):
        return BadRepr()

    result = f(cyclic, b"\xff" * 10, "y" * 50_000, BadRepr())
    assert isinstance(result, BadRepr)
    (span,) = spans()
    inputs = json.loads(span.attributes["llm_otel.input"])
    assert inputs["a"] == ["<cycle: list>"] and inputs["b"] == "<bytes: 10 bytes>"
    assert inputs["d"] == "<BadRepr object (repr failed)>"
    assert span.attributes["llm_otel.output"] == "<BadRepr object (repr failed)>"
