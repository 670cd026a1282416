"""End to end with the OpenAI instrumentor on too: ChatOpenAI over the instrumented SDK is one span.

LangChain claims its LLM run around the SDK call; the OpenAI instrumentor's record merges
into it (exact usage, response id, server address) and is counted nowhere else.
"""

from __future__ import annotations

import json

import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import AzureChatOpenAI, ChatOpenAI
from lc_support import DURATION, TOKENS, needs_langgraph, parent_of
from opentelemetry import trace
from support.cassettes import Cassette, serve
from support.estimates import estimated_tokens
from support.standin import running_standin

import llm_otel

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


@needs_langgraph
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


# ---- over the stand-in server: Azure OpenAI, a model that calls the API twice ------------


@pytest.fixture(scope="module")
def standin():
    with running_standin() as served:
        yield served


def test_azure_chat_openai_is_azure_openai_with_openai_extras(spans, metric_reader, standin):
    url, journal = standin
    endpoint = url.rsplit("/v1", 1)[0]
    model = AzureChatOpenAI(azure_endpoint=endpoint, azure_deployment="prod-4o", model="gpt-4o-mini",
                            api_version="2024-10-21", api_key="0123456789abcdef0123456789abcdef", max_retries=0)
    assert model.invoke("hi").content.startswith("Stand-in answer")
    client = openai.AzureOpenAI(azure_endpoint=endpoint, azure_deployment="prod-4o", api_version="2024-10-21",
                                api_key="0123456789abcdef0123456789abcdef", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert journal[-1][0] == "/openai/deployments/prod-4o/chat/completions"

    langchain_span, sdk_span = genai_spans(spans())  # one span per call: LangChain's, then the SDK's alone
    served = journal[-1][2]
    for span in (langchain_span, sdk_span):  # the same deployment, the same provider, on both paths
        a = span.attributes
        assert a["gen_ai.provider.name"] == "azure.ai.openai"
        assert a["openai.response.system_fingerprint"] == served["system_fingerprint"]
        assert a["openai.response.service_tier"] == served["service_tier"]
        assert a["gen_ai.response.model"] == served["model"]
        assert not [k for k in a if k.startswith("azure.")]  # no invented namespace
    assert langchain_span.attributes["gen_ai.usage.input_tokens"] == served["usage"]["prompt_tokens"]
    assert metric_reader.count(DURATION, gen_ai__provider__name="azure.ai.openai",
                               openai__response__system_fingerprint=served["system_fingerprint"]) == 2


class DraftThenRefine(BaseChatModel):
    """A chat model that makes two API calls per run: a draft, then a refinement of it."""

    base_url: str

    @property
    def _llm_type(self) -> str:
        return "draft-then-refine"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        client = openai.OpenAI(base_url=self.base_url, api_key="sk-test-not-a-real-key", max_retries=0)
        question = [{"role": "user", "content": messages[-1].content}]
        draft = client.chat.completions.create(model="gpt-4o-mini", messages=question)
        final = client.chat.completions.create(model="gpt-4o-mini", messages=question + [
            {"role": "assistant", "content": draft.choices[0].message.content},
            {"role": "user", "content": "Make it shorter."}])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=final.choices[0].message.content))])


def test_one_run_two_api_calls_adds_both_usages(spans, metric_reader, standin):
    url, journal = standin
    before = len(journal)
    with llm_otel.usage() as used:
        DraftThenRefine(base_url=url).invoke("Name a colour")
    served = [response["usage"] for _path, _body, response in journal[before:]]
    assert len(served) == 2
    (chat,) = genai_spans(spans())  # one LangChain run, one span
    prompt, completion = (sum(u["prompt_tokens"] for u in served), sum(u["completion_tokens"] for u in served))
    assert (chat.attributes["gen_ai.usage.input_tokens"], chat.attributes["gen_ai.usage.output_tokens"]) == (
        prompt, completion)
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == prompt
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == completion
    assert metric_reader.count(DURATION) == 1
    assert (used.requests, used.input_tokens, used.output_tokens) == (2, prompt, completion)
    assert used.cost_usd == pytest.approx(chat.attributes["llm_otel.cost.usd"]) and used.cost_usd > 0
