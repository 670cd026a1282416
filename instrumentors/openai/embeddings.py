"""Embeddings (``POST /embeddings``): model, dimension count, encoding format, usage."""

from __future__ import annotations

import base64
import functools
from typing import Any, Dict, List, Optional

from llm_otel.core import LLMInvocation

from .utils import get, integer, new_invocation, text_part

OPERATION = "embeddings"


def start(client: Any, body: Dict[str, Any], options: Any) -> LLMInvocation:
    inv = new_invocation(OPERATION, client, body)
    fmt = get(body, "encoding_format")
    if isinstance(fmt, str) and not _sdk_default_format(options):
        inv.encoding_formats = [fmt]
    inv.embedding_dimensions = integer(get(body, "dimensions"))
    inv.set_input(body, input_content)
    return inv


def _sdk_default_format(options: Any) -> bool:
    """The SDK asks for base64 on the wire when the app chose no format (and decodes it back
    to floats): that is the SDK's transport, not a format the app requested. Its response
    parser holds the app's own ``encoding_format`` argument, omitted in that case: a closure
    cell up to openai 2.x, a ``functools.partial`` keyword from 3.x."""
    try:
        parser = getattr(options, "post_parser", None)
        if isinstance(parser, functools.partial):
            return not isinstance(parser.keywords["encoding_format"], str)
        names = parser.__code__.co_freevars
        value = parser.__closure__[names.index("encoding_format")].cell_contents
        return not isinstance(value, str)
    except Exception:  # noqa: BLE001 - an SDK without that parser: the body is what was asked
        return False


def _texts(value: Any) -> Optional[List[Any]]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], int):  # one token array
            return [value]
        return list(value)
    return None


def input_content(body: Dict[str, Any], inv: LLMInvocation) -> None:
    texts = [t for t in _texts(get(body, "input")) or () if isinstance(t, str)]
    if texts:
        inv.input_texts = texts
        inv.input_messages = [{"role": "user", "parts": [text_part(t)]} for t in texts]


def _dimensions(embedding: Any) -> Optional[int]:
    if isinstance(embedding, list):
        return len(embedding)
    if isinstance(embedding, str):  # encoding_format="base64": float32 values
        try:
            return len(base64.b64decode(embedding)) // 4
        except ValueError:
            return None
    return None


def end(inv: LLMInvocation, response: Any) -> None:
    inv.response_model = get(response, "model")
    data = get(response, "data") or ()
    if data and inv.embedding_dimensions is None:
        inv.embedding_dimensions = _dimensions(get(data[0], "embedding"))
    inv.input_tokens = integer(get(get(response, "usage"), "prompt_tokens"))


StreamState = None  # embeddings never stream
