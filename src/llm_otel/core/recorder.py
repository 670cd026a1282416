"""The one place where records become spans, metrics and end-of-call accounting.

``get_recorder(tracer_provider, meter_provider).start(record)`` opens an
:class:`~llm_otel.core.operation.Operation`; its end or failure comes back here
(:meth:`Recorder.finish`) exactly once. For an LLM call the end is: content converted if
it is captured or needed for a local count, tokens counted locally when the API reported
none (never on the caller's thread while an encoding loads: the span then ends later,
with the call's end time), the end hooks (cost, ``usage()``), the response attributes and
content, the span's end, the metrics.

"One LLM call is one LLM span": an LLM record started inside a framework's claim (see
:meth:`Operation.current`) becomes a :class:`Contribution` of the claiming operation.
"""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
import weakref
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from llm_otel import config
from llm_otel.core import foreign, mapping, tokens
from llm_otel.core import semconv as sc
from llm_otel.core.attributes import exportable
from llm_otel.core.content import scrub_secrets, utf8
from llm_otel.core.events import Events
from llm_otel.core.forksafe import ForkSafeLock
from llm_otel.core.guard import guarded, report
from llm_otel.core.instruments import Instruments
from llm_otel.core.operation import CLAIM, CURRENT, NOOP, Contribution, Operation
from llm_otel.core.preload import Preload
from llm_otel.core.records import LLMInvocation, StepInvocation, ToolInvocation
from llm_otel.version import __version__

try:  # public since opentelemetry-api 1.x, but private-named
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
except ImportError:  # pragma: no cover
    _SUPPRESS_INSTRUMENTATION_KEY = otel_context.create_key("suppress_instrumentation")

SCOPE = sc.SCOPE

EndHook = Callable[[LLMInvocation], None]
_end_hooks: List[EndHook] = []
_at_once_hooks: List[EndHook] = []
_hook_preloads: List[Preload] = []


def add_end_hook(hook: EndHook, needs: Optional[Preload] = None, at_once: bool = False) -> None:
    """Run ``hook(invocation)`` for every recorded LLM call, in the context the call ran in,
    before its span ends. Used for cost and ``usage()``; a hook may set ``cost_usd``.
    A call recorded by a framework is seen once, on the framework's record. ``needs``: data
    the hook reads (a price table), loaded in the background from instrument time on; a
    call that ends before it is there finishes when it is, and so do the local token
    estimates. ``at_once``: run as soon as the call ends, on the caller's thread, before
    anything that waits: the reported usage is final then, estimates and cost are not yet."""
    hooks = _at_once_hooks if at_once else _end_hooks
    if hook not in hooks:
        hooks.append(hook)
    if needs is not None and needs not in _hook_preloads:
        _hook_preloads.append(needs)


def _run_hooks(hooks: List[EndHook], inv: LLMInvocation) -> None:
    for hook in hooks:
        try:
            hook(inv)
        except Exception as exc:  # noqa: BLE001
            report(f"end hook {getattr(hook, '__qualname__', hook)}", exc)


_deferred: Dict[int, int] = {}  # trace id -> LLM spans of it whose end waits on a load
_deferred_lock = ForkSafeLock()


def pending_spans(trace_id: int) -> int:
    """How many spans of this trace will still end, later than their call, once what their
    end needs has loaded (a tool that prints a trace when its root ends waits for them)."""
    return _deferred.get(trace_id, 0)


def _count_deferred(trace_id: Optional[int], step: int) -> None:
    if trace_id is None:
        return
    with _deferred_lock:
        count = _deferred.get(trace_id, 0) + step
        if count > 0:
            _deferred[trace_id] = count
        else:
            _deferred.pop(trace_id, None)


def preload() -> None:
    """Start loading, off the caller's thread, what the end of a call needs (the default
    encoding, the hooks' data), so that it is there when the first call ends."""
    tokens.warm_up()
    for needed in _hook_preloads:
        needed.start()


def suppressed() -> bool:
    """True inside OTel's ``suppress_instrumentation()``: record nothing, call through."""
    return bool(otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY))


_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                 "reasoning_output_tokens")
# response data an SDK call adds to the framework record it contributes to, if missing there
_MERGED_FIELDS = ("response_id", "response_model", "finish_reasons", "server_address", "server_port",
                  "output_messages", "embedding_dimensions")


class Recorder:
    """The tracer, instruments and event logger for one provider set; cheap to call."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        self.instruments = Instruments(metrics.get_meter(SCOPE, __version__, meter_provider))
        self.events = Events(SCOPE, logger_provider)
        preload()  # made when instrumenting (also one client only): the data ends need starts loading

    # ---- start -------------------------------------------------------------------------

    def start(self, record: Any, parent: Any = None, parent_as_fallback: bool = False) -> Any:
        """An operation for ``record`` (not yet current: see :class:`Operation`).

        ``parent``: the operation this one belongs under (frameworks that keep their run
        tree by id), or a ``SpanContext``; None means the current span. With
        ``parent_as_fallback`` the current span wins when it is in the parent's trace
        (code of the caller's nests deeper), and the parent is used from elsewhere.
        Returns a false, inert operation when suppressed or on a fault of ours.
        """
        try:
            if suppressed():
                return NOOP
            settings = config.settings()
            context = _parent_context(parent, parent_as_fallback)
            if isinstance(parent, Operation) and context is not None:
                parent_op: Optional[Operation] = parent
            else:
                found = otel_context.get_value(CURRENT, context)
                parent_op = found if isinstance(found, Operation) else None
            if foreign.pending[0]:
                foreign.install()
            if isinstance(record, LLMInvocation):
                owner = otel_context.get_value(CLAIM, context)
                if isinstance(owner, Operation) and not owner.ended:
                    return Contribution(self, record, owner)
                _inherit(record, parent_op)
                if not settings.capture_content:
                    _hold_lightly(record)
                span = self.tracer.start_span(
                    utf8(mapping.llm_span_name(record)), context=context, kind=SpanKind.CLIENT,
                    attributes=mapping.llm_request(record, settings))
                op = Operation(self, record, span, parent_op)
                _ours(op, span)
                return op
            elif isinstance(record, ToolInvocation):
                _inherit(record, parent_op)
                if not settings.content_on_span:  # recorded nowhere: not held while the tool runs
                    record.arguments = None
                name = mapping.tool_span_name(record)
                span = self.tracer.start_span(
                    mapping.span_name(name, settings.content_max_length),
                    context=context, kind=SpanKind.INTERNAL, attributes=mapping.tool_start(record, settings))
            else:
                _inherit(record, parent_op)
                if not _step_content_recorded(record, settings):
                    record.inputs = record.query = record.input_messages = None
                # a call to a service: creating an agent (both profiles), a retrieval (v1.41)
                kind = SpanKind.CLIENT if record.operation == "create_agent" or (
                    record.operation == "retrieval" and not settings.latest_semconv) else SpanKind.INTERNAL
                name = mapping.step_span_name(record)
                span = self.tracer.start_span(
                    mapping.span_name(name, settings.content_max_length),
                    context=context, kind=kind, attributes=mapping.step_start(record, settings))
            op = Operation(self, record, span, parent_op)
            op.start_name = name
            return op
        except Exception as exc:  # noqa: BLE001
            report("recorder.start", exc)
            return NOOP

    def wants_output(self, record: Any) -> bool:
        settings = config.settings()
        return settings.capture_content or (settings.estimates and not getattr(record, "usage_expected", True))

    # ---- end ---------------------------------------------------------------------------

    @guarded
    def finish(self, op: Operation, error: Optional[BaseException], reason: Optional[str]) -> None:
        """The one end of every operation (called once, by ``end`` or ``fail``)."""
        record = op.record
        if error is not None and record.error_type is None:
            record.error_type = _error_type(error)
        if isinstance(op, Contribution):
            self._contribute(op)
        elif isinstance(record, LLMInvocation):
            self._finish_llm(op, error, reason)
        else:
            self._finish_other(op, error, reason)

    def _contribute(self, op: Contribution) -> None:
        """An SDK call under a claim: its data goes to the claiming operation."""
        _sum_contributions(op)  # calls made under this one's own claim
        self._add_contribution(op.owner, op.record)

    def _add_contribution(self, owner: Operation, sdk: LLMInvocation) -> None:
        contributions = owner.contributions
        if contributions is None:
            contributions = owner.contributions = []
        contributions.append(sdk)
        record = owner.record
        for name in _MERGED_FIELDS:
            value = getattr(sdk, name)
            if value is not None and getattr(record, name) is None:
                setattr(record, name, value)
        if record.output_messages is None and record.output_converter is None:
            record.output_source, record.output_converter = sdk.output_source, sdk.output_converter
        for key, value in sdk.provider_extras.items():
            record.provider_extras.setdefault(key, value)
        span = owner.span
        if span is not None and span.is_recording() and sdk.error_type is None:
            known = span.attributes
            request = mapping.llm_request(sdk, config.settings())
            span.set_attributes({k: v for k, v in request.items()  # parameters the framework did not know
                                 if k not in known and k not in (sc.OPERATION_NAME, sc.PROVIDER_NAME)})

    def _finish_llm(self, op: Operation, error: Optional[BaseException], reason: Optional[str]) -> None:
        end_ns, end_perf = time.time_ns(), time.perf_counter()
        inv: LLMInvocation = op.record
        span = op.span
        if error is not None and span is not None:
            _record_exception(span, error)
        _drop_impossible_counts(inv)
        _sum_contributions(op)
        settings = config.settings()
        counted = not inv.counted_elsewhere and inv.operation != "fetch_response"
        estimate = settings.estimates and counted and inv.error_type is None
        need_in = estimate and inv.input_tokens is None
        need_out = estimate and inv.output_tokens is None and inv.operation != "embeddings"
        capture = settings.capture_content
        if capture or need_in:
            _convert(inv, "input")
        if capture or need_out:
            _convert(inv, "output")
        if error is not None or reason in mapping.END_REASONS:
            _interrupted(inv)
        need_in = need_in and bool(inv.input_messages or inv.system_instructions or inv.input_texts)
        need_out = need_out and bool(inv.output_messages)
        if counted and _at_once_hooks:
            _run_hooks(_at_once_hooks, inv)
        encoding = tokens.encoding(inv.request_model) if need_in or need_out else None
        loading = [p for p in _hook_preloads if not p.ready()] if counted else []
        if encoding is None and (need_in or need_out) or loading:
            self._finish_when_loaded(op, need_in, need_out, loading, end_ns, end_perf, reason)
        else:
            self._complete_llm(op, encoding, need_in, need_out, end_ns, end_perf, reason)

    def _finish_when_loaded(self, op: Operation, need_in: bool, need_out: bool, loading: List[Preload],
                            end_ns: int, end_perf: float, reason: Optional[str]) -> None:
        """What the end needs is still loading: never wait on the caller's thread. The rest
        runs when the last load answers, in a copy of this context (usage() blocks count where
        the call ran) and with this end time; the span stays open until then."""
        context, caller = contextvars.copy_context(), threading.get_ident()
        _count_deferred(op.trace_id, 1)
        found: List[Any] = []
        counting = need_in or need_out
        remaining = [len(loading) + counting]
        lock = threading.Lock()

        def answered() -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if not last:
                return
            encoding = found[0] if found else None
            _count_deferred(op.trace_id, -1)  # before the span ends: its export may look
            if threading.get_ident() == caller:
                self._complete_llm(op, encoding, need_in, need_out, end_ns, end_perf, reason)
            else:
                context.run(self._complete_llm, op, encoding, need_in, need_out, end_ns, end_perf, reason)

        if counting:
            tokens.when_loaded(op.record.request_model, lambda encoding: (found.append(encoding), answered()))
        for needed in loading:
            needed.when_ready(answered)

    def _complete_llm(self, op: Operation, encoding: Any, need_in: bool, need_out: bool, end_ns: int,
                      end_perf: float, reason: Optional[str]) -> None:
        inv: LLMInvocation = op.record
        span = op.span
        settings = config.settings()
        counted = not inv.counted_elsewhere and inv.operation != "fetch_response"
        try:
            if encoding is not None:
                try:
                    _estimate(inv, encoding, need_in, need_out)
                except Exception as exc:  # noqa: BLE001 - the hooks still run: usage() waits for them
                    report("token estimate", exc)
            if counted:
                _credit_agents(op)
                _run_hooks(_end_hooks, inv)
            if span is not None and span.is_recording():
                limit = settings.content_max_length
                first_chunk = op.chunk_perfs[0] - op.start_perf if op.chunk_perfs else None
                attrs = mapping.llm_response(inv, first_chunk, settings)
                known = span.attributes
                for key in _SET_AT_START:  # unless learnt since (a framework's SDK call)
                    if key in attrs and known.get(key) == attrs[key]:
                        del attrs[key]
                if reason in mapping.END_REASONS:
                    attrs[mapping.END_REASONS[reason]] = True
                span.set_attributes(attrs)
                if inv.error_type is not None:
                    _set_error_status(span, inv.error_type)
                if settings.content_on_span:
                    span.set_attributes(mapping.llm_content(inv, limit, structured=False))
                if settings.content_in_event and inv.operation in sc.INFERENCE_OPERATIONS:
                    self.events.emit(sc.CONTENT_EVENT, {**span.attributes, **mapping.llm_content(
                        inv, limit, structured=True)}, span.get_span_context(), end_ns)
        finally:  # a record we cannot read must not leave its span open
            if span is not None:
                span.end(end_time=end_ns)
        if not inv.counted_elsewhere:
            self.instruments.record_llm(op, mapping.llm_metric_attributes(inv), end_perf - op.start_perf,
                                        settings)

    def _finish_other(self, op: Operation, error: Optional[BaseException], reason: Optional[str]) -> None:
        seconds = time.perf_counter() - op.start_perf
        record = op.record
        span = op.span
        settings = config.settings()
        try:
            if span is None or not span.is_recording():
                return
            if error is not None:
                _record_exception(span, error)
            limit = settings.content_max_length
            if isinstance(record, ToolInvocation):
                attrs = mapping.tool_start(record, settings)
                content = mapping.tool_content(record, limit) if settings.content_on_span else None
            else:
                name = mapping.step_span_name(record)
                if name != op.start_name:  # named late (an agent learnt its name while running)
                    span.update_name(mapping.span_name(name, limit))
                attrs = mapping.step_end(record, settings)
                recorded = _step_content_recorded(record, settings)
                if recorded and record.messages_converter is not None:
                    _convert_step(record)
                content = mapping.step_content(record, limit, settings.latest_semconv) if recorded else None
            if reason in mapping.END_REASONS:
                attrs[mapping.END_REASONS[reason]] = True
            attrs = _changed(span, attrs)
            if attrs:
                span.set_attributes(attrs)
            if content:
                span.set_attributes(content)
            if record.error_type is not None:
                _set_error_status(span, record.error_type)
        finally:
            if span is not None:
                span.end()
        self._record_other(record, seconds)

    def _record_other(self, record: Any, seconds: float) -> None:
        """The agent and tool durations (v0.1.0 defines them; recorded in both profiles)."""
        if isinstance(record, ToolInvocation):
            attrs: Dict[str, Any] = {sc.TOOL_NAME: record.name}
            _optional(attrs, sc.TOOL_TYPE, record.tool_type)
            _optional(attrs, sc.AGENT_NAME, record.agent_name)
            _optional(attrs, sc.ERROR_TYPE, record.error_type)
            self.instruments.record_tool(exportable(attrs), seconds)
        elif record.operation in ("invoke_agent", "invoke_workflow"):
            attrs = {sc.OPERATION_NAME: record.operation}
            _optional(attrs, sc.AGENT_NAME, record.agent_name)
            _optional(attrs, sc.REQUEST_MODEL, record.request_model)
            _optional(attrs, sc.ERROR_TYPE, record.error_type)
            self.instruments.record_agent(exportable(attrs), seconds)

    @guarded
    def agent_event(self, op: Operation, finished: bool, tool_name: Optional[str], arguments: Any,
                    output: Any) -> None:
        span = op.span
        if span is None or op.ended or not span.is_recording():
            return
        settings = config.settings()
        attrs = mapping.agent_event(tool_name, arguments, output, settings.content_on_span,
                                    settings.content_max_length)
        span.add_event(sc.AGENT_FINISH_EVENT if finished else sc.AGENT_ACTION_EVENT, attrs)

    # ---- GenAI spans recorded by others (see core/foreign.py) ----------------------------

    def foreign_relation(self, span_id: int, parent_id: Optional[int]) -> Any:
        """What a finished foreign GenAI span is to our calls: ``"duplicate"`` (it wraps one
        of our LLM calls, or runs inside one that is not a claim: the same API call traced
        twice), the open claiming operation it is the SDK call of, or None (a call of its own)."""
        if span_id in _wrapping_ours:
            return "duplicate"
        op = _our_llm_spans.get(parent_id) if parent_id is not None else None
        if op is None:
            return None
        return op if op.claims and not op.ended else "duplicate"

    @guarded
    def contribute_foreign(self, owner: Operation, inv: LLMInvocation) -> None:
        self._add_contribution(owner, inv)

    @guarded
    def count_foreign(self, inv: LLMInvocation, seconds: float, metrics: bool) -> None:
        """A foreign call through our end of call: cost and usage() (in the context it
        started in), and the metrics unless its scope records them itself."""
        _run_hooks(_at_once_hooks, inv)
        loading = [p for p in _hook_preloads if not p.ready()]
        if loading:  # the price table is still loading: count when it is, off this thread
            context = contextvars.copy_context()
            remaining = [len(loading)]
            lock = threading.Lock()

            def answered() -> None:
                with lock:
                    remaining[0] -= 1
                    last = remaining[0] == 0
                if last:
                    context.run(self._count_foreign, inv, seconds, metrics)

            for needed in loading:
                needed.when_ready(answered)
            return
        self._count_foreign(inv, seconds, metrics)

    def _count_foreign(self, inv: LLMInvocation, seconds: float, metrics: bool) -> None:
        _drop_impossible_counts(inv)
        _run_hooks(_end_hooks, inv)
        if metrics:
            done = Operation(self, inv, None)
            done.start_perf = 0.0
            self.instruments.record_llm(done, mapping.llm_metric_attributes(inv), seconds, config.settings())

    @guarded
    def evaluation(self, span_context: Any, name: str, value: Any, reason: Optional[str]) -> None:
        """A feedback score as the conventions' ``gen_ai.evaluation.result`` event, parented
        to the span it evaluates."""
        self.events.emit(sc.EVALUATION_EVENT, mapping.evaluation(name, value, reason,
                                                                 config.settings().content_max_length),
                         span_context)


# ---- helpers (module level: no self lookups on the hot path) ---------------------------


def _optional(attrs: Dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attrs[key] = value


def _ancestors(op: Optional[Operation]) -> Any:
    while op is not None:
        yield op
        op = op.parent


def _inherit(record: Any, parent: Optional[Operation]) -> None:
    """What a record takes from the operations it runs under: the conversation it belongs
    to and, for a tool, the agent it runs for."""
    wants_agent = isinstance(record, ToolInvocation) and record.agent_name is None
    if record.conversation_id is not None and not wants_agent:
        return
    for op in _ancestors(parent):
        above = op.record
        if record.conversation_id is None and getattr(above, "conversation_id", None) is not None:
            record.conversation_id = above.conversation_id
        if wants_agent and isinstance(above, StepInvocation) and above.operation == "invoke_agent" \
                and above.agent_name is not None:
            record.agent_name, wants_agent = above.agent_name, False
        if record.conversation_id is not None and not wants_agent:
            return


class _Weak:
    """Content held only as long as its owner holds it: an open run whose content is not
    captured keeps no copy of it alive (it is read, if at all, for a local token count when
    the run ends, and the run's own code holds it until then)."""

    __slots__ = ("refs",)

    def __init__(self, refs: List[Any]) -> None:
        self.refs = refs

    def get(self) -> Any:
        items = [ref() for ref in self.refs]
        return None if any(item is None for item in items) else items


def _hold_lightly(record: LLMInvocation) -> None:
    source = record.input_source
    if isinstance(source, (list, tuple)) and source:
        try:
            record.input_source = _Weak([weakref.ref(item) for item in source])
        except TypeError:  # an item that cannot be weakly referenced (a str): kept as it is
            pass


def _step_content_recorded(step: StepInvocation, settings: Any) -> bool:
    """A step's content lands on its span when the user asked (``@track``) or capture puts
    content on spans; the conventions' details event is for inference only."""
    forced = step.capture_content
    return forced if forced is not None else settings.content_on_span


_SET_AT_START = (sc.SERVER_ADDRESS, sc.SERVER_PORT)


def _changed(span: Any, attrs: Dict[str, Any]) -> Dict[str, Any]:
    """What ``attrs`` adds to the span's attributes (most were set at its start: setting
    them again costs the SDK's validation of each)."""
    known = getattr(span, "attributes", None)
    if not known:
        return attrs
    return {key: value for key, value in attrs.items()
            if known.get(key) != (tuple(value) if isinstance(value, list) else value)}


def _interrupted(inv: LLMInvocation) -> None:
    """A call cut short (an error, an early close, abandoned): every expected finish reason
    is ``error``, also on output messages that arrived without one."""
    if not inv.finish_reasons:
        inv.finish_reasons = ["error"]
    for message in inv.output_messages or ():
        if isinstance(message, dict) and not message.get("finish_reason"):
            message["finish_reason"] = "error"


_credit_lock = ForkSafeLock()
# our LLM spans by span id, and the ids of the spans they started under: a foreign GenAI span
# that is one of those parents, or a child of ours, is the same call (core/foreign.py)
_our_llm_spans: "weakref.WeakValueDictionary[int, Operation]" = weakref.WeakValueDictionary()
_wrapping_ours: "OrderedDict[int, None]" = OrderedDict()
_MAX_WRAPPING = 10_000


def _ours(op: Operation, span: Any) -> None:
    try:
        _our_llm_spans[span.get_span_context().span_id] = op
        parent = getattr(span, "parent", None)
        if parent is not None:
            with _credit_lock:
                _wrapping_ours[parent.span_id] = None
                if len(_wrapping_ours) > _MAX_WRAPPING:
                    _wrapping_ours.popitem(last=False)
    except Exception as exc:  # noqa: BLE001 - a span without the SDK's parts
        report("recorder: our spans", exc)


def _credit_agents(op: Operation) -> None:
    """An agent (or workflow) totals the usage of the model calls made under it, and knows
    its provider and model from them when it was not told; embeddings (a RAG tool's index
    lookups) are no part of its model's usage."""
    inv: LLMInvocation = op.record
    if inv.operation == "embeddings":
        return
    agents = [a.record for a in _ancestors(op.parent) if isinstance(a.record, StepInvocation)
              and a.record.operation in ("invoke_agent", "invoke_workflow") and not a.ended]
    if not agents:
        return
    with _credit_lock:
        for agent in agents:
            if inv.input_tokens is not None:
                agent.input_tokens = (agent.input_tokens or 0) + inv.input_tokens
            if inv.output_tokens is not None:
                agent.output_tokens = (agent.output_tokens or 0) + inv.output_tokens
            if agent.provider is None:
                agent.provider = inv.provider
            if agent.request_model is None:
                agent.request_model = inv.request_model


def _parent_context(parent: Any, as_fallback: bool) -> Any:
    if parent is None:
        return None
    if isinstance(parent, SpanContext):
        return trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())
    span = getattr(parent, "span", None)
    if span is None:
        return None
    if as_fallback:
        current = trace.get_current_span()
        if current.is_recording() and \
                current.get_span_context().trace_id == span.get_span_context().trace_id:
            return None
        return trace.set_span_in_context(span)
    return trace.set_span_in_context(span, otel_context.get_current())


_CONVERTER_FIELDS = {"input": ("input_converter", "input_source"), "output": ("output_converter", "output_source")}


def _convert(inv: LLMInvocation, which: str) -> None:
    """Run the record's input or output converter once (content stays raw until needed)."""
    converter_name, source_name = _CONVERTER_FIELDS[which]
    convert = getattr(inv, converter_name)
    if convert is None:
        return
    source = getattr(inv, source_name)
    setattr(inv, converter_name, None)
    setattr(inv, source_name, None)
    if isinstance(source, _Weak):
        source = source.get()
        if source is None:  # let go of by its owner (an abandoned run): nothing to convert
            return
    try:
        convert(source, inv)
    except Exception as exc:  # noqa: BLE001 - the record still ends, without that content
        report(f"{which} content of {inv.provider} {inv.operation}", exc)


def _convert_step(step: StepInvocation) -> None:
    """A step's content as conversation messages (an agent's input and answer)."""
    convert, step.messages_converter = step.messages_converter, None
    try:
        convert(step)
    except Exception as exc:  # noqa: BLE001 - the step still ends, with its raw content
        report(f"messages of {step.name}", exc)


_COUNT_FIELDS = _USAGE_FIELDS + ("audio_input_tokens", "audio_output_tokens")


def _drop_impossible_counts(inv: LLMInvocation) -> None:
    """A token count that is not a whole number >= 0 (a malformed response, a proxy's bug) is
    no count: recorded nowhere, summed nowhere (the metric SDK would reject it with a warning)."""
    for name in _COUNT_FIELDS:
        value = getattr(inv, name)
        if value is not None and (type(value) is not int or value < 0):
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(inv, name, int(value))  # an int subclass: its plain value
            else:
                setattr(inv, name, None)


def _sum_contributions(op: Operation) -> None:
    """A framework call that made several SDK calls stands for all of them: their usage adds
    up (the API's own numbers beat what the framework reported for the same calls)."""
    sdk_calls = op.contributions
    if not sdk_calls:
        return
    inv: LLMInvocation = op.record
    inv.requests = len(sdk_calls)
    reported = [c for c in sdk_calls if c.input_tokens is not None or c.output_tokens is not None]
    if not reported:
        return
    for name in _USAGE_FIELDS:
        values = [getattr(c, name) for c in reported if getattr(c, name) is not None]
        setattr(inv, name, sum(values) if values else None)


def _estimate(inv: LLMInvocation, encoding: Any, need_in: bool, need_out: bool) -> None:
    """Count tokens locally (never reported as the API's usage: see mapping.llm_response)."""
    if need_in:
        if inv.input_messages or inv.system_instructions:
            messages = list(inv.input_messages or ())
            if inv.system_instructions:
                messages.insert(0, {"role": "system", "parts": inv.system_instructions})
            inv.estimated_input_tokens = tokens.count_messages(encoding, messages)
        elif inv.input_texts:
            inv.estimated_input_tokens = sum(tokens.count_text(encoding, t) for t in inv.input_texts)
    if need_out and inv.output_messages:
        inv.estimated_output_tokens = tokens.count_output(encoding, inv.output_messages)


def _error_type(error: BaseException) -> str:
    return type(error).__qualname__


def _describe(error: BaseException) -> str:
    try:
        return scrub_secrets(f"{type(error).__qualname__}: {error}")
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        return type(error).__qualname__


def _record_exception(span: Any, error: BaseException) -> None:
    """The exception event and ERROR status, credentials masked: an SDK error's message can
    echo an API key or auth header the app sent."""
    try:
        message = scrub_secrets(str(error))
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        message = ""
    try:
        stack = scrub_secrets("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    except Exception:  # noqa: BLE001
        stack = ""
    try:
        span.record_exception(error, attributes={"exception.message": message, "exception.stacktrace": stack})
    except Exception as exc:  # noqa: BLE001 - the status below still says it failed
        report("record exception", exc)
    span.set_status(Status(StatusCode.ERROR, _describe(error)))


def _set_error_status(span: Any, error_type: str) -> None:
    """Any ``error.type`` means status ERROR; an exception's own description wins."""
    status = getattr(span, "status", None)
    if status is None or status.status_code is not StatusCode.ERROR:
        span.set_status(Status(StatusCode.ERROR, str(error_type)))


# ---- one recorder per provider pair ------------------------------------------------------

_recorders: Dict[Tuple[Any, Any, Any], Recorder] = {}
_global: List[Recorder] = []


def _key(provider: Any) -> Any:
    if provider is None:
        return None
    try:
        return weakref.ref(provider)
    except TypeError:
        return provider  # cannot be weakly referenced: kept as it is


def get_recorder(tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None) -> Recorder:
    """The recorder for these providers (None = the global ones), built once per set.

    Keyed by the providers themselves (weakly, dropped when they go), never by ``id()``:
    a new provider that reuses a freed one's id must not inherit its dead pipeline.
    """
    if tracer_provider is None and meter_provider is None and logger_provider is None:
        if not _global:
            _global.append(Recorder())
        return _global[0]
    key = (_key(tracer_provider), _key(meter_provider), _key(logger_provider))
    recorder = _recorders.get(key)
    if recorder is None:
        recorder = _recorders.setdefault(key, Recorder(tracer_provider, meter_provider, logger_provider))
        for part in key:
            if isinstance(part, weakref.ref) and part() is not None:
                weakref.finalize(part(), _recorders.pop, key, None)
    return recorder


PROVIDER_OPTIONS = ("tracer_provider", "meter_provider", "logger_provider")


def recorder_for(options: Dict[str, Any]) -> Recorder:
    """The recorder for an instrumentor's ``instrument(**options)``."""
    return get_recorder(*(options.get(name) for name in PROVIDER_OPTIONS))
