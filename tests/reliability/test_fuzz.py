"""Faults in our own code: hypothesis feeds malformed and unexpected requests and responses
(missing fields, wrong types, None usage, huge and non-UTF-8 strings, base64 images, odd
tool-call JSON) through the real openai SDK into every OpenAI extractor, and odd records
into the core recorder.

The oracle: the caller gets exactly what the library gives when tracing is suppressed
(same result, or same exception type and message) — never an error of ours — every
call leaves exactly one ended span, and every span can be encoded by the OTLP exporter
(one unencodable attribute would lose the whole export batch)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.utils import suppress_instrumentation

from llm_otel import config
from llm_otel.core import LLMInvocation, StepInvocation, ToolInvocation
from llm_otel.core.recorder import get_recorder
from rel_support import API_KEY, OPEN_SPANS, client_for

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
NEEDS_RESPONSES_API = pytest.mark.skipif(
    tuple(int(part) for part in openai.__version__.split(".")[:2]) < (1, 66),
    reason=f"openai {openai.__version__}: no Responses API (it arrived in 1.66)")
COUNTS = {}  # test name -> examples run (reported in docs/reliability.md)
REPORTS = set()  # where our guard swallowed a fault of ours (reported, not fatal)

from rel_strategies import (ANY, ARGS_JSON, CHAT_BODY, CHAT_KWARGS, DATA_URL, EMBEDDINGS_BODY, INTS, MODES,  # noqa: E402
                            RESPONSES_BODY, TEXT, Unprintable, maybe, obj)


@pytest.fixture
def guard_reports():
    """Messages our guard logged (our own faults, swallowed): collected for the report."""
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            if "instrumentation error" in record.getMessage() and record.exc_info:
                exc = record.exc_info[1]
                tb = exc.__traceback__
                while tb.tb_next is not None:
                    tb = tb.tb_next
                where = f"{tb.tb_frame.f_code.co_filename.split('/work/main/')[-1]}:{tb.tb_lineno}"
                seen.append(f"{record.args[0] if record.args else ''}: {type(exc).__name__} at {where}")

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("llm_otel")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield seen
    REPORTS.update(seen)
    logger.removeHandler(handler)
    logger.setLevel(old)


def _mode(mode):
    config._settings = config.Settings(content_mode=mode)  # per example, no env round-trip


def _json_body(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()  # ensure_ascii: lone surrogates travel as \udXXX


def _outcome(fn):
    try:
        return "ok", _comparable(fn())
    except BaseException as exc:  # noqa: BLE001 - what the caller sees is the point
        return "error", (type(exc), _safe_str(exc))


def _safe_str(exc):
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return "<unprintable>"


def _comparable(value):
    text = repr(value)
    return text.replace("nan", "NaN")  # NaN != NaN, but its repr is stable


def _same_for_the_caller(call, exporter):
    """Run ``call`` suppressed (the library alone) and traced; compare; return the spans."""
    with suppress_instrumentation():
        expected = _outcome(call)
    exporter.clear()
    got = _outcome(call)
    assert got == expected
    # a call whose local token count waits for an encoding ends its span once that has loaded
    # (with the call's own end time): give it the while a load takes
    deadline = time.monotonic() + 10
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.01)
    finished = exporter.get_finished_spans()
    assert len(finished) == 1 and finished[0].end_time is not None
    encode_spans(finished).SerializeToString()  # the OTLP exporter could send it
    exporter.clear()
    return finished


def _count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


@FUZZ
@given(body=CHAT_BODY, kwargs=CHAT_KWARGS, mode=MODES)
def test_fuzz_chat_completion(body, kwargs, mode, spans, guard_reports):
    _count("chat"); _mode(mode)
    raw = _json_body(body)
    client = client_for(lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=raw))
    _same_for_the_caller(lambda: client.chat.completions.create(**kwargs), spans.__self__)


@FUZZ
@given(chunks=st.lists(CHAT_BODY, max_size=5), kwargs=CHAT_KWARGS, mode=MODES, done=st.booleans(),
       usage=st.booleans())
def test_fuzz_chat_stream(chunks, kwargs, mode, done, usage, spans, guard_reports):
    _count("chat_stream"); _mode(mode)
    raw = b"".join(b"data: " + _json_body(c) + b"\n\n" for c in chunks) + (b"data: [DONE]\n\n" if done else b"")
    client = client_for(lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw))
    if usage:
        kwargs = {**kwargs, "stream_options": {"include_usage": True}}
    _same_for_the_caller(lambda: list(client.chat.completions.create(stream=True, **kwargs)), spans.__self__)


@FUZZ
@given(body=CHAT_BODY, kwargs=CHAT_KWARGS, mode=MODES)
def test_fuzz_chat_async(body, kwargs, mode, spans, guard_reports):
    _count("chat_async"); _mode(mode)
    raw = _json_body(body)

    def call():
        client = client_for(lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=raw),
                            async_=True)
        return asyncio.run(client.chat.completions.create(**kwargs))

    _same_for_the_caller(call, spans.__self__)


@FUZZ
@given(body=CHAT_BODY, prompt=maybe(st.one_of(TEXT, st.lists(TEXT, max_size=3), st.lists(INTS, max_size=3))),
       model=maybe(TEXT), mode=MODES)
def test_fuzz_completions(body, prompt, model, mode, spans, guard_reports):
    _count("completions"); _mode(mode)
    raw = _json_body(body)
    client = client_for(lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=raw))
    _same_for_the_caller(lambda: client.completions.create(model=model, prompt=prompt), spans.__self__)


@FUZZ
@given(body=EMBEDDINGS_BODY, text=maybe(st.one_of(TEXT, st.lists(TEXT, max_size=3), st.lists(INTS, max_size=3))),
       fmt=maybe(st.sampled_from(["float", "base64"])), dims=maybe(INTS), mode=MODES)
def test_fuzz_embeddings(body, text, fmt, dims, mode, spans, guard_reports):
    _count("embeddings"); _mode(mode)
    raw = _json_body(body)
    client = client_for(lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=raw))
    _same_for_the_caller(lambda: client.embeddings.create(model="text-embedding-3-small", input=text,
                                                          encoding_format=fmt, dimensions=dims), spans.__self__)


RESPONSES_INPUT = maybe(st.one_of(TEXT, st.lists(st.one_of(
    obj(role=st.sampled_from(["user", "system", "developer", "assistant"]), content=st.one_of(
        TEXT, st.lists(obj(type=st.sampled_from(["input_text", "input_image", "input_file"]), text=TEXT,
                           image_url=st.just(DATA_URL)), max_size=2))),
    obj(type=st.sampled_from(["function_call", "function_call_output"]), call_id=TEXT, name=TEXT,
        arguments=ARGS_JSON, output=TEXT)), max_size=3)))


@NEEDS_RESPONSES_API
@FUZZ
@given(body=RESPONSES_BODY, input_=RESPONSES_INPUT, instructions=maybe(TEXT), mode=MODES,
       tools=maybe(st.lists(obj(type=st.sampled_from(["function", "web_search"]), name=TEXT, parameters=ANY),
                            max_size=2)))
def test_fuzz_responses(body, input_, instructions, tools, mode, spans, guard_reports):
    _count("responses"); _mode(mode)
    raw = _json_body(body)
    client = client_for(lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=raw))
    _same_for_the_caller(lambda: client.responses.create(model="gpt-4o-mini", input=input_,
                                                         instructions=instructions, tools=tools), spans.__self__)


@NEEDS_RESPONSES_API
@FUZZ
@given(events=st.lists(st.tuples(st.sampled_from(["response.created", "response.output_text.delta",
                                                    "response.output_item.done", "response.completed",
                                                    "response.failed", "error", "other"]), RESPONSES_BODY),
                       max_size=5), mode=MODES)
def test_fuzz_responses_stream(events, mode, spans, guard_reports):
    _count("responses_stream"); _mode(mode)
    raw = b"".join(b"event: " + kind.encode() + b"\ndata: " + _json_body(
        {"type": kind, "response": body, "delta": "x", "item": body} if isinstance(body, dict) else body) + b"\n\n"
        for kind, body in events)
    client = client_for(lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw))
    _same_for_the_caller(lambda: list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True)),
                         spans.__self__)


def test_unprintable_arguments_reach_the_sdk_unchanged(spans, guard_reports):
    """An argument we cannot even read: the SDK decides what happens, not us."""
    client = client_for(lambda r: httpx.Response(200, json={"id": "x", "choices": []}))
    for kwargs in ({"model": Unprintable(), "messages": []},
                   {"model": "m", "messages": [{"role": "user", "content": Unprintable()}]},
                   {"model": "m", "messages": Unprintable()},
                   {"model": "m", "messages": [], "temperature": Unprintable(), "stop": Unprintable()}):
        _same_for_the_caller(lambda: client.chat.completions.create(**kwargs), spans.__self__)


def teardown_module(module):
    config.reload()
    print(f"\nfuzzed examples: {COUNTS} total={sum(COUNTS.values())}; guard reports: {sorted(REPORTS)}")


# ---- the core recorder with odd records ------------------------------------------------

ODD = st.one_of(ANY, st.builds(Unprintable), st.builds(object), st.just(float("nan")), st.binary(max_size=8),
                st.sets(st.integers(), max_size=2), st.just(b"\xff\xfe not utf-8"))


def _odd_record(cls, data):
    """A record whose every field holds something odd (or, sometimes, its default)."""
    import dataclasses

    record = cls(name="n") if cls is not LLMInvocation else cls()
    for f in dataclasses.fields(cls):
        if data.draw(st.booleans()):
            setattr(record, f.name, data.draw(ODD))
    return record


@FUZZ
@given(data=st.data(), mode=MODES, fail=st.booleans(), chunks=st.integers(0, 3))
def test_fuzz_recorder_odd_records(data, mode, fail, chunks, spans, guard_reports):
    """Wrong types in every field: the recorder never raises, every span ends, exports."""
    _count("recorder"); _mode(mode)
    exporter = spans.__self__
    exporter.clear()
    before = set(OPEN_SPANS.open)
    recorder = get_recorder()
    inv = _odd_record(LLMInvocation, data)
    op = recorder.start(inv)
    for _ in range(chunks):
        op.chunk()
    if fail:
        op.fail(data.draw(st.sampled_from([ValueError("\ud800 odd"), KeyError(Unprintable()), RuntimeError(API_KEY)])))
    else:
        op.end()
    ops = [op]
    for record in (_odd_record(ToolInvocation, data), _odd_record(StepInvocation, data)):
        other = recorder.start(record)
        ops.append(other)
        with other.current():
            if data.draw(st.booleans()):
                other.agent_finish(data.draw(ODD))
            else:
                other.agent_action(data.draw(ODD), data.draw(ODD))
        if fail:
            other.fail(ValueError("odd"))
        else:
            other.end()
    finished = exporter.get_finished_spans()
    assert len(finished) == sum(o.span is not None for o in ops)  # every span opened ended
    assert all(o.ended for o in ops)
    assert set(OPEN_SPANS.open) <= before
    encode_spans(finished).SerializeToString()
    assert API_KEY not in repr([dict(s.attributes) for s in finished] + [dict(e.attributes) for s in finished
                                                                          for e in s.events])
    exporter.clear()


def test_unencodable_values_are_made_exportable(spans):
    """Found by the fuzzers: a lone surrogate (a JSON ``\\ud800`` escape in a response) or an
    integer beyond int64 (a malformed usage) made the OTLP encoder reject the whole batch."""
    recorder = get_recorder()
    op = recorder.start(LLMInvocation(request_model="gpt\ud800", metadata={"k\udce9": ["a\ud800", 2**70]}))
    op.record.input_tokens, op.record.output_tokens, op.record.response_id = 2**70, -(2**64), "id\udfff"
    op.end()
    (span,) = spans()
    encode_spans([span]).SerializeToString()
    assert span.name == "chat gpt?"
    assert span.attributes["gen_ai.usage.input_tokens"] == str(2**70)
    assert span.attributes["gen_ai.response.id"] == "id?"
