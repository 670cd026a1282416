"""Request parameters (also sent through ``extra_body``), usage details, the OpenAI extras on
the metrics, and compatible servers that leave fields out."""

from __future__ import annotations

import inspect
import json

import openai
import pytest

from llm_otel import config
from oai_support import client_for, content, json_reply, llm_spans, local_server, sse_reply

JOKE = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


@pytest.fixture
def latest_semconv(monkeypatch):
    monkeypatch.setenv(config.SEMCONV_OPT_IN_ENV, "gen_ai_latest_experimental")
    config.reload()
    yield
    monkeypatch.delenv(config.SEMCONV_OPT_IN_ENV)
    config.reload()


def test_chat_api_type_and_reasoning_level(cassette, spans):
    from openai.resources.chat import Completions

    if "reasoning_effort" not in inspect.signature(Completions.create).parameters:
        pytest.skip(f"openai {openai.__version__}: no reasoning_effort (extra_body carries it: see below)")
    client = cassette("test_chat/test_chat_reasoning").openai_client()
    client.chat.completions.create(model="gpt-5-nano", reasoning_effort="low",
                                   messages=[{"role": "user", "content": "Count r's in strawberry"}])
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["openai.api.type"] == "chat_completions"
    assert a["gen_ai.request.reasoning.level"] == "low"
    assert a["gen_ai.usage.reasoning.output_tokens"] == 192
    # the API reports 0 audio tokens on every call: recorded only for calls that had audio
    assert "gen_ai.usage.audio.input_tokens" not in a and "gen_ai.usage.audio.output_tokens" not in a


def test_service_tier_auto_is_not_recorded(cassette, spans):
    client = cassette("test_chat/test_chat_with_service_tier").openai_client()
    client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "Say hello"}],
                                   service_tier="auto")
    [span] = llm_spans(spans)
    assert "openai.request.service_tier" not in span.attributes
    assert span.attributes["openai.response.service_tier"] == "priority"  # what the API reports stays


def test_parameters_sent_through_extra_body(cassette, spans):
    """``extra_body`` is part of the request the API receives: recorded like the named arguments."""
    cas = cassette("test_chat/test_chat")
    client = cas.openai_client()
    client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, extra_body={
        "top_k": 40, "reasoning_effort": "high", "service_tier": "flex", "max_completion_tokens": 64})
    sent = json.loads(cas.requests[0][2])
    assert (sent["top_k"], sent["service_tier"]) == (40, "flex")
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.request.top_k"] == 40.0 and isinstance(a["gen_ai.request.top_k"], float)  # a double in v1.41
    assert a["gen_ai.request.reasoning.level"] == "high"
    assert a["openai.request.service_tier"] == "flex"
    assert a["gen_ai.request.max_tokens"] == 64


def test_top_k_is_an_int_in_the_latest_conventions(cassette, spans, latest_semconv):
    client = cassette("test_chat/test_chat").openai_client()
    client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, extra_body={"top_k": 40})
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.request.top_k"] == 40 and isinstance(span.attributes["gen_ai.request.top_k"], int)


def _completion(usage):
    return {"id": "chatcmpl-audio1", "object": "chat.completion", "created": 1741569952,
            "model": "gpt-4o-audio-preview-2025-06-03", "service_tier": "default", "system_fingerprint": "fp_a1b2c3",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "Hi.", "refusal": None, "annotations": []}}],
            "usage": usage}


AUDIO_USAGE = {"prompt_tokens": 2134, "completion_tokens": 62, "total_tokens": 2196,
               "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 48, "cache_write_tokens": 1062},
               "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 40,
                                             "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def test_chat_usage_details(spans, metric_reader):
    with local_server(lambda method, path, body: json_reply(_completion(AUDIO_USAGE))) as served:
        client_for(served).chat.completions.create(model="gpt-4o-audio-preview", messages=JOKE)
    [span] = llm_spans(spans)
    a = span.attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (2134, 62)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 1062
    assert (a["gen_ai.usage.audio.input_tokens"], a["gen_ai.usage.audio.output_tokens"]) == (48, 40)


def test_chat_usage_details_latest(spans, metric_reader, latest_semconv):
    with local_server(lambda method, path, body: json_reply(_completion(AUDIO_USAGE))) as served:
        client_for(served).chat.completions.create(model="gpt-4o-audio-preview", messages=JOKE)
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.usage.cache_write.input_tokens"] == 1062
    assert "gen_ai.usage.cache_creation.input_tokens" not in span.attributes
    [point] = [p for p in metric_reader.points("gen_ai.client.inference.usage.cache_write.input_tokens")
               if p.attributes["gen_ai.request.model"] == "gpt-4o-audio-preview"]  # a counter (cumulative)
    assert point.value == 1062


def test_service_tier_and_fingerprint_on_the_metrics(cassette, spans, metric_reader):
    client = cassette("test_prompt_caching/test_openai_prompt_caching").openai_client()
    client.chat.completions.create(model="gpt-4o-mini", messages=JOKE)
    expected = {"openai.response.service_tier": "default", "openai.response.system_fingerprint": "fp_0392822090"}
    for name in ("gen_ai.client.operation.duration", "gen_ai.client.token.usage"):
        points = metric_reader.points(name)
        assert points, name
        for point in points:
            assert {k: point.attributes.get(k) for k in expected} == expected, name
    [span] = llm_spans(spans)
    assert {k: span.attributes[k] for k in expected} == expected


def test_completion_stream_without_choice_index(spans, capture_content):
    """A compatible server (older vLLM, llama.cpp) may stream choices without ``index``."""
    base = {"id": "cmpl-noindex1", "object": "text_completion", "created": 1741569952, "model": "qwen2.5-0.5b"}
    chunks = [{**base, "choices": [{"text": "Hello", "finish_reason": None, "logprobs": None}]},
              {**base, "choices": [{"text": " world", "finish_reason": None, "logprobs": None}]},
              {**base, "choices": [{"text": "", "finish_reason": "length", "logprobs": None}]}]
    with local_server(lambda method, path, body: sse_reply(chunks)) as served:
        stream = client_for(served).completions.create(model="qwen2.5-0.5b", prompt="Say hello", max_tokens=2,
                                                       stream=True)
        text = "".join(chunk.choices[0].text for chunk in stream)
    assert text == "Hello world"
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.response.id"] == "cmpl-noindex1"
    assert a["gen_ai.response.model"] == "qwen2.5-0.5b"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("length",)
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello world"}], "finish_reason": "length"}]
    assert "llm_otel.stream.closed_early" not in a


def test_chat_stream_without_choice_fields(spans, capture_content):
    base = {"id": "chatcmpl-sparse1", "object": "chat.completion.chunk", "created": 1, "model": "llama-3.2-1b"}
    chunks = [{**base, "choices": [{"delta": {"role": "assistant", "content": "Hi"}}]},
              {**base, "choices": [{"delta": {"content": " there"}, "finish_reason": "stop"}]}]
    with local_server(lambda method, path, body: sse_reply(chunks)) as served:
        stream = client_for(served).chat.completions.create(model="llama-3.2-1b", messages=JOKE, stream=True)
        assert len(list(stream)) == 2
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-sparse1"
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert content(span, "gen_ai.output.messages")[0]["parts"] == [{"type": "text", "content": "Hi there"}]
