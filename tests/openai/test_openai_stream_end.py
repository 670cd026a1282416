"""Streams end their span when the app is done with them, not when garbage is collected:
the SDK's stream helpers left early (``break``, an exception), raw streaming responses read
without ``parse()``; and a stream cut short ends in the finish reason ``error``."""

from __future__ import annotations

import gc
import time

import pytest

import llm_otel
from oai_support import content, llm_spans, needs_sdk

JOKE = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]
CHAT_STREAM = "test_chat/test_chat_streaming_memory_leak_prevention"
CHAT_STREAM_ASYNC = "test_chat/test_chat_async_streaming"
RESPONSES_STREAM = "test_responses/test_responses_streaming_with_context_manager"
RESPONSES_STREAM_ASYNC = "test_responses/test_responses_streaming_async_with_context_manager"


class LeftTheBlock(Exception):
    pass


def _ended_at_exit(spans, metric_reader, counted, started_ns, left_ns):
    """One span, ended by the time the block was left, counted by usage() and the metrics,
    with a duration no longer than the block took."""
    [span] = llm_spans(spans)
    assert span.end_time <= left_ns
    assert span.attributes["llm_otel.stream.closed_early"] is True
    assert counted.requests == 1
    [point] = metric_reader.points("gen_ai.client.operation.duration")
    assert 0 < point.sum <= (left_ns - started_ns) / 1e9
    return span


def _helper(client, api):
    if api == "chat":  # out of beta in openai 1.92
        completions = client.chat.completions
        stream = getattr(completions, "stream", None) or client.beta.chat.completions.stream
        return stream(model="gpt-3.5-turbo", messages=JOKE)
    return client.responses.stream(model="gpt-4.1-nano", input="Count to 5")


@pytest.mark.parametrize("how", ["break", "exception"])
@pytest.mark.parametrize("api, name", [("chat", CHAT_STREAM), ("responses", RESPONSES_STREAM)])
def test_stream_helper_left_early(cassette, spans, metric_reader, api, name, how):
    if api == "responses":
        needs_sdk("responses", "no Responses API")
    client = cassette(name).openai_client()
    with llm_otel.usage() as counted:
        started = time.time_ns()
        try:
            with _helper(client, api) as stream:
                for _event in stream:
                    if how == "exception":
                        raise LeftTheBlock()
                    break
        except LeftTheBlock:
            pass
        left = time.time_ns()
        span = _ended_at_exit(spans, metric_reader, counted, started, left)
    assert stream is not None  # still referenced: the end came from the with-exit, not from GC
    assert span.status.status_code.name == "UNSET"  # the app's own exception is not the call's error


@pytest.mark.parametrize("how", ["break", "exception"])
@pytest.mark.parametrize("api, name", [("chat", CHAT_STREAM_ASYNC), ("responses", RESPONSES_STREAM_ASYNC)])
async def test_async_stream_helper_left_early(cassette, spans, metric_reader, api, name, how):
    if api == "responses":
        needs_sdk("responses", "no Responses API")
    client = cassette(name).openai_client(async_=True)
    async with llm_otel.usage() as counted:
        started = time.time_ns()
        try:
            async with _helper(client, api) as stream:
                async for _event in stream:
                    if how == "exception":
                        raise LeftTheBlock()
                    break
        except LeftTheBlock:
            pass
        left = time.time_ns()
        _ended_at_exit(spans, metric_reader, counted, started, left)
    assert stream is not None


def test_streaming_response_read_without_parse_ends_at_with_exit(cassette, spans, metric_reader):
    client = cassette(CHAT_STREAM).openai_client()
    with llm_otel.usage() as counted:
        started = time.time_ns()
        with client.chat.completions.with_streaming_response.create(model="gpt-3.5-turbo", messages=JOKE,
                                                                    stream=True) as response:
            for _line in response.iter_lines():
                break
        left = time.time_ns()
        [span] = llm_spans(spans)
        assert span.end_time <= left and counted.requests == 1
    [point] = metric_reader.points("gen_ai.client.operation.duration")
    assert point.sum <= (left - started) / 1e9
    assert span.attributes["gen_ai.request.stream"] is True
    assert response is not None


def test_streaming_response_closed_without_with(cassette, spans):
    client = cassette(CHAT_STREAM).openai_client()
    response = client.chat.completions.with_streaming_response.create(model="gpt-3.5-turbo", messages=JOKE,
                                                                      stream=True).__enter__()
    next(response.iter_lines())
    assert llm_spans(spans) == []
    response.close()
    [span] = llm_spans(spans)
    assert span.end_time is not None
    response.close()  # twice is once
    assert len(llm_spans(spans)) == 1


async def test_async_streaming_response_read_without_parse(cassette, spans):
    needs_sdk("responses", "no Responses API")
    client = cassette(RESPONSES_STREAM_ASYNC).openai_client(async_=True)
    async with client.responses.with_streaming_response.create(model="gpt-4.1-nano", input="Count to 5",
                                                               stream=True) as response:
        async for _line in response.iter_lines():
            break
        assert llm_spans(spans) == []
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.request.model"] == "gpt-4.1-nano"


# ---- a stream cut short: finish reason error ---------------------------------------------


def test_chat_stream_abandoned_ends_in_error(cassette, spans, capture_content):
    client = cassette("test_chat/test_chat_streaming_not_consumed").openai_client()
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    first = next(stream).choices[0].delta.content or ""
    del stream
    gc.collect()
    [span] = llm_spans(spans)
    assert span.attributes["llm_otel.run.abandoned"] is True
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    [message] = content(span, "gen_ai.output.messages")
    assert message["finish_reason"] == "error"
    assert message["parts"] == ([{"type": "text", "content": first}] if first else [])


def test_completion_stream_closed_early_ends_in_error(cassette, spans, capture_content):
    name = "test_finish_reasons/TestCompletionsFinishReasons.test_completions_streaming_sets_top_level_finish_reasons"
    client = cassette(name).openai_client()
    stream = client.completions.create(model="davinci-002", prompt="Tell me a joke", stream=True)
    text = "".join(next(stream).choices[0].text for _ in range(2))
    stream.close()
    [span] = llm_spans(spans)
    assert span.attributes["llm_otel.stream.closed_early"] is True
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "error"}]
