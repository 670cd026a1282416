"""The JSONL trace file: one OTLP-JSON span object per line, and its reader.

What LangChain's file callback handler gives, for any OTel trace. Appends are safe for
threads (a lock) and for processes sharing the file: the file is opened ``O_APPEND`` and
each line is a single ``write`` (no user-space buffer, so nothing waits to be flushed and
lines do not interleave). Rotation by size keeps ``LLM_OTEL_JSONL_BACKUPS`` old files
(``path.1`` newest); a sidecar ``path.lock`` (``flock``) makes one process rotate at a
time, and a writer whose file was rotated by another process reopens the path.

Environment (for ``OTEL_TRACES_EXPORTER=llm_otel_jsonl``):

- ``LLM_OTEL_JSONL_PATH``       file to append to (default ``llm-otel-traces.jsonl``)
- ``LLM_OTEL_JSONL_MAX_BYTES``  rotate when the file would grow past this (default 0: never)
- ``LLM_OTEL_JSONL_BACKUPS``    rotated files to keep (default 5)
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, List, Optional, Sequence, Union

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llm_otel.core.guard import report
from llm_otel.exporters.model import SchemaError, SpanRecord, from_otlp_json, from_readable, to_otlp_json

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: rotation is per process only
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("llm_otel")

PATH_ENV = "LLM_OTEL_JSONL_PATH"
MAX_BYTES_ENV = "LLM_OTEL_JSONL_MAX_BYTES"
BACKUPS_ENV = "LLM_OTEL_JSONL_BACKUPS"
DEFAULT_PATH = "llm-otel-traces.jsonl"
DEFAULT_BACKUPS = 5


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
        if value >= 0:
            return value
    except ValueError:
        pass
    logger.warning("%s=%r is not a non-negative integer; using %d", name, raw, default)
    return default


def span_to_line(record: SpanRecord) -> bytes:
    """One span as one line of UTF-8 JSON, newline included."""
    return (json.dumps(to_otlp_json(record), ensure_ascii=False, separators=(",", ":"),
                       default=str) + "\n").encode("utf-8")


class JsonlFileExporter(SpanExporter):
    """Appends each exported span to a JSONL file; rotates by size."""

    def __init__(self, path: Union[str, os.PathLike, None] = None, max_bytes: Optional[int] = None,
                 backups: Optional[int] = None) -> None:
        self.path = Path(path if path is not None else os.environ.get(PATH_ENV) or DEFAULT_PATH)
        self.max_bytes = max_bytes if max_bytes is not None else _env_int(MAX_BYTES_ENV, 0)
        self.backups = backups if backups is not None else _env_int(BACKUPS_ENV, DEFAULT_BACKUPS)
        self._lock = threading.Lock()
        self._fd: Optional[int] = None
        self._closed = False

    # -- file handling ------------------------------------------------------------------------

    def _open(self) -> int:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _current_fd(self) -> int:
        """Our fd, reopened when another process rotated (or someone removed) the file."""
        fd = self._fd
        if fd is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)
        self._fd = self._open()
        return self._fd

    def _rotate(self, incoming: int) -> None:
        lock_fd = os.open(str(self.path) + ".lock", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            fd = self._current_fd()  # someone may have rotated while we waited
            size = os.fstat(fd).st_size
            if size == 0 or size + incoming <= self.max_bytes:
                return
            if self.backups > 0:
                for n in range(self.backups - 1, 0, -1):
                    older = Path(f"{self.path}.{n}")
                    if older.exists():
                        os.replace(older, f"{self.path}.{n + 1}")
                os.replace(self.path, f"{self.path}.1")
            else:
                os.unlink(self.path)
            os.close(fd)
            self._fd = self._open()
        finally:
            if fcntl is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)

    def write_records(self, records: Sequence[SpanRecord]) -> None:
        """Append ``records``, one ``write`` per line (also used by the CLI and tests)."""
        lines = [span_to_line(r) for r in records]
        with self._lock:
            if self._closed:
                raise ValueError("exporter is shut down")
            fd = self._current_fd()
            size = os.fstat(fd).st_size
            for line in lines:
                if self.max_bytes and size > 0 and size + len(line) > self.max_bytes:
                    self._rotate(len(line))
                    fd = self._fd  # type: ignore[assignment]
                    size = os.fstat(fd).st_size
                written = os.write(fd, line)
                while written < len(line):  # a short write (full disk, signal): finish the line
                    written += os.write(fd, line[written:])
                size += len(line)

    # -- SpanExporter ---------------------------------------------------------------------------

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        try:
            self.write_records([from_readable(s) for s in spans])
            return SpanExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - an exporter must not raise into the SDK
            report("JsonlFileExporter.export", exc)
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every line is written with os.write: nothing is buffered here

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


# ---- reading back ---------------------------------------------------------------------------


@dataclass
class BadLine:
    """A line that could not be read as a span, with why."""

    path: str
    line_number: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_number}: {self.reason}"


class JsonlReader:
    """Iterate the spans of a JSONL trace file; bad lines are collected, not raised.

    ``reader = JsonlReader(path); spans = list(reader); reader.bad_lines`` gives the
    spans that parsed and, for each other non-blank line, its number and what is wrong.
    ``include_backups=True`` reads the rotated files too (oldest first).
    """

    def __init__(self, path: Union[str, os.PathLike], include_backups: bool = False) -> None:
        self.path = Path(path)
        self.include_backups = include_backups
        self.bad_lines: List[BadLine] = []
        self.line_count = 0

    def files(self) -> List[Path]:
        files = [self.path]
        if self.include_backups:
            n = 1
            while Path(f"{self.path}.{n}").exists():
                files.insert(0, Path(f"{self.path}.{n}"))
                n += 1
        return files

    def __iter__(self) -> Iterator[SpanRecord]:
        for path in self.files():
            with open(path, "rb") as fh:
                yield from self._read(fh, str(path))

    def _read(self, fh: IO[bytes], name: str) -> Iterator[SpanRecord]:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            self.line_count += 1
            if not raw.endswith(b"\n"):
                reason_suffix = " (last line has no newline: truncated write?)"
            else:
                reason_suffix = ""
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                self.bad_lines.append(BadLine(name, number, f"not UTF-8: {exc.reason}{reason_suffix}"))
                continue
            except json.JSONDecodeError as exc:
                self.bad_lines.append(BadLine(name, number, f"invalid JSON: {exc.msg} at column {exc.colno}"
                                              f"{reason_suffix}"))
                continue
            try:
                yield from_otlp_json(obj)
            except SchemaError as exc:
                self.bad_lines.append(BadLine(name, number, f"not a span: {exc}"))


def read_spans(path: Union[str, os.PathLike], include_backups: bool = False) -> tuple:
    """(spans, bad lines) of a JSONL trace file."""
    reader = JsonlReader(path, include_backups)
    spans = list(reader)
    return spans, reader.bad_lines
