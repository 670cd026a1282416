"""Helpers for the reliability tests: the fake API key, scripted transports, open-span tracking,
forks while a lock is held."""

from __future__ import annotations

import os
import threading
import time

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

    def _fresh_error(self):
        # a new instance per response: one instance raised again and again would keep
        # every traceback (and every frame's locals) it ever passed through
        return type(self.error)(*self.error.args)

    def __iter__(self):
        yield from self.events
        if self.error is not None:
            raise self._fresh_error()

    async def __aiter__(self):
        for event in self.events:
            yield event
        if self.error is not None:
            raise self._fresh_error()


class OtlpBackend:
    """A local OTLP/HTTP (protobuf) trace receiver we can break: ``mode`` is ``ok``,
    ``503`` (Service Unavailable), ``hang`` (answers only after ``hang_seconds``); ``stop()``
    closes the port (connection refused) and ``start()`` opens the same port again."""

    def __init__(self) -> None:
        import socket

        self.mode = "ok"
        self.hang_seconds = 0.0
        self.span_ids = []  # every span received, in arrival order
        self.names = []
        self.requests = 0
        self._lock = threading.Lock()
        self._server = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/traces"

    def start(self) -> "OtlpBackend":
        import gzip
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with backend._lock:
                    backend.requests += 1
                mode = backend.mode
                if mode == "hang":
                    time.sleep(backend.hang_seconds)
                if mode == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                ids = [span.span_id.hex() for rs in request.resource_spans for ss in rs.scope_spans
                       for span in ss.spans]
                names = [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
                with backend._lock:
                    backend.span_ids.extend(ids)
                    backend.names.extend(names)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


CHILD_TIMEOUT_S = 10.0


def held_by_a_thread(lock) -> threading.Event:
    """Hold ``lock`` in another thread until the returned event is set."""
    release, holding = threading.Event(), threading.Event()

    def hold():
        with lock:
            holding.set()
            release.wait(30)

    threading.Thread(target=hold, daemon=True).start()
    assert holding.wait(5)
    return release


def fork_and_run(child) -> int:
    """Fork; the child runs ``child()`` and exits 0 (1 on an exception); -1 when it hangs."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            child()
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -1
