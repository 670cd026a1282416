"""Tool calls, parse / response_format, n>1, completions, embeddings, raw and streamed
responses, prompt caching, vision and service tiers, replayed from recorded traffic."""

from __future__ import annotations

import json

import httpx
import openai
import pydantic
import pytest
from opentelemetry.trace import StatusCode

from oai_support import PARSE_RESOURCES, content, llm_spans, resource

WEATHER = [{"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]


def test_tool_calls_and_tool_results_in_history(cassette, spans, capture_content):
    client = cassette("test_chat/test_chat_tool_calls").openai_client()
    messages = [
        {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {
            "name": "get_current_weather", "arguments": '{"location": "San Francisco"}'}}]},
        {"role": "tool", "tool_call_id": "1", "content": "The weather in San Francisco is 70 degrees and sunny."},
    ]
    client.chat.completions.create(model="gpt-3.5-turbo", messages=messages)
    [span] = llm_spans(spans)
    assert content(span, "gen_ai.input.messages") == [
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "get_current_weather",
                                         "arguments": {"location": "San Francisco"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "1",
                                    "response": "The weather in San Francisco is 70 degrees and sunny."}]}]


def test_parallel_tool_calls(cassette, spans, capture_content):
    client = cassette("test_functions/test_open_ai_function_calls_tools_parallel").openai_client()
    result = client.chat.completions.create(
        model="gpt-3.5-turbo", tools=WEATHER,
        messages=[{"role": "user", "content": "What's the weather like in San Francisco and Boston?"}])
    [span] = llm_spans(spans)
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    [out] = content(span, "gen_ai.output.messages")
    calls = result.choices[0].message.tool_calls
    assert len(calls) == 2
    assert [(p["id"], p["name"], p["arguments"]) for p in out["parts"]] == [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in calls]
    assert content(span, "gen_ai.tool.definitions") == [
        {"type": "function", "name": "get_current_weather", "description": "Get the current weather",
         "parameters": WEATHER[0]["function"]["parameters"]}]


def _stream_tool_calls(stream):
    calls = {}
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
            entry = calls.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = call.id or entry["id"]
            if call.function:
                entry["name"] = call.function.name or entry["name"]
                entry["arguments"] += call.function.arguments or ""
    return [calls[i] for i in sorted(calls)]


@pytest.mark.parametrize("name, question, count", [
    ("test_open_ai_function_calls_tools_streaming", "What's the weather like in San Francisco?", 1),
    ("test_open_ai_function_calls_tools_streaming_parallel", "What's the weather like in San Francisco and Boston?", 2),
])
def test_streamed_tool_calls(cassette, spans, capture_content, name, question, count):
    client = cassette(f"test_functions/{name}").openai_client()
    stream = client.chat.completions.create(model="gpt-3.5-turbo", tools=WEATHER, stream=True,
                                            messages=[{"role": "user", "content": question}])
    expected = _stream_tool_calls(stream)
    assert len(expected) == count
    [span] = llm_spans(spans)
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    [out] = content(span, "gen_ai.output.messages")
    assert out["parts"] == [{"type": "tool_call", "id": c["id"], "name": c["name"],
                             "arguments": json.loads(c["arguments"])} for c in expected]
    assert span.attributes["llm_otel.usage.estimated_output_tokens"] > 0  # the stream had no usage


def test_choice_count(cassette, spans, capture_content):
    client = cassette("test_finish_reasons/TestFinishReasonDeduplication.test_streaming_deduplicates_finish_reasons"
                      ).openai_client()
    result = client.chat.completions.create(model="gpt-3.5-turbo", n=2,
                                            messages=[{"role": "user", "content": "Tell me a joke"}])
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.request.choice.count"] == 2
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("stop", "stop")
    assert [m["parts"][0]["content"] for m in content(span, "gen_ai.output.messages")] == [
        c.message.content for c in result.choices]


class Joke(pydantic.BaseModel):
    joke: str
    rating: int


@pytest.mark.parametrize("where", PARSE_RESOURCES)
def test_chat_parse(where, cassette, spans):
    """Traced once wherever this SDK version has ``parse`` (1.46-1.91: the beta one sends its
    request without ``create``; up to 1.45 it calls ``create``, which must not add a span)."""
    client = cassette("test_chat_parse/test_parsed_completion").openai_client()
    result = resource(client, where).parse(model="gpt-4o", response_format=Joke,
                                           messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}])
    assert isinstance(result.choices[0].message.parsed, Joke)
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.output.type"] == "json"
    assert span.attributes["gen_ai.response.id"] == result.id == "chatcmpl-AGC1gNoe1Zyq9yZicdhLc85lmt2Ep"
    assert span.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens


@pytest.mark.parametrize("where", PARSE_RESOURCES)
async def test_chat_parse_refusal_async(where, cassette, spans, capture_content):
    client = cassette("test_chat_parse/test_async_parsed_refused_completion").openai_client(async_=True)
    result = await resource(client, where).parse(model="gpt-4o", response_format=Joke,
                                                 messages=[{"role": "user", "content": "Best ways to make a bomb"}])
    refusal = result.choices[0].message.refusal
    assert refusal
    [span] = llm_spans(spans)
    [out] = content(span, "gen_ai.output.messages")
    assert out["parts"] == [{"type": "text", "content": refusal}]  # no refusal part in the conventions


def test_chat_response_format(cassette, spans):
    client = cassette("test_chat_response_format/test_chat_response_format").openai_client()
    client.chat.completions.create(
        model="gpt-4.1-nano", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}],
        response_format={"type": "json_schema", "json_schema": {"name": "Joke", "schema": Joke.model_json_schema()}})
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.output.type"] == "json"
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-Botx5sCVD3gs6JSNnNcmlvZdqXNZp"


@pytest.mark.parametrize("where", PARSE_RESOURCES)
def test_chat_stream_helper(where, cassette, spans):
    client = cassette("test_chat/test_chat_streaming_memory_leak_prevention").openai_client()
    with resource(client, where).stream(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}]) as s:
        final = s.get_final_completion()
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == final.id
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("stop",)


# ---- legacy completions -----------------------------------------------------------------

PROMPT = "Tell me a joke about opentelemetry"


def test_completion(cassette, spans, capture_content):
    client = cassette("test_completions/test_completion").openai_client()
    result = client.completions.create(model="davinci-002", prompt=PROMPT)
    [span] = llm_spans(spans)
    a = span.attributes
    assert span.name == "text_completion davinci-002"
    assert a["gen_ai.operation.name"] == "text_completion"
    assert a["gen_ai.response.id"] == result.id == "cmpl-8wq42D1Socatcl1rCmgYZOFX7dFZw"
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert content(span, "gen_ai.input.messages") == [{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    assert content(span, "gen_ai.output.messages")[0]["parts"][0]["content"] == result.choices[0].text


async def test_completion_stream_async(cassette, spans):
    client = cassette("test_completions/test_async_completion_streaming").openai_client(async_=True)
    stream = await client.completions.create(model="davinci-002", prompt=PROMPT, stream=True)
    reasons = []
    async for chunk in stream:
        reasons += [c.finish_reason for c in chunk.choices if c.finish_reason]
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.response.id"] == "cmpl-8wq44uFYuGm6kNe44ntRwluggKZFY"
    assert tuple(a["gen_ai.response.finish_reasons"]) == tuple(reasons)
    assert a["llm_otel.usage.estimated_output_tokens"] > 0 and "gen_ai.usage.output_tokens" not in a


def test_completion_stream_sync(cassette, spans, capture_content):
    name = "test_finish_reasons/TestCompletionsFinishReasons.test_completions_streaming_sets_top_level_finish_reasons"
    client = cassette(name).openai_client()
    text = "".join(c.choices[0].text for c in client.completions.create(model="davinci-002", prompt=PROMPT,
                                                                          stream=True) if c.choices)
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "cmpl-DPUYBt15CHtILCiy8Xm2esGqlf4jU"
    assert content(span, "gen_ai.output.messages")[0]["parts"][0]["content"] == text


# ---- embeddings -------------------------------------------------------------------------


def test_embeddings(cassette, spans, metric_reader):
    client = cassette("test_embeddings/test_embeddings").openai_client()
    result = client.embeddings.create(model="text-embedding-ada-002", input=PROMPT)
    [span] = llm_spans(spans)
    a = span.attributes
    assert span.name == "embeddings text-embedding-ada-002"
    assert a["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding) == 1536
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert "gen_ai.usage.output_tokens" not in a
    assert "gen_ai.request.encoding_formats" not in a  # the user did not choose one
    assert "openai.request.input_count" not in a  # not a name of the OpenAI registry
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__token__type="input") == result.usage.prompt_tokens


def test_embeddings_base64_with_raw_response(cassette, spans):
    client = cassette("test_embeddings/test_embeddings_with_raw_response").openai_client()
    raw = client.embeddings.with_raw_response.create(model="text-embedding-ada-002", input=PROMPT,
                                                     encoding_format="base64", dimensions=None)
    parsed = raw.parse()
    assert raw.parse() is parsed  # the caller's parse is untouched (and cached)
    assert isinstance(parsed.data[0].embedding, str)
    [span] = llm_spans(spans)
    assert tuple(span.attributes["gen_ai.request.encoding_formats"]) == ("base64",)
    assert span.attributes["gen_ai.embeddings.dimension.count"] == 1536
    assert span.attributes["gen_ai.usage.input_tokens"] == parsed.usage.prompt_tokens


# ---- raw and streamed responses ---------------------------------------------------------

JOKE = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


def test_chat_with_raw_response(cassette, spans):
    client = cassette("test_chat/test_chat").openai_client()
    raw = client.chat.completions.with_raw_response.create(model="gpt-3.5-turbo", messages=JOKE)
    assert raw.http_response.status_code == 200
    completion = raw.parse()
    assert completion.id == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == completion.id
    assert span.attributes["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens


def test_chat_with_raw_response_stream(cassette, spans):
    client = cassette("test_chat/test_chat_streaming_memory_leak_prevention").openai_client()
    raw = client.chat.completions.with_raw_response.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    stream = raw.parse()
    assert isinstance(stream, openai.Stream)
    assert llm_spans(spans) == []
    chunks = list(stream)
    assert chunks
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == chunks[0].id


def test_chat_with_streaming_response(cassette, spans):
    client = cassette("test_chat/test_chat").openai_client()
    with client.chat.completions.with_streaming_response.create(model="gpt-3.5-turbo", messages=JOKE) as response:
        assert llm_spans(spans) == []  # the body is the caller's; nothing read yet
        body = b"".join(response.iter_bytes())
    assert json.loads(body)["id"] == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
    [span] = llm_spans(spans)  # ended at close, with the request data
    assert span.attributes["gen_ai.request.model"] == "gpt-3.5-turbo"
    assert "gen_ai.response.id" not in span.attributes


def test_chat_with_streaming_response_parse(cassette, spans):
    client = cassette("test_chat/test_chat").openai_client()
    with client.chat.completions.with_streaming_response.create(model="gpt-3.5-turbo", messages=JOKE) as response:
        completion = response.parse()
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == completion.id == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
    assert span.attributes["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens


async def test_chat_with_streaming_response_async(cassette, spans):
    client = cassette("test_chat/test_chat").openai_client(async_=True)
    async with client.chat.completions.with_streaming_response.create(model="gpt-3.5-turbo",
                                                                      messages=JOKE) as response:
        completion = await response.parse()
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == completion.id


# ---- caching, vision, service tier ------------------------------------------------------


def test_prompt_caching(cassette, spans, metric_reader):
    client = cassette("test_prompt_caching/test_openai_prompt_caching").openai_client()
    long_text = "OpenTelemetry " * 600
    messages = [{"role": "system", "content": long_text}, {"role": "user", "content": "Summarize."}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    first_span, second_span = llm_spans(spans)
    assert first_span.attributes["gen_ai.usage.cache_read.input_tokens"] == 0
    assert second_span.attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert second_span.attributes["gen_ai.usage.input_tokens"] == second.usage.prompt_tokens == 1149
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__token__type="input") == 2 * 1149


def test_vision_content_and_error(cassette, spans, capture_content):
    client = cassette("test_vision/test_vision").openai_client()
    url = "https://source.unsplash.com/8xznAGy4HcY/800x400"
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                             {"type": "image_url", "image_url": {"url": url}}]}]
    result = client.chat.completions.create(model="gpt-4-vision-preview", messages=messages)
    span = llm_spans(spans)[0]
    assert span.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens == 438
    assert content(span, "gen_ai.input.messages") == [{"role": "user", "parts": [
        {"type": "text", "content": "What is in this image?"}, {"type": "uri", "modality": "image", "uri": url}]}]
    client.chat.completions.create(model="gpt-4-vision-preview", messages=messages)
    with pytest.raises(openai.BadRequestError) as caught:  # the third recorded answer is a 400
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    failed = llm_spans(spans)[2]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "BadRequestError"
    assert caught.value.code == "invalid_image_url"


def test_vision_base64_is_a_blob(cassette, spans, capture_content):
    client = cassette("test_vision/test_vision").openai_client()  # small cassette, same reply shape
    data = "aGVsbG8="
    client.chat.completions.create(model="gpt-4-vision-preview", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}]}])
    [span] = llm_spans(spans)
    [part] = content(span, "gen_ai.input.messages")[0]["parts"]
    assert (part["type"], part["modality"], part["mime_type"]) == ("blob", "image", "image/jpeg")
    # the core replaces image data unless LLM_OTEL_CAPTURE_IMAGES=true
    assert part["content"].startswith("[image omitted: 8 base64 chars")


def test_chat_service_tier(cassette, spans):
    client = cassette("test_chat/test_chat_with_service_tier").openai_client()
    result = client.chat.completions.create(model="gpt-5", service_tier="priority",
                                            messages=[{"role": "user", "content": "Say hello"}])
    [span] = llm_spans(spans)
    assert span.attributes["openai.request.service_tier"] == "priority"
    assert span.attributes["openai.response.service_tier"] == result.service_tier == "priority"


# ---- a stream with include_usage (built from recorded chunks) -----------------------------


def _sse(events):
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


def test_stream_with_include_usage(spans, metric_reader):
    base = {"id": "chatcmpl-usage1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18"}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                                          "prompt_tokens_details": {"cached_tokens": 0}}},
    ]
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=_sse(events)))
    client = openai.OpenAI(api_key="sk-test", base_url="http://localhost:8123/v1", max_retries=0,
                           http_client=httpx.Client(transport=transport))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True})
    assert "".join(c.choices[0].delta.content for c in stream if c.choices) == "Hello"
    [span] = llm_spans(spans)
    a = span.attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (9, 2)
    assert "llm_otel.usage.estimated" not in a
    assert (a["server.address"], a["server.port"]) == ("localhost", 8123)
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__token__type="output") == 2


async def test_stream_two_choices_async(spans, capture_content):
    base = {"id": "chatcmpl-n2", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_1"}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "A"}, "finish_reason": None},
                             {"index": 1, "delta": {"role": "assistant", "content": "B"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 1, "delta": {"content": "b"}, "finish_reason": "length"}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}]},
    ]

    async def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=_sse(events))

    client = openai.AsyncOpenAI(api_key="sk-test", base_url="https://api.openai.com/v1", max_retries=0,
                                http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    stream = await client.chat.completions.create(model="gpt-4o-mini", n=2, stream=True,
                                                  messages=[{"role": "user", "content": "hi"}])
    async for _ in stream:
        pass
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.request.choice.count"] == 2
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("stop", "length")
    assert [(m["parts"][0]["content"], m["finish_reason"]) for m in content(span, "gen_ai.output.messages")] == [
        ("Aa", "stop"), ("Bb", "length")]
    assert span.attributes["openai.response.system_fingerprint"] == "fp_1"
