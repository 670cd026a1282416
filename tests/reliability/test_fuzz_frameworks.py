"""Faults in our own code, frameworks: hypothesis feeds odd model outputs and odd input
messages through the LangChain and LlamaIndex extractors (a chat model / LLM that returns
unvalidated, wrongly-typed messages, metadata, usage and tool calls, built with
``model_construct``). The caller gets exactly what the framework gives uninstrumented,
and every traced call leaves its spans ended and exportable."""

from __future__ import annotations

import re
from typing import Any, List

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from llm_otel import config
from rel_strategies import ANY, INTS, MODES, TEXT, TOOL_CALL, Unprintable, maybe, obj
from rel_support import OPEN_SPANS

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
ODD = st.one_of(ANY, st.builds(object))
CONTENT = st.one_of(TEXT, st.lists(st.one_of(obj(type=st.sampled_from(["text", "image_url", "tool_use"]),
                                                 text=TEXT, image_url=obj(url=TEXT)), TEXT, ODD), max_size=3), ODD)
LC_USAGE = obj(input_tokens=INTS, output_tokens=INTS, total_tokens=INTS,
               input_token_details=obj(cache_read=INTS), output_token_details=obj(reasoning=INTS))
LC_META = obj(model_name=TEXT, model=TEXT, finish_reason=TEXT, stop_reason=TEXT, id=TEXT,
              token_usage=obj(prompt_tokens=INTS, completion_tokens=INTS))
LC_TOOL_CALL = obj(name=TEXT, args=st.one_of(st.dictionaries(TEXT, ANY, max_size=2), ODD), id=TEXT,
                   type=st.just("tool_call"))
_RUN_IDS = re.compile(r"(?:lc_)?run-{1,2}[0-9a-f-]{36}(?:-\d+)?")


def _outcome(fn):
    try:
        return "ok", _RUN_IDS.sub("<run>", repr(fn()))
    except BaseException as exc:  # noqa: BLE001
        try:
            text = str(exc)
        except Exception:  # noqa: BLE001
            text = "<unprintable>"
        return "error", (type(exc), _RUN_IDS.sub("<run>", text))


def _compare(inst, call, exporter):
    """``call`` uninstrumented, then instrumented: same outcome; spans ended, encodable."""
    inst.uninstrument()
    try:
        expected = _outcome(call)
    finally:
        inst.instrument()
    exporter.clear()
    before = set(OPEN_SPANS.open)
    got = _outcome(call)
    assert got == expected
    finished = exporter.get_finished_spans()
    assert finished and set(OPEN_SPANS.open) <= before
    encode_spans(finished).SerializeToString()
    exporter.clear()


def _mode(mode):
    config._settings = config.Settings(content_mode=mode)


@FUZZ
@given(content=CONTENT, meta=maybe(LC_META), usage=maybe(LC_USAGE), tool_calls=maybe(st.lists(LC_TOOL_CALL,
       max_size=2)), extra=maybe(obj(tool_calls=st.lists(TOOL_CALL, max_size=2), function_call=ANY)),
       info=maybe(obj(finish_reason=TEXT, model_name=TEXT)), llm_output=maybe(obj(token_usage=ANY, model_name=TEXT,
       id=TEXT)), inputs=st.lists(st.tuples(st.sampled_from(["human", "system", "ai", "tool"]), CONTENT),
                                  max_size=3), mode=MODES)
def test_fuzz_langchain_chat_model(content, meta, usage, tool_calls, extra, info, llm_output, inputs, mode,
                                   langchain_instrumentor, spans):
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    _mode(mode)
    message = AIMessage.model_construct(content=content, response_metadata=meta, usage_metadata=usage,
                                        tool_calls=tool_calls, additional_kwargs=extra, id="ai-1",
                                        invalid_tool_calls=[], type="ai", name=None)
    result = ChatResult.model_construct(
        generations=[ChatGeneration.model_construct(message=message, generation_info=info, text="", type="ChatGeneration")],
        llm_output=llm_output)

    class OddChatModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "odd"

        def _generate(self, messages: List[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any):
            return result

    kinds = {"human": HumanMessage, "system": SystemMessage, "ai": AIMessage, "tool": ToolMessage}
    prompt = [kinds[k].model_construct(content=c, type=k if k != "human" else "human", id=None, name=None,
                                       additional_kwargs={}, response_metadata={}, tool_call_id="t1")
              for k, c in inputs] or "hello"
    _compare(langchain_instrumentor, lambda: OddChatModel().invoke(prompt), spans.__self__)


@FUZZ
@given(text=maybe(TEXT), raw=maybe(obj(id=TEXT, model=TEXT, choices=st.lists(obj(finish_reason=TEXT), max_size=2),
                                       usage=obj(prompt_tokens=INTS, completion_tokens=INTS, input_tokens=INTS),
                                       stop_reason=TEXT)),
       extra=maybe(obj(prompt_tokens=INTS, completion_tokens=INTS)), prompt=maybe(TEXT), chat=st.booleans(),
       mode=MODES)
def test_fuzz_llamaindex_llm(text, raw, extra, prompt, chat, mode, llamaindex_instrumentor, spans):
    from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, LLMMetadata
    from llama_index.core.llms import CustomLLM
    from llama_index.core.llms.callbacks import llm_completion_callback

    _mode(mode)
    response = CompletionResponse.model_construct(text=text, raw=raw, additional_kwargs=extra, delta=None,
                                                  logprobs=None)

    class OddLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="odd-model")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
            return response

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
            yield response

    llm = OddLLM()
    if chat:
        call = lambda: llm.chat([ChatMessage.model_construct(role="user", content=prompt, blocks=[],  # noqa: E731
                                                             additional_kwargs={})])
    else:
        call = lambda: llm.complete(prompt)  # noqa: E731
    _compare(llamaindex_instrumentor, call, spans.__self__)


def teardown_module(module):
    config.reload()


@FUZZ
@given(args=st.lists(st.one_of(ODD, st.builds(Unprintable)), max_size=3),
       kwargs=st.dictionaries(st.sampled_from(["a", "b", "api_key"]), st.one_of(ODD, st.builds(Unprintable)),
                              max_size=2),
       result=st.one_of(ODD, st.builds(Unprintable)), raises=st.booleans(), mode=MODES)
def test_fuzz_track_arguments_and_results(args, kwargs, result, raises, mode, spans):
    """``@track`` serializes whatever the function gets and returns: the caller still gets
    the function's own result object or exception, and the span ends, encodable."""
    import llm_otel

    _mode(mode)
    error = RuntimeError("the function's own error")

    @llm_otel.track
    def work(*a, **k):
        if raises:
            raise error
        return result

    exporter = spans.__self__
    exporter.clear()
    before = set(OPEN_SPANS.open)
    try:
        got = work(*args, **kwargs)
        assert not raises and got is result
    except RuntimeError as exc:
        assert raises and exc is error
    (span,) = exporter.get_finished_spans()
    assert set(OPEN_SPANS.open) <= before
    encode_spans([span]).SerializeToString()
    exporter.clear()
