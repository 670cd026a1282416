"""The three ways users turn llm-otel on: instrument(), import llm_otel.auto, opentelemetry-instrument."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest

import llm_otel
from llm_otel.core.instrumentor import LibraryInstrumentor
from support.cassettes import Cassette, serve

BIN = Path(sys.executable).parent

APP = textwrap.dedent("""
    import openai
    client = openai.OpenAI(max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}])
    print("REPLY", reply.id)
""")


def _run(args, base_url, tmp_path, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(OPENAI_API_KEY="sk-secret-test-key", OPENAI_BASE_URL=base_url, OTEL_TRACES_EXPORTER="console",
                   OTEL_METRICS_EXPORTER="console", OTEL_LOGS_EXPORTER="none", OTEL_METRIC_EXPORT_INTERVAL="60000",
                   OTEL_SERVICE_NAME="turning-on-test", **env)
    (tmp_path / "app.py").write_text(APP)
    return subprocess.run(args, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


def _spans(stdout):
    """The console exporter's JSON span objects in ``stdout``."""
    decoder, spans, i = json.JSONDecoder(), [], 0
    while (i := stdout.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(stdout, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict) and "context" in obj and "name" in obj:
            spans.append(obj)
        i = end
    return spans


@pytest.fixture
def chat_server(recordings):
    with serve(Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml")) as url:
        yield url


def _assert_one_chat_span(proc):
    assert proc.returncode == 0, proc.stderr
    assert "REPLY chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK" in proc.stdout
    (span,) = [s for s in _spans(proc.stdout) if s["name"].startswith("chat")]
    assert span["name"] == "chat gpt-3.5-turbo" and span["kind"] == "SpanKind.CLIENT"
    a = span["attributes"]
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] == 15 and a["gen_ai.usage.output_tokens"] == 19
    assert a["server.address"] == "127.0.0.1"
    assert span["resource"]["attributes"]["service.name"] == "turning-on-test"
    assert "gen_ai.client.token.usage" in proc.stdout  # metrics flushed at exit
    assert "sk-secret-test-key" not in proc.stdout + proc.stderr


def test_opentelemetry_instrument_picks_up_the_entry_points(chat_server, tmp_path):
    proc = _run([str(BIN / "opentelemetry-instrument"), sys.executable, "app.py"], chat_server, tmp_path)
    _assert_one_chat_span(proc)


def test_import_llm_otel_auto_configures_the_sdk_from_the_environment(chat_server, tmp_path):
    (tmp_path / "main.py").write_text("import llm_otel.auto\nimport llm_otel.auto\nexec(open('app.py').read())\n")
    proc = _run([sys.executable, "main.py"], chat_server, tmp_path)
    _assert_one_chat_span(proc)


def test_auto_keeps_the_providers_an_app_set(chat_server, tmp_path):
    (tmp_path / "main.py").write_text(textwrap.dedent("""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        mine = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(mine))
        trace.set_tracer_provider(provider)
        import llm_otel.auto
        exec(open('app.py').read())
        print("MINE", [s.name for s in mine.get_finished_spans()])
    """))
    proc = _run([sys.executable, "main.py"], chat_server, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "MINE ['chat gpt-3.5-turbo']" in proc.stdout
    assert not [s for s in _spans(proc.stdout) if s["name"].startswith("chat")]  # not to the console


def test_instrument_is_idempotent_and_uninstrument_restores(spans, recordings):
    original = openai.resources.chat.completions.Completions.create
    try:
        assert "openai" in llm_otel.instrument("openai")
        assert "openai" in llm_otel.instrument("openai")
        assert hasattr(openai.resources.chat.completions.Completions.create, "__wrapped__")
        client = Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml").openai_client()
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
        assert [s.name for s in spans()] == ["chat gpt-3.5-turbo"]
    finally:
        llm_otel.uninstrument()
    assert openai.resources.chat.completions.Completions.create is original


def test_instrument_all_installed_and_unknown_name():
    try:
        assert set(llm_otel.instrument()) == {"openai", "langchain", "llama_index"}
    finally:
        llm_otel.uninstrument()
    with pytest.raises(ValueError, match="unknown instrumentor 'anthropic'"):
        llm_otel.instrument("anthropic")


def test_a_missing_library_is_skipped_even_when_told_to_skip_the_check():
    calls = []

    class Missing(LibraryInstrumentor):
        def instrumentation_dependencies(self):
            return ("surely-not-installed-pkg >= 1",)

        def _instrument(self, **kwargs):
            calls.append(kwargs)

        def _uninstrument(self, **kwargs):
            pass

    Missing().instrument(skip_dep_check=True)  # what opentelemetry-instrument passes
    assert calls == [] and not Missing().is_instrumented_by_opentelemetry


def test_patching_waits_for_the_library_import(tmp_path):
    """instrument() before the app imports a library patches it on import, and only then."""
    code = textwrap.dedent("""
        import sys, llm_otel
        assert llm_otel.instrument() == ["langchain", "llama_index", "openai"]
        assert not any(m.split(".")[0] in ("openai", "langchain_core", "llama_index") for m in sys.modules)
        import openai, wrapt
        Client = openai._base_client.SyncAPIClient
        request = Client.__dict__["request"]
        print("WRAPPED", isinstance(request, wrapt.FunctionWrapper))
        llm_otel.uninstrument()
        print("RESTORED", Client.__dict__["request"] is request.__wrapped__)
        llm_otel.instrument("langchain"); llm_otel.uninstrument("langchain")
        import langchain_core.callbacks.base as base
        print("UNTOUCHED", not isinstance(base.BaseCallbackManager.__dict__["__init__"], wrapt.FunctionWrapper))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WRAPPED True" in proc.stdout and "RESTORED True" in proc.stdout and "UNTOUCHED True" in proc.stdout
