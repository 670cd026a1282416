"""Legacy text Completions (``POST /completions``), plain and streamed."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from llm_otel.core import LLMInvocation

from .utils import choice_order, get, integer, new_invocation, response_extras, stop_sequences, text_part

OPERATION = "text_completion"


def start(client: Any, body: Dict[str, Any], options: Any) -> LLMInvocation:
    inv = new_invocation(OPERATION, client, body)
    inv.max_tokens = integer(get(body, "max_tokens"))
    inv.stop_sequences = stop_sequences(get(body, "stop"))
    inv.choice_count = integer(get(body, "n"))
    inv.usage_expected = not inv.stream or bool(get(get(body, "stream_options"), "include_usage"))
    inv.set_input(body, input_content)
    return inv


def _prompts(prompt: Any) -> Optional[List[str]]:
    """Text prompts only: token-id prompts cannot be shown or counted as text."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    return None


def input_content(body: Dict[str, Any], inv: LLMInvocation) -> None:
    prompts = _prompts(get(body, "prompt"))
    if prompts:
        inv.input_texts = prompts
        inv.input_messages = [{"role": "user", "parts": [text_part(p)]} for p in prompts]


def _usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is not None:
        inv.input_tokens = integer(get(usage, "prompt_tokens"))
        inv.output_tokens = integer(get(usage, "completion_tokens"))


def end(inv: LLMInvocation, completion: Any) -> None:
    inv.response_id = get(completion, "id")
    inv.response_model = get(completion, "model")
    response_extras(inv, completion)
    choices = get(completion, "choices") or ()
    inv.finish_reasons = [get(c, "finish_reason") or "" for c in choices] or None
    _usage(inv, get(completion, "usage"))
    inv.set_output(choices, _output)


def _output(choices: Any, inv: LLMInvocation) -> None:
    inv.output_messages = [{"role": "assistant", "parts": [text_part(get(c, "text") or "")],
                            "finish_reason": get(c, "finish_reason") or ""} for c in choices] or None


class StreamState:
    """Accumulates streamed ``Completion`` chunks (text only when the core wants it)."""

    def __init__(self, op: Any) -> None:
        self.keep_text = op.keeps_output
        self.texts: Dict[Any, List[str]] = {}
        self.reasons: Dict[Any, str] = {}
        self.usage: Any = None
        self.first: Any = None
        self.last: Any = None

    def chunk(self, chunk: Any) -> None:
        if self.first is None:
            self.first = chunk
        self.last = chunk
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        for position, choice in enumerate(getattr(chunk, "choices", None) or ()):
            index = getattr(choice, "index", None)  # a compatible server may leave it out
            if index is None:
                index = position
            reason = getattr(choice, "finish_reason", None)
            if reason is not None:
                self.reasons[index] = reason
            piece = getattr(choice, "text", None) if self.keep_text else None
            if piece:
                self.texts.setdefault(index, []).append(piece)
            else:
                self.texts.setdefault(index, [])

    @property
    def complete(self) -> bool:
        return bool(self.texts) and all(i in self.reasons for i in self.texts)

    def finish(self, inv: LLMInvocation) -> None:
        if self.first is not None:
            inv.response_id = getattr(self.first, "id", None)
            inv.response_model = getattr(self.first, "model", None)
        if self.last is not None:
            response_extras(inv, self.last)
        indexes = sorted(set(self.texts) | set(self.reasons), key=choice_order)
        inv.finish_reasons = [self.reasons[i] for i in indexes if i in self.reasons] or None
        _usage(inv, self.usage)
        outputs = [("".join(self.texts.get(i, ())), self.reasons.get(i, "error")) for i in indexes]
        inv.set_output(outputs, _stream_output)


def _stream_output(outputs: List[Any], inv: LLMInvocation) -> None:
    inv.output_messages = [{"role": "assistant", "parts": [text_part(text)], "finish_reason": reason}
                           for text, reason in outputs] or None
