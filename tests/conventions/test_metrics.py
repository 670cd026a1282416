"""The metric sets of each profile: names, instruments, units, attributes, the explicit
bucket boundaries the conventions advise, and values that match the spans.

v1.41 (digest §8.1): gen_ai.client.operation.duration, gen_ai.client.token.usage by
gen_ai.token.type, and for streams gen_ai.client.operation.time_to_first_chunk /
time_per_output_chunk. v0.1.0 (§8.2): gen_ai.client.inference.* (duration, chunk timings,
per-operation token histograms, usage counters by gen_ai.token.modality) and
gen_ai.client.embeddings.*. Both: gen_ai.invoke_agent.duration and gen_ai.execute_tool.duration (§5.6).
"""

from __future__ import annotations

import openai
import pytest

from conv_support import (AGENT_BUCKETS, DURATION_BUCKETS, TOKEN_BUCKETS, V010, V141, last, paced_server,
                          span_named, with_usage)
from llm_otel.core import StepInvocation, ToolInvocation, get_recorder

HELLO = [{"role": "user", "content": "Say hello"}]
USAGE = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
         "prompt_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 40},
         "completion_tokens_details": {"reasoning_tokens": 12}}
RATE_LIMITED = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}


def _histogram(metric, unit, buckets):
    assert (metric.kind, metric.unit) == ("Histogram", unit), metric.name
    for point in metric.points:
        assert tuple(point.explicit_bounds) == buckets, metric.name


def _counter(metric):
    assert (metric.kind, metric.unit, metric.monotonic) == ("Sum", "{token}", True), metric.name


def _base(span):
    """The attributes every GenAI client metric point carries, read from the span."""
    a = span.attributes
    return {k: a[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                              "gen_ai.response.model", "server.address", "server.port")}


@pytest.mark.parametrize("profile", [V141], indirect=True)
def test_chat_metrics_v141(profile, spans, metrics):
    with paced_server(reply=with_usage(USAGE)) as served:
        served.client().chat.completions.create(model="conv-m141", messages=HELLO)
    span = span_named(spans, "chat conv-m141")
    recorded = metrics.read("conv-m141")
    assert set(recorded) == {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}
    duration, usage = recorded["gen_ai.client.operation.duration"], recorded["gen_ai.client.token.usage"]
    _histogram(duration, "s", DURATION_BUCKETS)
    _histogram(usage, "{token}", TOKEN_BUCKETS)
    [point] = duration.points
    assert dict(point.attributes) == {**_base(span), "openai.response.service_tier": "default",
                                      "openai.response.system_fingerprint": "fp_standin"}
    assert point.count == 1
    assert 0 < point.sum <= (span.end_time - span.start_time) / 1e9
    by_type = {p.attributes["gen_ai.token.type"]: p for p in usage.points}
    assert set(by_type) == {"input", "output"}
    assert (by_type["input"].sum, by_type["output"].sum) == (120, 30)  # reported usage, details inside
    assert {k: v for k, v in by_type["input"].attributes.items() if k != "gen_ai.token.type"} == \
        dict(point.attributes)


@pytest.mark.parametrize("profile", [V010], indirect=True)
def test_chat_metrics_v010(profile, spans, metrics):
    with paced_server(reply=with_usage(USAGE)) as served:
        served.client().chat.completions.create(model="conv-m010", messages=HELLO)
    span = span_named(spans, "chat conv-m010")
    recorded = metrics.read("conv-m010")
    counters = {"input_tokens": 120, "output_tokens": 30, "cache_read.input_tokens": 64,
                "cache_write.input_tokens": 40, "reasoning.output_tokens": 12}
    assert set(recorded) == {"gen_ai.client.inference.duration", "gen_ai.client.inference.operation.input_tokens",
                             "gen_ai.client.inference.operation.output_tokens"} | {
        "gen_ai.client.inference.usage." + name for name in counters}
    base = {**_base(span), "openai.response.service_tier": "default",
            "openai.response.system_fingerprint": "fp_standin"}
    duration = recorded["gen_ai.client.inference.duration"]
    _histogram(duration, "s", DURATION_BUCKETS)
    assert [dict(p.attributes) for p in duration.points] == [base]
    for name, value in (("input_tokens", 120), ("output_tokens", 30)):  # no modality on these
        histogram = recorded["gen_ai.client.inference.operation." + name]
        _histogram(histogram, "{token}", TOKEN_BUCKETS)
        [point] = histogram.points
        assert (dict(point.attributes), point.sum, point.count) == (base, value, 1)
    for name, value in counters.items():  # counters: by modality; OpenAI reports none, so "unknown"
        counter = recorded["gen_ai.client.inference.usage." + name]
        _counter(counter)
        point = last(counter)
        assert dict(point.attributes) == {**base, "gen_ai.token.modality": "unknown"}
        assert point.value == value


@pytest.mark.parametrize("profile", [V141, V010], indirect=True)
def test_embeddings_metrics(profile, spans, metrics, cassette):
    cassette("test_embeddings/test_embeddings").openai_client().embeddings.create(
        model="conv-emb-metrics", input="Tell me a joke about opentelemetry")
    span = span_named(spans, "embeddings conv-emb-metrics")
    recorded = metrics.read("conv-emb-metrics")
    if profile == V141:
        assert set(recorded) == {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}
        duration, tokens = recorded["gen_ai.client.operation.duration"], recorded["gen_ai.client.token.usage"]
        [point] = tokens.points
        assert (point.attributes["gen_ai.token.type"], point.sum) == ("input", 8)  # no output for embeddings
    else:
        assert set(recorded) == {"gen_ai.client.embeddings.duration", "gen_ai.client.embeddings.operation.input_tokens"}
        duration, tokens = recorded["gen_ai.client.embeddings.duration"], \
            recorded["gen_ai.client.embeddings.operation.input_tokens"]
        [point] = tokens.points
        assert (dict(point.attributes), point.sum) == (_base(span), 8)
    _histogram(duration, "s", DURATION_BUCKETS)
    _histogram(tokens, "{token}", TOKEN_BUCKETS)
    assert [dict(p.attributes) for p in duration.points] == [_base(span)]


@pytest.mark.parametrize("profile", [V141, V010], indirect=True)
def test_failed_call(profile, spans, metrics):
    """A failed call: duration with error.type in both; v1.41 records no token usage (none was
    reported), v0.1.0 records 0 tokens (§3: "including failed ones … or 0") and counts 0 under
    the unknown modality, without error.type on the counters."""
    model = f"conv-fail-{profile}"
    with paced_server(reply=lambda body: (429, RATE_LIMITED)) as served:
        with pytest.raises(openai.RateLimitError):
            served.client().chat.completions.create(model=model, messages=HELLO)
    span = span_named(spans, "chat " + model)
    assert span.attributes["error.type"] == "RateLimitError"
    recorded = metrics.read(model)
    duration_name = {V141: "gen_ai.client.operation.duration", V010: "gen_ai.client.inference.duration"}[profile]
    [point] = recorded[duration_name].points
    assert point.attributes["error.type"] == "RateLimitError"
    if profile == V141:
        assert set(recorded) == {duration_name}
        return
    for name in ("input_tokens", "output_tokens"):
        [point] = recorded["gen_ai.client.inference.operation." + name].points
        assert (point.sum, point.attributes["error.type"]) == (0, "RateLimitError")
        counted = last(recorded["gen_ai.client.inference.usage." + name], gen_ai__token__modality="unknown")
        assert "error.type" not in counted.attributes
    assert not {n for n in recorded if n.endswith(("cache_read.input_tokens", "cache_write.input_tokens",
                                                   "reasoning.output_tokens"))}


@pytest.mark.parametrize("profile", [V141], indirect=True)
def test_malformed_response_values_keep_the_points(profile, spans, metrics, caplog):
    """A response whose model is a list and service tier an object (a broken proxy): the points
    are recorded all the same - the list as a tuple, the object left out - on every SDK (those
    before 1.42 raised on an unhashable attribute value and lost the point)."""
    def reply(body):
        return {**with_usage(USAGE)(body), "model": ["conv-odd-a", "conv-odd-b"], "service_tier": {"tier": 1}}

    with paced_server(reply=reply) as served:
        served.client().chat.completions.create(model="conv-odd", messages=HELLO)
    span_named(spans, "chat conv-odd")
    recorded = metrics.read("conv-odd")
    [point] = recorded["gen_ai.client.operation.duration"].points
    assert point.attributes["gen_ai.response.model"] == ("conv-odd-a", "conv-odd-b")
    assert "openai.response.service_tier" not in point.attributes
    assert sorted(p.sum for p in recorded["gen_ai.client.token.usage"].points) == [30, 120]
    assert "instrumentation error" not in caplog.text


@pytest.mark.parametrize("profile", [V141, V010], indirect=True)
def test_agent_and_tool_durations(profile, spans, metrics):
    recorder = get_recorder()
    with paced_server() as served:
        with recorder.start(StepInvocation(name="agent", operation="invoke_agent", agent_name="conv-dur-agent")):
            served.client().chat.completions.create(model="conv-dur-model", messages=HELLO)
            with recorder.start(ToolInvocation(name="conv-dur-tool", tool_type="function")):
                pass
            with pytest.raises(KeyError):
                with recorder.start(ToolInvocation(name="conv-dur-broken", tool_type="function")):
                    raise KeyError("missing")
        with recorder.start(StepInvocation(name="flow", operation="invoke_workflow", agent_name="conv-dur-flow")):
            pass
    recorded = metrics.read("conv-dur-agent", "conv-dur-tool", "conv-dur-broken", "conv-dur-flow")
    agents, tools = recorded["gen_ai.invoke_agent.duration"], recorded["gen_ai.execute_tool.duration"]
    _histogram(agents, "s", AGENT_BUCKETS)
    _histogram(tools, "s", DURATION_BUCKETS)
    agent_span, flow_span = span_named(spans, "invoke_agent conv-dur-agent"), span_named(spans, "invoke_workflow")
    by_name = {p.attributes["gen_ai.agent.name"]: p for p in agents.points}
    # the workflow is recorded on the agent metric, named in gen_ai.agent.name, as v0.1.0 says (§5.4)
    assert dict(by_name["conv-dur-agent"].attributes) == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "conv-dur-agent",
        "gen_ai.request.model": "conv-dur-model"}
    assert dict(by_name["conv-dur-flow"].attributes) == {
        "gen_ai.operation.name": "invoke_workflow", "gen_ai.agent.name": "conv-dur-flow"}
    for point, span in ((by_name["conv-dur-agent"], agent_span), (by_name["conv-dur-flow"], flow_span)):
        assert point.count == 1
        assert 0 < point.sum <= (span.end_time - span.start_time) / 1e9
    by_tool = {p.attributes["gen_ai.tool.name"]: p for p in tools.points}
    assert dict(by_tool["conv-dur-tool"].attributes) == {
        "gen_ai.tool.name": "conv-dur-tool", "gen_ai.tool.type": "function", "gen_ai.agent.name": "conv-dur-agent"}
    assert dict(by_tool["conv-dur-broken"].attributes) == {
        "gen_ai.tool.name": "conv-dur-broken", "gen_ai.tool.type": "function", "gen_ai.agent.name": "conv-dur-agent",
        "error.type": "KeyError"}
