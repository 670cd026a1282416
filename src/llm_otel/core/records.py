"""The records instrumentors fill in: plain data, no OpenTelemetry names.

An instrumentor says *what happened* (model, parameters, messages, usage, error); the core
turns a record into an :class:`~llm_otel.core.operation.Operation` and decides how it
becomes spans, attributes and metrics. Records hold no span, timing or lifecycle state.

Content is handed over raw: ``set_input(source, convert)`` / ``set_output(source, convert)``
store a source and a converter that the core calls only when content is captured or a
local token count is wanted, so a call with capture off pays for no conversion.

Messages use the shape of the GenAI conventions, as plain dicts::

    {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f",
                                     "arguments": {...}}], "finish_reason": "tool_calls"}
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "..."}]}

Library facts without a convention travel as ``extras`` (keys relative to the library:
``{"nodes": 3}``); the core names them under the record's ``framework`` (LLM records:
``provider_extras`` under the provider's namespace, ``{"request.service_tier": ...}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

#: ``convert(source, record)`` fills the record's content fields from a raw source
Converter = Callable[[Any, Any], None]


@dataclass(eq=False)
class LLMInvocation:
    """One call to a model: chat, text completion or embeddings."""

    operation: str = "chat"  # chat | text_completion | embeddings | generate_content | fetch_response
    provider: str = "openai"
    request_model: Optional[str] = None

    # request parameters (None = not sent)
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[float] = None
    max_tokens: Optional[int] = None
    seed: Optional[int] = None
    stop_sequences: Optional[List[str]] = None
    frequency_penalty: Optional[float] = None
    presence_penalty: Optional[float] = None
    choice_count: Optional[int] = None
    output_type: Optional[str] = None  # text | json | image | speech
    encoding_formats: Optional[List[str]] = None
    stream: bool = False
    #: the response will carry the API's usage (a stream asked for its usage chunk)
    usage_expected: bool = False
    #: the provider's reasoning effort setting, as sent (OpenAI ``reasoning_effort``)
    reasoning_level: Optional[str] = None
    previous_response_id: Optional[str] = None
    #: None: inherited from the operation this one runs under (a framework's conversation)
    conversation_id: Optional[str] = None
    #: the context was compacted for this call (True only when known; never False)
    conversation_compacted: bool = False

    # content (semconv message shape), or a source and converter (see set_input)
    input_messages: Optional[List[Dict[str, Any]]] = None
    system_instructions: Optional[List[Dict[str, Any]]] = None
    tool_definitions: Optional[List[Dict[str, Any]]] = None
    output_messages: Optional[List[Dict[str, Any]]] = None
    input_texts: Optional[List[str]] = None  # embeddings / completion prompts
    input_source: Any = None
    input_converter: Optional[Converter] = None
    output_source: Any = None
    output_converter: Optional[Converter] = None

    # response
    response_id: Optional[str] = None
    response_model: Optional[str] = None
    #: a fetched response's status (``fetch_response``: queued, completed, failed, ...)
    response_status: Optional[str] = None
    finish_reasons: Optional[List[str]] = None
    embedding_dimensions: Optional[int] = None

    # usage as the API reported it; the details are parts of input_tokens / output_tokens
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cache_read_input_tokens: Optional[int] = None
    cache_creation_input_tokens: Optional[int] = None  # written to the provider's cache
    reasoning_output_tokens: Optional[int] = None
    audio_input_tokens: Optional[int] = None
    audio_output_tokens: Optional[int] = None
    #: True when another record carries this call's request: one request answered several
    #: framework runs (a completion LLM's batch). The span stays; tokens, metrics and the
    #: end hooks (cost, usage()) are counted on the other record.
    counted_elsewhere: bool = False

    server_address: Optional[str] = None
    server_port: Optional[int] = None

    provider_extras: Dict[str, Any] = field(default_factory=dict)
    framework: Optional[str] = None
    extras: Dict[str, Any] = field(default_factory=dict)
    tags: Optional[List[str]] = None
    metadata: Optional[Dict[str, Any]] = None
    error_type: Optional[str] = None

    # set by the core when the call ends, read by end hooks (cost, usage())
    #: tokens counted locally (tiktoken) because the API reported none: never usage
    estimated_input_tokens: Optional[int] = None
    estimated_output_tokens: Optional[int] = None
    #: API requests this record stands for (a framework call that made several SDK calls)
    requests: int = 1
    cost_usd: Optional[float] = None

    def set_input(self, source: Any, convert: Converter) -> None:
        """Raw request content and ``convert(source, record)``, run only when needed."""
        self.input_source, self.input_converter = source, convert

    def set_output(self, source: Any, convert: Converter) -> None:
        """Raw response content and ``convert(source, record)``, run only when needed."""
        self.output_source, self.output_converter = source, convert

    @property
    def total_tokens(self) -> Optional[int]:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(eq=False)
class ToolInvocation:
    """One execution of a tool the model asked for (``execute_tool``)."""

    name: str = "tool"
    call_id: Optional[str] = None
    description: Optional[str] = None
    tool_type: Optional[str] = None  # function | extension | datastore
    arguments: Any = None  # content: recorded only when capture is on
    result: Any = None
    #: None: the agent (and conversation) it runs under, found by the core
    agent_name: Optional[str] = None
    conversation_id: Optional[str] = None
    framework: Optional[str] = None
    extras: Dict[str, Any] = field(default_factory=dict)
    tags: Optional[List[str]] = None
    metadata: Optional[Dict[str, Any]] = None
    error_type: Optional[str] = None


@dataclass(eq=False)
class StepInvocation:
    """Any other unit of work worth a span: a chain, retriever, agent, workflow, query, parse.

    ``operation`` is a GenAI operation name when one fits (``invoke_agent``,
    ``invoke_workflow``, ``create_agent``, ``retrieval``); otherwise leave it None and give
    ``kind`` (chain, query, synthesize, chunking, ...), which lands in ``llm_otel.span.kind``.
    The core names the span after the operation (``invoke_agent {agent_name}``,
    ``retrieval {data_source_id}``); ``name`` names any other step.
    """

    name: str = "step"
    kind: str = "chain"
    operation: Optional[str] = None
    inputs: Any = None  # recorded only when content capture is on
    outputs: Any = None
    # agents and workflows (operation invoke_agent / create_agent / invoke_workflow)
    agent_name: Optional[str] = None  # the workflow's name for invoke_workflow
    agent_id: Optional[str] = None
    agent_description: Optional[str] = None
    provider: Optional[str] = None  # None: the provider of the first model called inside
    request_model: Optional[str] = None  # None: the model called inside, if one
    #: None: the API usage of the model calls made inside, added up by the core
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    #: content as conversation messages (semconv shape) rather than raw inputs/outputs
    input_messages: Optional[List[Dict[str, Any]]] = None
    output_messages: Optional[List[Dict[str, Any]]] = None
    #: ``convert(record)`` fills input_messages / output_messages from inputs / outputs;
    #: the core runs it when the step ends, only if its content is recorded
    messages_converter: Optional[Callable[[Any], None]] = None
    #: None: inherited from the operation this one runs under
    conversation_id: Optional[str] = None
    # retrieval (operation retrieval)
    query: Optional[str] = None  # content
    top_k: Optional[int] = None
    data_source_id: Optional[str] = None
    #: what a retrieval returned: ``{"id": ..., "score": ..., "content": ..., "metadata": ...}``
    #: per document (content only when content is captured)
    documents: Optional[List[Dict[str, Any]]] = None
    #: None: inputs/outputs follow the global content setting; True: the user asked for
    #: them (``@track`` on their own function) and they are recorded even when it is off
    capture_content: Optional[bool] = None
    framework: Optional[str] = None
    extras: Dict[str, Any] = field(default_factory=dict)
    tags: Optional[List[str]] = None
    metadata: Optional[Dict[str, Any]] = None
    error_type: Optional[str] = None
    # trace-level data (``update_current_trace``, ``record_feedback``)
    session_id: Optional[str] = None
    user_id: Optional[str] = None
    #: feedback scores: name -> (value, reason or None)
    scores: Optional[Dict[str, Tuple[Any, Optional[str]]]] = None


Record = Any  # LLMInvocation | ToolInvocation | StepInvocation
