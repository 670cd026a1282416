"""Recorded chat calls -> an OpenAI chat fine-tuning JSONL file, with a report.

What LlamaIndex's ``OpenAIFineTuningHandler.save_finetuning_events`` gives, from the JSONL
trace file (:func:`build_examples` over :func:`llm_otel.exporters.read_spans`) or live
(:class:`FineTuningExporter`). Filters: model (glob), tag (``llm_otel.tags`` on the span
or its trace's root), minimum feedback (``llm_otel.feedback.<name>.value`` anywhere in
the trace: its root or a ``feedback`` span), date range. Duplicates are written once.
Every example is validated (:mod:`llm_otel.finetune.validate`) before it is written.
The report counts the examples built and, apart, those really written.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import secrets
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llm_otel.core import semconv as sc
from llm_otel.core.guard import report as report_fault
from llm_otel.exporters.buffer import TraceBuffer
from llm_otel.core.forksafe import reset_after_fork
from llm_otel.exporters.jsonl import append_line, open_for_append
from llm_otel.exporters.model import SpanRecord, from_readable
from llm_otel.finetune.convert import BAD_CONTENT, Unconvertible, example_from_span, is_chat_span, response_model
from llm_otel.finetune.validate import validate_example

TAGS_ATTR = sc.TAGS  # names shared with llm_otel.tracking
TRACE_UPDATE_EVENT = sc.TRACE_UPDATE_EVENT  # trace data recorded after the root ended
_FEEDBACK = re.compile("^" + re.escape(sc.FEEDBACK_PREFIX) + r"(?P<name>.+)\.value$")

# reasons for records left out by a filter or after conversion
FILTER_MODEL = "filtered: model"
FILTER_TAG = "filtered: tag"
FILTER_FEEDBACK = "filtered: feedback"
FILTER_DATE = "filtered: date"
DUPLICATE = "duplicate"
INVALID = "failed validation"


@dataclass
class Filters:
    """Which recorded calls to keep; None means no filter."""

    model: Optional[str] = None  # glob on the response (else request) model: "gpt-4o*"
    tag: Optional[str] = None
    feedback_name: Optional[str] = None  # None: any feedback name
    min_feedback: Optional[float] = None
    since: Optional[datetime] = None  # span start, inclusive
    until: Optional[datetime] = None  # span start, exclusive


@dataclass
class Skipped:
    reason: str
    trace_id: str
    span_id: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.reason}{extra} (trace {self.trace_id} span {self.span_id})"


@dataclass
class Report:
    spans_read: int = 0
    chat_spans: int = 0
    examples: int = 0  # built: valid, not duplicates
    written: int = 0  # in place in the output (counted by whoever writes them)
    skipped: List[Skipped] = field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped).most_common())

    def as_dict(self) -> Dict[str, Any]:
        return {"spans_read": self.spans_read, "chat_spans": self.chat_spans, "examples": self.examples,
                "written": self.written, "skipped": self.counts(),
                "details": [vars(s) for s in self.skipped]}

    def text(self, max_details: int = 20) -> str:
        made = (f"{self.examples} examples written" if self.written == self.examples
                else f"{self.examples} examples, {self.written} written")
        lines = [f"{self.spans_read} spans read, {self.chat_spans} chat calls, {made}"]
        for reason, count in self.counts().items():
            lines.append(f"  skipped {count:>5}  {reason}")
        for skipped in self.skipped[:max_details]:
            lines.append(f"    {skipped}")
        if len(self.skipped) > max_details:
            lines.append(f"    ... {len(self.skipped) - max_details} more")
        return "\n".join(lines)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # span times are nanoseconds since, any up to 2**64


def parse_when(text: str) -> datetime:
    """An ISO date or date-time; naive values are UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _tags(span: SpanRecord) -> List[str]:
    return _tags_of(span.attributes)


def _tags_of(attributes: Dict[str, Any]) -> List[str]:
    tags = attributes.get(TAGS_ATTR)
    if tags is None:
        return []
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    if isinstance(tags, (list, tuple)):
        return [str(t) for t in tags]
    return [str(tags)]


def _attribute_sets(span: SpanRecord) -> Iterable[Tuple[int, Dict[str, Any]]]:
    """The span's attributes and those of its trace-update events (data recorded on the
    trace after its root ended), each with the time it was recorded."""
    yield span.end_time_unix_nano, span.attributes
    for event in span.events:
        if event.name == TRACE_UPDATE_EVENT:
            yield event.time_unix_nano, event.attributes


def _score(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return 1.0 if value else 0.0  # thumbs up / down
    if isinstance(value, (int, float)):
        return float(value)
    return None  # a categorical (string) score has no minimum


def trace_feedback(spans: Iterable[SpanRecord]) -> Dict[str, float]:
    """Numeric feedback found in a trace, by name; the latest recorded wins.

    Looks at every span (the root, where ``update_current_trace`` puts it while the root
    is open; a ``feedback`` span, where ``record_feedback`` puts it afterwards) and at
    ``llm_otel.trace.update`` events.
    """
    found: Dict[str, Tuple[int, float]] = {}
    for span in spans:
        for when, attributes in _attribute_sets(span):
            for key, value in attributes.items():
                match = _FEEDBACK.match(key)
                score = _score(value) if match else None
                if score is not None:
                    name = match.group("name")  # type: ignore[union-attr]
                    if name not in found or when >= found[name][0]:
                        found[name] = (when, score)
    return {name: value for name, (_, value) in found.items()}


def trace_tags(spans: Iterable[SpanRecord], roots: Iterable[SpanRecord]) -> set:
    """Trace-level tags: on the local roots and in trace-update events anywhere."""
    tags = set()
    for root in roots:
        tags.update(_tags(root))
    for span in spans:
        for event in span.events:
            if event.name == TRACE_UPDATE_EVENT:
                tags.update(_tags_of(event.attributes))
    return tags


def _roots(spans: Sequence[SpanRecord]) -> List[SpanRecord]:
    ids = {s.span_id for s in spans}
    return [s for s in spans if s.parent_span_id is None or s.parent_span_id not in ids]


def example_key(example: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(example, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ExampleBuilder:
    """Turns traces into validated, de-duplicated examples and keeps the report."""

    def __init__(self, filters: Optional[Filters] = None, max_seen: int = 1_000_000) -> None:
        self.filters = filters or Filters()
        self.report = Report()
        self._seen: "OrderedDict[str, None]" = OrderedDict()
        self._max_seen = max_seen

    def _skip(self, reason: str, span: SpanRecord, detail: str = "") -> None:
        self.report.skipped.append(Skipped(reason, span.trace_id, span.span_id, detail))

    def _filtered_out(self, span: SpanRecord, trace: Sequence[SpanRecord], roots: List[SpanRecord]) -> bool:
        f = self.filters
        if f.model:
            model = response_model(span)
            request = span.attributes.get("gen_ai.request.model")
            if not any(m and fnmatch.fnmatchcase(str(m), f.model) for m in (model, request)):
                self._skip(FILTER_MODEL, span, f"model {model!r}")
                return True
        if f.since or f.until:
            started = _EPOCH + timedelta(microseconds=span.start_time_unix_nano // 1000)
            if (f.since and started < f.since) or (f.until and started >= f.until):
                self._skip(FILTER_DATE, span, started.isoformat())
                return True
        if f.tag:
            tags = set(_tags(span)) | trace_tags(trace, roots)
            if f.tag not in tags:
                self._skip(FILTER_TAG, span, f"tags {sorted(tags)}")
                return True
        if f.min_feedback is not None:
            feedback = trace_feedback(trace)
            values = [v for n, v in feedback.items() if f.feedback_name in (None, n)]
            if not values:
                self._skip(FILTER_FEEDBACK, span, "no feedback" + (f" named {f.feedback_name!r}"
                                                                    if f.feedback_name else ""))
                return True
            if max(values) < f.min_feedback:
                self._skip(FILTER_FEEDBACK, span, f"feedback {max(values)} < {f.min_feedback}")
                return True
        return False

    def from_trace(self, trace: Sequence[SpanRecord]) -> List[Dict[str, Any]]:
        """The new examples of one trace (all its spans), oldest call first."""
        self.report.spans_read += len(trace)
        roots = _roots(trace)
        out = []
        for span in sorted(trace, key=lambda s: s.start_time_unix_nano):
            if not is_chat_span(span):
                continue
            self.report.chat_spans += 1
            if self._filtered_out(span, trace, roots):
                continue
            try:
                example = example_from_span(span)
                errors = validate_example(example)
                key = example_key(example)
            except Unconvertible as exc:
                self._skip(exc.reason, span, exc.detail)
                continue
            except RecursionError:  # content nested so deep that Python cannot walk it
                self._skip(BAD_CONTENT, span, "nested too deeply")
                continue
            if errors:
                self._skip(INVALID, span, "; ".join(errors))
                continue
            if key in self._seen:
                self._skip(DUPLICATE, span)
                continue
            self._seen[key] = None
            if len(self._seen) > self._max_seen:
                self._seen.popitem(last=False)
            out.append(example)
        self.report.examples += len(out)
        return out


def group_by_trace(spans: Iterable[SpanRecord]) -> List[List[SpanRecord]]:
    traces: Dict[str, List[SpanRecord]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    return list(traces.values())


def build_examples(spans: Iterable[SpanRecord], filters: Optional[Filters] = None) -> Tuple[
        List[Dict[str, Any]], Report]:
    """All examples of ``spans`` (e.g. read from the JSONL trace file) and the report."""
    builder = ExampleBuilder(filters)
    examples: List[Dict[str, Any]] = []
    for trace in group_by_trace(spans):
        examples.extend(builder.from_trace(trace))
    return examples, builder.report


def example_line(example: Dict[str, Any]) -> bytes:
    return (json.dumps(example, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def write_examples(examples: Iterable[Dict[str, Any]], path: Union[str, os.PathLike]) -> int:
    """Write (replace) ``path`` with one example per line; returns the count.

    Written to a temporary file beside ``path``, flushed to disk and renamed over it, so
    ``path`` is either the whole new file or untouched; on any failure the temporary file
    is removed.
    """
    return atomic_write(path, (example_line(e) for e in examples))


def atomic_write(path: Union[str, os.PathLike], lines: Iterable[bytes]) -> int:
    """Replace ``path`` with ``lines`` all at once (see :func:`write_examples`); the count."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")  # beside it: same file system
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # as open() does: the umask decides
    try:
        count = 0
        with os.fdopen(fd, "wb") as fh:
            for line in lines:
                fh.write(line)
                count += 1
            fh.flush()
            os.fsync(fh.fileno())  # a full disk shows here at the latest, not after the rename
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return count


class FineTuningExporter(SpanExporter):
    """Live export: each finished trace's chat calls appended to a fine-tuning JSONL file.

    Feedback filters see only feedback recorded before the trace's root ended. Lines are
    appended as the JSONL trace file's are (a partial line left by a full disk never
    swallows the next one); a forked child gets a new lock and an empty buffer.
    """

    PATH_ENV = "LLM_OTEL_FINETUNE_PATH"

    def __init__(self, path: Union[str, os.PathLike, None] = None, filters: Optional[Filters] = None) -> None:
        self.path = Path(path if path is not None else os.environ.get(self.PATH_ENV) or "llm-otel-finetune.jsonl")
        self.builder = ExampleBuilder(filters)
        self._buffer = TraceBuffer()
        self._lock = threading.Lock()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """A new lock and a new report: the parent's counts are the parent's. The examples
        already seen stay, so the child does not write the parent's again."""
        self._lock = threading.Lock()
        self.builder.report = Report()

    @property
    def report(self) -> Report:
        return self.builder.report

    def _append(self, traces: List[List[SpanRecord]]) -> None:
        with self._lock:
            lines = [example_line(e) for trace in traces for e in self.builder.from_trace(trace)]
            if not lines:
                return
            fd = open_for_append(self.path)
            try:
                for line in lines:
                    append_line(fd, line)
                    self.report.written += 1
            finally:
                os.close(fd)

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        try:
            complete, evicted = self._buffer.add(from_readable(s) for s in spans)
            self._append(complete + evicted)
            return SpanExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - an exporter must not raise into the SDK
            report_fault("FineTuningExporter.export", exc)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        try:
            self._append(self._buffer.drain())
        except Exception as exc:  # noqa: BLE001
            report_fault("FineTuningExporter.shutdown", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
