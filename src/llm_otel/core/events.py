"""GenAI events: log records through the logger provider the app configured.

The conventions' events are log records with an event name, not span events:
``gen_ai.client.inference.operation.details`` (an inference's details and, opted in, its
content: EVENT_ONLY / SPAN_AND_EVENT) and ``gen_ai.evaluation.result`` (a feedback score).
Each carries the trace and span ids of the operation it describes, so backends join it to
the trace. Content is structured where the logs API supports it (opentelemetry-api
1.35+: ``event_name``), JSON text with an ``event.name`` attribute on older ones.
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any, Dict, Optional

from opentelemetry._logs import LogRecord, get_logger

from llm_otel.version import __version__

_MODERN = "event_name" in inspect.signature(LogRecord.__init__).parameters


class Events:
    def __init__(self, scope: str, logger_provider: Any = None) -> None:
        self.logger = get_logger(scope, __version__, logger_provider)

    def emit(self, name: str, attributes: Dict[str, Any], span_context: Any,
             timestamp: Optional[int] = None) -> None:
        """One event for the operation of ``span_context`` (a SpanContext, or None)."""
        ids: Dict[str, Any] = {}
        if span_context is not None and span_context.is_valid:
            ids = {"trace_id": span_context.trace_id, "span_id": span_context.span_id,
                   "trace_flags": span_context.trace_flags}
        if _MODERN:
            record = LogRecord(timestamp=timestamp or time.time_ns(), event_name=name, attributes=attributes,
                               **ids)
        else:  # structured attribute values need a newer SDK: JSON text, the name as an attribute
            flat = {k: v if isinstance(v, (str, bool, int, float)) else json.dumps(v, ensure_ascii=False)
                    for k, v in attributes.items()}
            flat["event.name"] = name
            record = LogRecord(timestamp=timestamp or time.time_ns(), attributes=flat, **ids)
        self.logger.emit(record)
