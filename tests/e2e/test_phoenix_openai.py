"""End to end: examples/openai_chat.py under ``opentelemetry-instrument`` -> OTLP -> Phoenix.

Two runs, one per OTLP protocol, each into its own Phoenix project; the spans are read
back through Phoenix's REST API and checked against what the stand-in server really
served (response ids, token usage): names, parents, GenAI attributes, content opt-in.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from e2e_support import otlp_env, run_example

pytestmark = pytest.mark.e2e

MODEL = "gpt-4o-mini"
ROOTS = {"example chat": 1, "example stream": 1, "example weather agent": 2}  # root -> LLM calls


@pytest.fixture(scope="module", params=["http/protobuf", "grpc"])
def exported(request, phoenix, standin):
    """Run the example once over the protocol; content capture on for HTTP, off for gRPC."""
    protocol = request.param
    project = f"e2e-openai-{protocol.split('/')[0]}"
    env = otlp_env(phoenix, protocol, project, standin)
    if protocol == "http/protobuf":
        env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    before = len(standin.journal)
    proc = run_example("openai_chat.py", env=env)
    served = [entry for entry in standin.journal[before:] if entry[0].endswith("/chat/completions")]
    assert len(served) == sum(ROOTS.values()), proc.stdout
    spans = phoenix.spans(project, expect=len(ROOTS) + len(served), context=proc.stderr)
    return protocol, spans, served


def _llm_spans(spans):
    return [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]


def test_tree_roots_and_parents(exported):
    _, spans, served = exported
    by_id = {s["context"]["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert sorted(r["name"] for r in roots) == sorted(ROOTS)
    children = defaultdict(list)
    for s in spans:
        if s["parent_id"] is not None:
            assert s["parent_id"] in by_id, f"{s['name']} has a parent Phoenix never received"
            children[s["parent_id"]].append(s)
    for root in roots:
        kids = children[root["context"]["span_id"]]
        assert [k["name"] for k in kids] == [f"chat {MODEL}"] * ROOTS[root["name"]], root["name"]
        assert all(k["context"]["trace_id"] == root["context"]["trace_id"] for k in kids)
    # one LLM call is one LLM span: as many chat spans as requests the server answered
    assert len(_llm_spans(spans)) == len(served)
    assert all(s["status_code"] != "ERROR" for s in spans)


def test_genai_attributes_match_what_was_served(exported, standin):
    _, spans, served = exported
    llm = {s["attributes"]["gen_ai.response.id"]: s for s in _llm_spans(spans)}
    assert len(llm) == len(served)
    for _path, body, response in served:
        span = llm[response["id"]]
        attrs = span["attributes"]
        assert span["span_kind"] == "LLM"  # Phoenix recognised the GenAI span as an LLM call
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.request.model"] == MODEL
        assert attrs["gen_ai.response.model"] == response["model"]
        assert attrs["gen_ai.usage.input_tokens"] == response["usage"]["prompt_tokens"]
        assert attrs["gen_ai.usage.output_tokens"] == response["usage"]["completion_tokens"]
        assert list(attrs["gen_ai.response.finish_reasons"]) == [response["choices"][0]["finish_reason"]]
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["server.port"] == standin.port
        assert attrs["openai.api.type"] == "chat_completions"
        assert attrs["openai.response.system_fingerprint"] == response["system_fingerprint"]
        assert attrs["openai.response.service_tier"] == response["service_tier"]
        assert "gen_ai.usage.estimated" not in attrs and not attrs.get("llm_otel.usage.estimated")
    by_root = _by_root_name(spans)
    chat = by_root["example chat"][0]["attributes"]
    assert chat["gen_ai.request.temperature"] == pytest.approx(0.2)
    assert chat["gen_ai.request.max_tokens"] == 60
    first_tool_turn = by_root["example weather agent"][0]["attributes"]
    assert list(first_tool_turn["gen_ai.response.finish_reasons"]) == ["tool_calls"]


def test_streamed_call_has_usage_from_the_final_chunk(exported):
    _, spans, served = exported
    stream = _by_root_name(spans)["example stream"][0]["attributes"]
    streamed = [resp for _p, body, resp in served if body.get("stream")]
    assert len(streamed) == 1
    assert stream["gen_ai.response.id"] == streamed[0]["id"]
    assert stream["gen_ai.usage.output_tokens"] == streamed[0]["usage"]["completion_tokens"]


def test_message_content_only_when_opted_in(exported):
    protocol, spans, _ = exported
    chat = _by_root_name(spans)["example chat"][0]["attributes"]
    if protocol == "http/protobuf":  # this run set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
        # the system message is part of the chat's history: an input message, role kept
        assert [m["role"] for m in _messages(chat["gen_ai.input.messages"])] == ["system", "user"]
        assert "Name one use of OpenTelemetry." in str(chat["gen_ai.input.messages"])
        assert "gen_ai.system_instructions" not in chat
        assert "Stand-in answer" in str(chat["gen_ai.output.messages"])
        tool_turn = _by_root_name(spans)["example weather agent"][1]["attributes"]
        history = _messages(tool_turn["gen_ai.input.messages"])
        [call] = [p for m in history for p in m["parts"] if p["type"] == "tool_call"]
        [result] = [p for m in history if m["role"] == "tool" for p in m["parts"]]
        assert call["name"] == "get_weather" and result["id"] == call["id"]  # the call id links them
    else:
        assert not any(k in chat for k in ("gen_ai.input.messages", "gen_ai.output.messages",
                                           "gen_ai.system_instructions"))
    assert all("standin-no-key" not in str(s["attributes"]) for s in spans)  # never the API key


def _messages(value):
    """Phoenix returns a JSON string attribute as it was sent (or already parsed)."""
    return json.loads(value) if isinstance(value, str) else value


def _by_root_name(spans):
    """LLM spans grouped by the name of their trace's root, in start order."""
    roots = {s["context"]["trace_id"]: s["name"] for s in spans if s["parent_id"] is None}
    out = defaultdict(list)
    for s in _llm_spans(spans):
        out[roots[s["context"]["trace_id"]]].append(s)
    return out
