"""Turning captured content into attribute values: JSON, every string capped.

Strings are cut one by one (not the JSON text), so what is recorded stays valid JSON and
a reader sees where and how much was cut: ``"...[truncated 1234 chars]"``.
"""

from __future__ import annotations

import json
from typing import Any

TRUNCATION_MARK = "...[truncated {} chars]"


def cap(value: Any, limit: int, _depth: int = 0) -> Any:
    """A copy of ``value`` (JSON-like) with every string at most ``limit`` characters."""
    if isinstance(value, str):
        if len(value) > limit:
            return value[:limit] + TRUNCATION_MARK.format(len(value) - limit)
        return value
    if _depth > 32:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {str(k): cap(v, limit, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [cap(v, limit, _depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return cap(_safe_str(value), limit, _depth + 1)


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - an object whose __str__ raises
        return f"<unprintable {type(value).__name__}>"


def to_json(value: Any, limit: int) -> str:
    """JSON text of ``value`` with strings capped; never raises."""
    return json.dumps(cap(value, limit), ensure_ascii=False, default=_safe_str)
