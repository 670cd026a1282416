"""Responses API items as the conventions' parts: OpenAI's own tools as server tool calls,
the app's custom and computer calls and their outputs with role and call id, files,
compaction, instructions; request attributes of the Responses API."""

from __future__ import annotations

import gc

import openai
import pytest
from opentelemetry.trace import StatusCode

import responses_bodies as rb
from oai_support import client_for, content, json_reply, llm_spans, local_server, needs_sdk, sse_reply

needs_sdk("responses", "no Responses API")


def _served(body):
    return local_server(lambda method, path, request: json_reply(body))


@pytest.mark.parametrize("body", [
    rb.response([rb.WEB_SEARCH, rb.FILE_SEARCH, rb.CODE_INTERPRETER, rb.IMAGE_GENERATION, rb.MCP_CALL,
                 rb.message("done")]),
    rb.response([rb.CUSTOM_CALL, rb.COMPUTER_CALL]),
])
def test_bodies_match_the_sdk_models(body):
    """The local server's bodies are what the API sends: the SDK's strict models accept them."""
    needs_sdk("responses.response_custom_tool_call", "no custom tools")
    from openai.types.responses import Response

    parsed = Response.model_validate(body)
    assert [item.type for item in parsed.output] == [item["type"] for item in body["output"]]


def test_server_tools_are_server_tool_calls(spans, capture_content):
    body = rb.response([rb.WEB_SEARCH, rb.FILE_SEARCH, rb.CODE_INTERPRETER, rb.IMAGE_GENERATION, rb.MCP_CALL,
                        rb.message("Paris.")])
    with _served(body) as served:
        client_for(served).responses.create(model="gpt-4.1-nano", input="Search and compute", tools=rb.SERVER_TOOLS)
    [span] = llm_spans(spans)
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # nothing left for the app
    [out] = content(span, "gen_ai.output.messages")
    assert out["role"] == "assistant" and out["finish_reason"] == "stop"
    calls = [p for p in out["parts"] if p["type"] == "server_tool_call"]
    results = {p["id"]: p["server_tool_call_response"] for p in out["parts"]
               if p["type"] == "server_tool_call_response"}
    assert [(c["id"], c["name"], c["server_tool_call"]["type"]) for c in calls] == [
        (rb.WEB_SEARCH["id"], "web_search", "web_search"), (rb.FILE_SEARCH["id"], "file_search", "file_search"),
        (rb.CODE_INTERPRETER["id"], "code_interpreter", "code_interpreter"),
        (rb.IMAGE_GENERATION["id"], "image_generation", "image_generation"),
        (rb.MCP_CALL["id"], "ask_question", "mcp")]
    web, files, code, _image, mcp = (c["server_tool_call"] for c in calls)
    assert web["action"] == {"type": "search", "query": "python factorial"}
    assert results[rb.WEB_SEARCH["id"]] == {"type": "web_search", "sources": rb.WEB_SEARCH["action"]["sources"]}
    assert files == {"type": "file_search", "queries": ["deep research"]}
    assert results[rb.FILE_SEARCH["id"]]["results"][0]["file_id"] == "file-2dtbBZdjtDKS8eqWxqbgDi"
    assert code == {"type": "code_interpreter", "code": "print(10 + 20)",
                    "container_id": rb.CODE_INTERPRETER["container_id"]}
    assert results[rb.CODE_INTERPRETER["id"]] == {"type": "code_interpreter",
                                                  "outputs": [{"type": "logs", "logs": "30"}]}
    image = results[rb.IMAGE_GENERATION["id"]]["result"]
    assert (image["type"], image["modality"]) == ("blob", "image")
    assert image["content"].startswith("[image omitted")  # images are kept only when asked for
    assert mcp == {"type": "mcp", "server_label": "deepwiki", "arguments": rb.MCP_CALL["arguments"]}
    assert results[rb.MCP_CALL["id"]] == {"type": "mcp", "output": rb.MCP_CALL["output"]}
    assert out["parts"][-1] == {"type": "text", "content": "Paris."}
    definitions = content(span, "gen_ai.tool.definitions")
    assert [(d["type"], d["name"]) for d in definitions] == [
        ("web_search", "web_search"), ("file_search", "file_search"), ("code_interpreter", "code_interpreter"),
        ("image_generation", "image_generation"), ("mcp", "deepwiki")]


def test_custom_and_computer_calls_keep_call_id_and_finish_reason(spans, capture_content):
    needs_sdk("responses.response_custom_tool_call", "no custom tools")
    with _served(rb.response([rb.CUSTOM_CALL, rb.COMPUTER_CALL])) as served:
        client_for(served).responses.create(model="computer-use-preview", input="Open the page",
                                            tools=[{"type": "custom", "name": "code_exec"}])
    [span] = llm_spans(spans)
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)  # the app must act
    [out] = content(span, "gen_ai.output.messages")
    assert out == {"role": "assistant", "finish_reason": "tool_call", "parts": [
        {"type": "tool_call", "id": rb.CUSTOM_CALL["call_id"], "name": "code_exec",
         "arguments": rb.CUSTOM_CALL["input"]},
        {"type": "tool_call", "id": rb.COMPUTER_CALL["call_id"], "name": "computer",
         "arguments": rb.COMPUTER_CALL["action"]}]}
    assert content(span, "gen_ai.tool.definitions") == [{"type": "custom", "name": "code_exec"}]


def test_tool_outputs_in_history_are_tool_messages(cassette, spans, capture_content):
    screenshot = "data:image/png;base64," + "iVBORw0KGgo" * 8
    history = [
        {"role": "user", "content": "Run it and click"},
        {"type": "function_call", "call_id": "call_fn1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
        rb.CUSTOM_CALL,
        rb.COMPUTER_CALL,
        {"type": "function_call_output", "call_id": "call_fn1", "output": "18C"},
        {"type": "custom_tool_call_output", "call_id": rb.CUSTOM_CALL["call_id"], "output": "hello world"},
        {"type": "computer_call_output", "call_id": rb.COMPUTER_CALL["call_id"],
         "output": {"type": "computer_screenshot", "image_url": screenshot}},
    ]
    client = cassette("test_responses/test_responses").openai_client()
    client.responses.create(model="gpt-4.1-nano", input=history)
    [span] = llm_spans(spans)
    messages = content(span, "gen_ai.input.messages")
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "tool"]
    assert [(p["type"], p["id"], p["name"]) for p in messages[1]["parts"]] == [  # one turn, three calls
        ("tool_call", "call_fn1", "get_weather"), ("tool_call", rb.CUSTOM_CALL["call_id"], "code_exec"),
        ("tool_call", rb.COMPUTER_CALL["call_id"], "computer")]
    assert messages[1]["parts"][0]["arguments"] == {"city": "Paris"}
    responses = [m["parts"][0] for m in messages[2:]]
    assert [(p["type"], p["id"]) for p in responses] == [
        ("tool_call_response", "call_fn1"), ("tool_call_response", rb.CUSTOM_CALL["call_id"]),
        ("tool_call_response", rb.COMPUTER_CALL["call_id"])]
    assert responses[0]["response"] == "18C" and responses[1]["response"] == "hello world"
    assert responses[2]["response"]["type"] == "computer_screenshot"
    assert responses[2]["response"]["image_url"].startswith("[image omitted")


def test_server_tool_items_in_history(cassette, spans, capture_content):
    client = cassette("test_responses/test_responses").openai_client()
    client.responses.create(model="gpt-4.1-nano", input=[
        {"role": "user", "content": "Search"}, rb.WEB_SEARCH, rb.message("Found it."),
        {"role": "user", "content": "Thanks"}])
    [span] = llm_spans(spans)
    messages = content(span, "gen_ai.input.messages")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [p["type"] for p in messages[1]["parts"]] == ["server_tool_call", "server_tool_call_response", "text"]


def test_file_and_image_parts_carry_what_the_schema_requires(cassette, spans, capture_content):
    pdf = "data:application/pdf;base64,JVBERi0xLjQK"
    client = cassette("test_responses/test_responses").openai_client()
    client.responses.create(model="gpt-4.1-nano", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Compare"},
        {"type": "input_file", "file_id": "file-abc123"},
        {"type": "input_file", "filename": "a.pdf", "file_data": pdf},
        {"type": "input_file", "file_url": "https://example.com/b.pdf"},
        {"type": "input_image", "file_id": "file-img456"},
        {"type": "input_image", "image_url": "https://example.com/c.png"},
    ]}])
    [span] = llm_spans(spans)
    [message] = content(span, "gen_ai.input.messages")
    assert message["parts"] == [
        {"type": "text", "content": "Compare"},
        {"type": "file", "modality": "document", "file_id": "file-abc123"},
        {"type": "blob", "modality": "document", "mime_type": "application/pdf", "content": "JVBERi0xLjQK",
         "filename": "a.pdf"},
        {"type": "uri", "modality": "document", "uri": "https://example.com/b.pdf"},
        {"type": "file", "modality": "image", "file_id": "file-img456"},
        {"type": "uri", "modality": "image", "uri": "https://example.com/c.png"}]


def test_chat_file_parts(cassette, spans, capture_content):
    client = cassette("test_chat/test_chat").openai_client()
    client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-abc123"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}},
    ]}])
    [span] = llm_spans(spans)
    [message] = content(span, "gen_ai.input.messages")
    assert message["parts"] == [
        {"type": "file", "modality": "document", "file_id": "file-abc123"},
        {"type": "blob", "modality": "document", "mime_type": "application/pdf", "content": "JVBERi0xLjQK",
         "filename": "a.pdf"}]


def test_instructions_and_history_roles(cassette, spans, capture_content):
    """``instructions`` are given apart: system instructions. System and developer messages in
    the input are part of the history: input messages, role kept."""
    client = cassette("test_responses/test_responses").openai_client()
    client.responses.create(model="gpt-4.1-nano", instructions="Be brief.", input=[
        {"role": "developer", "content": "Answer in French."}, {"role": "system", "content": "No emojis."},
        {"role": "user", "content": "Capital of France?"}])
    [span] = llm_spans(spans)
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    assert [m["role"] for m in content(span, "gen_ai.input.messages")] == ["developer", "system", "user"]


def test_compaction_item_marks_the_conversation_compacted(cassette, spans, capture_content):
    compaction = {"type": "compaction", "id": "cmp_68c1", "encrypted_content": "gAAAAABo-opaque"}
    client = cassette("test_responses/test_responses_with_input_history").openai_client()
    client.responses.create(model="gpt-4.1-nano", input=[compaction, {"role": "user", "content": "Go on"}])
    client.responses.create(model="gpt-4.1-nano", input=[{"role": "user", "content": "Go on"}])
    compacted, plain = llm_spans(spans)
    assert compacted.attributes["gen_ai.conversation.compacted"] is True
    assert "gen_ai.conversation.compacted" not in plain.attributes  # never False: unset when not known
    first = content(compacted, "gen_ai.input.messages")[0]["parts"][0]
    assert first == {"type": "generic", "generic_type": "compaction", "id": "cmp_68c1"}  # no encrypted content


def test_request_attributes(cassette, spans):
    client = cassette("test_responses/test_responses_reasoning").openai_client()
    client.responses.create(model="gpt-5-nano", input="Count r's in strawberry", reasoning={"effort": "low"},
                            previous_response_id="resp_previous123", extra_body={"service_tier": "auto"})
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.request.reasoning.level"] == "low"
    assert a["gen_ai.request.previous_response.id"] == "resp_previous123"
    assert a["openai.api.type"] == "responses"
    assert "openai.request.service_tier" not in a  # "auto" is no choice
    assert not any(key.startswith("openai.request.reasoning") for key in a)


def test_cache_write_tokens(spans, metric_reader):
    body = rb.response([rb.message("ok")], usage={
        "input_tokens": 2100, "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 1000},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2105})
    relayed = rb.response([rb.message("ok")], usage={  # a compatible server relaying Anthropic's usage
        "input_tokens": 50, "input_tokens_details": {"cached_tokens": 0}, "cache_creation_input_tokens": 40,
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 55})
    replies = [json_reply(body), json_reply(relayed)]
    with local_server(lambda method, path, request: replies.pop(0)) as served:
        client = client_for(served)
        client.responses.create(model="gpt-4.1-nano", input="hi")
        client.responses.create(model="claude-sonnet-4", input="hi")
    first, second = llm_spans(spans)
    assert first.attributes["gen_ai.usage.cache_creation.input_tokens"] == 1000
    assert first.attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert second.attributes["gen_ai.usage.cache_creation.input_tokens"] == 40


def test_with_raw_response_parse(cassette, spans):
    import pydantic

    class Person(pydantic.BaseModel):
        name: str
        age: int

    client = cassette("test_responses/test_responses_parse").openai_client()
    if not hasattr(client.responses.with_raw_response, "parse"):
        pytest.skip(f"openai {openai.__version__}: no responses.parse")
    raw = client.responses.with_raw_response.parse(model="gpt-4.1-nano", input="Extract: Alice is 30 years old.",
                                                   text_format=Person)
    parsed = raw.parse()
    assert parsed.output_parsed.name == "Alice"
    [span] = llm_spans(spans)
    a = span.attributes
    assert a["gen_ai.response.id"] == parsed.id == "resp_02f386d5a19c47c9006a184bde9ae08190ac00681814c21cb4"
    assert a["gen_ai.response.model"] == parsed.model
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        parsed.usage.input_tokens, parsed.usage.output_tokens)
    assert a["gen_ai.output.type"] == "json"


def test_request_content_kept_when_the_call_fails(spans, capture_content):
    error = {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}}
    with local_server(lambda method, path, request: json_reply(error, status=500)) as served:
        client = client_for(served)
        with pytest.raises(Exception) as caught:
            client.responses.create(model="gpt-4.1-nano", instructions="Be brief.", input="What is 2+2?")
        with pytest.raises(type(caught.value)):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 2+2?"}])
    responses_span, chat_span = llm_spans(spans)
    for span in (responses_span, chat_span):
        assert span.status.status_code.name == "ERROR"
        assert span.attributes["error.type"] == "InternalServerError"
        assert content(span, "gen_ai.input.messages") == [
            {"role": "user", "parts": [{"type": "text", "content": "What is 2+2?"}]}]
    assert content(responses_span, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]


def test_responses_stream_error_event(spans, metric_reader):
    """An ``error`` event ends the stream without an exception: the span carries its code."""
    events = rb.event_stream(rb.response([]), deltas=["Hel"])[:-1] + [("error", {
        "type": "error", "code": "rate_limit_exceeded", "message": "Slow down", "param": None,
        "sequence_number": 2})]
    with local_server(lambda method, path, body: sse_reply(events)) as served:
        kinds = [e.type for e in client_for(served).responses.create(model="gpt-4.1-nano", input="hi", stream=True)]
    assert kinds[:2] == ["response.created", "response.output_text.delta"] and len(kinds) == 3
    [span] = llm_spans(spans)
    assert span.attributes["error.type"] == "rate_limit_exceeded"
    assert span.status.status_code is StatusCode.ERROR
    assert "llm_otel.stream.closed_early" not in span.attributes  # it ended: in an error
    assert metric_reader.count("gen_ai.client.operation.duration", error__type="rate_limit_exceeded") == 1


def test_responses_stream_abandoned_ends_in_error(cassette, spans, capture_content):
    client = cassette("test_responses/test_responses_streaming").openai_client()
    stream = client.responses.create(model="gpt-4.1-nano", stream=True,
                                     input="Tell me a three sentence bedtime story about a unicorn.")
    deltas = []
    for event in stream:
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
            if len(deltas) == 3:
                break
    del stream, event
    gc.collect()
    [span] = llm_spans(spans)
    assert span.attributes["llm_otel.run.abandoned"] is True
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert content(span, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "".join(deltas)}], "finish_reason": "error"}]
