"""Responses API: ``responses.create`` (plain and event streams) and ``responses.parse``;
``responses.retrieve`` is :mod:`.retrieve`.

Items map onto the conventions' message shape. Messages keep their role; the app's own
tools (function, custom, computer, shell, apply-patch calls) are ``tool_call`` parts with
their call id, and what the app sends back for them ``tool_call_response`` parts of
``tool`` messages; the tools OpenAI runs itself (web and file search, code interpreter,
image generation, MCP, tool search) are ``server_tool_call`` parts, followed by a
``server_tool_call_response`` part where the API returns their results; reasoning
summaries are ``reasoning`` parts; ``instructions`` are system instructions. Consecutive
assistant items are one turn (one message). Any other item is a part of its own type,
which the core records as ``generic``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from llm_otel.core import LLMInvocation, tool_arguments

from .utils import cache_write, data_url_part, file_part, get, integer, new_invocation, output_type, \
    plain, response_extras, text, text_part

OPERATION = "chat"
API_TYPE = "responses"

_FINAL_EVENTS = frozenset(("response.completed", "response.incomplete", "response.failed"))
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}

# calls the app carries out: item type -> (tool name, or None for the item's own; field of the arguments)
_CLIENT_CALLS = {"function_call": (None, "arguments"), "custom_tool_call": (None, "input"),
                 "computer_call": ("computer", "action"), "local_shell_call": ("local_shell", "action"),
                 "shell_call": ("shell", "action"), "apply_patch_call": ("apply_patch", "operation")}
_CALL_OUTPUTS = frozenset(("function_call_output", "custom_tool_call_output", "computer_call_output",
                           "local_shell_call_output", "shell_call_output", "apply_patch_call_output"))
# tools OpenAI runs: item type -> (tool name, fields of the call, fields of its result)
_SERVER_CALLS = {
    "web_search_call": ("web_search", ("action",), ()),  # results: the action's sources, when included
    "file_search_call": ("file_search", ("queries",), ("results",)),
    "code_interpreter_call": ("code_interpreter", ("code", "container_id"), ("outputs",)),
    "image_generation_call": ("image_generation", (), ("result",)),
    "mcp_call": ("mcp", ("server_label", "arguments"), ("output", "error")),
    "tool_search_call": ("tool_search", ("arguments",), ()),
}
# items the app itself puts in the input (any other item comes from the model)
_APP_ITEMS = frozenset(("item_reference", "mcp_approval_response", "compaction_trigger"))


def start(client: Any, body: Dict[str, Any], options: Any) -> LLMInvocation:
    inv = new_invocation(OPERATION, client, body)
    inv.max_tokens = integer(get(body, "max_output_tokens"))
    inv.output_type = output_type(get(get(body, "text"), "format"))
    inv.reasoning_level = text(get(get(body, "reasoning"), "effort"))
    inv.previous_response_id = text(get(body, "previous_response_id"))
    conversation = get(body, "conversation")
    inv.conversation_id = text(conversation) or text(get(conversation, "id"))
    items = get(body, "input")
    if isinstance(items, (list, tuple)):  # a compaction item: the context was compacted
        inv.conversation_compacted = any(get(item, "type") == "compaction" for item in items)
    inv.provider_extras["api.type"] = API_TYPE
    inv.usage_expected = True  # the final event carries the usage
    inv.set_input(body, input_content)
    return inv


# ---- content ---------------------------------------------------------------------------


def _parts(content: Any) -> List[Dict[str, Any]]:
    """A message's content (a string or content parts) as conventions parts."""
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
            parts.append(data_url_part(url, "image") if url is not None else
                         {"type": "file", "modality": "image", "file_id": get(item, "file_id")})
        elif kind == "input_file":
            parts.append(file_part(item))
        elif kind == "input_audio":
            audio = get(item, "input_audio")
            fmt = get(audio, "format")
            parts.append({"type": "blob", "modality": "audio", "mime_type": f"audio/{fmt}" if fmt else None,
                          "content": get(audio, "data")})
        else:
            parts.append({"type": str(kind)})
    return parts


def _client_call(kind: str, item: Any) -> Dict[str, Any]:
    name, field = _CLIENT_CALLS.get(kind, ("tool_search", "arguments"))
    arguments = get(item, field)
    if kind == "computer_call" and arguments is None:
        arguments = get(item, "actions")  # a batch of actions
    return {"type": "tool_call", "id": get(item, "call_id"), "name": name or get(item, "name"),
            "arguments": tool_arguments(arguments) if kind == "function_call" else plain(arguments)}


def _server_call(kind: str, item: Any) -> List[Dict[str, Any]]:
    tool, call_fields, result_fields = _SERVER_CALLS[kind]
    call: Dict[str, Any] = {"type": tool}
    for field in call_fields:
        value = plain(get(item, field))
        if value is not None:
            call[field] = value
    result: Dict[str, Any] = {}
    for field in result_fields:
        value = get(item, field)
        if value is not None:
            result[field] = plain(value)
    action = call.get("action")
    if isinstance(action, dict) and action.get("sources") is not None:  # web search results
        result["sources"] = action.pop("sources")
    if kind == "image_generation_call" and isinstance(result.get("result"), str):
        # the image as a blob part: recorded as images are (a placeholder unless asked for)
        result["result"] = {"type": "blob", "modality": "image", "content": result["result"]}
    call_id = get(item, "id")
    name = get(item, "name") if kind == "mcp_call" else None  # the MCP server's tool
    parts = [{"type": "server_tool_call", "id": call_id, "name": name or tool, "server_tool_call": call}]
    if result:
        parts.append({"type": "server_tool_call_response", "id": call_id,
                      "server_tool_call_response": {"type": tool, **result}})
    return parts


def _is_client_call(kind: Any, item: Any) -> bool:
    return kind in _CLIENT_CALLS or kind == "tool_search_call" and get(item, "execution") == "client"


def item_message(item: Any) -> Tuple[str, List[Dict[str, Any]]]:
    """One input or output item as (role, parts)."""
    kind = get(item, "type")
    if kind == "message" or kind is None:  # an easy input message has no type
        return get(item, "role") or "user", _parts(get(item, "content"))
    if kind == "reasoning":
        summary = "".join(get(s, "text") or "" for s in get(item, "summary") or ())
        return "assistant", [{"type": "reasoning", "content": summary}] if summary else []
    if _is_client_call(kind, item):
        return "assistant", [_client_call(kind, item)]
    if kind in _CALL_OUTPUTS:
        return "tool", [{"type": "tool_call_response", "id": get(item, "call_id") or get(item, "id"),
                         "response": plain(get(item, "output"))}]
    if kind in _SERVER_CALLS:
        return "assistant", _server_call(kind, item)
    if kind == "tool_search_output":
        tools = plain(get(item, "tools"))
        if get(item, "execution") == "client":
            return "tool", [{"type": "tool_call_response", "id": get(item, "call_id"), "response": tools}]
        return "assistant", [{"type": "server_tool_call_response", "id": get(item, "call_id") or get(item, "id"),
                              "server_tool_call_response": {"type": "tool_search", "tools": tools}}]
    return "user" if kind in _APP_ITEMS else "assistant", [{"type": str(kind), "id": get(item, "id")}]


def input_content(body: Dict[str, Any], inv: LLMInvocation) -> None:
    messages: List[Dict[str, Any]] = []
    items = get(body, "input")
    if isinstance(items, str):
        messages.append({"role": "user", "parts": [text_part(items)]})
    else:
        for item in items if isinstance(items, (list, tuple)) else ():
            role, parts = item_message(item)
            if not parts:
                continue
            if role == "assistant" and messages and messages[-1]["role"] == "assistant":
                messages[-1]["parts"].extend(parts)  # one turn: its text, calls and reasoning
            else:
                messages.append({"role": role, "parts": parts})
    inv.input_messages = messages or None
    inv.system_instructions = instructions(get(body, "instructions"))
    inv.tool_definitions = tool_definitions(get(body, "tools"))


def instructions(value: Any) -> Optional[List[Dict[str, Any]]]:
    """``instructions``: a string, or (a response's, from a prompt template) input items."""
    if isinstance(value, str):
        return [text_part(value)]
    parts: List[Dict[str, Any]] = []
    for item in value if isinstance(value, (list, tuple)) else ():
        parts.extend(_parts(get(item, "content")))
    return parts or None


def tool_definitions(tools: Any) -> Optional[List[Dict[str, Any]]]:
    """Function and custom tools by their name; OpenAI's own tools by their type (an MCP
    server by its label)."""
    out = []
    for tool in tools if isinstance(tools, (list, tuple)) else ():
        kind = get(tool, "type") or "function"
        entry: Dict[str, Any] = {"type": kind, "name": get(tool, "name") or get(tool, "server_label") or kind}
        description = get(tool, "description")
        if description is not None:
            entry["description"] = description
        parameters = get(tool, "parameters")
        if parameters is not None:
            entry["parameters"] = plain(parameters)
        out.append(entry)
    return out or None


# ---- response --------------------------------------------------------------------------


def pending_calls(response: Any) -> bool:
    """The response asks the app to run a tool: a call of the app's without its output."""
    calls, answered = set(), set()
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if _is_client_call(kind, item):
            calls.add(get(item, "call_id"))
        elif kind in _CALL_OUTPUTS:
            answered.add(get(item, "call_id"))
    return bool(calls - answered)


def finish_reason(response: Any, pending: bool) -> Optional[str]:
    """The response's one finish reason, from its status; None while it is not finished."""
    status = get(response, "status")
    if status == "completed":
        return "tool_calls" if pending else "stop"
    if status == "incomplete":
        reason = get(get(response, "incomplete_details"), "reason")
        return _INCOMPLETE_REASONS.get(reason, reason or "incomplete")
    if status in ("failed", "cancelled"):
        return "error"
    return None  # queued / in_progress (a background response)


def usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    inv.input_tokens = integer(get(usage, "input_tokens"))
    inv.output_tokens = integer(get(usage, "output_tokens"))
    details = get(usage, "input_tokens_details")
    inv.cache_read_input_tokens = integer(get(details, "cached_tokens"))
    inv.cache_creation_input_tokens = cache_write(usage, details)
    inv.reasoning_output_tokens = integer(get(get(usage, "output_tokens_details"), "reasoning_tokens"))


def end(inv: LLMInvocation, response: Any) -> None:
    inv.response_id = get(response, "id")
    inv.response_model = get(response, "model")
    if get(response, "status") == "failed":  # reported in the body or stream, not raised by the SDK
        code = get(get(response, "error"), "code")
        inv.error_type = code if isinstance(code, str) else "response_failed"
    response_extras(inv, response)
    usage(inv, get(response, "usage"))
    reason = finish_reason(response, pending_calls(response))
    inv.finish_reasons = [reason] if reason else None
    inv.set_output(response, output_content)


def output_content(response: Any, inv: LLMInvocation) -> None:
    """The response's output items as one assistant message (one choice)."""
    parts: List[Dict[str, Any]] = []
    for item in get(response, "output") or ():
        parts.extend(item_message(item)[1])
    reason = finish_reason(response, pending_calls(response))
    if parts or reason:
        inv.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]


class StreamState:
    """Reads the Responses event stream: ids from ``response.created``, everything else
    from the final ``response.completed`` (or incomplete/failed) event, an ``error`` event's
    code; text deltas are kept only for a stream that ends before its final event, when
    the core wants the output."""

    def __init__(self, op: Any) -> None:
        self.keep_text = op.keeps_output
        self.final: Any = None
        self.created: Any = None
        self.error: Optional[str] = None
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
        elif kind == "error":
            self.error = getattr(event, "code", None) or "error"
        elif kind is None and getattr(event, "event", None) == "error":  # SDKs before 1.7x: wrapped
            self.error = get(getattr(event, "data", None), "code") or "error"

    @property
    def complete(self) -> bool:
        return self.final is not None or self.error is not None

    def finish(self, inv: LLMInvocation) -> None:
        if self.final is not None:
            self.ended(inv, self.final)
        else:
            if self.created is not None:
                inv.response_id = getattr(self.created, "id", None)
                inv.response_model = getattr(self.created, "model", None)
            inv.set_output("".join(self.text), _partial_output)
        if self.error is not None and inv.error_type is None:
            inv.error_type = self.error

    ended = staticmethod(end)  # what the final response fills in


def _partial_output(text: str, inv: LLMInvocation) -> None:
    """A stream cut before its final event: what arrived, ended in an error."""
    inv.output_messages = [{"role": "assistant", "parts": [text_part(text)] if text else [],
                            "finish_reason": "error"}]
