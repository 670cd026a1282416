"""End to end: the LangChain and LlamaIndex examples -> OTLP/HTTP -> Phoenix.

What a Phoenix user must see: one trace per question, the framework's steps nested under
its root, and each model call exactly once (the framework's LLM span and the OpenAI SDK's
call merged), with the usage the server really reported.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from e2e_support import ROOT, otlp_env, run_example

APPS = ROOT / "tests" / "e2e" / "apps"

pytestmark = pytest.mark.e2e


def _export(phoenix, standin, script, project, min_spans):
    before = len(standin.journal)
    proc = run_example(script, env=otlp_env(phoenix, "http/protobuf", project, standin))
    served = standin.journal[before:]
    spans = phoenix.spans(project, expect=min_spans, context=proc.stderr)
    return spans, served


def _trace_of(spans, root_name):
    roots = [s for s in spans if s["parent_id"] is None and s["name"] == root_name]
    assert len(roots) == 1, [s["name"] for s in spans if s["parent_id"] is None]
    trace_id = roots[0]["context"]["trace_id"]
    return roots[0], [s for s in spans if s["context"]["trace_id"] == trace_id]


def _ancestors(span, by_id):
    out = []
    while span["parent_id"] is not None:
        span = by_id[span["parent_id"]]
        out.append(span["name"])
    return out


def _check_llm_spans_match_server(llm_spans, served_chat):
    by_response = {s["attributes"]["gen_ai.response.id"]: s for s in llm_spans}
    assert len(by_response) == len(llm_spans) == len(served_chat), "one LLM call, one LLM span"
    for _path, _body, response in served_chat:
        attrs = by_response[response["id"]]["attributes"]
        assert attrs["gen_ai.usage.input_tokens"] == response["usage"]["prompt_tokens"]
        assert attrs["gen_ai.usage.output_tokens"] == response["usage"]["completion_tokens"]
        assert attrs["gen_ai.provider.name"] == "openai"


def test_langchain_chain_with_retriever_and_tool(phoenix, standin):
    spans, served = _export(phoenix, standin, "langchain_chain.py", "e2e-langchain", min_spans=7)
    by_id = {s["context"]["span_id"]: s for s in spans}
    root, trace = _trace_of(spans, "travel_assistant")
    for span in trace:
        if span is not root:
            assert _ancestors(span, by_id)[-1] == "travel_assistant", span["name"]
    chats = [s for s in trace if s["attributes"].get("gen_ai.operation.name") == "chat"]
    tools = [s for s in trace if s["attributes"].get("gen_ai.operation.name") == "execute_tool"]
    assert [t["name"] for t in tools] == ["execute_tool get_weather"]
    assert any("Retriever" in s["name"] for s in trace)
    served_chat = [e for e in served if e[0].endswith("/chat/completions")]
    _check_llm_spans_match_server(chats, served_chat)
    # the tool ran between the two model calls: the model asked, the app answered
    order = sorted(chats + tools, key=lambda s: s["start_time"])
    assert [s["attributes"]["gen_ai.operation.name"] for s in order] == ["chat", "execute_tool", "chat"]
    first_reasons = list(order[0]["attributes"]["gen_ai.response.finish_reasons"])
    assert first_reasons == ["tool_calls"]
    # every embeddings request the app made is one embeddings span, in or out of the trace
    embedded = Counter(s["attributes"].get("gen_ai.operation.name") for s in spans)["embeddings"]
    assert embedded == sum(1 for e in served if e[0].endswith("/embeddings"))


def _validated(span, key, converted):
    """Phoenix turned our JSON content attribute into its own attributes: every item of it
    passed its strict validation (one bad item and none is converted)."""
    items = json.loads(span["attributes"][key])
    indexes = {k.split(".")[2] for k in span["attributes"] if k.startswith(converted + ".")}
    assert indexes == {str(i) for i in range(len(items))}, (span["name"], key)
    return items


def test_langchain_agent_conversation(phoenix, standin):
    """What a Phoenix user looks for in an agent app: the agent with its name and messages,
    its tools with their call ids, the retriever with its documents, one session for the
    conversation; and every message, document and tool list we send passes Phoenix's
    validation of the conventions' JSON."""
    before = len(standin.journal)
    env = otlp_env(phoenix, "http/protobuf", "e2e-langchain-agent", standin)
    env.update({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY", "E2E_THREAD": "trip-42",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "llama_index"})
    proc = run_example(str(APPS / "langchain_agent.py"), env=env)
    served = standin.journal[before:]
    spans = phoenix.spans("e2e-langchain-agent", expect=19, context=proc.stderr)
    by_id = {s["context"]["span_id"]: s for s in spans}
    agents = [s for s in spans if s["span_kind"] == "AGENT"]
    assert [a["name"] for a in agents] == ["invoke_agent travel_agent"] * 2
    answers = [r["choices"][0]["message"]["content"] for p, _b, r in served
               if p.endswith("/chat/completions") and r["choices"][0]["message"]["content"]]
    for agent, question, answer in zip(agents, ("What should I pack for Paris?", "And what about Oslo?"), answers):
        a = agent["attributes"]
        assert a["gen_ai.agent.name"] == "travel_agent" and agent["parent_id"] is None
        assert _validated(agent, "gen_ai.input.messages", "llm.input_messages")[0]["parts"][0]["content"] == question
        assert a["llm.input_messages.0.message.role"] == "user"
        assert _validated(agent, "gen_ai.output.messages", "llm.output_messages")[0]["parts"][0]["content"] == answer
        assert a["llm.output_messages.0.message.content"] == answer
    # the tools, with the ids of the calls the server asked for, under their agent
    asked = [call["id"] for _p, _b, r in served if _p.endswith("/chat/completions")
             for call in (r["choices"][0]["message"].get("tool_calls") or ())]
    tools = [s for s in spans if s["span_kind"] == "TOOL"]
    assert [t["attributes"]["tool.id"] for t in tools] == [t["attributes"]["gen_ai.tool.call.id"] for t in tools] \
        == asked and len(asked) == 2
    for tool_span in tools:
        assert tool_span["attributes"]["gen_ai.agent.name"] == "travel_agent"
        assert "invoke_agent travel_agent" in _ancestors(tool_span, by_id)
    # the retriever inside the tool, with its documents (ids and scores) and its query embedding
    retrievers = [s for s in spans if s["span_kind"] == "RETRIEVER"]
    assert len(retrievers) == 2
    for retriever in retrievers:
        docs = _validated(retriever, "gen_ai.retrieval.documents", "retrieval.documents")
        a = retriever["attributes"]
        assert [a[f"retrieval.documents.{i}.document.id"] for i in range(len(docs))] == [d["id"] for d in docs]
        assert all(a[f"retrieval.documents.{i}.document.score"] == d["score"] for i, d in enumerate(docs))
        assert a["gen_ai.request.top_k"] == 2.0 and by_id[retriever["parent_id"]]["span_kind"] == "TOOL"
        assert any(s["parent_id"] == retriever["context"]["span_id"] and s["span_kind"] == "EMBEDDING" for s in spans)
    # every model call once, with what the server reported; every content attribute valid
    chats = [s for s in spans if s["span_kind"] == "LLM"]
    _check_llm_spans_match_server(chats, [e for e in served if e[0].endswith("/chat/completions")])
    for span in chats:
        for key, converted in (("gen_ai.input.messages", "llm.input_messages"),
                               ("gen_ai.output.messages", "llm.output_messages"),
                               ("gen_ai.tool.definitions", "llm.tools")):
            _validated(span, key, converted)
    # one conversation, one session: both turns' traces, every span of them in it
    (session,) = phoenix.get("/v1/projects/e2e-langchain-agent/sessions")["data"]
    assert session["session_id"] == "trip-42"
    assert sorted(t["trace_id"] for t in session["traces"]) == sorted(a["context"]["trace_id"] for a in agents)
    in_conversation = [s for s in spans if s["context"]["trace_id"] in {a["context"]["trace_id"] for a in agents}]
    assert {s["attributes"].get("gen_ai.conversation.id") for s in in_conversation} == {"trip-42"}


def test_llamaindex_rag_query(phoenix, standin):
    spans, served = _export(phoenix, standin, "llamaindex_rag.py", "e2e-llamaindex", min_spans=4)
    by_id = {s["context"]["span_id"]: s for s in spans}
    served_chat = [e for e in served if e[0].endswith("/chat/completions")]
    chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    _check_llm_spans_match_server(chats, served_chat)
    (chat,) = chats
    # the LLM call belongs to the query's trace, under the query engine's root span
    chain = _ancestors(chat, by_id)
    assert chain, "the RAG query's LLM call has no parent: the query was not traced"
    query_root = by_id[[s["context"]["span_id"] for s in spans
                        if s["context"]["trace_id"] == chat["context"]["trace_id"] and s["parent_id"] is None][0]]
    same_trace = [s for s in spans if s["context"]["trace_id"] == query_root["context"]["trace_id"]]
    # the question was embedded inside the retrieval, the answer written inside the synthesis
    (query_embedding,) = [s for s in same_trace if s["attributes"].get("gen_ai.operation.name") == "embeddings"]
    assert any("retriev" in name.lower() for name in _ancestors(query_embedding, by_id))
    assert any("synthes" in name.lower() for name in chain)
    assert query_root["name"].lower().startswith("query")


def test_track_pipeline_over_grpc(phoenix, standin):
    """@track steps, trace-level data and cost reach Phoenix over OTLP/gRPC."""
    before = len(standin.journal)
    proc = run_example("track_pipeline.py", env=otlp_env(phoenix, "grpc", "e2e-track", standin))
    served_chat = [e for e in standin.journal[before:] if e[0].endswith("/chat/completions")]
    spans = phoenix.spans("e2e-track", expect=6, context=proc.stderr)
    by_id = {s["context"]["span_id"]: s for s in spans}
    root, trace = _trace_of(spans, "support_pipeline")
    assert len(trace) == len(spans) == 6
    names = {s["name"]: s for s in trace}
    for step in ("find_articles", "draft_answer", "polish"):
        assert by_id[names[step]["parent_id"]] is root
    chats = [s for s in trace if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert sorted(by_id[c["parent_id"]]["name"] for c in chats) == ["draft_answer", "polish"]
    _check_llm_spans_match_server(chats, served_chat)
    # the generator's span lasts until its stream is consumed
    polish = names["polish"]
    (polish_chat,) = [c for c in chats if c["parent_id"] == polish["context"]["span_id"]]
    assert polish["end_time"] >= polish_chat["end_time"]
    # trace-level data sits on the root, where Phoenix and Jaeger users filter on it
    attrs = root["attributes"]
    assert attrs["user.id"] == "user-7" and attrs["session.id"] == "session-42"
    assert {"example", "support"} <= set(attrs["llm_otel.tags"])
    assert attrs["llm_otel.feedback.grounded.value"] == 1.0
    assert attrs["llm_otel.metadata.channel"] == "cli"
    # the cost printed by usage() is the sum of the LLM spans' costs
    costs = [c["attributes"]["llm_otel.cost.usd"] for c in chats]
    assert all(c > 0 for c in costs)
    assert f"${sum(costs):.6f}" in proc.stdout
    assert f"{len(served_chat)} requests" in proc.stdout
    # what Phoenix's UI shows: its own token counts derived from ours, and the session view
    for chat in chats:
        a = chat["attributes"]
        assert a["llm.token_count.prompt"] == a["gen_ai.usage.input_tokens"]
        assert a["llm.token_count.completion"] == a["gen_ai.usage.output_tokens"]
    (session,) = phoenix.get("/v1/projects/e2e-track/sessions")["data"]
    assert session["session_id"] == "session-42"
    assert [t["trace_id"] for t in session["traces"]] == [root["context"]["trace_id"]]
    assert session["token_count_total"] == sum(r["usage"]["total_tokens"] for _p, _b, r in served_chat)
