"""Local exporters: a console trace tree and a JSONL trace file (with its reader).

Both are ``SpanExporter`` subclasses with no-argument constructors, registered as
``opentelemetry_traces_exporter`` entry points, so ``OTEL_TRACES_EXPORTER=llm_otel_console``
or ``=llm_otel_jsonl`` selects them under ``opentelemetry-instrument`` and
``import llm_otel.auto``.
"""

from llm_otel.exporters.console import ConsoleTreeExporter, render_trace
from llm_otel.exporters.jsonl import BadLine, JsonlFileExporter, JsonlReader, read_spans
from llm_otel.exporters.model import SchemaError, SpanRecord, from_otlp_json, from_readable, to_otlp_json

__all__ = ["BadLine", "ConsoleTreeExporter", "JsonlFileExporter", "JsonlReader", "SchemaError", "SpanRecord",
           "from_otlp_json", "from_readable", "read_spans", "render_trace", "to_otlp_json"]
