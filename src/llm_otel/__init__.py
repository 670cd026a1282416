"""llm-otel: OpenTelemetry spans, metrics and cost for LLM applications.

``llm_otel.instrument()`` patches the OpenAI SDK, LangChain and LlamaIndex where they
are installed; ``import llm_otel.auto`` also configures the OTel SDK from ``OTEL_*``.
Importing this package imports none of the instrumented libraries.
"""

from typing import Any

from llm_otel.instrumentation import available, instrument, uninstrument
# ``usage`` is a callable module: ``llm_otel.usage()`` opens a counting block. Importing
# it registers the core end hook that prices every LLM call (``llm_otel.cost.usd``).
from llm_otel import usage
from llm_otel.usage import set_price
from llm_otel.version import __version__

_TRACKING = ("track", "track_openai", "update_current_span", "update_current_trace", "record_feedback",
             "get_current_trace_id")

__all__ = ["__version__", "available", "instrument", "uninstrument", "set_price", "usage", *_TRACKING]


def __getattr__(name: str) -> Any:  # the tracking API, imported on first use
    if name in _TRACKING:
        from llm_otel import tracking

        return getattr(tracking, name)
    raise AttributeError(f"module 'llm_otel' has no attribute {name!r}")
