"""Recorded chat calls back into OpenAI's chat format.

The core records content in the GenAI conventions' message shape (``role`` + ``parts``);
fine-tuning wants OpenAI's (``content`` strings, ``tool_calls``, ``tool`` messages with a
``tool_call_id``). This module reads one span's content attributes (or the content event,
under ``EVENT_ONLY``) and converts them, or says why it cannot.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Tuple

from llm_otel.core import semconv as sc
from llm_otel.core.content import TRUNCATION_MARK
from llm_otel.exporters.model import SpanRecord

_before, _, _after = TRUNCATION_MARK.partition("{}")
TRUNCATED = re.compile(re.escape(_before) + r"\d+" + re.escape(_after))

CONTENT_KEYS = (sc.INPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS, sc.OUTPUT_MESSAGES)


class Unconvertible(ValueError):
    """A span that cannot become a training example; ``reason`` is the report's key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# reasons, as they appear in the report
NO_CONTENT = "content not captured"
ERROR_SPAN = "error span"
TRUNCATED_CONTENT = "truncated content"
BAD_CONTENT = "content is not valid JSON"
UNSUPPORTED_PART = "unsupported content part"
NO_OUTPUT = "no assistant output"
CUT_OFF = "output cut off"


def is_chat_span(span: SpanRecord) -> bool:
    return span.attributes.get(sc.OPERATION_NAME) == "chat"


def content_of(span: SpanRecord) -> Dict[str, Any]:
    """The raw content attributes: on the span, else in the content event."""
    found = {k: span.attributes[k] for k in CONTENT_KEYS if k in span.attributes}
    if not found:
        for event in span.events:
            if event.name == sc.CONTENT_EVENT:
                found = {k: event.attributes[k] for k in CONTENT_KEYS if k in event.attributes}
                if found:
                    break
    return found


def _load(key: str, raw: Any) -> Any:
    if not isinstance(raw, str):
        raise Unconvertible(BAD_CONTENT, f"{key} is not a JSON string")
    if TRUNCATED.search(raw):
        raise Unconvertible(TRUNCATED_CONTENT, key)
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise Unconvertible(BAD_CONTENT, f"{key}: {exc}") from None
    if not isinstance(value, list):
        raise Unconvertible(BAD_CONTENT, f"{key} is not a JSON list")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _parts(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    parts = message.get("parts")
    if parts is None and isinstance(message.get("content"), str):  # a plain {"role", "content"}
        return [{"type": "text", "content": message["content"]}]
    if not isinstance(parts, list):
        raise Unconvertible(BAD_CONTENT, f"message without parts: {str(message)[:80]}")
    return [p for p in parts if isinstance(p, dict)]


def _texts(parts: List[Dict[str, Any]], role: str, allowed: Tuple[str, ...]) -> List[str]:
    texts = []
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            texts.append(_as_text(part.get("content", "")))
        elif kind == "reasoning":
            continue  # not part of the chat format; the model re-learns it
        elif kind not in allowed:
            raise Unconvertible(UNSUPPORTED_PART, f"{kind!r} in a {role} message")
    return texts


def convert_message(message: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One semconv message as OpenAI chat messages (a tool message per tool response)."""
    if not isinstance(message, dict):
        raise Unconvertible(BAD_CONTENT, "message is not an object")
    role = message.get("role")
    parts = _parts(message)
    if role in ("system", "developer"):
        return [{"role": "system", "content": "\n".join(_texts(parts, "system", ()))}]
    if role == "assistant":
        texts = _texts(parts, role, ("tool_call",))
        out: Dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
        calls = [{"id": str(p.get("id") or ""), "type": "function",
                  "function": {"name": str(p.get("name") or ""), "arguments": _as_text(
                      p.get("arguments") if p.get("arguments") is not None else {})}}
                 for p in parts if p.get("type") == "tool_call"]
        if calls:
            out["tool_calls"] = calls
        return [out]
    if role in ("user", "tool"):
        responses = [{"role": "tool", "tool_call_id": str(p.get("id") or ""),
                      "content": _as_text(p.get("response", ""))}
                     for p in parts if p.get("type") == "tool_call_response"]
        texts = _texts(parts, role, ("tool_call_response",))
        if role == "user" and texts:
            return responses + [{"role": "user", "content": "\n".join(texts)}]
        if texts:  # text in a tool message without an id to answer
            raise Unconvertible(UNSUPPORTED_PART, "text part in a tool message")
        return responses
    raise Unconvertible(UNSUPPORTED_PART, f"role {role!r}")


def convert_tool(definition: Any) -> Dict[str, Any]:
    """A tool definition (semconv flat or OpenAI nested) in OpenAI's nested form."""
    if not isinstance(definition, dict):
        raise Unconvertible(BAD_CONTENT, "tool definition is not an object")
    if isinstance(definition.get("function"), dict):
        return {"type": "function", "function": definition["function"]}
    if definition.get("type", "function") != "function":
        raise Unconvertible(UNSUPPORTED_PART, f"tool of type {definition.get('type')!r}")
    function = {k: definition[k] for k in ("name", "description", "parameters", "strict")
                if definition.get(k) is not None}
    return {"type": "function", "function": function}


def example_from_span(span: SpanRecord) -> Dict[str, Any]:
    """The OpenAI fine-tuning example of one chat span; :class:`Unconvertible` says why not."""
    if span.is_error or span.attributes.get(sc.ERROR_TYPE):
        raise Unconvertible(ERROR_SPAN, span.status_message or str(span.attributes.get(sc.ERROR_TYPE) or ""))
    raw = content_of(span)
    if sc.INPUT_MESSAGES not in raw or sc.OUTPUT_MESSAGES not in raw:
        raise Unconvertible(NO_CONTENT, "set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true")
    content = {key: _load(key, value) for key, value in raw.items()}
    messages: List[Dict[str, Any]] = []
    for message in content[sc.INPUT_MESSAGES]:
        messages.extend(convert_message(message))
    system = content.get(sc.SYSTEM_INSTRUCTIONS)
    if system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": "\n".join(_texts(
            [p for p in system if isinstance(p, dict)], "system", ()))})
    outputs = [m for m in content[sc.OUTPUT_MESSAGES] if isinstance(m, dict) and m.get("role", "assistant")
               == "assistant"]
    if not outputs:
        raise Unconvertible(NO_OUTPUT)
    output = outputs[0]  # choice 0 when n > 1
    finish = output.get("finish_reason")
    if finish in ("length", "content_filter"):
        raise Unconvertible(CUT_OFF, f"finish_reason={finish}")
    messages.extend(convert_message({**output, "role": "assistant"}))
    example: Dict[str, Any] = {"messages": messages}
    tools = content.get(sc.TOOL_DEFINITIONS)
    if tools:
        example["tools"] = [convert_tool(t) for t in tools]
    return example


def response_model(span: SpanRecord) -> Optional[str]:
    model = span.attributes.get(sc.RESPONSE_MODEL) or span.attributes.get(sc.REQUEST_MODEL)
    return str(model) if model else None
