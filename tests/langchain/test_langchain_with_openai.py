"""End to end with the OpenAI instrumentor on too: ChatOpenAI over the instrumented SDK is one span.

LangChain claims its LLM run around the SDK call; the OpenAI instrumentor's record merges
into it (exact usage, response id, server address) and is counted nowhere else.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from lc_support import DURATION, TOKENS, parent_of
from opentelemetry import trace
from support.cassettes import Cassette, serve
from support.estimates import estimated_tokens

tracer = trace.get_tracer("test")


pytestmark = pytest.mark.usefixtures("openai_instrumented")


def chat_openai(url, **kwargs):
    return ChatOpenAI(base_url=url, api_key="sk-test-not-a-real-key", max_retries=0, **kwargs)


def genai_spans(got):
    return [s for s in got if "gen_ai.operation.name" in s.attributes
            and s.attributes["gen_ai.operation.name"] in ("chat", "text_completion")]


def test_invoke_is_one_span_counted_once(spans, metric_reader, lc_recordings):
    with serve(Cassette(lc_recordings / "test_langchain_metrics/test_llm_chain_metrics.yaml")) as url:
        chain = (ChatPromptTemplate.from_template("What is a good name for a company that makes {product}?")
                 | chat_openai(url, model="gpt-3.5-turbo", temperature=0) | StrOutputParser())
        with tracer.start_as_current_span("request"):
            assert chain.invoke({"product": "colorful socks"}) == "Rainbow Threads"
    got = spans()
    (chat,) = genai_spans(got)
    assert chat.name == "chat gpt-3.5-turbo"
    assert parent_of(got, chat).name == "RunnableSequence"
    a = chat.attributes
    assert a["server.address"] == "127.0.0.1"  # learnt from the SDK's record
    assert a["gen_ai.response.id"] == "chatcmpl-AIzv4SPJvVZc335LVPasn5GJ1Aplm"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (20, 3)
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 20
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == 3
    assert metric_reader.count(DURATION) == 1


def test_stream_is_one_span_with_the_sdk_response_id(spans, metric_reader, lc_recordings, estimate_mode):
    with serve(Cassette(lc_recordings / "test_lcel/test_stream.yaml")) as url:
        chain = (ChatPromptTemplate.from_template("write 10 lines of random text about ${product}")
                 | chat_openai(url, model="gpt-4", temperature=0))
        text = "".join(c.content for c in chain.stream({"product": "colorful socks"}))
    assert text.startswith("Colorful socks")
    got = spans()
    (chat,) = genai_spans(got)
    a = chat.attributes
    assert a["gen_ai.response.id"] == "chatcmpl-9jn1ZwX0gO8q1lUspfmVKVK2KNduV"
    assert a["gen_ai.request.stream"] is True
    output = estimated_tokens(a, estimate_mode, "output")  # the recorded stream has no usage chunk
    assert metric_reader.count(DURATION) == 1
    assert metric_reader.count("gen_ai.client.operation.time_to_first_chunk") == 1
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == (output if estimate_mode == "report" else 0)


async def test_async_langgraph_is_one_span(spans, metric_reader, lc_recordings):
    from langgraph.graph import END, START, MessagesState, StateGraph

    with serve(Cassette(lc_recordings / "test_langgraph/test_langgraph_double_ainvoke.yaml")) as url:
        model = chat_openai(url, model="gpt-4o")

        async def calculate(state: MessagesState):
            return {"messages": [await model.ainvoke([("system", "You are a mathematician."), *state["messages"]])]}

        graph = StateGraph(MessagesState)
        graph.add_node("calculate", calculate)
        graph.add_edge(START, "calculate")
        graph.add_edge("calculate", END)
        result = await graph.compile().ainvoke({"messages": [("user", "What's 5 + 5?")]})
    assert "10" in result["messages"][-1].content
    got = spans()
    (chat,) = genai_spans(got)
    assert parent_of(got, chat).name == "calculate"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 24
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 24
    assert metric_reader.count(DURATION) == 1


def test_tool_call_round_trip_with_history(spans, metric_reader, lc_recordings, capture_content):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    cassette = Cassette(lc_recordings / "test_tool_calls/test_tool_calls_with_history.yaml")
    with serve(cassette) as url:
        model = chat_openai(url, model="gpt-4.1-nano")
        sent = json.loads(cassette.interactions[0].request_body)
        messages = [SystemMessage(sent["messages"][0]["content"]), HumanMessage(sent["messages"][1]["content"]),
                    AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"location": "San Francisco"},
                                                       "id": "tool_123"}]),
                    ToolMessage(sent["messages"][3]["content"], tool_call_id="tool_123"),
                    HumanMessage(sent["messages"][4]["content"])]
        reply = model.bind_tools(sent["tools"]).invoke(messages)
    assert reply.tool_calls
    got = spans()
    (chat,) = genai_spans(got)
    inputs = json.loads(chat.attributes["gen_ai.input.messages"])
    assert [m["role"] for m in inputs] == ["system", "user", "assistant", "tool", "user"]
    assert inputs[3]["parts"][0] == {"type": "tool_call_response", "id": "tool_123",
                                     "response": sent["messages"][3]["content"]}
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 88
