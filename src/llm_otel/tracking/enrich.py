"""Span- and trace-level data added while the code runs, and feedback that comes later.

Where each lands (OTel spans are read-only once ended, and the root may end last):

- ``update_current_span``: the current span. For a ``@track`` span the change goes to its
  record too, so the end of the span does not overwrite it.
- ``update_current_trace``: the trace's local root - the first ``@track`` span of this
  trace in this process - while it is open. Once it has ended, a span event
  ``llm_otel.trace.update`` on the current span carries the same attributes; with no
  recording span at hand, a small span ``llm_otel.trace.update`` in the same trace.
- ``record_feedback``: on the open root as above, else a small span ``feedback`` whose
  trace id is the original one, a child of the original root (remembered here for the
  last 10 000 traces) through a non-recording parent SpanContext.

Attribute names: ``session.id``, ``user.id``, ``llm_otel.tags`` (string array),
``llm_otel.metadata.<key>``, ``llm_otel.feedback.<name>.value`` / ``.reason``,
``llm_otel.input`` / ``llm_otel.output``.

Every value goes through the core's one attribute path (credentials masked, values cut
once, exportable), whichever of the places above it lands in.

These functions never raise: a bad argument is logged as one warning line and skipped.
Without a configured OpenTelemetry SDK there are no traces: ``get_current_trace_id()`` is
None and the others do nothing (quietly).
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

from llm_otel import config
from llm_otel.core import StepInvocation, get_recorder, guarded
from llm_otel.core import mapping
from llm_otel.core import semconv as sc
from llm_otel.tracking import state
from llm_otel.tracking.serialize import to_jsonable

logger = logging.getLogger("llm_otel")

_UNSET: Any = object()

FeedbackScore = Dict[str, Any]  # {"name": str, "value": float | int | bool | str, "reason": str | None}


class _BadArgument(ValueError):
    """A user argument we cannot record: said in one warning line, not a traceback."""


def _score(name: Any, value: Any, reason: Any = None) -> Tuple[str, Tuple[Any, Optional[str]]]:
    if not isinstance(name, str) or not name:
        raise _BadArgument(f"a feedback score needs a non-empty string name, got {name!r}")
    if isinstance(value, bool) or isinstance(value, str):
        pass
    elif isinstance(value, numbers.Real):
        value = float(value)
    else:
        raise _BadArgument(f"feedback {name!r}: value must be a number, bool or str, not {type(value).__name__}")
    return name, (value, None if reason is None else str(reason))


def _metadata(metadata: Any) -> Optional[Dict[str, Any]]:
    if not metadata:
        return None
    if not isinstance(metadata, dict):
        raise _BadArgument(f"metadata must be a dict, not {type(metadata).__name__}")
    return metadata


def _tags(tags: Optional[Iterable[Any]]) -> List[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        return [tags]
    return [str(t) for t in tags]


def _merge_tags(existing: Any, new: Sequence[str]) -> Optional[List[str]]:
    merged = list(existing) if isinstance(existing, (list, tuple)) else []
    for tag in new:
        if tag not in merged:
            merged.append(tag)
    return merged or None


def _apply(step: StepInvocation, tags: Sequence[str], metadata: Optional[Dict[str, Any]],
           scores: Optional[Dict[str, Any]] = None, user_id: Any = None, session_id: Any = None) -> None:
    """Add trace/span data to a step record (written on its span when it ends)."""
    if tags:
        step.tags = _merge_tags(step.tags, tags)
    if metadata:
        step.metadata = {**(step.metadata or {}), **metadata}
    if scores:
        step.scores = {**(step.scores or {}), **scores}
    if user_id is not None:
        step.user_id = str(user_id)
    if session_id is not None:
        step.session_id = str(session_id)


def _attributes(step: StepInvocation) -> Dict[str, Any]:
    """What a step record's data looks like as attributes, through the core's one path."""
    settings = config.settings()
    return {**mapping.step_end(step, settings), **mapping.step_content(step, settings.content_max_length)}


def _warn(where: str, exc: _BadArgument) -> None:
    logger.warning("llm_otel.%s: %s; skipped", where, exc)


# ---- update_current_span ---------------------------------------------------------------


@guarded
def update_current_span(name: Optional[str] = None, tags: Optional[Sequence[str]] = None,
                        metadata: Optional[Dict[str, Any]] = None, input: Any = _UNSET,
                        output: Any = _UNSET) -> None:
    """Rename the current span, add tags and metadata, or set its input / output.

    ``input`` / ``output`` replace what ``@track`` captured (they are recorded even when
    capture is off: passing them is asking for them).
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    try:
        metadata = _metadata(metadata)
    except _BadArgument as exc:
        _warn("update_current_span", exc)
        metadata = None
    limit = config.settings().content_max_length
    tracked = state.by_span(span.get_span_context().span_id)
    if tracked is not None:  # a @track span: its record, written when it ends
        step = tracked.op.record
        if name:
            step.name = str(name)
        _apply(step, _tags(tags), metadata)
        if input is not _UNSET:
            step.inputs = to_jsonable(input, limit)
            step.capture_content = tracked.input_set = True
        if output is not _UNSET:
            step.outputs = to_jsonable(output, limit)
            step.capture_content = tracked.output_set = True
        return
    # any other span (an LLM span, the app's own): the same values, written now
    update = StepInvocation(tags=_merge_tags(_span_attribute(span, sc.TAGS), _tags(tags)) if tags else None,
                            metadata=metadata)
    if input is not _UNSET:
        update.inputs = to_jsonable(input, limit)
    if output is not _UNSET:
        update.outputs = to_jsonable(output, limit)
    if name:
        span.update_name(mapping.span_name(str(name), limit))
    attrs = _attributes(update)
    if attrs:
        span.set_attributes(attrs)


def _span_attribute(span: Any, key: str) -> Any:
    attributes = getattr(span, "attributes", None)  # SDK spans expose them read-only
    try:
        return attributes.get(key) if attributes is not None else None
    except Exception:  # noqa: BLE001
        return None


# ---- update_current_trace --------------------------------------------------------------


@guarded
def update_current_trace(tags: Optional[Sequence[str]] = None, metadata: Optional[Dict[str, Any]] = None,
                         feedback_scores: Optional[Sequence[FeedbackScore]] = None,
                         user_id: Optional[str] = None, session_id: Optional[str] = None) -> None:
    """Add trace-level data: tags, metadata, feedback scores, user and session ids.

    Lands on the trace's local root span while it is open; after that, as an event
    ``llm_otel.trace.update`` on the current span (see the module docstring).
    """
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if not ctx.is_valid:
        logger.debug("llm_otel: update_current_trace() outside any trace; nothing recorded")
        return
    try:
        metadata = _metadata(metadata)
    except _BadArgument as exc:
        _warn("update_current_trace", exc)
        metadata = None
    scores: Dict[str, Any] = {}
    for score in feedback_scores or ():
        try:
            if not isinstance(score, dict):
                raise _BadArgument(f"a feedback score is a dict with name and value, not {type(score).__name__}")
            key, value = _score(score.get("name"), score.get("value"), score.get("reason"))
            scores[key] = value
        except _BadArgument as exc:
            _warn("update_current_trace", exc)
    _record_on_trace(ctx, span, _tags(tags), metadata, scores, user_id, session_id)


def _evaluations(span_context: SpanContext, scores: Dict[str, Any]) -> None:
    """Each score also as the conventions' ``gen_ai.evaluation.result`` event on that span."""
    recorder = get_recorder()
    for name, (value, reason) in scores.items():
        recorder.evaluation(span_context, name, value, reason)


def _record_on_trace(ctx: SpanContext, span: Any, tags: List[str], metadata: Optional[Dict[str, Any]],
                     scores: Dict[str, Any], user_id: Any = None, session_id: Any = None) -> None:
    root = state.trace_root(ctx.trace_id)
    if scores:
        _evaluations(root.op.span.get_span_context() if root is not None else ctx, scores)
    if root is not None:
        _apply(root.op.record, tags, metadata, scores, user_id, session_id)
        return
    update = StepInvocation()
    _apply(update, tags, metadata, scores, user_id, session_id)
    attrs = _attributes(update)
    if not attrs:
        return
    if span is not None and span.is_recording():
        span.add_event(sc.TRACE_UPDATE_EVENT, attrs)
        return
    update.name, update.kind = sc.TRACE_UPDATE_EVENT, "trace_update"
    _correlated_span(update, ctx)


def _correlated_span(step: StepInvocation, parent: SpanContext) -> None:
    """A small span in ``parent``'s trace, whatever the current context is."""
    get_recorder().start(step, parent=parent).end()


# ---- record_feedback -------------------------------------------------------------------


TraceRef = Union[int, str, SpanContext, Any]


@guarded
def record_feedback(trace_id_or_span_context: TraceRef, name: str, value: Union[float, int, bool, str],
                    reason: Optional[str] = None) -> None:
    """Attach a feedback score to a trace, also after the trace has ended.

    ``trace_id_or_span_context``: a trace id (int or 32 hex digits, as
    :func:`get_current_trace_id` returns), a ``SpanContext`` or a span. The score is
    ``llm_otel.feedback.<name>.value`` (and ``.reason``): on the trace's root while it is
    open, else on a span ``feedback`` in the original trace, under its root. ``None`` (the
    trace id outside any trace, e.g. with no SDK configured) records nothing.
    """
    if trace_id_or_span_context is None:
        logger.debug("llm_otel: record_feedback(None, ...): no trace to attach %r to; nothing recorded", name)
        return
    try:
        trace_id, parent = _resolve(trace_id_or_span_context)
        key, score = _score(name, value, reason)
    except _BadArgument as exc:
        _warn("record_feedback", exc)
        return
    scores = {key: score}
    root = state.trace_root(trace_id)
    if root is not None:  # the evaluation record goes to the span evaluated, the score to the open root
        _evaluations(parent if parent is not None else root.op.span.get_span_context(), scores)
        _apply(root.op.record, [], None, scores)
        return
    if parent is None:
        parent = state.ended_root(trace_id)
    if parent is None:
        # the root is unknown here: a stand-in parent id derived from the trace id, so
        # that every late score of one trace shares it; backends list it under the trace
        parent = SpanContext(trace_id, (trace_id & 0xFFFFFFFFFFFFFFFF) or 1, is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED))
    _evaluations(parent, scores)
    # no generic llm_otel.feedback.name/value: a score called "name" or "value" would make
    # one key both a leaf and a branch for backends that nest dotted keys (Phoenix)
    _correlated_span(StepInvocation(name="feedback", kind="feedback", scores=scores), parent)


def _resolve(ref: TraceRef) -> Tuple[int, Optional[SpanContext]]:
    if isinstance(ref, SpanContext):
        if not ref.is_valid:
            raise _BadArgument("record_feedback: the SpanContext is not valid")
        return ref.trace_id, SpanContext(ref.trace_id, ref.span_id, is_remote=True,
                                         trace_flags=ref.trace_flags, trace_state=ref.trace_state)
    get_context = getattr(ref, "get_span_context", None)
    if callable(get_context):
        return _resolve(get_context())
    if isinstance(ref, str):
        text = ref.strip().lower()
        if text.startswith("0x"):
            text = text[2:]
        try:
            trace_id = int(text, 16)
        except ValueError:
            raise _BadArgument(f"{ref!r} is not a trace id (32 hex digits)") from None
    elif isinstance(ref, int) and not isinstance(ref, bool):
        trace_id = ref
    else:
        raise _BadArgument(f"expected a trace id or SpanContext, not {type(ref).__name__}")
    if not 0 < trace_id < 2 ** 128:
        raise _BadArgument(f"{ref!r} is not a valid trace id")
    return trace_id, None


def get_current_trace_id() -> Optional[str]:
    """The current trace id as 32 hex digits (what backends show), or None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None
