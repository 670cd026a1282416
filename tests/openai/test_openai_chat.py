"""Chat completions, sync and async, plain and streamed, replayed from recorded traffic."""

from __future__ import annotations

import gc

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from oai_support import OPENAI_VERSION, content, llm_spans
from support.estimates import estimated_tokens


def test_chat_plain(cassette, spans, metric_reader):
    client = cassette("test_chat/test_chat").openai_client()
    result = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}])
    assert result.id == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
    [span] = llm_spans(spans)
    assert span.name == "chat gpt-3.5-turbo"
    assert span.kind is SpanKind.CLIENT
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-3.5-turbo"
    assert a["gen_ai.response.model"] == "gpt-3.5-turbo-0125"
    assert a["gen_ai.response.id"] == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["server.address"] == "api.openai.com"
    assert a["server.port"] == 443
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__token__type="input") == result.usage.prompt_tokens
    assert metric_reader.count("gen_ai.client.operation.duration") == 1


JOKE = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


def test_chat_content_captured(cassette, spans, capture_content):
    client = cassette("test_chat/test_chat").openai_client()
    messages = [{"role": "system", "content": "You are funny."}] + JOKE
    result = client.chat.completions.create(model="gpt-3.5-turbo", messages=messages, temperature=0.5,
                                            top_p=0.9, max_tokens=100, seed=7, stop="END",
                                            frequency_penalty=0.1, presence_penalty=0.2)
    [span] = llm_spans(spans)
    a = span.attributes
    # a system message is part of the chat's history: an input message (system instructions
    # are for instructions given apart, as the Responses API's instructions)
    assert content(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "You are funny."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Tell me a joke about opentelemetry"}]}]
    assert "gen_ai.system_instructions" not in a
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": result.choices[0].message.content}],
         "finish_reason": "stop"}]
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["gen_ai.request.max_tokens"] == 100
    assert a["gen_ai.request.seed"] == 7
    assert tuple(a["gen_ai.request.stop_sequences"]) == ("END",)
    assert a["gen_ai.request.frequency_penalty"] == 0.1
    assert a["gen_ai.request.presence_penalty"] == 0.2
    assert "gen_ai.usage.input_tokens" in a and "llm_otel.usage.estimated" not in a


async def test_chat_async(cassette, spans):
    client = cassette("test_chat/test_with_asyncio_run").openai_client(async_=True)
    result = await client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == result.id == "chatcmpl-ANnyEsyt6uxfIIA7lcPLH95lKcEeK"
    assert span.attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens


def _consume(stream):
    text, reasons = [], []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    return "".join(text), reasons


def test_chat_stream_full(cassette, spans, metric_reader, estimate_mode):
    client = cassette("test_chat/test_chat_streaming_memory_leak_prevention").openai_client()
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    text, reasons = _consume(stream)
    assert text and reasons == ["stop"]
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.response.id"] == "chatcmpl-908MECg5dMyTTbJEltubwQXeeWlBA"
    assert a["gen_ai.response.model"] == "gpt-3.5-turbo-0125"
    assert a["gen_ai.request.stream"] is True
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["openai.response.system_fingerprint"] == "fp_2b778c6b35"
    # no usage in the stream: counted locally, as estimates, never as the API's usage
    assert estimated_tokens(a, estimate_mode, "input") > 0 and estimated_tokens(a, estimate_mode, "output") > 0
    assert "gen_ai.output.messages" not in a  # content stays off
    assert metric_reader.count("gen_ai.client.operation.time_to_first_chunk") == 1
    assert metric_reader.count("gen_ai.client.operation.time_per_output_chunk") > 1
    assert metric_reader.count("gen_ai.client.operation.duration") == 1


def test_chat_stream_content(cassette, spans, capture_content):
    client = cassette("test_chat/test_chat_streaming_memory_leak_prevention").openai_client()
    text, _ = _consume(client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True))
    [span] = llm_spans(spans)
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}]


def test_chat_stream_with_block(cassette, spans):
    client = cassette("test_chat/test_chat_streaming_memory_leak_prevention").openai_client()
    with client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True) as stream:
        assert isinstance(stream, openai.Stream)
        first = next(stream)
        assert first.id == "chatcmpl-908MECg5dMyTTbJEltubwQXeeWlBA"
        assert llm_spans(spans) == []  # still open
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-908MECg5dMyTTbJEltubwQXeeWlBA"
    assert span.status.status_code is StatusCode.UNSET


def test_chat_stream_partial_then_close(cassette, spans, capture_content):
    client = cassette("test_chat/test_chat_streaming_partial_consumption").openai_client()
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    pieces = []
    for i, chunk in enumerate(stream):
        pieces.append(chunk.choices[0].delta.content or "")
        if i == 3:
            break
    assert llm_spans(spans) == []
    stream.close()
    stream.close()  # twice is once
    [span] = llm_spans(spans)
    # cut before its end: the finish reason that never came is an error, as the conventions say
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    [message] = content(span, "gen_ai.output.messages")
    assert message["parts"][0]["content"] == "".join(pieces) and message["finish_reason"] == "error"


def test_chat_stream_not_consumed_then_collected(cassette, spans):
    client = cassette("test_chat/test_chat_streaming_not_consumed").openai_client()
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    assert llm_spans(spans) == []
    del stream
    gc.collect()
    [span] = llm_spans(spans)
    assert span.name == "chat gpt-3.5-turbo"
    assert span.end_time is not None


def test_chat_stream_exception_during_consumption(cassette, spans):
    client = cassette("test_chat/test_chat_streaming_exception_during_consumption").openai_client()
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    boom = RuntimeError("connection dropped")

    # the SDK's own iterator fails mid-stream: make the underlying generator raise
    inner = stream.__wrapped__._iterator

    def failing():
        yield next(inner)
        raise boom

    stream.__wrapped__._iterator = failing()
    with pytest.raises(RuntimeError) as caught:
        for _ in stream:
            pass
    assert caught.value is boom
    [span] = llm_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    stream.close()
    assert len(llm_spans(spans)) == 1  # ended once


async def test_chat_stream_async(cassette, spans, metric_reader):
    client = cassette("test_chat/test_chat_async_streaming").openai_client(async_=True)
    stream = await client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    text = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    assert text
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-9AGW3t9akkLW9f5f93B7mOhiqhNMC"
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("stop",)
    assert metric_reader.count("gen_ai.client.operation.time_to_first_chunk") == 1


async def test_chat_stream_async_with_block(cassette, spans):
    client = cassette("test_chat/test_chat_async_streaming").openai_client(async_=True)
    async with await client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True) as stream:
        assert isinstance(stream, openai.AsyncStream)
        await stream.__anext__()
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-9AGW3t9akkLW9f5f93B7mOhiqhNMC"


def test_chat_stream_connection_lost_mid_stream(cassette, spans, metric_reader):
    """The recorded SSE body is cut after a few events and the connection then fails."""
    import httpx

    [recorded] = [it for it in cassette("test_chat/test_chat_streaming_exception_during_consumption").interactions
                  if it.request_body.startswith('{"messages": ')]
    events = recorded.body.split(b"\n\n")
    lost = httpx.ReadError("connection lost")

    def body():
        for event in events[:3]:
            yield event + b"\n\n"
        raise lost

    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body()))
    client = openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1", max_retries=0,
                           http_client=httpx.Client(transport=transport))
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    received = []
    # openai < 3 lets httpx's error through; 3.x raises APIConnectionError from it
    expected = openai.APIConnectionError if OPENAI_VERSION >= (3, 0) else httpx.ReadError
    with pytest.raises(expected) as caught:
        for chunk in stream:
            received.append(chunk)
    assert lost in (caught.value, caught.value.__cause__)
    assert len(received) == 3
    [span] = llm_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == expected.__name__
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-908MECg5dMyTTbJEltubwQXeeWlBA"
    assert metric_reader.count("gen_ai.client.operation.duration", error__type=expected.__name__) == 1
