"""Every GenAI span counts: the Anthropic SDK's own spans feed usage(), cost and the GenAI
metrics, with the real ``anthropic`` package (its own tracing on) over its own transport."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")

import llm_otel  # noqa: E402
from llm_otel import config  # noqa: E402
from llm_otel.core import LLMInvocation, get_recorder  # noqa: E402
from llm_otel.instrumentors.openai import OpenAIInstrumentor  # noqa: E402
from llm_otel.usage import pricing  # noqa: E402
from support import anthropic_api as api  # noqa: E402

TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"
PROMPT = [{"role": "user", "content": "Hello, Claude"}]


@pytest.fixture(scope="module", autouse=True)
def llm_otel_on():
    """llm-otel on (any of its ways puts the counting processor on the app's provider)."""
    inst = OpenAIInstrumentor()
    inst.instrument()
    yield
    inst.uninstrument()


def anthropic_spans(spans):
    return [s for s in spans() if s.instrumentation_scope.name.startswith("com.anthropic.sdk.python")]


def cost_of(span):
    a = span.attributes
    return pricing.cost_usd(a["gen_ai.response.model"], a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"],
                            a.get("gen_ai.usage.cache_read.input_tokens"),
                            a.get("gen_ai.usage.cache_write.input_tokens"), provider="anthropic")


def test_create_counts_in_usage_cost_and_metrics(spans, metric_reader):
    with llm_otel.usage() as u:
        reply = api.client().messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)
    assert reply.content[0].text.startswith("Hello")
    (span,) = anthropic_spans(spans)
    a = span.attributes
    assert (u.requests, u.input_tokens, u.output_tokens) == (1, a["gen_ai.usage.input_tokens"], 10)
    assert u.cost_usd is not None and u.cost_usd == pytest.approx(cost_of(span)) and u.cost_usd > 0
    assert set(u.by_model) == {api.MODEL}
    assert metric_reader.total(TOKENS, gen_ai__provider__name="anthropic", gen_ai__token__type="output") == 10
    (point,) = [p for p in metric_reader.points(DURATION) if p.attributes["gen_ai.provider.name"] == "anthropic"]
    assert point.count == 1 and point.attributes["gen_ai.response.model"] == api.MODEL


def test_a_stream_counts_once_when_it_has_been_read(spans):
    with llm_otel.usage() as u:
        stream = api.client().messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT, stream=True)
        assert u.requests == 0  # the SDK's span ends with the stream
        text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    assert text == "Hello there, streaming!"
    (span,) = anthropic_spans(spans)
    assert (u.requests, u.output_tokens) == (1, 15)
    assert u.input_tokens == span.attributes["gen_ai.usage.input_tokens"] == 125  # the cache read included
    assert u.cached_input_tokens == 100


def test_the_stream_helper_counts_once(spans):
    with llm_otel.usage() as u:
        with api.client().messages.stream(model=api.MODEL, max_tokens=100, messages=PROMPT) as stream:
            final = stream.get_final_message()
    assert final.usage.output_tokens == 15
    assert (u.requests, u.output_tokens) == (1, 15)
    assert len(anthropic_spans(spans)) == 1


async def test_gathered_calls_count_where_each_ran(spans):
    client = api.async_client()

    async def call():
        return await client.messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)

    async def counted_apart():
        with llm_otel.usage() as inner:
            await call()
        return inner

    with llm_otel.usage() as outer:
        results = await asyncio.gather(call(), call(), counted_apart())
    inner = results[-1]
    assert (outer.requests, inner.requests) == (3, 1)
    assert outer.output_tokens == 30 and inner.output_tokens == 10


def test_an_error_counts_as_a_failed_request(spans, metric_reader):
    failing = api.client(default_headers={"x-scenario": "overloaded"})
    with llm_otel.usage() as u, pytest.raises(anthropic.APIStatusError):
        failing.messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)
    assert (u.requests, u.failed_requests, u.total_tokens) == (1, 1, 0)
    (point,) = [p for p in metric_reader.points(DURATION) if p.attributes["gen_ai.provider.name"] == "anthropic"]
    assert point.attributes["error.type"] == "overloaded_error"


@pytest.mark.parametrize("scenario,cached", [("cache-write", 0), ("cache-read", 2048)])
def test_prompt_caching_is_priced_at_the_cache_rates(scenario, cached, spans):
    client = api.client(default_headers={"x-scenario": scenario})
    with llm_otel.usage() as u:
        client.messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)
    (span,) = anthropic_spans(spans)
    assert u.input_tokens == 21 + 2048 and u.cached_input_tokens == cached
    plain = pricing.cost_usd(api.MODEL, 21 + 2048, 8, provider="anthropic")
    assert u.cost_usd == pytest.approx(cost_of(span)) and u.cost_usd != pytest.approx(plain)


def test_a_framework_call_over_the_sdk_is_counted_once(spans):
    """A framework's LLM call (here recorded through the core, as LangChain's ChatAnthropic
    would be) whose SDK call the Anthropic SDK traces itself: one call, its exact usage."""
    recorder = get_recorder()
    with llm_otel.usage() as u:
        op = recorder.start(LLMInvocation(provider="anthropic", request_model=api.MODEL))
        with op.current(claim=True):
            api.client().messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)
        op.end()
    assert (u.requests, u.output_tokens) == (1, 10)
    framework = [s for s in spans() if s.instrumentation_scope.name == "llm_otel"]
    assert framework[0].attributes["gen_ai.usage.output_tokens"] == 10


def test_scopes_can_be_left_out(spans, monkeypatch):
    monkeypatch.setenv(config.FOREIGN_SPANS_ENV, "-com.anthropic.sdk.python*")
    config.reload()
    try:
        with llm_otel.usage() as u:
            api.client().messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)
    finally:
        monkeypatch.delenv(config.FOREIGN_SPANS_ENV)
        config.reload()
    assert u.requests == 0 and len(anthropic_spans(spans)) == 1


def test_the_console_tree_shows_it_as_an_llm_call(spans):
    from llm_otel.exporters import ConsoleTreeExporter

    tracer = llm_otel_tracer()
    with tracer.start_as_current_span("pipeline"):
        api.client().messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)
    out = io.StringIO()
    exporter = ConsoleTreeExporter(out=out, color=False)
    exporter.export(list(spans()))
    (span,) = anthropic_spans(spans)
    line = next(line for line in out.getvalue().splitlines() if "anthropic.messages.create" in line)
    assert api.MODEL in line and "tokens in 12 out 10" in line and f"${cost_of(span):.6f}" in line


def test_finetune_exports_its_content(spans, tmp_path, monkeypatch):
    from llm_otel.exporters import from_readable
    from llm_otel.finetune.export import build_examples

    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE", "content")  # read by a new client
    api.client().messages.create(model=api.MODEL, max_tokens=100, messages=PROMPT)
    examples, report = build_examples([from_readable(s) for s in spans()])
    (example,) = examples
    assert [m["role"] for m in example["messages"]] == ["user", "assistant"]
    assert example["messages"][1]["content"].startswith("Hello")


def test_another_openai_instrumentor_beside_ours_does_not_double_count(spans, recordings, caplog):
    """A peer instrumentor wrapping ``chat.completions.create`` in its own GenAI span (the
    shape the official genai-openai instrumentation emits, scope and attributes alike)."""
    from opentelemetry import trace
    from support.cassettes import Cassette

    peer = trace.get_tracer("opentelemetry.instrumentation.genai.openai", "1.3b0")
    client = Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml", repeat=True).openai_client()
    caplog.set_level(logging.WARNING, logger="llm_otel")
    outputs = 0
    with llm_otel.usage() as u:
        for _ in range(2):
            with peer.start_as_current_span("chat gpt-3.5-turbo", kind=trace.SpanKind.CLIENT, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-3.5-turbo"}) as span:
                result = client.chat.completions.create(model="gpt-3.5-turbo", messages=PROMPT)
                span.set_attributes({"gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                                     "gen_ai.usage.output_tokens": result.usage.completion_tokens})
                outputs += result.usage.completion_tokens
    assert u.requests == 2  # once each, by llm-otel
    assert u.output_tokens == outputs
    warnings = [r for r in caplog.records if "genai.openai" in r.getMessage()]
    assert len(warnings) <= 1 and (warnings or "genai.openai" in _warned())


def _warned():
    from llm_otel.core import foreign

    return " ".join(foreign._warned)


def llm_otel_tracer():
    from opentelemetry import trace

    return trace.get_tracer("app")


def test_the_mixed_providers_example_counts_both_in_one_usage(tmp_path):
    """examples/mixed_providers.py as a user runs it: one usage() over OpenAI (traced by
    llm-otel) and Anthropic (tracing itself), priced, and one tree per trace."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "LLM_OTEL_", "OPENAI_", "ANTHROPIC_"))}
    env.update(OTEL_TRACES_EXPORTER="llm_otel_console", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
               NO_COLOR="1")
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    proc = subprocess.run([str(instrument), sys.executable, "mixed_providers.py"], cwd=examples, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    totals = next(line for line in out.splitlines() if line.startswith("requests "))
    assert totals.startswith("requests 2 ") and "cost None" not in totals
    assert "gpt-4o-mini: 1 request(s)" in out and "claude-sonnet-4-6: 1 request(s)" in out
    assert "└─ anthropic.messages.create" in out and "chat gpt-4o-mini" in out
