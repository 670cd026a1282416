"""The one place where invocation records become spans, attributes and metrics.

Instrumentors call :meth:`Recorder.start_llm` / :meth:`Recorder.stop_llm` /
:meth:`Recorder.fail_llm` (and the tool / step twins) with plain records. Every method
is guarded: a fault of ours is logged once and never reaches the app.

"One LLM call is one LLM span": a framework instrumentor that records an LLM call itself
activates it with ``claim=True`` around the code that calls the SDK. The SDK
instrumentor's record then opens no span; on stop it fills in what the framework did not
know (response id, server, exact usage) and is counted nowhere else.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Union

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llm_otel import config
from llm_otel.core import semconv as sc
from llm_otel.core import tokens
from llm_otel.core.content import scrub_secrets, to_json, to_text, utf8, utf8_attributes
from llm_otel.core.guard import guarded, report
from llm_otel.core.invocation import LLMInvocation, StepInvocation, ToolInvocation
from llm_otel.version import __version__

try:  # public since opentelemetry-api 1.x, but private-named
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
except ImportError:  # pragma: no cover
    _SUPPRESS_INSTRUMENTATION_KEY = otel_context.create_key("suppress_instrumentation")

SCOPE = "llm_otel"
_CLAIMED_LLM = otel_context.create_key("llm_otel.claimed-llm-invocation")

EndHook = Callable[[LLMInvocation], None]
_end_hooks: List[EndHook] = []

Record = Union[LLMInvocation, ToolInvocation, StepInvocation]


def add_end_hook(hook: EndHook) -> None:
    """Run ``hook(invocation)`` for every recorded LLM call, before its span ends.

    Used for cost and ``usage()`` accounting; a hook may set ``invocation.cost_usd``.
    Calls already recorded by a framework are seen once, on the framework's record.
    """
    if hook not in _end_hooks:
        _end_hooks.append(hook)


def suppressed() -> bool:
    """True inside ``suppress_instrumentation()``: record nothing, call through."""
    return bool(otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY))


def claimed_llm() -> Optional[LLMInvocation]:
    """The framework LLM record that owns the current call, if any."""
    inv = otel_context.get_value(_CLAIMED_LLM)
    return inv if isinstance(inv, LLMInvocation) and not inv.ended else None


class Recorder:
    """Holds the tracer and the instruments; cheap to call, built once per provider pair."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        self.token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE, unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS)
        self.duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION, unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS)
        self.first_chunk = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK, unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=sc.FIRST_CHUNK_BUCKETS)
        self.per_chunk = meter.create_histogram(
            sc.METRIC_TIME_PER_OUTPUT_CHUNK, unit="s",
            description="Time between consecutive chunks of a streamed response",
            explicit_bucket_boundaries_advisory=sc.PER_CHUNK_BUCKETS)

    # ---- LLM calls -------------------------------------------------------------------

    @guarded
    def start_llm(self, inv: LLMInvocation, parent_context: Any = None) -> LLMInvocation:
        """Open the span (not made current: see :meth:`activate`)."""
        inv.start_perf = time.perf_counter()
        owner = otel_context.get_value(_CLAIMED_LLM, parent_context)
        if isinstance(owner, LLMInvocation) and not owner.ended:
            inv.parent = owner
            return inv
        name = f"{inv.operation} {inv.request_model}" if inv.request_model else inv.operation
        inv.span = self.tracer.start_span(
            utf8(name), context=parent_context, kind=SpanKind.CLIENT,
            attributes=utf8_attributes(_request_attributes(inv)))
        return inv

    def chunk(self, inv: LLMInvocation) -> None:
        """Note the arrival of one streamed chunk (a clock read and an append)."""
        now = time.perf_counter()
        if inv.first_chunk_perf is None:
            inv.first_chunk_perf = now
            inv.chunk_perfs = [now]
        else:
            inv.chunk_perfs.append(now)  # type: ignore[union-attr]

    @guarded
    def stop_llm(self, inv: LLMInvocation) -> None:
        if inv.ended:
            return
        inv.ended = True
        if inv.parent is not None:
            _merge_into(inv.parent, inv)
            return
        self._finish_llm(inv)

    @guarded
    def fail_llm(self, inv: LLMInvocation, error: BaseException) -> None:
        if inv.ended:
            return
        inv.ended = True
        inv.error_type = inv.error_type or type(error).__qualname__
        if inv.parent is not None:
            return  # the framework sees the same exception and records it
        if inv.span is not None:
            try:
                _record_error(inv.span, error)
            except Exception as exc:  # noqa: BLE001 - still end the span below
                report("record error", exc)
        self._finish_llm(inv)

    def _finish_llm(self, inv: LLMInvocation) -> None:
        end_perf = time.perf_counter()
        span = inv.span
        counted = not inv.counted_elsewhere
        try:
            if inv.error_type is None and counted:
                _estimate_usage(inv)
            for hook in _end_hooks if counted else ():
                try:
                    hook(inv)
                except Exception as exc:  # noqa: BLE001
                    report(f"end hook {getattr(hook, '__qualname__', hook)}", exc)
            if span is not None and span.is_recording():
                span.set_attributes(utf8_attributes(_response_attributes(inv)))
                _record_content(span, inv)
        finally:  # a record we cannot read must not leave its span open
            if span is not None:
                span.end()
        if counted:
            self._record_metrics(inv, end_perf)

    def _record_metrics(self, inv: LLMInvocation, end_perf: float) -> None:
        attrs: Dict[str, Any] = {sc.OPERATION_NAME: inv.operation, sc.PROVIDER_NAME: inv.provider}
        if inv.request_model:
            attrs[sc.REQUEST_MODEL] = inv.request_model
        if inv.response_model:
            attrs[sc.RESPONSE_MODEL] = inv.response_model
        if inv.server_address:
            attrs[sc.SERVER_ADDRESS] = inv.server_address
        if inv.server_port:
            attrs[sc.SERVER_PORT] = inv.server_port
        if inv.error_type:
            attrs[sc.ERROR_TYPE] = inv.error_type
        self.duration.record(end_perf - inv.start_perf, attrs)
        if inv.input_tokens is not None:
            self.token_usage.record(inv.input_tokens, {**attrs, sc.TOKEN_TYPE: "input"})
        if inv.output_tokens is not None:
            self.token_usage.record(inv.output_tokens, {**attrs, sc.TOKEN_TYPE: "output"})
        perfs = inv.chunk_perfs
        if perfs:
            self.first_chunk.record(perfs[0] - inv.start_perf, attrs)
            record = self.per_chunk.record
            for previous, current in zip(perfs, perfs[1:]):
                record(current - previous, attrs)

    # ---- tools and other steps -------------------------------------------------------

    @guarded
    def start_tool(self, tool: ToolInvocation, parent_context: Any = None) -> ToolInvocation:
        attrs: Dict[str, Any] = {sc.OPERATION_NAME: "execute_tool", sc.TOOL_NAME: tool.name,
                                 sc.OPENINFERENCE_SPAN_KIND: "TOOL"}
        _put(attrs, sc.TOOL_CALL_ID, tool.call_id)
        _put(attrs, sc.TOOL_TYPE, tool.tool_type)
        _put(attrs, sc.TOOL_DESCRIPTION, tool.description)
        attrs.update(_plain_attributes(tool.attributes))
        tool.span = self.tracer.start_span(
            utf8(f"execute_tool {tool.name}"), context=parent_context, kind=SpanKind.INTERNAL,
            attributes=utf8_attributes(attrs))
        return tool

    @guarded
    def start_step(self, step: StepInvocation, parent_context: Any = None) -> StepInvocation:
        attrs: Dict[str, Any] = {"llm_otel.span.kind": step.kind,
                                 sc.OPENINFERENCE_SPAN_KIND: sc.openinference_kind(step.kind, step.operation)}
        _put(attrs, sc.OPERATION_NAME, step.operation)
        _put(attrs, sc.AGENT_NAME, step.agent_name)
        attrs.update(_plain_attributes(step.attributes))
        step.span = self.tracer.start_span(
            utf8(str(step.name)), context=parent_context, kind=SpanKind.INTERNAL,
            attributes=utf8_attributes(attrs))
        return step

    @guarded
    def stop(self, record: Union[ToolInvocation, StepInvocation]) -> None:
        """End a tool or step span, with its outputs (and inputs) when content is captured."""
        if record.ended or record.span is None:
            return
        record.ended = True
        span = record.span
        try:
            self._stop_content(record, span)
        finally:  # a record we cannot read must not leave its span open
            span.end()

    def _stop_content(self, record: Union[ToolInvocation, StepInvocation], span: Any) -> None:
        if span.is_recording():
            if record.attributes:
                span.set_attributes(utf8_attributes(_plain_attributes(record.attributes)))
            settings = config.settings()
            forced = getattr(record, "capture_content", None)  # StepInvocation only
            if (forced if forced is not None else settings.capture_content):
                limit = settings.content_max_length
                if isinstance(record, ToolInvocation):
                    pairs = ((sc.TOOL_CALL_ARGUMENTS, record.arguments), (sc.TOOL_CALL_RESULT, record.result))
                else:
                    pairs = (("llm_otel.input", record.inputs), ("llm_otel.output", record.outputs))
                content = {key: _text(value, limit) for key, value in pairs if value is not None}
                if content:
                    # content asked for by the record itself lands on the span when the
                    # global mode (NO_CONTENT) names no place for it
                    if settings.content_on_span or not settings.capture_content:
                        span.set_attributes(content)
                    if settings.content_in_event:
                        span.add_event(sc.CONTENT_EVENT, content)

    @guarded
    def fail(self, record: Union[ToolInvocation, StepInvocation], error: BaseException) -> None:
        if record.ended or record.span is None:
            return
        try:
            record.error_type = record.error_type or type(error).__qualname__
            _record_error(record.span, error)
            record.span.set_attribute(sc.ERROR_TYPE, utf8(str(record.error_type)))
        finally:
            self.stop(record)

    @guarded
    def agent_event(self, record: Union[ToolInvocation, StepInvocation], finished: bool,
                    tool_name: Optional[str] = None, arguments: Any = None, output: Any = None) -> None:
        """An agent's decision as a span event on its run: it calls a tool, or it finishes.

        Tool arguments and the final output are content: recorded only when capture is on.
        """
        span = record.span
        if span is None or record.ended or not span.is_recording():
            return
        attrs: Dict[str, Any] = {}
        _put(attrs, sc.TOOL_NAME, tool_name)
        settings = config.settings()
        if settings.capture_content:
            limit = settings.content_max_length
            if arguments is not None:
                attrs[sc.TOOL_CALL_ARGUMENTS] = _text(arguments, limit)
            if output is not None:
                attrs["llm_otel.output"] = _text(output, limit)
        span.add_event(sc.AGENT_FINISH_EVENT if finished else sc.AGENT_ACTION_EVENT, utf8_attributes(attrs))

    # ---- context ---------------------------------------------------------------------

    def activate(self, record: Record, claim: bool = False) -> "_Activation":
        """Make ``record``'s span current for the code inside (SDK and HTTP spans nest).

        ``claim=True`` (frameworks only) also marks the LLM call as recorded here, so the
        SDK instrumentor underneath adds its data to this record instead of a second span.
        The token is detached in the same context it was attached in.
        """
        return _Activation(record, claim)


class _Activation:
    """The context manager :meth:`Recorder.activate` returns: a small class rather than a
    ``@contextmanager`` generator, as it runs around every recorded call (see benchmarks/).
    The context is read on entry, like the generator did."""

    __slots__ = ("record", "claim", "token")

    def __init__(self, record: Record, claim: bool) -> None:
        self.record = record
        self.claim = claim
        self.token: Any = None

    def __enter__(self) -> None:
        record = self.record
        span = record.span
        claim = self.claim
        if span is None and not claim:
            return
        ctx = otel_context.get_current()
        if span is not None:
            ctx = trace.set_span_in_context(span, ctx)
        if claim and isinstance(record, LLMInvocation):
            ctx = otel_context.set_value(_CLAIMED_LLM, record, ctx)
        self.token = otel_context.attach(ctx)

    def __exit__(self, *exc_info: Any) -> None:
        token = self.token
        if token is not None:
            self.token = None
            otel_context.detach(token)


# ---- attribute building (module level: no self lookups on the hot path) ----------------


def _put(attrs: Dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attrs[key] = value


def _describe(error: BaseException) -> str:
    try:
        return scrub_secrets(f"{type(error).__qualname__}: {error}")
    except Exception:  # noqa: BLE001
        return type(error).__qualname__


def _record_error(span: Any, error: BaseException) -> None:
    """The exception event and ERROR status, with credentials masked: an SDK error's
    message can echo an API key or auth header sent by the app (``APIStatusError``)."""
    try:
        message = scrub_secrets(str(error))
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        message = ""
    try:
        stack = scrub_secrets("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    except Exception:  # noqa: BLE001
        stack = ""
    span.record_exception(error, attributes={"exception.message": message, "exception.stacktrace": stack})
    span.set_status(Status(StatusCode.ERROR, _describe(error)))


def _plain_attributes(values: Dict[str, Any]) -> Dict[str, Any]:
    """Keep what OTel accepts as an attribute; turn the rest into strings."""
    out: Dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:
            out[key] = _text(value, config.settings().content_max_length)
    return out


def _text(value: Any, limit: int) -> str:
    return to_text(value, limit)  # cleaned: secrets, redaction hook, images


def _request_attributes(inv: LLMInvocation) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {sc.OPERATION_NAME: inv.operation, sc.PROVIDER_NAME: inv.provider,
                             sc.OPENINFERENCE_SPAN_KIND: sc.openinference_kind(inv.operation)}
    _put(attrs, sc.REQUEST_MODEL, inv.request_model)
    _put(attrs, sc.REQUEST_TEMPERATURE, inv.temperature)
    _put(attrs, sc.REQUEST_TOP_P, inv.top_p)
    _put(attrs, sc.REQUEST_TOP_K, inv.top_k)
    _put(attrs, sc.REQUEST_MAX_TOKENS, inv.max_tokens)
    _put(attrs, sc.REQUEST_SEED, inv.seed)
    _put(attrs, sc.REQUEST_STOP_SEQUENCES, inv.stop_sequences)
    _put(attrs, sc.REQUEST_FREQUENCY_PENALTY, inv.frequency_penalty)
    _put(attrs, sc.REQUEST_PRESENCE_PENALTY, inv.presence_penalty)
    if inv.choice_count is not None and inv.choice_count != 1:
        attrs[sc.REQUEST_CHOICE_COUNT] = inv.choice_count
    _put(attrs, sc.OUTPUT_TYPE, inv.output_type)
    _put(attrs, sc.REQUEST_ENCODING_FORMATS, inv.encoding_formats)
    _put(attrs, sc.CONVERSATION_ID, inv.conversation_id)
    _put(attrs, sc.SERVER_ADDRESS, inv.server_address)
    _put(attrs, sc.SERVER_PORT, inv.server_port)
    if inv.stream:
        attrs[sc.STREAMING] = True
    if inv.extra:
        prefix = inv.provider + "."
        for key, value in inv.extra.items():
            if key.startswith("request.") and value is not None:
                attrs[prefix + key] = value
    if inv.attributes:
        attrs.update(_plain_attributes(inv.attributes))
    return attrs


def _response_attributes(inv: LLMInvocation) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {}
    _put(attrs, sc.RESPONSE_ID, inv.response_id)
    _put(attrs, sc.RESPONSE_MODEL, inv.response_model)
    if inv.finish_reasons:
        attrs[sc.RESPONSE_FINISH_REASONS] = list(inv.finish_reasons)
    _put(attrs, sc.USAGE_INPUT_TOKENS, inv.input_tokens)
    _put(attrs, sc.USAGE_OUTPUT_TOKENS, inv.output_tokens)
    _put(attrs, sc.USAGE_CACHE_READ_INPUT_TOKENS, inv.cache_read_input_tokens)
    _put(attrs, sc.USAGE_CACHE_CREATION_INPUT_TOKENS, inv.cache_creation_input_tokens)
    _put(attrs, sc.USAGE_REASONING_OUTPUT_TOKENS, inv.reasoning_output_tokens)
    _put(attrs, sc.EMBEDDINGS_DIMENSION_COUNT, inv.embedding_dimensions)
    if inv.usage_estimated:
        attrs[sc.USAGE_ESTIMATED] = True
    _put(attrs, sc.COST_USD, inv.cost_usd)
    # a server address learnt late (from the response) or a request-time extra
    _put(attrs, sc.SERVER_ADDRESS, inv.server_address)
    _put(attrs, sc.SERVER_PORT, inv.server_port)
    _put(attrs, sc.ERROR_TYPE, inv.error_type)
    if inv.extra:
        prefix = inv.provider + "."
        for key, value in inv.extra.items():
            if key.startswith("response.") and value is not None:
                attrs[prefix + key] = value
    if inv.attributes:
        attrs.update(_plain_attributes(inv.attributes))
    return attrs


def _record_content(span: Any, inv: LLMInvocation) -> None:
    settings = config.settings()
    if not settings.capture_content:
        return
    limit = settings.content_max_length
    content: Dict[str, Any] = {}
    for key, value in ((sc.INPUT_MESSAGES, inv.input_messages),
                       (sc.SYSTEM_INSTRUCTIONS, inv.system_instructions),
                       (sc.TOOL_DEFINITIONS, inv.tool_definitions),
                       (sc.OUTPUT_MESSAGES, inv.output_messages)):
        if value:
            content[key] = to_json(value, limit)
    if not content:
        return
    if settings.content_on_span:
        span.set_attributes(content)
    if settings.content_in_event:
        span.add_event(sc.CONTENT_EVENT, content)


def _estimate_usage(inv: LLMInvocation) -> None:
    """Count tokens locally when the response carried no usage (marked as estimated)."""
    if inv.input_tokens is None:
        if inv.input_messages or inv.system_instructions:
            messages = list(inv.input_messages or ())
            if inv.system_instructions:
                messages.insert(0, {"role": "system", "parts": inv.system_instructions})
            inv.input_tokens = tokens.count_messages(messages, inv.request_model)
        elif inv.input_texts:
            counts = [tokens.count_text(t, inv.request_model) for t in inv.input_texts]
            inv.input_tokens = None if None in counts else sum(counts)  # type: ignore[arg-type]
        inv.usage_estimated = inv.usage_estimated or inv.input_tokens is not None
    if inv.output_tokens is None and inv.output_messages and inv.operation != "embeddings":
        inv.output_tokens = tokens.count_output(inv.output_messages, inv.request_model)
        inv.usage_estimated = inv.usage_estimated or inv.output_tokens is not None


_MERGED_FIELDS = ("response_id", "response_model", "finish_reasons", "server_address", "server_port",
                  "output_messages", "embedding_dimensions")
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens", "reasoning_output_tokens")


def _merge_into(owner: LLMInvocation, sdk: LLMInvocation) -> None:
    """Keep the richer data on the framework's record: the API's own response and usage."""
    for name in _MERGED_FIELDS:
        value = getattr(sdk, name)
        if value is not None and getattr(owner, name) is None:
            setattr(owner, name, value)
    if sdk.input_tokens is not None or sdk.output_tokens is not None:
        for name in _USAGE_FIELDS:  # exact usage from the API beats a framework's estimate
            value = getattr(sdk, name)
            if value is not None:
                setattr(owner, name, value)
        owner.usage_estimated = False
    for key, value in sdk.extra.items():
        owner.extra.setdefault(key, value)
    if owner.span is not None and owner.span.is_recording():
        request = _request_attributes(sdk)  # parameters the framework did not know
        owner.span.set_attributes(utf8_attributes({k: v for k, v in request.items()
                                   if k not in (sc.OPERATION_NAME, sc.PROVIDER_NAME)
                                   and k not in owner.span.attributes}))


_recorders: Dict[Any, Recorder] = {}


def get_recorder(tracer_provider: Any = None, meter_provider: Any = None) -> Recorder:
    """The recorder for these providers (None = the global ones); built once."""
    key = (id(tracer_provider) if tracer_provider is not None else None,
           id(meter_provider) if meter_provider is not None else None)
    recorder = _recorders.get(key)
    if recorder is None:
        recorder = _recorders[key] = Recorder(tracer_provider, meter_provider)
    return recorder
