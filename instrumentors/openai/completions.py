"""Legacy text Completions: ``completions.create`` (plain and streamed)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from llm_otel import config
from llm_otel.core.invocation import LLMInvocation

from .utils import arg, get, integer, keep_stream_text, new_invocation, response_extras, stop_sequences, text_part

OPERATION = "text_completion"


def start(resource: Any, kwargs: Dict[str, Any]) -> LLMInvocation:
    inv = new_invocation(OPERATION, resource, kwargs)
    inv.max_tokens = integer(arg(kwargs, "max_tokens"))
    inv.stop_sequences = stop_sequences(arg(kwargs, "stop"))
    inv.choice_count = integer(arg(kwargs, "n"))
    return inv


def _prompts(prompt: Any) -> Optional[List[str]]:
    """Text prompts only: token-id prompts cannot be shown or counted as text."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    return None


def _request_content(inv: LLMInvocation, kwargs: Dict[str, Any]) -> None:
    prompts = _prompts(arg(kwargs, "prompt"))
    if prompts:
        inv.input_texts = prompts
        if config.settings().capture_content:
            inv.input_messages = [{"role": "user", "parts": [text_part(p)]} for p in prompts]


def _usage(inv: LLMInvocation, usage: Any) -> None:
    if usage is not None:
        inv.input_tokens = integer(get(usage, "prompt_tokens"))
        inv.output_tokens = integer(get(usage, "completion_tokens"))


def end(inv: LLMInvocation, completion: Any, kwargs: Dict[str, Any]) -> None:
    inv.response_id = get(completion, "id")
    inv.response_model = get(completion, "model")
    response_extras(inv, completion)
    choices = get(completion, "choices") or ()
    inv.finish_reasons = [get(c, "finish_reason") or "" for c in choices] or None
    _usage(inv, get(completion, "usage"))
    if config.settings().capture_content or inv.input_tokens is None or inv.output_tokens is None:
        _request_content(inv, kwargs)
        inv.output_messages = [{"role": "assistant", "parts": [text_part(get(c, "text") or "")],
                                "finish_reason": get(c, "finish_reason") or ""} for c in choices] or None


class StreamState:
    """Accumulates streamed ``Completion`` chunks (text deltas only when they may be needed)."""

    def __init__(self, inv: LLMInvocation, kwargs: Dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.keep_text = keep_stream_text(kwargs)
        self.texts: Dict[int, List[str]] = {}
        self.reasons: Dict[int, str] = {}
        self.usage: Any = None
        self.last: Any = None

    def chunk(self, inv: LLMInvocation, chunk: Any) -> None:
        if self.last is None:
            inv.response_id = getattr(chunk, "id", None)
            inv.response_model = getattr(chunk, "model", None)
        self.last = chunk
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        for choice in getattr(chunk, "choices", None) or ():
            if choice.finish_reason is not None:
                self.reasons[choice.index] = choice.finish_reason
            if self.keep_text and choice.text:
                self.texts.setdefault(choice.index, []).append(choice.text)

    def finish(self, inv: LLMInvocation) -> None:
        if self.last is not None:
            response_extras(inv, self.last)
        indexes = sorted(set(self.texts) | set(self.reasons))
        inv.finish_reasons = [self.reasons[i] for i in indexes if i in self.reasons] or None
        _usage(inv, self.usage)
        if config.settings().capture_content or inv.input_tokens is None or inv.output_tokens is None:
            _request_content(inv, self.kwargs)
            inv.output_messages = [{"role": "assistant", "parts": [text_part("".join(self.texts.get(i, ())))],
                                    "finish_reason": self.reasons.get(i, "")} for i in indexes] or None
