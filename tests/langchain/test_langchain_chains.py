"""LCEL chains on real LangChain: ChatOpenAI replaying recorded traffic over local HTTP, fake models."""

from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager, CallbackManager
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI, OpenAI
from lc_support import named, one, parent_of
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from support.cassettes import Cassette, serve
from support.estimates import estimated_tokens

from llm_otel.instrumentors.langchain.handler import OTelCallbackHandler

TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"
FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
tracer = trace.get_tracer("test")


def chat_openai(url, **kwargs):
    return ChatOpenAI(base_url=url, api_key="sk-test-not-a-real-key", max_retries=0, **kwargs)


def test_chain_under_user_span_with_recorded_chat_openai(spans, metric_reader, lc_recordings):
    with serve(Cassette(lc_recordings / "test_langchain_metrics/test_llm_chain_metrics.yaml")) as url:
        chain = (ChatPromptTemplate.from_template("What is a good name for a company that makes {product}?")
                 | chat_openai(url, model="gpt-3.5-turbo", temperature=0) | StrOutputParser())
        with tracer.start_as_current_span("request") as root:
            assert chain.invoke({"product": "colorful socks"}) == "Rainbow Threads"

    got = spans()
    assert sorted(s.name for s in got) == sorted(
        ["request", "RunnableSequence", "ChatPromptTemplate", "chat gpt-3.5-turbo", "StrOutputParser"])
    assert {s.context.trace_id for s in got} == {root.get_span_context().trace_id}
    seq = one(got, "RunnableSequence")
    assert parent_of(got, seq).name == "request"
    for name in ("ChatPromptTemplate", "chat gpt-3.5-turbo", "StrOutputParser"):
        assert parent_of(got, one(got, name)) is seq
    chat = one(got, "chat gpt-3.5-turbo")
    assert chat.kind == trace.SpanKind.CLIENT
    a = chat.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-3.5-turbo"
    assert a["gen_ai.request.temperature"] == 0.0
    assert a["gen_ai.response.model"] == "gpt-3.5-turbo-0125"
    assert a["gen_ai.response.id"] == "chatcmpl-AIzv4SPJvVZc335LVPasn5GJ1Aplm"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (20, 3)
    assert "llm_otel.usage.estimated" not in a
    # no content by default
    assert not [k for s in got for k in s.attributes if "messages" in k or k in ("llm_otel.input", "llm_otel.output")]
    assert seq.attributes["llm_otel.span.kind"] == "chain"
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 20
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == 3
    assert metric_reader.count(DURATION) == 1


def test_stream_counts_locally_and_times_the_first_chunk(spans, metric_reader, lc_recordings, estimate_mode):
    """The recorded stream carries no usage: the core counts with tiktoken, marked estimated."""
    with serve(Cassette(lc_recordings / "test_lcel/test_stream.yaml")) as url:
        chain = (ChatPromptTemplate.from_template("write 10 lines of random text about ${product}")
                 | chat_openai(url, model="gpt-4", temperature=0))
        chunks = list(chain.stream({"product": "colorful socks"}))
    text = "".join(c.content for c in chunks)
    assert text.startswith("Colorful socks")

    got = spans()
    chat = one(got, "chat gpt-4")
    assert parent_of(got, chat).name == "RunnableSequence"
    a = chat.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.model"] == "gpt-4-0613"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert estimated_tokens(a, estimate_mode, "input") > 10
    output = estimated_tokens(a, estimate_mode, "output")
    assert 100 < output < 250
    assert metric_reader.count(FIRST_CHUNK) == 1
    assert metric_reader.count("gen_ai.client.operation.time_per_output_chunk") > 100
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == (output if estimate_mode == "report" else 0)


def test_completion_llm_sequence_records_two_text_completions(spans, metric_reader, lc_recordings):
    with serve(Cassette(lc_recordings / "test_chains/test_sequential_chain.yaml")) as url:
        llm = OpenAI(model="gpt-3.5-turbo-instruct", temperature=0.7, base_url=url,
                     api_key="sk-test-not-a-real-key", max_retries=0)
        synopsis = PromptTemplate.from_template(
            "You are a playwright. Given the title of play and the era it is set in, it is your job to write a "
            "synopsis for that title.\n\n    Title: {title}\n    Era: {era}\n    Playwright: This is a synopsis "
            "for the above play:")
        review = PromptTemplate.from_template(
            "You are a play critic from the New York Times. Given the synopsis of play, it is your job to write "
            "a review for that play.\n\n    Play Synopsis:\n    {synopsis}\n    Review from a New York Times play "
            "critic of the above play:")
        chain = synopsis | llm | (lambda s: {"synopsis": s}) | review | llm
        chain.invoke({"title": "Tragedy at sunset on the beach", "era": "Victorian England"})

    got = spans()
    calls = named(got, "text_completion gpt-3.5-turbo-instruct")
    assert len(calls) == 2
    assert [c.attributes["gen_ai.usage.input_tokens"] for c in calls] == [61, 192]
    assert [c.attributes["gen_ai.usage.output_tokens"] for c in calls] == [145, 256]
    assert [c.attributes["gen_ai.response.finish_reasons"] for c in calls] == [("stop",), ("length",)]
    assert all(c.attributes["gen_ai.operation.name"] == "text_completion" for c in calls)
    assert all(parent_of(got, c).name == "RunnableSequence" for c in calls)
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 61 + 192
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == 145 + 256


def test_function_call_output_and_content_capture(spans, lc_recordings, capture_content):
    joke = {"name": "Joke", "description": "Joke to tell user.",
            "parameters": {"type": "object", "properties": {
                "setup": {"description": "question to set up a joke", "type": "string"},
                "punchline": {"description": "answer to resolve the joke", "type": "string"}},
                "required": ["setup", "punchline"]}}
    with serve(Cassette(lc_recordings / "test_llms/test_openai_functions.yaml")) as url:
        prompt = ChatPromptTemplate.from_messages([("system", "You are helpful assistant"), ("user", "{input}")])
        chain = prompt | chat_openai(url, model="gpt-3.5-turbo").bind(functions=[joke])
        result = chain.invoke({"input": "tell me a short joke"}, config={"tags": ["jokes"]})
    assert result.additional_kwargs["function_call"]["name"] == "Joke"

    got = spans()
    chat = one(got, "chat gpt-3.5-turbo")
    a = chat.attributes
    assert a["gen_ai.response.finish_reasons"] == ("function_call",)
    inputs = json.loads(a["gen_ai.input.messages"])
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert inputs[1]["parts"] == [{"type": "text", "content": "tell me a short joke"}]
    outputs = json.loads(a["gen_ai.output.messages"])
    call = outputs[0]["parts"][-1]
    assert call["type"] == "tool_call" and call["name"] == "Joke" and "setup" in call["arguments"]
    assert outputs[0]["finish_reason"] == "tool_call"  # the conventions' word for it
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "Joke"
    seq = one(got, "RunnableSequence")
    assert json.loads(seq.attributes["llm_otel.input"]) == {"input": "tell me a short joke"}
    assert "Joke" in seq.attributes["llm_otel.output"]
    assert seq.attributes["llm_otel.tags"] == ("jokes",)


def test_tags_and_metadata_on_every_span_without_langchain_bookkeeping(spans):
    chain = (ChatPromptTemplate.from_template("{q}") | FakeListChatModel(responses=["ok"]) | StrOutputParser())
    chain.invoke({"q": "hi"}, config={"tags": ["prod", "v2"], "metadata": {"user_id": "u-7", "tries": 2,
                                                                             "thread_id": "conv-1"}})
    got = spans()
    assert len(got) == 4
    for span in got:
        assert span.attributes["llm_otel.tags"] == ("prod", "v2"), span.name
        assert span.attributes["llm_otel.metadata.user_id"] == "u-7"
        assert span.attributes["llm_otel.metadata.tries"] == 2
        assert not [k for k in span.attributes if k.startswith("llm_otel.metadata.ls_")]
    chat = one(got, "chat")
    assert chat.attributes["gen_ai.conversation.id"] == "conv-1"


def test_fake_model_without_usage_is_counted_locally(spans, metric_reader, estimate_mode):
    model = FakeListChatModel(responses=["The quick brown fox jumps over the lazy dog"])
    model.invoke("Count these words please")
    chat = one(spans(), "chat")
    a = chat.attributes
    assert estimated_tokens(a, estimate_mode, "output") == 9  # cl100k: one token per word here
    assert estimated_tokens(a, estimate_mode, "input") == 4 + 3 + 3  # 4 words, message and reply framing
    assert a["gen_ai.provider.name"] == "fakelistchatmodel"
    reported = estimate_mode == "report"
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == (10 if reported else 0)
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == (9 if reported else 0)


def test_errors_set_status_and_pass_through_unchanged(spans, metric_reader):
    boom = ValueError("bad input")

    def explode(_):
        raise boom

    chain = ChatPromptTemplate.from_template("{q}") | FakeListChatModel(responses=["x"]) | RunnableLambda(explode)
    with pytest.raises(ValueError) as caught:
        chain.invoke({"q": "hi"})
    assert caught.value is boom
    got = spans()
    for name in ("explode", "RunnableSequence"):
        span = one(got, name)
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes["error.type"] == "ValueError"
        assert [e.name for e in span.events] == ["exception"]
    assert one(got, "chat").status.status_code == StatusCode.UNSET


class BrokenChatModel(GenericFakeChatModel):
    """A chat model whose provider call fails."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        raise ConnectionError("provider down")


def test_llm_error_records_error_span_and_metric(spans, metric_reader):
    model = BrokenChatModel(messages=iter([]))
    with pytest.raises(ConnectionError):
        model.invoke("hi")
    chat = one(spans(), "chat")
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes["error.type"] == "ConnectionError"
    assert metric_reader.count(DURATION, error__type="ConnectionError") == 1
    assert metric_reader.points(TOKENS) == []


async def test_concurrent_ainvoke_each_request_its_own_trace(spans, metric_reader, lc_recordings):
    joke = {"name": "Joke", "description": "Joke to tell user.",
            "parameters": {"type": "object", "properties": {"setup": {"type": "string"},
                                                            "punchline": {"type": "string"}}}}
    with serve(Cassette(lc_recordings / "test_lcel/test_simple_lcel.yaml")) as url:
        chain = (ChatPromptTemplate.from_messages([("system", "You are helpful assistant"), ("user", "{input}")])
                 | chat_openai(url, model="gpt-3.5-turbo").bind(functions=[joke]))

        async def request(n):
            with tracer.start_as_current_span(f"request-{n}"):
                await asyncio.sleep(0)
                return await chain.ainvoke({"input": "tell me a short joke"})

        results = await asyncio.gather(request(1), request(2))
    assert all(r.additional_kwargs["function_call"]["name"] == "Joke" for r in results)

    got = spans()
    for n in (1, 2):
        root = one(got, f"request-{n}")
        in_trace = [s for s in got if s.context.trace_id == root.context.trace_id]
        assert sorted(s.name for s in in_trace) == sorted(
            [f"request-{n}", "RunnableSequence", "ChatPromptTemplate", "chat gpt-3.5-turbo"])
        seq = next(s for s in in_trace if s.name == "RunnableSequence")
        chat = next(s for s in in_trace if s.name == "chat gpt-3.5-turbo")
        assert parent_of(got, seq) is root and parent_of(got, chat) is seq
        assert chat.attributes["gen_ai.usage.input_tokens"] == 76
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 152
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == 66


async def test_concurrent_astream_with_fake_models(spans, metric_reader):
    async def request(n):
        model = GenericFakeChatModel(messages=iter([AIMessage(content=f"answer number {n} here")]))
        chain = ChatPromptTemplate.from_template("{q}") | model | StrOutputParser()
        with tracer.start_as_current_span(f"request-{n}"):
            return [c async for c in chain.astream({"q": f"question {n}"})]

    results = await asyncio.gather(*(request(n) for n in range(3)))
    assert ["".join(r) for r in results] == [f"answer number {n} here" for n in range(3)]
    got = spans()
    for n in range(3):
        root = one(got, f"request-{n}")
        in_trace = [s for s in got if s.context.trace_id == root.context.trace_id]
        chat = next(s for s in in_trace if s.name == "chat")
        assert parent_of(got, parent_of(got, chat)) is root
        assert chat.attributes["gen_ai.request.stream"] is True
    assert metric_reader.count(FIRST_CHUNK) == 3


class EventLog(BaseCallbackHandler):
    def __init__(self):
        self.events = []

    def on_chain_start(self, serialized, inputs, **kwargs):
        self.events.append("chain_start")

    def on_llm_end(self, response, **kwargs):
        self.events.append("llm_end")


def test_user_handlers_are_kept_and_ours_is_added_once(spans):
    mine = EventLog()
    handlers = [mine]
    manager = CallbackManager(handlers=handlers, inheritable_handlers=handlers)
    assert handlers == [mine]  # the user's list is not modified
    ours = [h for h in manager.inheritable_handlers if isinstance(h, OTelCallbackHandler)]
    assert len(ours) == 1 and ours[0] in manager.handlers
    assert len([h for h in manager.copy().handlers if isinstance(h, OTelCallbackHandler)]) == 1

    chain = ChatPromptTemplate.from_template("{q}") | FakeListChatModel(responses=["ok"])
    chain.invoke({"q": "hi"}, config={"callbacks": [mine]})
    assert mine.events.count("chain_start") == 2 and mine.events.count("llm_end") == 1
    assert sorted(s.name for s in spans()) == ["ChatPromptTemplate", "RunnableSequence", "chat"]
    assert isinstance(manager, BaseCallbackManager)


def test_structured_output_records_json_output_type(spans, lc_recordings):
    from typing import List as _List

    from pydantic import BaseModel, Field

    class FoodAnalysis(BaseModel):
        name: str = Field(description="The name of the food item")
        healthy: bool = Field(description="Whether the food is good for you")
        calories: int = Field(description="Estimated calories per serving")
        taste_profile: _List[str] = Field(description="List of taste characteristics")

    with serve(Cassette(lc_recordings / "test_structured_output/test_structured_output.yaml")) as url:
        model = chat_openai(url, model="gpt-4o-mini", temperature=0).with_structured_output(
            FoodAnalysis, method="json_schema")
        result = model.invoke("Analyze the following food item: avocado")
    assert isinstance(result, FoodAnalysis) and result.name.lower() == "avocado"
    got = spans()
    chat = one(got, "chat gpt-4o-mini")
    assert chat.attributes["gen_ai.output.type"] == "json"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 129
    assert parent_of(got, chat).name == "RunnableSequence"


async def test_constructor_and_request_callbacks_sync_and_async(spans):
    from langchain_core.callbacks import AsyncCallbackManager

    ctor, request = EventLog(), EventLog()
    model = FakeListChatModel(responses=["a", "b", "c"], callbacks=[ctor])
    model.invoke("hi")
    model.invoke("hi", config={"callbacks": CallbackManager(handlers=[request])})
    await model.ainvoke("hi", config={"callbacks": AsyncCallbackManager(handlers=[request])})
    assert ctor.events.count("llm_end") == 3 and request.events.count("llm_end") == 2
    assert [s.name for s in spans()] == ["chat", "chat", "chat"]


def test_cached_prompt_tokens_from_usage_metadata(spans, metric_reader, lc_recordings):
    with serve(Cassette(lc_recordings / "test_llms/test_openai.yaml")) as url:
        reply = chat_openai(url, model="gpt-4o-mini").invoke(
            [("system", "You are a helpful assistant"), ("user", "Summarise this article about OpenTelemetry.")])
    assert reply.usage_metadata["input_token_details"]["cache_read"] == 1408
    a = one(spans(), "chat gpt-4o-mini").attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (1497, 1037)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1408
    assert a["gen_ai.usage.reasoning.output_tokens"] == 0
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 1497


async def test_astream_events_still_work_and_are_traced(spans, metric_reader):
    chain = (ChatPromptTemplate.from_template("{q}")
             | GenericFakeChatModel(messages=iter([AIMessage(content="red green blue")])) | StrOutputParser())
    kinds = [e["event"] async for e in chain.astream_events({"q": "colours?"}, version="v2")]
    assert kinds.count("on_chat_model_stream") >= 3 and kinds[-1] == "on_chain_end"
    got = spans()
    chat = one(got, "chat")
    assert parent_of(got, chat).name == "RunnableSequence"
    assert metric_reader.count(FIRST_CHUNK) == 1


def test_threaded_batch_keeps_each_run_in_its_own_subtree(spans, metric_reader):
    chain = (ChatPromptTemplate.from_template("{q}")
             | FakeListChatModel(responses=["same answer"]) | StrOutputParser())
    with tracer.start_as_current_span("batch-request") as root:
        out = chain.batch([{"q": f"question {n}"} for n in range(8)], config={"max_concurrency": 4})
    assert out == ["same answer"] * 8
    got = spans()
    seqs = named(got, "RunnableSequence")
    assert len(seqs) == 8 and all(parent_of(got, s).name == "batch-request" for s in seqs)
    chats = named(got, "chat")
    assert len(chats) == 8 and {parent_of(got, c).context.span_id for c in chats} == {
        s.context.span_id for s in seqs}
    assert {s.context.trace_id for s in got} == {root.get_span_context().trace_id}
    assert metric_reader.count(DURATION) == 8
