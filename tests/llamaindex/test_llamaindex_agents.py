"""Agents and workflows: FunctionAgent / ReActAgent / AgentWorkflow runs as invoke_agent,
other workflows as invoke_workflow, tools with their call ids, the conversation of a memory;
tool and LLM errors."""

from __future__ import annotations

import asyncio
import json

import pytest
from li_support import EVENT_TYPE, ScriptedLLM, children, gen_ai, named, one, one_of, parent_of, roots
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.llms import MockLLM
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from support.standin import running_standin

try:  # 0.14: tool calls as message blocks; MockFunctionCallingLLM reads them
    from llama_index.core.base.llms.types import ToolCallBlock
except ImportError:  # 0.12
    ToolCallBlock = None
needs_tool_call_blocks = pytest.mark.skipif(ToolCallBlock is None,
                                            reason="ToolCallBlock is new in llama-index-core 0.14")

DURATION = "gen_ai.client.operation.duration"
tracer = trace.get_tracer("test")

ACT = 'Thought: I need a tool.\nAction: multiply\nAction Input: {"a": 3, "b": 4}'
ANSWER = "Thought: I can answer without using any more tools.\nAnswer: 12"


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def run(agent, message, **kwargs):
    async def main():
        with tracer.start_as_current_span("request"):
            return await agent.run(message, **kwargs)
    return asyncio.run(main())


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def test_react_agent_with_function_tool(spans, metric_reader):
    llm = ScriptedLLM(script=[ACT, ANSWER])
    agent = ReActAgent(name="calculator", tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    result = run(agent, "What is 3 times 4?")
    assert "12" in str(result)
    got = spans()
    assert [s.name for s in roots(got)] == ["request"]
    agent_span = one(got, "invoke_agent")
    assert agent_span.name == "invoke_agent calculator"
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent_span.attributes["gen_ai.agent.name"] == "calculator"
    assert parent_of(got, agent_span).name == "request"

    assert agent_span.attributes["gen_ai.request.model"] == "scripted-1"  # the agent's own LLM
    assert agent_span.attributes["gen_ai.provider.name"] == "llama_index"

    steps = named(got, "agent_step")
    assert steps and all(parent_of(got, s) is agent_span for s in steps)
    assert all(s.attributes[EVENT_TYPE] == "AGENT_STEP" for s in steps)
    # Phoenix shows one agent, its steps as chains
    assert [s.name for s in got if s.attributes.get("openinference.span.kind") == "AGENT"] == [agent_span.name]
    assert {s.attributes["openinference.span.kind"] for s in steps} == {"CHAIN"}
    assert not any("gen_ai.operation.name" in s.attributes for s in steps)
    step_names = [s.name.split(" ", 1)[1] for s in sorted(steps, key=lambda s: s.start_time)]
    assert step_names.count("run_agent_step") == 2 and step_names.count("call_tool") == 1

    # the custom LLM's astream_chat reads stream_chat which reads stream_complete: one call, one span
    chats = gen_ai(got, "chat")
    assert len(chats) == 2 and not gen_ai(got, "text_completion")
    assert all(parent_of(got, c).name == "agent_step run_agent_step" for c in chats)
    assert all(c.attributes["gen_ai.request.model"] == "scripted-1" for c in chats)
    assert all(c.attributes["gen_ai.request.stream"] is True for c in chats)
    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 2

    tool = one(got, "execute_tool")
    assert tool.name == "execute_tool multiply"
    assert tool.attributes["gen_ai.tool.name"] == "multiply"
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert "Multiply two integers" in tool.attributes["gen_ai.tool.description"]
    assert tool.attributes[EVENT_TYPE] == "FUNCTION_CALL"
    assert parent_of(got, tool).name == "agent_step call_tool"
    assert tool.attributes["gen_ai.agent.name"] == "calculator"
    assert tool.attributes["gen_ai.tool.call.id"]  # the id LlamaIndex gave the parsed call
    assert "gen_ai.tool.call.arguments" not in tool.attributes  # content is off by default
    assert "gen_ai.input.messages" not in agent_span.attributes


def test_tool_arguments_and_result_with_content(spans, capture_content):
    agent = ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=ScriptedLLM(script=[ACT, ANSWER]))
    run(agent, "What is 3 times 4?")
    tool = one(spans(), "execute_tool")
    assert '"a": 3' in tool.attributes["gen_ai.tool.call.arguments"]
    assert tool.attributes["gen_ai.tool.call.result"] == "12"


def test_failing_tool_is_an_error_span_and_the_agent_goes_on(spans):
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    act = 'Thought: I need a tool.\nAction: divide\nAction Input: {"a": 1, "b": 0}'
    agent = ReActAgent(tools=[FunctionTool.from_defaults(divide)], llm=ScriptedLLM(script=[act, ANSWER]))
    run(agent, "1/0?")
    got = spans()
    tool = one(got, "execute_tool")
    assert tool.attributes["error.type"] == "ZeroDivisionError"
    assert tool.status.status_code == StatusCode.ERROR
    assert tool.events[0].name == "exception"
    assert one(got, "invoke_agent").status.status_code != StatusCode.ERROR  # the agent went on
    assert len(gen_ai(got, "chat")) == 2


def test_llm_error_passes_through_and_is_recorded(spans, metric_reader):
    boom = RuntimeError("model down")
    llm = ScriptedLLM(script=["x"], fail_with=boom)
    with pytest.raises(RuntimeError) as info:
        llm.complete("hello")
    assert info.value is boom
    (span,) = gen_ai(spans(), "text_completion")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    assert metric_reader.count(DURATION, error__type="RuntimeError") == 1


def test_failing_stream_is_recorded_once(spans):
    llm = ScriptedLLM(script=["a b c"])
    gen = llm.stream_complete("hi")
    next(gen)
    with pytest.raises(ValueError):
        gen.throw(ValueError("consumer gave up"))
    (span,) = gen_ai(spans(), "text_completion")
    assert span.attributes["error.type"] == "ValueError"
    assert not children(spans(), span)


@needs_tool_call_blocks
def test_function_agent_with_tool_calls(spans, metric_reader, capture_content):
    from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    def respond(messages, **kwargs):
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role="assistant", content="3 times 4 is 12")
        return ChatMessage(role="assistant", blocks=[
            TextBlock(text="Let me multiply."),
            ToolCallBlock(tool_call_id="call_1", tool_name="multiply", tool_kwargs={"a": 3, "b": 4})])

    llm = MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)
    agent = FunctionAgent(name="math", tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    assert "12" in str(run(agent, "What is 3 times 4?"))
    got = spans()
    agent_span = one(got, "invoke_agent")
    assert agent_span.attributes["gen_ai.agent.name"] == "math"
    chats = gen_ai(got, "chat")
    assert len(chats) == 2
    assert all(parent_of(got, c).name == "agent_step run_agent_step" for c in chats)
    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 2
    first, second = sorted(chats, key=lambda s: s.start_time)
    output = json.loads(first.attributes["gen_ai.output.messages"])[0]
    assert output["parts"][0] == {"type": "text", "content": "Let me multiply."}
    assert output["parts"][1] == {"type": "tool_call", "id": "call_1", "name": "multiply",
                                  "arguments": {"a": 3, "b": 4}}
    # the mock gives no finish reason: none is invented ("stop" on a tool call was)
    assert output["finish_reason"] == "tool_call"
    assert "gen_ai.response.finish_reasons" not in first.attributes
    assert json.loads(second.attributes["gen_ai.output.messages"])[0]["finish_reason"] == "stop"
    assert "tool_call_response" in second.attributes["gen_ai.input.messages"] or \
        "12" in second.attributes["gen_ai.input.messages"]
    tool = one(got, "execute_tool")
    assert parent_of(got, tool).name == "agent_step call_tool"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert tool.attributes["gen_ai.tool.call.result"] == "12"
    assert parent_of(got, agent_span).name == "request"
    # the agent's content is the conversation: what the user said, what it answered
    assert json.loads(agent_span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is 3 times 4?"}]}]
    assert json.loads(agent_span.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "3 times 4 is 12"}], "finish_reason": "stop"}]


@pytest.mark.parametrize("streaming", [False, True])
def test_function_agent_over_openai(spans, metric_reader, capture_content, streaming):
    """A FunctionAgent on LlamaIndex's OpenAI LLM over real HTTP: the agent span has its
    name, description, model, the conversation of its memory and the usage of its calls;
    the tool span the call id the model sent; every span of the run the conversation id."""
    from llama_index.core.memory import ChatMemoryBuffer
    from llama_index.llms.openai import OpenAI

    memory = ChatMemoryBuffer.from_defaults(chat_store_key="user-42")
    with running_standin() as (url, journal):
        llm = OpenAI(model="gpt-4o-mini", api_key="sk-test", api_base=url, max_retries=0)
        agent = FunctionAgent(name="weather", description="Tells the weather.", llm=llm, streaming=streaming,
                              tools=[FunctionTool.from_defaults(get_weather)])
        assert "Sunny in Paris" in str(run(agent, "What is the weather in Paris?", memory=memory))
    served = [r for path, _b, r in journal if path.endswith("/chat/completions")]
    assert [r["choices"][0]["finish_reason"] for r in served] == ["tool_calls", "stop"]
    call_id = served[0]["choices"][0]["message"]["tool_calls"][0]["id"]
    got = spans()
    request = one(got, "request")
    agent_span = one_of(got, "invoke_agent")
    assert agent_span.name == "invoke_agent weather"
    assert agent_span.attributes["gen_ai.agent.name"] == "weather"
    assert agent_span.attributes["gen_ai.agent.description"] == "Tells the weather."
    assert agent_span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert agent_span.attributes["gen_ai.provider.name"] == "openai"
    if not getattr(agent, "streaming", True):  # LlamaIndex asks for no usage in streams (and 0.12 agents
        # always stream): then there is none to add up
        assert agent_span.attributes["gen_ai.usage.input_tokens"] == sum(r["usage"]["prompt_tokens"] for r in served)
        assert agent_span.attributes["gen_ai.usage.output_tokens"] == \
            sum(r["usage"]["completion_tokens"] for r in served)
    run_spans = [s for s in got if s is not request]
    assert {s.attributes.get("gen_ai.conversation.id") for s in run_spans} == {"user-42"}
    assert "gen_ai.conversation.id" not in request.attributes

    tool = one_of(got, "execute_tool")
    assert tool.attributes["gen_ai.tool.call.id"] == call_id
    assert tool.attributes["gen_ai.agent.name"] == "weather"
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"city": "Paris"}

    first, second = sorted(gen_ai(got, "chat"), key=lambda s: s.start_time)
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)  # the provider's word
    (asked,) = json.loads(first.attributes["gen_ai.output.messages"])
    assert asked["finish_reason"] == "tool_call"  # the conventions' word
    assert asked["parts"] == [{"type": "tool_call", "id": call_id, "name": "get_weather",
                               "arguments": {"city": "Paris"}}]
    answered = json.loads(second.attributes["gen_ai.input.messages"])
    assert answered[-1] == {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id,
                                                       "response": "Sunny in Paris"}]}
    assert json.loads(agent_span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]}]
    (final,) = json.loads(agent_span.attributes["gen_ai.output.messages"])
    assert final["finish_reason"] == "stop" and "Sunny in Paris" in final["parts"][0]["content"]
    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 2
    assert metric_reader.count("gen_ai.invoke_agent.duration", gen_ai__agent__name="weather") == 1


def test_agent_without_a_conversation_has_no_conversation_id(spans):
    """LlamaIndex's default chat store key names no conversation: none is invented."""
    agent = ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=ScriptedLLM(script=[ACT, ANSWER]))
    run(agent, "What is 3 times 4?")
    assert not [s for s in spans() if "gen_ai.conversation.id" in s.attributes]


@needs_tool_call_blocks
def test_agent_workflow_hand_off_tools_run_under_their_agent(spans):
    from llama_index.core.agent.workflow import AgentWorkflow
    from llama_index.core.base.llms.types import ChatMessage, MessageRole
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.memory import Memory

    def router(messages, **kwargs):
        return ChatMessage(role="assistant", blocks=[ToolCallBlock(
            tool_call_id="call_handoff", tool_name="handoff", tool_kwargs={"to_agent": "math", "reason": "numbers"})])

    def math(messages, **kwargs):
        if messages[-1].role == MessageRole.TOOL and "12" in str(messages[-1].content):
            return ChatMessage(role="assistant", content="12")
        return ChatMessage(role="assistant", blocks=[ToolCallBlock(
            tool_call_id="call_multiply", tool_name="multiply", tool_kwargs={"a": 3, "b": 4})])

    def mock(respond):
        return MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)

    workflow = AgentWorkflow(root_agent="router", agents=[
        FunctionAgent(name="router", description="Routes questions.", llm=mock(router), can_handoff_to=["math"]),
        FunctionAgent(name="math", description="Does math.", llm=mock(math),
                      tools=[FunctionTool.from_defaults(multiply)])])
    assert str(run(workflow, "3 times 4?", memory=Memory.from_defaults(session_id="session-7"))) == "12"
    got = spans()
    agent_span = one_of(got, "invoke_agent")  # one run, answered for by its root agent
    assert agent_span.name == "invoke_agent router"
    assert agent_span.attributes["gen_ai.agent.description"] == "Routes questions."
    tools = {s.attributes["gen_ai.tool.name"]: s for s in gen_ai(got, "execute_tool")}
    assert tools["handoff"].attributes["gen_ai.agent.name"] == "router"
    assert tools["handoff"].attributes["gen_ai.tool.call.id"] == "call_handoff"
    assert tools["multiply"].attributes["gen_ai.agent.name"] == "math"
    assert tools["multiply"].attributes["gen_ai.tool.call.id"] == "call_multiply"
    assert {s.attributes.get("gen_ai.conversation.id") for s in got if s.name != "request"} == {"session-7"}


class Joke(Event):
    joke: str


class JokeFlow(Workflow):
    @step
    async def write(self, ev: StartEvent) -> Joke:
        return Joke(joke=str(await MockLLM(max_tokens=4).acomplete(f"a joke about {ev.topic}")))

    @step
    async def judge(self, ev: Joke) -> StopEvent:
        return StopEvent(result=f"judged: {ev.joke}")


@pytest.mark.parametrize("latest", [False, True])
def test_workflow_is_invoke_workflow(spans, capture_content, request, latest):
    if latest:
        request.getfixturevalue("latest_semconv")

    async def main():
        return await JokeFlow(timeout=10).run(topic="pirates")

    assert asyncio.run(main()).startswith("judged: ")
    got = spans()
    flow = one_of(got, "invoke_workflow")
    name = flow.attributes["gen_ai.agent.name" if latest else "gen_ai.workflow.name"]
    assert name.endswith("JokeFlow")  # LlamaIndex's name for it (module-qualified from 0.14)
    assert flow.name == f"invoke_workflow {name}"
    assert ("gen_ai.workflow.name" in flow.attributes) is not latest
    assert flow.attributes["openinference.span.kind"] == "CHAIN"
    steps = named(got, "workflow_step")
    assert sorted(s.name for s in steps) == ["workflow_step judge", "workflow_step write"]
    assert all(parent_of(got, s) is flow for s in steps)
    assert not gen_ai(got, "invoke_agent")
    (llm,) = gen_ai(got, "text_completion")
    assert parent_of(got, llm).name == "workflow_step write"
    assert json.loads(flow.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == '{"topic": "pirates"}'
    (output,) = json.loads(flow.attributes["gen_ai.output.messages"])
    assert output["parts"][0]["content"].startswith("judged: ") and output["finish_reason"] == "stop"


def test_agent_usage_is_its_model_calls_not_a_tools_embeddings(spans):
    """An agent whose tool runs a RAG query: its usage adds up the model calls made under it;
    the query's embedding is no part of it (nor is the embedding model its model)."""
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.tools import QueryEngineTool
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai import OpenAI

    with running_standin() as (url, _journal):
        llm = OpenAI(model="gpt-4o-mini", api_key="sk-test", api_base=url, max_retries=0)
        embed = OpenAIEmbedding(model="text-embedding-3-small", api_key="sk-test", api_base=url, max_retries=0)
        index = VectorStoreIndex.from_documents([Document(text="Phoenix accepts OTLP.")], embed_model=embed)
        tool = QueryEngineTool.from_defaults(index.as_query_engine(llm=llm), name="notes", description="Notes.")
        agent = FunctionAgent(name="reader", tools=[tool], llm=llm, streaming=False)
        run(agent, "What does Phoenix accept?")
    got = spans()
    agent_span = one_of(got, "invoke_agent")
    in_run = [s for s in got if s.context.trace_id == agent_span.context.trace_id]
    embedded = [s for s in gen_ai(in_run, "embeddings") if "gen_ai.usage.input_tokens" in s.attributes]
    assert embedded, "the query's embedding is in the run, with its usage"
    chats = [s for s in gen_ai(in_run, "chat") if "gen_ai.usage.input_tokens" in s.attributes]
    assert chats
    assert agent_span.attributes["gen_ai.usage.input_tokens"] == \
        sum(s.attributes["gen_ai.usage.input_tokens"] for s in chats)
    assert agent_span.attributes["gen_ai.request.model"] == "gpt-4o-mini"


def test_runs_in_a_row_are_separate_traces(spans):
    """A run leaves nothing of ours current: the next run in the same task is a new trace,
    not a child of the last one (llama-index-workflows 1.x ends a run's span in another
    Context, after run() returned)."""
    async def main():
        left = []
        for topic in ("pirates", "robots"):
            await JokeFlow(timeout=10).run(topic=topic)
            left.append(trace.get_current_span().get_span_context().is_valid)
        return left

    assert asyncio.run(main()) == [False, False]
    flows = gen_ai(spans(), "invoke_workflow")
    assert len(flows) == 2 and all(f.parent is None for f in flows)
    assert len({f.context.trace_id for f in flows}) == 2
