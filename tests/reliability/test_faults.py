"""Faults in the instrumented library reach the caller unchanged and leave exactly one
ended span with status ERROR and ``error.type``; nothing stays open or current.

The real openai SDK talks to an ``httpx.MockTransport`` that answers with HTTP errors,
raises transport errors, returns malformed JSON, or cuts an SSE stream mid-way. Each
outcome is compared with the same call made while uninstrumented."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from rel_support import CutStream, client_for, recorded_stream_events

MESSAGES = [{"role": "user", "content": "hello"}]


def _status(code):
    def handler(request):
        body = {"error": {"message": f"status {code} from the mock", "type": "server_error", "code": str(code),
                          "param": None}}
        return httpx.Response(code, json=body, headers={"x-request-id": f"req-{code}"})
    return handler


def _raise(error):
    def handler(request):
        raise error
    return handler


def _body(content: bytes, content_type="application/json"):
    def handler(request):
        return httpx.Response(200, headers={"content-type": content_type}, content=content)
    return handler


def _sse(events, error=None):
    def handler(request):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=CutStream(events, error))
    return handler


REQUEST_FAULTS = {
    "http_400": _status(400), "http_401": _status(401), "http_404": _status(404), "http_429": _status(429),
    "http_500": _status(500), "http_503": _status(503),
    "read_timeout": _raise(httpx.ReadTimeout("timed out")),
    "connect_timeout": _raise(httpx.ConnectTimeout("connect timed out")),
    "connection_refused": _raise(httpx.ConnectError("[Errno 111] Connection refused")),
    "connection_reset": _raise(httpx.ReadError("[Errno 104] Connection reset by peer")),
    "remote_protocol": _raise(httpx.RemoteProtocolError("peer closed connection without response")),
    "malformed_json": _body(b'{"id": "chatcmpl-1", "choices": [{"mess'),
    "html_error_page": _body(b"<html>bad gateway</html>", "application/json"),
    "transport_bug": _raise(RuntimeError("a bug in a custom transport")),
}


def _stream_faults(recordings):
    events = recorded_stream_events(recordings / "openai" / "test_chat" / "test_chat_async_streaming.yaml")
    half = events[: len(events) // 2]
    error_event = b'data: {"error": {"message": "overloaded mid-stream", "type": "server_error"}}\n\n'
    return {
        "sse_cut_reset": _sse(half, httpx.ReadError("[Errno 104] Connection reset by peer")),
        "sse_cut_protocol": _sse(half, httpx.RemoteProtocolError("incomplete chunked read")),
        "sse_error_event": _sse(half + [error_event]),
        "sse_read_timeout": _sse(half, httpx.ReadTimeout("read timed out mid-stream")),
    }


def _outcome(fn):
    """(returned value or None, the exception or None) of ``fn()``."""
    try:
        return fn(), None
    except BaseException as exc:  # noqa: BLE001 - we compare what the caller sees
        return None, exc


def _same_error(baseline: BaseException, got: BaseException) -> None:
    assert type(got) is type(baseline)
    assert str(got) == str(baseline)
    assert type(got.__cause__) is type(baseline.__cause__)
    assert getattr(got, "status_code", None) == getattr(baseline, "status_code", None)
    assert getattr(got, "body", None) == getattr(baseline, "body", None)


def _assert_one_error_span(spans, open_spans, error, metric_reader):
    (span,) = spans()
    assert span.end_time is not None
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(error).__qualname__
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"].endswith(type(error).__qualname__)
    assert open_spans() == []
    assert not trace.get_current_span().get_span_context().is_valid
    assert metric_reader.count("gen_ai.client.operation.duration", error__type=type(error).__qualname__) == 1


def _uninstrumented(instrumentor, fn):
    instrumentor.uninstrument()
    try:
        return _outcome(fn)
    finally:
        instrumentor.instrument()


@pytest.mark.parametrize("fault", sorted(REQUEST_FAULTS))
def test_request_fault_sync(fault, instrumentor, spans, open_spans, metric_reader):
    handler = REQUEST_FAULTS[fault]
    call = lambda: client_for(handler).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # noqa: E731
    _, baseline = _uninstrumented(instrumentor, call)
    assert baseline is not None and spans() == ()
    result, error = _outcome(call)
    assert result is None
    _same_error(baseline, error)
    _assert_one_error_span(spans, open_spans, error, metric_reader)


@pytest.mark.parametrize("fault", sorted(REQUEST_FAULTS))
def test_request_fault_async(fault, instrumentor, spans, open_spans, metric_reader):
    handler = REQUEST_FAULTS[fault]

    def call():
        async def go():
            client = client_for(handler, async_=True)
            return await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return asyncio.run(go())

    _, baseline = _uninstrumented(instrumentor, call)
    result, error = _outcome(call)
    assert result is None
    _same_error(baseline, error)
    _assert_one_error_span(spans, open_spans, error, metric_reader)


def test_the_callers_exception_object_is_the_sdks(spans):
    """Not a copy: the very exception the transport raised is the cause the caller sees."""
    boom = httpx.ReadError("[Errno 104] Connection reset by peer")
    with pytest.raises(openai.APIConnectionError) as caught:
        client_for(_raise(boom)).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.__cause__ is boom
    bug = RuntimeError("raised as-is")
    with pytest.raises(openai.APIConnectionError) as caught:
        client_for(_raise(bug)).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.__cause__ is bug
    assert len(spans()) == 2


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("fault", ["sse_cut_reset", "sse_cut_protocol", "sse_error_event", "sse_read_timeout"])
def test_stream_fault(fault, async_, instrumentor, recordings, spans, open_spans, metric_reader):
    handler = _stream_faults(recordings)[fault]

    def call():
        received = []
        if async_:
            async def go():
                client = client_for(handler, async_=True)
                stream = await client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
                try:
                    async for chunk in stream:
                        received.append(chunk.id)
                except BaseException as exc:
                    return received, exc
                return received, None
            return asyncio.run(go())
        stream = client_for(handler).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        try:
            for chunk in stream:
                received.append(chunk.id)
        except BaseException as exc:  # noqa: BLE001
            return received, exc
        return received, None

    (base_chunks, baseline), _ = _uninstrumented(instrumentor, call)
    assert baseline is not None and base_chunks
    (chunks, error), outer = _outcome(call)
    assert outer is None and chunks == base_chunks  # every chunk before the fault was delivered
    _same_error(baseline, error)
    _assert_one_error_span(spans, open_spans, error, metric_reader)
    (span,) = spans()
    assert span.attributes["gen_ai.response.id"] == chunks[0]  # what arrived is still recorded


def test_stream_cut_cleanly_ends_once_without_error(recordings, spans, open_spans):
    """A body that just stops (no ``[DONE]``, no transport error) is not an error to the SDK:
    the caller gets the chunks, the span ends once with what arrived."""
    events = recorded_stream_events(recordings / "openai" / "test_chat" / "test_chat_async_streaming.yaml")
    stream = client_for(_sse(events[:3])).chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
    assert len(list(stream)) == 3
    stream.close()
    (span,) = spans()
    assert span.status.status_code is StatusCode.UNSET and open_spans() == []


def test_caller_breaking_out_of_a_stream_and_raising(recordings, spans, open_spans):
    """The app's own exception inside its loop: the span still ends (on close / GC)."""
    events = recorded_stream_events(recordings / "openai" / "test_chat" / "test_chat_async_streaming.yaml")

    class AppError(Exception):
        pass

    with pytest.raises(AppError):
        with client_for(_sse(events)).chat.completions.create(model="gpt-4", messages=MESSAGES,
                                                              stream=True) as stream:
            for _ in stream:
                raise AppError("the app's own bug")
    (span,) = spans()
    assert span.end_time is not None and open_spans() == []


def test_error_span_has_no_response_payload_but_keeps_request(spans):
    client_for(_status(429))
    with pytest.raises(openai.RateLimitError):
        client_for(_status(429)).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.5)
    (span,) = spans()
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert span.attributes["gen_ai.request.temperature"] == 0.5
    assert "gen_ai.usage.input_tokens" not in span.attributes  # no estimate for a failed call
    assert json.loads(json.dumps(dict(span.attributes)))  # plain values only


def test_failed_calls_leave_nothing_behind(recordings, spans):
    """Hundreds of failing calls and cut streams: no invocation record, traced stream or
    span stays alive once the caller has let go (no growing maps, no cycles kept)."""
    import gc

    from llm_otel.core import LLMInvocation
    from llm_otel.instrumentors.openai.streams import TracedStream

    def alive():
        gc.collect()
        # type(), not isinstance(): openai's lazy proxies (pandas, numpy) import on __class__
        return sum(issubclass(type(o), (LLMInvocation, TracedStream)) for o in gc.get_objects())

    events = recorded_stream_events(recordings / "openai" / "test_chat" / "test_chat_async_streaming.yaml")
    before = alive()
    client_503 = client_for(_status(503))
    client_cut = client_for(_sse(events[:4], httpx.ReadError("reset")))
    for _ in range(200):
        with pytest.raises(openai.InternalServerError):
            client_503.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with pytest.raises(httpx.ReadError):  # mid-stream, the SDK lets httpx's error through
            for _ in client_cut.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True):
                pass
    assert len(spans()) == 400
    assert all(s.status.status_code is StatusCode.ERROR for s in spans())
    assert alive() <= before
