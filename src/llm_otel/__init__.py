"""llm-otel: OpenTelemetry spans, metrics and cost for LLM applications.

``llm_otel.instrument()`` patches the OpenAI SDK, LangChain and LlamaIndex where they
are installed; ``import llm_otel.auto`` also configures the OTel SDK from ``OTEL_*``.
Importing this package imports none of the instrumented libraries.
"""

from llm_otel.instrumentation import available, instrument, uninstrument
from llm_otel.version import __version__

__all__ = ["__version__", "available", "instrument", "uninstrument"]
