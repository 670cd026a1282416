"""Small helpers shared by the OpenAI extractors: reading dicts or SDK models alike,
the SDK's "not given" sentinels, request parameters common to every endpoint, and the
server address of the client."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from llm_otel import config
from llm_otel.core.invocation import LLMInvocation


def _sentinel_types() -> Tuple[type, ...]:
    types: List[type] = []
    try:
        from openai._types import NotGiven

        types.append(NotGiven)
    except ImportError:  # pragma: no cover - very old SDK
        pass
    try:
        from openai._types import Omit  # openai >= 1.x late / 2.x

        types.append(Omit)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


_SENTINELS = _sentinel_types()


def given(value: Any) -> bool:
    """False for None and the SDK's NOT_GIVEN / omit sentinels (helpers pass them explicitly)."""
    return value is not None and not isinstance(value, _SENTINELS)


def arg(kwargs: Dict[str, Any], key: str) -> Any:
    """A request argument, or None when it was not sent."""
    value = kwargs.get(key)
    return value if given(value) else None


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for dicts (request params), ``obj.key`` for SDK models (responses)."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        value = obj.get(key, default)
    else:
        value = getattr(obj, key, default)
    return value if given(value) else default


def number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def integer(value: Any) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def stop_sequences(value: Any) -> Optional[List[str]]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        out = [v for v in value if isinstance(v, str)]
        return out or None
    return None


def output_type(response_format: Any) -> Optional[str]:
    """``response_format`` (chat) or ``text.format`` (responses) -> gen_ai.output.type."""
    if response_format is None:
        return None
    if isinstance(response_format, type):  # a pydantic model given to .parse()
        return "json"
    kind = get(response_format, "type")
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    return None


def parse_arguments(raw: Any) -> Any:
    """Tool call arguments as JSON when they parse, else the raw string (streams may cut them)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def server_of(resource: Any) -> Tuple[Optional[str], Optional[int]]:
    """Host and port of the client's base_url (OpenAI, Azure or any compatible server)."""
    client = getattr(resource, "_client", None)
    url = getattr(client, "base_url", None)
    if url is None:
        return None, None
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    if port is None:
        scheme = getattr(url, "scheme", "")
        port = 443 if scheme == "https" else 80 if scheme == "http" else None
    return host, port


def new_invocation(operation: str, resource: Any, kwargs: Dict[str, Any]) -> LLMInvocation:
    """An invocation with the request model, server and the sampling parameters all endpoints share."""
    inv = LLMInvocation(operation=operation, provider="openai")
    model = arg(kwargs, "model")
    inv.request_model = model if isinstance(model, str) else None
    inv.server_address, inv.server_port = server_of(resource)
    inv.temperature = number(arg(kwargs, "temperature"))
    inv.top_p = number(arg(kwargs, "top_p"))
    inv.seed = integer(arg(kwargs, "seed"))
    inv.frequency_penalty = number(arg(kwargs, "frequency_penalty"))
    inv.presence_penalty = number(arg(kwargs, "presence_penalty"))
    inv.stream = arg(kwargs, "stream") is True
    tier = arg(kwargs, "service_tier")
    if isinstance(tier, str):
        inv.extra["request.service_tier"] = tier
    return inv


def response_extras(inv: LLMInvocation, response: Any) -> None:
    """Service tier and system fingerprint the API reported, under ``openai.response.*``."""
    tier = get(response, "service_tier")
    if isinstance(tier, str):
        inv.extra["response.service_tier"] = tier
    fingerprint = get(response, "system_fingerprint")
    if isinstance(fingerprint, str):
        inv.extra["response.system_fingerprint"] = fingerprint


def text_part(text: str) -> Dict[str, Any]:
    return {"type": "text", "content": text}


def keep_stream_text(kwargs: Dict[str, Any]) -> bool:
    """Whether a stream's text deltas are worth keeping: recorded as content, or needed
    for a local token count because the stream will carry no usage."""
    options = arg(kwargs, "stream_options")
    usage_requested = bool(get(options, "include_usage")) if options is not None else False
    return config.settings().capture_content or not usage_requested
