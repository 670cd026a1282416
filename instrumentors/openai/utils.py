"""Small helpers shared by the OpenAI extractors: reading request bodies (plain dicts) and
SDK models alike, request parameters common to every endpoint, the client's server."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from llm_otel.core import LLMInvocation


def _sentinel_types() -> Tuple[type, ...]:
    types: List[type] = []
    for name in ("NotGiven", "Omit"):
        try:
            import openai._types as openai_types

            types.append(getattr(openai_types, name))
        except (ImportError, AttributeError):  # pragma: no cover - an SDK without it
            pass
    return tuple(types)


SENTINELS = _sentinel_types()


def _PYDANTIC_MODEL(cls: type) -> bool:  # noqa: N802 - reads as the test it is
    return hasattr(cls, "model_fields") or hasattr(cls, "__fields__")


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for dicts (request bodies), ``obj.key`` for SDK models (responses);
    None and the SDK's NOT_GIVEN / omit sentinels read as absent."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        value = obj.get(key, default)
    else:
        fields = getattr(obj, "__dict__", None)
        if fields is not None and key in fields:  # a field (pydantic keeps them here)
            value = fields[key]
        elif _PYDANTIC_MODEL(type(obj)):  # getattr of a name a model lacks raises inside: slow
            extra = getattr(obj, "__pydantic_extra__", None)  # fields the API sent beyond the SDK's
            if extra and key in extra:
                value = extra[key]
            else:  # a property (``output_text``), else absent
                value = getattr(obj, key, default) if hasattr(type(obj), key) else default
        else:
            value = getattr(obj, key, default)
    return default if value is None or isinstance(value, SENTINELS) else value


def number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def integer(value: Any) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def stop_sequences(value: Any) -> Optional[List[str]]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        out = [v for v in value if isinstance(v, str)]
        return out or None
    return None


def output_type(response_format: Any) -> Optional[str]:
    """``response_format`` (chat) or ``text.format`` (responses) -> the output type."""
    if response_format is None:
        return None
    if isinstance(response_format, type):  # a pydantic model given to an old SDK's parse()
        return "json"
    kind = get(response_format, "type")
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    return None




def server_of(client: Any) -> Tuple[Optional[str], Optional[int]]:
    """Host and port of the client's base_url (OpenAI, Azure or any compatible server)."""
    url = getattr(client, "base_url", None)
    if url is None:
        return None, None
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    if port is None:
        scheme = getattr(url, "scheme", "")
        port = 443 if scheme == "https" else 80 if scheme == "http" else None
    return host, port


def provider_of(client: Any) -> str:
    """``azure.ai.openai`` for an Azure OpenAI client, else ``openai``."""
    for cls in type(client).__mro__:
        if cls.__name__ in ("AzureOpenAI", "AsyncAzureOpenAI"):
            return "azure.ai.openai"
    return "openai"


def new_invocation(operation: str, client: Any, body: Dict[str, Any]) -> LLMInvocation:
    """An invocation with the request model, server and the sampling parameters all endpoints
    share. ``body`` holds only what was given (no None, no NOT_GIVEN: see request._body)."""
    inv = LLMInvocation(operation=operation, provider=provider_of(client))
    inv.request_model = text(body.get("model"))
    inv.server_address, inv.server_port = server_of(client)
    inv.temperature = number(body.get("temperature"))
    inv.top_p = number(body.get("top_p"))
    inv.seed = integer(body.get("seed"))
    inv.frequency_penalty = number(body.get("frequency_penalty"))
    inv.presence_penalty = number(body.get("presence_penalty"))
    inv.top_k = integer(body.get("top_k"))  # OpenAI has none; compatible servers may take it
    inv.stream = body.get("stream") is True
    tier = body.get("service_tier")
    if isinstance(tier, str) and tier != "auto":  # "auto" is the default: no choice was made
        inv.provider_extras["request.service_tier"] = tier
    return inv


def response_extras(inv: LLMInvocation, response: Any) -> None:
    """Service tier and system fingerprint the API reported (the provider's namespace)."""
    tier = get(response, "service_tier")
    if isinstance(tier, str):
        inv.provider_extras["response.service_tier"] = tier
    fingerprint = get(response, "system_fingerprint")
    if isinstance(fingerprint, str):
        inv.provider_extras["response.system_fingerprint"] = fingerprint


def choice_order(index: Any) -> Any:
    """Sort key of streamed choices: by index, a missing (None) index last."""
    return (0, index) if isinstance(index, int) else (1, str(index))


def text_part(content: str) -> Dict[str, Any]:
    return {"type": "text", "content": content}


def data_url_part(url: Any, modality: str) -> Dict[str, Any]:
    """A ``data:`` URL as an inline ``blob`` part, any other URL as a ``uri`` part."""
    if isinstance(url, str) and url.startswith("data:"):
        header, _, data = url.partition(",")
        return {"type": "blob", "modality": modality, "mime_type": header[5:].split(";", 1)[0] or None,
                "content": data}
    return {"type": "uri", "modality": modality, "uri": url}


def file_part(file: Any) -> Dict[str, Any]:
    """A document: an uploaded file by its id, else its inline data (``file_data``, a data
    URL) or, for the Responses API, its ``file_url``."""
    file_id = get(file, "file_id")
    if file_id is not None:
        return {"type": "file", "modality": "document", "file_id": file_id, "filename": get(file, "filename")}
    data = get(file, "file_data")
    if isinstance(data, str):
        part = data_url_part(data, "document") if data.startswith("data:") else {
            "type": "blob", "modality": "document", "content": data}
    else:
        part = {"type": "uri", "modality": "document", "uri": get(file, "file_url")}
    part["filename"] = get(file, "filename")
    return part


def cache_write(usage: Any, details: Any) -> Optional[int]:
    """Input tokens written to the prompt cache: the API's ``cache_write_tokens`` detail, or
    ``cache_creation_input_tokens`` as compatible servers relaying Anthropic report it."""
    written = integer(get(details, "cache_write_tokens"))
    return written if written is not None else integer(get(usage, "cache_creation_input_tokens"))


def plain(value: Any) -> Any:
    """SDK models (and request dicts holding them) as plain JSON-like data, for content:
    only the fields the API sent or the app gave."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None and not isinstance(v, SENTINELS)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    to_dict = getattr(value, "to_dict", None)  # openai.BaseModel
    if callable(to_dict):
        return to_dict()
    return str(value)
