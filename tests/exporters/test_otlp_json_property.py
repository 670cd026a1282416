"""Any attribute value OTel accepts survives the JSONL line and back (property test)."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_otel.exporters.jsonl import span_to_line
from llm_otel.exporters.model import SpanEvent, SpanRecord, from_otlp_json

scalars = [st.text(), st.booleans(), st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
           st.floats(allow_nan=True, allow_infinity=True)]
values = st.one_of(*scalars, *[st.lists(s, max_size=4).map(tuple) for s in scalars])
attributes = st.dictionaries(st.text(min_size=1, max_size=20), values, max_size=8)
hex_id = lambda n: st.text(alphabet="0123456789abcdef", min_size=n, max_size=n)  # noqa: E731


def _same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


@settings(max_examples=100, deadline=None)
@given(attrs=attributes, event_attrs=attributes, trace_id=hex_id(32), span_id=hex_id(16),
       parent=st.one_of(st.none(), hex_id(16)), start=st.integers(0, 2 ** 63 - 1), name=st.text(),
       kind=st.integers(0, 5), code=st.integers(0, 2), message=st.text())
def test_line_round_trip(attrs, event_attrs, trace_id, span_id, parent, start, name, kind, code, message):
    record = SpanRecord(trace_id, span_id, parent, name, start, start, kind=kind, attributes=attrs,
                        events=[SpanEvent("e", start, event_attrs)], status_code=code, status_message=message,
                        resource={"service.name": "x"}, scope_name="s", scope_version="1")
    line = span_to_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one span, one line
    back = from_otlp_json(json.loads(line))
    assert set(back.attributes) == set(attrs)
    assert all(_same(attrs[k], back.attributes[k]) for k in attrs)
    assert all(_same(event_attrs[k], back.events[0].attributes[k]) for k in event_attrs)
    assert (back.trace_id, back.span_id, back.parent_span_id, back.name, back.kind, back.status_code,
            back.status_message, back.start_time_unix_nano) == (trace_id, span_id, parent, name, kind, code,
                                                                message, start)
    json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # strict JSON: no NaN
