"""The conventions' events, log records with an event name (digest §7):
gen_ai.client.inference.operation.details (EVENT_ONLY / SPAN_AND_EVENT; inference only) and
gen_ai.evaluation.result (llm_otel.record_feedback)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import openai
import pytest

import llm_otel
from conv_support import paced_server, span_named
from support.logs import as_json, event_name

DETAILS = "gen_ai.client.inference.operation.details"
EVALUATION = "gen_ai.evaluation.result"
CONTENT = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions")
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Say hello"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def _linked(record, span) -> None:
    """The record names the span it describes, and is stamped with the span's end."""
    ctx = span.get_span_context()
    assert (record.trace_id, record.span_id) == (ctx.trace_id, ctx.span_id)
    assert int(record.trace_flags) == int(ctx.trace_flags)


@pytest.mark.parametrize("mode", ["EVENT_ONLY", "SPAN_AND_EVENT"])
def test_details_event(spans, logs, content_mode, mode):
    content_mode(mode)
    with paced_server() as served:
        served.client().chat.completions.create(model="conv-details", messages=MESSAGES, tools=TOOLS,
                                                temperature=0.2)
    span = span_named(spans, "chat conv-details")
    [record] = logs(DETAILS)
    assert event_name(record) == DETAILS
    assert record.body is None
    _linked(record, span)
    assert record.timestamp == span.end_time
    attrs = record.attributes
    # every attribute of the span, the same value (content aside: JSON text there)
    for key, value in span.attributes.items():
        if key not in CONTENT:
            assert attrs[key] == value, key
    assert (attrs["gen_ai.operation.name"], attrs["gen_ai.provider.name"], attrs["gen_ai.request.temperature"]) == \
        ("chat", "openai", 0.2)
    # content structured, not JSON text: system messages of the chat history stay in it
    messages = attrs["gen_ai.input.messages"]
    assert isinstance(messages, (list, tuple)) and all(isinstance(m, Mapping) for m in messages)
    assert [(m["role"], [dict(p) for p in m["parts"]]) for m in messages] == [
        ("system", [{"type": "text", "content": "Answer briefly."}]),
        ("user", [{"type": "text", "content": "Say hello"}])]
    [definition] = attrs["gen_ai.tool.definitions"]
    assert (definition["type"], definition["name"]) == ("function", "get_weather")
    [output] = attrs["gen_ai.output.messages"]
    assert output["role"] == "assistant" and isinstance(output["parts"][0], Mapping)
    assert output["finish_reason"] in ("stop", "tool_call")
    on_span = {key for key in CONTENT if key in span.attributes}
    if mode == "EVENT_ONLY":
        assert not on_span
    else:  # the same content on the span, as JSON text
        assert on_span == {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"}
        for key in on_span:
            assert json.loads(span.attributes[key]) == json.loads(as_json(attrs[key]))


@pytest.mark.parametrize("mode", ["NO_CONTENT", "SPAN_ONLY", "true", "false"])
def test_no_details_event_without_event_mode(spans, logs, content_mode, mode):
    content_mode(mode)
    with paced_server() as served:
        served.client().chat.completions.create(model="conv-no-details", messages=MESSAGES)
    span = span_named(spans, "chat conv-no-details")
    assert logs(DETAILS) == []
    has_content = "gen_ai.input.messages" in span.attributes
    assert has_content is (mode in ("SPAN_ONLY", "true"))  # true means SPAN_ONLY


def test_details_event_of_a_failed_call(spans, logs, content_mode):
    content_mode("EVENT_ONLY")
    with paced_server(reply=lambda body: (500, {"error": {"message": "boom", "type": "server_error"}})) as served:
        with pytest.raises(openai.InternalServerError):
            served.client().chat.completions.create(model="conv-details-fail", messages=MESSAGES)
    span = span_named(spans, "chat conv-details-fail")
    [record] = logs(DETAILS)
    _linked(record, span)
    assert record.attributes["error.type"] == "InternalServerError"
    assert record.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert [m["role"] for m in record.attributes["gen_ai.input.messages"]] == ["system", "user"]
    assert "gen_ai.output.messages" not in record.attributes


def test_details_event_is_for_inference_only(spans, logs, content_mode, cassette):
    content_mode("SPAN_AND_EVENT")
    cassette("test_embeddings/test_embeddings").openai_client().embeddings.create(
        model="conv-details-embed", input="Tell me a joke about opentelemetry")
    with paced_server() as served:
        served.client().completions.create(model="conv-details-legacy", prompt="Say hello")
    span_named(spans, "embeddings conv-details-embed")
    legacy = span_named(spans, "text_completion conv-details-legacy")
    [record] = logs(DETAILS)  # the text completion's; embeddings have none
    _linked(record, legacy)
    assert record.attributes["gen_ai.operation.name"] == "text_completion"


# ---- gen_ai.evaluation.result ----------------------------------------------------------------


def _answered(served):
    @llm_otel.track(name="conv-answer")
    def answer():
        served.client().chat.completions.create(model="conv-evaluated", messages=MESSAGES)
        return llm_otel.get_current_trace_id()
    return answer()


def test_evaluation_result_of_a_finished_trace(spans, logs):
    with paced_server() as served:
        trace_id = _answered(served)
    root, llm = span_named(spans, "conv-answer"), span_named(spans, "chat conv-evaluated")
    llm_otel.record_feedback(trace_id, "helpful", 0.75, reason="answered the question")
    llm_otel.record_feedback(trace_id, "thumbs_up", True)
    llm_otel.record_feedback(llm, "tone", "friendly")
    scored, thumbs, tone = logs(EVALUATION)
    assert [r.body for r in (scored, thumbs, tone)] == [None, None, None]
    # a number is the score's value, a bool or string its label
    assert dict(scored.attributes) == {"gen_ai.evaluation.name": "helpful", "gen_ai.evaluation.score.value": 0.75,
                                       "gen_ai.evaluation.explanation": "answered the question"}
    assert dict(thumbs.attributes) == {"gen_ai.evaluation.name": "thumbs_up", "gen_ai.evaluation.score.label": "true"}
    assert dict(tone.attributes) == {"gen_ai.evaluation.name": "tone", "gen_ai.evaluation.score.label": "friendly"}
    # a trace id: the trace's root is what is evaluated; a span: that span
    _linked(scored, root)
    _linked(thumbs, root)
    _linked(tone, llm)


def test_evaluation_result_of_an_open_trace(spans, logs):
    with paced_server() as served:
        @llm_otel.track(name="conv-open-root")
        def answer():
            served.client().chat.completions.create(model="conv-open-evaluated", messages=MESSAGES)
            llm_otel.record_feedback(llm_otel.get_current_trace_id(), "grounded", 1)
        answer()
    [record] = logs(EVALUATION)
    _linked(record, span_named(spans, "conv-open-root"))
    assert dict(record.attributes) == {"gen_ai.evaluation.name": "grounded", "gen_ai.evaluation.score.value": 1.0}


def test_evaluation_result_of_a_span_in_an_open_trace(spans, logs):
    """An evaluation SHOULD be parented to the GenAI operation span being evaluated (digest §7.2).
    Given that span while the trace's @track root is still open, record_feedback parents the
    event to the root instead (after the root ended, the same call parents it to the span:
    test_evaluation_result_of_a_finished_trace)."""
    with paced_server() as served:
        @llm_otel.track(name="conv-open-root-2")
        def answer():
            served.client().chat.completions.create(model="conv-open-evaluated-2", messages=MESSAGES)
            llm_otel.record_feedback(span_named(spans, "chat conv-open-evaluated-2"), "tone", "friendly")
        answer()
    [record] = logs(EVALUATION)
    _linked(record, span_named(spans, "chat conv-open-evaluated-2"))
