"""Chat Completions (``POST /chat/completions``): the request body, ``ChatCompletion`` and
``ChatCompletionChunk`` -> :class:`LLMInvocation` fields. Messages are converters the core
runs only when content is captured or tokens are counted locally."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from llm_otel.core import LLMInvocation, tool_arguments

from .utils import cache_write, choice_order, data_url_part, file_part, get, integer, new_invocation, output_type, \
    response_extras, stop_sequences, text, text_part

OPERATION = "chat"


def start(client: Any, body: Dict[str, Any], options: Any) -> LLMInvocation:
    inv = new_invocation(OPERATION, client, body)
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    inv.max_tokens = integer(max_tokens)
    inv.stop_sequences = stop_sequences(body.get("stop"))
    inv.choice_count = integer(body.get("n"))
    inv.output_type = output_type(body.get("response_format"))
    inv.reasoning_level = text(body.get("reasoning_effort"))
    inv.provider_extras["api.type"] = "chat_completions"
    inv.usage_expected = not inv.stream or bool(get(body.get("stream_options"), "include_usage"))
    inv.set_input(body, input_content)
    return inv


# ---- request content -------------------------------------------------------------------


def _content_parts(content: Any) -> List[Dict[str, Any]]:
    """A message's ``content`` (string or list of typed parts) in the semconv part shape."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if not isinstance(content, (list, tuple)):
        return [text_part(str(content))]
    parts: List[Dict[str, Any]] = []
    for item in content:
        kind = get(item, "type")
        if kind == "text":
            parts.append(text_part(get(item, "text") or ""))
        elif kind == "refusal":  # no part of its own in the conventions: its text
            parts.append(text_part(get(item, "refusal") or ""))
        elif kind == "image_url":
            image = get(item, "image_url")
            parts.append(data_url_part(get(image, "url"), "image"))
        elif kind == "input_audio":
            audio = get(item, "input_audio")
            fmt = get(audio, "format")
            parts.append({"type": "blob", "modality": "audio",
                          "mime_type": f"audio/{fmt}" if fmt else None, "content": get(audio, "data")})
        elif kind == "file":
            parts.append(file_part(get(item, "file")))
        elif isinstance(item, str):
            parts.append(text_part(item))
        else:
            parts.append({"type": str(kind)})
    return parts


def _tool_call_parts(tool_calls: Any) -> List[Dict[str, Any]]:
    parts = []
    for call in tool_calls or ():
        function = get(call, "function")
        if function is None:  # custom tools
            custom = get(call, "custom")
            parts.append({"type": "tool_call", "id": get(call, "id"), "name": get(custom, "name"),
                          "arguments": get(custom, "input")})
            continue
        parts.append({"type": "tool_call", "id": get(call, "id"), "name": get(function, "name"),
                      "arguments": tool_arguments(get(function, "arguments"))})
    return parts


def _function_call_part(function_call: Any) -> Dict[str, Any]:
    return {"type": "tool_call", "id": None, "name": get(function_call, "name"),
            "arguments": tool_arguments(get(function_call, "arguments"))}


def input_content(body: Dict[str, Any], inv: LLMInvocation) -> None:
    """Request messages -> input_messages, system and developer messages included: they are
    part of the chat's history (system instructions are for instructions given apart)."""
    messages = get(body, "messages")
    if isinstance(messages, (list, tuple)):
        out: List[Dict[str, Any]] = []
        for message in messages:
            role = get(message, "role")
            content = get(message, "content")
            if role == "tool":
                out.append({"role": "tool", "parts": [{"type": "tool_call_response",
                                                       "id": get(message, "tool_call_id"),
                                                       "response": _plain(content)}]})
            elif role == "function":  # the deprecated functions API
                out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": get(message, "name"),
                                                       "response": _plain(content)}]})
            else:
                parts = _content_parts(content)
                parts.extend(_tool_call_parts(get(message, "tool_calls")))
                function_call = get(message, "function_call")
                if function_call is not None:
                    parts.append(_function_call_part(function_call))
                entry: Dict[str, Any] = {"role": role or "user", "parts": parts}
                name = get(message, "name")
                if isinstance(name, str):
                    entry["name"] = name
                out.append(entry)
        inv.input_messages = out or None
    inv.tool_definitions = tool_definitions(get(body, "tools"), get(body, "functions"))


def _plain(content: Any) -> Any:
    """Tool results: a string as-is, a list of text parts joined."""
    if isinstance(content, (list, tuple)):
        texts = [get(p, "text") for p in content]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    return content


def tool_definitions(tools: Any, functions: Any = None) -> Optional[List[Dict[str, Any]]]:
    out = []
    for tool in tools if isinstance(tools, (list, tuple)) else ():
        kind = get(tool, "type") or "function"
        function = get(tool, "function")
        if function is not None:
            out.append(_definition(kind, function))
        else:
            custom = get(tool, "custom")
            out.append({"type": kind, "name": get(custom, "name") if custom is not None else get(tool, "name"),
                        "description": get(custom, "description") if custom is not None else None})
    for function in functions if isinstance(functions, (list, tuple)) else ():
        out.append(_definition("function", function))
    return out or None


def _definition(kind: str, function: Any) -> Dict[str, Any]:
    entry = {"type": kind, "name": get(function, "name")}
    description = get(function, "description")
    if description is not None:
        entry["description"] = description
    parameters = get(function, "parameters")
    if parameters is not None:
        entry["parameters"] = parameters
    return entry


# ---- responses -------------------------------------------------------------------------


def end(inv: LLMInvocation, completion: Any) -> None:
    """Fill ``inv`` from a ``ChatCompletion`` (or ``ParsedChatCompletion``)."""
    inv.response_id = get(completion, "id")
    inv.response_model = get(completion, "model")
    response_extras(inv, completion)
    choices = get(completion, "choices") or ()
    inv.finish_reasons = [get(c, "finish_reason") or "" for c in choices] or None
    usage(inv, get(completion, "usage"))
    inv.set_output(choices, output_content)


def output_content(choices: Any, inv: LLMInvocation) -> None:
    inv.output_messages = [output_message(get(c, "message"), get(c, "finish_reason")) for c in choices] or None


def usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    inv.input_tokens = integer(get(usage, "prompt_tokens"))
    inv.output_tokens = integer(get(usage, "completion_tokens"))
    prompt, completion = get(usage, "prompt_tokens_details"), get(usage, "completion_tokens_details")
    inv.cache_read_input_tokens = integer(get(prompt, "cached_tokens"))
    inv.cache_creation_input_tokens = cache_write(usage, prompt)
    inv.reasoning_output_tokens = integer(get(completion, "reasoning_tokens"))
    inv.audio_input_tokens = nonzero(get(prompt, "audio_tokens"))
    inv.audio_output_tokens = nonzero(get(completion, "audio_tokens"))


def nonzero(value: Any) -> Optional[int]:
    """Audio token counts only for calls that had audio (the API reports 0 on every other)."""
    count = integer(value)
    return count if count else None


def output_message(message: Any, finish_reason: Any) -> Dict[str, Any]:
    parts: List[Dict[str, Any]] = []
    content = get(message, "content")
    if isinstance(content, str):
        parts.append(text_part(content))
    refusal = get(message, "refusal")
    if isinstance(refusal, str):
        parts.append(text_part(refusal))
    parts.extend(_tool_call_parts(get(message, "tool_calls")))
    function_call = get(message, "function_call")
    if function_call is not None:
        parts.append(_function_call_part(function_call))
    return {"role": get(message, "role") or "assistant", "parts": parts, "finish_reason": finish_reason or ""}


# ---- streams ---------------------------------------------------------------------------


class _Choice:
    __slots__ = ("text", "refusal", "tool_calls", "finish_reason", "role")

    def __init__(self) -> None:
        self.text: List[str] = []
        self.refusal: List[str] = []
        self.tool_calls: Dict[int, List[Any]] = {}  # index -> [id, name, [argument pieces]]
        self.finish_reason: Optional[str] = None
        self.role: Optional[str] = None


class StreamState:
    """Accumulates ``ChatCompletionChunk``s: a few attribute reads and appends per chunk;
    text only when the core wants the output (``op.keeps_output``)."""

    def __init__(self, op: Any) -> None:
        self.keep_text = op.keeps_output
        self.choices: Dict[int, _Choice] = {}
        self.usage: Any = None
        self.first: Any = None
        self.last: Any = None  # the last chunks carry service_tier / system_fingerprint

    def chunk(self, chunk: Any) -> None:
        if self.first is None:
            self.first = chunk
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        for choice in getattr(chunk, "choices", None) or ():
            index = getattr(choice, "index", None)
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _Choice()
            reason = getattr(choice, "finish_reason", None)  # a compatible server may leave fields out
            if reason is not None:
                state.finish_reason = reason
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            if self.keep_text:
                piece = getattr(delta, "content", None)
                if piece:
                    state.text.append(piece)
                refusal = getattr(delta, "refusal", None)
                if refusal:
                    state.refusal.append(refusal)
                role = getattr(delta, "role", None)
                if role and state.role is None:
                    state.role = role
            tool_calls = getattr(delta, "tool_calls", None)
            if tool_calls:
                for call in tool_calls:
                    entry = state.tool_calls.get(call.index)
                    if entry is None:
                        entry = state.tool_calls[call.index] = [None, None, []]
                    if call.id:
                        entry[0] = call.id
                    function = call.function
                    if function is not None:
                        if function.name:
                            entry[1] = function.name
                        if function.arguments and self.keep_text:
                            entry[2].append(function.arguments)
        self.last = chunk

    @property
    def complete(self) -> bool:
        """Every choice seen has its finish reason: the stream reached its end."""
        return bool(self.choices) and all(c.finish_reason is not None for c in self.choices.values())

    def finish(self, inv: LLMInvocation) -> None:
        if self.first is not None:
            inv.response_id = getattr(self.first, "id", None)
            inv.response_model = getattr(self.first, "model", None)
        if self.last is not None:
            response_extras(inv, self.last)
        ordered = [self.choices[i] for i in sorted(self.choices, key=choice_order)]
        reasons = [c.finish_reason for c in ordered if c.finish_reason is not None]
        inv.finish_reasons = reasons or None
        usage(inv, self.usage)
        inv.set_output(ordered, _stream_output)


def _stream_output(choices: List[_Choice], inv: LLMInvocation) -> None:
    inv.output_messages = [_choice_message(c) for c in choices] or None


def _choice_message(choice: _Choice) -> Dict[str, Any]:
    parts: List[Dict[str, Any]] = []
    if choice.text:
        parts.append(text_part("".join(choice.text)))
    if choice.refusal:
        parts.append(text_part("".join(choice.refusal)))
    for index in sorted(choice.tool_calls):
        call_id, name, pieces = choice.tool_calls[index]
        parts.append({"type": "tool_call", "id": call_id, "name": name,
                      "arguments": tool_arguments("".join(pieces))})
    # a stream cut before its end: the message is what arrived, and it ended in an error
    return {"role": choice.role or "assistant", "parts": parts, "finish_reason": choice.finish_reason or "error"}
