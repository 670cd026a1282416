"""Backend down: the OTLP/HTTP endpoint refuses, hangs, or answers 503 for a while, then
comes back. The app's call latency stays flat (measured), nothing produced meanwhile is
lost within the documented bounds (BatchSpanProcessor queue, exporter retry deadline),
and a process never blocks at exit beyond the exporter's configured timeout."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llm_otel.instrumentors.openai import instrument_client
from rel_support import OtlpBackend
from support.cassettes import Cassette

OUTAGE = 1.5  # seconds each fault lasts
MESSAGES = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


@pytest.fixture
def backend():
    server = OtlpBackend().start()
    yield server
    server.stop()


def _pipeline(backend, timeout=8.0, queue=2048, delay_ms=100):
    exporter = OTLPSpanExporter(endpoint=backend.endpoint, timeout=timeout)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=queue, schedule_delay_millis=delay_ms,
                                                   max_export_batch_size=min(512, queue)))
    return provider


def _calls_for(client, seconds, latencies):
    """Instrumented chat calls for ``seconds``, each timed; returns how many were made."""
    end = time.monotonic() + seconds
    made = 0
    while time.monotonic() < end:
        start = time.perf_counter()
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
        latencies.append(time.perf_counter() - start)
        made += 1
        time.sleep(0.004)
    return made


def _p(values, q):
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def test_outages_keep_latency_flat_and_lose_nothing(backend, recordings):
    provider = _pipeline(backend)
    client = instrument_client(Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml", repeat=True)
                               .openai_client(), tracer_provider=provider)
    # the SDK's first call imports its resources (~0.3 s with or without llm-otel): not timed
    client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    phases = {name: [] for name in ("up", "503", "hang", "refused", "back")}
    made = 1 + _calls_for(client, 0.6, phases["up"])
    provider.force_flush(5000)
    assert len(backend.span_ids) == made  # the pipeline works

    backend.mode = "503"
    made += _calls_for(client, OUTAGE, phases["503"])
    backend.mode = "ok"
    backend.mode, backend.hang_seconds = "hang", OUTAGE
    made += _calls_for(client, OUTAGE, phases["hang"])
    backend.mode = "ok"
    backend.stop()
    made += _calls_for(client, OUTAGE, phases["refused"])
    backend.start()
    made += _calls_for(client, 0.5, phases["back"])

    deadline = time.monotonic() + 25
    while len(backend.span_ids) < made and time.monotonic() < deadline:
        provider.force_flush(1000)
        time.sleep(0.1)
    provider.shutdown()
    assert len(backend.span_ids) == made, f"lost {made - len(backend.span_ids)} of {made} spans"
    assert len(set(backend.span_ids)) == made  # and none twice
    assert backend.requests > 4  # the exporter really retried through the outages

    base = statistics.median(phases["up"])
    report = {name: (len(v), statistics.median(v) * 1e3, _p(v, 0.99) * 1e3) for name, v in phases.items()}
    print("\nlatency per phase (calls, median ms, p99 ms):", report)
    for name, values in phases.items():
        assert statistics.median(values) < base * 2 + 0.002, (name, report)
        assert _p(values, 0.99) < 0.1, (name, report)  # no call waited on the backend


def test_beyond_the_bounds_spans_are_dropped_not_blocking(backend):
    """A longer outage than the exporter deadline, with more spans than the queue holds:
    spans are dropped (counted in the docs' bounds), the app is never slowed or blocked."""
    from llm_otel.core import LLMInvocation, Recorder

    provider = _pipeline(backend, timeout=0.5, queue=64, delay_ms=50)
    recorder = Recorder(tracer_provider=provider)
    backend.mode = "503"
    started = time.perf_counter()
    for _ in range(1000):
        recorder.start(LLMInvocation(request_model="m")).end()
    elapsed = time.perf_counter() - started
    time.sleep(1.0)  # the exporter gives up on its batch after its 0.5 s deadline
    backend.mode = "ok"
    provider.force_flush(5000)
    provider.shutdown()
    assert elapsed < 1.0  # 1000 calls never waited on the backend
    # each batch failed fast (503, and a 1 s backoff beyond the 0.5 s deadline): those spans
    # are gone; at most what the queue held when the backend came back is delivered
    assert len(backend.span_ids) <= 64 + 64


EXIT_SCRIPT = textwrap.dedent("""
    import sys, time
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from llm_otel.core import LLMInvocation, Recorder

    provider = TracerProvider()  # shuts down (flushing) at exit
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1])))
    trace.set_tracer_provider(provider)
    recorder = Recorder()
    for _ in range(200):
        recorder.start(LLMInvocation(request_model="m")).end()
    from llm_otel.core.preload import loading
    while loading():  # the encoding and price loads Recorder() started: exit waits for them too
        time.sleep(0.01)
    print("done", flush=True)
""")


@pytest.mark.parametrize("fault", ["hang", "503", "refused"])
def test_exit_never_blocks_beyond_the_exporter_timeout(fault, backend, tmp_path):
    timeout = 2.0
    if fault == "refused":
        backend.stop()
    else:
        backend.mode, backend.hang_seconds = fault, 30.0
    script = tmp_path / "app.py"
    script.write_text(EXIT_SCRIPT)
    env = {**os.environ, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": str(timeout)}
    proc = subprocess.Popen([sys.executable, str(script), backend.endpoint], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "done"
        after_work = time.monotonic()
        proc.wait(timeout=timeout + 10)
        exit_wait = time.monotonic() - after_work
    finally:
        proc.kill()
        proc.wait()
    print(f"\n{fault}: exit took {exit_wait:.2f}s with a {timeout}s exporter timeout")
    assert proc.returncode == 0
    assert exit_wait < timeout + 1.0
