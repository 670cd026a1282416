"""End-to-end helpers: where Phoenix is, reading its REST API, running the examples.

Phoenix (``arize-phoenix``) lives in its own virtualenv, ``.venv-phoenix``, which
``scripts/setup_phoenix.sh`` installs from ``tests/e2e/requirements-phoenix.txt``: its pins must
not fight ours, and it brings OpenInference's OpenAI instrumentor, whose
``opentelemetry_instrumentor`` entry point must never be seen by ``opentelemetry-instrument``
in our environment. ``LLM_OTEL_PHOENIX=/path/to/phoenix`` points at another install.

The server (fixture in conftest.py) runs offline on SQLite in a temporary working
directory, on free local ports, and is stopped at the end of the session whatever happened.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))  # the stand-in server is shipped with the examples

import standin_server  # noqa: E402,F401 - the tests import it from here

PHOENIX_START_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def phoenix_executable() -> str:
    candidates = [os.environ.get("LLM_OTEL_PHOENIX"), str(ROOT / ".venv-phoenix" / "bin" / "phoenix"),
                  shutil.which("phoenix")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("Phoenix is not installed: run scripts/test.sh (it creates .venv-phoenix) "
                       "or set LLM_OTEL_PHOENIX to a `phoenix` executable")


@dataclass
class Phoenix:
    """A running ``phoenix serve``: where to send OTLP and where to read spans back."""

    http_port: int
    grpc_port: int
    log_path: Path
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_http_traces(self) -> str:
        return f"{self.base_url}/v1/traces"

    @property
    def otlp_grpc(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def get(self, path: str, **params: Any) -> Any:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)

    def spans(self, project: str, expect: int, timeout: float = 20.0,
              context: str = "") -> List[Dict[str, Any]]:
        """The project's spans through the REST API, once at least ``expect`` have arrived
        (Phoenix inserts what it receives in batches, a moment later). ``context`` (the
        app's stderr) goes into the failure message."""
        deadline = time.monotonic() + timeout
        found: List[Dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                found = self.get(f"/v1/projects/{urllib.parse.quote(project)}/spans",
                                 limit=1000, sort="start_time", order="asc")["data"]
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # 404: the project does not exist yet
                    raise
            if len(found) >= expect:
                time.sleep(0.5)  # let stragglers land, then read the final set
                return self.get(f"/v1/projects/{urllib.parse.quote(project)}/spans",
                                limit=1000, sort="start_time", order="asc")["data"]
            time.sleep(0.25)
        raise AssertionError(f"Phoenix project {project!r} has {len(found)} spans after {timeout}s, "
                             f"expected {expect}: {[s['name'] for s in found]}\n"
                             f"app stderr (tail):\n{context[-3000:]}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class StandIn:
    base_url: str
    port: int
    journal: list


# The instrumentors each example does not need: loading them would import LangChain or
# LlamaIndex for nothing (seconds per run); OTel's own switch turns them off. The @track
# example loads all of them, as a user's `opentelemetry-instrument` run does by default.
UNUSED_INSTRUMENTORS = {
    "openai_chat.py": "langchain,llama_index",
    "langchain_chain.py": "llama_index",
    "llamaindex_rag.py": "langchain",
}


def run_example(script: str, *, env: Dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``examples/<script>`` under ``opentelemetry-instrument`` from this environment."""
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("OTEL_", "OPENAI_", "LLM_OTEL_")) or k == "LLM_OTEL_RECORDINGS"}
    full_env.update({"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                     "OTEL_BSP_SCHEDULE_DELAY": "200", "PYTHONUNBUFFERED": "1",
                     "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": UNUSED_INSTRUMENTORS.get(script, "")})
    full_env.update(env)
    proc = subprocess.run([str(launcher), sys.executable, str(EXAMPLES / script)], env=full_env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def otlp_env(phoenix: Phoenix, protocol: str, project: str, standin: Optional[StandIn]) -> Dict[str, str]:
    """Environment for an example exporting to Phoenix over ``protocol`` into ``project``."""
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": (phoenix.otlp_http_traces if protocol == "http/protobuf"
                                               else phoenix.otlp_grpc),
        "OTEL_SERVICE_NAME": "llm-otel-e2e",
        # Phoenix files spans under the project named by this resource attribute
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
    }
    if standin is not None:
        env.update({"OPENAI_BASE_URL": standin.base_url, "OPENAI_API_KEY": "standin-no-key"})
    return env
