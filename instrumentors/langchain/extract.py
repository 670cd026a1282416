"""Plain data out of LangChain objects: messages, request parameters, usage, documents.

Everything here reads attributes defensively (``getattr`` with defaults): LangChain and its
integrations differ by version, and a missing field must cost a value, never the call.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from llm_otel.core import tool_arguments

# LangChain's ``ls_provider`` -> the GenAI conventions' ``gen_ai.provider.name``
_PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "google_anthropic_vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "groq": "groq",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
}

# a message's ``type`` -> its role; a streamed ``*MessageChunk`` has the type of its class
# ("AIMessageChunk"), read as the message it is a piece of
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool",
          "developer": "system", "user": "user", "assistant": "assistant"}
_CHUNK = "MessageChunk"

# tags LangChain adds itself; they say nothing the span tree does not
_INTERNAL_TAG_PREFIXES = ("seq:step:", "map:key:", "langsmith:", "graph:step:", "branch:")
# metadata LangChain / LangSmith / LangGraph add themselves (read separately where useful)
_INTERNAL_METADATA_PREFIXES = ("ls_", "langgraph_", "checkpoint_", "lc_", "__")
_INTERNAL_METADATA = {"checkpoint_ns", "checkpoint_id", "run_attempt"}


def provider(metadata: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    raw = metadata.get("ls_provider") or params.get("_type") or "langchain"
    raw = str(raw)
    return _PROVIDERS.get(raw.lower(), raw.lower())


def model_name(metadata: Mapping[str, Any], params: Mapping[str, Any],
               serialized: Optional[Mapping[str, Any]]) -> Optional[str]:
    for source, key in ((metadata, "ls_model_name"), (params, "model"), (params, "model_name"),
                        (params, "model_id"), (params, "deployment_name")):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    kwargs = (serialized or {}).get("kwargs") if isinstance(serialized, Mapping) else None
    if isinstance(kwargs, Mapping):
        for key in ("model", "model_name", "model_id"):
            value = kwargs.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _first(params: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = params.get(key)
        if value is not None:
            return value
    return None


def _num(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return kind(value)
    return None


def request_params(metadata: Mapping[str, Any], params: Mapping[str, Any],
                   serialized: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """LLMInvocation request fields from invocation params, falling back to constructor kwargs."""
    merged: Dict[str, Any] = {}
    kwargs = (serialized or {}).get("kwargs") if isinstance(serialized, Mapping) else None
    if isinstance(kwargs, Mapping):
        merged.update(kwargs)
    merged.update({k: v for k, v in params.items() if v is not None})
    model_kwargs = merged.get("model_kwargs")
    if isinstance(model_kwargs, Mapping):
        for key, value in model_kwargs.items():
            merged.setdefault(key, value)
    out: Dict[str, Any] = {
        "temperature": _num(_first(merged, "temperature") if "temperature" in merged
                            else metadata.get("ls_temperature"), float),
        "top_p": _num(_first(merged, "top_p"), float),
        "top_k": _num(_first(merged, "top_k"), float),
        "max_tokens": _num(_first(merged, "max_tokens", "max_completion_tokens", "max_output_tokens",
                                  "max_tokens_to_sample") or metadata.get("ls_max_tokens"), int),
        "seed": _num(_first(merged, "seed", "random_seed"), int),
        "frequency_penalty": _num(_first(merged, "frequency_penalty"), float),
        "presence_penalty": _num(_first(merged, "presence_penalty"), float),
        "choice_count": _num(_first(merged, "n"), int),
    }
    stop = _first(merged, "stop", "stop_sequences") or metadata.get("ls_stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        out["stop_sequences"] = list(stop)
    out["stream"] = bool(merged.get("stream") or merged.get("streaming"))
    tools = merged.get("tools") or merged.get("functions")
    if isinstance(tools, (list, tuple)) and tools:
        out["tool_definitions"] = [t if isinstance(t, dict) else {"value": str(t)} for t in tools]
    response_format = merged.get("response_format")
    if isinstance(response_format, Mapping):
        if response_format.get("type") in ("json_schema", "json_object"):
            out["output_type"] = "json"
    elif isinstance(response_format, type):  # a pydantic model / TypedDict: structured output
        out["output_type"] = "json"
    return {k: v for k, v in out.items() if v is not None}


# ---- messages ----------------------------------------------------------------------------


def _text_of(content: Any) -> List[Dict[str, Any]]:
    """Message content (a string or a list of content blocks) as semconv parts."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: List[Dict[str, Any]] = []
    if isinstance(content, (list, tuple)):
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
            elif isinstance(block, Mapping):
                kind = block.get("type")
                if kind == "text" or "text" in block:
                    parts.append({"type": "text", "content": str(block.get("text", ""))})
                elif kind in ("reasoning", "thinking"):
                    parts.append({"type": "reasoning",
                                  "content": str(block.get("reasoning") or block.get("thinking") or "")})
                elif kind in ("tool_call", "tool_use", "tool_call_chunk", "function_call"):
                    continue  # carried by the message's tool_calls
                else:
                    parts.append({"type": str(kind or "unknown")})
        return parts
    return [{"type": "text", "content": str(content)}]




def role(msg: Any) -> str:
    """The conventions' role of a ``BaseMessage`` or ``BaseMessageChunk``: ``user``,
    ``assistant``, ``system``, ``tool``, or a ``ChatMessage``'s own role."""
    kind = getattr(msg, "type", None)
    if not isinstance(kind, str) or not kind:
        return "user"
    if kind.endswith(_CHUNK):
        kind = kind[:-len(_CHUNK)].lower()
    if kind == "chat":  # ChatMessage: the role it was given
        given = getattr(msg, "role", None)
        return _ROLES.get(given, given) if isinstance(given, str) and given else "user"
    return _ROLES.get(kind, kind)


def message(msg: Any) -> Dict[str, Any]:
    """One ``BaseMessage`` (or chunk) in the GenAI conventions' message shape."""
    role_name = role(msg)
    if role_name == "tool":
        parts = [{"type": "tool_call_response", "id": getattr(msg, "tool_call_id", None),
                  "response": _plain_content(getattr(msg, "content", None))}]
        return {"role": "tool", "parts": parts}
    parts = _text_of(getattr(msg, "content", None))
    for call in getattr(msg, "tool_calls", None) or ():
        if isinstance(call, Mapping):
            parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                          "arguments": call.get("args")})
    if not getattr(msg, "tool_calls", None):
        extra = getattr(msg, "additional_kwargs", None) or {}
        function_call = extra.get("function_call") if isinstance(extra, Mapping) else None
        if isinstance(function_call, Mapping):
            parts.append({"type": "tool_call", "name": function_call.get("name"),
                          "arguments": tool_arguments(function_call.get("arguments"))})
    out: Dict[str, Any] = {"role": role_name, "parts": parts}
    name = getattr(msg, "name", None)
    if name:
        out["name"] = name
    return out


def _plain_content(content: Any) -> Any:
    if isinstance(content, str) or content is None:
        return content
    parts = _text_of(content)
    texts = [p.get("content") for p in parts if p.get("type") == "text"]
    return "".join(t for t in texts if t) if texts else str(content)


def messages(batch: Any) -> List[Dict[str, Any]]:
    return [message(m) for m in (batch or ())]


def prompt_messages(prompt: str) -> List[Dict[str, Any]]:
    return [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]


# ---- results -----------------------------------------------------------------------------


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage_from_metadata(usage: Any) -> Dict[str, Optional[int]]:
    """``AIMessage.usage_metadata``: input/output tokens with cache and reasoning details."""
    inp = _get(usage, "input_token_details") or {}
    out = _get(usage, "output_token_details") or {}
    return {"input_tokens": _int(_get(usage, "input_tokens")),
            "output_tokens": _int(_get(usage, "output_tokens")),
            "cache_read_input_tokens": _int(_get(inp, "cache_read")),
            "cache_creation_input_tokens": _int(_get(inp, "cache_creation")),
            "reasoning_output_tokens": _int(_get(out, "reasoning"))}


def _usage_from_token_usage(usage: Mapping[str, Any]) -> Dict[str, Optional[int]]:
    """``llm_output["token_usage"]`` in OpenAI's (or Anthropic's) key names."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {"input_tokens": _int(usage.get("prompt_tokens", usage.get("input_tokens"))),
            "output_tokens": _int(usage.get("completion_tokens", usage.get("output_tokens"))),
            "cache_read_input_tokens": _int(_get(prompt_details, "cached_tokens")
                                            or usage.get("cache_read_input_tokens")),
            "cache_creation_input_tokens": _int(usage.get("cache_creation_input_tokens")),
            "reasoning_output_tokens": _int(_get(completion_details, "reasoning_tokens"))}


def _sum_usage(items: Iterable[Dict[str, Optional[int]]]) -> Dict[str, Optional[int]]:
    total: Dict[str, Optional[int]] = {}
    for item in items:
        for key, value in item.items():
            if value is not None:
                total[key] = (total.get(key) or 0) + value
            else:
                total.setdefault(key, None)
    return total


def _generations(result: Any) -> List[Any]:
    return [g for batch in (getattr(result, "generations", None) or ()) for g in batch]


def _finish_reason(gen: Any) -> Optional[str]:
    info = getattr(gen, "generation_info", None) or {}
    meta = getattr(getattr(gen, "message", None), "response_metadata", None) or {}
    reason = info.get("finish_reason") or meta.get("finish_reason") or meta.get("stop_reason")
    return reason if isinstance(reason, str) else None


def llm_result(result: Any) -> Dict[str, Any]:
    """Response fields of an ``LLMResult``: usage, model, id, finish reasons."""
    out: Dict[str, Any] = {}
    finish: List[str] = []
    usages = []
    for gen in _generations(result):
        msg = getattr(gen, "message", None)
        reason = _finish_reason(gen)
        if reason is not None:
            finish.append(reason)
        if msg is not None:
            meta = getattr(msg, "response_metadata", None) or {}
            usage = getattr(msg, "usage_metadata", None)
            if usage:
                usages.append(_usage_from_metadata(usage))
            out.setdefault("response_model", meta.get("model_name") or meta.get("model"))
            msg_id = meta.get("id") or getattr(msg, "id", None)
            if isinstance(msg_id, str) and not msg_id.startswith(("run-", "lc_run")):
                out.setdefault("response_id", msg_id)
        else:
            info = getattr(gen, "generation_info", None) or {}
            out.setdefault("response_model", info.get("model") or info.get("model_name"))
    if usages:
        out.update(_sum_usage(usages))
    llm_output = getattr(result, "llm_output", None) or {}
    if isinstance(llm_output, Mapping):
        token_usage = llm_output.get("token_usage") or llm_output.get("usage")
        if isinstance(token_usage, Mapping) and not usages:
            out.update(_usage_from_token_usage(token_usage))
        if not out.get("response_model"):
            out["response_model"] = llm_output.get("model_name") or llm_output.get("model")
        if not out.get("response_id") and isinstance(llm_output.get("id"), str):
            out["response_id"] = llm_output["id"]
    if finish:
        out["finish_reasons"] = finish
    return {k: v for k, v in out.items() if v is not None}


def output_messages(result: Any) -> List[Dict[str, Any]]:
    """The messages of an ``LLMResult``, one per generation, each with its finish reason."""
    outputs: List[Dict[str, Any]] = []
    for gen in _generations(result):
        msg = getattr(gen, "message", None)
        if msg is not None:
            item = message(msg)
            item["role"] = "assistant"
        else:
            item = {"role": "assistant", "parts": _text_of(getattr(gen, "text", None))}
        reason = _finish_reason(gen)
        if reason is not None:
            item["finish_reason"] = reason
        outputs.append(item)
    return outputs


# ---- tags, metadata, documents -----------------------------------------------------------


def user_tags(tags: Optional[List[str]]) -> Optional[List[str]]:
    """The user's RunnableConfig tags, without the ones LangChain adds itself."""
    user = [t for t in tags or () if isinstance(t, str) and not t.startswith(_INTERNAL_TAG_PREFIXES)]
    return user or None


def user_metadata(metadata: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """The user's RunnableConfig metadata, without LangChain's own bookkeeping."""
    out: Dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or key.startswith(_INTERNAL_METADATA_PREFIXES) or key in _INTERNAL_METADATA:
            continue
        if value is not None:
            out[key] = value
    return out or None


def documents(docs: Any) -> List[Dict[str, Any]]:
    """Retrieved documents: id and score (when known), content and metadata each."""
    out: List[Dict[str, Any]] = []
    for doc in docs or ():
        meta = getattr(doc, "metadata", None) or {}
        doc_id = getattr(doc, "id", None) or (meta.get("id") if isinstance(meta, Mapping) else None)
        item: Dict[str, Any] = {"content": getattr(doc, "page_content", None)}
        if doc_id is not None:
            item["id"] = str(doc_id)
        score = meta.get("score", meta.get("relevance_score")) if isinstance(meta, Mapping) else None
        if isinstance(score, (int, float)) and not isinstance(score, bool):  # set by *_with_score searches
            item["score"] = score
        if meta:
            item["metadata"] = meta
        out.append(item)
    return out


def tool_output(output: Any) -> Any:
    """A tool's result: a ``ToolMessage``'s content, or the value itself."""
    if hasattr(output, "content") and getattr(output, "type", None) == "tool":
        return _plain_content(output.content)
    return output


def run_name(serialized: Any, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return default


# ---- conversations, agents, tool calls, retrievers ---------------------------------------

# where LangChain apps name their conversation: LangGraph's ``thread_id`` (configurable keys
# reach every run's metadata), or metadata the app sets itself
_CONVERSATION_KEYS = ("thread_id", "session_id", "conversation_id")


def conversation_id(metadata: Mapping[str, Any]) -> Optional[str]:
    for key in _CONVERSATION_KEYS:
        value = metadata.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


def _as_messages(value: Any) -> Optional[List[Dict[str, Any]]]:
    """A list of LangChain messages (or what ``convert_to_messages`` accepts: ``("user",
    "hi")`` tuples, ``{"role", "content"}`` dicts, strings) as conventions messages."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    from langchain_core.messages import convert_to_messages

    return [message(m) for m in convert_to_messages(value)]


def agent_messages(step: Any) -> None:
    """An agent's or workflow's content as messages (the core calls it only when content is
    recorded): the messages it was given, and its answer.

    LangGraph state ``{"messages": [...]}`` in and out (the answer: the last message);
    ``AgentExecutor``'s ``{"input", "chat_history"}`` in and ``{"output"}`` out. Other
    inputs and outputs stay raw."""
    inputs, outputs = step.inputs, step.outputs
    if isinstance(inputs, Mapping):
        found = _as_messages(inputs.get("messages"))
        if found is None and isinstance(inputs.get("input"), str):
            found = (_as_messages(inputs.get("chat_history")) or []) + prompt_messages(inputs["input"])
        step.input_messages = found
    elif isinstance(inputs, str):
        step.input_messages = prompt_messages(inputs)
    answer: Any = None
    if isinstance(outputs, Mapping):
        said = outputs.get("messages")
        if isinstance(said, (list, tuple)) and said:
            answer = _as_messages(said[-1:])
        elif isinstance(outputs.get("output"), str):
            answer = [{"role": "assistant", "parts": _text_of(outputs["output"])}]
    if answer:
        step.output_messages = answer


def args_key(args: Any) -> int:
    """Tool-call arguments as a short key: calls are matched by name and arguments."""
    try:
        return hash(json.dumps(args, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return hash(str(args))


def requested_calls(result: Any) -> List[Tuple[str, int, str]]:
    """The tool calls a model's result asks for: ``(name, arguments key, call id)``."""
    calls: List[Tuple[str, int, str]] = []
    for batch in getattr(result, "generations", None) or ():
        for gen in batch:
            for call in getattr(getattr(gen, "message", None), "tool_calls", None) or ():
                if isinstance(call, Mapping) and isinstance(call.get("id"), str) and call["id"]:
                    calls.append((str(call.get("name")), args_key(call.get("args")), call["id"]))
    return calls


def top_k(retriever: Any, kwargs: Mapping[str, Any]) -> Optional[int]:
    """How many documents a retriever was asked for: ``k`` passed to ``invoke``, a
    ``VectorStoreRetriever``'s ``search_kwargs["k"]``, or a ``k`` / ``top_k`` field."""
    k = kwargs.get("k")
    if k is None:
        search = getattr(retriever, "search_kwargs", None)
        k = search.get("k") if isinstance(search, Mapping) else None
    for name in ("k", "top_k"):
        if k is None:
            k = getattr(retriever, name, None)
    return k if isinstance(k, int) and not isinstance(k, bool) and k > 0 else None
