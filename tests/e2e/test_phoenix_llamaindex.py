"""End to end: a LlamaIndex agent with a RAG tool -> OTLP/HTTP -> Phoenix, read back through
Phoenix's REST API the way a Phoenix user finds things there (llamaindex_agent_app.py).

Phoenix 20 converts the GenAI attributes (v1.41) to its own (OpenInference) and validates the
message and document JSON strictly (one malformed item drops the whole payload): what it
shows is also the proof that what we emit validates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_support import ROOT, otlp_env

pytestmark = pytest.mark.e2e

APP = Path(__file__).with_name("llamaindex_agent_app.py")
PROJECT = "e2e-llamaindex-agent"
sys.path.insert(0, str(APP.parent))
import llamaindex_agent_app as app  # noqa: E402 - its constants, not its run


def run_app(phoenix, standin):
    """The app under ``opentelemetry-instrument``, as a user runs it, content captured."""
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "LLM_OTEL_"))}
    env.update(otlp_env(phoenix, "http/protobuf", PROJECT, standin))
    env.update({"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_BSP_SCHEDULE_DELAY": "200",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "langchain",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"})
    proc = subprocess.run([str(launcher), sys.executable, str(APP)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _documents(attrs):
    """The retrieved documents as Phoenix lists them (``retrieval.documents.N.document.*``)."""
    docs = {}
    for key, value in attrs.items():
        if key.startswith("retrieval.documents."):
            index, field = key[len("retrieval.documents."):].split(".document.")
            docs.setdefault(int(index), {})[field] = value
    return [docs[i] for i in sorted(docs)]


def _under(span, ancestor, by_id):
    while span["parent_id"] is not None:
        span = by_id[span["parent_id"]]
        if span is ancestor:
            return True
    return False


def test_agent_with_rag_tool_as_phoenix_shows_it(phoenix, standin):
    before = len(standin.journal)
    proc = run_app(phoenix, standin)
    asked = [r["choices"][0]["message"]["tool_calls"][0] for path, _b, r in standin.journal[before:]
             if path.endswith("/chat/completions") and r["choices"][0]["finish_reason"] == "tool_calls"]
    assert len(asked) == len(app.QUESTIONS)  # the model asked for the tool once per turn
    spans = phoenix.spans(PROJECT, expect=40, context=proc.stderr)
    by_id = {s["context"]["span_id"]: s for s in spans}
    agents = [s for s in spans if s["span_kind"] == "AGENT"]
    answers = proc.stdout.splitlines()
    assert [a["name"] for a in agents] == ["invoke_agent notes_agent"] * 2  # one agent per turn, no step
    for turn, (agent, question, answer, call) in enumerate(zip(agents, app.QUESTIONS, answers, asked)):
        trace = [s for s in spans if s["context"]["trace_id"] == agent["context"]["trace_id"]]
        assert agent["parent_id"] is None and all(s is agent or _under(s, agent, by_id) for s in trace)
        a = agent["attributes"]
        # the agent: its name and description, its model, the conversation as messages
        assert a["gen_ai.agent.name"] == "notes_agent"
        assert a["gen_ai.agent.description"] == "Answers questions from the team's notes."
        assert a["llm.model_name"] == "gpt-4o-mini"
        assert a["llm.input_messages.0.message.role"] == "user"
        assert a["llm.input_messages.0.message.content"] == question
        assert "llm.input_messages.1.message.role" not in a
        assert a["llm.output_messages.0.message.role"] == "assistant"
        assert a["llm.output_messages.0.message.content"] == answer
        assert a["llm.output_messages.0.message.finish_reason"] == "stop"
        chats = [s for s in trace if s["attributes"].get("gen_ai.operation.name") == "chat"]
        assert a["llm.token_count.prompt"] == sum(c["attributes"].get("gen_ai.usage.input_tokens", 0) for c in chats)
        assert {s["span_kind"] for s in trace if s["name"].startswith("agent_step ")} == {"CHAIN"}

        # the tool, with the call id the model sent, under the agent it ran for
        (tool,) = [s for s in trace if s["span_kind"] == "TOOL"]
        assert tool["attributes"]["tool.name"] == "search_notes"
        assert tool["attributes"]["tool.id"] == call["id"]
        assert tool["attributes"]["gen_ai.agent.name"] == "notes_agent"
        query = tool["attributes"]["tool.parameters.input"]
        assert query == json.loads(call["function"]["arguments"])["input"]
        # the model's tool call and the tool's answer, as the next model call saw them
        asking = [c for c in chats if c["attributes"].get("llm.finish_reason") == "tool_calls"]
        assert [c["attributes"]["llm.output_messages.0.message.tool_calls.0.tool_call.id"] for c in asking] == \
            [call["id"]]

        # the retrieval the tool ran: the index it searched, the query, top_k documents
        (retrieval,) = [s for s in trace if s["span_kind"] == "RETRIEVER"]
        assert retrieval["name"] == "retrieval notes" and _under(retrieval, tool, by_id)
        r = retrieval["attributes"]
        assert r["input.value"] == query
        docs = _documents(r)
        assert len(docs) == 2 and {d["content"] for d in docs} <= set(app.NOTES)
        assert all(isinstance(d["id"], str) and d["id"] for d in docs)
        assert docs[0]["score"] >= docs[1]["score"]
        assert query in docs[0]["content"], f"turn {turn}: the best document names {query}"
        assert not any(s["status_code"] == "ERROR" for s in trace)

    # one conversation (the memory's session), one Phoenix session of both turns
    (session,) = phoenix.get(f"/v1/projects/{PROJECT}/sessions")["data"]
    assert session["session_id"] == app.SESSION
    assert [t["trace_id"] for t in session["traces"]] == [a["context"]["trace_id"] for a in agents]
