"""Streams: one time-to-first-chunk point and N-1 time-per-output-chunk points per stream of
N chunks, their values bounded by how the server paced the chunks, the span's
gen_ai.response.time_to_first_chunk equal to the histogram's value (digest §8.1, §8.2)."""

from __future__ import annotations

import openai
import pytest

from conv_support import DURATION_BUCKETS, V010, V141, paced_server, span_named
from support.standin import standin_server

HELLO = [{"role": "user", "content": "Say hello to the OpenTelemetry community"}]
FIRST_DELAY, GAP = 0.15, 0.03
CHUNK_METRICS = {V141: ("gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.operation.time_per_output_chunk"),
                 V010: ("gen_ai.client.inference.time_to_first_chunk", "gen_ai.client.inference.time_per_output_chunk")}


def test_chunk_timings(profile, spans, metrics):
    model = f"conv-stream-{profile}"
    with paced_server(first_delay=FIRST_DELAY, gap=GAP) as served:
        stream = served.client().chat.completions.create(model=model, messages=HELLO, stream=True,
                                                         stream_options={"include_usage": True})
        received = sum(1 for _ in stream)
    chunks = len(list(standin_server.chat_chunks(served.bodies[0])))
    assert received == chunks > 3  # the final usage chunk included
    span = span_named(spans, "chat " + model)
    seconds = (span.end_time - span.start_time) / 1e9
    recorded = metrics.read(model)
    first_name, per_name = CHUNK_METRICS[profile]
    first, per = recorded[first_name], recorded[per_name]
    for metric in (first, per):
        assert (metric.kind, metric.unit) == ("Histogram", "s")
        for point in metric.points:
            assert tuple(point.explicit_bounds) == DURATION_BUCKETS
            assert sum(point.bucket_counts) == point.count
    [first_point] = first.points
    [per_point] = per.points
    assert first_point.count == 1
    assert per_point.count == chunks - 1
    ttfc = span.attributes["gen_ai.response.time_to_first_chunk"]
    assert first_point.sum == ttfc
    assert FIRST_DELAY <= ttfc < seconds  # the server held the first chunk back that long
    # chunk k left the server GAP after chunk k-1: the gaps add up to at least (N-1)·GAP, less
    # the first chunk's own network latency
    assert per_point.sum >= (chunks - 1) * GAP * 0.9
    assert 0 <= per_point.min and per_point.max < 1
    assert ttfc + per_point.sum <= seconds
    assert span.attributes["gen_ai.request.stream"] is True
    other = CHUNK_METRICS[V010 if profile == V141 else V141]
    assert not set(other) & set(recorded)


@pytest.mark.parametrize("profile", [V141, V010], indirect=True)
def test_no_chunk_metrics_without_a_stream(profile, spans, metrics):
    with paced_server() as served:
        served.client().chat.completions.create(model=f"conv-nostream-{profile}", messages=HELLO)
    recorded = metrics.read(f"conv-nostream-{profile}")
    assert not set(CHUNK_METRICS[profile]) & set(recorded)
    assert "gen_ai.response.time_to_first_chunk" not in span_named(spans, "chat conv-nostream").attributes
    assert "gen_ai.request.stream" not in span_named(spans, "chat conv-nostream").attributes


@pytest.mark.parametrize("profile", [V141, V010], indirect=True)
def test_stream_usage_chunk_is_the_usage(profile, spans, metrics):
    """``stream_options.include_usage``: the last chunk's usage is the call's usage, on the span
    and the token metrics of the profile."""
    model = f"conv-stream-usage-{profile}"
    with paced_server() as served:
        for _ in served.client().chat.completions.create(model=model, messages=HELLO, stream=True,
                                                         stream_options={"include_usage": True}):
            pass
    usage = list(standin_server.chat_chunks(served.bodies[0]))[-1]["usage"]
    a = span_named(spans, "chat " + model).attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == \
        (usage["prompt_tokens"], usage["completion_tokens"])
    assert "llm_otel.usage.estimated_input_tokens" not in a
    recorded = metrics.read(model)
    if profile == V141:
        sums = {p.attributes["gen_ai.token.type"]: p.sum for p in recorded["gen_ai.client.token.usage"].points}
    else:
        sums = {kind: recorded[f"gen_ai.client.inference.operation.{kind}_tokens"].points[0].sum
                for kind in ("input", "output")}
    assert sums == {"input": usage["prompt_tokens"], "output": usage["completion_tokens"]}


def _broken_chunks(body):
    """Two chunks, then the API's error event (the SDK raises APIError while iterating)."""
    head = list(standin_server.chat_chunks(body))[:2]
    return head + [{"error": {"message": "The server is overloaded", "type": "server_error"}}]


@pytest.mark.parametrize("profile", [V141, V010], indirect=True)
def test_chunk_metrics_of_a_failed_stream_carry_no_error_type(profile, spans, metrics):
    """error.type is an attribute of the duration only: the chunk timings have the common GenAI
    metric attributes and no error.type in v1.41 (digest §8.1: "Extra attributes: none") as in
    v0.1.0 (§8.2: "same minus error.type"). The v0.1.0 path strips it; the v1.41 one does not."""
    model = f"conv-broken-stream-{profile}"
    with paced_server(chunks=_broken_chunks) as served:
        with pytest.raises(openai.APIError):
            for _ in served.client().chat.completions.create(model=model, messages=HELLO, stream=True):
                pass
    assert span_named(spans, "chat " + model).attributes["error.type"] == "APIError"
    recorded = metrics.read(model)
    first_name, per_name = CHUNK_METRICS[profile]
    duration = {V141: "gen_ai.client.operation.duration", V010: "gen_ai.client.inference.duration"}[profile]
    assert recorded[duration].points[0].attributes["error.type"] == "APIError"
    for name in (first_name, per_name):
        [point] = recorded[name].points
        assert "error.type" not in point.attributes, name
