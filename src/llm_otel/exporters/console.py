"""The console trace tree: each trace printed as a tree when its root ends.

What LlamaIndex's debug handler prints, for any OTel trace: per step its name, duration,
status, model, tokens (``~`` when counted locally) and cost; per trace the totals (exact
and estimated tokens apart); and a per-operation summary (count, wall time, self time,
mean duration). Coloured on a TTY, plain otherwise (``NO_COLOR`` / ``FORCE_COLOR`` override).

``OTEL_TRACES_EXPORTER=llm_otel_console`` selects it (``opentelemetry-instrument`` or
``import llm_otel.auto``); in code::

    provider.add_span_processor(SimpleSpanProcessor(ConsoleTreeExporter()))
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, TextIO, Tuple

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llm_otel.core import semconv as sc
from llm_otel.core.guard import report
from llm_otel.exporters.buffer import TraceBuffer
from llm_otel.exporters.model import SpanRecord, from_readable

OUTPUT_ENV = "LLM_OTEL_CONSOLE_OUTPUT"  # stdout (default) | stderr

_RESET = "\033[0m"
_STYLES = {"bold": "\033[1m", "dim": "\033[2m", "red": "\033[31m", "green": "\033[32m",
           "yellow": "\033[33m", "cyan": "\033[36m", "magenta": "\033[35m"}
_MAX_LABEL = 64


def use_color(stream: Any) -> bool:
    """Colour only for a terminal, unless ``NO_COLOR`` or ``FORCE_COLOR`` says otherwise."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return bool(stream.isatty())
    except Exception:  # noqa: BLE001 - a stream without isatty
        return False


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        return "".join(_STYLES[s] for s in styles) + text + _RESET


# ---- per-span facts -------------------------------------------------------------------------


def _operation(span: SpanRecord) -> str:
    attrs = span.attributes
    return str(attrs.get(sc.OPERATION_NAME) or attrs.get("llm_otel.span.kind") or span.name)


def _model(span: SpanRecord) -> Optional[str]:
    attrs = span.attributes
    model = attrs.get(sc.RESPONSE_MODEL) or attrs.get(sc.REQUEST_MODEL)
    return str(model) if model else None




class TokenCount(NamedTuple):
    count: int
    estimated: bool  # counted locally, not reported by the API

    def __str__(self) -> str:
        return ("~" if self.estimated else "") + str(self.count)


def token_counts(attributes: Mapping[str, Any]) -> Tuple[Optional[TokenCount], Optional[TokenCount]]:
    """(input, output) tokens of a span: the API's usage, else the core's local estimate.

    Reads both forms an estimate takes: ``llm_otel.usage.estimated_{input,output}_tokens``,
    or ``gen_ai.usage.*`` with ``llm_otel.usage.estimated = true``.
    """
    flagged = attributes.get(sc.USAGE_ESTIMATED) is True
    return (_token_count(attributes, sc.USAGE_INPUT_TOKENS, sc.ESTIMATED_INPUT_TOKENS, flagged),
            _token_count(attributes, sc.USAGE_OUTPUT_TOKENS, sc.ESTIMATED_OUTPUT_TOKENS, flagged))


def _token_count(attributes: Mapping[str, Any], key: str, estimate_key: str, flagged: bool) -> Optional[TokenCount]:
    for value, estimated in ((attributes.get(key), flagged), (attributes.get(estimate_key), True)):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return TokenCount(value, estimated)
    return None


class _TokenTotal:
    """Exact and estimated counts summed apart: an estimate never hides in an exact total."""

    def __init__(self) -> None:
        self.sums = {False: 0, True: 0}
        self.seen = {False: False, True: False}

    def add(self, count: TokenCount) -> None:
        self.sums[count.estimated] += count.count
        self.seen[count.estimated] = True

    def __str__(self) -> str:
        parts = [str(TokenCount(self.sums[e], e)) for e in (False, True) if self.seen[e]]
        return " + ".join(parts) or "0"


def _cost(span: SpanRecord) -> Optional[float]:
    """The call's cost: ours carry it; a GenAI span another instrumentation recorded (an SDK
    that traces itself) is priced from its usage, as llm-otel prices it for usage()."""
    attrs = span.attributes
    cost = attrs.get(sc.COST_USD)
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        return float(cost)
    if span.scope_name in ("", "llm_otel") or attrs.get(sc.USAGE_ESTIMATED) is True:
        return None
    from llm_otel.core.foreign import record_of
    from llm_otel.usage.pricing import cost_usd

    inv = record_of(attrs)
    if inv.operation is None or (inv.input_tokens is None and inv.output_tokens is None):
        return None
    return cost_usd(inv.response_model, inv.input_tokens, inv.output_tokens, inv.cache_read_input_tokens,
                    inv.cache_creation_input_tokens, fallback_model=inv.request_model, provider=inv.provider)


def format_duration(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.3f} s"


def format_cost(cost: float) -> str:
    return f"${cost:.6f}"


# ---- the tree -------------------------------------------------------------------------------


def _children(spans: Sequence[SpanRecord]) -> tuple:
    by_id = {s.span_id: s for s in spans}
    children: Dict[Optional[str], List[SpanRecord]] = defaultdict(list)
    roots: List[SpanRecord] = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in by_id and span.parent_span_id != span.span_id:
            children[span.parent_span_id].append(span)
        else:
            roots.append(span)  # the root, or an orphan whose parent is elsewhere
    for items in children.values():
        items.sort(key=lambda s: s.start_time_unix_nano)
    roots.sort(key=lambda s: s.start_time_unix_nano)
    return roots, children


_AGGREGATES = ("invoke_agent", "invoke_workflow")


def render_trace(spans: Sequence[SpanRecord], color: bool = False, incomplete: bool = False,
                 summary: bool = True) -> str:
    """The tree, totals and per-operation summary of one trace, as text."""
    paint = _Painter(color)
    roots, children = _children(spans)
    rows: List[tuple] = []  # (label, span)
    seen = set()

    def walk(span: SpanRecord, prefix: str, tail: str) -> None:
        if id(span) in seen:  # a cycle, or a span id used twice, in a hand-edited file
            return
        seen.add(id(span))
        rows.append((tail, span))
        kids = children.get(span.span_id, [])
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(kid, prefix + ("   " if last else "│  "), prefix + ("└─ " if last else "├─ "))

    for root in roots:
        walk(root, "", "")
    for span in sorted(spans, key=lambda s: s.start_time_unix_nano):
        if id(span) not in seen:  # unreachable from a root: a parent cycle in a hand-made file
            walk(span, "", "")

    width = min(_MAX_LABEL, max((len(p) + len(s.name) for p, s in rows), default=0))
    lines = []
    total_in, total_out = _TokenTotal(), _TokenTotal()
    total_cost = 0.0
    any_cost = False
    errors = 0
    for prefix, span in rows:
        name = span.name
        if len(prefix) + len(name) > width:
            name = name[: max(1, width - len(prefix) - 1)] + "…"
        label = prefix + paint(name, "bold") + " " * (width - len(prefix) - len(name))
        parts = [format_duration(span.duration_s).rjust(10)]
        if span.is_error:
            errors += 1
            message = f" {span.status_message}" if span.status_message else ""
            error_type = span.attributes.get(sc.ERROR_TYPE)
            if error_type and str(error_type) not in message:
                message = f" {error_type}{message}"
            parts.append(paint("ERROR" + message, "red"))
        else:
            parts.append(paint("OK", "green"))
        model = _model(span)
        if model:
            parts.append(paint(model, "cyan"))
        tokens_in, tokens_out = token_counts(span.attributes)
        # an agent's or workflow's usage adds up the calls made inside: shown, not counted twice
        counted = span.attributes.get(sc.OPERATION_NAME) not in _AGGREGATES
        token_bits = []
        if tokens_in is not None:
            if counted:
                total_in.add(tokens_in)
            token_bits.append(f"in {tokens_in}")
        if tokens_out is not None:
            if counted:
                total_out.add(tokens_out)
            token_bits.append(f"out {tokens_out}")
        if token_bits:
            parts.append("tokens " + " ".join(token_bits))
        cost = _cost(span)
        if cost is not None:
            total_cost += cost
            any_cost = True
            parts.append(paint(format_cost(cost), "yellow"))
        lines.append(f"{label}  " + "  ".join(parts))

    start = min((s.start_time_unix_nano for s in spans), default=0)
    end = max((s.end_time_unix_nano for s in spans), default=0)
    trace_id = spans[0].trace_id if spans else "?"
    head = [paint(f"trace {trace_id}", "bold"), f"{len(spans)} span{'s' if len(spans) != 1 else ''}",
            format_duration(max(0, end - start) / 1e9)]
    if any(total_in.seen.values()) or any(total_out.seen.values()):
        head.append(f"tokens in {total_in} out {total_out}")
    if any_cost:
        head.append("cost " + format_cost(total_cost))
    if errors:
        head.append(paint(f"{errors} error{'s' if errors != 1 else ''}", "red"))
    if incomplete:
        head.append(paint("incomplete: root span not seen", "magenta"))
    out = [" · ".join(head), *lines]
    if summary:
        out.extend(render_summary(spans, paint))
    return "\n".join(out) + "\n"


def _covered_ns(intervals: Iterable[Tuple[int, int]]) -> int:
    """Nanoseconds covered by the union of ``(start, end)`` intervals (overlaps count once)."""
    covered, reached = 0, None
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if reached is None or start > reached:
            covered += end - start
            reached = end
        elif end > reached:
            covered += end - reached
            reached = end
    return covered


def operation_summary(spans: Iterable[SpanRecord]) -> List[tuple]:
    """(operation, count, wall s, self s, mean s) per operation, most self time first.

    wall: the time during which at least one span of the operation was open (a chain inside
    a chain, or calls made in parallel, count once); self: the time in its spans not spent
    inside one of their children (the self times of a sequential trace add up to its
    duration); mean: the mean duration of its spans.
    """
    spans = list(spans)
    children: Dict[Tuple[str, str], List[SpanRecord]] = defaultdict(list)
    for span in spans:
        if span.parent_span_id and span.parent_span_id != span.span_id:
            children[(span.trace_id, span.parent_span_id)].append(span)
    groups: Dict[str, List[SpanRecord]] = defaultdict(list)
    for span in spans:
        groups[_operation(span)].append(span)
    rows = []
    for op, group in groups.items():
        wall = _covered_ns((s.start_time_unix_nano, s.end_time_unix_nano) for s in group)
        own = 0
        for span in group:
            start, end = span.start_time_unix_nano, max(span.start_time_unix_nano, span.end_time_unix_nano)
            kids = children.get((span.trace_id, span.span_id), ())
            own += end - start - _covered_ns((max(start, k.start_time_unix_nano), min(end, k.end_time_unix_nano))
                                             for k in kids)
        rows.append((op, len(group), wall / 1e9, own / 1e9, sum(s.duration_s for s in group) / len(group)))
    return sorted(rows, key=lambda r: (-r[3], r[0]))


def render_summary(spans: Iterable[SpanRecord], paint: Any = None) -> List[str]:
    paint = paint or _Painter(False)
    rows = operation_summary(spans)
    width = max([9] + [len(r[0]) for r in rows])
    out = [paint(f"  {'operation'.ljust(width)}  {'count':>5}  {'wall':>10}  {'self':>10}  {'mean':>10}", "dim")]
    for op, count, wall, own, mean in rows:
        out.append(f"  {op.ljust(width)}  {count:>5}  {format_duration(wall):>10}  {format_duration(own):>10}"
                   f"  {format_duration(mean):>10}")
    return out


def group_traces(spans: Iterable[SpanRecord]) -> List[List[SpanRecord]]:
    """Spans grouped by trace, traces in order of their first start."""
    traces: Dict[str, List[SpanRecord]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    return sorted(traces.values(), key=lambda t: min(s.start_time_unix_nano for s in t))


# ---- the exporter ---------------------------------------------------------------------------


class ConsoleTreeExporter(SpanExporter):
    """Buffers spans per trace; prints the tree when the trace's local root ends.

    No-argument construction is what the SDK configurator does for
    ``OTEL_TRACES_EXPORTER=llm_otel_console``. Traces still open at shutdown (or evicted
    from the bounded buffer) are printed too, marked incomplete.
    """

    def __init__(self, out: Optional[TextIO] = None, color: Optional[bool] = None, summary: bool = True,
                 max_traces: int = 1000, max_spans_per_trace: int = 5000) -> None:
        self._out = out
        self._color = color
        self._summary = summary
        self._buffer = TraceBuffer(max_traces, max_spans_per_trace)

    def _stream(self) -> TextIO:
        if self._out is not None:
            return self._out
        return sys.stderr if os.environ.get(OUTPUT_ENV, "").lower() == "stderr" else sys.stdout

    def _print(self, spans: List[SpanRecord], incomplete: bool = False) -> None:
        stream = self._stream()
        color = self._color if self._color is not None else use_color(stream)
        stream.write(render_trace(spans, color=color, incomplete=incomplete, summary=self._summary) + "\n")
        stream.flush()

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        try:
            complete, evicted = self._buffer.add(from_readable(s) for s in spans)
            for trace in evicted:
                self._print(trace, incomplete=True)
            for trace in complete:
                self._print(trace)
            return SpanExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - an exporter must not raise into the SDK
            report("ConsoleTreeExporter.export", exc)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        try:
            for trace in self._buffer.drain():
                self._print(trace, incomplete=True)
        except Exception as exc:  # noqa: BLE001
            report("ConsoleTreeExporter.shutdown", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            self._stream().flush()
        except Exception:  # noqa: BLE001 - a closed stream at exit
            pass
        return True
