"""Helpers for the reliability tests: the fake API key, scripted transports, open-span tracking."""

from __future__ import annotations

import threading

import httpx
import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

API_KEY = "sk-proj-RELIABILITYtestKEY0123456789abcdef"


class OpenSpans(SpanProcessor):
    """Spans started and not yet ended (by span id), across the whole process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = {}
        self.started = 0

    def on_start(self, span, parent_context=None) -> None:
        with self._lock:
            self.open[span.context.span_id] = span.name
            self.started += 1

    def on_end(self, span) -> None:
        with self._lock:
            self.open.pop(span.context.span_id, None)


OPEN_SPANS = OpenSpans()
trace.get_tracer_provider().add_span_processor(OPEN_SPANS)


def client_for(handler, async_: bool = False, **kwargs):
    """A real OpenAI client whose HTTP traffic is answered by ``handler(request)``."""
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("base_url", "https://api.openai.com/v1")
    kwargs.setdefault("max_retries", 0)
    if async_:
        return openai.AsyncOpenAI(http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kwargs)
    return openai.OpenAI(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kwargs)
