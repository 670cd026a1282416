"""Helpers for the conventions tests: a paced OpenAI-compatible server (real HTTP, the
stand-in's wire format, a pause before the first chunk and between chunks, so chunk
timings have known lower bounds), the names each profile owns, and metric reading."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional

import httpx
import openai

from support.standin import standin_server

V141, V010 = "v1.41", "v0.1.0"

# the attribute and metric names one profile uses and the other must not (digest §2.1, §6, §5.4, §8)
ONLY = {
    V141: {"span": {"gen_ai.usage.cache_creation.input_tokens", "gen_ai.workflow.name"},
           "metric": {"gen_ai.client.token.usage", "gen_ai.client.operation.time_to_first_chunk",
                      "gen_ai.client.operation.time_per_output_chunk"},
           "metric_attribute": {"gen_ai.token.type"}},
    V010: {"span": {"gen_ai.usage.cache_write.input_tokens", "gen_ai.retrieval.top_k"},
           "metric": {"gen_ai.client.inference.duration", "gen_ai.client.inference.time_to_first_chunk",
                      "gen_ai.client.inference.time_per_output_chunk",
                      "gen_ai.client.inference.operation.input_tokens",
                      "gen_ai.client.inference.operation.output_tokens",
                      "gen_ai.client.inference.usage.input_tokens", "gen_ai.client.inference.usage.output_tokens",
                      "gen_ai.client.inference.usage.cache_read.input_tokens",
                      "gen_ai.client.inference.usage.cache_write.input_tokens",
                      "gen_ai.client.inference.usage.reasoning.output_tokens",
                      "gen_ai.client.embeddings.duration", "gen_ai.client.embeddings.operation.input_tokens"},
           "metric_attribute": {"gen_ai.token.modality"}},
}
OTHER = {V141: V010, V010: V141}

# the conventions' bucket advice (digest §8.1, §5.6), written out: not read from the code under test
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
AGENT_BUCKETS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6)


# ---- metrics -------------------------------------------------------------------------------


@dataclass
class Metric:
    name: str
    unit: str
    kind: str  # Histogram | Sum
    monotonic: Optional[bool]
    points: List[Any] = field(default_factory=list)


class Metrics:
    """What the SDK reader holds, by metric name, reduced to the points of this test's calls:
    those with an attribute value among ``ids`` (a unique model, agent or tool name). Counters
    are cumulative over the session, histograms delta: an id per test keeps tests apart."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._seen: Dict[str, Metric] = {}

    def read(self, *ids: str) -> Dict[str, Metric]:
        data = self._reader.get_metrics_data()
        for rm in (data.resource_metrics if data else ()):
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    seen = self._seen.setdefault(m.name, Metric(m.name, m.unit, type(m.data).__name__,
                                                                getattr(m.data, "is_monotonic", None)))
                    seen.points.extend(m.data.data_points)
        out: Dict[str, Metric] = {}
        for name, seen in self._seen.items():
            points = [p for p in seen.points if any(v in ids for v in p.attributes.values())]
            if points:
                out[name] = Metric(name, seen.unit, seen.kind, seen.monotonic, points)
        return out


def last(metric: Metric, **attrs: Any) -> Any:
    """The newest point with these attributes (``gen_ai__token__type`` = ``gen_ai.token.type``)."""
    wanted = {k.replace("__", "."): v for k, v in attrs.items()}
    found = [p for p in metric.points if all(p.attributes.get(k) == v for k, v in wanted.items())]
    assert found, f"no point of {metric.name} with {wanted}"
    return found[-1]


# ---- a paced OpenAI-compatible server --------------------------------------------------------


@dataclass
class Served:
    url: str  # the /v1 base URL
    bodies: List[Dict[str, Any]] = field(default_factory=list)

    def client(self) -> Any:
        return openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=self.url, max_retries=0,
                             http_client=httpx.Client())


@contextlib.contextmanager
def paced_server(first_delay: float = 0.0, gap: float = 0.0,
                 reply: Optional[Callable[[Dict[str, Any]], Any]] = None,
                 chunks: Optional[Callable[[Dict[str, Any]], List[Dict[str, Any]]]] = None) -> Iterator[Served]:
    """An OpenAI-compatible server on 127.0.0.1: ``reply(body)`` answers a plain request with a
    JSON body or ``(status, body)`` (default: the stand-in's answer to the path); a streamed chat gets ``chunks(body)`` (default: the stand-in's), the
    first after ``first_delay`` seconds and each next one ``gap`` seconds later."""
    served = Served("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            served.bodies.append(body)
            if not body.get("stream"):
                answer = (reply or _standin_reply(self.path))(body)
                status, answer = answer if isinstance(answer, tuple) else (200, answer)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")  # the end of the body ends the stream
            self.end_headers()
            time.sleep(first_delay)
            for i, chunk in enumerate((chunks or standin_server.chat_chunks)(body)):
                if i:
                    time.sleep(gap)
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    served.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def _standin_reply(path: str) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    if path.endswith("/chat/completions"):
        return standin_server.chat_completion
    return standin_server.embeddings if path.endswith("/embeddings") else standin_server.text_completion


def with_usage(usage: Dict[str, Any]) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    """A ``reply`` that is the stand-in's answer with this usage."""
    def reply(body: Dict[str, Any]) -> Dict[str, Any]:
        return {**standin_server.chat_completion(body), "usage": usage}
    return reply


def span_named(spans: Any, prefix: str) -> Any:
    [span] = [s for s in spans() if s.name.startswith(prefix)]
    return span
