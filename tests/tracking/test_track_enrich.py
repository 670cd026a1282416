"""update_current_span / update_current_trace / record_feedback: where each piece lands."""

from __future__ import annotations

import asyncio
import threading

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import llm_otel
from llm_otel import record_feedback, track, update_current_span, update_current_trace
from tracking.conftest import by_name, parent_id

tracer = trace.get_tracer("tests.tracking")


def test_update_current_span_on_a_tracked_span_survives_its_end(spans):
    @track(tags=["a"])
    def f(x):
        update_current_span(name="renamed", tags=["b", "a"], metadata={"model": "m1", "k": [1, 2]},
                            input={"prompt": "p"}, output="custom output")
        return "ignored return"

    f(1)
    (span,) = spans()
    assert span.name == "renamed"
    assert span.attributes["llm_otel.tags"] == ("a", "b")
    assert span.attributes["llm_otel.metadata.model"] == "m1"
    assert span.attributes["llm_otel.metadata.k"] == "[1, 2]"
    assert span.attributes["llm_otel.input"] == '{"prompt": "p"}'
    assert span.attributes["llm_otel.output"] == "custom output"


def test_update_current_span_reaches_the_innermost_span_only(spans):
    @track
    def inner():
        update_current_span(metadata={"where": "inner"})

    @track
    def outer():
        inner()

    outer()
    got = by_name(spans())
    assert got["inner"].attributes["llm_otel.metadata.where"] == "inner"
    assert "llm_otel.metadata.where" not in got["outer"].attributes


def test_update_current_span_on_a_plain_otel_span(spans):
    with tracer.start_as_current_span("mine"):
        update_current_span(tags=["x"], metadata={"n": 1}, input=[1, 2], output={"ok": True})
    (span,) = spans()
    assert span.attributes["llm_otel.tags"] == ("x",)
    assert span.attributes["llm_otel.metadata.n"] == 1
    assert span.attributes["llm_otel.input"] == "[1, 2]"
    assert span.attributes["llm_otel.output"] == '{"ok": true}'


def test_update_current_trace_lands_on_the_open_root_from_any_depth(spans):
    @track
    def leaf():
        update_current_trace(tags=["prod"], metadata={"tenant": "acme"}, user_id="u-1", session_id="s-9",
                             feedback_scores=[{"name": "relevance", "value": 0.8, "reason": "on topic"},
                                              {"name": "thumbs", "value": True}])
        update_current_trace(tags=["prod", "beta"], metadata={"tenant": "acme2"})

    @track(name="llm_chain", tags=["chain"])
    def chain():
        leaf()

    chain()
    got = by_name(spans())
    root, child = got["llm_chain"], got["leaf"]
    assert root.attributes["llm_otel.tags"] == ("chain", "prod", "beta")
    assert root.attributes["llm_otel.metadata.tenant"] == "acme2"
    assert root.attributes["user.id"] == "u-1"
    assert root.attributes["session.id"] == "s-9"
    assert root.attributes["llm_otel.feedback.relevance.value"] == 0.8
    assert root.attributes["llm_otel.feedback.relevance.reason"] == "on topic"
    assert root.attributes["llm_otel.feedback.thumbs.value"] is True
    assert not any(k.startswith(("llm_otel.feedback", "user.", "session.")) for k in child.attributes)
    assert child.events == ()


def test_the_local_root_under_a_foreign_parent_is_the_first_tracked_span(spans):
    @track
    def handler():
        update_current_trace(session_id="s")

    with tracer.start_as_current_span("http request"):
        handler()
    got = by_name(spans())
    assert got["handler"].attributes["session.id"] == "s"
    assert "session.id" not in got["http request"].attributes


async def test_after_the_root_ended_trace_data_is_an_event_on_the_current_span(spans):
    release = asyncio.Event()

    @track
    async def background():
        await release.wait()
        update_current_trace(tags=["late"], user_id="u")

    tasks = []

    @track(name="request")
    async def request():
        tasks.append(asyncio.ensure_future(background()))  # outlives its parent

    await request()
    release.set()
    await tasks[0]
    got = by_name(spans())
    assert "user.id" not in got["request"].attributes
    (event,) = got["background"].events
    assert event.name == "llm_otel.trace.update"
    assert event.attributes["user.id"] == "u" and event.attributes["llm_otel.tags"] == ("late",)
    assert got["background"].context.trace_id == got["request"].context.trace_id


def test_with_no_recording_span_trace_data_goes_to_a_small_span_in_the_trace(spans):
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with trace.use_span(NonRecordingSpan(remote)):
        update_current_trace(metadata={"k": "v"})
    (span,) = spans()
    assert span.name == "llm_otel.trace.update"
    assert span.context.trace_id == 0x1234 and span.parent.span_id == 0x5678
    assert span.attributes["llm_otel.metadata.k"] == "v"


def test_outside_any_trace_and_bad_arguments_are_harmless(spans, caplog):
    update_current_trace(tags=["x"])
    update_current_span(name="x")

    @track
    def f():
        update_current_trace(feedback_scores=[{"name": "ok", "value": 1}, {"value": 2}, "junk",
                                              {"name": "bad", "value": object()}])
        update_current_span(metadata="not a dict")
        return 1

    assert f() == 1
    (span,) = spans()
    assert span.attributes["llm_otel.feedback.ok.value"] == 1.0
    assert not any(".bad." in k for k in span.attributes)
    assert "feedback score" in caplog.text


def test_record_feedback_after_the_trace_ended_is_a_child_of_the_root(spans):
    @track
    def child():
        pass

    @track(name="root")
    def root():
        child()
        return llm_otel.get_current_trace_id()

    trace_id = root()
    assert len(trace_id) == 32
    record_feedback(trace_id, "thumbs", 1, reason="helpful")
    got = spans()
    root_span = next(s for s in got if s.name == "root")
    feedback = got[-1]
    assert feedback.name == "feedback"
    assert feedback.context.trace_id == root_span.context.trace_id
    assert parent_id(feedback) == root_span.context.span_id
    assert feedback.attributes["llm_otel.feedback.thumbs.value"] == 1.0
    assert feedback.attributes["llm_otel.feedback.thumbs.reason"] == "helpful"
    assert feedback.attributes["llm_otel.span.kind"] == "feedback"


def test_record_feedback_with_a_span_context_from_elsewhere(spans):
    ctx = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    with tracer.start_as_current_span("unrelated current span"):
        record_feedback(ctx, "accuracy", 0.25)
    feedback = next(s for s in spans() if s.name == "feedback")
    assert feedback.context.trace_id == 0xABC and parent_id(feedback) == 0xDEF


def test_record_feedback_for_an_unknown_trace_id_shares_one_stand_in_parent(spans):
    record_feedback(0x42, "a", 1)
    record_feedback("0x" + "0" * 30 + "42", "b", "good")
    first, second = spans()
    assert first.context.trace_id == second.context.trace_id == 0x42
    assert parent_id(first) == parent_id(second)
    assert second.attributes["llm_otel.feedback.b.value"] == "good"


def test_record_feedback_while_the_root_is_open_sets_it_on_the_root(spans):
    @track(name="root")
    def root():
        done = threading.Event()
        span = trace.get_current_span()
        threading.Thread(target=lambda: (record_feedback(span.get_span_context(), "live", 5), done.set())).start()
        done.wait(5)

    root()
    (span,) = spans()
    assert span.attributes["llm_otel.feedback.live.value"] == 5.0


def test_record_feedback_rejects_bad_input_without_raising(spans):
    record_feedback("not-hex", "x", 1)
    record_feedback(0, "x", 1)
    record_feedback(0x42, "", 1)
    record_feedback(0x42, "x", [1])
    assert spans() == ()
