"""Forks and slow loads the other folders do not reach, through public behaviour: a fork while
the LangChain instrumentor or the foreign-span processor holds its lock, a fork while the price
table loads, a call that ends while it loads, and LlamaIndex runs that never end."""

from __future__ import annotations

import contextvars
import gc
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
import uuid

import pytest
from opentelemetry import trace

import llm_otel
from rel_support import fork_and_run, held_by_a_thread
from support.slow_import import HOLD_UP_IMPORT

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")


def _fresh_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}


def _run_fresh(code: str, *args: str, timeout: float = 120) -> dict:
    """``code`` in a new interpreter; what it printed last, as JSON."""
    proc = subprocess.run([sys.executable, "-c", code, *args], env=_fresh_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- fork while the LangChain instrumentor or the foreign-span processor holds its lock -------


def _langchain_stream():
    """A chat model class of the app's, streamed for the first time: its ``_stream`` is wrapped
    now (the lazy-wrap lock) and its run goes through the handler's table (the run lock)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class AppModel(FakeListChatModel):
        def _stream(self, *args, **kwargs):
            yield from super()._stream(*args, **kwargs)

    with llm_otel.usage() as u:
        assert "".join(chunk.content for chunk in AppModel(responses=["hi there"]).stream("hello")) == "hi there"
    assert u.requests == 1


def _foreign_span():
    """A GenAI span of another instrumentation, counted by the foreign-span processor."""
    tracer = trace.get_tracer("com.example.sdk")
    with llm_otel.usage() as u:
        with tracer.start_as_current_span("chat m", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2}):
            pass
    assert (u.requests, u.input_tokens, u.output_tokens) == (1, 3, 2)


def _lock(which, inst):
    from llm_otel.core import foreign

    if which == "langchain runs":
        return inst.handler._lock
    if which == "langchain lazy wrapping":
        return inst._wrappers._lazy_lock
    return foreign._installed[trace.get_tracer_provider()]._lock


@pytest.mark.parametrize("which,child", [("langchain runs", _langchain_stream),
                                         ("langchain lazy wrapping", _langchain_stream),
                                         ("foreign spans", _foreign_span)])
def test_a_child_forked_while_a_framework_lock_is_held_works(which, child, langchain_instrumentor, spans):
    child()  # works in the parent first: the child's outcome is the lock's doing alone
    release = held_by_a_thread(_lock(which, langchain_instrumentor))
    try:
        code = fork_and_run(child)
    finally:
        release.set()
    assert code == 0, f"the child {'hung' if code == -1 else 'failed'} on the {which} lock"


# ---- fork while the price table loads ---------------------------------------------------------

# argv: seconds the import of genai-prices' data is held up (a slow disk; 0: as it is), seconds
# between instrument() and the fork, a file for the child's results. The child prices a call
# directly and one through the recorder, in a usage() block.
PRICE_LOAD_FORK = HOLD_UP_IMPORT + textwrap.dedent("""
    import json, os, sys, time
    slow, offset = float(sys.argv[1]), float(sys.argv[2])
    hold_up_import("genai_prices.data", slow)
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    import llm_otel
    from llm_otel.core import LLMInvocation, get_recorder
    from llm_otel.usage import pricing

    llm_otel.instrument()  # the price table starts loading in the background
    time.sleep(offset)
    loaded_before_fork = pricing.PRICES.ready()
    started = time.perf_counter()
    pid = os.fork()
    fork_s = time.perf_counter() - started
    if pid == 0:
        try:
            direct = pricing.cost_usd("gpt-4o-mini", 1000, 100)
            with llm_otel.usage() as u:
                get_recorder().start(LLMInvocation(request_model="gpt-4o-mini", input_tokens=1000,
                                                   output_tokens=100)).end()
            deadline = time.time() + 30
            while not exporter.get_finished_spans() and time.time() < deadline:
                time.sleep(0.01)
            with open(sys.argv[3], "w") as out:
                json.dump({"direct": direct, "requests": u.requests, "block": u.cost_usd,
                           "span": [s.attributes.get("llm_otel.cost.usd") for s in exporter.get_finished_spans()]}, out)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    child = "hung"
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            child = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    print(json.dumps({"loaded_before_fork": loaded_before_fork, "fork_s": fork_s, "child": child}))
""")


@pytest.mark.parametrize("offset", [0.0, 0.02])
def test_a_fork_during_the_price_table_load_leaves_a_child_that_prices(offset, tmp_path):
    """The fork waits for the load in progress (an import half-made in the parent would hang
    the child's first import of it); the child prices its calls."""
    from llm_otel.core import preload

    from llm_otel.usage import cost_usd

    # the data's import held up 1 s: mid-load at the fork whatever instrument() and the load
    # take with these releases (at the floors the load can end within instrument())
    got = _run_fresh(PRICE_LOAD_FORK, "1", str(offset), str(tmp_path / "child.json"))
    print(f"\nfork during the price-table load (+{offset} s): fork took {got['fork_s'] * 1e3:.0f} ms")
    assert got["loaded_before_fork"] is False  # the case under test: forked mid-load
    assert got["child"] == 0, got
    assert got["fork_s"] < preload.FORK_WAIT_S
    child = json.loads((tmp_path / "child.json").read_text())
    expected = cost_usd("gpt-4o-mini", 1000, 100)  # this process's own table
    assert child["requests"] == 1 and len(child["span"]) == 1
    assert child["direct"] == child["block"] == child["span"][0] == pytest.approx(expected) and expected > 0


def test_a_child_forked_during_a_price_table_load_slower_than_the_fork_wait_never_hangs(tmp_path):
    """A slow disk holds the import of genai-prices' data past the fork's bounded wait: the
    child inherits that import half-made, its module lock held by a thread the child does not
    have. Pricing in the child must not hang on it (a missing cost is acceptable, a hang is not)."""
    from llm_otel.core import preload

    got = _run_fresh(PRICE_LOAD_FORK, str(preload.FORK_WAIT_S + 3), "0", str(tmp_path / "child.json"))
    assert got["loaded_before_fork"] is False
    assert got["fork_s"] < preload.FORK_WAIT_S + 1  # the parent waited a bounded while ...
    assert got["child"] == 0, f"the child {got['child']} pricing a call"  # ... and the child lives on
    child = json.loads((tmp_path / "child.json").read_text())
    assert child["requests"] == 1 and len(child["span"]) == 1


# ---- a call that ends while the price table loads ---------------------------------------------

ENDS_WHILE_PRICES_LOAD = HOLD_UP_IMPORT + textwrap.dedent("""
    import json, sys, time
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    import llm_otel
    from llm_otel.core import LLMInvocation, get_recorder
    from llm_otel.usage import pricing

    hold_up_import("genai_prices.data", 1.0)  # still loading at the call's end, with every release
    llm_otel.instrument()  # the price table starts loading in the background
    with llm_otel.usage() as u:
        began = time.perf_counter()
        op = get_recorder().start(LLMInvocation(request_model="gpt-4o-mini", input_tokens=1000, output_tokens=100))
        time.sleep(0.05)  # the call itself
        started = time.perf_counter()
        op.end()
        end_s = time.perf_counter() - started
        call_s = time.perf_counter() - began
    loaded_at_end = pricing.PRICES.ready()
    spans_at_end = len(exporter.get_finished_spans())
    block_cost = u.cost_usd  # read at once: waits for the price, not for more
    deadline = time.time() + 60
    while not exporter.get_finished_spans() and time.time() < deadline:
        time.sleep(0.01)
    (span,) = exporter.get_finished_spans()
    (point,) = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == "gen_ai.client.operation.duration" for p in m.data.data_points]
    print(json.dumps({"end_s": end_s, "call_s": call_s, "loaded_at_end": loaded_at_end, "spans_at_end": spans_at_end,
                      "span_s": (span.end_time - span.start_time) / 1e9, "metric_s": point.sum,
                      "span_cost": span.attributes.get("llm_otel.cost.usd"), "block_cost": block_cost,
                      "expected": pricing.cost_usd("gpt-4o-mini", 1000, 100)}))
""")


def test_a_call_ending_while_the_price_table_loads_neither_waits_nor_stretches_its_span():
    got = _run_fresh(ENDS_WHILE_PRICES_LOAD)
    print(f"\ncall ended while prices loaded: the end took {got['end_s'] * 1e3:.2f} ms; "
          f"span {got['span_s'] * 1e3:.0f} ms for a 50 ms call")
    assert got["loaded_at_end"] is False  # the case under test
    assert got["end_s"] < 0.05  # the caller did not wait for the load (over 1 s)
    assert got["spans_at_end"] == 0  # the span ended later, once priced ...
    assert 0.05 <= got["span_s"] <= got["call_s"]  # ... with the call's own end time
    assert abs(got["span_s"] - got["metric_s"]) < 0.05
    assert got["expected"] > 0 and got["span_cost"] == pytest.approx(got["expected"])
    assert got["block_cost"] == pytest.approx(got["expected"])  # usage() complete


# ---- a process that exits while a load is in progress ----------------------------------------

EXITS_WHILE_PRICES_LOAD = HOLD_UP_IMPORT + textwrap.dedent("""
    import sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from llm_otel.exporters import JsonlFileExporter
    provider = TracerProvider()  # shuts down at exit
    provider.add_span_processor(SimpleSpanProcessor(JsonlFileExporter(sys.argv[1])))
    trace.set_tracer_provider(provider)
    import llm_otel
    from llm_otel.core import LLMInvocation, get_recorder

    hold_up_import("genai_prices.data", float(sys.argv[2]))  # still loading when the app exits
    llm_otel.instrument()  # the price table starts loading in the background
    get_recorder().start(LLMInvocation(request_model="gpt-4o-mini", input_tokens=1000, output_tokens=100)).end()
    print("exiting", flush=True)
""")


@pytest.mark.parametrize("load_s, priced", [(1.0, True), (6.0, False)])
def test_an_app_that_exits_while_the_prices_load_waits_for_them_bounded(tmp_path, load_s, priced):
    """At exit the process lets a load in progress finish, for at most 3 s: a loader thread
    still in native code at finalization aborted the process (SIGABRT or SIGSEGV, 3 of 90
    runs of a short app here), and the call that waited on the load ends with its data."""
    from llm_otel.exporters import read_spans
    from llm_otel.usage.pricing import cost_usd

    path = tmp_path / "spans.jsonl"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", EXITS_WHILE_PRICES_LOAD, str(path), str(load_s)],
                          env=_fresh_env(), capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 0 and "exiting" in proc.stdout, proc.stderr[-3000:]
    (span,), bad = read_spans(path)
    assert not bad and span.name == "chat gpt-4o-mini"  # exported before the provider shut down
    if priced:  # the load came within the wait: the call is priced
        assert span.attributes["llm_otel.cost.usd"] == pytest.approx(cost_usd("gpt-4o-mini", 1000, 100))
    else:  # a load slower than the wait (a hanging disk): exit goes on after 3 s, unpriced
        assert "llm_otel.cost.usd" not in span.attributes
        assert took < load_s
    print(f"\nexit while prices load ({load_s:g} s): process took {took:.2f} s")


# ---- LlamaIndex runs that never end -----------------------------------------------------------


def _never_ending_llamaindex_runs(count: int, size: int) -> list:
    """``count`` chat and ``count`` completion runs, started through LlamaIndex's dispatcher
    with inputs of ``size`` characters, each in a context of its own that is then let go (a
    task that died). Returns the runs as (span id, bound arguments of a small stand-in)."""
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events.llm import LLMChatStartEvent, LLMCompletionStartEvent
    from llama_index.core.llms import ChatMessage, MockLLM

    dispatcher = get_dispatcher("llama_index.core.llms.mock")
    llm = MockLLM(max_tokens=2)
    started = []

    def chat(text):
        span_id = f"MockLLM.chat-{uuid.uuid4()}"
        messages = [ChatMessage(role="user", content=text)]
        dispatcher.span_enter(id_=span_id, bound_args=inspect.signature(MockLLM.chat).bind(llm, messages),
                              instance=llm)
        dispatcher.event(LLMChatStartEvent(messages=messages, additional_kwargs={}, model_dict={}),
                         span_id=span_id)
        started.append((span_id, "chat"))

    def complete(text):
        span_id = f"MockLLM.complete-{uuid.uuid4()}"
        dispatcher.span_enter(id_=span_id, bound_args=inspect.signature(MockLLM.complete).bind(llm, text),
                              instance=llm)
        dispatcher.event(LLMCompletionStartEvent(prompt=text, additional_kwargs={}, model_dict={}),
                         span_id=span_id)
        started.append((span_id, "complete"))

    for n in range(count):
        contextvars.copy_context().run(chat, f"{n} " + "c" * size)
        contextvars.copy_context().run(complete, f"{n} " + "p" * size)
    return started


def test_llamaindex_runs_that_never_end_keep_no_inputs_when_content_is_off(llamaindex_instrumentor, spans):
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.llms import MockLLM

    runs_per_kind, size = 500, 100_000
    tracker = llamaindex_instrumentor._tracker
    before = len(tracker.runs)
    started = _never_ending_llamaindex_runs(3, size)  # warm up (first-use allocations)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        started += _never_ending_llamaindex_runs(runs_per_kind, size)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    runs = 2 * runs_per_kind
    print(f"\nLlamaIndex runs that never end, 100 KB inputs, content off: {held / runs:.0f} bytes per open run")
    assert len(tracker.runs) - before == runs + 6
    assert held / runs < 16_000, f"{held / runs:.0f} bytes per open run"  # an input alone is 100,000
    dispatcher, llm = get_dispatcher("llama_index.core.llms.mock"), MockLLM(max_tokens=2)
    for span_id, method in started:  # they end after all: each span still ends
        dispatcher.span_drop(id_=span_id, bound_args=inspect.signature(getattr(MockLLM, method)).bind(llm, ""),
                             instance=llm, err=None)
    assert len(tracker.runs) == before
    assert len([s for s in spans() if s.end_time]) == len(started)
