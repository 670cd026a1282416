"""Turning captured content into attribute values: JSON, every string capped.

Strings are cut one by one (not the JSON text), so what is recorded stays valid JSON and
a reader sees where and how much was cut: ``"...[truncated 1234 chars]"``.

Before it is cut, every string is cleaned (:func:`clean`): credentials that look like
API keys or auth headers are always masked, then the ``LLM_OTEL_REDACT_PATTERNS``
regexes and the :func:`llm_otel.config.set_redactor` hook are applied, and base64 image
data is replaced by a placeholder unless ``LLM_OTEL_CAPTURE_IMAGES=true``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict

from llm_otel import config

TRUNCATION_MARK = "...[truncated {} chars]"
REDACTED = "[REDACTED]"
REDACTION_FAILED = "[REDACTION FAILED]"
IMAGE_PLACEHOLDER = "[image omitted: {} base64 chars; set LLM_OTEL_CAPTURE_IMAGES=true to keep]"

# Credentials never belong in telemetry, whatever the settings: OpenAI-style keys,
# bearer tokens, and key/value pairs named like an API key or auth header.
_SECRETS = (
    (re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*]{8,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    (re.compile(r"(?i)\b((?:x-)?api[_-]?key|authorization|access[_-]?token|client[_-]?secret|password)"
                r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)(?!\[REDACTED\])(?:(?:bearer|basic)\s+)?[^\s\"',;}&\\]{4,}"),
     r"\1\2" + REDACTED),
)


_KEY_WORDS = ("key", "authorization", "token", "secret", "password")


def scrub_secrets(text: str) -> str:
    """``text`` with anything that looks like an API key or auth header masked.

    Cheap substring checks decide which regexes run at all: most content has no ``k-``,
    no ``bearer``, no ``key=``, and pays a ``lower()`` and a few ``in`` tests.
    """
    text = utf8(text)
    (keys, key_repl), (tokens, token_repl), (pairs, pair_repl) = _SECRETS
    if "k-" in text:
        text = keys.sub(key_repl, text)
    lower = text.lower()
    if "bearer" in lower or "basic" in lower:
        text = tokens.sub(token_repl, text)
    if ("=" in text or ":" in text) and any(word in lower for word in _KEY_WORDS):
        text = pairs.sub(pair_repl, text)
    return text


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


_INT64 = (-(2**63), 2**63 - 1)


def _exportable(value: Any) -> Any:
    if isinstance(value, str):
        return utf8(value)
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        return str(value)  # OTLP ints are int64: a bigger one would fail the whole batch
    return value


def _clean_already(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return value.isascii()
    if kind is float or kind is bool:
        return True
    if kind is int:
        return _INT64[0] <= value <= _INT64[1]
    return False


def utf8_attributes(attrs: Dict[str, Any]) -> Dict[str, Any]:
    """``attrs`` as OTLP can encode them: strings (keys, values, list items) UTF-8 safe,
    integers outside int64 as strings. The common case (ASCII, small ints) is checked
    without copying: this runs twice per span."""
    for key, value in attrs.items():
        if not (type(key) is str and key.isascii()):
            break
        if _clean_already(value):
            continue
        if isinstance(value, (list, tuple)) and all(_clean_already(v) for v in value):
            continue
        break
    else:
        return attrs
    out: Dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, (list, tuple)):
            value = [_exportable(v) for v in value]
        else:
            value = _exportable(value)
        out[utf8(key) if isinstance(key, str) else key] = value
    return out


def _image_data(text: str) -> bool:
    return text.startswith("data:image/") and ";base64," in text[:80]


def clean(text: str, settings: Any = None) -> str:
    """One captured string made safe to record (see the module docstring); never raises."""
    settings = settings or config.settings()
    if not settings.capture_images and _image_data(text):
        return IMAGE_PLACEHOLDER.format(len(text))
    text = scrub_secrets(text)
    for pattern in settings.redact_patterns:
        text = pattern.sub(REDACTED, text)
    hook = config.redactor()
    if hook is not None:
        try:
            result = hook(text)
            text = utf8(result) if isinstance(result, str) else REDACTION_FAILED
        except Exception:  # noqa: BLE001 - fail closed: a broken hook must not leak the text
            text = REDACTION_FAILED
    return text


def _is_image_blob(value: dict) -> bool:
    return value.get("type") == "blob" and value.get("modality") == "image"


def cap(value: Any, limit: int, _depth: int = 0, _settings: Any = None) -> Any:
    """A cleaned copy of ``value`` (JSON-like) with every string at most ``limit`` characters."""
    if isinstance(value, str):
        value = clean(value, _settings)
        if len(value) > limit:
            return value[:limit] + TRUNCATION_MARK.format(len(value) - limit)
        return value
    if _depth > 32:
        return "<nested too deep>"
    settings = _settings or config.settings()
    if isinstance(value, dict):
        image = not settings.capture_images and _is_image_blob(value)
        return {_safe_str(k): IMAGE_PLACEHOLDER.format(len(v)) if image and k == "content" and isinstance(v, str)
                else cap(v, limit, _depth + 1, settings) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [cap(v, limit, _depth + 1, settings) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return cap(_safe_str(value), limit, _depth + 1, settings)


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
        value = clean(value)
        if len(value) <= limit:
            return value
        return value[:limit] + TRUNCATION_MARK.format(len(value) - limit)
    return to_json(value, limit)
