"""``responses.retrieve()`` (``GET /responses/{id}``, plain and streamed) as the
conventions' ``fetch_response`` operation, against a local server."""

from __future__ import annotations

import inspect

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import responses_bodies as rb
from llm_otel import config
from oai_support import client_for, content, json_reply, llm_spans, local_server, needs_sdk, sse_reply

needs_sdk("responses", "no Responses API")

RESPONSE_ID = rb.ENVELOPE["id"]
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}


@pytest.fixture
def span_and_event(monkeypatch):
    monkeypatch.setenv(config.CAPTURE_CONTENT_ENV, "SPAN_AND_EVENT")
    config.reload()
    yield
    monkeypatch.delenv(config.CAPTURE_CONTENT_ENV)
    config.reload()


def test_retrieve(spans, metric_reader, logs, span_and_event):
    body = rb.response([rb.message("Paris.")], instructions="Be brief.", tools=[WEATHER])
    with local_server(lambda method, path, request: json_reply(body)) as served:
        fetched = client_for(served).responses.retrieve(RESPONSE_ID)
    assert served.requests[0][:2] == ("GET", f"/v1/responses/{RESPONSE_ID}")
    assert fetched.output_text == "Paris."
    [span] = llm_spans(spans)
    a = span.attributes
    assert (span.name, span.kind) == ("fetch_response", SpanKind.CLIENT)
    assert a["gen_ai.operation.name"] == "fetch_response"
    assert a["gen_ai.response.id"] == RESPONSE_ID
    assert a["gen_ai.response.status"] == "completed"
    assert a["gen_ai.response.model"] == "gpt-4.1-nano-2025-04-14"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["openai.api.type"] == "responses"
    assert a["openai.response.service_tier"] == "default"
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", served.port)
    assert not [k for k in a if k.startswith(("gen_ai.usage.", "llm_otel.usage.", "llm_otel.cost"))]
    assert "gen_ai.request.model" not in a and "gen_ai.input.messages" not in a
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    assert content(span, "gen_ai.tool.definitions")[0]["name"] == "get_weather"
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}]
    assert logs("gen_ai.client.inference.operation.details") == []  # inference operations only
    assert metric_reader.count("gen_ai.client.operation.duration", gen_ai__operation__name="fetch_response") == 1
    assert metric_reader.count("gen_ai.client.token.usage") == 0


def test_retrieve_a_background_response_still_queued(spans, capture_content):
    body = rb.response([], status="queued", background=True, usage=None)
    with local_server(lambda method, path, request: json_reply(body)) as served:
        client_for(served).responses.retrieve(RESPONSE_ID)
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.status"] == "queued"
    assert "gen_ai.response.finish_reasons" not in span.attributes  # not finished: none yet
    assert "gen_ai.output.messages" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("async_", [False, True])
async def test_retrieve_stream_of_a_failed_response(spans, async_):
    """Resuming the event stream of a response that failed: the fetch itself succeeded."""
    if "stream" not in inspect.signature(openai.resources.responses.Responses.retrieve).parameters:
        pytest.skip(f"openai {openai.__version__}: retrieve() does not stream")
    failed = rb.response([], status="failed", usage=None, error={"code": "server_error", "message": "boom"})
    events = rb.event_stream(failed, final_event="response.failed", deltas=["Par"])
    with local_server(lambda method, path, request: sse_reply(events)) as served:
        client = client_for(served, async_=async_)
        if async_:
            stream = await client.responses.retrieve(RESPONSE_ID, stream=True, starting_after=1)
            kinds = [event.type async for event in stream]
        else:
            stream = client.responses.retrieve(RESPONSE_ID, stream=True, starting_after=1)
            kinds = [event.type for event in stream]
    assert isinstance(stream, openai.AsyncStream if async_ else openai.Stream)
    assert "stream=true" in served.requests[0][2] and "starting_after=1" in served.requests[0][2]
    assert kinds == ["response.created", "response.output_text.delta", "response.failed"]
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.operation.name"] == "fetch_response"
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.status"] == "failed"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("error",)
    assert "error.type" not in a and span.status.status_code is StatusCode.UNSET


def test_retrieve_not_found(spans):
    error = {"error": {"message": "Response with id 'resp_gone' not found.", "type": "invalid_request_error",
                       "param": None, "code": None}}
    with local_server(lambda method, path, request: json_reply(error, status=404)) as served:
        with pytest.raises(openai.NotFoundError):
            client_for(served).responses.retrieve("resp_gone")
    [span] = llm_spans(spans)
    assert span.attributes["gen_ai.response.id"] == "resp_gone"
    assert span.attributes["error.type"] == "NotFoundError"
    assert span.status.status_code is StatusCode.ERROR


def test_other_response_paths_are_not_traced(spans):
    listing = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    deleted = {"id": RESPONSE_ID, "object": "response.deleted", "deleted": True}

    def answer(method, path, request):
        return json_reply(listing if path.endswith("/input_items") else deleted)

    with local_server(answer) as served:
        client = client_for(served)
        client.responses.input_items.list(RESPONSE_ID)
        client.responses.delete(RESPONSE_ID)
    assert [r[:2] for r in served.requests] == [("GET", f"/v1/responses/{RESPONSE_ID}/input_items"),
                                                ("DELETE", f"/v1/responses/{RESPONSE_ID}")]
    assert llm_spans(spans) == []
