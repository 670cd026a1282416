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

import pytest

from support.slow_import import HOLD_UP_IMPORT

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
ENV_OFF = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}


def _run(*args: str, prelude: str = "") -> list:
    argv = [sys.executable, *args]
    if prelude:  # run the script after some set-up code, in the same fresh interpreter
        argv = [sys.executable, "-c", f"{prelude}\nimport runpy, sys\nsys.argv = {list(args)!r}\n"
                f"runpy.run_path({args[0]!r}, run_name='__main__')"]
    proc = subprocess.run(argv, cwd=BENCH, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ENV_OFF})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("price_load_s", [0.0, 3.0], ids=["prices-at-once", "prices-slower-than-the-warm-up"])
def test_llm_otel_and_floor_each_record_one_span_per_call_and_nothing_when_off(price_load_s):
    # a price table that loads slower than the warm-up (a loaded CI machine) leaves the
    # warm-up's spans waiting for it: they must end before the timed blocks, not inside one
    prelude = f"{HOLD_UP_IMPORT}\nhold_up_import('genai_prices.data', {price_load_s})"
    rows = _run("bench.py", "--contender", "llm-otel", "--with-floor", "--cases", "chat,stream_no_usage,embeddings",
                "--rounds", "2", "--scale", "0.1", prelude=prelude)
    assert [r["case"] for r in rows] == ["chat", "stream_no_usage", "embeddings"]
    for row in rows:
        assert row["spans_per_call"] == 1.0  # instrumented blocks really were instrumented
        assert row["plain_spans"] == 0  # and plain blocks really were not
        assert row["plain_us"] > 0 and "floor_overhead_us" in row and "ratio_to_floor" in row


def test_a_peer_that_is_not_installed_is_reported_not_fatal():
    # the development environment never has the peers (they change the suite's entry points)
    for peer in ("openllmetry", "genai-openai"):
        rows = _run("bench.py", "--contender", peer, "--cases", "chat", "--rounds", "1", "--scale", "0.1")
        assert rows and "not installed" in rows[0]["error"]


def test_framework_cases_time_llm_otel_against_noop_handlers_and_bare_spans_in_the_same_rounds():
    rows = _run("bench.py", "--contender", "llm-otel", "--with-floor", "--cases", "langchain_fake,llamaindex_mock",
                "--rounds", "2", "--scale", "0.1")
    spans = {r["case"]: r["spans_per_call"] for r in rows}
    assert spans == {"langchain_fake": 4.0, "llamaindex_mock": 8.0}  # chain, prompt, model, parser; the query tree
    for row in rows:
        assert row["plain_spans"] == 0
        assert "noop_overhead_us" in row and "bare_overhead_us" in row and "floor_overhead_us" not in row


def test_callpath_counts_only_llm_otel_code_and_profile_splits_the_overhead():
    (chat,) = _run("hotpath.py", "callpath", "--cases", "chat")
    assert chat["files"] == len(chat["file_list"]) > 1 and chat["functions"] > 1 and chat["calls"] >= chat["functions"]
    assert all(f.startswith(("src/llm_otel/", "instrumentors/")) for f in chat["file_list"])
    assert "instrumentors/openai/request.py" in chat["file_list"]
    rows = _run("hotpath.py", "profile", "--case", "langchain_fake", "--runs", "5", "--repeats", "1", "--top", "5")
    head, rest = rows[0], rows[1:]
    assert head["kind"] == "profile" and head["spans"] == 4 and head["overhead_us"] != 0
    categories = {r["category"] for r in rest if r["kind"] == "profile_category"}
    assert "llm-otel core/recorder.py" in categories and "OTel SDK: spans, processor" in categories
    functions = [r for r in rest if r["kind"] == "profile_function"]
    assert len(functions) == 5 and all(r["function"].startswith(("src/llm_otel/", "instrumentors/"))
                                       for r in functions)


def test_import_breakdown_names_what_llm_otel_auto_loads():
    rows = _run("startup.py", "breakdown", "--runs", "1")
    names = {r.get("name") for r in rows if r["kind"] == "import_breakdown"}
    assert "(every module imported)" in names and "llm_otel.auto" in names
    assert any(r["kind"] == "import_profile" and "instrumentation.py" in r["function"] for r in rows)


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
        {"contender": "llm-otel", "case": "stream", "plain_us": 4000.0, "overhead_us": 800.0, "spans_per_call": 1.0,
         "floor_overhead_us": 700.0, "ratio_to_floor": 1.15},
        {"contender": "llm-otel", "case": "langchain_fake", "plain_us": 400.0, "overhead_us": 400.0, "q1_us": 380.0,
         "q3_us": 420.0, "spans_per_call": 4.0, "noop_overhead_us": 40.0, "bare_overhead_us": 200.0},
        {"kind": "callpath", "case": "chat", "files": 12, "functions": 50, "calls": 120, "file_list": []},
        {"kind": "callpath", "case": "chat", "files": 10, "functions": 42, "calls": 149, "file_list": [],
         "ref": "c59b44d"},
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
    assert "stream, 40 chunks, include_usage: llm-otel / floor = 1.15x (target <= 1.1x): MISSED" in out
    # framework spans: 400 us / 4 spans; no-op handler 10, bare SDK 50, llm-otel's own (400-40-200)/4 = 40
    assert "| **100** | 10 | 50 | 40 |" in out
    assert "prompt | FakeListChatModel | StrOutputParser: 100 us per span (target <= 90 us): MISSED" in out
    assert "| chat | 12 / 50 / 120 | 10 / 42 / 149 |" in out
