"""Issue-12 regressions of the core's mechanisms, through public behaviour: forks while our
locks are held, ends that never wait on a load, providers that reuse a freed id, racing
instrument() calls, re-binding, odd exceptions, capped trace data, the quiet no-SDK path."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import llm_otel
from llm_otel import config
from llm_otel.core import LLMInvocation, StepInvocation, get_recorder
from rel_support import fork_and_run, held_by_a_thread

# ---- fork: every lock of ours, held by another thread at the fork ------------------------


def _tracked_call():
    @llm_otel.track
    def work():
        with llm_otel.usage() as u:
            get_recorder().start(LLMInvocation(request_model="m", input_tokens=1, output_tokens=1)).end()
        return u.requests

    assert work() == 1


def _locks():
    """(name, lock, what the child does that needs it): the locks of the core, tracking and usage."""
    from llm_otel.core import instrumentor, recorder
    from llm_otel.tracking import state
    from llm_otel.usage import pricing

    usage_block = llm_otel.usage()
    return [
        ("tracking state", state._lock, _tracked_call),
        ("instrument()", instrumentor._lock, lambda: (llm_otel.instrument("openai"), llm_otel.uninstrument("openai"))),
        ("spans ending late", recorder._deferred_lock, _tracked_call),
        ("agent usage", recorder._credit_lock, _tracked_call),
        ("prices", pricing._lock, lambda: llm_otel.usage.cost_usd("gpt-4o-mini", 10, 10)),
        ("a usage() block", usage_block._lock, lambda: usage_block.add(LLMInvocation(input_tokens=1))),
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
@pytest.mark.parametrize("index", range(6), ids=["tracking", "instrument", "deferred", "agents", "prices", "usage"])
def test_a_child_forked_while_another_thread_holds_our_lock_works(index, spans):
    name, lock, child = _locks()[index]
    release = held_by_a_thread(lock)
    try:
        code = fork_and_run(child)
    finally:
        release.set()
    assert code == 0, f"the child {'hung' if code == -1 else 'failed'} on the {name} lock"


# ---- ends never wait on a load --------------------------------------------------------------

DEFERRED = textwrap.dedent("""
    import json, sys, time
    from opentelemetry import trace, metrics
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider); metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    import llm_otel
    from llm_otel.core import LLMInvocation, get_recorder
    from llm_otel.core import tokens
    text = "the answer " * 200
    with llm_otel.usage() as u:
        op = get_recorder().start(LLMInvocation(request_model="gpt-4o", output_messages=[
            {"role": "assistant", "parts": [{"type": "text", "content": text}]}]))
        time.sleep(0.05)  # the call itself
        started = time.perf_counter()
        op.end()  # no usage: a local count, and the encoding has not loaded yet
        end_cost = time.perf_counter() - started
    spans_at_end = len(exporter.get_finished_spans())
    deadline = time.time() + 60
    while not exporter.get_finished_spans() and time.time() < deadline:
        time.sleep(0.01)
    (span,) = exporter.get_finished_spans()
    (point,) = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == "gen_ai.client.operation.duration" for p in m.data.data_points]
    print(json.dumps({"end_cost": end_cost, "spans_at_end": spans_at_end,
                      "span_s": (span.end_time - span.start_time) / 1e9, "metric_s": point.sum,
                      "estimated": span.attributes.get("llm_otel.usage.estimated_output_tokens"),
                      "counted": u.estimated_output_tokens}))
""")


def test_a_call_ending_while_the_encoding_loads_neither_waits_nor_stretches_its_span(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env["TIKTOKEN_CACHE_DIR"] = str(tmp_path)  # only the bundled encodings: a real load
    proc = subprocess.run([sys.executable, "-c", DEFERRED], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["end_cost"] < 0.05  # the caller did not wait for the load (0.3-0.9 s)
    assert got["spans_at_end"] == 0  # the span ended later, once the count could be made ...
    assert 0.05 <= got["span_s"] < 0.2  # ... with the call's own end time
    assert abs(got["span_s"] - got["metric_s"]) < 0.05
    assert got["estimated"] and got["counted"] == got["estimated"]  # usage() got the estimate too


# ---- recorders follow the provider object, never a reused id --------------------------------


def test_a_new_provider_never_inherits_a_freed_providers_pipeline():
    seen = set()
    for _ in range(20):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        seen.add(id(provider))
        get_recorder(provider).start(StepInvocation(name="step")).end()
        assert len(exporter.get_finished_spans()) == 1
        provider.shutdown()
        del provider
        gc.collect()
    assert len(seen) < 20, "no id was reused: the test proves nothing on this interpreter"


# ---- instrument(): races and re-binding ------------------------------------------------------


def test_racing_instrument_and_uninstrument_leave_nothing_wrapped(instrumentor):
    import openai._base_client as base
    import wrapt

    instrumentor.uninstrument()  # this folder runs with OpenAI instrumented: start from nothing
    original = vars(base.SyncAPIClient)["request"]
    assert not isinstance(original, wrapt.FunctionWrapper)
    for _ in range(100):
        threads = [threading.Thread(target=llm_otel.instrument, args=("openai",)) for _ in range(4)]
        threads += [threading.Thread(target=llm_otel.uninstrument, args=("openai",)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        llm_otel.uninstrument("openai")
        assert not isinstance(vars(base.SyncAPIClient)["request"], wrapt.FunctionWrapper)
    assert vars(base.SyncAPIClient)["request"] is original
    instrumentor.instrument()


def test_instrumenting_again_with_a_provider_re_binds(recordings, instrumentor):
    from support.cassettes import Cassette

    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    providers = []
    for exporter in (first, second):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
    client = Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml", repeat=True).openai_client()
    try:
        llm_otel.instrument("openai", tracer_provider=providers[0])
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
        llm_otel.instrument("openai", tracer_provider=providers[1])  # already on: re-bound, not ignored
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    finally:
        instrumentor.uninstrument()
        instrumentor.instrument()  # as this folder's fixture left it: the global providers
    assert len(first.get_finished_spans()) == 1 and len(second.get_finished_spans()) == 1


# ---- @track: an exception whose __str__ raises ---------------------------------------------


def test_track_records_an_error_whose_message_cannot_be_read(spans):
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no message")

    @llm_otel.track
    def fails():
        raise Unprintable()

    with pytest.raises(Unprintable):
        fails()
    (span,) = spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "test_track_records_an_error_whose_message_cannot_be_read.<locals>.Unprintable"


# ---- trace data is capped like any other value ------------------------------------------------


def test_update_current_trace_caps_metadata_and_tags(spans, monkeypatch):
    monkeypatch.setenv(config.CONTENT_MAX_LENGTH_ENV, "100")
    config.reload()
    try:
        @llm_otel.track
        def root():
            llm_otel.update_current_trace(metadata={"huge": "x" * 10_000_000, "token": "abcdefgh12345678"},
                                          tags=["t" * 5000])

        root()
    finally:
        monkeypatch.delenv(config.CONTENT_MAX_LENGTH_ENV)
        config.reload()
    (span,) = spans()
    huge = span.attributes["llm_otel.metadata.huge"]
    assert len(huge) < 200 and huge.endswith("...[truncated 9999900 chars]")
    assert span.attributes["llm_otel.metadata.token"] == "[REDACTED]"  # named like a credential
    assert len(span.attributes["llm_otel.tags"][0]) < 200


# ---- without an SDK: quiet no-ops ------------------------------------------------------------


def test_tracking_without_an_sdk_is_quiet():
    code = textwrap.dedent("""
        import logging, llm_otel
        logging.basicConfig(level=logging.INFO)
        from llm_otel import track, update_current_trace

        @track(name="chain")
        def chain(q):
            update_current_trace(user_id="u", feedback_scores=[{"name": "x", "value": 1}])
            return llm_otel.get_current_trace_id()

        with llm_otel.usage() as u:
            trace_id = chain("q")
        llm_otel.record_feedback(trace_id, "thumbs_up", 1.0)
        print("TRACE", trace_id, u.requests)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "TRACE None 0" in proc.stdout
    assert "llm_otel" not in proc.stderr and "Traceback" not in proc.stderr


# ---- a background load never shows the app a half-imported module ---------------------------

HTTP_CLIENT = textwrap.dedent("""
    import json, sys, threading, time
    from importlib import metadata
    import httpx, openai
    wanted = [r.split(";")[0].split(">")[0].split("=")[0].strip() for r in metadata.requires("genai-prices")]
    client = "httpx2" if "httpx2" in wanted else "httpx"
    before = client in sys.modules
    import llm_otel
    from llm_otel.usage import pricing
    llm_otel.instrument()
    errors = []
    while not pricing.PRICES.ready():  # the SDK looks its HTTP clients up in sys.modules
        try:
            openai.OpenAI(api_key="sk-test", http_client=httpx.Client())
        except Exception as exc:
            errors.append(repr(exc))
    imported_by_the_load = client in sys.modules and not before
    # the app's own use of genai-prices gets the whole package, from any thread
    got = {}
    def use():
        import genai_prices
        got["cost"] = float(genai_prices.calc_price(genai_prices.Usage(input_tokens=1000), "gpt-4o",
                                                    provider_id="openai").total_price)
        got["version"] = genai_prices.__version__
    thread = threading.Thread(target=use); thread.start(); thread.join()
    print(json.dumps({"client": client, "before": before, "imported_by_the_load": imported_by_the_load,
                      "errors": errors[:3], "ours": pricing.cost_usd("gpt-4o", 1000, 0, provider="openai"),
                      "theirs": got.get("cost"), "version": got.get("version"),
                      "metadata_version": metadata.version("genai-prices")}))
""")


def test_the_price_load_imports_no_http_client_and_leaves_genai_prices_whole_for_the_app():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    proc = subprocess.run([sys.executable, "-c", HTTP_CLIENT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if got["client"] == "httpx2":  # (the SDK imports httpx itself)
        assert got["before"] is False and got["imported_by_the_load"] is False
    assert got["errors"] == []  # openai.OpenAI(...) made while prices loaded never failed
    assert got["ours"] == pytest.approx(got["theirs"]) and got["ours"] > 0
    assert got["version"] == got["metadata_version"]
