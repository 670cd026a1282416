"""The JSONL trace file: one OTLP-JSON span object per line, and its reader.

What LangChain's file callback handler gives, for any OTel trace. Appends are safe for
threads (a lock) and for processes sharing the file: the file is opened ``O_APPEND`` and
each line is a single ``write`` (no user-space buffer, so nothing waits to be flushed and
lines do not interleave). Rotation by size keeps ``LLM_OTEL_JSONL_BACKUPS`` old files
(``path.1`` newest); a sidecar ``path.lock`` (``flock``) makes one process rotate at a
time, and a writer whose file was rotated by another process reopens the path.

No good line is lost to a bad neighbour. A write cut short (a full disk) leaves a partial
line; the next write finds the file ending mid-line and starts with a newline, so the
partial line stays a bad line of its own (:func:`ends_mid_line`; truncating it away instead
could cut off a line another process appended meanwhile). The reader, for its part,
recovers a span glued after garbage on one line. A forked child re-creates the lock and
reopens the file.

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
from llm_otel.core.forksafe import reset_after_fork
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


_pread = getattr(os, "pread", None)  # Unix; elsewhere the reader's recovery has to do


def ends_mid_line(fd: int, size: int) -> bool:
    """Whether the file (``size`` bytes) ends without a newline: a write was cut short there
    (a full disk), and the next line must start with one so as not to be glued to it."""
    return bool(size) and _pread is not None and _pread(fd, 1, size - 1) != b"\n"


def write_line(fd: int, line: bytes) -> int:
    """Append ``line`` with one ``write``, finishing a short one; the bytes written. An
    ``OSError`` (a full disk) leaves the line partial, for :func:`ends_mid_line` to see."""
    written = os.write(fd, line)
    while written < len(line):
        written += os.write(fd, line[written:])
    return written


def append_line(fd: int, line: bytes) -> int:
    """Append ``line`` after a cut one on a line of its own; the bytes written. Other
    processes append to the same file (forked workers): the check and the write hold the
    file's ``flock``, or one could see another's write half done and start a blank line."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        return write_line(fd, b"\n" + line if ends_mid_line(fd, os.fstat(fd).st_size) else line)
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)


def open_for_append(path: Union[str, os.PathLike]) -> int:
    """``path`` opened to append lines: readable too, for :func:`ends_mid_line`."""
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)


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
        self._failing: Optional[str] = None  # the write error last warned about
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """A new lock (another thread may have held the parent's), and the file reopened on
        the next write: the inherited fd may be mid-rotation; it is closed only if it is
        still our file (its number may have been reused for a file of the app's)."""
        self._lock = threading.Lock()
        fd, self._fd = self._fd, None
        try:
            if fd is not None and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                os.close(fd)
        except OSError:
            pass

    # -- file handling ------------------------------------------------------------------------

    def _open(self) -> int:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        return open_for_append(self.path)

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
                size += append_line(fd, line)

    # -- SpanExporter ---------------------------------------------------------------------------

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        try:
            self.write_records([from_readable(s) for s in spans])
            if self._failing is not None:
                self._failing = None
                logger.warning("llm_otel: writing %s again", self.path)
            return SpanExportResult.SUCCESS
        except OSError as exc:  # a full disk, a lost mount: the file's problem, not a bug of ours
            said = f"{exc.strerror or exc}"
            log = logger.debug if said == self._failing else logger.warning
            self._failing = said
            log("llm_otel: %s not written (%s): %d span(s) lost; lines already written are kept",
                self.path, said, len(spans))
            return SpanExportResult.FAILURE
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


class LineError(ValueError):
    """Why one line of the file is not a span."""


_SPAN_START = b'{"traceId"'  # how every line the exporter writes begins


def _json_error(exc: json.JSONDecodeError) -> str:
    # json's messages may end in "at" ("Unterminated string starting at"): add the column only
    where = f"column {exc.colno}"
    return f"{exc.msg} {where}" if exc.msg.endswith(" at") else f"{exc.msg} at {where}"


def parse_line(raw: bytes) -> SpanRecord:
    """One line of the file as a span; :class:`LineError` says what is wrong, for any input."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8: {exc.reason} at byte {exc.start + 1}") from None
    try:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LineError(f"invalid JSON: {_json_error(exc)}") from None
        except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits()
            raise LineError(f"invalid JSON: {exc}") from None
        try:
            return from_otlp_json(obj)
        except SchemaError as exc:
            raise LineError(f"not a span: {exc}") from None
    except RecursionError:
        raise LineError("nested too deeply") from None


def _recover(raw: bytes) -> Optional[tuple]:
    """(offset, span) of a span glued after garbage on one line, else None.

    A write cut short that the next write did not end (another process appended right
    after it) leaves a partial line with a whole one glued on; the whole one starts where
    every line starts.
    """
    start = raw.find(_SPAN_START, 1)
    while start != -1:
        try:
            return start, parse_line(raw[start:])
        except LineError:
            start = raw.find(_SPAN_START, start + 1)
    return None


class JsonlReader:
    """Iterate the spans of a JSONL trace file; bad lines are collected, not raised.

    ``reader = JsonlReader(path); spans = list(reader); reader.bad_lines`` gives the
    spans that parsed and, for each other non-blank line, its number and what is wrong.
    A span glued after garbage on one line is still read (the line is reported too).
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
            try:
                span = parse_line(raw)
            except LineError as exc:
                reason = str(exc)
            else:
                yield span
                continue
            recovered = _recover(raw)
            if recovered is not None:
                reason += f" (the span from byte {recovered[0] + 1} on was read)"
            if not raw.endswith(b"\n"):
                reason += " (last line has no newline: truncated write?)"
            self.bad_lines.append(BadLine(name, number, reason))
            if recovered is not None:
                yield recovered[1]


def read_spans(path: Union[str, os.PathLike], include_backups: bool = False) -> tuple:
    """(spans, bad lines) of a JSONL trace file."""
    reader = JsonlReader(path, include_backups)
    spans = list(reader)
    return spans, reader.bad_lines
