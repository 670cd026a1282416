"""@track on every kind of callable: spans, nesting, inputs/outputs, errors, context."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from llm_otel import config, track
from llm_otel.tracking import state
from tracking.conftest import by_name, parent_id


def test_bare_decorator_records_a_span_with_bound_inputs_and_output(spans):
    @track
    def add(a, b=2, *rest, **options):
        return {"sum": a + b}

    assert add(1, 5, 7, flag=True) == {"sum": 6}
    (span,) = spans()
    assert span.name == "add"
    assert span.attributes["llm_otel.span.kind"] == "chain"
    assert json.loads(span.attributes["llm_otel.input"]) == {"a": 1, "b": 5, "rest": [7], "options": {"flag": True}}
    assert json.loads(span.attributes["llm_otel.output"]) == {"sum": 6}
    assert span.status.status_code == StatusCode.UNSET


def test_options_name_kind_tags_metadata(spans):
    @track(name="retrieve docs", kind="retriever", tags=["rag", "v2"], metadata={"top_k": 3, "index": {"n": 1}})
    def retrieve(q):
        return ["d1"]

    retrieve("q")
    (span,) = spans()
    assert span.name == "retrieve docs"
    assert span.attributes["llm_otel.span.kind"] == "retriever"
    assert span.attributes["llm_otel.tags"] == ("rag", "v2")
    assert span.attributes["llm_otel.metadata.top_k"] == 3
    assert json.loads(span.attributes["llm_otel.metadata.index"]) == {"n": 1}


def test_nested_functions_are_one_trace_with_the_right_parents(spans):
    @track
    def preprocess(x):
        return x.strip()

    @track
    def postprocess(x):
        return x.upper()

    @track(name="llm_chain")
    def chain(x):
        return postprocess(preprocess(x))

    assert chain("  hi ") == "HI"
    got = by_name(spans())
    root = got["llm_chain"]
    assert root.parent is None
    assert {s.context.trace_id for s in got.values()} == {root.context.trace_id}
    assert parent_id(got["preprocess"]) == root.context.span_id
    assert parent_id(got["postprocess"]) == root.context.span_id


def test_methods_skip_self_and_cls(spans):
    class Pipeline:
        factor = 10

        @track
        def run(self, x):
            return x * 2

        @track
        @classmethod
        def build(cls, size):
            return cls.factor * size

        @track
        @staticmethod
        def helper(y):
            return y + 1

    assert Pipeline().run(3) == 6
    assert Pipeline.build(2) == 20
    assert Pipeline().helper(1) == 2
    got = by_name(spans())
    assert json.loads(got["Pipeline.run"].attributes["llm_otel.input"]) == {"x": 3}
    assert json.loads(got["Pipeline.build"].attributes["llm_otel.input"]) == {"size": 2}
    assert json.loads(got["Pipeline.helper"].attributes["llm_otel.input"]) == {"y": 1}


def test_the_wrapper_keeps_the_kind_and_identity_of_the_function():
    def f(x):
        """doc"""

    async def g():
        pass

    def h():
        yield 1

    async def k():
        yield 1

    assert track(f).__wrapped__ is f and track(f).__doc__ == "doc" and track(f).__name__ == "f"
    assert inspect.iscoroutinefunction(track(g))
    assert inspect.isgeneratorfunction(track(h))
    assert inspect.isasyncgenfunction(track(k))
    assert inspect.signature(track(f)) == inspect.signature(f)


def test_exception_is_recorded_and_reraised_unchanged(spans):
    error = KeyError("missing")

    @track
    def outer():
        inner()

    @track
    def inner():
        raise error

    with pytest.raises(KeyError) as caught:
        outer()
    assert caught.value is error
    got = by_name(spans())
    for name in ("inner", "outer"):
        span = got[name]
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes["error.type"] == "KeyError"
        assert [e.name for e in span.events] == ["exception"]
        assert "llm_otel.output" not in span.attributes


def test_bad_arguments_raise_the_functions_own_typeerror(spans):
    @track
    def one(a):
        return a

    with pytest.raises(TypeError):
        one(1, 2, 3)
    (span,) = spans()
    assert span.attributes["error.type"] == "TypeError"
    assert json.loads(span.attributes["llm_otel.input"]) == {"args": [1, 2, 3]}


async def test_async_functions_nest_and_gather_keeps_each_branch_apart(spans):
    @track
    async def step(i):
        await asyncio.sleep(0.001 * (3 - i))
        return trace.get_current_span().get_span_context().span_id

    @track(name="fan_out")
    async def fan_out():
        return await asyncio.gather(step(0), step(1), step(2))

    inner_ids = await fan_out()
    got = spans()
    root = next(s for s in got if s.name == "fan_out")
    steps = [s for s in got if s.name == "step"]
    assert len(steps) == 3
    assert {parent_id(s) for s in steps} == {root.context.span_id}
    assert sorted(inner_ids) == sorted(s.context.span_id for s in steps)  # each ran in its own span
    assert sorted(json.loads(s.attributes["llm_otel.input"])["i"] for s in steps) == [0, 1, 2]


async def test_async_exception_and_cancellation_are_recorded(spans):
    @track
    async def fails():
        raise ValueError("no")

    @track
    async def slow():
        await asyncio.sleep(10)

    with pytest.raises(ValueError):
        await fails()
    task = asyncio.ensure_future(slow())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    got = by_name(spans())
    assert got["fails"].attributes["error.type"] == "ValueError"
    assert got["slow"].attributes["error.type"] == "CancelledError"


def test_generator_span_lives_until_exhausted_and_is_current_only_inside(spans):
    seen = []

    @track
    def numbers(n):
        for i in range(n):
            seen.append(trace.get_current_span().get_span_context().span_id)
            yield i
        return "done"

    outer_span = trace.get_current_span()
    gen = numbers(3)
    assert next(gen) == 0
    assert spans() == ()  # still open
    assert trace.get_current_span() is outer_span  # the consumer is not inside the span
    rest = []
    with pytest.raises(StopIteration) as stop:
        while True:
            rest.append(next(gen))
    assert rest == [1, 2] and stop.value.value == "done"
    (span,) = spans()
    assert set(seen) == {span.context.span_id}
    assert json.loads(span.attributes["llm_otel.output"]) == [0, 1, 2]


def test_generator_closed_early_ends_the_span_once_without_error(spans):
    closed = []

    @track
    def forever():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    gen = forever()
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    gen.close()
    assert closed == [True]
    (span,) = spans()
    assert span.status.status_code == StatusCode.UNSET
    assert json.loads(span.attributes["llm_otel.output"]) == [0, 1, 2]
    assert not state._by_span


def test_abandoned_generator_ends_its_span_when_collected(spans):
    @track
    def items():
        yield from range(10)

    gen = items()
    next(gen)
    del gen
    gc.collect()
    (span,) = spans()
    assert json.loads(span.attributes["llm_otel.output"]) == [0]


def test_generator_send_throw_and_error(spans):
    @track
    def echo():
        received = []
        while True:
            try:
                value = yield len(received)
            except ValueError:
                received.append("thrown")
                continue
            if value == "stop":
                raise RuntimeError("stopped")
            received.append(value)

    gen = echo()
    assert next(gen) == 0
    assert gen.send("a") == 1
    assert gen.throw(ValueError()) == 2
    with pytest.raises(RuntimeError, match="stopped"):
        gen.send("stop")
    (span,) = spans()
    assert span.attributes["error.type"] == "RuntimeError"


def test_generator_calls_nest_under_its_span(spans):
    @track
    def child(x):
        return x

    @track
    def produce():
        yield child(1)
        yield child(2)

    assert list(produce()) == [1, 2]
    got = spans()
    parent = next(s for s in got if s.name == "produce")
    assert [parent_id(s) for s in got if s.name == "child"] == [parent.context.span_id] * 2


async def test_async_generator_lifecycle(spans):
    @track
    async def tokens(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield f"t{i}"

    assert [t async for t in tokens(3)] == ["t0", "t1", "t2"]
    agen = tokens(100)
    assert await agen.__anext__() == "t0"
    await agen.aclose()
    first, second = spans()
    assert json.loads(first.attributes["llm_otel.output"]) == ["t0", "t1", "t2"]
    assert json.loads(second.attributes["llm_otel.output"]) == ["t0"]
    assert second.status.status_code == StatusCode.UNSET


async def test_async_generator_error_and_athrow(spans):
    @track
    async def agen():
        try:
            yield 1
        except KeyError:
            yield 2
        raise LookupError("end")

    it = agen()
    assert await it.__anext__() == 1
    assert await it.athrow(KeyError()) == 2
    with pytest.raises(LookupError):
        await it.__anext__()
    (span,) = spans()
    assert span.attributes["error.type"] == "LookupError"


def test_threads_that_copy_the_context_nest(spans):
    @track
    def work(i):
        return i

    @track
    def parallel():
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(contextvars.copy_context().run, work, i) for i in range(2)]
            return [f.result() for f in futures]

    assert parallel() == [0, 1]
    got = spans()
    root = next(s for s in got if s.name == "parallel")
    assert [parent_id(s) for s in got if s.name == "work"] == [root.context.span_id] * 2


def test_capture_flags_and_global_switch(spans, monkeypatch):
    @track(capture_input=False)
    def no_input(secret):
        return "out"

    @track(capture_output=False)
    def no_output(x):
        return "secret"

    no_input("pw")
    no_output(1)
    monkeypatch.setenv("LLM_OTEL_TRACK_CAPTURE", "false")

    @track
    def defaults_off(x):
        return x

    @track(capture_input=True)
    def explicit_on(x):
        return x

    defaults_off(1)
    explicit_on(2)
    got = by_name(spans())
    assert "llm_otel.input" not in got["no_input"].attributes
    assert got["no_input"].attributes["llm_otel.output"] == "out"
    assert "llm_otel.output" not in got["no_output"].attributes
    assert "llm_otel.input" not in got["defaults_off"].attributes
    assert "llm_otel.output" not in got["defaults_off"].attributes
    assert json.loads(got["explicit_on"].attributes["llm_otel.input"]) == {"x": 2}


def test_io_is_recorded_with_message_capture_off_and_stays_on_the_span_in_event_mode(spans, monkeypatch):
    assert not config.settings().capture_content  # the default: GenAI message content off

    @track
    def f(x):
        return x

    f(1)
    (span,) = spans()
    assert span.attributes["llm_otel.input"] == '{"x": 1}'
    monkeypatch.setenv(config.CAPTURE_CONTENT_ENV, "EVENT_ONLY")
    config.reload()
    try:
        f(2)
    finally:
        monkeypatch.delenv(config.CAPTURE_CONTENT_ENV)
        config.reload()
    span = spans()[-1]
    # the conventions' content event is for inference only: what @track was asked to record
    # stays on its span in every mode
    assert span.attributes["llm_otel.input"] == '{"x": 2}' and not span.events


def test_suppressed_instrumentation_calls_through_without_a_span(spans):
    @track
    def f():
        return trace.get_current_span()

    with suppress_instrumentation():
        assert f() is trace.INVALID_SPAN
    assert spans() == ()


def test_a_fault_of_ours_never_reaches_the_function(spans, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("bug in llm_otel")

    monkeypatch.setattr(state, "opened", broken)

    @track
    def f(x):
        return x + 1

    assert f(1) == 2
    (span,) = spans()  # started before the fault: ended, not leaked
    monkeypatch.undo()
    monkeypatch.setattr(state, "closed", broken)
    assert f(2) == 3
    assert "instrumentation error" in caplog.text


def test_a_record_that_declines_content_is_not_captured_even_when_capture_is_on(spans, capture_content):
    from llm_otel.core import StepInvocation, get_recorder

    recorder = get_recorder()
    for capture in (False, None):
        step = StepInvocation(name=f"step-{capture}", inputs={"q": 1}, outputs="a", capture_content=capture)
        recorder.start(step).end()
    declined, default = spans()
    assert "llm_otel.input" not in declined.attributes
    assert default.attributes["llm_otel.input"] == '{"q": 1}'


def test_importing_llm_otel_stays_light():
    import subprocess
    import sys

    code = ("import sys, llm_otel; "
            "heavy = [m for m in ('openai', 'langchain_core', 'llama_index', 'llm_otel.tracking') if m in sys.modules]; "
            "assert not heavy, heavy; "
            "assert callable(llm_otel.track) and 'llm_otel.tracking' in sys.modules; "
            "assert llm_otel.usage().requests == 0")
    subprocess.run([sys.executable, "-c", code], check=True)
