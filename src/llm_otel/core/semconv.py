"""OpenTelemetry GenAI semantic-convention names, in one place.

Only the core imports this: instrumentors hand over plain data and never name an
attribute, so a change in the conventions is a change here.
"""

# span / metric attributes
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_TOP_K = "gen_ai.request.top_k"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
OUTPUT_TYPE = "gen_ai.output.type"
CONVERSATION_ID = "gen_ai.conversation.id"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# opt-in content
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
CONTENT_EVENT = "gen_ai.client.inference.operation.details"

# tools and agents
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
DATA_SOURCE_ID = "gen_ai.data_source.id"

# the project's own few attributes
OWN_PREFIX = "llm_otel."  # + framework + "." + a library's extra (``llm_otel.llamaindex.nodes``)
SPAN_KIND = "llm_otel.span.kind"  # what a step is when no GenAI operation fits
# tokens counted locally with tiktoken: never usage. By default under their own names;
# with LLM_OTEL_ESTIMATED_USAGE=report in gen_ai.usage.*, marked USAGE_ESTIMATED
ESTIMATED_INPUT_TOKENS = "llm_otel.usage.estimated_input_tokens"
ESTIMATED_OUTPUT_TOKENS = "llm_otel.usage.estimated_output_tokens"
USAGE_ESTIMATED = "llm_otel.usage.estimated"
COST_USD = "llm_otel.cost.usd"
STREAMING = "llm_otel.request.stream"
SHARED_REQUEST = "llm_otel.request.shared"  # a batch's runs answered by one request counted elsewhere
RUN_ABANDONED = "llm_otel.run.abandoned"  # ended by us: its end never came
STREAM_CLOSED_EARLY = "llm_otel.stream.closed_early"
RETRIEVER_DOCUMENT_COUNT = "llm_otel.retriever.document_count"
RETRIEVER_DOCUMENT_IDS = "llm_otel.retriever.document_ids"
AGENT_ACTION_EVENT = "llm_otel.agent.action"  # span events on an agent run (LangChain)
AGENT_FINISH_EVENT = "llm_otel.agent.finish"

# trace enrichment: @track, update_current_span/trace, record_feedback (llm_otel.tracking)
SESSION_ID = "session.id"  # OTel registry and OpenInference (Phoenix sessions) alike
USER_ID = "user.id"
INPUT = "llm_otel.input"
OUTPUT = "llm_otel.output"
TAGS = "llm_otel.tags"
METADATA_PREFIX = "llm_otel.metadata."  # + key
FEEDBACK_PREFIX = "llm_otel.feedback."  # + name + ".value" / ".reason"
TRACE_UPDATE_EVENT = "llm_otel.trace.update"  # trace data when the trace's root has ended

# metrics, with the conventions' bucket advice
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"

TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
FIRST_CHUNK_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
PER_CHUNK_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]

# Arize Phoenix groups and renders spans by OpenInference's span kind; one attribute per
# span makes our chains, tools and retrievers show as such there (it ignores the rest).
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
_OPENINFERENCE_KINDS = {
    "retriever": "RETRIEVER", "retrieve": "RETRIEVER", "reranking": "RERANKER", "postprocess": "RERANKER",
    "agent": "AGENT", "agent_step": "AGENT", "tool": "TOOL", "embeddings": "EMBEDDING",
    "chat": "LLM", "text_completion": "LLM", "generate_content": "LLM",
}


def openinference_kind(kind: str, operation: "str | None" = None) -> str:
    """OpenInference's span kind for a step (``kind``) or GenAI operation."""
    if operation == "invoke_agent":
        return "AGENT"
    return _OPENINFERENCE_KINDS.get(kind, "CHAIN")
