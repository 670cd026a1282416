"""The GenAI metrics: which instruments, with which attributes, in which profile.

Default (semantic conventions v1.41): ``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage`` by ``gen_ai.token.type``, and for streams
``gen_ai.client.operation.time_to_first_chunk`` / ``time_per_output_chunk``. With the
latest conventions (semantic-conventions-genai v0.1.0) inference and embeddings get their
own sets instead: ``gen_ai.client.inference.*`` (duration, chunk timings, per-operation
token histograms, usage counters by ``gen_ai.token.modality``) and
``gen_ai.client.embeddings.*``. Both profiles record the agent and tool durations that
v0.1.0 defines. Buckets follow the conventions' advice throughout.

Locally estimated tokens are usage for no metric unless the user opted in
(``LLM_OTEL_ESTIMATED_USAGE=report``), as the conventions ask; then their points carry
``llm_otel.usage.estimated=true``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from llm_otel.core import semconv as sc
from llm_otel.core.records import LLMInvocation

_USAGE_COUNTERS = (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
                   ("cache_read.input_tokens", "cache_read_input_tokens"),
                   ("cache_write.input_tokens", "cache_creation_input_tokens"),
                   ("reasoning.output_tokens", "reasoning_output_tokens"))


_MEASURED: Dict[str, Any] = {}
_ESTIMATED: Dict[str, Any] = {sc.USAGE_ESTIMATED: True}  # a locally counted token count, where one is recorded
_CHUNK_ATTRIBUTES = frozenset((sc.OPERATION_NAME, sc.PROVIDER_NAME, sc.REQUEST_MODEL, sc.RESPONSE_MODEL,
                               sc.SERVER_ADDRESS, sc.SERVER_PORT))


class Instruments:
    """Every instrument of one meter, made once (the SDK dedupes, but not for free)."""

    def __init__(self, meter: Any) -> None:
        def histogram(name: str, unit: str, description: str, buckets: Any) -> Any:
            return meter.create_histogram(name, unit=unit, description=description,
                                          explicit_bucket_boundaries_advisory=buckets)

        self.token_usage = histogram(sc.METRIC_TOKEN_USAGE, "{token}", "Number of input and output tokens used",
                                     sc.TOKEN_BUCKETS)
        self.duration = histogram(sc.METRIC_OPERATION_DURATION, "s", "GenAI operation duration",
                                  sc.DURATION_BUCKETS)
        self.first_chunk = histogram(sc.METRIC_TIME_TO_FIRST_CHUNK, "s",
                                     "Time to receive the first chunk of a streamed response",
                                     sc.FIRST_CHUNK_BUCKETS)
        self.per_chunk = histogram(sc.METRIC_TIME_PER_OUTPUT_CHUNK, "s",
                                   "Time between consecutive chunks of a streamed response", sc.PER_CHUNK_BUCKETS)
        self.agent_duration = histogram(sc.METRIC_INVOKE_AGENT_DURATION, "s", "Duration of an agent invocation",
                                        sc.AGENT_DURATION_BUCKETS)
        self.tool_duration = histogram(sc.METRIC_EXECUTE_TOOL_DURATION, "s", "Duration of a tool execution",
                                       sc.DURATION_BUCKETS)
        self._meter = meter
        self._latest: Optional[Dict[str, Any]] = None

    def latest(self) -> Dict[str, Any]:
        """The v0.1.0 instruments, made when the profile is first used."""
        if self._latest is None:
            meter = self._meter
            latest: Dict[str, Any] = {
                "duration": meter.create_histogram(
                    sc.LATEST_METRIC_INFERENCE_DURATION, unit="s", description="Duration of a model inference",
                    explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS),
                "first_chunk": meter.create_histogram(
                    sc.LATEST_METRIC_INFERENCE_FIRST_CHUNK, unit="s", description="Time to the first chunk",
                    explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS),
                "per_chunk": meter.create_histogram(
                    sc.LATEST_METRIC_INFERENCE_PER_CHUNK, unit="s", description="Time between output chunks",
                    explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS),
                "input_tokens": meter.create_histogram(
                    sc.LATEST_METRIC_INFERENCE_INPUT_TOKENS, unit="{token}", description="Input tokens of an inference",
                    explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS),
                "output_tokens": meter.create_histogram(
                    sc.LATEST_METRIC_INFERENCE_OUTPUT_TOKENS, unit="{token}",
                    description="Output tokens of an inference", explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS),
                "embeddings_duration": meter.create_histogram(
                    sc.LATEST_METRIC_EMBEDDINGS_DURATION, unit="s", description="Duration of an embeddings operation",
                    explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS),
                "embeddings_input_tokens": meter.create_histogram(
                    sc.LATEST_METRIC_EMBEDDINGS_INPUT_TOKENS, unit="{token}",
                    description="Input tokens of an embeddings operation",
                    explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS),
            }
            for name, _field in _USAGE_COUNTERS:  # keyed apart from the token histograms above
                latest["usage." + name] = meter.create_counter(
                    sc.LATEST_METRIC_USAGE_PREFIX + name, unit="{token}",
                    description=f"Tokens used: {name.replace('_', ' ')}")
            self._latest = latest
        return self._latest

    # ---- LLM calls ---------------------------------------------------------------------

    def record_llm(self, op: Any, attrs: Dict[str, Any], seconds: float, settings: Any) -> None:
        inv: LLMInvocation = op.record
        input_tokens, output_tokens = inv.input_tokens, inv.output_tokens
        input_marks = output_marks = _MEASURED
        if settings.report_estimates:  # the user opted in: estimates count, marked as such
            if input_tokens is None and inv.estimated_input_tokens is not None:
                input_tokens, input_marks = inv.estimated_input_tokens, _ESTIMATED
            if output_tokens is None and inv.estimated_output_tokens is not None:
                output_tokens, output_marks = inv.estimated_output_tokens, _ESTIMATED
        if settings.latest_semconv and inv.operation != "fetch_response":
            self._record_latest(op, attrs, seconds, input_tokens, output_tokens, input_marks, output_marks)
            return
        self.duration.record(seconds, attrs)
        if inv.operation == "fetch_response":
            return  # no usage for a fetched response
        if input_tokens is not None:
            self.token_usage.record(input_tokens, {**attrs, sc.TOKEN_TYPE: "input", **input_marks})
        if output_tokens is not None:
            self.token_usage.record(output_tokens, {**attrs, sc.TOKEN_TYPE: "output", **output_marks})
        if op.chunk_perfs:  # v1.41: the common attributes only (no error.type, no openai.*)
            self._chunks(op, {k: v for k, v in attrs.items() if k in _CHUNK_ATTRIBUTES}, self.first_chunk,
                         self.per_chunk)

    def _record_latest(self, op: Any, attrs: Dict[str, Any], seconds: float, input_tokens: Optional[int],
                       output_tokens: Optional[int], input_marks: Dict[str, Any],
                       output_marks: Dict[str, Any]) -> None:
        inv: LLMInvocation = op.record
        latest = self.latest()
        if inv.operation == "embeddings":
            latest["embeddings_duration"].record(seconds, attrs)
            if input_tokens is not None:
                latest["embeddings_input_tokens"].record(input_tokens, {**attrs, **input_marks})
            return
        latest["duration"].record(seconds, attrs)
        # every inference records its token counts, 0 without usage (v0.1.0)
        latest["input_tokens"].record(input_tokens or 0, {**attrs, **input_marks})
        latest["output_tokens"].record(output_tokens or 0, {**attrs, **output_marks})
        counted = {k: v for k, v in attrs.items() if k != sc.ERROR_TYPE}
        counted[sc.LATEST_TOKEN_MODALITY] = "unknown"  # the providers report no split by modality here
        for name, field in _USAGE_COUNTERS:
            marks = _MEASURED
            if field == "input_tokens":
                value, marks = input_tokens, input_marks
            elif field == "output_tokens":
                value, marks = output_tokens, output_marks
            else:
                value = getattr(inv, field)
            if value is not None or field in ("input_tokens", "output_tokens"):
                latest["usage." + name].add(value or 0, {**counted, **marks} if marks else counted)
        chunk_attrs = {k: v for k, v in attrs.items() if k != sc.ERROR_TYPE}
        self._chunks(op, chunk_attrs, latest["first_chunk"], latest["per_chunk"])

    @staticmethod
    def _chunks(op: Any, attrs: Dict[str, Any], first_chunk: Any, per_chunk: Any) -> None:
        perfs = op.chunk_perfs
        if perfs:
            first_chunk.record(perfs[0] - op.start_perf, attrs)
            record = per_chunk.record
            for previous, current in zip(perfs, perfs[1:]):
                record(current - previous, attrs)

    # ---- agents and tools --------------------------------------------------------------

    def record_agent(self, attrs: Dict[str, Any], seconds: float) -> None:
        self.agent_duration.record(seconds, attrs)

    def record_tool(self, attrs: Dict[str, Any], seconds: float) -> None:
        self.tool_duration.record(seconds, attrs)
