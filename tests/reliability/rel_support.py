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
_provider = trace.get_tracer_provider()
if hasattr(_provider, "add_span_processor"):  # the SDK provider set by tests/conftest.py
    _provider.add_span_processor(OPEN_SPANS)


def client_for(handler, async_: bool = False, **kwargs):
    """A real OpenAI client whose HTTP traffic is answered by ``handler(request)``."""
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("base_url", "https://api.openai.com/v1")
    kwargs.setdefault("max_retries", 0)
    if async_:
        return openai.AsyncOpenAI(http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kwargs)
    return openai.OpenAI(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kwargs)


def recorded_stream_events(cassette_path) -> list:
    """The SSE events (bytes, each ending in a blank line) of the first recorded stream."""
    from support.cassettes import load

    body = next(it.body for it in load(cassette_path) if b"data:" in it.body)
    return [event + b"\n\n" for event in body.split(b"\n\n") if event.strip()]


class CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that sends ``events`` and then fails with ``error`` (or just stops)."""

    def __init__(self, events, error=None) -> None:
        self.events = list(events)
        self.error = error

    def __iter__(self):
        yield from self.events
        if self.error is not None:
            raise self.error

    async def __aiter__(self):
        for event in self.events:
            yield event
        if self.error is not None:
            raise self.error
