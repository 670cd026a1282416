"""Safe serialization of anything a tracked function receives or returns, and how it is
recorded: secrets masked, then every string cut once, with the right count."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import re

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace

from llm_otel import config, track, update_current_span
from llm_otel.core.content import REDACTED, to_json
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
    big = "x" * 100_000
    out = to_jsonable({"blob": b"\x00\x01" * 500, "big": big, "nan": math.nan,
                       "when": datetime.datetime(2024, 7, 18, 12, 0), "color": Color.RED, "set": {3, 1, 2}}, 2000)
    assert out["blob"] == "<bytes: 1000 bytes>"
    assert out["big"] is big  # kept whole: the core cuts it once, after masking secrets
    out = json.loads(json.dumps(out, allow_nan=False))
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


def _strings_cut_at(value, cap):
    """``value`` with every string cut at ``cap`` characters: what the core keeps of it."""
    if isinstance(value, str):
        return value[:cap]
    if isinstance(value, dict):
        return {k[:cap]: _strings_cut_at(v, cap) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings_cut_at(v, cap) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
                    lambda children: st.lists(children) | st.dictionaries(st.text(), children)
                    | st.tuples(children, children) | st.frozensets(st.integers()), max_leaves=60),
       st.integers(min_value=1, max_value=5000))
def test_any_value_serializes_within_bounds(value, limit):
    out = to_jsonable(value, limit)
    kept = json.dumps(_strings_cut_at(out, max(64, limit)), allow_nan=False)
    assert len(kept) <= 2 * max(64, limit) + 2000  # items past the budget are left out
    recorded = json.loads(to_json(out, limit))  # and as recorded, each string is cut once
    for text in _strings_in(recorded):
        assert len(text) <= limit + len("...[truncated 999999999 chars]")


def _strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings_in(v)


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


# ---- recorded through @track: scrub, cut once, count right --------------------------------


@pytest.fixture
def max_length(monkeypatch):
    """``max_length(n)``: LLM_OTEL_CONTENT_MAX_LENGTH for one test."""
    def set_limit(limit):
        monkeypatch.setenv(config.CONTENT_MAX_LENGTH_ENV, str(limit))
        config.reload()
    yield set_limit
    monkeypatch.delenv(config.CONTENT_MAX_LENGTH_ENV, raising=False)
    config.reload()


@track
def echo(text):
    return text


def _recorded(span):
    """(the ``text`` argument, the result) as recorded on ``span``."""
    return json.loads(span.attributes["llm_otel.input"])["text"], span.attributes["llm_otel.output"]


def test_the_mark_counts_every_character_cut_at_the_default_limit(spans):
    text = "".join(chr(ord("a") + i % 26) for i in range(20_000))
    echo(text)
    limit = config.settings().content_max_length
    expected = text[:limit] + f"...[truncated {20_000 - limit} chars]"  # 3616 at the default 16384
    assert _recorded(spans()[-1]) == (expected, expected)


@pytest.mark.parametrize("limit", [1, 5, 20])
def test_small_limits_cut_once_with_an_intact_mark(limit, spans, max_length):
    max_length(limit)
    text = "0123456789" * 10
    echo(text)
    expected = text[:limit] + f"...[truncated {100 - limit} chars]"
    assert _recorded(spans()[-1]) == (expected, expected)
    echo(text[:limit])  # at the limit exactly: nothing cut, no mark
    assert _recorded(spans()[-1]) == (text[:limit], text[:limit])


def test_a_secret_is_masked_before_the_cut_and_counted_as_masked(spans, max_length):
    max_length(20)
    key = "sk-proj-" + "A1b2C3d4" * 5
    text = "x" * 15 + " " + key + " " + "y" * 10
    echo(text)
    masked = "x" * 15 + " " + REDACTED + " " + "y" * 10
    expected = masked[:20] + f"...[truncated {len(masked) - 20} chars]"
    assert _recorded(spans()[-1]) == (expected, expected)


_MARK = re.compile(r"\.\.\.\[truncated \d+ chars\]$")
_UPPER_DIGITS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"  # the filler around a key has none of these
_ALNUM = _UPPER_DIGITS + "abcdefghjkmnpqrstuvwxyz"
# (prefix, alphabet, length) of the part after it, as each provider issues them
KEYS = [("sk-proj-", _ALNUM, (40, 80)), ("sk-", _ALNUM, (40, 60)), ("sk-ant-api03-", _ALNUM + "_-", (40, 95)),
        ("rk-", _ALNUM, (30, 50)), ("ghp_", _ALNUM, (36, 36)), ("github_pat_", _ALNUM + "_", (82, 82)),
        ("AKIA", _UPPER_DIGITS, (16, 16)), ("AIza", _ALNUM + "_-", (35, 35)), ("sk_live_", _ALNUM, (24, 99)),
        ("xoxb-", _UPPER_DIGITS + "-", (40, 60)), ("hf_", _ALNUM, (34, 34))]


@st.composite
def keys(draw):
    prefix, alphabet, (low, high) = draw(st.sampled_from(KEYS))
    body = draw(st.text(alphabet, min_size=low, max_size=high))
    return prefix + draw(st.sampled_from(_UPPER_DIGITS)) + body[1:]  # an upper-case or digit in the body


def _without_our_marks(text):
    text = _MARK.sub("", text).replace(REDACTED, "")
    for size in range(len(REDACTED) - 1, 0, -1):  # "[REDACTED]" itself cut at the limit
        if text.endswith(REDACTED[:size]):
            return text[:-size]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys(), before=st.text("abcdefghij .,\n", max_size=120), after=st.text("abcdefghij .,\n", max_size=120),
       limit=st.integers(min_value=1, max_value=220))
def test_no_part_of_a_key_survives_at_any_limit(spans, max_length, key, before, after, limit):
    max_length(limit)
    echo(f"{before} {key} {after}")
    for recorded in _recorded(spans()[-1]):
        rest = _without_our_marks(recorded)  # only the filler may be left
        assert not re.search(r"[A-Z0-9_-]", rest), (key, limit, recorded)


def test_update_current_span_input_on_a_span_not_made_by_track_is_masked_and_capped(spans, max_length):
    max_length(50)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("plain"):
        update_current_span(input={"prompt": "use sk-proj-" + "Z9" * 20, "headers": {"Authorization": "Bearer x"}},
                            output="z" * 10_000)
    (span,) = spans()
    assert json.loads(span.attributes["llm_otel.input"]) == {"prompt": "use " + REDACTED,
                                                            "headers": {"Authorization": REDACTED}}
    # a string is recorded as the text itself, as on a @track span
    assert span.attributes["llm_otel.output"] == "z" * 50 + "...[truncated 9950 chars]"
