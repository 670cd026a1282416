"""Synthetic OpenAI responses served in-process, so the benchmark times the SDK and not a network.

The real ``openai`` SDK parses real bytes (JSON bodies, SSE streams) handed over by an
``httpx.MockTransport``; the bodies are built once, so the transport costs the same for
every contender. The shapes follow what api.openai.com returns (see the recordings in
``shared/recordings/openai``).
"""

from __future__ import annotations

import json
from typing import Dict, List, Tuple

import httpx

CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
API_KEY = "sk-bench-not-a-real-key"
BASE_URL = "https://api.openai.com/v1"

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Tell me a short joke about OpenTelemetry."},
]
WORDS = ("Why did the span cross the service boundary? To propagate its context, "
         "of course - and the collector was waiting on the other side with a batch "
         "processor, a sampler and a very long export queue that nobody ever drained.").split()


def _text(n: int) -> List[str]:
    return [(" " if i else "") + WORDS[i % len(WORDS)] for i in range(n)]


def chat_body() -> bytes:
    content = "".join(_text(40))
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1732230000,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 27, "completion_tokens": 40, "total_tokens": 67,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
    }).encode()


def stream_body(chunks: int, include_usage: bool) -> bytes:
    """``chunks`` chat.completion.chunk events with content (the last one carries
    finish_reason), plus the usage-only event when ``include_usage``."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1732230000,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench"}
    events = []
    for i, word in enumerate(_text(chunks)):
        delta: Dict[str, object] = {"content": word}
        if i == 0:
            delta["role"] = "assistant"
        last = i == chunks - 1
        event = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": "stop" if last else None}])
        if include_usage:
            event["usage"] = None
        events.append(event)
    if include_usage:
        events.append(dict(base, choices=[], usage={"prompt_tokens": 27, "completion_tokens": chunks,
                                                    "total_tokens": 27 + chunks}))
    out = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return out + b"data: [DONE]\n\n"


def embeddings_body(dimensions: int = 256) -> bytes:
    vector = [round(((i * 7919) % 1000) / 1000.0 - 0.5, 6) for i in range(dimensions)]
    return json.dumps({
        "object": "list", "model": EMBED_MODEL,
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }).encode()


_JSON = [("content-type", "application/json"), ("x-request-id", "req_bench")]
_SSE = [("content-type", "text/event-stream; charset=utf-8"), ("x-request-id", "req_bench")]


class Server:
    """Answers chat, streamed chat and embeddings requests from prebuilt bodies.

    The request body is only searched for two byte strings (stream? usage?), so the
    "server" costs a few microseconds and the same for everyone.
    """

    def __init__(self, stream_chunks: int = 40) -> None:
        self.stream_chunks = stream_chunks
        self._chat = chat_body()
        self._embeddings = embeddings_body()
        self._streams: Dict[Tuple[int, bool], bytes] = {}
        self.requests = 0

    def stream(self, chunks: int, include_usage: bool) -> bytes:
        key = (chunks, include_usage)
        body = self._streams.get(key)
        if body is None:
            body = self._streams[key] = stream_body(chunks, include_usage)
        return body

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if request.url.path.endswith("/embeddings"):
            return httpx.Response(200, headers=_JSON, content=self._embeddings)
        body = request.content
        if b'"stream":true' in body or b'"stream": true' in body:
            usage = b'"include_usage":true' in body or b'"include_usage": true' in body
            return httpx.Response(200, headers=_SSE, content=self.stream(self.stream_chunks, usage))
        return httpx.Response(200, headers=_JSON, content=self._chat)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def http_client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport())

    def openai_client(self):
        import openai

        return openai.OpenAI(api_key=API_KEY, base_url=BASE_URL, max_retries=0,
                             http_client=self.http_client())
