"""The JSONL trace file: OTLP-JSON lines, round trip, bad lines, rotation, concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExportResult

from exporters.trace_factory import agent_trace, failing_trace
from llm_otel.exporters import JsonlFileExporter, JsonlReader, from_readable, read_spans


def test_round_trip_of_a_recorded_trace(spans, capture_content, tmp_path):
    agent_trace()
    failing_trace()
    finished = spans()
    path = tmp_path / "traces.jsonl"
    exporter = JsonlFileExporter(path)
    assert exporter.export(finished) is SpanExportResult.SUCCESS
    exporter.shutdown()
    read, bad = read_spans(path)
    assert bad == []
    assert read == [from_readable(s) for s in finished]
    assert len(path.read_text().splitlines()) == len(finished) == 6


def test_lines_use_otlp_json_field_names(spans, capture_content, tmp_path):
    failing_trace()
    finished = spans()
    path = tmp_path / "t.jsonl"
    JsonlFileExporter(path).export(finished)
    chat, chain = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(chat) >= {"traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano",
                         "endTimeUnixNano", "attributes", "events", "status", "resource", "scope"}
    assert chat["traceId"] == format(finished[0].context.trace_id, "032x")
    assert chat["parentSpanId"] == chain["spanId"] and chain["parentSpanId"] == ""
    assert chat["kind"] == 3 and chain["kind"] == 1  # OTLP: CLIENT, INTERNAL
    assert chat["status"] == {"code": 2, "message": "RuntimeError: rate limited"}
    attrs = {a["key"]: a["value"] for a in chat["attributes"]}
    assert attrs["gen_ai.request.model"] == {"stringValue": "gpt-4o-mini"}
    assert attrs["gen_ai.input.messages"]["stringValue"].startswith('[{"role": "user"')
    assert chat["events"][0]["name"] == "exception"
    assert int(chat["endTimeUnixNano"]) == finished[0].end_time
    assert chat["scope"]["name"] == "llm_otel"
    resource = {a["key"]: a["value"] for a in chat["resource"]["attributes"]}
    assert resource["service.name"] == {"stringValue": finished[0].resource.attributes["service.name"]}


def test_reader_reports_bad_lines_with_numbers(spans, tmp_path):
    with trace.get_tracer("test").start_as_current_span("ok span"):
        pass
    path = tmp_path / "t.jsonl"
    JsonlFileExporter(path).export(spans())
    good = path.read_bytes()
    path.write_bytes(good + b"\n" + b"not json\n" + b'{"name": "x"}\n' + b"[1, 2]\n"
                     + b'{"traceId": "zz", "spanId": "1", "name": "x"}\n' + good[: len(good) // 2])
    reader = JsonlReader(path)
    read = list(reader)
    assert [s.name for s in read] == ["ok span"]
    assert [(b.line_number, b.reason.split(":")[0]) for b in reader.bad_lines] == [
        (3, "invalid JSON"), (4, "not a span"), (5, "not a span"), (6, "not a span"), (7, "invalid JSON")]
    assert "traceId must be 32 hex digits" in reader.bad_lines[3].reason
    assert "truncated write" in reader.bad_lines[4].reason
    assert str(reader.bad_lines[0]).startswith(f"{path}:3: invalid JSON")


def _write_traces(exporter, count):
    tracer = trace.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span(f"root {i}") as root:
            root.set_attribute("i", i)


def test_rotation_by_size_keeps_n_backups(spans, tmp_path):
    _write_traces(None, 60)
    finished = spans()
    path = tmp_path / "t.jsonl"
    exporter = JsonlFileExporter(path, max_bytes=4000, backups=2)
    for span in finished:  # one export per span, as SimpleSpanProcessor does
        exporter.export([span])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["t.jsonl", "t.jsonl.1", "t.jsonl.2", "t.jsonl.lock"]
    for name in files[:3]:
        assert 0 < (tmp_path / name).stat().st_size <= 4000
    read, bad = read_spans(path, include_backups=True)
    assert bad == []
    names = [s.name for s in read]
    assert names == [f"root {i}" for i in range(60 - len(names), 60)]  # the newest, in order
    assert 10 < len(names) < 60  # older files were dropped beyond 2 backups


def test_environment_configures_the_no_arg_exporter(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_OTEL_JSONL_PATH", str(tmp_path / "sub" / "x.jsonl"))
    monkeypatch.setenv("LLM_OTEL_JSONL_MAX_BYTES", "1000000")
    monkeypatch.setenv("LLM_OTEL_JSONL_BACKUPS", "3")
    exporter = JsonlFileExporter()
    assert (exporter.path, exporter.max_bytes, exporter.backups) == (tmp_path / "sub" / "x.jsonl", 1000000, 3)
    monkeypatch.delenv("LLM_OTEL_JSONL_PATH")
    monkeypatch.setenv("LLM_OTEL_JSONL_MAX_BYTES", "lots")
    exporter = JsonlFileExporter()
    assert (str(exporter.path), exporter.max_bytes) == ("llm-otel-traces.jsonl", 0)


def test_an_unwritable_path_fails_the_export_without_raising(spans, tmp_path):
    _write_traces(None, 1)
    exporter = JsonlFileExporter(tmp_path)  # a directory
    assert exporter.export(spans()) is SpanExportResult.FAILURE


def test_threads_share_one_exporter(spans, tmp_path):
    _write_traces(None, 50)
    finished = spans()
    path = tmp_path / "t.jsonl"
    exporter = JsonlFileExporter(path, max_bytes=20000, backups=100)
    threads = [threading.Thread(target=lambda: [exporter.export([s]) for s in finished]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    read, bad = read_spans(path, include_backups=True)
    assert bad == [] and len(read) == 8 * 50


WRITER = r"""
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from llm_otel.exporters import JsonlFileExporter

path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(JsonlFileExporter(path, max_bytes=30000, backups=1000)))
tracer = provider.get_tracer("writer")
print("ready", flush=True)
sys.stdin.readline()  # start together
for i in range(count):
    with tracer.start_as_current_span(f"w{worker} {i}") as span:
        span.set_attribute("payload", "x" * (i % 97))
provider.shutdown()
"""


def test_processes_append_and_rotate_the_same_file(tmp_path):
    path = tmp_path / "shared.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), "400"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for w in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=60) == 0
    read, bad = read_spans(path, include_backups=True)
    assert bad == []  # no torn or interleaved line
    names = [s.name for s in read]
    assert len(names) == len(set(names)) == 1600  # nothing lost, nothing twice
    backups = list(tmp_path.glob("shared.jsonl.*[0-9]"))
    assert len(backups) >= 5  # it really rotated, under contention
    for w in range(4):  # each writer's own lines stay in order across the files
        mine = [int(n.split()[1]) for n in names if n.startswith(f"w{w} ")]
        assert mine == sorted(mine)
