"""Embeddings: ``embeddings.create`` -> model, dimension count, encoding format, usage."""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional

from llm_otel import config
from llm_otel.core.invocation import LLMInvocation

from .utils import arg, get, integer, new_invocation, text_part

OPERATION = "embeddings"


def start(resource: Any, kwargs: Dict[str, Any]) -> LLMInvocation:
    inv = new_invocation(OPERATION, resource, kwargs)
    fmt = arg(kwargs, "encoding_format")
    if isinstance(fmt, str):
        inv.encoding_formats = [fmt]
    inv.embedding_dimensions = integer(arg(kwargs, "dimensions"))
    texts = _texts(arg(kwargs, "input"))
    if texts is not None:
        inv.extra["request.input_count"] = len(texts)
    return inv


def _texts(value: Any) -> Optional[List[Any]]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], int):  # one token array
            return [value]
        return list(value)
    return None


def _dimensions(embedding: Any) -> Optional[int]:
    if isinstance(embedding, list):
        return len(embedding)
    if isinstance(embedding, str):  # encoding_format="base64": float32 values
        try:
            return len(base64.b64decode(embedding)) // 4
        except ValueError:
            return None
    return None


def end(inv: LLMInvocation, response: Any, kwargs: Dict[str, Any]) -> None:
    inv.response_model = get(response, "model")
    data = get(response, "data") or ()
    if data and inv.embedding_dimensions is None:
        inv.embedding_dimensions = _dimensions(get(data[0], "embedding"))
    usage = get(response, "usage")
    if usage is not None:
        inv.input_tokens = integer(get(usage, "prompt_tokens"))
    if inv.input_tokens is None or config.settings().capture_content:
        texts = [t for t in _texts(arg(kwargs, "input")) or () if isinstance(t, str)]
        if texts:
            inv.input_texts = texts  # the core counts these when the response had no usage
            if config.settings().capture_content:
                inv.input_messages = [{"role": "user", "parts": [text_part(t)]} for t in texts]


class StreamState:  # embeddings never stream; present for the generic wrapper
    def __init__(self, inv: LLMInvocation, kwargs: Dict[str, Any]) -> None:
        self.kwargs = kwargs

    def chunk(self, inv: LLMInvocation, chunk: Any) -> None:
        pass

    def finish(self, inv: LLMInvocation) -> None:
        pass
