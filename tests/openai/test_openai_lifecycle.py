"""instrument/uninstrument, instrument_client, errors, nesting, suppression, concurrency."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pydantic
import pytest
import wrapt
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from llm_otel.instrumentors.openai import instrument_client, uninstrument_client
from oai_support import PARSE_RESOURCES, llm_spans, resource

JOKE = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]
CHAT = "test_chat/test_chat"


def _originals():
    """What the instrumentor patches: the one method every API request goes through."""
    from openai import _base_client

    return {"sync": vars(_base_client.SyncAPIClient)["request"], "async": vars(_base_client.AsyncAPIClient)["request"]}


def test_uninstrument_restores_originals_exactly(instrumentor, cassette, spans):
    wrapped = _originals()
    assert all(isinstance(f, wrapt.FunctionWrapper) for f in wrapped.values())
    originals = {k: f.__wrapped__ for k, f in wrapped.items()}
    try:
        for _ in range(2):
            instrumentor.uninstrument()
            now = _originals()
            for key, func in now.items():
                assert func is originals[key], key
                assert not isinstance(func, wrapt.ObjectProxy), key  # our __wrapped__ layer is gone
            client = cassette(CHAT).openai_client()
            client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
            assert llm_spans(spans) == []
            instrumentor.instrument()
            instrumentor.instrument()  # twice is once
            assert _originals()["sync"].__wrapped__ is originals["sync"]
            client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
            assert len(llm_spans(spans)) == 1
            spans.__self__.clear()  # the exporter behind the fixture
    finally:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def test_instrument_client_only_that_client(instrumentor, cassette, spans):
    instrumentor.uninstrument()
    try:
        traced = cassette(CHAT).openai_client()
        plain = cassette(CHAT).openai_client()
        assert instrument_client(traced) is traced
        assert instrument_client(traced) is traced  # twice is once
        plain.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
        assert llm_spans(spans) == []
        result = traced.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
        [span] = llm_spans(spans)
        assert span.attributes["gen_ai.response.id"] == result.id == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
        raw = traced.chat.completions.with_raw_response.create(model="gpt-3.5-turbo", messages=JOKE)
        assert raw.parse().id == "chatcmpl-DPTBnLVEU6gLtntz301fthMFXeE4C"
        assert len(llm_spans(spans)) == 2
        traced.with_options(timeout=5).chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
        assert len(llm_spans(spans)) == 3  # per-request options keep tracing
        uninstrument_client(traced)
        traced.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
        assert len(llm_spans(spans)) == 3
        assert "with_options" not in vars(traced) and "create" not in vars(traced.chat.completions)
    finally:
        instrumentor.instrument()


def test_instrument_client_with_global_records_once(cassette, spans, metric_reader):
    client = instrument_client(cassette(CHAT).openai_client())
    client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
    assert len(llm_spans(spans)) == 1
    assert metric_reader.count("gen_ai.client.operation.duration") == 1


class Joke(pydantic.BaseModel):
    joke: str
    rating: int


@pytest.mark.parametrize("where", PARSE_RESOURCES)
def test_instrument_client_traces_parse_once(where, instrumentor, cassette, spans):
    """track_openai's per-client wrappers cover structured output, alone and with the global
    instrumentor on (then each call is still one span)."""
    def parse():
        client = instrument_client(cassette("test_chat_parse/test_parsed_completion").openai_client())
        return resource(client, where).parse(model="gpt-4o", messages=JOKE, response_format=Joke)

    instrumentor.uninstrument()
    try:
        alone = parse()
    finally:
        instrumentor.instrument()
    with_global = parse()
    assert [s.attributes["gen_ai.response.id"] for s in llm_spans(spans)] == [alone.id, with_global.id]


async def test_instrument_client_async_stream(instrumentor, cassette, spans):
    instrumentor.uninstrument()
    try:
        client = instrument_client(cassette("test_chat/test_chat_async_streaming").openai_client(async_=True))
        stream = await client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
        assert isinstance(stream, openai.AsyncStream)
        async for _ in stream:
            pass
        [span] = llm_spans(spans)
        assert span.attributes["gen_ai.response.id"] == "chatcmpl-9AGW3t9akkLW9f5f93B7mOhiqhNMC"
    finally:
        instrumentor.instrument()


def test_nested_under_user_span_and_http_spans_nest(cassette, spans):
    tracer = trace.get_tracer("test")
    seen = {}
    cas = cassette(CHAT)
    transport = cas.transport()

    def handler(request):  # runs inside the SDK call: the LLM span must be current
        seen["span"] = trace.get_current_span()
        return transport.handle_request(request)

    client = openai.OpenAI(api_key="sk-test", base_url="https://api.openai.com/v1", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with tracer.start_as_current_span("user work") as parent:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
    [span] = llm_spans(spans)
    assert span.parent.span_id == parent.get_span_context().span_id
    assert seen["span"].get_span_context().span_id == span.context.span_id


def test_suppressed(cassette, spans):
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    client = cassette(CHAT).openai_client()
    with suppress_instrumentation():
        result = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
    assert result.id == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
    assert llm_spans(spans) == []


async def test_async_gather_each_under_its_parent(cassette, spans):
    tracer = trace.get_tracer("test")
    cas = cassette(CHAT)
    client = cas.openai_client(async_=True)

    async def one(i):
        with tracer.start_as_current_span(f"task {i}") as parent:
            result = await client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
            return parent.get_span_context().span_id, result.id

    results = await asyncio.gather(*(one(i) for i in range(4)))
    by_id = {s.attributes["gen_ai.response.id"]: s for s in llm_spans(spans)}
    assert len(by_id) == 4
    for parent_id, response_id in results:
        assert by_id[response_id].parent.span_id == parent_id


# ---- errors: the SDK's exception object reaches the caller unchanged -----------------------


def _failing_client(handler, async_=False):
    kwargs = dict(api_key="sk-test", base_url="https://api.openai.com/v1", max_retries=0)
    if async_:
        async def ahandler(request):
            return handler(request)
        return openai.AsyncOpenAI(http_client=httpx.AsyncClient(transport=httpx.MockTransport(ahandler)), **kwargs)
    return openai.OpenAI(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kwargs)


def _status(code, message):
    def handler(request):
        return httpx.Response(code, json={"error": {"message": message, "type": "x", "code": None}})
    return handler


def _raise(exc_type):
    def handler(request):
        raise exc_type("boom", request=request)
    return handler


@pytest.mark.parametrize("handler, exc_type", [
    (_status(429, "Rate limit reached"), openai.RateLimitError),
    (_status(500, "server error"), openai.InternalServerError),
    (_status(401, "Incorrect API key"), openai.AuthenticationError),
    (_raise(httpx.ReadTimeout), openai.APITimeoutError),
    (_raise(httpx.ConnectError), openai.APIConnectionError),
])
@pytest.mark.parametrize("async_", [False, True])
async def test_errors_pass_through(handler, exc_type, async_, spans, metric_reader):
    client = _failing_client(handler, async_)

    create = client.chat.completions.create
    with pytest.raises(exc_type) as caught:
        if async_:
            await create(model="gpt-4o-mini", messages=JOKE)
        else:
            create(model="gpt-4o-mini", messages=JOKE)
    [span] = llm_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == exc_type.__name__
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"].endswith(exc_type.__name__)
    assert event.attributes["exception.message"] == str(caught.value)
    assert metric_reader.count("gen_ai.client.operation.duration", error__type=exc_type.__name__) == 1


def test_error_is_same_object(spans):
    seen = {}

    def handler(request):
        return httpx.Response(429, json={"error": {"message": "slow down"}})

    client = _failing_client(handler)
    original = client.chat.completions._post

    def spy(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except openai.RateLimitError as exc:
            seen["exc"] = exc
            raise

    client.chat.completions._post = spy
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=JOKE)
    assert caught.value is seen["exc"]
    assert "sk-test" not in str([dict(s.attributes) for s in spans()])


def test_framework_claim_merges_into_one_span(cassette, spans, metric_reader):
    """A framework that records the LLM call itself claims it: no second span, its span
    gets the API's response id and exact usage."""
    from llm_otel.core import LLMInvocation, get_recorder

    recorder = get_recorder()
    framework = recorder.start(LLMInvocation(operation="chat", request_model="gpt-3.5-turbo",
                                             metadata={"framework": "test"}))
    client = cassette(CHAT).openai_client()
    with framework.current(claim=True):
        result = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, temperature=0.3)
    framework.end()
    [span] = llm_spans(spans)
    assert span.attributes["llm_otel.metadata.framework"] == "test"
    assert span.attributes["gen_ai.response.id"] == result.id
    assert span.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert span.attributes["gen_ai.request.temperature"] == 0.3
    assert metric_reader.count("gen_ai.client.operation.duration") == 1


def test_instrument_client_own_providers(instrumentor, cassette, spans):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor.uninstrument()
    try:
        client = instrument_client(cassette(CHAT).openai_client(), tracer_provider=provider)
        client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
    finally:
        instrumentor.instrument()
    assert llm_spans(spans) == []
    [span] = exporter.get_finished_spans()
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"


def test_our_failure_never_breaks_the_call(cassette, spans, monkeypatch, caplog):
    from llm_otel.instrumentors.openai import chat

    def broken(*args, **kwargs):
        raise ValueError("extractor bug")

    monkeypatch.setattr(chat, "end", broken)
    monkeypatch.setattr(chat.StreamState, "chunk", broken)
    client = cassette("test_chat/test_chat_streaming_memory_leak_prevention").openai_client()
    stream = client.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE, stream=True)
    assert len(list(stream)) > 3  # every chunk still reaches the caller
    plain = cassette(CHAT).openai_client()
    result = plain.chat.completions.create(model="gpt-3.5-turbo", messages=JOKE)
    assert result.id == "chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK"
    assert len(llm_spans(spans)) == 2  # both still ended


# ---- views the SDK caches per client: traced exactly while instrumented ---------------------


def _through_view(client, view):
    resource = client.chat.completions
    if view == "with_raw_response":
        return getattr(resource, view).create(model="gpt-3.5-turbo", messages=JOKE).parse()
    with getattr(resource, view).create(model="gpt-3.5-turbo", messages=JOKE) as response:
        return response.parse()


@pytest.mark.parametrize("view", ["with_raw_response", "with_streaming_response"])
def test_cached_views_follow_instrument_and_uninstrument(instrumentor, cassette, spans, view):
    """The SDK caches ``with_raw_response`` / ``with_streaming_response`` per client with the
    method bound at first use: a view made before instrument() is traced after it, and one
    used while instrumented is untraced after uninstrument()."""
    instrumentor.uninstrument()
    try:
        client = cassette(CHAT).openai_client()
        cached = getattr(client.chat.completions, view)
        _through_view(client, view)
        assert llm_spans(spans) == []
        instrumentor.instrument()
        assert getattr(client.chat.completions, view) is cached  # the very view made before
        result = _through_view(client, view)
        [span] = llm_spans(spans)
        assert span.attributes["gen_ai.response.id"] == result.id
        instrumentor.uninstrument()
        _through_view(client, view)
        assert len(llm_spans(spans)) == 1
    finally:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def test_langchain_chat_openai_made_before_instrument(instrumentor, cassette, spans):
    """LangChain's ChatOpenAI calls the SDK through ``with_raw_response`` on every request."""
    langchain_openai = pytest.importorskip("langchain_openai")
    instrumentor.uninstrument()
    try:
        cas = cassette(CHAT)
        model = langchain_openai.ChatOpenAI(model="gpt-3.5-turbo", api_key="sk-test-not-a-real-key", max_retries=0,
                                            http_client=httpx.Client(transport=cas.transport()))
        model.invoke("Tell me a joke about opentelemetry")
        assert llm_spans(spans) == []
        instrumentor.instrument()
        reply = model.invoke("Tell me a joke about opentelemetry")
        [span] = llm_spans(spans)
        assert span.attributes["gen_ai.response.id"] == reply.response_metadata["id"]
        instrumentor.uninstrument()
        model.invoke("Tell me a joke about opentelemetry")
        assert len(llm_spans(spans)) == 1
    finally:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
