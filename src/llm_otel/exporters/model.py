"""One plain span shape for the local tools, and its OTLP-JSON form.

The console tree, the JSONL file and the fine-tuning export all work on
:class:`SpanRecord`, built either from a live SDK span (:func:`from_readable`) or from a
line of the JSONL file (:func:`from_otlp_json`), so what is printed live and what is read
back from a file go through the same code.

The JSON form uses OTLP/JSON field names (``traceId``, ``spanId`` as hex, times in
nanoseconds as strings, attributes as ``{"key", "value": {"stringValue": ...}}``, enum
values as integers), one object per span with its ``resource`` and ``scope`` inlined.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

# OTLP enums: SpanKind is the SDK's value + 1 (0 = UNSPECIFIED); StatusCode is the same.
KIND_NAMES = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


class SchemaError(ValueError):
    """A JSON object that is not a span in the expected shape."""


def _short(value: Any) -> str:
    """A value for an error message: bounded in length and depth, whatever the input."""
    return reprlib.repr(value)


@dataclass
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SpanRecord:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: Optional[str]
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    kind: int = 1  # OTLP value
    attributes: Dict[str, Any] = field(default_factory=dict)
    events: List[SpanEvent] = field(default_factory=list)
    status_code: int = STATUS_UNSET
    status_message: str = ""
    resource: Dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    parent_is_remote: bool = False

    @property
    def duration_s(self) -> float:
        return max(0, self.end_time_unix_nano - self.start_time_unix_nano) / 1e9

    @property
    def is_error(self) -> bool:
        return self.status_code == STATUS_ERROR

    @property
    def is_local_root(self) -> bool:
        return self.parent_span_id is None or self.parent_is_remote


# ---- from a live SDK span -----------------------------------------------------------------


# Every span of a process shares one Resource: convert it once (the last one seen, held
# by reference so identity checks stay valid). Records share the dict: treat it as read-only.
_last_resource: List[Any] = [None, {}, []]  # Resource, its attributes dict, their OTLP list


def _resource_dict(resource: Any) -> Dict[str, Any]:
    if resource is None:
        return {}
    cached = _last_resource
    if cached[0] is not resource:
        attrs = dict(resource.attributes)
        _last_resource[:] = [resource, attrs, attributes_to_otlp(attrs)]
        return attrs
    return cached[1]


def _resource_otlp(attrs: Dict[str, Any]) -> List[Dict[str, Any]]:
    cached = _last_resource
    return cached[2] if cached[1] is attrs else attributes_to_otlp(attrs)


def from_readable(span: Any) -> SpanRecord:
    """A :class:`SpanRecord` from an SDK ``ReadableSpan``."""
    ctx = span.context
    parent = span.parent
    status = span.status
    scope = span.instrumentation_scope
    resource = span.resource
    return SpanRecord(
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
        parent_is_remote=bool(parent is not None and parent.is_remote),
        name=span.name,
        start_time_unix_nano=span.start_time or 0,
        end_time_unix_nano=span.end_time or span.start_time or 0,
        kind=span.kind.value + 1,
        attributes=dict(span.attributes or {}),
        events=[SpanEvent(e.name, e.timestamp or 0, dict(e.attributes or {})) for e in span.events],
        status_code=status.status_code.value if status is not None else STATUS_UNSET,
        status_message=(status.description or "") if status is not None else "",
        resource=_resource_dict(resource),
        scope_name=scope.name if scope is not None else "",
        scope_version=(scope.version or "") if scope is not None else "",
    )


# ---- OTLP-JSON ----------------------------------------------------------------------------


def _any_value(value: Any) -> Dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # proto3 JSON: int64 as a string
    if isinstance(value, float):
        if value != value or value in (math.inf, -math.inf):  # proto3 JSON spells these as strings
            return {"doubleValue": "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")}
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        import base64

        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": attributes_to_otlp(value)}}
    return {"stringValue": str(value)}


def attributes_to_otlp(attributes: Mapping[str, Any]) -> List[Dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in attributes.items()]


def _from_any_value(value: Any) -> Any:
    if not isinstance(value, dict):
        raise SchemaError(f"attribute value must be an object, got {type(value).__name__}")
    if not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "stringValue":
        return str(inner)
    if kind == "boolValue":
        return bool(inner)
    if kind == "intValue":
        return int(inner)
    if kind == "doubleValue":
        return float(inner)
    if kind == "bytesValue":
        import base64

        return base64.b64decode(inner)
    if kind in ("arrayValue", "kvlistValue"):
        values = (inner or {}).get("values", []) if isinstance(inner, (dict, type(None))) else None
        if not isinstance(values, list):
            raise SchemaError(f"{kind} must be {{\"values\": [...]}}, got {_short(inner)}")
        if kind == "arrayValue":
            return tuple(_from_any_value(v) for v in values)
        return attributes_from_otlp(values)
    raise SchemaError(f"unknown attribute value type {_short(kind)}")


def attributes_from_otlp(items: Any) -> Dict[str, Any]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise SchemaError("attributes must be a list of {key, value}")
    out: Dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise SchemaError("attribute entries must be objects with a string 'key'")
        try:
            out[item["key"]] = _from_any_value(item.get("value", {}))
        except SchemaError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # int("x"), int(inf), b64decode(...)
            raise SchemaError(f"attribute {_short(item['key'])}: {exc}") from None
    return out


def to_otlp_json(record: SpanRecord) -> Dict[str, Any]:
    """The JSON object written for one span (one line of the JSONL file)."""
    obj: Dict[str, Any] = {
        "traceId": record.trace_id,
        "spanId": record.span_id,
        "parentSpanId": record.parent_span_id or "",
        "name": record.name,
        "kind": record.kind,
        "startTimeUnixNano": str(record.start_time_unix_nano),
        "endTimeUnixNano": str(record.end_time_unix_nano),
        "attributes": attributes_to_otlp(record.attributes),
        "events": [{"timeUnixNano": str(e.time_unix_nano), "name": e.name,
                    "attributes": attributes_to_otlp(e.attributes)} for e in record.events],
        "status": {"code": record.status_code, **({"message": record.status_message}
                                                  if record.status_message else {})},
        "resource": {"attributes": _resource_otlp(record.resource)},
        "scope": {"name": record.scope_name, **({"version": record.scope_version}
                                                if record.scope_version else {})},
    }
    if record.parent_is_remote:
        obj["parentIsRemote"] = True
    return obj


_HEX = set("0123456789abcdefABCDEF")


def _hex_id(obj: Dict[str, Any], key: str, length: int, required: bool = True) -> Optional[str]:
    value = obj.get(key)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or len(value) != length or not set(value) <= _HEX:
        raise SchemaError(f"{key} must be {length} hex digits, got {_short(value)}")
    return value.lower()


def _nanos(obj: Dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or value is None:
        raise SchemaError(f"missing {key}")
    try:
        nanos = int(value)
    except (TypeError, ValueError, OverflowError):
        raise SchemaError(f"{key} must be an integer (nanoseconds), got {_short(value)}") from None
    if not 0 <= nanos < 2 ** 64:  # OTLP's fixed64
        raise SchemaError(f"{key} out of range: {_short(value)}")
    return nanos


def from_otlp_json(obj: Any) -> SpanRecord:
    """Parse one JSON span object; :class:`SchemaError` says what is wrong with it."""
    if not isinstance(obj, dict):
        raise SchemaError(f"expected a JSON object, got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str):
        raise SchemaError("missing span name")
    kind = obj.get("kind", 1)
    if isinstance(kind, str):  # tolerate "SPAN_KIND_CLIENT"
        kind = next((k for k, v in KIND_NAMES.items() if kind.upper().endswith(v)), 0)
    status = obj.get("status") or {}
    if not isinstance(status, dict):
        raise SchemaError("status must be an object")
    code = status.get("code", STATUS_UNSET)
    if isinstance(code, str):
        code = {"STATUS_CODE_OK": STATUS_OK, "STATUS_CODE_ERROR": STATUS_ERROR}.get(code.upper(), STATUS_UNSET)
    events = []
    raw_events = obj.get("events") or []
    if not isinstance(raw_events, list):
        raise SchemaError("events must be a list")
    for event in raw_events:
        if not isinstance(event, dict):
            raise SchemaError("events must be objects")
        events.append(SpanEvent(str(event.get("name", "")), _nanos({"t": event.get("timeUnixNano") or 0}, "t"),
                                attributes_from_otlp(event.get("attributes"))))
    resource = obj.get("resource") or {}
    scope = obj.get("scope") or {}
    if not isinstance(resource, dict) or not isinstance(scope, dict):
        raise SchemaError("resource and scope must be objects")
    return SpanRecord(
        trace_id=_hex_id(obj, "traceId", 32),  # type: ignore[arg-type]
        span_id=_hex_id(obj, "spanId", 16),  # type: ignore[arg-type]
        parent_span_id=_hex_id(obj, "parentSpanId", 16, required=False),
        parent_is_remote=bool(obj.get("parentIsRemote", False)),
        name=name,
        kind=kind if isinstance(kind, int) else 0,
        start_time_unix_nano=_nanos(obj, "startTimeUnixNano"),
        end_time_unix_nano=_nanos(obj, "endTimeUnixNano"),
        attributes=attributes_from_otlp(obj.get("attributes")),
        events=events,
        status_code=code if isinstance(code, int) else STATUS_UNSET,
        status_message=str(status.get("message") or ""),
        resource=attributes_from_otlp(resource.get("attributes")),
        scope_name=str(scope.get("name") or ""),
        scope_version=str(scope.get("version") or ""),
    )
