"""scripts/demo.sh: its options, and ``--phoenix`` without a terminal keeping Phoenix up
until Ctrl-C (or stopping it at once with ``--no-wait``)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from e2e_support import _free_port, phoenix_executable

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.sh"


def test_demo_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(DEMO)], check=True)


def test_demo_help_and_bad_option():
    help_ = subprocess.run(["bash", str(DEMO), "--help"], capture_output=True, text=True, timeout=10)
    assert help_.returncode == 0 and "--phoenix" in help_.stdout and "--no-wait" in help_.stdout
    bad = subprocess.run(["bash", str(DEMO), "--bogus"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "unknown option" in bad.stderr


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _as_from_a_terminal():
    """Ctrl-C handled as in a terminal. A test run started in the background of a
    non-interactive shell (``.ci/run &``) has SIGINT ignored, and a signal ignored when bash
    starts cannot be trapped: demo.sh's INT trap would silently not be set."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Demo:
    """``scripts/demo.sh`` run with no terminal (stdin from /dev/null), its output read as it comes."""

    def __init__(self, *args, phoenix=None, tmpdir=None):
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "PHOENIX_"))}
        env.update(PHOENIX_PORT=str(self.port), PHOENIX_GRPC_PORT=str(_free_port()),
                   LLM_OTEL_PHOENIX=phoenix or phoenix_executable())
        if tmpdir:
            env["TMPDIR"] = str(tmpdir)
        self.proc = subprocess.Popen(["bash", str(DEMO), "--phoenix", *args], cwd=ROOT, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True, preexec_fn=_as_from_a_terminal)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.output = []
        self.reader = threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout],
                                       daemon=True)
        self.reader.start()

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not printed in {timeout} s:\n{''.join(self.output)}")

    def rest(self):
        """What it printed (for a failure's message)."""
        self.reader.join(timeout=5)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return "".join(self.output)

    @property
    def health(self):
        return f"http://127.0.0.1:{self.port}/healthz"

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def demo():
    runs = []
    yield lambda *args, **kw: runs.append(Demo(*args, **kw)) or runs[-1]
    for run in runs:
        run.stop()


def test_phoenix_demo_without_a_terminal_waits_for_ctrl_c(demo):
    run = demo()
    run.wait_for("Phoenix UI: http://127.0.0.1:", timeout=300)
    run.wait_for("until you press Ctrl-C", timeout=10)
    time.sleep(3)
    assert run.proc.poll() is None and _answers(run.health)  # still up, no terminal needed
    spans = urllib.request.urlopen(f"http://127.0.0.1:{run.port}/v1/projects/llm-otel-demo/spans?limit=5",
                                   timeout=10).read()
    assert b"chat " in spans  # the demo's traces are there to look at
    os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C sends
    assert run.proc.wait(timeout=30) == 130, run.rest()
    assert not _answers(run.health)


def test_phoenix_demo_no_wait_stops_phoenix_at_once(demo):
    run = demo("--no-wait")
    assert run.proc.wait(timeout=300) == 0
    assert not _answers(run.health)


# A stand-in for `phoenix serve` (LLM_OTEL_PHOENIX): answers /healthz, accepts OTLP/HTTP, and on
# Ctrl-C leaves a process behind that still writes files into its working directory for a
# moment, so the clean-up's first rm of that directory fails ("Directory not empty").
LINGERING_PHOENIX = """#!{python}
import os, signal, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
work = os.path.join(os.environ["PHOENIX_WORKING_DIR"], "wal")
os.makedirs(work)
WRITER = '''
import os, sys, time
work, end, i = sys.argv[1], time.time() + 0.5, 0
open(os.path.join(work, "started"), "w").close()
while time.time() < end:
    i += 1
    try:
        open(os.path.join(work, str(i)), "w").close()
    except OSError:
        pass
'''

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args):
        pass

def stop(*_):
    subprocess.Popen([sys.executable, "-c", WRITER, work], start_new_session=True)
    while not os.path.exists(os.path.join(work, "started")):
        time.sleep(0.005)
    os._exit(0)

signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PHOENIX_PORT"])), Handler).serve_forever()
"""


def test_ctrl_c_exits_130_even_when_phoenix_leaves_files_being_written(demo, tmp_path):
    """The clean-up at exit never changes the script's status (under set -e a failed rm of
    Phoenix's working directory used to turn Ctrl-C's 130 into 1)."""
    phoenix = tmp_path / "phoenix"
    phoenix.write_text(LINGERING_PHOENIX.format(python=sys.executable))
    phoenix.chmod(0o755)
    run = demo(phoenix=str(phoenix), tmpdir=tmp_path)
    run.wait_for("until you press Ctrl-C", timeout=300)
    (work,) = tmp_path.glob("llm-otel-demo-phoenix.*")
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.proc.wait(timeout=30) == 130, run.rest()
    assert not _answers(run.health)
    assert not work.exists(), run.rest()  # removed on the second try, once the writer stopped
