"""Helpers for the OpenAI instrumentor tests."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, List, Tuple
from urllib.parse import urlsplit

import httpx
import openai
import pytest

import openai
import pytest

#: (major, minor) of the installed SDK, for the tests whose expectations differ by version
OPENAI_VERSION = tuple(int(part) for part in openai.__version__.split(".")[:2])
#: where structured output lives: ``beta.chat.completions.parse`` in every 1.40+ release,
#: ``chat.completions.parse`` too from 1.92
PARSE_RESOURCES = ("beta.chat.completions",) + (("chat.completions",) if OPENAI_VERSION >= (1, 92) else ())
needs_responses_api = pytest.mark.skipif(OPENAI_VERSION < (1, 66), reason="the Responses API arrived in openai 1.66")


def resource(client, path):
    """``resource(client, "beta.chat.completions")`` -> that resource object of ``client``."""
    for part in path.split("."):
        client = getattr(client, part)
    return client


def llm_spans(spans):
    """The GenAI spans of this test (others, e.g. user spans, filtered out)."""
    return [s for s in spans() if s.attributes.get("gen_ai.operation.name")]


def content(span, key):
    """A captured content attribute, parsed back from JSON."""
    return json.loads(span.attributes[key])


# ---- a local OpenAI-compatible server: real HTTP, bodies given by the test ------------------

Reply = Tuple[int, List[Tuple[str, str]], bytes]  # status, headers, body


def json_reply(body: Any, status: int = 200) -> Reply:
    return status, [("Content-Type", "application/json")], json.dumps(body).encode()


def sse_reply(events: List[Any], done: bool = True) -> Reply:
    """Chat / completions chunks (``data:`` lines ending in ``[DONE]``), or Responses events
    given as ``(name, data)`` pairs (``event:`` + ``data:`` lines, no ``[DONE]``)."""
    out = []
    for event in events:
        if isinstance(event, tuple):
            out.append(f"event: {event[0]}\ndata: {json.dumps(event[1])}\n\n")
        else:
            out.append(f"data: {json.dumps(event)}\n\n")
    if done and not any(isinstance(e, tuple) for e in events):
        out.append("data: [DONE]\n\n")
    return 200, [("Content-Type", "text/event-stream")], "".join(out).encode()


class Served:
    """What the server received: ``(method, path, query, json body or None)`` per request."""

    def __init__(self, url: str) -> None:
        self.url = url  # the base URL, ``http://127.0.0.1:PORT``
        self.requests: List[Tuple[str, str, str, Any]] = []

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@contextlib.contextmanager
def local_server(answer: Callable[[str, str, Any], Reply]) -> Iterator[Served]:
    """A real HTTP server on 127.0.0.1: ``answer(method, path, json body)`` gives each reply."""
    served = Served("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            parts = urlsplit(self.path)
            served.requests.append((self.command, parts.path, parts.query, body))
            status, headers, payload = answer(self.command, parts.path, body)
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _reply

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def client_for(served: Served, async_: bool = False, **kwargs: Any) -> Any:
    """An ``OpenAI`` / ``AsyncOpenAI`` client of the local server (no retries)."""
    cls = openai.AsyncOpenAI if async_ else openai.OpenAI
    return cls(api_key="sk-test-not-a-real-key", base_url=served.url + "/v1", max_retries=0,
               http_client=http_client(async_), **kwargs)


def http_client(async_: bool = False) -> Any:
    """An httpx client of our own: SDKs before 1.55.3 build theirs with an argument httpx 0.28 dropped."""
    return httpx.AsyncClient() if async_ else httpx.Client()


def needs_sdk(module: str, reason: str) -> None:
    """Skip on an openai SDK that does not model this API yet (the package declares >= 1.40)."""
    pytest.importorskip(f"openai.types.{module}", reason=f"openai {openai.__version__}: {reason}")
