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

These functions never raise: a bad argument is logged (once per place) and skipped.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from llm_otel import config
from llm_otel.core import semconv as sc
from llm_otel.core.content import to_json
from llm_otel.core.guard import guarded
from llm_otel.core.invocation import StepInvocation
from llm_otel.core.recorder import get_recorder
from llm_otel.tracking import state
from llm_otel.tracking.serialize import to_jsonable

logger = logging.getLogger("llm_otel")

_UNSET: Any = object()

FeedbackScore = Dict[str, Any]  # {"name": str, "value": float | int | bool | str, "reason": str | None}


# ---- attribute values ------------------------------------------------------------------


def _attr_value(value: Any) -> Any:
    """An OTel attribute value, as the core writes them: primitives and string lists as
    they are, anything else as capped JSON text."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    limit = config.settings().content_max_length
    return to_json(to_jsonable(value, limit), limit)


def _metadata_attributes(metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if not metadata:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    return {sc.METADATA_PREFIX + str(key): _attr_value(value)
            for key, value in metadata.items() if value is not None}


def _feedback_attributes(name: Any, value: Any, reason: Any = None) -> Dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a feedback score needs a non-empty string name, got {name!r}")
    if isinstance(value, bool) or isinstance(value, str):
        pass
    elif isinstance(value, numbers.Real):
        value = float(value)
    else:
        raise TypeError(f"feedback {name!r}: value must be a number, bool or str, not {type(value).__name__}")
    attrs: Dict[str, Any] = {f"{sc.FEEDBACK_PREFIX}{name}.value": value}
    if reason is not None:
        attrs[f"{sc.FEEDBACK_PREFIX}{name}.reason"] = str(reason)
    return attrs


def _tags(tags: Optional[Iterable[Any]]) -> List[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        return [tags]
    return [str(t) for t in tags]


def _merge_tags(existing: Any, new: Sequence[str]) -> List[str]:
    merged = list(existing) if isinstance(existing, (list, tuple)) else []
    for tag in new:
        if tag not in merged:
            merged.append(tag)
    return merged


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
    tracked = state.by_span(span.get_span_context().span_id)
    step = tracked.step if tracked is not None else None
    attrs = _metadata_attributes(metadata)
    new_tags = _tags(tags)
    if new_tags:
        existing = step.attributes.get(sc.TAGS) if step is not None else _span_attribute(span, sc.TAGS)
        attrs[sc.TAGS] = _merge_tags(existing, new_tags)
    limit = config.settings().content_max_length
    if name:
        span.update_name(str(name))
        if step is not None:
            step.name = str(name)
    if step is not None:
        step.attributes.update(attrs)
        if input is not _UNSET:
            step.inputs = to_jsonable(input, limit)
            step.capture_content = True
            tracked.input_set = True  # type: ignore[union-attr]
        if output is not _UNSET:
            step.outputs = to_jsonable(output, limit)
            step.capture_content = True
            tracked.output_set = True  # type: ignore[union-attr]
    else:
        if input is not _UNSET:
            attrs[sc.INPUT] = to_json(to_jsonable(input, limit), limit)
        if output is not _UNSET:
            attrs[sc.OUTPUT] = to_json(to_jsonable(output, limit), limit)
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
    attrs = _metadata_attributes(metadata)
    for score in feedback_scores or ():
        try:
            attrs.update(_feedback_attributes(score.get("name"), score.get("value"), score.get("reason")))
        except (AttributeError, TypeError, ValueError) as exc:
            logger.warning("llm_otel: feedback score %r skipped: %s", score, exc)
    if user_id is not None:
        attrs[sc.USER_ID] = str(user_id)
    if session_id is not None:
        attrs[sc.SESSION_ID] = str(session_id)
    new_tags = _tags(tags)
    _record_on_trace(ctx, span, attrs, new_tags)


def _record_on_trace(ctx: SpanContext, span: Any, attrs: Dict[str, Any], new_tags: List[str],
                     fallback_span_name: str = sc.TRACE_UPDATE_EVENT) -> None:
    root = state.trace_root(ctx.trace_id)
    if root is not None:
        step = root.step
        if new_tags:
            attrs[sc.TAGS] = _merge_tags(step.attributes.get(sc.TAGS), new_tags)
        if not attrs:
            return
        step.attributes.update(attrs)  # the step's end writes its attributes again
        step.span.set_attributes(attrs)
        return
    if new_tags:
        attrs[sc.TAGS] = new_tags
    if not attrs:
        return
    if span is not None and span.is_recording():
        span.add_event(sc.TRACE_UPDATE_EVENT, attrs)
        return
    _correlated_span(fallback_span_name, ctx, attrs)


def _correlated_span(name: str, parent: SpanContext, attrs: Dict[str, Any]) -> None:
    """A small span in ``parent``'s trace, whatever the current context is."""
    parent_ctx = trace.set_span_in_context(NonRecordingSpan(parent), Context())
    recorder = get_recorder()
    step = StepInvocation(name=name, kind="feedback" if name == "feedback" else "trace_update",
                          attributes=attrs)
    recorder.start_step(step, parent_context=parent_ctx)
    recorder.stop(step)


# ---- record_feedback -------------------------------------------------------------------


TraceRef = Union[int, str, SpanContext, Any]


@guarded
def record_feedback(trace_id_or_span_context: TraceRef, name: str, value: Union[float, int, bool, str],
                    reason: Optional[str] = None) -> None:
    """Attach a feedback score to a trace, also after the trace has ended.

    ``trace_id_or_span_context``: a trace id (int or 32 hex digits, as
    :func:`get_current_trace_id` returns), a ``SpanContext`` or a span. The score is
    ``llm_otel.feedback.<name>.value`` (and ``.reason``): on the trace's root while it is
    open, else on a span ``feedback`` in the original trace, under its root.
    """
    trace_id, parent = _resolve(trace_id_or_span_context)
    attrs = _feedback_attributes(name, value, reason)
    root = state.trace_root(trace_id)
    if root is not None:
        _record_on_trace(root.step.span.get_span_context(), None, attrs, [])
        return
    if parent is None:
        parent = state.ended_root(trace_id)
    if parent is None:
        # the root is unknown here: a stand-in parent id derived from the trace id, so
        # that every late score of one trace shares it; backends list it under the trace
        parent = SpanContext(trace_id, (trace_id & 0xFFFFFFFFFFFFFFFF) or 1, is_remote=True,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED))
    # no generic llm_otel.feedback.name/value: a score called "name" or "value" would make
    # one key both a leaf and a branch for backends that nest dotted keys (Phoenix)
    _correlated_span("feedback", parent, attrs)


def _resolve(ref: TraceRef) -> Tuple[int, Optional[SpanContext]]:
    if isinstance(ref, SpanContext):
        if not ref.is_valid:
            raise ValueError("record_feedback: the SpanContext is not valid")
        return ref.trace_id, SpanContext(ref.trace_id, ref.span_id, is_remote=True,
                                         trace_flags=ref.trace_flags, trace_state=ref.trace_state)
    get_context = getattr(ref, "get_span_context", None)
    if callable(get_context):
        return _resolve(get_context())
    if isinstance(ref, str):
        text = ref.strip().lower()
        if text.startswith("0x"):
            text = text[2:]
        trace_id = int(text, 16)
    elif isinstance(ref, int) and not isinstance(ref, bool):
        trace_id = ref
    else:
        raise TypeError(f"record_feedback: expected a trace id or SpanContext, not {type(ref).__name__}")
    if not 0 < trace_id < 2 ** 128:
        raise ValueError(f"record_feedback: {ref!r} is not a valid trace id")
    return trace_id, None


def get_current_trace_id() -> Optional[str]:
    """The current trace id as 32 hex digits (what backends show), or None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None
