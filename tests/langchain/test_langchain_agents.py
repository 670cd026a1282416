"""Tools, retrievers, agents and LangGraph on real LangChain, with fake models that call tools."""

from __future__ import annotations

import json
import sys
from typing import List

import pytest
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import ToolException, tool
from langchain_openai import ChatOpenAI
from lc_support import named, needs_langgraph, one, parent_of
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from support.cassettes import Cassette, serve

TOKENS = "gen_ai.client.token.usage"
tracer = trace.get_tracer("test")


@tool
def get_weather(location: str) -> str:
    """The weather at a place."""
    with tracer.start_as_current_span("weather-api"):  # the tool's own work nests under its span
        return f"Sunny in {location}"


@tool
def broken(query: str) -> str:
    """Always fails."""
    raise ToolException("backend unavailable")


class ToolCallingFake(GenericFakeChatModel):
    """A fake chat model that accepts tools, as agents require; replies from its script."""

    def bind_tools(self, tools, **kwargs):
        return self


def test_tool_call_span_with_call_id_and_nested_work(spans, capture_content):
    call = {"name": "get_weather", "args": {"location": "Paris"}, "id": "call_42", "type": "tool_call"}
    message = get_weather.invoke(call)
    assert isinstance(message, ToolMessage) and message.content == "Sunny in Paris"

    got = spans()
    span = one(got, "execute_tool get_weather")
    a = span.attributes
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "get_weather"
    assert a["gen_ai.tool.call.id"] == "call_42"
    assert a["gen_ai.tool.type"] == "function"
    assert a["gen_ai.tool.description"] == "The weather at a place."
    assert json.loads(a["gen_ai.tool.call.arguments"]) == {"location": "Paris"}
    assert a["gen_ai.tool.call.result"] == "Sunny in Paris"
    assert parent_of(got, one(got, "weather-api")) is span


def test_tool_without_content_capture_records_no_arguments(spans):
    get_weather.invoke({"location": "Oslo"})
    a = one(spans(), "execute_tool get_weather").attributes
    assert "gen_ai.tool.call.arguments" not in a and "gen_ai.tool.call.result" not in a


def test_tool_error_is_recorded_and_reraised(spans):
    with pytest.raises(ToolException, match="backend unavailable"):
        broken.invoke({"query": "x"})
    span = one(spans(), "execute_tool broken")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "ToolException"
    assert span.events[0].name == "exception"


class KeywordRetriever(BaseRetriever):
    """A small retriever over an in-memory list."""

    docs: List[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> List[Document]:
        return [d for d in self.docs if any(w in d.page_content.lower() for w in query.lower().split())]


DOCS = [Document(id="doc-1", page_content="OpenTelemetry traces spans", metadata={"source": "a.md"}),
        Document(id="doc-2", page_content="Metrics are histograms", metadata={"source": "b.md"}),
        Document(id="doc-3", page_content="Spans have parents", metadata={"source": "c.md"})]


def test_retriever_is_a_retrieval_without_content_by_default(spans):
    retriever = KeywordRetriever(docs=DOCS)
    found = retriever.invoke("spans")
    assert [d.id for d in found] == ["doc-1", "doc-3"]
    span = one(spans(), "retrieval KeywordRetriever")
    a = span.attributes
    assert a["gen_ai.operation.name"] == "retrieval" and a["gen_ai.data_source.id"] == "KeywordRetriever"
    assert a["openinference.span.kind"] == "RETRIEVER" and span.kind is trace.SpanKind.CLIENT
    # the query and the documents are content: opt-in
    assert not [k for k in a if k.startswith("gen_ai.retrieval.") or k in ("llm_otel.input", "llm_otel.output")]


def test_retriever_in_rag_chain_with_content(spans, capture_content):
    retriever = KeywordRetriever(docs=DOCS)
    model = GenericFakeChatModel(messages=iter([AIMessage(content="Spans nest.")]))
    chain = {"context": retriever, "question": lambda q: q} | RunnableLambda(
        lambda x: [HumanMessage(f"{x['context'][0].page_content} / {x['question']}")]) | model
    chain.invoke("spans")
    got = spans()
    span = one(got, "retrieval KeywordRetriever")
    assert span.attributes["gen_ai.retrieval.query.text"] == "spans"
    # v1.41's schema wants an id and a score per document, and this retriever scores none
    # (the v0.1.0 profile lists them: test_langchain_retrievers_batches.py)
    assert "gen_ai.retrieval.documents" not in span.attributes
    assert parent_of(got, span).name == "RunnableParallel<context,question>"
    chat = one(got, "chat")
    assert parent_of(got, chat).name == "RunnableSequence"


def _agent_script():
    return iter([
        AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"location": "SF"}, "id": "call_1"}]),
        AIMessage(content="It is sunny in SF."),
    ])


def test_handwritten_agent_loop_with_actions_as_events(spans, capture_content):
    """A tool-calling loop; LangChain's ``lc_agent_name`` metadata names the agent run."""
    model = ToolCallingFake(messages=_agent_script()).bind_tools([get_weather])
    tools = {"get_weather": get_weather}

    def loop(question, run_manager):
        messages = [HumanMessage(question)]
        while True:
            reply = model.invoke(messages, config={"callbacks": run_manager.get_child()})
            messages.append(reply)
            if not reply.tool_calls:
                run_manager.on_agent_finish(AgentFinish({"output": reply.content}, reply.content))
                return reply.content
            for call in reply.tool_calls:
                run_manager.on_agent_action(AgentAction(call["name"], call["args"], ""))
                messages.append(tools[call["name"]].invoke(call, config={"callbacks": run_manager.get_child()}))

    agent = RunnableLambda(loop).with_config(run_name="weather_agent", metadata={"lc_agent_name": "weather_agent"})
    assert agent.invoke("weather in SF?") == "It is sunny in SF."

    got = spans()
    root = one(got, "invoke_agent weather_agent")
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.agent.name"] == "weather_agent"
    chats = named(got, "chat")
    tool_span = one(got, "execute_tool get_weather")
    assert len(chats) == 2 and all(parent_of(got, c) is root for c in chats)
    assert parent_of(got, tool_span) is root and tool_span.attributes["gen_ai.tool.call.id"] == "call_1"
    assert parent_of(got, one(got, "weather-api")) is tool_span
    action, finish = root.events
    assert action.name == "llm_otel.agent.action" and action.attributes["gen_ai.tool.name"] == "get_weather"
    assert json.loads(action.attributes["gen_ai.tool.call.arguments"]) == {"location": "SF"}
    assert finish.name == "llm_otel.agent.finish" and "sunny" in finish.attributes["llm_otel.output"]
    # the first reply asked for a tool: its output message carries the call
    first = json.loads(chats[0].attributes["gen_ai.output.messages"])[0]
    assert first["parts"] == [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                               "arguments": {"location": "SF"}}]
    # only the agent run is the agent, not its children that inherit the metadata
    assert [s.name for s in got if s.attributes.get("gen_ai.operation.name") == "invoke_agent"] == [root.name]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@needs_langgraph
def test_langgraph_react_agent_nodes_tools_and_llm_spans(spans, metric_reader):
    from langgraph.prebuilt import create_react_agent

    agent = create_react_agent(ToolCallingFake(messages=_agent_script()), [get_weather], name="forecaster")
    with tracer.start_as_current_span("request") as root_span:
        result = agent.invoke({"messages": [("user", "weather in SF?")]})
    assert result["messages"][-1].content == "It is sunny in SF."

    got = spans()
    agent_span = one(got, "invoke_agent forecaster")
    assert parent_of(got, agent_span).name == "request"
    assert {s.context.trace_id for s in got} == {root_span.get_span_context().trace_id}
    nodes = [s for s in got if s.attributes.get("llm_otel.span.kind") == "node"]
    assert [n.name for n in sorted(nodes, key=lambda s: s.start_time)] == ["agent", "tools", "agent"]
    assert all(parent_of(got, n) is agent_span for n in nodes)
    assert [n.attributes["llm_otel.langgraph.step"] for n in sorted(nodes, key=lambda s: s.start_time)] == [1, 2, 3]
    tool_span = one(got, "execute_tool get_weather")
    assert parent_of(got, tool_span).name == "tools"
    assert parent_of(got, one(got, "weather-api")) is tool_span
    for chat in named(got, "chat"):
        ancestor = parent_of(got, chat)
        while ancestor.attributes.get("llm_otel.span.kind") != "node":
            ancestor = parent_of(got, ancestor)
        assert ancestor.name == "agent"
    # LangGraph's hidden plumbing (channel writes, branch routing) is not a span
    assert not [s for s in got if s.name.startswith(("ChannelWrite", "_write", "Branch"))]
    assert metric_reader.count("gen_ai.client.operation.duration") == 2


@needs_langgraph
async def test_langgraph_ainvoke_with_recorded_chat_openai(spans, metric_reader, lc_recordings):
    from langgraph.graph import END, START, MessagesState, StateGraph

    with serve(Cassette(lc_recordings / "test_langgraph/test_langgraph_ainvoke.yaml")) as url:
        model = ChatOpenAI(model="gpt-4o", base_url=url, api_key="sk-test-not-a-real-key", max_retries=0)

        async def calculate(state: MessagesState):
            return {"messages": [await model.ainvoke([("system", "You are a mathematician."),
                                                      *state["messages"]])]}

        graph = StateGraph(MessagesState)
        graph.add_node("calculate", calculate)
        graph.add_edge(START, "calculate")
        graph.add_edge("calculate", END)
        app = graph.compile()
        result = await app.ainvoke({"messages": [("user", "What's 5 + 5?")]}, config={"metadata": {"team": "math"}})
    assert "10" in result["messages"][-1].content

    got = spans()
    graph_span = one(got, "invoke_workflow LangGraph")  # a plain graph is a workflow, not an agent
    assert graph_span.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert graph_span.attributes["gen_ai.workflow.name"] == "LangGraph"
    assert graph_span.kind is trace.SpanKind.INTERNAL
    node = one(got, "calculate")
    assert node.attributes["llm_otel.span.kind"] == "node" and parent_of(got, node) is graph_span
    chat = one(got, "chat gpt-4o")
    assert parent_of(got, chat) is node
    assert chat.attributes["gen_ai.usage.input_tokens"] == 24
    assert chat.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert chat.attributes["llm_otel.metadata.team"] == "math"
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 24
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == 11


def test_recorded_parallel_tool_calls_then_tools(spans, lc_recordings, capture_content):
    @tool
    def get_news(location: str) -> str:
        """News for a place."""
        return f"Nothing new in {location}"

    with serve(Cassette(lc_recordings / "test_tool_calls/test_parallel_tool_calls.yaml")) as url:
        model = ChatOpenAI(model="gpt-4.1-nano", base_url=url, api_key="sk-test-not-a-real-key", max_retries=0)
        reply = model.bind_tools([get_weather, get_news]).invoke(
            "Hey, what's the weather in San Francisco? Also, any news in town?")
    assert len(reply.tool_calls) == 2
    for call in reply.tool_calls:
        {"get_weather": get_weather, "get_news": get_news}[call["name"]].invoke(call)

    got = spans()
    chat = one(got, "chat gpt-4.1-nano")
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    calls = [p for p in json.loads(chat.attributes["gen_ai.output.messages"])[0]["parts"] if p["type"] == "tool_call"]
    assert sorted(c["name"] for c in calls) == ["get_news", "get_weather"]
    # bind_tools passes OpenAI-style definitions: recorded with the name on top, as the conventions want
    assert sorted(json.loads(chat.attributes["gen_ai.tool.definitions"])[i]["name"]
                  for i in range(2)) == ["get_news", "get_weather"]
    ids = {s.attributes["gen_ai.tool.call.id"] for s in got if s.name.startswith("execute_tool")}
    assert ids == {c["id"] for c in calls}


@needs_langgraph
def test_langgraph_interrupt_is_not_an_error(spans, caplog):
    from typing import TypedDict

    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    class State(TypedDict):
        answer: str

    def ask(state: State):
        return {"answer": interrupt("approve?")}

    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t-1"}}
    assert "__interrupt__" in app.invoke({"answer": ""}, config)
    assert app.invoke(Command(resume="yes"), config) == {"answer": "yes"}

    got = spans()
    first, second = sorted(named(got, "ask"), key=lambda s: s.start_time)
    assert first.attributes["llm_otel.langgraph.interrupted"] == "GraphInterrupt"
    assert "llm_otel.langgraph.interrupted" not in second.attributes
    assert all(s.status.status_code == StatusCode.UNSET for s in got)
    assert all(s.attributes["llm_otel.metadata.thread_id"] == "t-1" for s in got)
    assert not [r for r in caplog.records if "OTelCallbackHandler" in r.getMessage()]


async def test_async_tool_and_lambda_work_nests_under_their_spans(spans):
    @tool
    async def lookup(key: str) -> str:
        """Look a key up."""
        with tracer.start_as_current_span("db-query"):
            return key.upper()

    async def shout(text: str) -> str:
        with tracer.start_as_current_span("shout-work"):
            return text + "!"

    chain = lookup | RunnableLambda(shout)
    with tracer.start_as_current_span("request"):
        assert await chain.ainvoke({"key": "abc"}) == "ABC!"
    got = spans()
    assert parent_of(got, one(got, "RunnableSequence")).name == "request"
    assert parent_of(got, one(got, "execute_tool lookup")).name == parent_of(got, one(got, "shout")).name \
        == "RunnableSequence"
    if sys.version_info >= (3, 11):
        assert parent_of(got, one(got, "db-query")) is one(got, "execute_tool lookup")
        assert parent_of(got, one(got, "shout-work")) is one(got, "shout")
    else:  # no asyncio.create_task(context=): LangChain awaits async runs in the caller's context
        assert parent_of(got, one(got, "db-query")).name == parent_of(got, one(got, "shout-work")).name == "request"
