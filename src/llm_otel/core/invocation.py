"""The invocation records instrumentors fill in and the core records.

Plain data, no OpenTelemetry names: an instrumentor says *what happened* (model,
parameters, messages, usage, timings, error); :mod:`llm_otel.core.recorder` decides
how that becomes spans, attributes and metrics.

Messages use the shape of the GenAI conventions, as plain dicts::

    {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f",
                                     "arguments": {...}}], "finish_reason": "tool_calls"}
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "..."}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass(eq=False)
class LLMInvocation:
    """One call to a model: chat, text completion or embeddings."""

    operation: str = "chat"  # chat | text_completion | embeddings | generate_content
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
    conversation_id: Optional[str] = None

    # content (semconv message shape); recorded only when capture is on, also used
    # for local token counting when the response carries no usage
    input_messages: Optional[List[Dict[str, Any]]] = None
    system_instructions: Optional[List[Dict[str, Any]]] = None
    tool_definitions: Optional[List[Dict[str, Any]]] = None
    output_messages: Optional[List[Dict[str, Any]]] = None
    input_texts: Optional[List[str]] = None  # embeddings / completion prompts

    # response
    response_id: Optional[str] = None
    response_model: Optional[str] = None
    finish_reasons: Optional[List[str]] = None
    embedding_dimensions: Optional[int] = None

    # usage as the API reported it
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cache_read_input_tokens: Optional[int] = None
    cache_creation_input_tokens: Optional[int] = None
    reasoning_output_tokens: Optional[int] = None
    usage_estimated: bool = False  # set by the core when it counted tokens itself
    # True when another record carries this call's request: one request answered several
    # framework runs (a completion LLM's batch). The core then keeps the span but neither
    # estimates its tokens nor records its metrics nor runs the end hooks (cost, usage()).
    counted_elsewhere: bool = False

    server_address: Optional[str] = None
    server_port: Optional[int] = None

    # provider-specific extras, keys without the provider prefix
    # ("request.service_tier" -> "openai.request.service_tier")
    extra: Dict[str, Any] = field(default_factory=dict)
    # free-form attributes a framework adds as-is (tags, metadata, run ids)
    attributes: Dict[str, Any] = field(default_factory=dict)

    error_type: Optional[str] = None
    cost_usd: Optional[float] = None

    # bookkeeping owned by the recorder
    span: Any = None
    start_perf: float = 0.0
    first_chunk_perf: Optional[float] = None
    chunk_perfs: Optional[List[float]] = None
    parent: Optional["LLMInvocation"] = None  # set when a framework already records this call
    ended: bool = False

    @property
    def total_tokens(self) -> Optional[int]:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(eq=False)
class ToolInvocation:
    """One execution of a tool the model asked for (``execute_tool``)."""

    name: str
    call_id: Optional[str] = None
    description: Optional[str] = None
    tool_type: Optional[str] = None  # function | extension | datastore
    arguments: Any = None
    result: Any = None
    attributes: Dict[str, Any] = field(default_factory=dict)
    error_type: Optional[str] = None
    span: Any = None
    ended: bool = False


@dataclass(eq=False)
class StepInvocation:
    """Any other unit of work worth a span: a chain, retriever, agent, query, parse.

    ``operation`` is a GenAI operation name when one fits (``invoke_agent``,
    ``create_agent``); otherwise leave it None and give ``kind`` (chain, retriever,
    query, synthesize, chunking, ...), which lands in ``llm_otel.span.kind``.
    """

    name: str
    kind: str = "chain"
    operation: Optional[str] = None
    agent_name: Optional[str] = None
    inputs: Any = None  # recorded only when content capture is on
    outputs: Any = None
    attributes: Dict[str, Any] = field(default_factory=dict)  # recorded always
    # None: inputs/outputs follow the global content setting; True: the user asked for
    # them (``@track`` on their own function) and they are recorded even when it is off
    capture_content: Optional[bool] = None
    error_type: Optional[str] = None
    span: Any = None
    ended: bool = False
