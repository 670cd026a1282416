"""Turning captured content into attribute values: JSON, every string cleaned and capped.

Strings are cut one by one (not the JSON text), so what is recorded stays valid JSON and
a reader sees where and how much was cut: ``"...[truncated 1234 chars]"``.

Each string is cleaned first and cut once after (:func:`cut`), so neither a key cut in two
nor the mark itself can be garbled: credentials are always masked
(:mod:`llm_otel.core.secrets`: by value, by shape, and in a dict by the key's name), then the
``LLM_OTEL_REDACT_PATTERNS`` regexes and the :func:`llm_otel.config.set_redactor` hook are
applied, and base64 image data is replaced by a placeholder unless
``LLM_OTEL_CAPTURE_IMAGES=true``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Tuple

from llm_otel import config
from llm_otel.core import secrets
from llm_otel.core.secrets import REDACTED

TRUNCATION_MARK = "...[truncated {} chars]"
REDACTION_FAILED = "[REDACTION FAILED]"
IMAGE_PLACEHOLDER = "[image omitted: {} base64 chars; set LLM_OTEL_CAPTURE_IMAGES=true to keep]"
# cleaned beyond the cut, so that a secret starting before it is seen whole
_CUT_MARGIN = 1024


def scrub_secrets(text: str) -> str:
    """``text`` with credentials masked and UTF-8 safe: for exception messages and stack
    traces, which are recorded whole."""
    return utf8(secrets.scrub_secrets(text))


def utf8(text: str) -> str:
    """``text`` encodable as UTF-8: lone surrogates (JSON ``"\\ud800"`` decodes to one) become
    ``?``. OTLP encodes strings as UTF-8 and one bad attribute fails the whole export batch."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _image_data(text: str) -> bool:
    return text.startswith("data:image/") and ";base64," in text[:80]


def _clean(text: str, settings: Any) -> str:
    """One captured string made safe to record (see the module docstring); never raises."""
    text = secrets.scrub_secrets(text)
    for pattern in settings.redact_patterns:
        text = pattern.sub(REDACTED, text)
    hook = config.redactor()
    if hook is not None:
        try:
            result = hook(text)
            text = result if isinstance(result, str) else REDACTION_FAILED
        except Exception:  # noqa: BLE001 - fail closed: a broken hook must not leak the text
            text = REDACTION_FAILED
    return utf8(text)


# Short strings recur (span names, tool and agent names, tags, ids): each one is cleaned once
# per cleaning state (the settings and the secret values known), not once per span. Not with a
# user's redaction hook, which may want to see every string.
MEMO_MAX_CHARS = 256
MEMO_SIZE = 4096
_memo: Tuple[Any, Any, Dict[Tuple[str, int], str]] = (None, None, {})


def cut(text: str, limit: int, settings: Any = None) -> str:
    """``text`` cleaned, then cut once at ``limit`` characters and marked with how many
    were left out.

    Only the part that can be kept, plus a margin, is cleaned (the cost stays bounded for
    a huge string, and a secret that starts before the cut is still seen whole); what lies
    beyond the margin is counted as it is.
    """
    global _memo
    settings = settings or config.settings()
    if len(text) > MEMO_MAX_CHARS or config.redactor() is not None:
        return _cut(text, limit, settings)
    known = secrets.known_values()
    memo_settings, memo_known, table = _memo
    if memo_settings is not settings or memo_known is not known:  # a table per state: a string
        table = {}  # cleaned under the old one never lands in the new one
        _memo = (settings, known, table)
    key = (text, limit)
    done = table.get(key)
    if done is None:
        done = _cut(text, limit, settings)
        if len(table) >= MEMO_SIZE:
            table.clear()
        table[key] = done
    return done


def _cut(text: str, limit: int, settings: Any) -> str:
    if not settings.capture_images and _image_data(text):
        text = IMAGE_PLACEHOLDER.format(len(text))
    left_out = 0
    if len(text) > limit + _CUT_MARGIN:
        window = limit + max(_CUT_MARGIN, secrets.longest_known())
        left_out = max(len(text) - window, 0)
        text = text[:window]
    text = _clean(text, settings)
    if len(text) > limit:
        left_out += len(text) - limit
        text = text[:limit]
    return text + TRUNCATION_MARK.format(left_out) if left_out else text


def _is_image_blob(value: dict) -> bool:
    return value.get("type") == "blob" and value.get("modality") == "image"


def cap(value: Any, limit: int, _depth: int = 0, _settings: Any = None) -> Any:
    """A cleaned copy of ``value`` (JSON-like) with every string cut at ``limit`` characters
    and the value under any key named like a credential (``api_key``, ``password``,
    ``authorization`` ...) replaced by ``[REDACTED]``, at any depth."""
    if isinstance(value, str):
        return cut(value, limit, _settings)
    if _depth > 32:
        return "<nested too deep>"
    settings = _settings or config.settings()
    if isinstance(value, dict):
        image = not settings.capture_images and _is_image_blob(value)
        out: Dict[str, Any] = {}
        for k, v in value.items():
            key, credential = secrets.scrub_key(k if type(k) is str else _safe_str(k))
            key = utf8(key)
            if credential and v is not None:
                out[key] = REDACTED
            elif image and key == "content" and isinstance(v, str):
                out[key] = IMAGE_PLACEHOLDER.format(len(v))
            else:
                out[key] = cap(v, limit, _depth + 1, settings)
        return out
    if isinstance(value, (list, tuple)):
        return [cap(v, limit, _depth + 1, settings) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return cut(_safe_str(value), limit, settings)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - an object whose __str__ raises
        return f"<unprintable {type(value).__name__}>"


def to_json(value: Any, limit: int) -> str:
    """JSON text of ``value`` with strings cleaned and capped; never raises."""
    return utf8(json.dumps(cap(value, limit), ensure_ascii=False, default=_safe_str))  # keys too


def to_text(value: Any, limit: int) -> str:
    """An attribute value for content: a string cleaned and capped as-is, anything else as JSON."""
    if isinstance(value, str):
        return cut(value, limit)
    return to_json(value, limit)
