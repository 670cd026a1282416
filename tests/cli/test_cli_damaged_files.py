"""``llm-otel tree`` / ``finetune`` over damaged trace files: never a traceback, bad lines
reported as ``file:line: what is wrong`` (exit 4), or skipped and counted with
``--ignore-bad-lines``; every good span still read; a failed output leaves nothing behind."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporters.small_disk import mounted_small_disk
from llm_otel.cli import EXIT_BAD_INPUT, EXIT_IO, EXIT_NO_DATA, EXIT_OK, EXIT_USAGE, main

SCRIPT = shutil.which("llm-otel", path=str(Path(sys.executable).parent))
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def small_disk(tmp_path):
    with mounted_small_disk(tmp_path) as disk:
        yield disk


def good_span(n: int, chat: bool = True) -> dict:
    """A chat span whose fine-tuning example answers ``answer n``."""
    attributes = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat" if chat else "task"}},
                  {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}}]
    if chat:
        attributes += [
            {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": f"question {n}"}]}])}},
            {"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": f"answer {n}"}]}])}}]
    return {"traceId": TRACE_ID, "spanId": f"{n + 1:016x}", "parentSpanId": "", "name": f"good-{n}", "kind": 3,
            "startTimeUnixNano": str(1_700_000_000_000_000_000 + n * 1000),
            "endTimeUnixNano": str(1_700_000_000_000_000_000 + n * 1000 + 500),
            "attributes": attributes, "events": [], "status": {"code": 0}, "resource": {"attributes": []},
            "scope": {"name": "test"}}


def line(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _main(*args):
    out, err = io.StringIO(), io.StringIO()
    return main(list(args), out=out, err=err), out.getvalue(), err.getvalue()


# ---- damaged lines, as hypothesis makes them --------------------------------------------------

HUGE_NUMBERS = st.sampled_from([2 ** 64, -2 ** 63 - 1, 10 ** 30, 1e308, float("inf"), float("-inf"), float("nan")])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), HUGE_NUMBERS, st.floats(), st.text(max_size=12),
                    st.sampled_from(["", "\ud800", "{", "null", "ü" * 5000]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=3), max_leaves=8)
FIELDS = ["traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano", "attributes",
          "events", "status", "resource", "scope", "parentIsRemote"]


@st.composite
def damaged_line(draw, n: int) -> bytes:
    """One line that is not (quite) a good span; ids of its own, so it hides no good span."""
    span = good_span(1000 + n)
    kind = draw(st.sampled_from(["cut", "bytes", "field", "attribute", "content", "deep", "not a span", "glued"]))
    if kind == "cut":  # a write cut short
        raw = line(span)
        return raw[: draw(st.integers(1, len(raw) - 2))] + b"\n"
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=60)).replace(b"\n", b" ") + b"\n"
    if kind == "field":  # a field of the wrong type, or a huge number
        span[draw(st.sampled_from(FIELDS))] = draw(JSON)
    elif kind == "attribute":
        value_type = draw(st.sampled_from(["stringValue", "intValue", "doubleValue", "boolValue", "arrayValue",
                                           "kvlistValue", "bytesValue", "other"]))
        span["attributes"].append({"key": draw(st.sampled_from(["gen_ai.usage.output_tokens", "llm_otel.cost.usd",
                                                                "llm_otel.tags", "x"])),
                                   "value": {value_type: draw(JSON)}})
    elif kind == "content":  # a chat span whose recorded messages are anything
        key = draw(st.sampled_from([2, 3]))
        span["attributes"][key]["value"] = {"stringValue": json.dumps(draw(JSON))}
    elif kind == "deep":
        depth = draw(st.sampled_from([50, 5000, 100_000]))
        return b"[" * depth + b"]" * depth + b"\n"
    elif kind == "not a span":
        return line(draw(JSON))
    else:  # a partial line with a good line glued on: the good one must still be read
        raw = line(span)
        return raw[: len(raw) // 2] + line(good_span(2000 + n))
    return json.dumps(span, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n"


@st.composite
def damaged_file(draw):
    goods = list(range(draw(st.integers(0, 3))))
    lines = [(True, line(good_span(n))) for n in goods]
    lines += [(False, draw(damaged_line(n))) for n in range(draw(st.integers(1, 4)))]
    order = draw(st.permutations(range(len(lines))))
    return goods, [lines[i] for i in order]


FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@FUZZ
@given(damaged_file())
def test_fuzzed_damage_never_makes_a_traceback(tmp_path, case):
    goods, lines = case
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(raw for _, raw in lines))
    out_file = tmp_path / "ft.jsonl"

    for command in (["tree", str(path)], ["finetune", str(path), "-o", str(out_file)]):
        code, _, err = _main(*command)
        assert "Traceback" not in err and code in (EXIT_OK, EXIT_BAD_INPUT, EXIT_NO_DATA), err
        reported = re.findall(rf"^llm-otel: {re.escape(str(path))}:(\d+): \S", err, flags=re.M)
        if code == EXIT_BAD_INPUT:
            assert reported and "bad line(s) of" in err
        else:  # every damaged line happened to be a readable span
            assert reported == []

        code, out, err = _main(*command, "--ignore-bad-lines")
        assert "Traceback" not in err and code in (EXIT_OK, EXIT_BAD_INPUT, EXIT_NO_DATA), err
        if goods:
            assert code == EXIT_OK, err
            if command[0] == "tree":
                assert all(f"good-{n} " in out for n in goods)
            else:
                answers = [json.loads(x)["messages"][-1]["content"] for x in out_file.read_text().splitlines()]
                assert {f"answer {n}" for n in goods} <= set(answers)
        if reported:
            assert f"skipped {len(reported)} bad line(s)" in err or "not one span" in err
    assert not list(tmp_path.glob(".*.tmp"))


# ---- one damaged file per kind, through the real command ---------------------------------------


def _run(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env={**env, "NO_COLOR": "1"}, timeout=60)


CASES = {
    "truncated": line(good_span(9))[:100] + b"\n",
    "not utf-8": b"\xff\xfe" + line(good_span(9))[2:],
    "wrong types": line({**good_span(9), "events": 5, "attributes": [{"key": "a", "value": {"arrayValue": [1]}}]}),
    "huge numbers": line(good_span(9)).replace(b'"startTimeUnixNano":"', b'"startTimeUnixNano":1e999,"x":"'),
    "not a span": b'{"resourceSpans": []}\n',
    "nested garbage": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "huge integer": b'{"a": ' + b"9" * 5000 + b"}\n",
    "deep content": line({**good_span(9), "attributes": good_span(9)["attributes"][:2] + [
        {"key": "gen_ai.input.messages", "value": {"stringValue": "[" * 100_000 + "]" * 100_000}},
        {"key": "gen_ai.output.messages", "value": {"stringValue": "[]"}}]}),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_kind_of_damage_through_the_command(tmp_path, kind):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(good_span(1)) + CASES[kind] + line(good_span(2)))
    out = tmp_path / "ft.jsonl"
    for command in (["tree", str(path)], ["finetune", str(path), "-o", str(out)]):
        strict = _run(*command)
        lenient = _run(*command, "--ignore-bad-lines")
        assert "Traceback" not in strict.stderr + lenient.stderr
        if kind == "deep content":  # a readable span: only its example is left out
            assert strict.returncode == lenient.returncode == EXIT_OK, strict.stderr
            continue
        assert strict.returncode == EXIT_BAD_INPUT, strict.stderr
        assert re.search(rf"^llm-otel: {re.escape(str(path))}:2: \w", strict.stderr, flags=re.M), strict.stderr
        assert strict.stderr.rstrip().endswith("1 bad line(s) of 3 (use --ignore-bad-lines to read the rest)")
        assert lenient.returncode == EXIT_OK, lenient.stderr
        assert f"{path}: skipped 1 bad line(s) of 3" in lenient.stderr
        if command[0] == "tree":
            assert "good-1 " in lenient.stdout and "good-2 " in lenient.stdout
    finetune = _run("finetune", str(path), "-o", str(out), "--ignore-bad-lines")
    answers = [json.loads(x)["messages"][-1]["content"] for x in out.read_text().splitlines()]
    assert answers == ["answer 1", "answer 2"], finetune.stderr


def test_a_file_of_nothing_but_bad_lines_is_bad_input_even_when_ignored(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(CASES["truncated"] + CASES["not a span"])
    code, _, err = _main("tree", str(path), "--ignore-bad-lines")
    assert code == EXIT_BAD_INPUT and "2 bad line(s) of 2, and not one span" in err


@pytest.mark.parametrize("last", ["0", "-1", "1.5"])
def test_tree_last_must_be_a_positive_number(tmp_path, last):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(good_span(1)))
    proc = _run("tree", str(path), "--last", last)
    assert proc.returncode == EXIT_USAGE and "usage:" in proc.stderr and "--last" in proc.stderr
    assert proc.stdout == ""


# ---- a failed output -------------------------------------------------------------------------


def test_finetune_onto_a_full_disk_leaves_nothing_and_claims_nothing(tmp_path, small_disk):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(good_span(n)) for n in range(5)))
    out = small_disk.root / "ft.jsonl"
    out.write_text("the previous export\n")
    small_disk.fill()
    proc = _run("finetune", str(path), "-o", str(out), "--report-json", str(tmp_path / "report.json"))
    assert proc.returncode == EXIT_IO
    assert f"{out}: cannot write: No space left on device" in proc.stderr
    assert "5 examples, 0 written" in proc.stderr and "examples written" not in proc.stderr
    assert "wrote" not in proc.stderr
    assert sorted(p.name for p in small_disk.root.iterdir()) == [".filler", "ft.jsonl"]  # no temporary file
    assert out.read_text() == "the previous export\n"  # the old file untouched, not half replaced
    assert json.loads((tmp_path / "report.json").read_text())["written"] == 0

    small_disk.free()
    proc = _run("finetune", str(path), "-o", str(out))
    assert proc.returncode == EXIT_OK and "5 spans read, 5 chat calls, 5 examples written" in proc.stderr
    assert len(out.read_text().splitlines()) == 5


def test_finetune_report_json_on_a_full_disk_is_an_io_error(tmp_path, small_disk):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(good_span(1)))
    small_disk.fill()
    code, _, err = _main("finetune", str(path), "-o", str(tmp_path / "ft.jsonl"),
                         "--report-json", str(small_disk.root / "report.json"))
    assert code == EXIT_IO and "report.json: cannot write: No space left on device" in err
    assert sorted(p.name for p in small_disk.root.iterdir()) == [".filler"]
    assert (tmp_path / "ft.jsonl").exists()  # the examples themselves were written


def test_finetune_onto_a_directory_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(line(good_span(1)))
    (tmp_path / "out").mkdir()
    code, _, err = _main("finetune", str(path), "-o", str(tmp_path / "out"))
    assert code == EXIT_IO and "cannot write: Is a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t.jsonl"]
