"""Records to attributes: where the GenAI conventions meet the records, in one place.

Every function returns a dict ready for the SDK: values pass through
:mod:`llm_otel.core.attributes` (typed fields made exportable, user data cleaned and cut
once). The recorder decides *when* each set is written; this module decides *what*, for
the default profile (semantic conventions v1.41) and, with ``settings.latest_semconv``,
semantic-conventions-genai v0.1.0.
"""

from __future__ import annotations

import json

from typing import Any, Dict, List, Optional

from llm_otel.core import attributes as av
from llm_otel.core import semconv as sc
from llm_otel.core.content import cap, to_json, to_text
from llm_otel.core.records import LLMInvocation, StepInvocation, ToolInvocation

# end reasons an operation can be given, as the flags backends filter on
END_REASONS = {"abandoned": sc.RUN_ABANDONED, "closed_early": sc.STREAM_CLOSED_EARLY}
_AGENTS = ("invoke_agent", "create_agent")


def _put(attrs: Dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attrs[key] = value


_OPENAI_PROVIDERS = ("openai", "azure.ai.openai")


def provider_namespace(provider: str) -> str:
    """The attribute namespace of a provider's own extras: Azure OpenAI is OpenAI's API."""
    return sc.OPENAI_NAMESPACE if provider in _OPENAI_PROVIDERS else provider


def span_name(text: str, limit: int) -> str:
    """A span name from user or library data: cleaned, and short (backends list by it)."""
    return av.user_value(text, min(limit, 256))


def user_data(record: Any, limit: int) -> Dict[str, Any]:
    """Tags, metadata and library extras of any record, named and cleaned."""
    attrs: Dict[str, Any] = {}
    if record.tags:
        attrs[sc.TAGS] = av.tag_list(record.tags, limit)
    if record.metadata:
        attrs.update(av.named(sc.METADATA_PREFIX, record.metadata, limit))
    if record.extras:
        prefix = f"{sc.OWN_PREFIX}{record.framework}." if record.framework else sc.OWN_PREFIX
        attrs.update(av.named(prefix, record.extras, limit, max_keys=len(record.extras)))
    return attrs


# ---- LLM calls -------------------------------------------------------------------------


def llm_span_name(inv: LLMInvocation) -> str:
    if inv.operation == "fetch_response":  # the response id is too many names
        return inv.operation
    return f"{inv.operation} {inv.request_model}" if inv.request_model else inv.operation


def llm_request(inv: LLMInvocation, settings: Any) -> Dict[str, Any]:
    limit = settings.content_max_length
    attrs: Dict[str, Any] = {sc.OPERATION_NAME: inv.operation, sc.PROVIDER_NAME: inv.provider,
                             sc.OPENINFERENCE_SPAN_KIND: sc.openinference_kind(None, inv.operation)}
    attrs.update({key: value for key, value in (
        (sc.REQUEST_MODEL, inv.request_model), (sc.REQUEST_TEMPERATURE, inv.temperature),
        (sc.REQUEST_TOP_P, inv.top_p), (sc.REQUEST_MAX_TOKENS, inv.max_tokens), (sc.REQUEST_SEED, inv.seed),
        (sc.REQUEST_STOP_SEQUENCES, inv.stop_sequences), (sc.REQUEST_FREQUENCY_PENALTY, inv.frequency_penalty),
        (sc.REQUEST_PRESENCE_PENALTY, inv.presence_penalty), (sc.OUTPUT_TYPE, inv.output_type),
        (sc.REQUEST_ENCODING_FORMATS, inv.encoding_formats), (sc.REQUEST_REASONING_LEVEL, inv.reasoning_level),
        (sc.REQUEST_PREVIOUS_RESPONSE_ID, inv.previous_response_id), (sc.SERVER_ADDRESS, inv.server_address),
        (sc.SERVER_PORT, inv.server_port)) if value is not None})
    if inv.top_k is not None:  # a double in v1.41, an int in v0.1.0
        attrs[sc.REQUEST_TOP_K] = int(inv.top_k) if settings.latest_semconv else float(inv.top_k)
    if inv.choice_count is not None and inv.choice_count != 1:
        attrs[sc.REQUEST_CHOICE_COUNT] = inv.choice_count
    if inv.stream:
        attrs[sc.REQUEST_STREAM] = True
    if inv.operation == "fetch_response" and inv.response_id is not None:
        attrs[sc.RESPONSE_ID] = inv.response_id  # what is fetched
    if inv.conversation_id is not None:
        attrs[sc.CONVERSATION_ID] = av.user_value(str(inv.conversation_id), limit)
    if inv.conversation_compacted:
        attrs[sc.CONVERSATION_COMPACTED] = True
    if inv.provider_extras:
        prefix = provider_namespace(inv.provider) + "."
        for key, value in inv.provider_extras.items():
            if not key.startswith("response.") and value is not None:
                attrs[prefix + key] = value
    if inv.tags or inv.metadata or inv.extras:
        attrs.update(user_data(inv, limit))
    return av.exportable(attrs)


def llm_response(inv: LLMInvocation, time_to_first_chunk: Optional[float], settings: Any) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {key: value for key, value in (
        (sc.RESPONSE_ID, inv.response_id), (sc.RESPONSE_MODEL, inv.response_model),
        (sc.RESPONSE_STATUS, inv.response_status), (sc.RESPONSE_TIME_TO_FIRST_CHUNK, time_to_first_chunk),
        (sc.USAGE_INPUT_TOKENS, inv.input_tokens), (sc.USAGE_OUTPUT_TOKENS, inv.output_tokens),
        (sc.USAGE_CACHE_READ_INPUT_TOKENS, inv.cache_read_input_tokens),
        (sc.LATEST_USAGE_CACHE_WRITE_INPUT_TOKENS if settings.latest_semconv
         else sc.USAGE_CACHE_CREATION_INPUT_TOKENS, inv.cache_creation_input_tokens),
        (sc.USAGE_REASONING_OUTPUT_TOKENS, inv.reasoning_output_tokens),
        (sc.USAGE_AUDIO_INPUT_TOKENS, inv.audio_input_tokens), (sc.USAGE_AUDIO_OUTPUT_TOKENS, inv.audio_output_tokens),
        (sc.EMBEDDINGS_DIMENSION_COUNT, inv.embedding_dimensions), (sc.COST_USD, inv.cost_usd),
        # a server address learnt late (from the response)
        (sc.SERVER_ADDRESS, inv.server_address), (sc.SERVER_PORT, inv.server_port),
        (sc.ERROR_TYPE, inv.error_type)) if value is not None}
    if inv.finish_reasons:
        attrs[sc.RESPONSE_FINISH_REASONS] = list(inv.finish_reasons)
    estimated_in, estimated_out = inv.estimated_input_tokens, inv.estimated_output_tokens
    if estimated_in is not None or estimated_out is not None:
        if settings.report_estimates:  # the user opted in: where the conventions allow, marked
            names = (sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS)
            attrs[sc.USAGE_ESTIMATED] = True
        else:
            names = (sc.ESTIMATED_INPUT_TOKENS, sc.ESTIMATED_OUTPUT_TOKENS)
        for name, value in zip(names, (estimated_in, estimated_out)):
            if value is not None:
                attrs[name] = value
    if inv.counted_elsewhere:
        attrs[sc.SHARED_REQUEST] = True
    if inv.provider_extras:
        prefix = provider_namespace(inv.provider) + "."
        for key, value in inv.provider_extras.items():
            if key.startswith("response.") and value is not None:
                attrs[prefix + key] = value
    if inv.tags or inv.metadata or inv.extras:  # may have grown since the start
        attrs.update(user_data(inv, settings.content_max_length))
    return av.exportable(attrs)


def llm_content(inv: LLMInvocation, limit: int, structured: bool) -> Dict[str, Any]:
    """The opt-in content of an LLM call, normalized to the conventions' schemas: JSON text
    for spans, structured (cleaned and cut the same way) for log records."""
    content: Dict[str, Any] = {}
    if inv.operation == "embeddings":
        return content  # embeddings inputs are not chat messages; the conventions record none
    for key, value in ((sc.INPUT_MESSAGES, messages(inv.input_messages, output=False)),
                       (sc.SYSTEM_INSTRUCTIONS, parts(inv.system_instructions)),
                       (sc.TOOL_DEFINITIONS, tool_definitions(inv.tool_definitions)),
                       (sc.OUTPUT_MESSAGES, messages(inv.output_messages, output=True))):
        if value:
            content[key] = cap(value, limit) if structured else to_json(value, limit)
    return content


_METRIC_SCALARS = frozenset((str, bool, int, float))


def llm_metric_attributes(inv: LLMInvocation) -> Dict[str, Any]:
    extras = inv.provider_extras if inv.provider in _OPENAI_PROVIDERS else {}
    attrs: Dict[str, Any] = {key: value for key, value in (
        (sc.OPERATION_NAME, inv.operation), (sc.PROVIDER_NAME, inv.provider), (sc.REQUEST_MODEL, inv.request_model),
        (sc.RESPONSE_MODEL, inv.response_model), (sc.SERVER_ADDRESS, inv.server_address),
        (sc.SERVER_PORT, inv.server_port), (sc.ERROR_TYPE, inv.error_type),
        (sc.OPENAI_RESPONSE_SERVICE_TIER, extras.get("response.service_tier")),
        (sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, extras.get("response.system_fingerprint"))) if value is not None}
    attrs = av.exportable(attrs)
    for value in attrs.values():
        if type(value) not in _METRIC_SCALARS:
            return _hashable(attrs)
    return attrs


def _hashable(attrs: Dict[str, Any]) -> Dict[str, Any]:
    """OTel SDKs before 1.42 hash metric attributes to key a point: an unhashable value (a
    malformed response's model, say) raised there and lost the point. A flat list becomes a
    tuple; a deeper structure is left out."""
    out: Dict[str, Any] = {}
    for key, value in attrs.items():
        if type(value) in _METRIC_SCALARS:
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(type(item) in _METRIC_SCALARS for item in value):
            out[key] = tuple(value)
    return out


# ---- content, normalized to the conventions' schemas -----------------------------------

_PART_TYPES = frozenset(("text", "tool_call", "tool_call_response", "server_tool_call", "server_tool_call_response",
                         "blob", "file", "uri", "reasoning"))
# the part fields each schema requires (a part lacking one is kept as a generic part)
_REQUIRED = {"text": ("content",), "tool_call": ("name",), "tool_call_response": ("response",),
             "server_tool_call": ("name", "server_tool_call"),
             "server_tool_call_response": ("server_tool_call_response",),
             "blob": ("modality", "content"), "file": ("modality", "file_id"), "uri": ("modality", "uri"),
             "reasoning": ("content",)}
# the output message's finish reason in the conventions' words (the response's own list
# keeps the provider's words)
_FINISH_REASONS = {"tool_calls": "tool_call", "function_call": "tool_call", "end_turn": "stop",
                   "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_call"}


def tool_arguments(raw: Any) -> Any:
    """A tool call's arguments as the object their JSON text encodes (the conventions want
    an object); text that does not parse (a stream cut short) stays text."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parts(items: Any) -> Optional[List[Dict[str, Any]]]:
    """Message parts as the schemas want them: a known type with what it requires, else a
    ``generic`` part naming what it was (``generic_type``); None values left out."""
    if not isinstance(items, (list, tuple)):
        return None
    out: List[Dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            out.append({"type": "text", "content": str(item)})
            continue
        part = {k: v for k, v in item.items() if v is not None}
        kind = part.get("type")
        if kind not in _PART_TYPES or any(part.get(f) is None for f in _REQUIRED[kind]):
            part["generic_type"] = str(kind) if kind is not None else "unknown"
            part["type"] = "generic"
        out.append(part)
    return out


def messages(items: Any, output: bool) -> Optional[List[Dict[str, Any]]]:
    """Chat messages in the conventions' shape; an output message always has a finish
    reason (``tool_call`` when it calls tools and none was given, else ``stop``)."""
    if not isinstance(items, (list, tuple)):
        return None
    out: List[Dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        message: Dict[str, Any] = {"role": str(item.get("role") or ("assistant" if output else "user")),
                                   "parts": parts(item.get("parts")) or []}
        if isinstance(item.get("name"), str):
            message["name"] = item["name"]
        if output:
            reason = item.get("finish_reason")
            if not isinstance(reason, str) or not reason:
                calls = any(p.get("type") == "tool_call" for p in message["parts"])
                reason = "tool_call" if calls else "stop"
            message["finish_reason"] = _FINISH_REASONS.get(reason, reason)
        out.append(message)
    return out


def tool_definitions(items: Any) -> Optional[List[Dict[str, Any]]]:
    """Tool definitions with a top-level ``type`` and ``name`` (OpenAI-style
    ``{"type": "function", "function": {...}}`` as LangChain's bind_tools passes them is
    flattened); a definition without a name is left out."""
    if not isinstance(items, (list, tuple)):
        return None
    out: List[Dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        definition = {k: v for k, v in item.items() if v is not None}
        function = definition.pop("function", None)
        if isinstance(function, dict):
            definition = {**{k: v for k, v in function.items() if v is not None}, **definition}
        definition.setdefault("type", "function")
        if isinstance(definition.get("name"), str) and definition["name"]:
            out.append(definition)
    return out


def documents(docs: Any, with_content: bool, complete_only: bool = False) -> List[Dict[str, Any]]:
    """Retrieved documents as the conventions list them: id and score (what is known of
    them), and with content captured the text and metadata too. ``complete_only`` (v1.41,
    whose schema requires both): a document lacking its id or score is left out, as one
    invalid item makes readers that validate (Phoenix) drop the whole list."""
    out: List[Dict[str, Any]] = []
    for doc in docs or ():
        if not isinstance(doc, dict):
            continue
        item: Dict[str, Any] = {}
        if doc.get("id") is not None:
            item["id"] = str(doc["id"])
        score = doc.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            item["score"] = float(score)
        if complete_only and len(item) < 2:
            continue
        if with_content:
            for key in ("content", "metadata"):
                if doc.get(key) is not None:
                    item[key] = doc[key]
        out.append(item)
    return out


# ---- tools and steps -------------------------------------------------------------------


def tool_span_name(tool: ToolInvocation) -> str:
    return f"execute_tool {tool.name}"


def tool_start(tool: ToolInvocation, settings: Any) -> Dict[str, Any]:
    limit = settings.content_max_length
    attrs: Dict[str, Any] = {sc.OPERATION_NAME: "execute_tool", sc.TOOL_NAME: av.user_value(str(tool.name), limit),
                             sc.OPENINFERENCE_SPAN_KIND: "TOOL"}
    _put(attrs, sc.TOOL_CALL_ID, tool.call_id)
    _put(attrs, sc.TOOL_TYPE, tool.tool_type)
    if tool.description is not None:
        attrs[sc.TOOL_DESCRIPTION] = av.user_value(tool.description, limit)
    if tool.agent_name is not None:
        attrs[sc.AGENT_NAME] = av.user_value(str(tool.agent_name), limit)
    if tool.conversation_id is not None:
        attrs[sc.CONVERSATION_ID] = av.user_value(str(tool.conversation_id), limit)
    attrs.update(user_data(tool, limit))
    _put(attrs, sc.ERROR_TYPE, tool.error_type)
    return av.exportable(attrs)


def tool_content(tool: ToolInvocation, limit: int) -> Dict[str, Any]:
    return {key: to_text(value, limit) for key, value in
            ((sc.TOOL_CALL_ARGUMENTS, tool.arguments), (sc.TOOL_CALL_RESULT, tool.result)) if value is not None}


def step_span_name(step: StepInvocation) -> str:
    """A GenAI operation's span is named the way the conventions say; any other step by its name."""
    operation = step.operation
    if operation in _AGENTS or operation == "invoke_workflow":
        return f"{operation} {step.agent_name}" if step.agent_name else operation
    if operation == "retrieval":
        return f"retrieval {step.data_source_id}" if step.data_source_id else "retrieval"
    return str(step.name)


def step_start(step: StepInvocation, settings: Any) -> Dict[str, Any]:
    limit = settings.content_max_length
    attrs: Dict[str, Any] = {sc.SPAN_KIND: step.kind,
                             sc.OPENINFERENCE_SPAN_KIND: sc.openinference_kind(step.kind, step.operation)}
    operation = step.operation
    _put(attrs, sc.OPERATION_NAME, operation)
    if operation in _AGENTS:
        _agent(attrs, step, settings)
    elif operation == "invoke_workflow" and step.agent_name is not None:
        name = av.user_value(str(step.agent_name), limit)
        attrs[sc.AGENT_NAME if settings.latest_semconv else sc.WORKFLOW_NAME] = name
    elif operation == "retrieval":
        _put(attrs, sc.DATA_SOURCE_ID, step.data_source_id)
        _put(attrs, sc.PROVIDER_NAME, step.provider)
        _put(attrs, sc.REQUEST_MODEL, step.request_model)
        if step.top_k is not None:
            if settings.latest_semconv:
                attrs[sc.LATEST_RETRIEVAL_TOP_K] = int(step.top_k)
            else:
                attrs[sc.REQUEST_TOP_K] = float(step.top_k)
    if step.conversation_id is not None:
        attrs[sc.CONVERSATION_ID] = av.user_value(str(step.conversation_id), limit)
    attrs.update(step_end(step, settings))
    return attrs


def _agent(attrs: Dict[str, Any], step: StepInvocation, settings: Any) -> None:
    limit = settings.content_max_length
    if step.agent_name is not None:
        attrs[sc.AGENT_NAME] = av.user_value(str(step.agent_name), limit)
    _put(attrs, sc.AGENT_ID, step.agent_id)
    if step.agent_description is not None:
        attrs[sc.AGENT_DESCRIPTION] = av.user_value(str(step.agent_description), limit)


def step_end(step: StepInvocation, settings: Any) -> Dict[str, Any]:
    """What a step may gain while it runs: user data, trace-level data, the agent's model
    and usage, the error type."""
    limit = settings.content_max_length
    attrs = user_data(step, limit)
    if step.operation in _AGENTS or step.operation == "invoke_workflow":
        # v1.41 requires the provider on agent spans; v0.1.0 drops it from in-process ones
        # (invoke_agent, invoke_workflow), not from create_agent, a call to the provider
        if not settings.latest_semconv or step.operation == "create_agent":
            _put(attrs, sc.PROVIDER_NAME, step.provider)
        _put(attrs, sc.REQUEST_MODEL, step.request_model)
        _put(attrs, sc.USAGE_INPUT_TOKENS, step.input_tokens)
        _put(attrs, sc.USAGE_OUTPUT_TOKENS, step.output_tokens)
    if step.session_id is not None:
        attrs[sc.SESSION_ID] = av.user_value(str(step.session_id), limit)
    if step.user_id is not None:
        attrs[sc.USER_ID] = av.user_value(str(step.user_id), limit)
    if step.scores:
        attrs.update(feedback(step.scores, limit))
    _put(attrs, sc.ERROR_TYPE, step.error_type)
    return av.exportable(attrs)


def step_content(step: StepInvocation, limit: int, latest_semconv: bool = True) -> Dict[str, Any]:
    """Content of a step: an agent's or workflow's as conversation messages, a retrieval's
    query and documents (v1.41: only those with an id and a score), any other step's
    inputs and outputs as text."""
    operation = step.operation
    if operation in _AGENTS or operation == "invoke_workflow":
        content: Dict[str, Any] = {}
        for key, value, raw, output in ((sc.INPUT_MESSAGES, step.input_messages, step.inputs, False),
                                        (sc.OUTPUT_MESSAGES, step.output_messages, step.outputs, True)):
            if value is None and raw is not None:  # what the framework gave: one message of it
                value = [{"role": "assistant" if output else "user", "parts": [
                    {"type": "text", "content": raw if isinstance(raw, str) else to_json(raw, limit)}]}]
            normalized = messages(value, output)
            if normalized:
                content[key] = to_json(normalized, limit)
        return content
    if operation == "retrieval":
        content = {}
        if step.query is not None:
            content[sc.RETRIEVAL_QUERY_TEXT] = to_text(step.query, limit)
        if step.documents:
            listed = documents(step.documents, with_content=True, complete_only=not latest_semconv)
            if listed:
                content[sc.RETRIEVAL_DOCUMENTS] = to_json(listed, limit)
        return content
    return {key: to_text(value, limit) for key, value in ((sc.INPUT, step.inputs), (sc.OUTPUT, step.outputs))
            if value is not None}


def feedback(scores: Dict[str, Any], limit: int) -> Dict[str, Any]:
    """``llm_otel.feedback.<name>.value`` / ``.reason`` per score."""
    attrs: Dict[str, Any] = {}
    for name, (value, reason) in scores.items():
        key = sc.FEEDBACK_PREFIX + av.user_value(str(name), limit)
        attrs[key + ".value"] = av.user_value(value, limit)
        if reason is not None:
            attrs[key + ".reason"] = av.user_value(str(reason), limit)
    return attrs


def evaluation(name: str, value: Any, reason: Optional[str], limit: int) -> Dict[str, Any]:
    """A feedback score as the conventions' evaluation result: a number is the score's
    value, a bool or string its label."""
    attrs: Dict[str, Any] = {sc.EVALUATION_NAME: av.user_value(str(name), limit)}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        attrs[sc.EVALUATION_SCORE_VALUE] = float(value)
    else:
        attrs[sc.EVALUATION_SCORE_LABEL] = av.user_value(str(value).lower() if isinstance(value, bool)
                                                         else str(value), limit)
    if reason is not None:
        attrs[sc.EVALUATION_EXPLANATION] = av.user_value(str(reason), limit)
    return av.exportable(attrs)


def agent_event(tool_name: Optional[str], arguments: Any, output: Any, capture: bool, limit: int) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {}
    if tool_name is not None:
        attrs[sc.TOOL_NAME] = av.user_value(str(tool_name), limit)
    if capture:
        if arguments is not None:
            attrs[sc.TOOL_CALL_ARGUMENTS] = to_text(arguments, limit)
        if output is not None:
            attrs[sc.OUTPUT] = to_text(output, limit)
    return av.exportable(attrs)
