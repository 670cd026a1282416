"""Replay the recorded OpenAI traffic in ../shared/recordings through the real SDKs.

A cassette (vcrpy format) is served either in-process by an ``httpx.MockTransport``
(the SDK still parses real bytes, SSE streams included) or over real HTTP by a local
server (:func:`serve`), for code that builds its own clients (LangChain, LlamaIndex,
subprocesses). Requests are matched on method and path, in recorded order per path.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Deque, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit

import httpx
import yaml

_HOP_HEADERS = {"transfer-encoding", "content-length", "connection"}


@dataclass
class Interaction:
    method: str
    path: str
    request_body: str
    status: int
    headers: List[Tuple[str, str]]
    body: bytes


def load(path: Path) -> List[Interaction]:
    data = yaml.load(Path(path).read_text(), Loader=yaml.Loader)  # cassettes use !!binary
    out = []
    for item in data["interactions"]:
        req, resp = item["request"], item["response"]
        body = resp["body"].get("string", b"")
        if isinstance(body, str):
            body = body.encode()
        headers = [(k, v) for k, values in resp.get("headers", {}).items()
                   for v in (values if isinstance(values, list) else [values])
                   if k.lower() not in _HOP_HEADERS]
        request_body = req.get("body") or ""
        out.append(Interaction(req["method"].upper(), urlsplit(req["uri"]).path, request_body if isinstance(
            request_body, str) else request_body.decode(errors="replace"), resp["status"]["code"], headers, body))
    return out


class Cassette:
    """Serves a cassette's responses in order; ``repeat=True`` cycles (benchmarks)."""

    def __init__(self, path: Path, repeat: bool = False) -> None:
        self.interactions = load(path)
        self.repeat = repeat
        self._queues: Dict[Tuple[str, str], Deque[Interaction]] = defaultdict(deque)
        for it in self.interactions:
            self._queues[(it.method, it.path)].append(it)
        self._lock = threading.Lock()
        self.requests: List[Tuple[str, str, bytes]] = []  # what the client really sent

    def next(self, method: str, path: str, body: bytes = b"") -> Interaction:
        with self._lock:
            self.requests.append((method, path, body))
            queue = self._queues.get((method, _strip_prefix(path, self._queues)))
            if not queue:
                raise LookupError(f"cassette has no (more) response for {method} {path}")
            it = queue.popleft()
            if self.repeat:
                queue.append(it)
            return it

    # -- in-process -----------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            it = self.next(request.method, request.url.path, request.content)
            return httpx.Response(it.status, headers=it.headers, content=it.body)

        return httpx.MockTransport(handler)

    def openai_client(self, async_: bool = False, **kwargs):
        import openai

        kwargs.setdefault("api_key", "sk-test-not-a-real-key")
        kwargs.setdefault("base_url", "https://api.openai.com/v1")
        kwargs.setdefault("max_retries", 0)
        if async_:
            return openai.AsyncOpenAI(http_client=httpx.AsyncClient(transport=self.transport()), **kwargs)
        return openai.OpenAI(http_client=httpx.Client(transport=self.transport()), **kwargs)


def _strip_prefix(path: str, queues) -> str:
    """Accept a base URL with an extra prefix (``/openai/v1/...`` for Azure-style)."""
    if any(p == path for _, p in queues):
        return path
    for _, recorded in queues:
        if path.endswith(recorded):
            return recorded
    return path


@contextlib.contextmanager
def serve(cassette: Cassette) -> Iterator[str]:
    """Serve ``cassette`` over real HTTP on 127.0.0.1; yields the ``/v1`` base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                it = cassette.next(self.command, urlsplit(self.path).path, body)
            except LookupError as exc:
                self.send_error(599, str(exc))
                return
            self.send_response(it.status)
            for key, value in it.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(it.body)))
            self.end_headers()
            self.wfile.write(it.body)

        do_GET = do_POST = do_DELETE = _reply

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
