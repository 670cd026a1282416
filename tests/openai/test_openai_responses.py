"""The Responses API: plain, request params, service tier, tools, reasoning, parse, streams."""

from __future__ import annotations

import inspect
import json

import openai
import pydantic
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from oai_support import content, llm_spans, needs_responses_api

pytestmark = needs_responses_api
R = "test_responses/"


def test_responses_plain(cassette, spans, metric_reader):
    client = cassette(R + "test_responses").openai_client()
    response = client.responses.create(model="gpt-4.1-nano", input="What is the capital of France?")
    [span] = llm_spans(spans)
    a = span.attributes
    assert span.name == "chat gpt-4.1-nano"
    assert a["gen_ai.response.id"] == response.id == "resp_685ff88d1f7c8199980b00a1f8b7467b05baa2d6acc60d4f"
    assert a["gen_ai.response.model"] == "gpt-4.1-nano-2025-04-14"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (14, 8)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 0
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["openai.response.service_tier"] == "default"
    assert "gen_ai.input.messages" not in a
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__token__type="output") == 8


def test_responses_request_params_and_content(cassette, spans, capture_content):
    client = cassette(R + "test_responses_with_request_params").openai_client()
    response = client.responses.create(model="gpt-4.1-nano", input="What is the capital of France?",
                                       instructions="Answer briefly.", max_output_tokens=100,
                                       temperature=0.7, top_p=0.9)
    [span] = llm_spans(spans)
    a = span.attributes
    assert (a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"],
            a["gen_ai.request.top_p"]) == (100, 0.7, 0.9)
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Answer briefly."}]
    assert content(span, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}]
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": response.output_text}], "finish_reason": "stop"}]


def _create_takes(name: str) -> bool:
    try:
        from openai.resources.responses import Responses
    except ImportError:  # before 1.66: the module is skipped
        return False
    return name in inspect.signature(Responses.create).parameters


@pytest.mark.skipif(not _create_takes("service_tier"),
                    reason=f"openai {openai.__version__}: responses.create() takes no service_tier yet")
def test_responses_service_tier(cassette, spans):
    client = cassette(R + "test_responses_with_service_tier").openai_client()
    client.responses.create(model="gpt-5", input="Say hello", service_tier="priority")
    [span] = llm_spans(spans)
    assert span.attributes["openai.request.service_tier"] == "priority"
    assert span.attributes["openai.response.service_tier"] == "priority"


def test_responses_input_history(cassette, spans, capture_content):
    client = cassette(R + "test_responses_with_input_history").openai_client()
    first = client.responses.create(model="gpt-4.1-nano",
                                    input="Come up with an adjective in English. Respond with just one word.")
    history = [{"role": "user", "content": "Come up with an adjective in English. Respond with just one word."},
               {"role": "assistant", "content": [{"type": "output_text", "text": first.output_text}]},
               {"role": "user", "content": "Can you explain why you chose that word?"}]
    client.responses.create(model="gpt-4.1-nano", input=history)
    second = llm_spans(spans)[1]
    assert [m["role"] for m in content(second, "gen_ai.input.messages")] == ["user", "assistant", "user"]
    assert content(second, "gen_ai.input.messages")[1]["parts"] == [{"type": "text", "content": first.output_text}]


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Get the current weather for a location",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]}}


def test_responses_tool_calls(cassette, spans, capture_content):
    client = cassette(R + "test_responses_tool_calls").openai_client()
    response = client.responses.create(
        model="gpt-4.1-nano", tool_choice="auto", tools=[WEATHER_TOOL],
        input=[{"type": "message", "role": "user", "content": "What's the weather in London?"}])
    [span] = llm_spans(spans)
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    calls = [o for o in response.output if o.type == "function_call"]
    [out] = content(span, "gen_ai.output.messages")
    assert [(p["id"], p["name"]) for p in out["parts"]] == [(c.call_id, c.name) for c in calls]
    assert [p["arguments"] for p in out["parts"]] == [json.loads(c.arguments) for c in calls]
    assert len(calls) == 2  # the model asked for two calls at once
    assert content(span, "gen_ai.tool.definitions")[0]["name"] == "get_weather"


def test_responses_reasoning_tokens(cassette, spans):
    client = cassette(R + "test_responses_reasoning").openai_client()
    client.responses.create(model="gpt-5-nano", input="Count r's in strawberry",
                            reasoning={"effort": "low", "summary": None})
    [span] = llm_spans(spans)
    a = span.attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (11, 327)
    assert a["gen_ai.usage.reasoning.output_tokens"] == 320
    assert a["gen_ai.request.reasoning.level"] == "low"


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_responses_parse(cassette, spans):
    client = cassette(R + "test_responses_parse").openai_client()
    parsed = client.responses.parse(model="gpt-4.1-nano", input="Extract: Alice is 30 years old.", text_format=Person)
    assert parsed.output_parsed.name == "Alice"
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "resp_02f386d5a19c47c9006a184bde9ae08190ac00681814c21cb4"
    assert span.attributes["gen_ai.output.type"] == "json"
    assert span.attributes["gen_ai.usage.input_tokens"] == 57


async def test_responses_parse_async(cassette, spans):
    client = cassette(R + "test_responses_parse_async").openai_client(async_=True)
    parsed = await client.responses.parse(model="gpt-4.1-nano", input="Extract: Bob is 42 years old.",
                                          text_format=Person)
    assert parsed.output_parsed.age == 42
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == parsed.id


def test_responses_stream(cassette, spans, metric_reader, capture_content):
    client = cassette(R + "test_responses_streaming").openai_client()
    stream = client.responses.create(model="gpt-4.1-nano", stream=True,
                                     input="Tell me a three sentence bedtime story about a unicorn.")
    assert isinstance(stream, openai.Stream)
    final = None
    for event in stream:
        if event.type == "response.completed":
            final = event.response
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.response.id"] == final.id == "resp_0fef0f8a68937870006911e9ecf124819491634b434678464a"
    assert a["gen_ai.usage.input_tokens"] == final.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert "llm_otel.usage.estimated" not in a
    assert content(span, "gen_ai.output.messages")[0]["parts"][0]["content"] == final.output_text
    assert metric_reader.count("gen_ai.client.operation.time_to_first_chunk") == 1


def test_responses_stream_with_block_under_parent(cassette, spans):
    client = cassette(R + "test_responses_streaming_with_parent_span").openai_client()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        with client.responses.create(model="gpt-4o", input="Count to 3", stream=True) as stream:
            for _ in stream:
                pass
    [span] = llm_spans(spans)
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["gen_ai.response.id"] == "resp_0ffe4aaa25a8f1360069274580b4888195ae91e8f419909c18"


def test_responses_stream_helper(cassette, spans):
    client = cassette(R + "test_responses_streaming_with_context_manager").openai_client()
    with client.responses.stream(model="gpt-4.1-nano", input="Count to 5") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == final.id
    assert span.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens


async def test_responses_stream_async(cassette, spans):
    client = cassette(R + "test_responses_streaming_async").openai_client(async_=True)
    stream = await client.responses.create(model="gpt-4.1-nano", stream=True,
                                           input="Tell me a three sentence bedtime story about a unicorn.")
    assert isinstance(stream, openai.AsyncStream)
    final = None
    async for event in stream:
        if event.type == "response.completed":
            final = event.response
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == final.id
    assert span.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens


async def test_responses_stream_async_with_block(cassette, spans):
    client = cassette(R + "test_responses_streaming_async_with_context_manager").openai_client(async_=True)
    async with await client.responses.create(model="gpt-4.1-nano", input="Count to 5", stream=True) as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                break
    [span] = llm_spans(spans)  # ended at with-exit, before completion
    assert span.attributes["gen_ai.response.id"] == "resp_06bbedfc9588dfa50069120b6638f88195ac87ed4b1b0c5a5d"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)  # the final event never came


def test_responses_failed_stream_event(spans):
    """A ``response.failed`` event is not raised by the SDK: the span carries error.type."""
    import httpx

    response = {"id": "resp_failed1", "object": "response", "created_at": 1, "model": "gpt-4.1-nano-2025-04-14",
                "status": "in_progress", "output": [], "parallel_tool_calls": True, "tool_choice": "auto",
                "tools": [], "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
                "temperature": 1.0, "top_p": 1.0}
    failed = {**response, "status": "failed", "error": {"code": "server_error", "message": "boom"}}
    events = [("response.created", {"type": "response.created", "sequence_number": 0, "response": response}),
              ("response.failed", {"type": "response.failed", "sequence_number": 1, "response": failed})]
    body = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body))
    client = openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1", max_retries=0,
                           http_client=httpx.Client(transport=transport))
    kinds = [e.type for e in client.responses.create(model="gpt-4.1-nano", input="hi", stream=True)]
    assert kinds == ["response.created", "response.failed"]
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "resp_failed1"
    assert span.attributes["error.type"] == "server_error"
    assert span.status.status_code is StatusCode.ERROR  # any error.type is an error
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("error",)


def test_responses_over_real_http_compatible_base_url(cassette, spans):
    """A client built for another base URL (a local OpenAI-compatible server, real HTTP)."""
    from support.cassettes import serve

    with serve(cassette(R + "test_responses")) as base_url:
        client = openai.OpenAI(api_key="sk-test", base_url=base_url, max_retries=0)
        response = client.responses.create(model="gpt-4.1-nano", input="What is the capital of France?")
        client.close()
    [span] = llm_spans(spans)
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    assert (span.attributes["server.address"], span.attributes["server.port"]) == ("127.0.0.1", port)
    assert span.attributes["gen_ai.response.id"] == response.id

