"""Locally counted tokens (a stream that carries no usage) under LLM_OTEL_ESTIMATED_USAGE, in
both profiles: never usage unless the user opted in (``report``), and then marked on the span
(digest §3: offline counting only when the user enables it)."""

from __future__ import annotations

import pytest

from conv_support import V010, V141, paced_server, span_named
from llm_otel import config

HELLO = [{"role": "user", "content": "Say hello to the OpenTelemetry community"}]
USAGE_NAMES = {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}
ESTIMATE_NAMES = {"llm_otel.usage.estimated_input_tokens", "llm_otel.usage.estimated_output_tokens"}


def _stream_without_usage(model: str) -> None:
    with paced_server() as served:
        for _ in served.client().chat.completions.create(model=model, messages=HELLO, stream=True):
            pass


def _token_points(recorded, profile):
    """input/output -> the token values the profile's per-call metrics recorded."""
    if profile == V141:
        usage = recorded.get("gen_ai.client.token.usage")
        return {p.attributes["gen_ai.token.type"]: p.sum for p in usage.points} if usage else {}
    return {kind: recorded[f"gen_ai.client.inference.operation.{kind}_tokens"].points[0].sum
            for kind in ("input", "output")}


def _token_metric_points(recorded, profile):
    """Every point of the profile's token metrics (histograms and v0.1.0's usage counters)."""
    names = ["gen_ai.client.token.usage"] if profile == V141 else [
        "gen_ai.client.inference.operation.input_tokens", "gen_ai.client.inference.operation.output_tokens",
        "gen_ai.client.inference.usage.input_tokens", "gen_ai.client.inference.usage.output_tokens"]
    return [p for name in names if name in recorded for p in recorded[name].points]


@pytest.mark.parametrize("profile", [V141, V010], indirect=True)
def test_estimates(profile, estimate_mode, spans, metrics):
    model = f"conv-estimate-{profile}-{estimate_mode}"
    _stream_without_usage(model)
    a = span_named(spans, "chat " + model).attributes
    recorded = metrics.read(model)
    if estimate_mode == "separate":  # the default: own names, never usage
        assert not USAGE_NAMES & set(a) and "llm_otel.usage.estimated" not in a
        assert a["llm_otel.usage.estimated_input_tokens"] > 0 and a["llm_otel.usage.estimated_output_tokens"] > 0
        # v1.41: no usage metric; v0.1.0: 0, the conventions' value for a call without usage
        assert _token_points(recorded, profile) == ({} if profile == V141 else {"input": 0, "output": 0})
    else:  # opted in: the estimate as usage, the span marked
        assert not ESTIMATE_NAMES & set(a)
        assert a["llm_otel.usage.estimated"] is True
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert _token_points(recorded, profile) == {"input": a["gen_ai.usage.input_tokens"],
                                                    "output": a["gen_ai.usage.output_tokens"]}
        points = _token_metric_points(recorded, profile)  # the metrics say so too (design promise 11)
        assert points and all(p.attributes.get("llm_otel.usage.estimated") is True for p in points)


def test_no_estimates_when_off(spans, metrics, monkeypatch):
    monkeypatch.setenv(config.ESTIMATED_USAGE_ENV, "off")
    config.reload()
    try:
        _stream_without_usage("conv-estimate-off")
    finally:
        monkeypatch.delenv(config.ESTIMATED_USAGE_ENV)
        config.reload()
    a = span_named(spans, "chat conv-estimate-off").attributes
    assert not (USAGE_NAMES | ESTIMATE_NAMES | {"llm_otel.usage.estimated"}) & set(a)
    assert "gen_ai.client.token.usage" not in metrics.read("conv-estimate-off")
