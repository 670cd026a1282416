"""Any Python object to a small JSON-like value, for span attributes. Never raises.

``@track`` records the arguments and results of the user's own functions, which can be
anything: ORM rows, sockets, recursive graphs, megabyte strings, objects whose
``__repr__`` raises. The walk below is bounded three ways (depth, items per container,
a total character budget) and detects cycles, so its cost stays small whatever it is
given; iterators and generators are never consumed.

Strings (and reprs) are kept whole: the core cleans and cuts each one once when it is
recorded (:func:`llm_otel.core.content.cut`), masking secrets before the cut, so the
``...[truncated N chars]`` mark counts what was really left out.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
from collections import deque
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Dict, List, Optional, Set

MAX_DEPTH = 8
MAX_ITEMS = 64

_SCALARS = (bool, int, str)


class _Walk:
    __slots__ = ("budget", "string_cap", "seen")

    def __init__(self, max_chars: int) -> None:
        self.string_cap = max_chars  # one string counts what the core keeps of it at most
        self.budget = 2 * max_chars  # all of it: one huge argument does not hide the others
        self.seen: Set[int] = set()


def to_jsonable(value: Any, max_chars: int = 16384) -> Any:
    """A JSON-serializable copy of ``value``: strings whole, each counted as at most
    ``max_chars`` against a budget of about twice that; items beyond it are left out."""
    if value is None or type(value) in (bool, int, str):
        return value  # the common case, without the walk
    try:
        return _walk(value, _Walk(max(64, max_chars)), 0)
    except Exception:  # noqa: BLE001 - last resort: the guard of this module
        return f"<unserializable {_type_name(value)}>"


def _type_name(value: Any) -> str:
    try:
        return type(value).__qualname__
    except Exception:  # noqa: BLE001
        return "object"


def _json_chars(text: str, cap: int) -> int:
    """What JSON writes for the part of ``text`` that is kept: quotes and escapes included
    (a control character or a surrogate is six)."""
    return len(encode_basestring_ascii(text[:cap]))


def _string(text: str, walk: _Walk) -> str:
    walk.budget -= _json_chars(text, walk.string_cap)
    return text


def _repr(value: Any, walk: _Walk) -> str:
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception:  # noqa: BLE001 - objects whose __repr__ raises
        text = f"<{_type_name(value)} object (repr failed)>"
    return _string(text, walk)


def _walk(value: Any, walk: _Walk, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        walk.budget -= 5
        return value
    if isinstance(value, str):
        return _string(str(value), walk)
    if isinstance(value, int):
        walk.budget -= value.bit_length() * 30103 // 100000 + 2  # its digits and sign, without str()
        return int(value)
    if isinstance(value, float):
        walk.budget -= len(repr(float(value)))
        return float(value) if math.isfinite(value) else str(value)
    if walk.budget <= 0:
        return "...[truncated]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _string(f"<{_type_name(value)}: {len(value)} bytes>", walk)
    if isinstance(value, enum.Enum):
        return _walk(value.value, walk, depth)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return _string(value.isoformat(), walk)
    if depth >= MAX_DEPTH:
        return _string(f"<{_type_name(value)}: nested too deep>", walk)

    key = id(value)
    if key in walk.seen:
        return _string(f"<cycle: {_type_name(value)}>", walk)
    walk.seen.add(key)
    try:
        return _container(value, walk, depth)
    finally:
        walk.seen.discard(key)


def _container(value: Any, walk: _Walk, depth: int) -> Any:
    if isinstance(value, dict):
        return _mapping(value, walk, depth)
    if isinstance(value, (list, tuple, deque)):
        return _sequence(value, walk, depth)
    if isinstance(value, (set, frozenset)):
        try:
            items = sorted(value, key=repr)  # stable output for equal sets
        except Exception:  # noqa: BLE001
            items = list(value)
        return _sequence(items, walk, depth)
    dumped = _model_fields(value)
    if dumped is not None:
        return {"__type__": _type_name(value), **_mapping(dumped, walk, depth)}
    return _repr(value, walk)


def _mapping(value: Dict[Any, Any], walk: _Walk, depth: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for index, (k, v) in enumerate(list(value.items())):
        if index >= MAX_ITEMS or walk.budget <= 0:
            out["..."] = f"{len(value) - index} more items"
            break
        name = k if isinstance(k, str) else _repr(k, walk)
        walk.budget -= _json_chars(name, walk.string_cap) + 2
        out[name] = _walk(v, walk, depth + 1)
    return out


def _sequence(value: Any, walk: _Walk, depth: int) -> List[Any]:
    out: List[Any] = []
    for index, item in enumerate(value):
        if index >= MAX_ITEMS or walk.budget <= 0:
            out.append(f"...[{len(value) - index} more items]")
            break
        out.append(_walk(item, walk, depth + 1))
        walk.budget -= 2
    return out


def _model_fields(value: Any) -> Optional[Dict[str, Any]]:
    """The fields of a dataclass or pydantic model (shallow: the walk recurses itself)."""
    cls = type(value)
    try:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        if hasattr(cls, "model_dump") and hasattr(cls, "model_fields"):  # pydantic v2
            return {name: getattr(value, name, None) for name in cls.model_fields}
        if hasattr(cls, "__fields__") and hasattr(value, "dict"):  # pydantic v1
            return {name: getattr(value, name, None) for name in cls.__fields__}
    except Exception:  # noqa: BLE001 - a model whose fields misbehave: fall back to repr
        return None
    return None
