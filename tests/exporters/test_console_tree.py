"""The console tree of real traces recorded through the core recorder."""

from __future__ import annotations

import io
import re

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from exporters.trace_factory import agent_trace, failing_trace
from llm_otel.core import semconv as sc
from llm_otel.core.recorder import get_recorder
from llm_otel.exporters import ConsoleTreeExporter, from_readable, render_trace

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _estimates(span):
    """The core's token estimates of ``span``, in whichever form the core records them."""
    attrs = span.attributes
    if attrs.get(sc.USAGE_ESTIMATED) is True:  # opted in: in gen_ai.usage.*, flagged
        return attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]
    return attrs[sc.ESTIMATED_INPUT_TOKENS], attrs[sc.ESTIMATED_OUTPUT_TOKENS]


def _feed_one_by_one(exporter, finished):
    """What SimpleSpanProcessor does: export each span as it ends; return output per step."""
    outputs = []
    for span in finished:
        exporter.export([span])
        outputs.append(exporter._out.getvalue())
    return outputs


def test_tree_is_printed_once_when_the_root_ends(spans, capture_content):
    agent_trace()
    finished = spans()
    assert [s.name for s in finished][-1] == "invoke_agent weather"  # children end first
    exporter = ConsoleTreeExporter(out=io.StringIO(), color=False)
    outputs = _feed_one_by_one(exporter, finished)
    assert all(o == "" for o in outputs[:-1])  # nothing before the root ended
    text = outputs[-1]
    lines = text.splitlines()

    est_in, est_out = _estimates(finished[2])  # the answer: usage estimated by the core
    assert lines[0].startswith(f"trace {format(finished[0].context.trace_id, '032x')} · 4 spans · ")
    assert f"tokens in 52 + ~{est_in} out 14 + ~{est_out}" in lines[0]  # exact and estimated apart
    # the cost the record carried, or the one a pricing end hook (llm_otel.usage) computed
    costs = [s.attributes.get(sc.COST_USD) for s in finished]
    assert costs[0] is not None
    assert f"cost ${sum(c or 0 for c in costs):.6f}" in lines[0]
    assert lines[1].startswith("invoke_agent weather ")
    assert lines[2].startswith("├─ chat gpt-4o-mini ")
    assert f"gpt-4o-mini-2024-07-18  tokens in 52 out 14  ${costs[0]:.6f}" in lines[2]
    assert lines[3].startswith("├─ execute_tool get_weather ") and lines[3].rstrip().endswith("OK")
    assert lines[4].startswith("└─ chat gpt-4o-mini ")
    assert f"tokens in ~{est_in} out ~{est_out}" in lines[4]
    assert len({line.index("  OK") for line in lines[1:5]}) == 1  # the columns line up
    summary = {line.split()[0]: line.split() for line in lines[6:9]}
    assert lines[5].split() == ["operation", "count", "wall", "self", "mean"]
    assert summary["chat"][1] == "2" and summary["invoke_agent"][1] == "1" and summary["execute_tool"][1] == "1"
    assert text.endswith("\n\n")
    assert ANSI.search(text) is None  # a StringIO is not a terminal


def test_colour_only_on_a_terminal(spans, capture_content, monkeypatch):
    agent_trace()
    finished = spans()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    tty = Tty()
    ConsoleTreeExporter(out=tty).export(finished)
    assert ANSI.search(tty.getvalue())
    assert ANSI.sub("", tty.getvalue()) == render_trace([from_readable(s) for s in finished]) + "\n"
    plain = io.StringIO()
    ConsoleTreeExporter(out=plain).export(finished)
    assert ANSI.search(plain.getvalue()) is None
    monkeypatch.setenv("NO_COLOR", "1")
    tty2 = Tty()
    ConsoleTreeExporter(out=tty2).export(finished)
    assert ANSI.search(tty2.getvalue()) is None


def test_error_step_and_error_count(spans, capture_content):
    failing_trace()
    out = io.StringIO()
    ConsoleTreeExporter(out=out, color=False).export(spans())
    text = out.getvalue()
    assert "1 error" in text.splitlines()[0]
    chat_line = next(line for line in text.splitlines() if "chat gpt-4o-mini" in line)
    assert "ERROR RuntimeError: rate limited" in chat_line


def test_buffer_is_bounded_and_unfinished_traces_print_at_shutdown(spans):
    tracer = trace.get_tracer("test")
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out=out, color=False, max_traces=2, max_spans_per_trace=3)
    roots = [tracer.start_span(f"root {i}") for i in range(3)]
    for i, root in enumerate(roots):
        ctx = trace.set_span_in_context(root)
        for j in range(5 if i == 2 else 1):
            tracer.start_span(f"child {i}.{j}", context=ctx).end()
    exporter.export(spans())  # children only: the roots are still open
    text = out.getvalue()
    assert text.count("incomplete: root span not seen") == 1 and "child 0.0" in text  # oldest evicted
    assert exporter._buffer.dropped_spans == 2  # trace 2 keeps 3 of its 5 spans
    exporter.shutdown()
    text = out.getvalue()
    assert text.count("incomplete: root span not seen") == 3
    assert "child 2.2" in text and "child 2.3" not in text
    for root in roots:
        root.end()


def test_a_span_with_a_remote_parent_is_a_local_root(spans):
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    ctx = propagate.extract(carrier)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("handle request", context=ctx):
        with tracer.start_as_current_span("inner"):
            pass
    out = io.StringIO()
    ConsoleTreeExporter(out=out, color=False).export(spans())
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trace 0af7651916cd43dd8448eb211c80319c · 2 spans")
    assert lines[1].startswith("handle request") and lines[2].startswith("└─ inner")


def test_a_span_ending_after_its_root_comes_out_on_its_own(spans):
    tracer = trace.get_tracer("test")
    root = tracer.start_span("request")
    late = tracer.start_span("background task", context=trace.set_span_in_context(root))
    root.end()
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out=out, color=False)
    exporter.export(spans())
    late.end()
    exporter.export(spans()[1:])
    first, second = out.getvalue().split("\n\n")[:2]
    assert "· 1 span ·" in first and "request" in first
    assert "· 1 span ·" in second and "background task" in second
    assert len(exporter._buffer) == 0  # nothing waits for a root that has gone


_OUT = io.StringIO()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(BatchSpanProcessor(ConsoleTreeExporter(out=_OUT, color=False)))


def test_under_a_batch_span_processor_with_its_own_provider(capture_content):
    recorder = get_recorder(tracer_provider=_PROVIDER)
    agent_trace(recorder=recorder)
    failing_trace(recorder=recorder)
    assert _PROVIDER.force_flush()
    text = _OUT.getvalue()
    assert text.count("\ntrace ") + text.startswith("trace ") == 2
    assert "└─ chat gpt-4o-mini" in text and "ERROR RuntimeError: rate limited" in text


def test_render_survives_a_cycle_and_missing_parents():
    from llm_otel.exporters.model import SpanRecord

    a = SpanRecord("1" * 32, "a" * 16, "b" * 16, "A", 0, 10)
    b = SpanRecord("1" * 32, "b" * 16, "a" * 16, "B", 1, 5)
    orphan = SpanRecord("1" * 32, "c" * 16, "d" * 16, "orphan", 2, 3)
    text = render_trace([a, b, orphan])
    lines = text.splitlines()
    assert lines[1].startswith("orphan")  # parent not in the trace: shown at top level
    assert lines[2].startswith("A ") and lines[3].startswith("└─ B ")  # the cycle is cut, not lost


@pytest.mark.parametrize("seconds,expected", [(0.0000005, "0 µs"), (0.0005, "500 µs"), (0.25, "250.0 ms"),
                                              (12.5, "12.500 s")])
def test_duration_format(seconds, expected):
    from llm_otel.exporters.console import format_duration

    assert format_duration(seconds) == expected


def _record(span_id, parent, name, start_ms, end_ms, **attributes):
    from llm_otel.exporters.model import SpanRecord

    return SpanRecord("1" * 32, span_id * 16, parent * 16 if parent else None, name, int(start_ms * 1e6),
                      int(end_ms * 1e6), attributes=attributes)


@pytest.mark.parametrize("attributes,expected", [
    ({sc.USAGE_INPUT_TOKENS: 52, sc.USAGE_OUTPUT_TOKENS: 14}, ("52", "14")),  # the API's usage
    ({sc.ESTIMATED_INPUT_TOKENS: 44, sc.ESTIMATED_OUTPUT_TOKENS: 10}, ("~44", "~10")),  # the default for estimates
    ({sc.USAGE_INPUT_TOKENS: 44, sc.USAGE_OUTPUT_TOKENS: 10, sc.USAGE_ESTIMATED: True}, ("~44", "~10")),  # opt-in
    ({sc.USAGE_INPUT_TOKENS: 52, sc.ESTIMATED_OUTPUT_TOKENS: 10}, ("52", "~10")),  # exact in, estimated out
    ({sc.USAGE_INPUT_TOKENS: 52, sc.ESTIMATED_INPUT_TOKENS: 50}, ("52", None)),  # the API's count wins
    ({sc.USAGE_INPUT_TOKENS: True, sc.ESTIMATED_OUTPUT_TOKENS: -3, sc.USAGE_OUTPUT_TOKENS: "7"}, (None, None)),
])
def test_token_counts_read_both_forms_of_an_estimate(attributes, expected):
    from llm_otel.exporters.console import token_counts

    counts = token_counts(attributes)
    assert tuple(None if c is None else str(c) for c in counts) == expected


def test_totals_keep_exact_and_estimated_tokens_apart():
    root = _record("a", None, "agent", 0, 100)
    exact = _record("b", "a", "chat exact", 1, 40, **{sc.USAGE_INPUT_TOKENS: 52, sc.USAGE_OUTPUT_TOKENS: 14})
    estimated = _record("c", "a", "chat estimated", 41, 90, **{sc.ESTIMATED_INPUT_TOKENS: 44,
                                                                 sc.ESTIMATED_OUTPUT_TOKENS: 10})
    opted_in = _record("d", "a", "chat opted in", 91, 99, **{sc.USAGE_INPUT_TOKENS: 6, sc.USAGE_OUTPUT_TOKENS: 2,
                                                              sc.USAGE_ESTIMATED: True})
    lines = render_trace([root, exact, estimated, opted_in], summary=False).splitlines()
    assert "· tokens in 52 + ~50 out 14 + ~12 ·" in lines[0] + " ·"
    assert lines[2].endswith("tokens in 52 out 14") and lines[3].endswith("tokens in ~44 out ~10")
    assert lines[4].endswith("tokens in ~6 out ~2")
    assert "tokens in 52 out 14" in render_trace([root, exact], summary=False).splitlines()[0]  # exact: no "+"
    assert "tokens in ~44 out ~10" in render_trace([root, estimated], summary=False).splitlines()[0]


def test_summary_counts_nested_spans_of_one_operation_once():
    """A chain inside a chain (LangChain's RunnableSequence in a chain) used to show twice the
    trace's duration as the chain's total."""
    spans = [_record("a", None, "outer", 0, 1540, **{"llm_otel.span.kind": "chain"}),
             _record("b", "a", "inner", 10, 1530, **{"llm_otel.span.kind": "chain"}),
             _record("c", "b", "chat 1", 20, 1000, **{sc.OPERATION_NAME: "chat"}),
             _record("d", "b", "tool", 1000, 1100, **{sc.OPERATION_NAME: "execute_tool"}),
             _record("e", "b", "chat 2", 1100, 1500, **{sc.OPERATION_NAME: "chat"})]
    from llm_otel.exporters.console import operation_summary

    rows = {op: (count, round(wall, 3), round(own, 3), round(mean, 3))
            for op, count, wall, own, mean in operation_summary(spans)}
    assert rows == {"chain": (2, 1.54, 0.06, 1.53),  # wall: 1.54 s, not 3.06; self: 20 ms + 40 ms
                    "chat": (2, 1.38, 1.38, 0.69),
                    "execute_tool": (1, 0.1, 0.1, 0.1)}
    assert sum(r[2] for r in rows.values()) == pytest.approx(1.54)  # self times add up to the trace
    text = render_trace(spans)
    assert "3.06" not in text and text.splitlines()[6].split() == ["operation", "count", "wall", "self", "mean"]
    assert text.splitlines()[7].split() == ["chat", "2", "1.380", "s", "1.380", "s", "690.0", "ms"]


def test_summary_counts_parallel_calls_once_in_wall_time():
    from llm_otel.exporters.console import operation_summary

    spans = [_record("a", None, "agent", 0, 1000, **{sc.OPERATION_NAME: "invoke_agent"}),
             _record("b", "a", "chat 1", 0, 800, **{sc.OPERATION_NAME: "chat"}),
             _record("c", "a", "chat 2", 100, 900, **{sc.OPERATION_NAME: "chat"})]
    rows = {op: (count, round(wall, 3), round(own, 3)) for op, count, wall, own, _ in operation_summary(spans)}
    assert rows == {"chat": (2, 0.9, 1.6), "invoke_agent": (1, 1.0, 0.1)}
