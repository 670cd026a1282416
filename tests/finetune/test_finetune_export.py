"""Fine-tuning export of chat calls recorded through the core recorder."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from exporters.trace_factory import agent_trace, chat, failing_trace, user
from llm_otel import config
from llm_otel.core.recorder import get_recorder
from llm_otel.exporters import JsonlFileExporter, from_readable, read_spans
from llm_otel.finetune import (Filters, FineTuningExporter, build_examples, example_from_span, validate_example,
                               write_examples)

SYSTEM_MSG = {"role": "system", "content": "You are a weather assistant."}
USER_MSG = {"role": "user", "content": "What's the weather in Paris?"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]


def _records(spans):
    return [from_readable(s) for s in spans()]


def test_agent_trace_becomes_two_valid_examples(spans, capture_content, tmp_path):
    agent_trace()
    examples, report = build_examples(_records(spans))
    assert report.chat_spans == 2 and report.examples == 2 and report.skipped == []
    assert examples[0] == {"messages": [SYSTEM_MSG, USER_MSG,
                                        {"role": "assistant", "content": None, "tool_calls": [CALL]}],
                           "tools": TOOLS}
    assert examples[1] == {"messages": [SYSTEM_MSG, USER_MSG,
                                        {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C in Paris"},
                                        {"role": "assistant", "content": "It is sunny and 21 C in Paris."}],
                           "tools": TOOLS}
    out = tmp_path / "ft.jsonl"
    assert write_examples(examples, out) == 2
    loaded = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert loaded == examples and all(validate_example(e) == [] for e in loaded)


def test_from_the_jsonl_trace_file(spans, capture_content, tmp_path):
    agent_trace(question="Wetter in München?", city="München")
    path = tmp_path / "traces.jsonl"
    JsonlFileExporter(path).export(spans())
    read, bad = read_spans(path)
    examples, report = build_examples(read)
    assert bad == [] and report.examples == 2
    assert examples[1]["messages"][-1]["content"] == "It is sunny and 21 C in München."
    assert json.loads(examples[0]["messages"][2]["tool_calls"][0]["function"]["arguments"]) == {"city": "München"}


def test_skipped_records_say_why(spans, monkeypatch):
    recorder = get_recorder()
    chat(recorder, [user("no capture")], [{"role": "assistant", "parts": [{"type": "text", "content": "x"}]}])
    monkeypatch.setenv(config.CAPTURE_CONTENT_ENV, "true")
    monkeypatch.setenv(config.CONTENT_MAX_LENGTH_ENV, "40")
    config.reload()
    try:
        failing_trace()
        chat(recorder, [user("short")], [{"role": "assistant", "parts": [{"type": "text", "content": "y" * 100}]}])
        chat(recorder, [user("cut")], [{"role": "assistant", "parts": [{"type": "text", "content": "partial"}],
                                        "finish_reason": "length"}], finish_reason="length")
        chat(recorder, [user("image?"), {"role": "user", "parts": [{"type": "uri", "uri": "https://x/y.png",
                                                                    "modality": "image"}]}],
             [{"role": "assistant", "parts": [{"type": "text", "content": "a cat"}]}])
    finally:
        monkeypatch.delenv(config.CAPTURE_CONTENT_ENV)
        monkeypatch.delenv(config.CONTENT_MAX_LENGTH_ENV)
        config.reload()
    examples, report = build_examples(_records(spans))
    assert examples == []
    assert report.counts() == {"content not captured": 1, "error span": 1, "truncated content": 1,
                               "output cut off": 1, "unsupported content part": 1}
    text = report.text()
    assert "skipped     1  truncated content" in text and "gen_ai.output.messages" in text
    assert "finish_reason=length" in text and "'uri' in a user message" in text


def test_filters_model_tag_date(spans, capture_content):
    agent_trace(tags=("prod", "support"))
    agent_trace(question="And in Rome?", city="Rome", tags=("dev",))
    chat(get_recorder(), [user("hi")], [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}]}],
         model="gpt-3.5-turbo", tools=None, tags=["prod"])
    records = _records(spans)

    examples, report = build_examples(records, Filters(tag="support"))  # tag on the trace root only
    assert report.examples == 2 and report.counts() == {"filtered: tag": 3}
    assert all("Paris" in e["messages"][1]["content"] for e in examples)

    _, report = build_examples(records, Filters(tag="prod"))  # root tag, or the span's own
    assert report.examples == 3

    examples, report = build_examples(records, Filters(model="gpt-3.5*"))
    assert report.examples == 1 and examples[0]["messages"][-1] == {"role": "assistant", "content": "hello"}
    assert "tools" not in examples[0] and report.counts() == {"filtered: model": 4}

    now = datetime.now(timezone.utc)
    assert build_examples(records, Filters(since=now - timedelta(minutes=5)))[1].examples == 5
    _, report = build_examples(records, Filters(until=now - timedelta(minutes=5)))
    assert report.examples == 0 and report.counts() == {"filtered: date": 5}


def test_feedback_on_the_root_or_in_a_feedback_span(spans, capture_content):
    agent_trace(feedback={"thumbs": 1.0})
    agent_trace(question="Rome?", city="Rome", feedback={"thumbs": 0.0}, feedback_span=True)
    agent_trace(question="Oslo?", city="Oslo", feedback={"accuracy": 0.9}, feedback_span=True)
    agent_trace(question="Nairobi?", city="Nairobi")
    records = _records(spans)
    examples, report = build_examples(records, Filters(min_feedback=0.5))
    assert report.examples == 4
    assert {e["messages"][1]["content"] for e in examples} == {"What's the weather in Paris?", "Oslo?"}
    details = [s.detail for s in report.skipped]
    assert details.count("feedback 0.0 < 0.5") == 2 and details.count("no feedback") == 2

    examples, report = build_examples(records, Filters(feedback_name="thumbs", min_feedback=0.5))
    assert report.examples == 2 and {e["messages"][1]["content"] for e in examples} == {
        "What's the weather in Paris?"}


def test_duplicates_are_written_once(spans, capture_content):
    agent_trace()
    agent_trace()
    examples, report = build_examples(_records(spans))
    assert len(examples) == 2 and report.counts() == {"duplicate": 2}


def test_an_invalid_conversation_is_reported_not_written(spans, capture_content):
    chat(get_recorder(), [{"role": "assistant", "parts": [{"type": "text", "content": "I start"}]}],
         [{"role": "assistant", "parts": [{"type": "text", "content": "and continue"}]}])
    examples, report = build_examples(_records(spans))
    assert examples == [] and report.counts() == {"failed validation": 1}
    assert "two assistant messages in a row" in report.skipped[0].detail


_PROVIDER = TracerProvider()


def test_live_exporter_appends_each_finished_trace(capture_content, tmp_path):
    exporter = FineTuningExporter(tmp_path / "live.jsonl", Filters(tag="prod"))
    _PROVIDER.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = get_recorder(tracer_provider=_PROVIDER)
    agent_trace(recorder=recorder)
    lines = (tmp_path / "live.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(validate_example(json.loads(line)) == [] for line in lines)
    agent_trace(recorder=recorder, tags=("dev",))
    assert len((tmp_path / "live.jsonl").read_text().splitlines()) == 2
    assert exporter.report.counts() == {"filtered: tag": 2}
    _PROVIDER.shutdown()


def test_semconv_shape_variants_convert():
    from llm_otel.exporters.model import SpanRecord

    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": json.dumps([
            {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
            {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
            {"role": "assistant", "parts": [{"type": "reasoning", "content": "hmm"},
                                            {"type": "tool_call", "id": "c1", "name": "f", "arguments": None},
                                            {"type": "tool_call", "id": "c2", "name": "g",
                                             "arguments": '{"x": 1}'}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": {"ok": True}},
                                       {"type": "tool_call_response", "id": "c2", "response": "done"}]}]),
        "gen_ai.tool.definitions": json.dumps([{"type": "function", "function": {"name": "f"}},
                                               {"type": "function", "name": "g"}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "ok"}],
                                               "finish_reason": "stop"}]),
    }
    example = example_from_span(SpanRecord("1" * 32, "2" * 16, None, "chat m", 0, 1, attributes=attrs))
    assert example == {"messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"ok": true}'},
        {"role": "tool", "tool_call_id": "c2", "content": "done"},
        {"role": "assistant", "content": "ok"}],
        "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "g"}}]}
    assert validate_example(example) == []


def _msgs(*messages, tools=None):
    example = {"messages": list(messages)}
    if tools is not None:
        example["tools"] = tools
    return example


A_CALL = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWER = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
FINAL = {"role": "assistant", "content": "It is sunny."}


@pytest.mark.parametrize("example,error", [
    (_msgs(USER_MSG, USER_MSG, FINAL), "two user messages in a row"),
    (_msgs(USER_MSG, FINAL, FINAL), "two assistant messages in a row"),
    (_msgs(USER_MSG, A_CALL, FINAL), "not answered before a assistant message"),
    (_msgs(USER_MSG, A_CALL, {**ANSWER, "tool_call_id": "call_9"}, FINAL), "answers no pending tool call"),
    (_msgs(USER_MSG, {"role": "assistant", "content": ""}), "empty assistant turn"),
    (_msgs(USER_MSG, {"role": "assistant", "content": None, "tool_calls": []}), "empty assistant turn"),
    (_msgs(USER_MSG, A_CALL, ANSWER), "last message must be the assistant turn"),
    (_msgs(USER_MSG, SYSTEM_MSG, FINAL), "system message not first"),
    (_msgs(SYSTEM_MSG, FINAL), "assistant message before any user message"),
    (_msgs({"role": "narrator", "content": "x"}, FINAL), "unknown role"),
    (_msgs(USER_MSG, {"role": "assistant", "content": None, "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": "{not json"}}]}), "arguments are not valid JSON"),
    (_msgs(USER_MSG, {"role": "assistant", "content": None, "tool_calls": [CALL, CALL]}), "duplicate tool call id"),
    (_msgs(USER_MSG, FINAL, tools=[{"type": "function", "function": {}}]), "function without a name"),
    ({"messages": []}, "non-empty list"),
    (_msgs({**USER_MSG, "extra": 1}, FINAL), "unknown keys"),
])
def test_validation_rejects(example, error):
    errors = validate_example(example)
    assert any(error in e for e in errors), errors


def test_validation_accepts_a_tool_round_trip_and_a_final_tool_call():
    assert validate_example(_msgs(SYSTEM_MSG, USER_MSG, A_CALL, ANSWER, FINAL, tools=TOOLS)) == []
    assert validate_example(_msgs(USER_MSG, A_CALL, tools=TOOLS)) == []  # teaches the call itself


def test_examples_do_not_depend_on_how_tokens_were_recorded():
    """Token counts, exact or estimated, in either attribute form, do not change an example."""
    from llm_otel.core.semconv import ESTIMATED_INPUT_TOKENS, ESTIMATED_OUTPUT_TOKENS
    from llm_otel.exporters.model import SpanRecord

    content = {"gen_ai.operation.name": "chat",
               "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
               "gen_ai.output.messages": json.dumps([{"role": "assistant",
                                                      "parts": [{"type": "text", "content": "hello"}]}])}
    forms = [{}, {"gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 2},
             {"gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 2, "llm_otel.usage.estimated": True},
             {ESTIMATED_INPUT_TOKENS: 5, ESTIMATED_OUTPUT_TOKENS: 2}]
    examples = [example_from_span(SpanRecord("1" * 32, "2" * 16, None, "chat m", 0, 1, attributes={**content, **f}))
                for f in forms]
    assert all(e == examples[0] for e in examples)
    assert examples[0] == {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
