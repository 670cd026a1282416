"""The profile switch: the same chat, stream, embeddings, retrieval, agent, workflow and tool
calls under semantic conventions v1.41 (default) and semantic-conventions-genai v0.1.0
(``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``): each name as its profile
says, and no name of the other profile anywhere (spans, metric names, metric attributes)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind

from conv_support import ONLY, OTHER, V010, V141, paced_server, span_named, with_usage
from llm_otel.core import LLMInvocation, StepInvocation, ToolInvocation, get_recorder

USAGE = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
         "prompt_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 40},
         "completion_tokens_details": {"reasoning_tokens": 12}}
HELLO = [{"role": "user", "content": "Say hello"}]


def _everything(served, cassette, tag: str) -> None:
    """One of each kind of call, every name carrying ``tag``."""
    client = served.client()
    client.chat.completions.create(model=f"{tag}-chat", messages=HELLO, extra_body={"top_k": 5})
    for _ in client.chat.completions.create(model=f"{tag}-stream", messages=HELLO, stream=True,
                                            stream_options={"include_usage": True}):
        pass
    cassette("test_embeddings/test_embeddings").openai_client().embeddings.create(
        model=f"{tag}-embed", input="Tell me a joke about opentelemetry")
    recorder = get_recorder()
    with recorder.start(StepInvocation(name="flow", operation="invoke_workflow", agent_name=f"{tag}-workflow")):
        with recorder.start(StepInvocation(name="agent", operation="invoke_agent", agent_name=f"{tag}-agent")):
            client.chat.completions.create(model=f"{tag}-inner", messages=HELLO)
            with recorder.start(ToolInvocation(name=f"{tag}-tool", tool_type="function", call_id="call_1")):
                pass
        with recorder.start(StepInvocation(name="find", operation="retrieval", data_source_id=f"{tag}-index",
                                           top_k=3)):
            pass


def _names(spans, metrics, tag: str):
    span_names = {k for s in spans() for k in s.attributes}
    recorded = metrics.read(*{v for s in spans() for v in s.attributes.values() if isinstance(v, str)
                              and v.startswith(tag)})
    metric_attributes = {k for m in recorded.values() for p in m.points for k in p.attributes}
    return span_names, set(recorded), metric_attributes


def test_no_name_of_the_other_profile(profile, spans, metrics, cassette):
    tag = f"conv-all-{profile}"
    with paced_server(reply=with_usage(USAGE)) as served:
        _everything(served, cassette, tag)
    span_names, metric_names, metric_attributes = _names(spans, metrics, tag)
    own, other = ONLY[profile], ONLY[OTHER[profile]]
    assert not span_names & other["span"]
    assert not metric_names & other["metric"]
    assert not metric_attributes & other["metric_attribute"]
    assert own["span"] <= span_names
    assert own["metric"] <= metric_names
    assert own["metric_attribute"] <= metric_attributes


def test_chat_usage_and_top_k(profile, spans):
    with paced_server(reply=with_usage(USAGE)) as served:
        served.client().chat.completions.create(model="conv-usage", messages=HELLO, extra_body={"top_k": 5})
    a = span_named(spans, "chat conv-usage").attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (120, 30)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 64
    assert a["gen_ai.usage.reasoning.output_tokens"] == 12
    written = {V141: "gen_ai.usage.cache_creation.input_tokens", V010: "gen_ai.usage.cache_write.input_tokens"}
    assert a[written[profile]] == 40
    assert written[OTHER[profile]] not in a
    # a decoding parameter: gen_ai.request.top_k in both, a double in v1.41 and an int in v0.1.0
    assert a["gen_ai.request.top_k"] == 5
    assert type(a["gen_ai.request.top_k"]) is (float if profile == V141 else int)


def test_embeddings(profile, spans, cassette):
    cassette("test_embeddings/test_embeddings").openai_client().embeddings.create(
        model="conv-embed", input="Tell me a joke about opentelemetry")
    span = span_named(spans, "embeddings conv-embed")
    assert span.kind is SpanKind.CLIENT
    a = span.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"]) == ("embeddings", "openai")
    assert (a["gen_ai.request.model"], a["gen_ai.response.model"]) == ("conv-embed", "text-embedding-ada-002")
    assert a["gen_ai.usage.input_tokens"] == 8
    assert a["gen_ai.embeddings.dimension.count"] == 1536
    # the SDK asked for base64 on the wire by itself: not a format the app requested
    assert "gen_ai.request.encoding_formats" not in a
    assert "gen_ai.usage.output_tokens" not in a


def test_retrieval(profile, spans, capture_content):
    docs = [{"id": "d1", "score": 0.9, "content": "first"}, {"id": "d2", "content": "no score"}]
    with get_recorder().start(StepInvocation(name="find", operation="retrieval", data_source_id="conv-idx",
                                             provider="openai", top_k=4, query="what is otel", documents=docs)):
        pass
    span = span_named(spans, "retrieval conv-idx")
    a = span.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.data_source.id"], a["gen_ai.provider.name"]) == \
        ("retrieval", "conv-idx", "openai")
    assert a["gen_ai.retrieval.query.text"] == "what is otel"
    listed = json.loads(a["gen_ai.retrieval.documents"])
    if profile == V141:  # a client span; top-k is the request's, a double; documents need id and score
        assert span.kind is SpanKind.CLIENT
        assert a["gen_ai.request.top_k"] == 4.0 and type(a["gen_ai.request.top_k"]) is float
        assert "gen_ai.retrieval.top_k" not in a
        assert [d["id"] for d in listed] == ["d1"]
    else:  # v0.1.0: a framework retrieval is internal; top-k is the retrieval's own, an int
        assert span.kind is SpanKind.INTERNAL
        assert a["gen_ai.retrieval.top_k"] == 4 and type(a["gen_ai.retrieval.top_k"]) is int
        assert "gen_ai.request.top_k" not in a
        assert [d["id"] for d in listed] == ["d1", "d2"]


def test_agent(profile, spans):
    with paced_server() as served:
        with get_recorder().start(StepInvocation(name="agent", operation="invoke_agent", agent_name="conv-helper",
                                                 agent_id="asst_7", agent_description="answers")):
            served.client().chat.completions.create(model="conv-agent-model", messages=HELLO)
    span = span_named(spans, "invoke_agent conv-helper")
    llm = span_named(spans, "chat conv-agent-model")
    assert span.kind is SpanKind.INTERNAL
    a = span.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.agent.name"], a["gen_ai.agent.id"], a["gen_ai.agent.description"]) \
        == ("invoke_agent", "conv-helper", "asst_7", "answers")
    assert a["gen_ai.request.model"] == "conv-agent-model"  # the model called inside
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == \
        (llm.attributes["gen_ai.usage.input_tokens"], llm.attributes["gen_ai.usage.output_tokens"])
    if profile == V141:  # required on both agent spans in v1.41
        assert a["gen_ai.provider.name"] == "openai"
    else:  # v0.1.0 removed it from in-process agents
        assert "gen_ai.provider.name" not in a
    assert llm.parent.span_id == span.context.span_id


def test_workflow(profile, spans, capture_content):
    with get_recorder().start(StepInvocation(name="flow", operation="invoke_workflow", agent_name="conv-flow",
                                             inputs="a question", outputs="an answer")):
        pass
    span = span_named(spans, "invoke_workflow conv-flow")
    assert span.kind is SpanKind.INTERNAL
    a = span.attributes
    assert a["gen_ai.operation.name"] == "invoke_workflow"
    named = {V141: "gen_ai.workflow.name", V010: "gen_ai.agent.name"}
    assert a[named[profile]] == "conv-flow"
    assert named[OTHER[profile]] not in a
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "a question"}]}]
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"] == [{"type": "text", "content": "an answer"}]


def test_tool(profile, spans, capture_content):
    recorder = get_recorder()
    with recorder.start(StepInvocation(name="agent", operation="invoke_agent", agent_name="conv-tool-agent")):
        with recorder.start(ToolInvocation(name="conv-lookup", tool_type="function", call_id="call_9",
                                           description="finds things", arguments={"q": "otel"}, result={"n": 2})):
            pass
    span = span_named(spans, "execute_tool conv-lookup")
    assert span.kind is SpanKind.INTERNAL
    a = span.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.tool.name"], a["gen_ai.tool.type"], a["gen_ai.tool.call.id"],
            a["gen_ai.tool.description"]) == ("execute_tool", "conv-lookup", "function", "call_9", "finds things")
    assert a["gen_ai.agent.name"] == "conv-tool-agent"  # the agent it runs for
    assert json.loads(a["gen_ai.tool.call.arguments"]) == {"q": "otel"}
    assert json.loads(a["gen_ai.tool.call.result"]) == {"n": 2}


@pytest.mark.parametrize("mode", ["NO_CONTENT", "EVENT_ONLY"])
def test_step_content_only_on_spans(profile, spans, content_mode, mode):
    """Tool, retrieval and agent content goes to spans only (SPAN_ONLY / SPAN_AND_EVENT): the
    conventions' details event is for inference, so with EVENT_ONLY it is recorded nowhere."""
    content_mode(mode)
    recorder = get_recorder()
    with recorder.start(StepInvocation(name="agent", operation="invoke_agent", agent_name="conv-quiet",
                                       inputs="question", outputs="answer")):
        with recorder.start(ToolInvocation(name="conv-quiet-tool", arguments={"q": 1}, result="r")):
            pass
        with recorder.start(StepInvocation(name="find", operation="retrieval", data_source_id="conv-quiet-idx",
                                           query="q", documents=[{"id": "d", "score": 1.0}])):
            pass
    content = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments",
               "gen_ai.tool.call.result", "gen_ai.retrieval.query.text", "gen_ai.retrieval.documents"}
    assert len(spans()) == 3
    assert not content & {k for s in spans() for k in s.attributes}


def test_create_agent_is_a_client_span_with_its_provider(profile, spans):
    """create_agent (digest §1.2, §5.1): span ``span.gen_ai.create_agent.client``, kind CLIENT,
    with gen_ai.provider.name Required, the same in v1.41 and v0.1.0 (v0.1.0 drops the
    provider from *in-process invoke_agent* spans only)."""
    with get_recorder().start(StepInvocation(name="make", operation="create_agent", agent_name="conv-created",
                                             provider="openai")):
        pass
    span = span_named(spans, "create_agent conv-created")
    assert span.attributes["gen_ai.operation.name"] == "create_agent"
    assert span.attributes.get("gen_ai.provider.name") == "openai"
    assert span.kind is SpanKind.CLIENT


OPENAI_REGISTRY = {"openai.api.type", "openai.request.service_tier", "openai.response.service_tier",
                   "openai.response.system_fingerprint"}


def test_openai_attributes_are_the_registry_s(profile, spans, cassette):
    """The ``openai.*`` namespace belongs to the conventions' OpenAI registry (digest §2.4: four
    attributes); a fact of our own is ``llm_otel.*``. Embeddings record the input count as
    ``openai.request.input_count``, a name the registry does not define."""
    with paced_server(reply=with_usage(USAGE)) as served:
        served.client().chat.completions.create(model="conv-registry", messages=HELLO, service_tier="flex")
    cassette("test_embeddings/test_embeddings").openai_client().embeddings.create(
        model="conv-registry-embed", input=["one", "two"])
    used = {k for s in spans() for k in s.attributes if k.startswith("openai.")}
    assert {"openai.api.type", "openai.request.service_tier", "openai.response.service_tier"} <= used
    assert used <= OPENAI_REGISTRY
