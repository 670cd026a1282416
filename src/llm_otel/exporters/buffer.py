"""Collect finished spans per trace until the trace's local root ends.

Exporters receive spans one batch at a time, children before their parent. A tool that
needs the whole trace (the console tree, the live fine-tuning export) buffers them here.
The buffer is bounded: too many open traces evict the oldest, too many spans in one trace
drop the newest, so an app whose roots never end cannot grow memory without limit.
A span that ends after its trace's root (a detached task, late feedback) comes out at
once, on its own, instead of waiting for a root that has already gone. When the core says
that spans of the trace will still end (their end waited on an encoding or price table
loading, with the call's own end time), the trace waits for them after its root. A forked child
starts with a new lock and an empty buffer: what was buffered is the parent's to print.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Dict, Iterable, List, Tuple

from llm_otel.core.forksafe import reset_after_fork
from llm_otel.core.recorder import pending_spans
from llm_otel.exporters.model import SpanRecord

MAX_TRACES = 1000
MAX_SPANS_PER_TRACE = 5000


class TraceBuffer:
    def __init__(self, max_traces: int = MAX_TRACES, max_spans: int = MAX_SPANS_PER_TRACE) -> None:
        self.max_traces = max_traces
        self.max_spans = max_spans
        self._traces: "OrderedDict[str, List[SpanRecord]]" = OrderedDict()
        self._done: "OrderedDict[str, None]" = OrderedDict()  # traces whose root has ended
        self._late: Dict[str, None] = {}  # root ended, spans of the trace still to end
        self._lock = threading.Lock()
        self.dropped_spans = 0
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._traces = OrderedDict()
        self._done = OrderedDict()
        self._late = {}
        self.dropped_spans = 0

    def add(self, records: Iterable[SpanRecord]) -> Tuple[List[List[SpanRecord]], List[List[SpanRecord]]]:
        """Buffer ``records``; return (completed traces, traces evicted incomplete)."""
        complete: List[List[SpanRecord]] = []
        evicted: List[List[SpanRecord]] = []
        with self._lock:
            for record in records:
                if record.trace_id in self._done and record.trace_id not in self._traces:
                    complete.append([record])  # late: its root was already handed out
                    continue
                spans = self._traces.get(record.trace_id)
                if spans is None:
                    spans = self._traces[record.trace_id] = []
                    while len(self._traces) > self.max_traces:
                        evicted.append(self._traces.popitem(last=False)[1])
                if len(spans) < self.max_spans:
                    spans.append(record)
                else:
                    self.dropped_spans += 1
                if record.is_local_root:
                    self._late[record.trace_id] = None
            for trace_id in list(self._late):
                if trace_id not in self._traces:  # evicted meanwhile
                    del self._late[trace_id]
                elif not pending_spans(int(trace_id, 16)):
                    del self._late[trace_id]
                    complete.append(self._traces.pop(trace_id))
                    self._done[trace_id] = None
                    if len(self._done) > self.max_traces * 10:
                        self._done.popitem(last=False)
        return complete, [e for e in evicted if e]

    def drain(self) -> List[List[SpanRecord]]:
        """Everything still buffered (at shutdown): traces whose root never ended here."""
        with self._lock:
            left = list(self._traces.values())
            self._traces.clear()
        return left

    def __len__(self) -> int:
        return len(self._traces)

    def pending(self) -> Dict[str, int]:
        with self._lock:
            return {trace_id: len(spans) for trace_id, spans in self._traces.items()}
