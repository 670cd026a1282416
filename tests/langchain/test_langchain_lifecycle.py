"""One LLM call is one span (the claim), bounded run table, uninstrument, faults of ours swallowed."""

from __future__ import annotations

import gc
import uuid
from typing import Any, Iterator, List

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.language_models import BaseChatModel, FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.prompts import ChatPromptTemplate
from lc_support import named, one, parent_of
from opentelemetry import trace

from llm_otel.core import LLMInvocation
from llm_otel.core.recorder import get_recorder
from llm_otel.instrumentors.langchain import LangChainInstrumentor, extract

TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"
tracer = trace.get_tracer("test")


class InstrumentedSDK:
    """A provider SDK instrumented the way the OpenAI instrumentor is: a record through the core."""

    def __init__(self) -> None:
        self.recorder = get_recorder()

    def start(self) -> Any:
        return self.recorder.start(LLMInvocation(request_model="sdk-model", server_address="api.example.com",
                                                 server_port=443))

    def finish(self, op: Any) -> None:
        inv = op.record
        inv.response_id, inv.response_model = "resp-123", "sdk-model-2025"
        inv.input_tokens, inv.output_tokens, inv.cache_read_input_tokens = 11, 5, 4
        op.end()

    def call(self) -> str:
        inv = self.start()
        with tracer.start_as_current_span("POST /v1/chat/completions"):  # the HTTP client's span
            pass
        self.finish(inv)
        return "hello from the sdk"


class SDKChatModel(BaseChatModel):
    """A LangChain chat model over the instrumented SDK; reports a (wrong) usage of its own."""

    @property
    def _llm_type(self) -> str:
        return "sdk-chat"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        text = InstrumentedSDK().call()
        usage = {"input_tokens": 999, "output_tokens": 999, "total_tokens": 1998}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        sdk = InstrumentedSDK()
        inv = sdk.start()  # the request goes out on the first chunk
        with tracer.start_as_current_span("POST /v1/chat/completions"):
            pass
        for word in ("hello ", "from ", "the ", "sdk"):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))
        sdk.finish(inv)


def _assert_one_llm_span(got: List[Any], metric_reader: Any) -> Any:
    genai = [s for s in got if "gen_ai.operation.name" in s.attributes and s.attributes["gen_ai.operation.name"] == "chat"]
    assert len(genai) == 1, [s.name for s in got]
    chat = genai[0]
    a = chat.attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (11, 5)  # the API's, exact
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4
    assert a["gen_ai.response.id"] == "resp-123"
    assert a["server.address"] == "api.example.com"
    assert "llm_otel.usage.estimated" not in a
    assert parent_of(got, one(got, "POST /v1/chat/completions")) is chat
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 11
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == 5
    assert metric_reader.count(DURATION) == 1
    return chat


def test_sdk_call_inside_langchain_llm_is_one_span_counted_once(spans, metric_reader):
    chain = ChatPromptTemplate.from_template("{q}") | SDKChatModel()
    assert chain.invoke({"q": "hi"}).content == "hello from the sdk"
    got = spans()
    chat = _assert_one_llm_span(got, metric_reader)
    assert parent_of(got, chat).name == "RunnableSequence"
    assert chat.attributes["gen_ai.provider.name"] == "sdkchatmodel"  # LangChain's default ls_provider


async def test_sdk_call_inside_async_langchain_llm_is_one_span(spans, metric_reader):
    assert (await SDKChatModel().ainvoke("hi")).content == "hello from the sdk"
    _assert_one_llm_span(spans(), metric_reader)


def test_sdk_stream_inside_langchain_stream_is_one_span(spans, metric_reader):
    chain = ChatPromptTemplate.from_template("{q}") | SDKChatModel()
    assert "".join(c.content for c in chain.stream({"q": "hi"})) == "hello from the sdk"
    chat = _assert_one_llm_span(spans(), metric_reader)
    assert chat.attributes["gen_ai.request.stream"] is True
    assert metric_reader.count("gen_ai.client.operation.time_to_first_chunk") == 1


def test_sdk_call_outside_langchain_keeps_its_own_span(spans, metric_reader):
    InstrumentedSDK().call()
    got = spans()
    sdk_span = one(got, "chat sdk-model")
    assert parent_of(got, one(got, "POST /v1/chat/completions")) is None  # not activated by the SDK here
    assert sdk_span.attributes["gen_ai.usage.input_tokens"] == 11


def test_closing_a_stream_early_ends_the_llm_span_without_error(spans):
    model = GenericFakeChatModel(messages=iter([AIMessage(content="one two three four")]))
    stream = (ChatPromptTemplate.from_template("{q}") | model).stream({"q": "count"})
    assert next(stream).content == "one"
    stream.close()
    chat = one(spans(), "chat")
    assert chat.status.status_code == trace.StatusCode.UNSET
    assert chat.attributes["llm_otel.stream.closed_early"] is True
    assert chat.attributes["llm_otel.usage.estimated_output_tokens"] == 1  # what was received


def test_abandoned_runs_are_bounded_and_ended_as_stale(spans, instrumented):
    handler = instrumented.handler
    saved = handler.max_runs
    handler.max_runs = 3
    try:
        before = handler.open_runs()
        ids = [uuid.uuid4() for _ in range(5)]
        for n, run_id in enumerate(ids):  # runs whose end never comes (a task that died)
            handler.on_chain_start({}, {"n": n}, run_id=run_id, name=f"stuck-{n}")
        assert handler.open_runs() == 3
        ended = {s.name: s for s in spans()}
        assert set(ended) == {"stuck-0", "stuck-1"}
        assert all(s.attributes["llm_otel.run.abandoned"] is True for s in ended.values())
        for run_id in ids[2:]:
            handler.on_chain_end({}, run_id=run_id)
        assert handler.open_runs() == before == 0
        assert "llm_otel.run.abandoned" not in one(spans(), "stuck-4").attributes
    finally:
        handler.max_runs = saved


def test_no_runs_left_behind_after_chains(instrumented):
    chain = ChatPromptTemplate.from_template("{q}") | FakeListChatModel(responses=["ok"])
    for _ in range(20):
        chain.invoke({"q": "hi"})
        list(chain.stream({"q": "hi"}))
    gc.collect()
    assert instrumented.handler.open_runs() == 0


def test_faults_of_ours_never_reach_the_app(spans, monkeypatch, caplog):
    def broken(_):
        raise RuntimeError("extractor bug")

    monkeypatch.setattr(extract, "messages", broken)
    chain = ChatPromptTemplate.from_template("{q}") | FakeListChatModel(responses=["still fine"])
    assert chain.invoke({"q": "hi"}).content == "still fine"
    got = spans()
    assert sorted(s.name for s in got) == ["ChatPromptTemplate", "RunnableSequence", "chat"]
    chat = one(got, "chat")  # ended, only without what the faulty extractor should have given
    assert "llm_otel.usage.estimated_input_tokens" not in chat.attributes
    assert chat.attributes["llm_otel.usage.estimated_output_tokens"] == 2
    assert "extractor bug" in caplog.text


def test_uninstrument_restores_and_reinstrument_works(spans, instrumented):
    instrumented.uninstrument()
    try:
        assert not hasattr(BaseCallbackManager.__init__, "__wrapped__")
        assert not hasattr(BaseChatModel._generate_with_cache, "__wrapped__")
        FakeListChatModel(responses=["x"]).invoke("hi")
        assert spans() == ()
    finally:
        instrumented.instrument()
    instrumented.instrument()  # twice is once
    assert len([w for w in [BaseCallbackManager.__init__] if hasattr(w, "__wrapped__")]) == 1
    assert not hasattr(BaseCallbackManager.__init__.__wrapped__, "__wrapped__")
    FakeListChatModel(responses=["x"]).invoke("hi")
    assert len(named(spans(), "chat")) == 1


def test_suppressed_instrumentation_records_nothing(spans):
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        (ChatPromptTemplate.from_template("{q}") | FakeListChatModel(responses=["x"])).invoke({"q": "hi"})
    assert spans() == ()


def test_instrumentor_is_the_declared_entry_point():
    from opentelemetry.util._importlib_metadata import entry_points  # group= on Python 3.9 too

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "langchain"]
    assert ep.load() is LangChainInstrumentor


def test_a_fault_reading_the_result_still_ends_the_span(spans, monkeypatch):
    def broken(_):
        raise RuntimeError("extractor bug")

    monkeypatch.setattr(extract, "llm_result", broken)
    assert FakeListChatModel(responses=["fine"]).invoke("hi").content == "fine"
    chat = one(spans(), "chat")
    assert chat.end_time is not None and chat.status.status_code == trace.StatusCode.UNSET


def test_managers_built_before_reinstrumenting_are_traced_once(spans, instrumented):
    from langchain_core.callbacks import CallbackManager

    old = CallbackManager(handlers=[])
    instrumented.uninstrument()
    instrumented.instrument()
    FakeListChatModel(responses=["x"]).invoke("hi", config={"callbacks": old})
    assert [s.name for s in spans()] == ["chat"]


def _never_ending_runs(count: int, size: int) -> List[Any]:
    """``count`` runs of each kind, started through LangChain's callback manager with inputs of
    ``size`` characters that their caller lets go of at once (a task that died), never ended."""
    from langchain_core.callbacks import CallbackManager
    from langchain_core.messages import HumanMessage

    manager = CallbackManager(handlers=[])
    ended = []
    for n in range(count):
        text = f"{n} " + "x" * size
        ended += manager.on_chat_model_start({"name": "m"}, [[HumanMessage(text)]], invocation_params={"model": "gpt-4o"})
        ended += manager.on_llm_start({"name": "m"}, [text], invocation_params={"model": "gpt-3.5-turbo-instruct"})
        ended.append(manager.on_chain_start({"name": "c"}, {"question": text}))
        ended.append(manager.on_tool_start({"name": "t"}, text, inputs={"query": text}))
        ended.append(manager.on_retriever_start({"name": "r"}, text))
    return ended


def test_runs_that_never_end_keep_no_inputs_when_content_is_off(spans, instrumented):
    """10,000 open runs with 100 KB inputs once held ~1 GB: an open run holds only what its span will need."""
    import tracemalloc

    runs_per_kind, size = 400, 100_000
    before_open = instrumented.handler.open_runs()
    _never_ending_runs(5, size)  # warm up (first-use allocations of LangChain and the SDK)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        managers = _never_ending_runs(runs_per_kind, size)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    runs = runs_per_kind * 5
    assert instrumented.handler.open_runs() - before_open == runs + 25
    assert held / runs < 8_000, f"{held / runs:.0f} bytes per open run"  # an input alone is 100,000
    for manager in managers:  # they end after all: each span still ends, with what it needs
        end = getattr(manager, "on_llm_end", None) or getattr(manager, "on_chain_end", None) \
            or getattr(manager, "on_tool_end", None) or manager.on_retriever_end
        end(LLMResult(generations=[[]]) if hasattr(manager, "on_llm_end") else {})
    assert len([s for s in spans() if s.start_time and s.end_time]) >= runs


def test_a_completion_prompt_is_still_counted_while_its_call_runs(spans):
    """The prompt a completion LLM's record holds weakly is kept alive by its call: the local
    count of its input tokens is still made, for invoke, batch and stream."""
    llm = FakeListLLM(responses=["four five six"] * 4)
    llm.invoke("one two three")
    llm.batch(["one two", "one two three four"])
    assert "".join(llm.stream("one")) == "four five six"
    calls = sorted((s for s in spans() if s.attributes.get("gen_ai.operation.name") == "text_completion"),
                   key=lambda s: s.start_time)
    counted = [c.attributes.get("llm_otel.usage.estimated_input_tokens") for c in calls]
    assert all(isinstance(n, int) for n in counted)
    assert len({n - words for n, words in zip(counted, [3, 2, 4, 1])}) == 1  # the prompt's words, plus the same overhead
