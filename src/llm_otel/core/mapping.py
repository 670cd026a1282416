"""Records to attributes: where the GenAI conventions meet the records, in one place.

Every function returns a dict ready for the SDK: values pass through
:mod:`llm_otel.core.attributes` (typed fields made exportable, user data cleaned and cut
once). The recorder decides *when* each set is written; this module decides *what*.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from llm_otel.core import attributes as av
from llm_otel.core import semconv as sc
from llm_otel.core.content import to_json, to_text
from llm_otel.core.records import LLMInvocation, StepInvocation, ToolInvocation

MAX_DOCUMENT_IDS = 100

# end reasons an operation can be given, as the flags backends filter on
END_REASONS = {"abandoned": sc.RUN_ABANDONED, "closed_early": sc.STREAM_CLOSED_EARLY}


def _put(attrs: Dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attrs[key] = value


def provider_namespace(provider: str) -> str:
    """The attribute namespace of a provider's own extras: Azure OpenAI is OpenAI's API."""
    return "openai" if provider in ("openai", "azure.ai.openai") else provider


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


def span_name(text: str, limit: int) -> str:
    """A span name from user or library data: cleaned, and short (backends list by it)."""
    return av.user_value(text, min(limit, 256))


# ---- LLM calls -------------------------------------------------------------------------


def llm_span_name(inv: LLMInvocation) -> str:
    return f"{inv.operation} {inv.request_model}" if inv.request_model else inv.operation


def llm_request(inv: LLMInvocation, limit: int) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {sc.OPERATION_NAME: inv.operation, sc.PROVIDER_NAME: inv.provider,
                             sc.OPENINFERENCE_SPAN_KIND: sc.openinference_kind(inv.operation)}
    _put(attrs, sc.REQUEST_MODEL, inv.request_model)
    _put(attrs, sc.REQUEST_TEMPERATURE, inv.temperature)
    _put(attrs, sc.REQUEST_TOP_P, inv.top_p)
    _put(attrs, sc.REQUEST_TOP_K, inv.top_k)
    _put(attrs, sc.REQUEST_MAX_TOKENS, inv.max_tokens)
    _put(attrs, sc.REQUEST_SEED, inv.seed)
    _put(attrs, sc.REQUEST_STOP_SEQUENCES, inv.stop_sequences)
    _put(attrs, sc.REQUEST_FREQUENCY_PENALTY, inv.frequency_penalty)
    _put(attrs, sc.REQUEST_PRESENCE_PENALTY, inv.presence_penalty)
    if inv.choice_count is not None and inv.choice_count != 1:
        attrs[sc.REQUEST_CHOICE_COUNT] = inv.choice_count
    _put(attrs, sc.OUTPUT_TYPE, inv.output_type)
    _put(attrs, sc.REQUEST_ENCODING_FORMATS, inv.encoding_formats)
    _put(attrs, sc.SERVER_ADDRESS, inv.server_address)
    _put(attrs, sc.SERVER_PORT, inv.server_port)
    if inv.stream:
        attrs[sc.STREAMING] = True
    if inv.conversation_id is not None:
        attrs[sc.CONVERSATION_ID] = av.user_value(inv.conversation_id, limit)
    if inv.provider_extras:
        prefix = provider_namespace(inv.provider) + "."
        for key, value in inv.provider_extras.items():
            if key.startswith("request.") and value is not None:
                attrs[prefix + key] = value
    if inv.tags or inv.metadata or inv.extras:
        attrs.update(user_data(inv, limit))
    return av.exportable(attrs)


def llm_response(inv: LLMInvocation, report_estimates: bool, limit: int) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {}
    _put(attrs, sc.RESPONSE_ID, inv.response_id)
    _put(attrs, sc.RESPONSE_MODEL, inv.response_model)
    if inv.finish_reasons:
        attrs[sc.RESPONSE_FINISH_REASONS] = list(inv.finish_reasons)
    _put(attrs, sc.USAGE_INPUT_TOKENS, inv.input_tokens)
    _put(attrs, sc.USAGE_OUTPUT_TOKENS, inv.output_tokens)
    _put(attrs, sc.USAGE_CACHE_READ_INPUT_TOKENS, inv.cache_read_input_tokens)
    _put(attrs, sc.USAGE_CACHE_CREATION_INPUT_TOKENS, inv.cache_creation_input_tokens)
    _put(attrs, sc.USAGE_REASONING_OUTPUT_TOKENS, inv.reasoning_output_tokens)
    estimated_in, estimated_out = inv.estimated_input_tokens, inv.estimated_output_tokens
    if estimated_in is not None or estimated_out is not None:
        if report_estimates:  # the user opted in: where the conventions allow, marked
            _put(attrs, sc.USAGE_INPUT_TOKENS, estimated_in)
            _put(attrs, sc.USAGE_OUTPUT_TOKENS, estimated_out)
            attrs[sc.USAGE_ESTIMATED] = True
        else:
            _put(attrs, sc.ESTIMATED_INPUT_TOKENS, estimated_in)
            _put(attrs, sc.ESTIMATED_OUTPUT_TOKENS, estimated_out)
    _put(attrs, sc.EMBEDDINGS_DIMENSION_COUNT, inv.embedding_dimensions)
    _put(attrs, sc.COST_USD, inv.cost_usd)
    # a server address learnt late (from the response)
    _put(attrs, sc.SERVER_ADDRESS, inv.server_address)
    _put(attrs, sc.SERVER_PORT, inv.server_port)
    _put(attrs, sc.ERROR_TYPE, inv.error_type)
    if inv.counted_elsewhere:
        attrs[sc.SHARED_REQUEST] = True
    if inv.provider_extras:
        prefix = provider_namespace(inv.provider) + "."
        for key, value in inv.provider_extras.items():
            if key.startswith("response.") and value is not None:
                attrs[prefix + key] = value
    if inv.tags or inv.metadata or inv.extras:  # may have grown since the start
        attrs.update(user_data(inv, limit))
    return av.exportable(attrs)


def llm_content(inv: LLMInvocation, limit: int) -> Dict[str, Any]:
    content: Dict[str, Any] = {}
    for key, value in ((sc.INPUT_MESSAGES, inv.input_messages),
                       (sc.SYSTEM_INSTRUCTIONS, inv.system_instructions),
                       (sc.TOOL_DEFINITIONS, inv.tool_definitions),
                       (sc.OUTPUT_MESSAGES, inv.output_messages)):
        if value:
            content[key] = to_json(value, limit)
    return content


def llm_metric_attributes(inv: LLMInvocation) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {sc.OPERATION_NAME: inv.operation, sc.PROVIDER_NAME: inv.provider}
    _put(attrs, sc.REQUEST_MODEL, inv.request_model)
    _put(attrs, sc.RESPONSE_MODEL, inv.response_model)
    _put(attrs, sc.SERVER_ADDRESS, inv.server_address)
    _put(attrs, sc.SERVER_PORT, inv.server_port)
    _put(attrs, sc.ERROR_TYPE, inv.error_type)
    return av.exportable(attrs)


# ---- tools and steps -------------------------------------------------------------------


def tool_span_name(tool: ToolInvocation) -> str:
    return f"execute_tool {tool.name}"


def tool_start(tool: ToolInvocation, limit: int) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {sc.OPERATION_NAME: "execute_tool", sc.TOOL_NAME: av.user_value(str(tool.name), limit),
                             sc.OPENINFERENCE_SPAN_KIND: "TOOL"}
    _put(attrs, sc.TOOL_CALL_ID, tool.call_id)
    _put(attrs, sc.TOOL_TYPE, tool.tool_type)
    if tool.description is not None:
        attrs[sc.TOOL_DESCRIPTION] = av.user_value(tool.description, limit)
    attrs.update(user_data(tool, limit))
    _put(attrs, sc.ERROR_TYPE, tool.error_type)
    return av.exportable(attrs)


def tool_content(tool: ToolInvocation, limit: int) -> Dict[str, Any]:
    return {key: to_text(value, limit) for key, value in ((sc.TOOL_CALL_ARGUMENTS, tool.arguments), (sc.TOOL_CALL_RESULT, tool.result))
            if value is not None}


def step_start(step: StepInvocation, limit: int) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {sc.SPAN_KIND: step.kind,
                             sc.OPENINFERENCE_SPAN_KIND: sc.openinference_kind(step.kind, step.operation)}
    _put(attrs, sc.OPERATION_NAME, step.operation)
    if step.agent_name is not None:
        attrs[sc.AGENT_NAME] = av.user_value(str(step.agent_name), limit)
    attrs.update(step_end(step, limit))
    return attrs


def step_end(step: StepInvocation, limit: int) -> Dict[str, Any]:
    """What a step may gain while it runs: user data, trace-level data, error type."""
    attrs = user_data(step, limit)
    if step.session_id is not None:
        attrs[sc.SESSION_ID] = av.user_value(str(step.session_id), limit)
    if step.user_id is not None:
        attrs[sc.USER_ID] = av.user_value(str(step.user_id), limit)
    if step.scores:
        attrs.update(feedback(step.scores, limit))
    if step.documents is not None:
        attrs.update(documents(step.documents, limit))
    _put(attrs, sc.ERROR_TYPE, step.error_type)
    return av.exportable(attrs)


def documents(docs: Any, limit: int) -> Dict[str, Any]:
    """How many documents a retrieval returned and their ids (never their content)."""
    ids = [av.user_value(str(d["id"]), limit) for d in docs if isinstance(d, dict) and d.get("id") is not None]
    attrs: Dict[str, Any] = {sc.RETRIEVER_DOCUMENT_COUNT: len(docs)}
    if ids:
        attrs[sc.RETRIEVER_DOCUMENT_IDS] = ids[:MAX_DOCUMENT_IDS]
    return attrs


def step_content(step: StepInvocation, limit: int) -> Dict[str, Any]:
    return {key: to_text(value, limit) for key, value in ((sc.INPUT, step.inputs), (sc.OUTPUT, step.outputs)) if value is not None}


def feedback(scores: Dict[str, Any], limit: int) -> Dict[str, Any]:
    """``llm_otel.feedback.<name>.value`` / ``.reason`` per score."""
    attrs: Dict[str, Any] = {}
    for name, (value, reason) in scores.items():
        key = sc.FEEDBACK_PREFIX + av.user_value(str(name), limit)
        attrs[key + ".value"] = av.user_value(value, limit)
        if reason is not None:
            attrs[key + ".reason"] = av.user_value(str(reason), limit)
    return attrs


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
