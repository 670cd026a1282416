"""Reading damaged JSONL trace files: a good span is never lost to a bad neighbour, every
bad line is reported with what is wrong, and no input makes the reader raise."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace

from llm_otel.exporters import JsonlFileExporter, JsonlReader
from llm_otel.exporters.jsonl import span_to_line
from llm_otel.exporters.model import from_readable


@pytest.fixture
def lines(spans):
    """Five real span lines, as the exporter writes them: names a..e."""
    tracer = trace.get_tracer("test")
    for name in "abcde":
        with tracer.start_as_current_span(name) as span:
            span.set_attribute("text", "ünïcode " + name * 50)
    return [span_to_line(from_readable(s)) for s in spans()]


def _read(path):
    reader = JsonlReader(path)
    return [s.name for s in reader], reader.bad_lines


def test_a_span_glued_after_a_partial_line_is_read(tmp_path, lines):
    a, b, c, d, e = lines
    path = tmp_path / "t.jsonl"
    # b cut by a full disk, c appended by another process right after it; d after two cut lines
    path.write_bytes(a + b[:70] + c + b[:200] + a[:31] + d + e)
    names, bad = _read(path)
    assert names == ["a", "c", "d", "e"]
    assert [(x.line_number, x.reason.split(":")[0]) for x in bad] == [(2, "invalid JSON"), (3, "invalid JSON")]
    assert bad[0].reason.endswith("(the span from byte 71 on was read)")
    assert bad[1].reason.endswith(f"(the span from byte {200 + 31 + 1} on was read)")


def test_a_span_glued_after_garbage_that_is_not_utf8_is_read(tmp_path, lines):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage" + lines[0] + b'{"traceId":"12' + lines[1])
    names, bad = _read(path)
    assert names == ["a", "b"]
    assert bad[0].reason.startswith("not UTF-8: invalid start byte at byte 1 (the span from byte 11 on")
    assert bad[1].reason.startswith("invalid JSON: ")


def test_the_exporter_ends_a_partial_line_left_by_another_writer(tmp_path, spans, lines):
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines[0] + lines[1][:50])  # a process died (or the disk filled) mid-line
    with trace.get_tracer("test").start_as_current_span("after"):
        pass
    JsonlFileExporter(path).export(spans()[-1:])
    names, bad = _read(path)
    assert names == ["a", "after"] and len(bad) == 1
    assert b"\n" + span_to_line(from_readable(spans()[-1])) in path.read_bytes()  # its own line, not glued


@pytest.mark.parametrize("line,reason", [
    (b'{"traceId": "abc\n', "invalid JSON: Unterminated string starting at column 13"),
    (b'{"traceId": "a\x01"}\n', "invalid JSON: Invalid control character at column 15"),
    (b'{"traceId" 1}\n', "invalid JSON: Expecting ':' delimiter at column 12"),
    (b"\n", None),  # blank: not a line at all
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    (b'{"a": ' + b"9" * 5000 + b"}\n", "invalid JSON: Exceeds the limit (4300"),  # int_max_str_digits
    (b"null\n", "not a span: expected a JSON object, got NoneType"),
    (b'{"resourceSpans": []}\n', "not a span: missing span name"),
], ids=["unterminated", "control character", "delimiter", "blank", "deep", "long integer", "null", "not a span"])
def test_what_is_wrong_is_said_plainly(tmp_path, line, reason):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line)
    names, bad = _read(path)
    assert names == []
    if reason is None:
        assert bad == []
    else:
        assert len(bad) == 1 and bad[0].reason.startswith(reason), bad[0].reason
        assert "at at" not in bad[0].reason


def _span_with(**fields):
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "x",
            "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
    span.update(fields)
    return json.dumps(span).replace('"INF"', "1e999").encode() + b"\n"


@pytest.mark.parametrize("line,reason", [
    (_span_with(startTimeUnixNano="INF"), "startTimeUnixNano must be an integer (nanoseconds), got inf"),
    (_span_with(endTimeUnixNano=str(2 ** 64)), "endTimeUnixNano out of range"),
    (_span_with(endTimeUnixNano=-1), "endTimeUnixNano out of range"),
    (_span_with(events=5), "events must be a list"),
    (_span_with(events=[{"timeUnixNano": [1]}]), "t must be an integer"),
    (_span_with(attributes=[{"key": "a", "value": {"arrayValue": [1, 2]}}]), "arrayValue must be"),
    (_span_with(attributes=[{"key": "a", "value": {"kvlistValue": "s"}}]), "kvlistValue must be"),
    (_span_with(attributes=[{"key": "a", "value": {"intValue": "INF"}}]), "attribute 'a': cannot convert float"),
    (_span_with(attributes=[{"key": "a", "value": {"bytesValue": "a"}}]), "attribute 'a': Invalid base64"),
    (_span_with(attributes={"key": "a"}), "attributes must be a list"),
    (_span_with(traceId="x" * 10_000), "traceId must be 32 hex digits, got 'xxxxxxxxxxxx...xxxxxxxxxxxxx'"),
], ids=["infinite time", "time past 2**64", "negative time", "events not a list", "event time a list",
        "arrayValue a list", "kvlistValue a string", "infinite intValue", "bad base64", "attributes an object",
        "huge id"])
def test_wrong_types_and_huge_numbers_are_bad_lines(tmp_path, line, reason):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line)
    names, bad = _read(path)
    assert names == [] and len(bad) == 1
    assert bad[0].reason.startswith("not a span: " + reason), bad[0].reason
