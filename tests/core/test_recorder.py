"""The recorder on its own: records in, spans and metrics out."""

import json

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from llm_otel.core import LLMInvocation, StepInvocation, ToolInvocation, add_end_hook, get_recorder
from llm_otel.core.recorder import _end_hooks
from support.estimates import estimated_tokens


def test_llm_span_has_semconv_attributes_and_metrics(spans, metric_reader):
    rec = get_recorder()
    inv = LLMInvocation(request_model="gpt-4o-mini", temperature=0.2, max_tokens=50, seed=7,
                        stop_sequences=["\n"], server_address="api.openai.com", server_port=443)
    op = rec.start(inv)
    inv.response_id, inv.response_model, inv.finish_reasons = "id1", "gpt-4o-mini-2024", ["stop"]
    inv.input_tokens, inv.output_tokens, inv.cache_read_input_tokens = 12, 5, 4
    op.end()
    op.end()  # a second end is ignored

    (span,) = spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.stop_sequences"] == ("\n",)
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.cache_read.input_tokens"] == 4
    assert "llm_otel.usage.estimated" not in a
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__token__type="input") == 12
    (duration,) = metric_reader.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert duration.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024"


def test_failure_sets_error_and_keeps_counting_duration(spans, metric_reader):
    rec = get_recorder()
    rec.start(LLMInvocation(request_model="m")).fail(TimeoutError("slow"))
    (span,) = spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "TimeoutError"
    assert span.events[0].name == "exception"
    (point,) = metric_reader.points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "TimeoutError"


def test_stream_timing_metrics(spans, metric_reader):
    rec = get_recorder()
    op = rec.start(LLMInvocation(request_model="m", stream=True))
    for _ in range(4):
        op.chunk()
    op.end()
    assert metric_reader.points("gen_ai.client.operation.time_to_first_chunk")[0].count == 1
    assert metric_reader.points("gen_ai.client.operation.time_per_output_chunk")[0].count == 3


def test_tokens_estimated_locally_when_usage_missing(spans, metric_reader, estimate_mode):
    rec = get_recorder()
    op = rec.start(LLMInvocation(
        request_model="gpt-3.5-turbo",
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "hello world"}]}]))
    op.record.output_messages = [{"role": "assistant", "parts": [{"type": "text", "content": "hi there"}]}]
    op.end()
    a = spans()[0].attributes
    assert estimated_tokens(a, estimate_mode, "input") == 3 + 3 + 2  # framing + "hello world"
    assert estimated_tokens(a, estimate_mode, "output") == 2
    assert "gen_ai.input.messages" not in a  # content is off by default
    # the token metric carries estimates only when the user opted in
    assert metric_reader.total("gen_ai.client.token.usage") == (10 if estimate_mode == "report" else 0)


def test_content_captured_when_enabled(spans, capture_content):
    rec = get_recorder()
    rec.start(LLMInvocation(
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "x" * 20000}]}])).end()
    value = spans()[0].attributes["gen_ai.input.messages"]
    assert "...[truncated 3616 chars]" in value


def test_claimed_call_is_merged_not_duplicated(spans, metric_reader):
    rec = get_recorder()
    owner = rec.start(LLMInvocation(request_model="gpt-4o", input_tokens=None))
    with owner.current(claim=True):
        sdk = rec.start(LLMInvocation(request_model="gpt-4o", temperature=0.5, server_address="api.openai.com"))
        sdk.record.response_id, sdk.record.input_tokens, sdk.record.output_tokens = "r1", 10, 3
        sdk.end()
    owner.end()
    (span,) = spans()
    a = span.attributes
    assert a["gen_ai.response.id"] == "r1" and a["gen_ai.usage.input_tokens"] == 10
    assert a["gen_ai.request.temperature"] == 0.5 and a["server.address"] == "api.openai.com"
    assert metric_reader.total("gen_ai.client.token.usage") == 13


def test_tool_and_step_spans_nest(spans, capture_content):
    rec = get_recorder()
    step = rec.start(StepInvocation(name="agent", kind="agent", operation="invoke_agent", inputs={"q": 1}))
    with step.current():
        with rec.start(ToolInvocation(name="search", call_id="c1", arguments={"q": "x"})) as tool:
            tool.record.result = "found"
    step.fail(ValueError("boom"))
    tool_span, step_span = spans()
    assert tool_span.parent.span_id == step_span.context.span_id
    assert tool_span.name == "execute_tool search"
    assert tool_span.attributes["gen_ai.tool.call.result"] == "found"
    # an agent's content is messages (the input it was given as a user message)
    assert json.loads(step_span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": '{"q": 1}'}]}]
    assert step_span.name == "invoke_agent" and step_span.attributes["error.type"] == "ValueError"


def test_end_hook_errors_are_swallowed(spans):
    def bad(inv):
        raise RuntimeError("hook fault")

    def cost(inv):
        inv.cost_usd = 0.5

    add_end_hook(bad)
    add_end_hook(cost)
    try:
        rec = get_recorder()
        rec.start(LLMInvocation()).end()
        assert spans()[0].attributes["llm_otel.cost.usd"] == 0.5
    finally:
        _end_hooks.remove(bad)
        _end_hooks.remove(cost)


def test_nests_under_current_span(spans):
    tracer = trace.get_tracer("t")
    with tracer.start_as_current_span("user") as parent:
        get_recorder().start(LLMInvocation()).end()
    llm = spans()[0]
    assert llm.parent.span_id == parent.get_span_context().span_id


def test_spans_carry_the_openinference_kind_phoenix_groups_by(spans):
    rec = get_recorder()
    for record in (LLMInvocation(operation="embeddings"), LLMInvocation(), ToolInvocation(name="t"),
                   StepInvocation(name="r", operation="retrieval"), StepInvocation(name="a", operation="invoke_agent"),
                   StepInvocation(name="c")):
        rec.start(record).end()
    assert [s.attributes["openinference.span.kind"] for s in spans()] == [
        "EMBEDDING", "LLM", "TOOL", "RETRIEVER", "AGENT", "CHAIN"]


def test_an_impossible_token_count_is_recorded_nowhere(spans, metric_reader, caplog):
    """A malformed response's usage (negative, fractional, a string) is no count: not on the
    span, not in the token metric (whose SDK would warn and drop it), not in usage()."""
    import llm_otel

    with llm_otel.usage() as u:
        for bad in (-3, 2.5, "12", True):
            inv = LLMInvocation(request_model="gpt-4o-mini")
            op = get_recorder().start(inv)
            inv.input_tokens, inv.output_tokens, inv.cache_read_input_tokens = bad, 7, -1
            op.end()
    assert len(spans()) == 4
    for span in spans():
        assert "gen_ai.usage.input_tokens" not in span.attributes
        assert "gen_ai.usage.cache_read.input_tokens" not in span.attributes
        assert span.attributes["gen_ai.usage.output_tokens"] == 7
    assert metric_reader.count("gen_ai.client.token.usage", gen_ai__token__type="input") == 0
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__token__type="output") == 28
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens) == (0, 28, 0)
    assert not [r for r in caplog.records if "non-negative" in r.getMessage()]
