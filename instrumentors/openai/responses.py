"""Responses API: ``responses.create`` (plain and event streams) and ``responses.parse``.

Input items (messages, function calls and their outputs), ``instructions``, tools and
the output items (messages, refusals, function calls, reasoning summaries) map onto the
semconv message shape; usage includes cached input and reasoning tokens.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from llm_otel.core import LLMInvocation

from .utils import get, integer, new_invocation, output_type, parse_arguments, response_extras, text, text_part

OPERATION = "chat"

_FINAL_EVENTS = frozenset(("response.completed", "response.incomplete", "response.failed"))
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def start(client: Any, body: Dict[str, Any], options: Any) -> LLMInvocation:
    inv = new_invocation(OPERATION, client, body)
    inv.max_tokens = integer(get(body, "max_output_tokens"))
    inv.output_type = output_type(get(get(body, "text"), "format"))
    effort = get(get(body, "reasoning"), "effort")
    if isinstance(effort, str):
        inv.provider_extras["request.reasoning_effort"] = effort
    conversation = get(body, "conversation")
    inv.conversation_id = text(conversation) or text(get(conversation, "id"))
    inv.usage_expected = True  # the final event carries the usage
    inv.set_input(body, input_content)
    return inv


# ---- request content -------------------------------------------------------------------


def _parts(content: Any) -> List[Dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: List[Dict[str, Any]] = []
    for item in content if isinstance(content, (list, tuple)) else (content,):
        kind = get(item, "type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(text_part(get(item, "text") or ""))
        elif kind == "refusal":  # no part of its own in the conventions: its text
            parts.append(text_part(get(item, "refusal") or ""))
        elif kind == "input_image":
            url = get(item, "image_url")
            if isinstance(url, str) and url.startswith("data:"):
                header, _, data = url.partition(",")
                parts.append({"type": "blob", "modality": "image", "mime_type": header[5:].split(";", 1)[0] or None,
                              "content": data})
            elif url is not None:
                parts.append({"type": "uri", "modality": "image", "uri": url})
            else:
                parts.append({"type": "file", "modality": "image", "file_id": get(item, "file_id")})
        elif kind == "input_file":
            parts.append({"type": "file", "modality": "file", "file_id": get(item, "file_id"),
                          "filename": get(item, "filename")})
        else:
            parts.append({"type": str(kind)})
    return parts


def input_content(body: Dict[str, Any], inv: LLMInvocation) -> None:
    messages: List[Dict[str, Any]] = []
    system: List[Dict[str, Any]] = []
    instructions = get(body, "instructions")
    if isinstance(instructions, str):
        system.append(text_part(instructions))
    items = get(body, "input")
    if isinstance(items, str):
        messages.append({"role": "user", "parts": [text_part(items)]})
    else:
        for item in items if isinstance(items, (list, tuple)) else ():
            kind = get(item, "type")
            role = get(item, "role")
            if kind == "function_call":
                messages.append({"role": "assistant", "parts": [{
                    "type": "tool_call", "id": get(item, "call_id"), "name": get(item, "name"),
                    "arguments": parse_arguments(get(item, "arguments"))}]})
            elif kind == "function_call_output":
                messages.append({"role": "tool", "parts": [{
                    "type": "tool_call_response", "id": get(item, "call_id"), "response": get(item, "output")}]})
            elif role in ("system", "developer"):
                system.extend(_parts(get(item, "content")))
            elif role is not None:
                messages.append({"role": role, "parts": _parts(get(item, "content"))})
            elif kind is not None and kind != "reasoning":
                messages.append({"role": "user", "parts": [{"type": str(kind)}]})
    inv.input_messages = messages or None
    inv.system_instructions = system or None
    inv.tool_definitions = tool_definitions(get(body, "tools"))


def tool_definitions(tools: Any) -> Optional[List[Dict[str, Any]]]:
    out = []
    if not isinstance(tools, (list, tuple)):
        return None
    for tool in tools:
        kind = get(tool, "type") or "function"
        entry: Dict[str, Any] = {"type": kind}
        name = get(tool, "name")
        if name is not None:
            entry["name"] = name
        description = get(tool, "description")
        if description is not None:
            entry["description"] = description
        parameters = get(tool, "parameters")
        if parameters is not None:
            entry["parameters"] = parameters
        out.append(entry)
    return out or None


# ---- response --------------------------------------------------------------------------


def finish_reason(response: Any, has_tool_calls: bool) -> Optional[str]:
    status = get(response, "status")
    if status == "completed":
        return "tool_calls" if has_tool_calls else "stop"
    if status == "incomplete":
        reason = get(get(response, "incomplete_details"), "reason")
        return _INCOMPLETE_REASONS.get(reason, reason or "incomplete")
    if status == "failed":
        return "error"
    return status if isinstance(status, str) else None


def _output(response: Any) -> Any:
    """(output parts, whether any function call is among them)."""
    parts: List[Dict[str, Any]] = []
    tool_calls = False
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            parts.extend(_parts(get(item, "content")))
        elif kind == "function_call":
            tool_calls = True
            parts.append({"type": "tool_call", "id": get(item, "call_id"), "name": get(item, "name"),
                          "arguments": parse_arguments(get(item, "arguments"))})
        elif kind == "reasoning":
            summary = "".join(get(s, "text") or "" for s in get(item, "summary") or ())
            if summary:
                parts.append({"type": "reasoning", "content": summary})
        elif isinstance(kind, str) and kind.endswith("_call"):  # built-in tools: web/file search...
            parts.append({"type": "tool_call", "id": get(item, "id"), "name": kind[:-5]})
    return parts, tool_calls


def _has_function_call(response: Any) -> bool:
    return any(get(item, "type") == "function_call" for item in get(response, "output") or ())


def usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    inv.input_tokens = integer(get(usage, "input_tokens"))
    inv.output_tokens = integer(get(usage, "output_tokens"))
    inv.cache_read_input_tokens = integer(get(get(usage, "input_tokens_details"), "cached_tokens"))
    inv.reasoning_output_tokens = integer(get(get(usage, "output_tokens_details"), "reasoning_tokens"))


def end(inv: LLMInvocation, response: Any) -> None:
    inv.response_id = get(response, "id")
    inv.response_model = get(response, "model")
    if get(response, "status") == "failed":  # reported in the body or stream, not raised by the SDK
        code = get(get(response, "error"), "code")
        inv.error_type = code if isinstance(code, str) else "response_failed"
    response_extras(inv, response)
    usage(inv, get(response, "usage"))
    reason = finish_reason(response, _has_function_call(response))
    inv.finish_reasons = [reason] if reason else None
    inv.set_output(response, output_content)


def output_content(response: Any, inv: LLMInvocation) -> None:
    parts, tool_calls = _output(response)
    reason = finish_reason(response, tool_calls)
    inv.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason or "error"}]


class StreamState:
    """Reads the Responses event stream: ids from ``response.created``, everything else
    from the final ``response.completed`` (or incomplete/failed) event; text deltas are
    kept only for a stream that ends before it, when the core wants the output."""

    def __init__(self, op: Any) -> None:
        self.keep_text = op.keeps_output
        self.final: Any = None
        self.created: Any = None
        self.text: List[str] = []

    def chunk(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            if self.keep_text:
                self.text.append(event.delta)
        elif kind in _FINAL_EVENTS:
            self.final = event.response
        elif kind == "response.created":
            self.created = event.response

    @property
    def complete(self) -> bool:
        return self.final is not None

    def finish(self, inv: LLMInvocation) -> None:
        if self.final is not None:
            end(inv, self.final)
            return
        if self.created is not None:
            inv.response_id = getattr(self.created, "id", None)
            inv.response_model = getattr(self.created, "model", None)
        inv.set_output("".join(self.text), _partial_output)


def _partial_output(text: str, inv: LLMInvocation) -> None:
    """A stream cut before its final event: what arrived, ended in an error."""
    inv.output_messages = [{"role": "assistant", "parts": [text_part(text)] if text else [],
                            "finish_reason": "error"}]
