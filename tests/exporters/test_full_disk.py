"""A disk that fills up mid-line and is freed again: the JSONL trace file and the live
fine-tuning file lose only the lines the full disk cut, never a good line after them."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExportResult

from exporters.small_disk import mounted_small_disk
from llm_otel.exporters import JsonlFileExporter, JsonlReader
from llm_otel.finetune import FineTuningExporter


@pytest.fixture
def small_disk(tmp_path):
    with mounted_small_disk(tmp_path) as disk:
        yield disk


def _spans(spans, count, chat=False):
    tracer = trace.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span(f"span {i:02d}") as span:
            span.set_attribute("payload", "x" * 600)
            if chat:
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("gen_ai.input.messages", json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": f"question {i:02d} " + "q" * 400}]}]))
                span.set_attribute("gen_ai.output.messages", json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": f"answer {i:02d}"}]}]))
    return spans()


def _export_across_a_full_disk(exporter, finished, disk, path):
    """Export 10 spans, fill the disk, export 10, free it, export 10; the export results."""
    results = [exporter.export([s]) for s in finished[:10]]
    assert path.stat().st_size % 4096, "the file must end inside a block, for the disk to cut a line"
    disk.fill()
    results += [exporter.export([s]) for s in finished[10:20]]
    assert not path.read_bytes().endswith(b"\n")  # a line was cut: the disk filled up inside it
    disk.free()
    results += [exporter.export([s]) for s in finished[20:]]
    return results


def test_jsonl_file_keeps_every_line_written_before_and_after_a_full_disk(spans, small_disk, caplog):
    finished = _spans(spans, 30)
    path = small_disk.root / "traces.jsonl"
    exporter = JsonlFileExporter(path)
    with caplog.at_level(logging.DEBUG, logger="llm_otel"):
        results = _export_across_a_full_disk(exporter, finished, small_disk, path)
    exporter.shutdown()
    # said once, in one line (no traceback: a full disk is not a bug), and said when it is over
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"llm_otel: {path} not written (No space left on device): 1 span(s) lost; "
                        "lines already written are kept", f"llm_otel: writing {path} again"]
    assert not any(r.exc_info for r in caplog.records)

    succeeded = [s.name for s, r in zip(finished, results) if r is SpanExportResult.SUCCESS]
    assert results[:10] == [SpanExportResult.SUCCESS] * 10 and results[20:] == [SpanExportResult.SUCCESS] * 10
    assert SpanExportResult.FAILURE in results[10:20]
    reader = JsonlReader(path)
    assert [s.name for s in reader] == succeeded  # every span reported written is there, in order
    assert len(reader.bad_lines) == 1 and reader.bad_lines[0].reason.startswith("invalid JSON")  # the cut line


def test_live_fine_tuning_file_keeps_every_example_after_a_full_disk(spans, capture_content, small_disk):
    finished = _spans(spans, 30, chat=True)
    path = small_disk.root / "ft.jsonl"
    exporter = FineTuningExporter(path)
    results = _export_across_a_full_disk(exporter, finished, small_disk, path)

    good, bad = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            good.append(json.loads(line)["messages"][-1]["content"])
        except ValueError:
            bad += 1
    written = [f"answer {i:02d}" for i, r in enumerate(results) if r is SpanExportResult.SUCCESS]
    assert good == written and bad == 1
    assert results[20:] == [SpanExportResult.SUCCESS] * 10
    assert exporter.report.written == len(written) < exporter.report.examples == 30  # what is in the file
