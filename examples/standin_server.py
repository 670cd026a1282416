"""STAND-IN for the OpenAI API — a small local OpenAI-compatible server, NOT a model.

It lets the examples, the demo and the end-to-end tests run with no API key and no
network. Replies are deterministic text built from the request (no model is involved),
but the wire format is the real one, so the real ``openai`` SDK, LangChain and LlamaIndex
talk to it unchanged and the instrumentation sees real responses:

- ``POST /v1/chat/completions``: JSON or SSE streaming (``stream_options.include_usage``
  adds the final usage chunk), tool calls when ``tools`` are given (arguments filled
  from the tool's JSON schema), a text answer once the tool results come back, ``n``.
- ``POST /v1/completions`` (legacy text completions), ``POST /v1/embeddings`` (float or
  base64, ``dimensions``), ``GET /v1/models``.
- ``POST /v1/messages``: Anthropic's Messages API (JSON or its SSE event stream; cache
  read/write usage when the request marks a block ``cache_control``), for the Anthropic SDK.
- ``usage`` counted the way the API counts it (message overhead included), with a
  rough local tokenizer; a model named ``does-not-exist`` gets the API's 404 error.

Run it: ``python examples/standin_server.py [--port 8765]``; it prints its base URL.
Point any client at it with ``OPENAI_BASE_URL=http://127.0.0.1:8765/v1`` and any key.
Standard library only, so it runs in any environment.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

BANNER = "stand-in OpenAI-compatible server (deterministic replies, not a model)"
_CREATED = 1_732_000_000  # fixed timestamp: replies are reproducible byte for byte
_TOKEN = re.compile(r"\w{1,4}|[^\w\s]")  # ~4 characters a token, like cl100k on English


def count_tokens(text: str) -> int:
    """A rough token count (words in 4-character pieces, punctuation apart)."""
    return len(_TOKEN.findall(text or ""))


def _text_of(content: Any) -> str:
    """Message content as plain text (string or a list of content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def _prompt_tokens(messages: List[Dict[str, Any]], tools: Optional[list]) -> int:
    # The API charges ~3 tokens per message plus 3 to prime the reply.
    total = 3
    for m in messages:
        total += 3 + count_tokens(_text_of(m.get("content"))) + count_tokens(m.get("name") or "")
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            total += count_tokens(fn.get("name", "")) + count_tokens(fn.get("arguments", ""))
    if tools:
        total += count_tokens(json.dumps(tools))
    return total


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# -- deterministic "answers" -------------------------------------------------------------

def _last(messages: List[Dict[str, Any]], role: str) -> Optional[Dict[str, Any]]:
    for m in reversed(messages):
        if m.get("role") == role:
            return m
    return None


def _answer(messages: List[Dict[str, Any]]) -> str:
    """The reply text: answers the last user message, or summarises tool results."""
    if messages and messages[-1].get("role") == "tool":
        results = []
        for m in reversed(messages):
            if m.get("role") != "tool":
                break
            results.insert(0, _text_of(m.get("content")))
        return "According to the tool: " + "; ".join(r[:200] for r in results) + "."
    user = _last(messages, "user")
    question = _text_of(user.get("content")) if user else ""
    # RAG prompts put the question after the context ("Query: ...", "Question: ...")
    marker = re.findall(r"(?:Query|Question):\s*(.+)", question)
    question = " ".join((marker[-1] if marker else question).split())
    if len(question) > 120:
        question = question[:117] + "..."
    context = ""
    system = " ".join(_text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    if "context" in system.lower() or (user and re.search(r"(?im)^context\b", _text_of(user.get("content")))):
        context = " I used the context I was given."  # a RAG prompt: context in system or user turn
    return f"Stand-in answer to \"{question}\".{context} This reply is deterministic."


def _guess_place(text: str) -> str:
    """A capitalised word or phrase from the user's text ("San Francisco"), for string args."""
    found = re.findall(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s[A-Z][a-z]+)*)", text)
    return found[-1] if found else "example"


def _arguments(schema: Dict[str, Any], user_text: str) -> Dict[str, Any]:
    """Arguments that satisfy a tool's JSON schema: required properties, simple values."""
    props = schema.get("properties") or {}
    required = schema.get("required") or list(props)
    args: Dict[str, Any] = {}
    for name in required:
        spec = props.get(name, {})
        kind = spec.get("type", "string")
        if "enum" in spec:
            args[name] = spec["enum"][0]
        elif kind in ("integer", "number"):
            args[name] = 3
        elif kind == "boolean":
            args[name] = True
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = _arguments(spec, user_text)
        else:
            args[name] = _guess_place(user_text)
    return args


def _tool_calls(body: Dict[str, Any], messages: List[Dict[str, Any]]) -> Optional[List[Dict[str, Any]]]:
    """Call the chosen tool (or the first) unless the results are already in or tools are off."""
    tools = [t for t in body.get("tools") or [] if t.get("type", "function") == "function"]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    tool = tools[0]
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        tool = next((t for t in tools if t["function"]["name"] == wanted), tool)
    fn = tool["function"]
    user = _last(messages, "user")
    args = _arguments(fn.get("parameters") or {}, _text_of(user.get("content")) if user else "")
    call_id = "call_" + _digest(fn["name"], args, len(messages))[:24]
    return [{"id": call_id, "type": "function",
             "function": {"name": fn["name"], "arguments": json.dumps(args)}}]


def _completion_id(prefix: str, body: Dict[str, Any]) -> str:
    return f"{prefix}-standin{_digest(body)[:20]}"


def _usage(prompt: int, completion: int) -> Dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def chat_completion(body: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON body of a non-streamed chat completion."""
    messages = body.get("messages") or []
    n = int(body.get("n") or 1)
    calls = _tool_calls(body, messages)
    choices = []
    completion = 0
    for i in range(n):
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": calls, "refusal": None}
            reason = "tool_calls"
            completion += sum(count_tokens(c["function"]["arguments"]) + 3 for c in calls)
        else:
            full = _answer(messages) if i == 0 else f"{_answer(messages)} (choice {i})"
            text = _truncate(full, body)
            message = {"role": "assistant", "content": text, "refusal": None}
            reason = "length" if text != full else "stop"
            completion += count_tokens(text)
        choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": reason})
    return {"id": _completion_id("chatcmpl", body), "object": "chat.completion", "created": _CREATED,
            "model": body.get("model", "gpt-4o-mini"), "system_fingerprint": "fp_standin",
            "service_tier": "default", "choices": choices,
            "usage": _usage(_prompt_tokens(messages, body.get("tools")), completion)}


def _truncate(text: str, body: Dict[str, Any]) -> str:
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if not limit:
        return text
    pieces = list(_TOKEN.finditer(text))
    if len(pieces) <= int(limit):
        return text
    return text[: pieces[int(limit) - 1].end()]


def chat_chunks(body: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """The SSE chunks of a streamed chat completion (the same content, split up)."""
    full = chat_completion(body)
    base = {"id": full["id"], "object": "chat.completion.chunk", "created": _CREATED,
            "model": full["model"], "system_fingerprint": "fp_standin", "service_tier": "default"}
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    for choice in full["choices"]:
        i, msg = choice["index"], choice["message"]
        first = {"role": "assistant", "content": "" if not msg.get("tool_calls") else None,
                 "refusal": None}
        yield {**base, "choices": [{"index": i, "delta": first, "logprobs": None, "finish_reason": None}]}
        if msg.get("tool_calls"):
            for k, call in enumerate(msg["tool_calls"]):
                head = {"index": k, "id": call["id"], "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""}}
                yield {**base, "choices": [{"index": i, "delta": {"tool_calls": [head]},
                                            "logprobs": None, "finish_reason": None}]}
                for piece in _pieces(call["function"]["arguments"]):
                    delta = {"tool_calls": [{"index": k, "function": {"arguments": piece}}]}
                    yield {**base, "choices": [{"index": i, "delta": delta, "logprobs": None,
                                                "finish_reason": None}]}
        else:
            for piece in _pieces(msg["content"]):
                yield {**base, "choices": [{"index": i, "delta": {"content": piece},
                                            "logprobs": None, "finish_reason": None}]}
        yield {**base, "choices": [{"index": i, "delta": {}, "logprobs": None,
                                    "finish_reason": choice["finish_reason"]}]}
    if include_usage:
        yield {**base, "choices": [], "usage": full["usage"]}


def _pieces(text: str) -> List[str]:
    """Split text into token-sized pieces, the way the API streams deltas."""
    return re.findall(r"\s*\S{1,6}|\s+$", text) or [text]


def text_completion(body: Dict[str, Any]) -> Dict[str, Any]:
    prompts = body.get("prompt")
    prompts = prompts if isinstance(prompts, list) else [prompts or ""]
    choices, completion = [], 0
    for i, prompt in enumerate(prompts):
        text = _truncate(" " + _answer([{"role": "user", "content": str(prompt)}]), body)
        completion += count_tokens(text)
        choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": "stop"})
    prompt_tokens = sum(count_tokens(str(p)) for p in prompts)
    return {"id": _completion_id("cmpl", body), "object": "text_completion", "created": _CREATED,
            "model": body.get("model", "gpt-3.5-turbo-instruct"), "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                      "total_tokens": prompt_tokens + completion}}


def embed(text: str, dimensions: int) -> List[float]:
    """A deterministic unit vector; texts sharing words get similar vectors (bag of words)."""
    vec = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()) or [""]:
        h = hashlib.sha256(word.encode()).digest()
        for j in range(0, 16, 4):
            idx = int.from_bytes(h[j:j + 2], "little") % dimensions
            vec[idx] += 1.0 if h[j + 2] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def embeddings(body: Dict[str, Any]) -> Dict[str, Any]:
    inputs = body.get("input")
    inputs = inputs if isinstance(inputs, list) else [inputs]
    if inputs and isinstance(inputs[0], int):  # one pre-tokenized input
        inputs = [inputs]
    texts = [" ".join(map(str, x)) if isinstance(x, list) else str(x) for x in inputs]
    dims = int(body.get("dimensions") or 256)
    data = []
    for i, text in enumerate(texts):
        vec = embed(text, dims)
        if body.get("encoding_format") == "base64":
            payload: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        else:
            payload = vec
        data.append({"object": "embedding", "index": i, "embedding": payload})
    tokens = sum(count_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": body.get("model", "text-embedding-3-small"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "gpt-3.5-turbo-instruct"]


def _anthropic_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text", "")) for b in content or () if isinstance(b, dict))


def anthropic_message(body: Dict[str, Any]) -> Dict[str, Any]:
    """Anthropic's Messages API answer: ``input_tokens`` without the cached part, the cache
    read / written apart (as the API reports them)."""
    messages = body.get("messages") or []
    system = _anthropic_text(body.get("system"))
    prompt = 3 + count_tokens(system) + sum(3 + count_tokens(_anthropic_text(m.get("content"))) for m in messages)
    cached = any(isinstance(b, dict) and b.get("cache_control") for m in messages
                 for b in (m.get("content") if isinstance(m.get("content"), list) else ()))
    text = _truncate(_answer([{"role": m.get("role"), "content": _anthropic_text(m.get("content"))}
                              for m in messages]), {"max_tokens": body.get("max_tokens")})
    cache_read = prompt // 2 if cached else 0
    return {"id": "msg_" + _digest("msg", body)[:24], "type": "message", "role": "assistant",
            "model": body.get("model"), "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": prompt - cache_read, "cache_creation_input_tokens": 0,
                                             "cache_read_input_tokens": cache_read, "output_tokens": count_tokens(text),
                                             "service_tier": "standard"}}


def anthropic_events(message: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """The Messages API's SSE event sequence for ``message``."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}
    for piece in _pieces(message["content"][0]["text"]):
        yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": piece}}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": message["usage"]["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


def _error(status: int, message: str, code: str, typ: str = "invalid_request_error") -> Tuple[int, Dict]:
    return status, {"error": {"message": message, "type": typ, "param": None, "code": code}}


class Handler(BaseHTTPRequestHandler):
    """Routes the few endpoints above; anything else is the API's 404."""

    protocol_version = "HTTP/1.1"
    server_version = "llm-otel-standin/1"
    quiet = True
    def _note(self, body: Dict[str, Any], response: Dict[str, Any]) -> None:
        journal = getattr(self.server, "journal", None)
        if journal is not None:
            journal.append((self.path.split("?")[0], body, response))

    def _send(self, status: int, payload: Dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self._common_headers()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _noted(self, body: Dict[str, Any], response: Dict[str, Any]) -> Dict[str, Any]:
        self._note(body, response)
        return response

    def _common_headers(self) -> None:
        self.send_header("x-request-id", "req_standin_" + _digest(self.path, time.time())[:16])
        self.send_header("openai-processing-ms", "1")
        self.send_header("x-standin", "true")

    def _stream(self, chunks: Iterator[Dict[str, Any]]) -> None:
        self.send_response(200)
        self._common_headers()
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # end of body = end of stream, no chunking needed
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _anthropic_stream(self, events: Iterator[Tuple[str, Dict[str, Any]]]) -> None:
        self.send_response(200)
        self._common_headers()
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": _CREATED, "owned_by": "standin"} for m in MODELS]})
        else:
            self._send(*_error(404, f"Unknown request URL: GET {self.path}.", "unknown_url"))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(*_error(400, "We could not parse the JSON body of your request.", "invalid_json"))
            return
        path = self.path.split("?")[0].rstrip("/")
        if body.get("model") == "does-not-exist":
            self._send(*_error(404, "The model `does-not-exist` does not exist or you do not have "
                                    "access to it.", "model_not_found"))
        elif path.endswith("/chat/completions"):
            if not body.get("messages"):
                self._send(*_error(400, "Missing required parameter: 'messages'.", "missing_required_parameter"))
            elif body.get("stream"):
                self._note(body, chat_completion(body))
                self._stream(chat_chunks(body))
            else:
                self._send(200, self._noted(body, chat_completion(body)))
        elif path.endswith("/completions"):
            full = self._noted(body, text_completion(body))
            if body.get("stream"):
                self._stream(iter([{**full, "usage": None}]))
            else:
                self._send(200, full)
        elif path.endswith("/embeddings"):
            self._send(200, self._noted(body, embeddings(body)))
        elif path.endswith("/v1/messages"):
            message = self._noted(body, anthropic_message(body))
            if body.get("stream"):
                self._anthropic_stream(anthropic_events(message))
            else:
                self._send(200, message)
        else:
            self._send(*_error(404, f"Unknown request URL: POST {self.path}.", "unknown_url"))

    def log_message(self, fmt: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(fmt, *args)


Journal = List[Tuple[str, Dict[str, Any], Dict[str, Any]]]


def start(port: int = 0, host: str = "127.0.0.1",
          journal: Optional[Journal] = None) -> Tuple[ThreadingHTTPServer, str]:
    """Start the stand-in in a daemon thread; returns the server and its ``/v1`` base URL.

    ``journal``: a list that gets (path, request body, response body) per served call, so
    a test can compare what the instrumentation recorded with what was really served.
    """
    server = ThreadingHTTPServer((host, port), Handler)
    server.journal = journal  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="standin-openai", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/v1"


def ensure_openai_env() -> str:
    """Where the examples send their calls; starts the stand-in when nothing is configured.

    ``OPENAI_API_KEY`` set: the real API (or ``OPENAI_BASE_URL``, if set too). Only
    ``OPENAI_BASE_URL`` set: that OpenAI-compatible server, with a placeholder key.
    Neither: this stand-in, started in-process on a free port. Returns a label to print.
    """
    import os
    import sys

    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("OPENAI_BASE_URL") or "the OpenAI API"
    if os.environ.get("OPENAI_BASE_URL"):
        os.environ["OPENAI_API_KEY"] = "not-needed"  # the SDK insists on some key
        return os.environ["OPENAI_BASE_URL"]
    _server, url = start()
    os.environ["OPENAI_BASE_URL"] = url
    os.environ["OPENAI_API_KEY"] = "standin-no-key"
    print(f"[no OPENAI_API_KEY: using the {BANNER} at {url}]", file=sys.stderr)
    return url


def ensure_anthropic_env() -> str:
    """As :func:`ensure_openai_env`, for the Anthropic SDK (``ANTHROPIC_API_KEY`` /
    ``ANTHROPIC_BASE_URL``); the stand-in answers both APIs."""
    import os
    import sys

    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("ANTHROPIC_BASE_URL") or "the Anthropic API"
    if os.environ.get("ANTHROPIC_BASE_URL"):
        os.environ["ANTHROPIC_API_KEY"] = "not-needed"
        return os.environ["ANTHROPIC_BASE_URL"]
    _server, url = start()
    os.environ["ANTHROPIC_BASE_URL"] = url[: -len("/v1")]  # the SDK adds /v1/messages itself
    os.environ["ANTHROPIC_API_KEY"] = "standin-no-key"
    print(f"[no ANTHROPIC_API_KEY: using the {BANNER} at {os.environ['ANTHROPIC_BASE_URL']}]", file=sys.stderr)
    return os.environ["ANTHROPIC_BASE_URL"]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=BANNER)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    Handler.quiet = not args.verbose
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"{BANNER}\nOPENAI_BASE_URL=http://{args.host}:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
