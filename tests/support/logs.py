"""The log records the tests' global LoggerProvider receives: GenAI events
(``gen_ai.client.inference.operation.details``, ``gen_ai.evaluation.result``)."""

from __future__ import annotations

import json
from typing import Any, List

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

try:  # renamed in opentelemetry-sdk 1.36
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as _LogExporter
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as _LogExporter

LOG_EXPORTER = _LogExporter()
LOGGER_PROVIDER = LoggerProvider()
LOGGER_PROVIDER.add_log_record_processor(SimpleLogRecordProcessor(LOG_EXPORTER))


def events(name: str = "") -> List[Any]:
    """The SDK log records emitted so far (``name``: only those with this event name)."""
    records = [data.log_record for data in LOG_EXPORTER.get_finished_logs()]
    return [r for r in records if not name or event_name(r) == name]


def event_name(record: Any) -> Any:
    return getattr(record, "event_name", None) or (record.attributes or {}).get("event.name")


def as_json(value: Any) -> str:
    """An event attribute as the JSON text a span attribute carries (structured on events)."""
    return value if isinstance(value, str) else json.dumps(_plain(value), ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value
