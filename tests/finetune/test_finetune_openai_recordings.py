"""Recorded OpenAI traffic, replayed through the real SDK and the OpenAI instrumentor,
written to the JSONL trace file and exported for fine-tuning with the real CLI."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_otel.exporters import ConsoleTreeExporter, JsonlFileExporter
from llm_otel.finetune import validate_example
from support.cassettes import Cassette

WEATHER = [{"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]


@pytest.fixture(scope="module", autouse=True)
def openai_instrumented():
    from llm_otel.instrumentors.openai import OpenAIInstrumentor

    inst = OpenAIInstrumentor()
    was = inst.is_instrumented_by_opentelemetry
    inst.instrument()
    yield
    if not was:
        inst.uninstrument()


def _replay(recordings):
    """Three recorded chat calls: parallel tool calls, streamed tool call, and a plain chat."""
    parallel = Cassette(recordings / "openai/test_functions/test_open_ai_function_calls_tools_parallel.yaml")
    q1 = [{"role": "user", "content": "What's the weather like in San Francisco and Boston?"}]
    r1 = parallel.openai_client().chat.completions.create(model="gpt-3.5-turbo", tools=WEATHER, messages=q1)

    streamed = Cassette(recordings / "openai/test_functions/test_open_ai_function_calls_tools_streaming.yaml")
    q2 = [{"role": "user", "content": "What's the weather like in San Francisco?"}]
    for _ in streamed.openai_client().chat.completions.create(model="gpt-3.5-turbo", tools=WEATHER, stream=True,
                                                              messages=q2):
        pass

    plain = Cassette(recordings / "openai/test_chat/test_chat.yaml")
    q3 = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]
    r3 = plain.openai_client().chat.completions.create(model="gpt-3.5-turbo", messages=q3)
    return (q1, r1), q2, (q3, r3)


def test_recorded_calls_become_valid_fine_tuning_lines(recordings, spans, capture_content, tmp_path):
    (q1, r1), q2, (q3, r3) = _replay(recordings)
    finished = spans()
    traces = tmp_path / "traces.jsonl"
    JsonlFileExporter(traces).export(finished)

    tree = io.StringIO()
    ConsoleTreeExporter(out=tree, color=False).export(finished)
    assert tree.getvalue().count("chat gpt-3.5-turbo") == 3
    assert f"tokens in {r1.usage.prompt_tokens} out {r1.usage.completion_tokens}" in tree.getvalue()

    script = shutil.which("llm-otel", path=str(Path(sys.executable).parent))
    out = tmp_path / "ft.jsonl"
    proc = subprocess.run([script, "finetune", str(traces), "-o", str(out)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(examples) == 3 and all(validate_example(e) == [] for e in examples)
    by_question = {e["messages"][0]["content"]: e for e in examples}

    first = by_question[q1[0]["content"]]
    assert first["tools"] == WEATHER
    [assistant] = first["messages"][1:]
    calls = r1.choices[0].message.tool_calls
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in assistant["tool_calls"]] == [(c.id, c.function.name, json.loads(c.function.arguments))
                                                  for c in calls]
    assert len(calls) == 2

    second = by_question[q2[0]["content"]]
    assert second["messages"][-1]["tool_calls"][0]["function"]["name"] == "get_current_weather"

    third = by_question[q3[0]["content"]]
    assert third == {"messages": [*q3, {"role": "assistant", "content": r3.choices[0].message.content}]}
