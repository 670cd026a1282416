"""Chat Completions: request kwargs, ``ChatCompletion`` and ``ChatCompletionChunk`` ->
:class:`LLMInvocation` fields. Messages are built only when content is captured or the
response has no usage (then the core counts tokens from them)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from llm_otel import config
from llm_otel.core.invocation import LLMInvocation

from .utils import (arg, get, integer, keep_stream_text, new_invocation, output_type, parse_arguments,
                    response_extras, stop_sequences, text_part)

OPERATION = "chat"


def start(resource: Any, kwargs: Dict[str, Any]) -> LLMInvocation:
    inv = new_invocation(OPERATION, resource, kwargs)
    max_tokens = arg(kwargs, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = arg(kwargs, "max_tokens")
    inv.max_tokens = integer(max_tokens)
    inv.stop_sequences = stop_sequences(arg(kwargs, "stop"))
    inv.choice_count = integer(arg(kwargs, "n"))
    inv.output_type = output_type(arg(kwargs, "response_format"))
    return inv


# ---- content ---------------------------------------------------------------------------


def _content_parts(content: Any) -> List[Dict[str, Any]]:
    """A message's ``content`` (string or list of typed parts) in the semconv part shape."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: List[Dict[str, Any]] = []
    if not isinstance(content, (list, tuple)):
        return [text_part(str(content))]
    for item in content:
        kind = get(item, "type")
        if kind == "text":
            parts.append(text_part(get(item, "text") or ""))
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": get(item, "refusal") or ""})
        elif kind == "image_url":
            image = get(item, "image_url")
            url = get(image, "url") if image is not None else None
            parts.append(_uri_part(url, "image"))
        elif kind == "input_audio":
            audio = get(item, "input_audio")
            fmt = get(audio, "format")
            parts.append({"type": "blob", "modality": "audio",
                          "mime_type": f"audio/{fmt}" if fmt else None, "content": get(audio, "data")})
        elif kind == "file":
            file = get(item, "file")
            parts.append({"type": "file", "modality": "file", "file_id": get(file, "file_id"),
                          "filename": get(file, "filename")})
        elif isinstance(item, str):
            parts.append(text_part(item))
        else:
            parts.append({"type": str(kind)})
    return parts


def _uri_part(url: Any, modality: str) -> Dict[str, Any]:
    if isinstance(url, str) and url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].split(";", 1)[0] or None
        return {"type": "blob", "modality": modality, "mime_type": mime, "content": data}
    return {"type": "uri", "modality": modality, "uri": url}


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
                      "arguments": parse_arguments(get(function, "arguments"))})
    return parts


def input_messages(messages: Any, inv: LLMInvocation) -> None:
    """Request messages -> input_messages; system/developer messages -> system_instructions."""
    out: List[Dict[str, Any]] = []
    system: List[Dict[str, Any]] = []
    if not isinstance(messages, (list, tuple)):
        return  # not something the API takes; the SDK reports it to the caller
    for message in messages:
        role = get(message, "role")
        content = get(message, "content")
        if role in ("system", "developer"):
            system.extend(_content_parts(content))
        elif role == "tool":
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
                parts.append({"type": "tool_call", "id": None, "name": get(function_call, "name"),
                              "arguments": parse_arguments(get(function_call, "arguments"))})
            entry: Dict[str, Any] = {"role": role or "user", "parts": parts}
            name = get(message, "name")
            if isinstance(name, str):
                entry["name"] = name
            out.append(entry)
    inv.input_messages = out or None
    inv.system_instructions = system or None


def _plain(content: Any) -> Any:
    """Tool results: a string as-is, a list of text parts joined."""
    if isinstance(content, (list, tuple)):
        texts = [get(p, "text") for p in content]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    return content


def tool_definitions(tools: Any, functions: Any = None) -> Optional[List[Dict[str, Any]]]:
    out = []
    for tool in tools or ():
        kind = get(tool, "type") or "function"
        function = get(tool, "function")
        if function is not None:
            out.append(_definition(kind, function))
        else:
            custom = get(tool, "custom")
            out.append({"type": kind, "name": get(custom, "name") if custom is not None else get(tool, "name"),
                        "description": get(custom, "description") if custom is not None else None})
    for function in functions or ():
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


def request_content(inv: LLMInvocation, kwargs: Dict[str, Any], capture: bool) -> None:
    input_messages(arg(kwargs, "messages"), inv)
    if capture:
        inv.tool_definitions = tool_definitions(arg(kwargs, "tools"), arg(kwargs, "functions"))


# ---- responses -------------------------------------------------------------------------


def end(inv: LLMInvocation, completion: Any, kwargs: Dict[str, Any]) -> None:
    """Fill ``inv`` from a ``ChatCompletion`` (or ``ParsedChatCompletion``)."""
    inv.response_id = get(completion, "id")
    inv.response_model = get(completion, "model")
    response_extras(inv, completion)
    choices = get(completion, "choices") or ()
    inv.finish_reasons = [get(c, "finish_reason") or "" for c in choices] or None
    usage(inv, get(completion, "usage"))
    capture = config.settings().capture_content
    if capture or inv.input_tokens is None or inv.output_tokens is None:
        request_content(inv, kwargs, capture)
        inv.output_messages = [output_message(get(c, "message"), get(c, "finish_reason")) for c in choices] or None


def usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is None:
        return
    inv.input_tokens = integer(get(usage, "prompt_tokens"))
    inv.output_tokens = integer(get(usage, "completion_tokens"))
    prompt_details = get(usage, "prompt_tokens_details")
    if prompt_details is not None:
        inv.cache_read_input_tokens = integer(get(prompt_details, "cached_tokens"))
    completion_details = get(usage, "completion_tokens_details")
    if completion_details is not None:
        inv.reasoning_output_tokens = integer(get(completion_details, "reasoning_tokens"))


def output_message(message: Any, finish_reason: Any) -> Dict[str, Any]:
    parts: List[Dict[str, Any]] = []
    content = get(message, "content")
    if isinstance(content, str):
        parts.append(text_part(content))
    refusal = get(message, "refusal")
    if isinstance(refusal, str):
        parts.append({"type": "refusal", "content": refusal})
    parts.extend(_tool_call_parts(get(message, "tool_calls")))
    function_call = get(message, "function_call")
    if function_call is not None:
        parts.append({"type": "tool_call", "id": None, "name": get(function_call, "name"),
                      "arguments": parse_arguments(get(function_call, "arguments"))})
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
    """Accumulates ``ChatCompletionChunk``s: a few attribute reads and appends per chunk."""

    def __init__(self, inv: LLMInvocation, kwargs: Dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.keep_text = keep_stream_text(kwargs)
        self.choices: Dict[int, _Choice] = {}
        self.usage: Any = None
        self.seen_first = False
        self.last: Any = None  # the last chunks carry service_tier / system_fingerprint

    def chunk(self, inv: LLMInvocation, chunk: Any) -> None:
        if not self.seen_first:
            self.seen_first = True
            inv.response_id = getattr(chunk, "id", None)
            inv.response_model = getattr(chunk, "model", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        for choice in getattr(chunk, "choices", None) or ():
            index = choice.index
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _Choice()
            reason = choice.finish_reason
            if reason is not None:
                state.finish_reason = reason
            delta = choice.delta
            if delta is None:
                continue
            if self.keep_text:
                text = delta.content
                if text:
                    state.text.append(text)
                refusal = getattr(delta, "refusal", None)
                if refusal:
                    state.refusal.append(refusal)
                if delta.role and state.role is None:
                    state.role = delta.role
            tool_calls = delta.tool_calls
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

    def finish(self, inv: LLMInvocation) -> None:
        if self.last is not None:
            response_extras(inv, self.last)
        ordered = [self.choices[i] for i in sorted(self.choices)]
        reasons = [c.finish_reason for c in ordered if c.finish_reason is not None]
        inv.finish_reasons = reasons or None
        usage(inv, self.usage)
        capture = config.settings().capture_content
        if capture or inv.input_tokens is None or inv.output_tokens is None:
            request_content(inv, self.kwargs, capture)
            inv.output_messages = [self._message(c) for c in ordered] or None

    @staticmethod
    def _message(choice: _Choice) -> Dict[str, Any]:
        parts: List[Dict[str, Any]] = []
        if choice.text:
            parts.append(text_part("".join(choice.text)))
        if choice.refusal:
            parts.append({"type": "refusal", "content": "".join(choice.refusal)})
        for index in sorted(choice.tool_calls):
            call_id, name, pieces = choice.tool_calls[index]
            parts.append({"type": "tool_call", "id": call_id, "name": name,
                          "arguments": parse_arguments("".join(pieces))})
        return {"role": choice.role or "assistant", "parts": parts, "finish_reason": choice.finish_reason or ""}
