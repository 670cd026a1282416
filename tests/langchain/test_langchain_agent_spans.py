"""Agents, workflows and tools in the conventions' terms, on real LangChain and LangGraph.

AgentExecutor (langchain-classic), LangGraph's ``create_react_agent``, LangChain 1.x's
``create_agent`` and plain LangGraph graphs, driven by a scripted tool-calling chat model
that streams its replies as ``AIMessageChunk`` s, the way OpenAI's models do.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from lc_support import DURATION, named, needs_create_agent, needs_langgraph, one, parent_of, scripted
from opentelemetry import trace

from llm_otel import config
from llm_otel.cli import main as llm_otel_cli
from llm_otel.exporters import JsonlFileExporter, from_readable
from llm_otel.finetune import build_examples

tracer = trace.get_tracer("test")
AGENT_DURATION = "gen_ai.invoke_agent.duration"
TOOL_DURATION = "gen_ai.execute_tool.duration"


@tool
def get_weather(location: str) -> str:
    """The weather at a place."""
    return f"Sunny in {location}"


def _ask(location: str, call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"location": location}, "id": call_id}])


def _json(span, key):
    return json.loads(span.attributes[key])


def _text(text):
    return [{"type": "text", "content": text}]


class ToolStarts(BaseCallbackHandler):
    """What LangChain itself passes to ``on_tool_start`` (to show where no call id is given)."""

    def __init__(self):
        self.call_ids = []

    def on_tool_start(self, serialized, input_str, **kwargs):
        self.call_ids.append(kwargs.get("tool_call_id"))


@pytest.fixture
def latest_semconv(monkeypatch):
    monkeypatch.setenv(config.SEMCONV_OPT_IN_ENV, "gen_ai_latest_experimental")
    config.reload()
    yield
    monkeypatch.delenv(config.SEMCONV_OPT_IN_ENV)
    config.reload()


# ---- AgentExecutor ----------------------------------------------------------------------


def _agent_executor(model):
    try:
        from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
    except ImportError:  # langchain < 1.0 (Python 3.9)
        from langchain.agents import AgentExecutor, create_tool_calling_agent

    prompt = ChatPromptTemplate.from_messages([("system", "You help."), MessagesPlaceholder("chat_history", optional=True),
                                               ("human", "{input}"), MessagesPlaceholder("agent_scratchpad")])
    return AgentExecutor(agent=create_tool_calling_agent(model, [get_weather], prompt), tools=[get_weather])


def _run_agent_executor(session="s-1"):
    model = scripted(_ask("SF", "call_1"), AIMessage(content="It is sunny in SF."), model_name="gpt-4o-mini",
                     usage={"input_tokens": 20, "output_tokens": 5})
    seen = ToolStarts()
    result = _agent_executor(model).invoke(
        {"input": "weather in SF?", "chat_history": [HumanMessage("hi"), AIMessage("Hello!")]},
        config={"metadata": {"session_id": session}, "callbacks": [seen]})
    assert result["output"] == "It is sunny in SF."
    return seen


def test_agent_executor_is_an_agent_with_messages_usage_and_tool_call_ids(spans, capture_content, metric_reader):
    seen = _run_agent_executor()
    assert seen.call_ids == [None]  # AgentExecutor gives no call id: found from the model's request

    got = spans()
    agent = one(got, "invoke_agent AgentExecutor")
    a = agent.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.agent.name"]) == ("invoke_agent", "AgentExecutor")
    assert a["openinference.span.kind"] == "AGENT" and agent.kind is trace.SpanKind.INTERNAL
    # the model and provider of the calls made under it, and their usage added up
    assert (a["gen_ai.request.model"], a["gen_ai.provider.name"]) == ("gpt-4o-mini", "scripted")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (40, 10)
    # content as conversation messages: the history and the question in, the answer out
    assert _json(agent, "gen_ai.input.messages") == [
        {"role": "user", "parts": _text("hi")}, {"role": "assistant", "parts": _text("Hello!")},
        {"role": "user", "parts": _text("weather in SF?")}]
    assert _json(agent, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": _text("It is sunny in SF."), "finish_reason": "stop"}]

    tool_span = one(got, "execute_tool get_weather")
    t = tool_span.attributes
    assert t["gen_ai.tool.call.id"] == "call_1" and t["gen_ai.agent.name"] == "AgentExecutor"
    assert parent_of(got, tool_span) is agent
    # the session names the conversation on every span of it
    assert {s.attributes.get("gen_ai.conversation.id") for s in got} == {"s-1"}
    # the agent's decisions stay events on its span
    assert [e.name for e in agent.events] == ["llm_otel.agent.action", "llm_otel.agent.finish"]
    assert agent.events[0].attributes["gen_ai.tool.name"] == "get_weather"
    assert metric_reader.count(AGENT_DURATION, gen_ai__agent__name="AgentExecutor") == 1
    assert metric_reader.count(TOOL_DURATION, gen_ai__tool__name="get_weather",
                               gen_ai__agent__name="AgentExecutor") == 1


def test_agent_executor_earlier_turns_keep_their_role(spans, capture_content):
    """AgentExecutor streams its model: the turn it sends back is an ``AIMessageChunk``."""
    _run_agent_executor()
    second = sorted(named(spans(), "chat gpt-4o-mini"), key=lambda s: s.start_time)[1]
    sent = _json(second, "gen_ai.input.messages")
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user", "assistant", "tool"]
    assert sent[4]["parts"] == [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                 "arguments": {"location": "SF"}}]
    assert sent[5]["parts"] == [{"type": "tool_call_response", "id": "call_1", "response": "Sunny in SF"}]


def test_agent_executor_turns_become_fine_tuning_examples(spans, capture_content, tmp_path):
    _run_agent_executor()
    examples, report = build_examples([from_readable(s) for s in spans()])
    assert (report.chat_spans, report.examples, report.skipped) == (2, 2, [])
    assert [m["role"] for m in examples[1]["messages"]] == [
        "system", "user", "assistant", "user", "assistant", "tool", "assistant"]
    assert examples[1]["messages"][4]["tool_calls"][0]["id"] == "call_1"
    # and through the command line, from the trace file
    traces, out = tmp_path / "traces.jsonl", tmp_path / "ft.jsonl"
    JsonlFileExporter(traces).export(spans())
    assert llm_otel_cli(["finetune", str(traces), "-o", str(out)]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == examples


def test_agent_content_is_not_recorded_by_default(spans):
    _run_agent_executor()
    got = spans()
    agent = one(got, "invoke_agent AgentExecutor")
    assert not [k for k in agent.attributes if k.startswith(("gen_ai.input", "gen_ai.output", "llm_otel.input"))]
    assert agent.attributes["gen_ai.agent.name"] == "AgentExecutor"
    assert one(got, "execute_tool get_weather").attributes["gen_ai.tool.call.id"] == "call_1"


# ---- LangGraph agents -------------------------------------------------------------------


def _react_agent(*replies, **kwargs):
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.prebuilt import create_react_agent

    return create_react_agent(scripted(*replies, model_name="gpt-4o", usage={"input_tokens": 7, "output_tokens": 3}),
                              [get_weather], name="forecaster", checkpointer=InMemorySaver(), **kwargs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@needs_langgraph
def test_react_agent_conversation_is_one_conversation_id_on_every_span(spans, capture_content):
    agent = _react_agent(_ask("SF", "call_1"), AIMessage(content="Sunny in SF."),
                         _ask("Oslo", "call_2"), AIMessage(content="Sunny in Oslo."))
    thread = {"configurable": {"thread_id": "chat-7"}}
    agent.invoke({"messages": [("user", "weather in SF?")]}, thread)
    first = spans()
    agent.invoke({"messages": [("user", "and in Oslo?")]}, thread)
    got = spans()

    roots = named(got, "invoke_agent forecaster")
    assert len(roots) == 2 and len({r.context.trace_id for r in roots}) == 2  # two turns, two traces
    assert {s.attributes.get("gen_ai.conversation.id") for s in got} == {"chat-7"}
    second = roots[1]
    a = second.attributes
    assert (a["gen_ai.agent.name"], a["gen_ai.request.model"]) == ("forecaster", "gpt-4o")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (14, 6)  # its two model calls
    # in: what this turn was given; out: the agent's answer (not the whole checkpointed state)
    assert _json(second, "gen_ai.input.messages") == [{"role": "user", "parts": _text("and in Oslo?")}]
    assert _json(second, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": _text("Sunny in Oslo."), "name": "forecaster", "finish_reason": "stop"}]
    tools = [s for s in got if s.name == "execute_tool get_weather"]
    assert [t.attributes["gen_ai.tool.call.id"] for t in tools] == ["call_1", "call_2"]
    assert {t.attributes["gen_ai.agent.name"] for t in tools} == {"forecaster"}
    assert [t.name for t in first if t.name.startswith("execute_tool")] == ["execute_tool get_weather"]


@needs_create_agent
def test_create_agent_is_an_agent(spans, capture_content):
    from langchain.agents import create_agent

    model = scripted(_ask("Lima", "call_9"), AIMessage(content="Sunny in Lima."), model_name="gpt-4o")
    agent = create_agent(model, [get_weather], name="travel_agent")
    agent.invoke({"messages": [HumanMessage("weather in Lima?")]})
    got = spans()
    root = one(got, "invoke_agent travel_agent")
    assert root.attributes["gen_ai.agent.name"] == "travel_agent" and parent_of(got, root) is None
    assert [s.name for s in got if s.attributes.get("gen_ai.operation.name") == "invoke_agent"] == [root.name]
    tool_span = one(got, "execute_tool get_weather")
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_9"
    assert tool_span.attributes["gen_ai.agent.name"] == "travel_agent"
    assert _json(root, "gen_ai.output.messages")[0]["parts"] == _text("Sunny in Lima.")


def _plain_graph():
    from langgraph.graph import END, START, MessagesState, StateGraph

    model = scripted(AIMessage(content="Ten."), model_name="gpt-4o")
    graph = StateGraph(MessagesState)
    graph.add_node("calculate", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_edge(START, "calculate")
    graph.add_edge("calculate", END)
    return graph.compile(name="math_flow")


@needs_langgraph
def test_plain_graph_is_a_workflow_with_messages(spans, capture_content, metric_reader):
    _plain_graph().invoke({"messages": [("user", "5 + 5?")]})
    got = spans()
    flow = one(got, "invoke_workflow math_flow")
    a = flow.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.workflow.name"]) == ("invoke_workflow", "math_flow")
    assert "gen_ai.agent.name" not in a and flow.kind is trace.SpanKind.INTERNAL
    assert _json(flow, "gen_ai.input.messages") == [{"role": "user", "parts": _text("5 + 5?")}]
    assert _json(flow, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": _text("Ten."), "finish_reason": "stop"}]
    assert parent_of(got, one(got, "calculate")) is flow
    assert metric_reader.count(AGENT_DURATION, gen_ai__operation__name="invoke_workflow") == 1


@needs_langgraph
def test_plain_graph_workflow_under_the_latest_conventions(spans, latest_semconv):
    _plain_graph().invoke({"messages": [("user", "5 + 5?")]})
    flow = one(spans(), "invoke_workflow math_flow")
    assert flow.attributes["gen_ai.agent.name"] == "math_flow"
    assert "gen_ai.workflow.name" not in flow.attributes
    assert "gen_ai.provider.name" not in flow.attributes  # v0.1.0: not on in-process agents


# ---- tool call ids LangChain does not pass ----------------------------------------------


def test_call_ids_found_by_name_and_arguments_in_order(spans):
    """``tool.run(args)`` passes no call id (as langchain-core 0.3 does for every tool run):
    each run gets the id of the call the model made with its name and arguments."""
    asks = AIMessage(content="", tool_calls=[
        {"name": "get_weather", "args": {"location": "SF"}, "id": "call_sf"},
        {"name": "get_weather", "args": {"location": "NY"}, "id": "call_ny"},
        {"name": "get_weather", "args": {"location": "LA"}, "id": "call_la"}])
    model = scripted(asks)
    seen = ToolStarts()

    def app(question):
        reply = model.invoke(question)
        get_weather.run({"location": "NY"}, callbacks=[seen])  # out of order
        get_weather.run({"location": "SF"}, callbacks=[seen])
        get_weather.run({"location": "Lima"}, callbacks=[seen])  # arguments the model did not give
        return get_weather.run({"location": "NY"}, callbacks=[seen])  # once more: no call left for it

    with tracer.start_as_current_span("request"):
        RunnableLambda(app).invoke("weather?")
    assert seen.call_ids == [None] * 4
    runs = sorted((s for s in spans() if s.name == "execute_tool get_weather"), key=lambda s: s.start_time)
    ids = [s.attributes.get("gen_ai.tool.call.id") for s in runs]
    assert ids == ["call_ny", "call_sf", "call_la", None]


def test_call_ids_in_an_app_loop_outside_any_span(spans):
    """``model.invoke`` then ``tool.run(args)`` with no span around them: each run is a trace of
    its own; a tool takes the calls the models of its thread asked for."""
    model = scripted(AIMessage(content="", tool_calls=[
        {"name": "get_weather", "args": {"location": "SF"}, "id": "call_sf"},
        {"name": "get_weather", "args": {"location": "NY"}, "id": "call_ny"}]), _ask("LA", "call_la"))
    model.invoke("weather in SF and NY?")
    get_weather.run({"location": "NY"})
    get_weather.run({"location": "SF"})
    model.invoke("and LA?")
    get_weather.run({"location": "LA"})
    runs = sorted((s for s in spans() if s.name == "execute_tool get_weather"), key=lambda s: s.start_time)
    assert [s.attributes.get("gen_ai.tool.call.id") for s in runs] == ["call_ny", "call_sf", "call_la"]
    assert len({s.context.trace_id for s in runs}) == 3


async def test_call_ids_in_an_async_app_loop_outside_any_span(spans):
    model = scripted(_ask("SF", "call_sf"))
    await model.ainvoke("weather in SF?")
    await get_weather.arun({"location": "SF"})
    assert one(spans(), "execute_tool get_weather").attributes["gen_ai.tool.call.id"] == "call_sf"


def test_call_ids_are_not_borrowed_from_another_trace(spans):
    model = scripted(_ask("SF", "call_1"))
    with tracer.start_as_current_span("first"):
        model.invoke("weather?")
    with tracer.start_as_current_span("second"):
        get_weather.run({"location": "SF"})
    assert "gen_ai.tool.call.id" not in one(spans(), "execute_tool get_weather").attributes


def test_a_given_call_id_wins(spans):
    """langchain-core 1.x passes a ToolCall's id on: it wins over a match (0.3 passes none:
    the model's call with the same name and arguments is found)."""
    model = scripted(_ask("SF", "call_1"))
    seen = ToolStarts()
    with tracer.start_as_current_span("request"):
        model.invoke("weather?")
        get_weather.invoke({"name": "get_weather", "args": {"location": "SF"}, "id": "call_given",
                            "type": "tool_call"}, config={"callbacks": [seen]})
    expected = seen.call_ids[0] or "call_1"
    assert one(spans(), "execute_tool get_weather").attributes["gen_ai.tool.call.id"] == expected


def test_calls_never_run_are_forgotten_oldest_trace_first(spans, monkeypatch):
    """Tool calls the app never runs are kept for a bounded number of traces."""
    from llm_otel.instrumentors.langchain import handler as handler_module

    monkeypatch.setattr(handler_module, "MAX_CALL_TRACES", 3)
    model = scripted(*[_ask("SF", f"call_{n}") for n in range(5)])
    turns = []
    for n in range(5):
        with tracer.start_as_current_span(f"turn-{n}") as span:
            model.invoke("weather?")
        turns.append(span)
    for span in (turns[0], turns[4]):  # back in the first trace, and in the last
        with trace.use_span(span):
            get_weather.run({"location": "SF"})
    first, last = sorted((s for s in spans() if s.name == "execute_tool get_weather"), key=lambda s: s.start_time)
    assert "gen_ai.tool.call.id" not in first.attributes
    assert last.attributes["gen_ai.tool.call.id"] == "call_4"
