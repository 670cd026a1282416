"""Tracing the application's own code: ``@track``, trace enrichment and feedback.

``@track`` puts a span around a function (nested calls and LLM calls inside join it);
``update_current_span`` / ``update_current_trace`` add names, tags, metadata, user and
session ids and scores; ``record_feedback`` attaches a score to a trace after it ended.
See ``docs/tracking.md`` for where each piece of data lands.
"""

from llm_otel.tracking.decorator import track
from llm_otel.tracking.enrich import (get_current_trace_id, record_feedback, update_current_span,
                                      update_current_trace)
from llm_otel.tracking.openai import track_openai
from llm_otel.tracking.serialize import to_jsonable

__all__ = ["get_current_trace_id", "record_feedback", "to_jsonable", "track", "track_openai",
           "update_current_span", "update_current_trace"]
