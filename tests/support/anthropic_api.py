"""A faithful stand-in for Anthropic's Messages API, for the real ``anthropic`` SDK over its
own HTTP package (httpx2, not httpx): ``client()`` / ``async_client()``.

Bodies follow the API's documented shapes (message JSON, SSE event sequence, error envelope);
the scenario is chosen per request with the ``x-scenario`` header.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List

MODEL = "claude-sonnet-4-6"
HEADERS = {"request-id": "req_011CUt8fSZ5ajvVkDNLSXyP3"}


def message(text: str = "Hello! How can I help you today?", input_tokens: int = 12, output_tokens: int = 10,
            cache_creation: int = 0, cache_read: int = 0, msg_id: str = "msg_01XFDUDYJgAACzvnptvVoYEL") -> Dict[str, Any]:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": cache_creation,
                      "cache_read_input_tokens": cache_read,
                      "cache_creation": {"ephemeral_5m_input_tokens": cache_creation, "ephemeral_1h_input_tokens": 0},
                      "output_tokens": output_tokens, "service_tier": "standard"}}


def _sse(event: str, data: Dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream_events() -> List[str]:
    """A streamed answer: 25 input tokens (+100 read from the cache), 15 output tokens."""
    start = message(input_tokens=25, output_tokens=1, cache_read=100, msg_id="msg_01StreamAbCdEfGhIjKlMnOp")
    start.update(content=[], stop_reason=None)
    return [
        _sse("message_start", {"type": "message_start", "message": start}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("ping", {"type": "ping"}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "Hello"}}),
        _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": " there, streaming!"}}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": 15}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]


def handle(request: Any) -> Any:
    import httpx2

    scenario = request.headers.get("x-scenario", "ok")
    body = json.loads(request.content or b"{}")
    if scenario == "overloaded":
        return httpx2.Response(529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                                          "request_id": "req_err"}, headers=HEADERS)
    if body.get("stream"):
        return httpx2.Response(200, content="".join(stream_events()).encode(),
                               headers={**HEADERS, "content-type": "text/event-stream"})
    if scenario == "cache-write":
        return httpx2.Response(200, json=message(input_tokens=21, cache_creation=2048, output_tokens=8), headers=HEADERS)
    if scenario == "cache-read":
        return httpx2.Response(200, json=message(input_tokens=21, cache_read=2048, output_tokens=8), headers=HEADERS)
    return httpx2.Response(200, json=message(), headers=HEADERS)


async def ahandle(request: Any) -> Any:
    await asyncio.sleep(0.01)
    return handle(request)


def client(**options: Any) -> Any:
    import anthropic
    import httpx2

    return anthropic.Anthropic(api_key="sk-ant-test", max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(handle)), **options)


def async_client(**options: Any) -> Any:
    import anthropic
    import httpx2

    return anthropic.AsyncAnthropic(api_key="sk-ant-test", max_retries=0,
                                    http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(ahandle)), **options)
