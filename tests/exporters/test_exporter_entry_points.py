"""OTEL_TRACES_EXPORTER=llm_otel_console / llm_otel_jsonl, found through the entry points."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# what opentelemetry-instrument reads entry points with (group= on Python 3.9 too)
from opentelemetry.util._importlib_metadata import entry_points

from llm_otel.exporters import ConsoleTreeExporter, JsonlFileExporter, read_spans

TESTS = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

APP = """
from exporters.trace_factory import agent_trace, failing_trace
agent_trace()
failing_trace()
print("app done", flush=True)
"""


def _configurator_dist(root: Path) -> Path:
    """What opentelemetry-distro contributes to opentelemetry-instrument: a configurator entry
    point for the SDK's own configurator (the distro's class adds nothing to it). Put on
    PYTHONPATH for the subprocess only, so the shared environment stays as it is."""
    info = root / "sdk_configurator-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sdk-configurator\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[opentelemetry_configurator]\nsdk = opentelemetry.sdk._configuration:_OTelSDKConfigurator\n")
    return root


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env.update({"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "NO_COLOR": "1",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true", "OTEL_SERVICE_NAME": "tree-test"})
    env.update(extra)
    return env


def test_entry_points_resolve_to_no_arg_span_exporters():
    eps = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
    assert eps["llm_otel_console"].load() is ConsoleTreeExporter
    assert eps["llm_otel_jsonl"].load() is JsonlFileExporter
    ConsoleTreeExporter().shutdown()


def test_opentelemetry_instrument_prints_the_tree(tmp_path):
    instrument = shutil.which("opentelemetry-instrument", path=str(BIN))
    assert instrument, "opentelemetry-instrument not installed next to the test interpreter"
    (tmp_path / "app.py").write_text(APP)
    path = [str(TESTS)]
    if not list(entry_points(group="opentelemetry_configurator")):  # opentelemetry-distro not installed
        path.insert(0, str(_configurator_dist(tmp_path / "shim")))
    env = _env(OTEL_TRACES_EXPORTER="llm_otel_console", PYTHONPATH=os.pathsep.join(path),
               # the app uses neither framework: spare the subprocess their imports (seconds)
               OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="langchain,llama_index")
    proc = subprocess.run([instrument, sys.executable, str(tmp_path / "app.py")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index("app done") < out.index("trace ")  # printed by the batch processor at exit
    assert out.count("· 4 spans ·") == 1 and out.count("· 2 spans ·") == 1
    assert "├─ chat gpt-4o-mini" in out and "└─ chat gpt-4o-mini" in out
    assert re.search(r"tokens in 52 out 14  \$0\.0000\d\d", out)
    assert "ERROR RuntimeError: rate limited" in out


def test_sdk_configurator_writes_the_jsonl_file(tmp_path):
    """The configurator ``import llm_otel.auto`` and opentelemetry-instrument run, in a plain process."""
    path = tmp_path / "traces.jsonl"
    (tmp_path / "app.py").write_text("from opentelemetry.sdk._configuration import _OTelSDKConfigurator\n"
                                     "_OTelSDKConfigurator().configure()\n" + APP)
    env = _env(OTEL_TRACES_EXPORTER="llm_otel_jsonl", LLM_OTEL_JSONL_PATH=str(path),
               PYTHONPATH=str(TESTS))
    proc = subprocess.run([sys.executable, str(tmp_path / "app.py")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    spans, bad = read_spans(path)
    assert bad == []
    assert sorted(s.name for s in spans) == sorted(["invoke_agent weather", "chat gpt-4o-mini", "execute_tool get_weather",
                                                    "chat gpt-4o-mini", "chain summarize", "chat gpt-4o-mini"])
    assert {s.resource["service.name"] for s in spans} == {"tree-test"}
