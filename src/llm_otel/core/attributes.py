"""The one way anything becomes an attribute: cleaned, capped, exportable.

Every value the core writes on a span or event passes here, whoever produced it (an LLM
record, a tool, a step, ``@track``, ``update_current_span/trace``, feedback):

- values the user or a library supplied (tags, metadata, inputs and outputs, tool
  arguments, content, error text) are *cleaned* first - credentials masked, the user's
  redaction applied, images replaced - then *cut once* to ``LLM_OTEL_CONTENT_MAX_LENGTH``
  with the cut marked (:mod:`llm_otel.core.content`); structures become JSON text;
- every value is made *exportable*: strings valid UTF-8, integers within int64, lists
  of one primitive type (OTLP fails a whole batch on one bad value).

Values the core derives from typed record fields (model names, counts, finish reasons)
only need the last step, whose common case (ASCII strings, small ints) costs a check.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional

from llm_otel import config
from llm_otel.core.content import REDACTED, to_json, to_text, utf8
from llm_otel.core.secrets import is_secret_name

MAX_TAGS = 64
MAX_METADATA_KEYS = 32

_INT64 = (-(2**63), 2**63 - 1)
_PRIMITIVE = (str, bool, int, float)


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


def exportable(attrs: Dict[str, Any]) -> Dict[str, Any]:
    """``attrs`` as OTLP can encode them. The common case (ASCII, small ints, lists of
    them) is checked without copying the dict."""
    low, high = _INT64
    for key, value in attrs.items():  # _clean_already, inlined: this runs for every attribute
        if type(key) is not str or not key.isascii():
            break
        kind = type(value)
        if kind is str:
            if value.isascii():
                continue
            break
        if kind is int:
            if low <= value <= high:
                continue
            break
        if kind is float or kind is bool:
            continue
        if (kind is list or kind is tuple) and all(_clean_already(v) for v in value):
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
        out[utf8(key) if isinstance(key, str) else str(key)] = value
    return out


def user_value(value: Any, limit: Optional[int] = None) -> Any:
    """A value the user or a library supplied, as an attribute value: strings cleaned and
    cut once, numbers and bools as they are, a list of strings item by item, anything
    else as cleaned JSON text."""
    if limit is None:
        limit = config.settings().content_max_length
    if isinstance(value, str):
        return to_text(value, limit)
    if isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return _exportable(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return [to_text(v, limit) for v in value]
    return to_json(value, limit)


def tag_list(tags: Iterable[Any], limit: Optional[int] = None) -> list:
    """Tags as one string array: cleaned, cut, de-duplicated, at most ``MAX_TAGS``."""
    out: list = []
    for tag in tags:
        text = user_value(str(tag), limit)
        if text not in out:
            out.append(text)
            if len(out) >= MAX_TAGS:
                break
    return out


def named(prefix: str, values: Mapping[Any, Any], limit: Optional[int] = None,
          max_keys: int = MAX_METADATA_KEYS) -> Dict[str, Any]:
    """``{prefix + key: value}`` for user data (metadata): keys made text, values cleaned;
    a key that names a credential has its value masked whatever the value is."""
    out: Dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        name = utf8(str(key))
        out[prefix + name] = REDACTED if is_secret_name(name) else user_value(value, limit)
        if len(out) >= max_keys:
            break
    return out
