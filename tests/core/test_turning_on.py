"""The three ways users turn llm-otel on: ``import llm_otel.auto``, ``opentelemetry-instrument``
and ``llm_otel.instrument()`` over an SDK the app configured. Each runs in a subprocess
against a real OTLP receiver on 127.0.0.1 (tests/support/otlp.py)."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path

import openai
import pytest

import llm_otel
from llm_otel.core.instrumentor import LibraryInstrumentor
from support import otlp
from support.cassettes import Cassette, serve

BIN = Path(sys.executable).parent


def _installed(dist):
    try:
        return bool(metadata.version(dist))
    except metadata.PackageNotFoundError:
        return False


#: our instrumentors whose library is installed here (CI's version matrix installs openai only)
INSTALLED = [name for name, dist in (("langchain", "langchain-core"), ("llama_index", "llama-index-core"),
                                     ("openai", "openai")) if _installed(dist)]

APP = textwrap.dedent("""
    import openai
    client = openai.OpenAI(max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}])
    print("REPLY", reply.id)
""")


@pytest.fixture
def chat_server(recordings):
    with serve(Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml")) as url:
        yield url


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
        assert llm_otel.instrument() == INSTALLED
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
    code = textwrap.dedent(f"""
        import sys, llm_otel
        assert llm_otel.instrument() == {INSTALLED!r}
        assert not any(m.split(".")[0] in ("openai", "langchain_core", "llama_index") for m in sys.modules)
        import openai, wrapt
        Client = openai._base_client.SyncAPIClient
        request = Client.__dict__["request"]
        print("WRAPPED", isinstance(request, wrapt.FunctionWrapper))
        llm_otel.uninstrument()
        print("RESTORED", Client.__dict__["request"] is request.__wrapped__)
    """)
    if "langchain" in INSTALLED:
        code += textwrap.dedent("""
            llm_otel.instrument("langchain"); llm_otel.uninstrument("langchain")
            import langchain_core.callbacks.base as base
            print("UNTOUCHED", not isinstance(base.BaseCallbackManager.__dict__["__init__"], wrapt.FunctionWrapper))
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WRAPPED True" in proc.stdout and "RESTORED True" in proc.stdout
    assert ("UNTOUCHED True" in proc.stdout) == ("langchain" in INSTALLED)


# ---- every way exports what opentelemetry-instrument exports, to a real OTLP receiver ----------

LOGGING_APP = APP + 'import logging\nlogging.getLogger("app").warning("app log line")\n'

APP_CONFIGURED_SDK = textwrap.dedent("""
    import os
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    resource = Resource.create({"service.name": "app-configured"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=os.environ["RECEIVER"] + "/v1/traces")))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=os.environ["RECEIVER"] + "/v1/metrics"))
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    import llm_otel
    print("INSTRUMENTED", llm_otel.instrument())
    exec(open("app.py").read())
""")


def _run_clean(args, tmp_path, app=APP, **env):
    """Run ``args`` in ``tmp_path`` with no OTEL_* variable but those given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(OPENAI_API_KEY="sk-secret-test-key", **env)
    (tmp_path / "app.py").write_text(app)
    (tmp_path / "auto_main.py").write_text("import llm_otel.auto\nexec(open('app.py').read())\n")
    (tmp_path / "sdk_main.py").write_text(APP_CONFIGURED_SDK)
    return subprocess.run(args, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


WAYS = {
    "import llm_otel.auto": [sys.executable, "auto_main.py"],
    "opentelemetry-instrument": [str(BIN / "opentelemetry-instrument"), sys.executable, "app.py"],
}


def _the_chat_span(proc, received):
    assert proc.returncode == 0, proc.stderr
    assert "REPLY chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK" in proc.stdout
    (span,) = [s for s in received.spans if s["name"].startswith("chat")]
    assert span["name"] == "chat gpt-3.5-turbo" and span["kind"] == 3  # SPAN_KIND_CLIENT
    a = span["attributes"]
    assert a["gen_ai.provider.name"] == "openai" and a["server.address"] == "127.0.0.1"
    assert a["gen_ai.usage.input_tokens"] == 15 and a["gen_ai.usage.output_tokens"] == 19
    assert "sk-secret-test-key" not in repr(received.spans) + proc.stdout + proc.stderr
    return span


@pytest.mark.parametrize("way", sorted(WAYS))
def test_only_the_endpoint_set_exports_traces_metrics_and_logs_over_otlp_http(way, chat_server, tmp_path):
    with otlp.http_receiver() as (endpoint, received):
        proc = _run_clean(WAYS[way], tmp_path, app=LOGGING_APP, OPENAI_BASE_URL=chat_server,
                          OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                          OTEL_SERVICE_NAME="otlp-test", OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true")
    assert _the_chat_span(proc, received)["resource"]["service.name"] == "otlp-test"
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= set(received.metric_names)
    assert "app log line" in received.log_bodies


def test_auto_with_only_the_endpoint_set_exports_over_the_default_grpc(chat_server, tmp_path):
    with otlp.grpc_receiver() as (endpoint, received):
        proc = _run_clean(WAYS["import llm_otel.auto"], tmp_path, OPENAI_BASE_URL=chat_server,
                          OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    _the_chat_span(proc, received)
    assert "gen_ai.client.token.usage" in received.metric_names


def test_instrument_exports_through_the_sdk_the_app_configured(chat_server, tmp_path):
    with otlp.http_receiver() as (endpoint, received):
        proc = _run_clean([sys.executable, "sdk_main.py"], tmp_path, OPENAI_BASE_URL=chat_server, RECEIVER=endpoint)
    assert f"INSTRUMENTED {INSTALLED!r}" in proc.stdout
    assert _the_chat_span(proc, received)["resource"]["service.name"] == "app-configured"
    assert "gen_ai.client.token.usage" in received.metric_names
    assert received.log_bodies == []  # llm-otel configured nothing of its own


def test_auto_keeps_the_providers_an_app_set(chat_server, tmp_path):
    (tmp_path / "mine_main.py").write_text(textwrap.dedent("""
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
    with otlp.http_receiver() as (endpoint, received):
        proc = _run_clean([sys.executable, "mine_main.py"], tmp_path, OPENAI_BASE_URL=chat_server,
                          OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    assert proc.returncode == 0, proc.stderr
    assert "MINE ['chat gpt-3.5-turbo']" in proc.stdout
    assert received.requests == 0  # auto configured nothing over the app's SDK


# ---- OTEL_PYTHON_DISABLED_INSTRUMENTATIONS ------------------------------------------------------

DISABLED_APP = ("from opentelemetry import trace\n"
                "with trace.get_tracer('app').start_as_current_span('app-span'):\n"
                + textwrap.indent(APP, "    "))


@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_disabled_library_is_left_alone(way, chat_server, tmp_path):
    with otlp.http_receiver() as (endpoint, received):
        proc = _run_clean(WAYS[way], tmp_path, app=DISABLED_APP, OPENAI_BASE_URL=chat_server,
                          OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                          OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="llama_index, openai")
    assert proc.returncode == 0, proc.stderr
    assert "REPLY chatcmpl-908MD9ivBBLb6EaIjlqwFokntayQK" in proc.stdout
    assert [s["name"] for s in received.spans] == ["app-span"]  # the SDK works; openai is not traced


def test_instrument_honours_the_disabled_list(monkeypatch):
    create = openai.resources.chat.completions.Completions.create
    try:
        monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "openai,langchain")
        assert llm_otel.instrument() == [name for name in INSTALLED if name == "llama_index"]
        assert llm_otel.instrument("openai") == []  # the operator's switch wins
        assert openai.resources.chat.completions.Completions.create is create
        with pytest.raises(ValueError, match="unknown instrumentor 'anthropic'"):
            llm_otel.instrument("anthropic")
        llm_otel.uninstrument()
        monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "*")
        assert llm_otel.instrument() == []
    finally:
        llm_otel.uninstrument()


def test_doctor_reports_a_disabled_library_as_disabled():
    from llm_otel.cli import doctor

    env = {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "llama_index"}
    proc = subprocess.run([str(BIN / "llm-otel"), "doctor", "--json", "--timeout", "0.2"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})
    rows = {row["subject"]: row for rows in json.loads(proc.stdout)["checks"].values() for row in rows}
    assert rows["instrumentor llama_index"]["detail"] == "disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
    assert rows["instrumentor openai"]["detail"].startswith("ready")
    assert doctor.run_checks  # the module imports on this Python (3.9 has no entry_points(group=))


def test_doctor_checks_opentelemetry_against_the_declared_floors(monkeypatch):
    """The floors come from llm-otel's installed metadata, not a copy in doctor."""
    from llm_otel.cli import doctor

    declared = {r.split(">=")[0]: r.split(">=")[1] for r in metadata.requires("llm-otel")
                if r.startswith("opentelemetry-") and ";" not in r}
    rows = {subject: (status, detail) for status, subject, detail in doctor.check_sdk()}
    for dist, floor in declared.items():
        assert rows[f"package {dist}"][0] == "ok" and f">={floor}" in rows[f"package {dist}"][1]
    installed = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda d: "0.50b0" if d == "opentelemetry-instrumentation" else installed(d))
    status, detail = {s: (st, d) for st, s, d in doctor.check_sdk()}["package opentelemetry-instrumentation"]
    assert status == "problem" and detail == f"0.50b0, but llm-otel needs >={declared['opentelemetry-instrumentation']}"


def _installed_as(monkeypatch, versions):
    """doctor sees ``versions`` (None: not installed) and the real versions of the rest."""
    from llm_otel.cli import doctor

    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda d: versions[d] if d in versions else real(d))


_LANGCHAIN_IN_USE = {"langchain-core": "0.3.60", "langchain-openai": "0.3.9", "langgraph": "1.0.0"}


def test_doctor_calls_a_library_below_its_declared_floor_not_ok(monkeypatch):
    """langchain-core and openai below what the extras declare: a warning naming the floor."""
    from llm_otel.cli import doctor

    below = {"langchain-core": "0.3.59", "openai": "1.39.0"}
    _installed_as(monkeypatch, {**_LANGCHAIN_IN_USE, **below})
    floors = {name: str(spec) for name, spec in doctor.declared_floors().items()}
    rows = {subject: (status, detail) for status, subject, detail in doctor.check_instrumentation()}
    for dist, version in below.items():
        assert rows[f"library {dist}"] == ("warn", f"{version}, but llm-otel needs {floors[dist]}")
    assert floors["langchain-core"] == ">=0.3.60" and ">=1.40" in floors["openai"]


def test_doctor_applies_an_extras_floor_only_where_that_extra_is_in_use(monkeypatch):
    """[langchain] asks openai >= 1.66.3 (langchain-openai's need); an app without LangChain
    on openai 1.50 meets [openai]'s own floor and gets no warning. With LangChain installed,
    the same openai is below the floor."""
    from llm_otel.cli import doctor

    _installed_as(monkeypatch, {"openai": "1.50.0", "langchain-core": None, "langchain-openai": None,
                                "langgraph": None})
    rows = {subject: (status, detail) for status, subject, detail in doctor.check_instrumentation()}
    assert rows["library openai"][0] == "info" and "1.66.3" not in rows["library openai"][1]

    _installed_as(monkeypatch, {**_LANGCHAIN_IN_USE, "openai": "1.50.0"})
    rows = {subject: (status, detail) for status, subject, detail in doctor.check_instrumentation()}
    assert rows["library openai"][0] == "warn" and ">=1.66.3" in rows["library openai"][1]

# ---- local mode: a local traces exporter sends nothing over OTLP and exits at once -------------

def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("way", sorted(WAYS))
def test_local_mode_without_a_collector_is_quiet_and_quick(way, chat_server, tmp_path):
    """The README's command with no collector listening: the tree, no export errors, no wait
    at exit (metrics and logs exported over OTLP would retry for ~8 s, logging each try)."""
    proc = _run_clean(WAYS[way], tmp_path, app=APP + "import time\nprint('APP DONE', time.time())\n",
                      OPENAI_BASE_URL=chat_server, OTEL_TRACES_EXPORTER="llm_otel_console",
                      OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    exited = time.time()
    assert proc.returncode == 0, proc.stderr
    assert "chat gpt-3.5-turbo" in proc.stdout and proc.stderr == ""
    app_done = float(proc.stdout.split("APP DONE ")[1].split()[0])
    assert exited - app_done < 3.0  # from the app's last line to the process's end


@pytest.mark.parametrize("traces, quieted", [
    ("llm_otel_console", {"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}),
    ("llm_otel_jsonl, console", {"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}),
    ("otlp,llm_otel_console", {}),  # a collector is there: leave metrics and logs to their defaults
    ("console", {}),
    ("", {}),
])
def test_local_mode_defaults(traces, quieted):
    from llm_otel import local_mode

    assert local_mode.defaults({"OTEL_TRACES_EXPORTER": traces}) == quieted
    assert local_mode.defaults({"OTEL_TRACES_EXPORTER": traces, "OTEL_LOGS_EXPORTER": "otlp"}) == {
        k: v for k, v in quieted.items() if k != "OTEL_LOGS_EXPORTER"}
