"""The benchmark harness still runs and measures what it claims (no timings asserted).

Each part runs as a subprocess of this interpreter, as ``run.py`` does, so the harness's
global OTel providers never meet the test suite's. The peers are not installed here (they
live in ``benchmarks/.venv``): a peer contender must say so and not fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
ENV_OFF = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}


def _run(*args: str) -> list:
    proc = subprocess.run([sys.executable, *args], cwd=BENCH, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ENV_OFF})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_llm_otel_and_floor_each_record_one_span_per_call_and_nothing_when_off():
    rows = _run("bench.py", "--contender", "llm-otel", "--with-floor", "--cases", "chat,stream_no_usage,embeddings",
                "--rounds", "2", "--scale", "0.1")
    assert [r["case"] for r in rows] == ["chat", "stream_no_usage", "embeddings"]
    for row in rows:
        assert row["spans_per_call"] == 1.0  # instrumented blocks really were instrumented
        assert row["plain_spans"] == 0  # and plain blocks really were not
        assert row["plain_us"] > 0 and "floor_overhead_us" in row and "ratio_to_floor" in row


def test_a_peer_that_is_not_installed_is_reported_not_fatal():
    # the development environment never has the peers (they change the suite's entry points)
    rows = _run("bench.py", "--contender", "openllmetry", "--cases", "chat", "--rounds", "1", "--scale", "0.1")
    assert rows and "not installed" in rows[0]["error"]


def test_per_chunk_figures_are_produced():
    (row,) = _run("-c", "import chunks; chunks.N = 200; chunks.REPEAT = 2; chunks.main()")
    assert row["kind"] == "chunk"
    assert row["llm_otel_hook_us"] > 0 and row["floor_hook_us"] > 0 and row["sdk_histogram_record_us"] > 0


def test_render_makes_the_tables_and_verdicts(tmp_path):
    rows = [
        {"contender": "floor", "case": "chat", "plain_us": 900.0, "overhead_us": 100.0, "spans_per_call": 1.0},
        {"contender": "llm-otel", "case": "chat", "plain_us": 900.0, "overhead_us": 120.0, "spans_per_call": 1.0,
         "floor_overhead_us": 100.0, "ratio_to_floor": 1.2},
        {"contender": "openai-v2", "case": "chat", "plain_us": 900.0, "overhead_us": 150.0, "spans_per_call": 1.0},
        {"kind": "chunk", "chunks": 10, "floor_hook_us": 0.5, "llm_otel_hook_us": 0.6,
         "llm_otel_hook_no_usage_us": 0.7, "sdk_histogram_record_us": 9.0},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = subprocess.run([sys.executable, "run.py", "--render", str(path)], cwd=BENCH, capture_output=True,
                          text=True, timeout=60, check=True)
    out = proc.stdout
    assert "| chat (non-streaming) | 900 | 100 | 120 | 150 | 1.20x (floor 100 in the same rounds) |" in out
    assert "llm-otel / floor = 1.20x (target <= 1.25x): met" in out
    assert "chat (non-streaming): below every peer: met" in out
    assert "llm-otel's own work in `__next__`: 0.60 us (target < 2 us): met" in out
