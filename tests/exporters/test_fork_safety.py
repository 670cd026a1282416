"""Real os.fork() with our exporters' locks held by another thread: the child must not hang
(at the latest it would, in TracerProvider.shutdown() at exit) and must still write its spans.

Each scenario runs in a fresh interpreter (the script below) so that pytest's own threads
and the shared in-memory pipeline of conftest.py play no part; the script waits for every
child with a timeout and kills one that hangs, so a hang fails the test instead of blocking it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from llm_otel.exporters import read_spans

COMMON = r'''
import json, os, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from llm_otel.exporters import ConsoleTreeExporter, JsonlFileExporter
from llm_otel.finetune import FineTuningExporter


class FdStream:
    """A text stream writing each tree with one os.write: no Python buffer that a fork
    could copy half-written, so the output shows exactly what each process printed."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, text):
        os.write(self.fd, text.encode())

    def flush(self):
        pass


def chat_span(tracer, text):
    """A chat span with captured content: one fine-tuning example whose answer is ``text``."""
    with tracer.start_as_current_span("chat m") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.input.messages", json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "q " + text}]}]))
        span.set_attribute("gen_ai.output.messages", json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}]))


def wait_child(pid, timeout):
    """The child's exit code, or "hung" (and the child killed) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"
'''

HELD_LOCK = COMMON + r'''
kind, lock_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
exporter = {"jsonl": lambda: JsonlFileExporter(out),
            "console": lambda: ConsoleTreeExporter(out=FdStream(out), color=False),
            "finetune": lambda: FineTuningExporter(out)}[kind]()
lock = exporter
for name in lock_path.split("."):
    lock = getattr(lock, name)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("fork-test")

held, release = threading.Event(), threading.Event()

def hold():
    with lock:
        held.set()
        release.wait()

threading.Thread(target=hold, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    with tracer.start_as_current_span("child root"):
        chat_span(tracer, "from the child")
    sys.exit(0)  # the SDK's atexit hook shuts the provider (and our exporter) down
release.set()
code = wait_child(pid, 10)
with tracer.start_as_current_span("parent root"):
    chat_span(tracer, "from the parent")
provider.shutdown()
print(json.dumps({"child": code}))
'''


@pytest.mark.parametrize("kind,lock_path", [("jsonl", "_lock"), ("console", "_buffer._lock"),
                                            ("finetune", "_lock"), ("finetune", "_buffer._lock")])
def test_fork_while_another_thread_holds_the_lock(tmp_path, kind, lock_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", HELD_LOCK, kind, lock_path, str(out)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"child": 0}, proc.stderr  # not "hung"
    if kind == "jsonl":
        spans, bad = read_spans(out)
        assert bad == [] and sorted(s.name for s in spans) == ["chat m", "chat m", "child root", "parent root"]
    elif kind == "console":
        text = out.read_text()
        assert text.count("trace ") == 2 and "child root" in text and "parent root" in text
    else:
        answers = [json.loads(line)["messages"][-1]["content"] for line in out.read_text().splitlines()]
        assert sorted(answers) == ["from the child", "from the parent"]


REALISTIC = COMMON + r'''
import random
forks, threads_count, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(JsonlFileExporter(os.path.join(out_dir, "traces.jsonl"))))
provider.add_span_processor(BatchSpanProcessor(ConsoleTreeExporter(out=FdStream(os.path.join(out_dir, "tree.txt")),
                                                                   color=False), schedule_delay_millis=5))
provider.add_span_processor(SimpleSpanProcessor(FineTuningExporter(os.path.join(out_dir, "ft.jsonl"))))
tracer = provider.get_tracer("fork-test")
stop = threading.Event()

def traffic(worker):
    i = 0
    while not stop.is_set():
        with tracer.start_as_current_span(f"work {worker}.{i}"):
            chat_span(tracer, f"parent {worker}.{i}")
            chat_span(tracer, f"parent {worker}.{i} again")
        i += 1
        time.sleep(0.005)  # an app that does something else between requests

threads = [threading.Thread(target=traffic, args=(w,)) for w in range(threads_count)]
for t in threads:
    t.start()
codes = []
for n in range(forks):
    time.sleep(random.uniform(0, 0.01))
    pid = os.fork()
    if pid == 0:
        with tracer.start_as_current_span(f"child {n}"):
            chat_span(tracer, f"child {n}")
        sys.exit(0)
    codes.append(wait_child(pid, 5))
stop.set()
for t in threads:
    t.join()
provider.shutdown()
print(json.dumps(codes))
'''


def test_forks_under_load_from_tracing_threads(tmp_path):
    """3 threads trace without pause into the JSONL, console and fine-tuning exporters while
    the main thread forks 40 times: every child exits in time and its trace is in every output,
    nothing is torn, and no child prints a trace the parent had buffered."""
    forks = 40
    proc = subprocess.run([sys.executable, "-c", REALISTIC, str(forks), "3", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [0] * forks, proc.stderr

    spans, bad = read_spans(tmp_path / "traces.jsonl")
    assert bad == []
    names = [s.name for s in spans]
    assert sorted(n for n in names if n.startswith("child ")) == sorted(f"child {n}" for n in range(forks))
    assert len(names) == len({(s.trace_id, s.span_id) for s in spans})  # nothing written twice

    tree = (tmp_path / "tree.txt").read_text()
    headers = re.findall(r"^trace ([0-9a-f]{32}) ", tree, flags=re.M)
    assert len(headers) == len(set(headers)) == len({s.trace_id for s in spans})  # each trace printed once
    assert all(f"\nchild {n} " in tree for n in range(forks))
    assert "incomplete" not in tree  # no child printed what the parent had buffered

    answers = [json.loads(line)["messages"][-1]["content"] for line in (tmp_path / "ft.jsonl").read_text().splitlines()]
    assert sorted(a for a in answers if a.startswith("child ")) == sorted(f"child {n}" for n in range(forks))
    assert len(answers) == len(set(answers)) == 2 * (len(names) - forks * 2) // 3 + forks


CONCURRENT_APPENDS = '''
import os, sys
from llm_otel.exporters import JsonlFileExporter
from llm_otel.exporters.model import SpanRecord
path, writers, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pids = []
for w in range(writers):
    pid = os.fork()
    if pid == 0:
        exporter = JsonlFileExporter(path)
        for n in range(lines):
            exporter.write_records([SpanRecord(trace_id="0af7651916cd43dd8448eb211c80319c", span_id=f"{w:08x}{n:08x}",
                                               parent_span_id=None, name=f"w{w} {n}", start_time_unix_nano=1,
                                               end_time_unix_nano=2)])
        os._exit(0)
    pids.append(pid)
print(sum(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) != 0 for p in pids))
'''


def test_processes_appending_together_leave_no_blank_or_torn_line(tmp_path):
    """Forked workers write one trace file: each checks for a cut line before it writes, and
    must not take another's write in progress for one (a blank line for line-per-record readers)."""
    path = tmp_path / "traces.jsonl"
    proc = subprocess.run([sys.executable, "-c", CONCURRENT_APPENDS, str(path), "4", "1500"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stderr
    raw = path.read_bytes().split(b"\n")
    assert raw[-1] == b"" and all(raw[:-1]), "a blank line"
    spans, bad = read_spans(path)
    assert bad == [] and len(spans) == 4 * 1500
