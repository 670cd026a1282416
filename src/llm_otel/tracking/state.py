"""Which ``@track`` spans are open, per span and per trace; which trace roots have ended.

OpenTelemetry spans do not know their parents, and an ended span is read-only. To put
trace-level data on the trace's root while it is open (and to parent late feedback on
it after it ended) we remember, in this process:

- every open tracked step, by span id (``update_current_span`` finds its record);
- per trace id, the open tracked steps in start order: the first is the local root;
- the span context of recently ended local roots (bounded), for ``record_feedback``.

Entries leave the maps when the span ends; the maps are bounded all the same.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, List, Optional

from llm_otel.core import Operation
from llm_otel.core.forksafe import ForkSafeLock

MAX_OPEN_TRACES = 10_000
MAX_ENDED_ROOTS = 10_000

_lock = ForkSafeLock()


class Tracked:
    """A ``@track`` operation plus what ``update_current_span`` changed on it."""

    __slots__ = ("op", "span_id", "trace_id", "input_set", "output_set", "is_root")

    def __init__(self, op: Operation) -> None:
        self.op = op
        ctx = op.span.get_span_context()
        self.span_id: int = ctx.span_id
        self.trace_id: int = ctx.trace_id
        self.input_set = False
        self.output_set = False
        self.is_root = False  # the first tracked step of its trace in this process

    @property
    def open(self) -> bool:
        return not self.op.ended and self.op.span is not None and self.op.span.is_recording()


_by_span: Dict[int, Tracked] = {}
_by_trace: "OrderedDict[int, List[Tracked]]" = OrderedDict()
_ended_roots: "OrderedDict[int, Any]" = OrderedDict()  # trace id -> root SpanContext


def opened(tracked: Tracked) -> None:
    with _lock:
        _by_span[tracked.span_id] = tracked
        steps = _by_trace.get(tracked.trace_id)
        if steps is None:
            steps = _by_trace[tracked.trace_id] = []
            tracked.is_root = tracked.trace_id not in _ended_roots
            while len(_by_trace) > MAX_OPEN_TRACES:  # abandoned traces: forget the oldest
                _, dropped = _by_trace.popitem(last=False)
                for item in dropped:
                    _by_span.pop(item.span_id, None)
        steps.append(tracked)


def closed(tracked: Tracked) -> None:
    with _lock:
        _by_span.pop(tracked.span_id, None)
        if tracked.is_root:
            _ended_roots[tracked.trace_id] = tracked.op.span.get_span_context()
            _ended_roots.move_to_end(tracked.trace_id)
            while len(_ended_roots) > MAX_ENDED_ROOTS:
                _ended_roots.popitem(last=False)
        steps = _by_trace.get(tracked.trace_id)
        if not steps:
            return
        try:
            steps.remove(tracked)
        except ValueError:
            pass
        if not steps:
            del _by_trace[tracked.trace_id]


def by_span(span_id: int) -> Optional[Tracked]:
    tracked = _by_span.get(span_id)
    return tracked if tracked is not None and tracked.open else None


def trace_root(trace_id: int) -> Optional[Tracked]:
    """The local root (first tracked step of this trace here), while it is open."""
    with _lock:
        steps = _by_trace.get(trace_id)
        tracked = steps[0] if steps else None
    return tracked if tracked is not None and tracked.is_root and tracked.open else None


def ended_root(trace_id: int) -> Any:
    """The SpanContext of this trace's local root, if it ended recently here."""
    return _ended_roots.get(trace_id)
