"""OpenTelemetry GenAI semantic-convention names, in one place.

Only the core imports this: instrumentors hand over plain data and never name an
attribute, so a change in the conventions is a change here.

Two profiles: by default the names of semantic conventions v1.41 (the last core release
with GenAI, what backends parse today); with ``OTEL_SEMCONV_STABILITY_OPT_IN`` containing
``gen_ai_latest_experimental`` those of semantic-conventions-genai v0.1.0 where they differ
(the ``LATEST_*`` names). Names new in v0.1.0 without a v1.41 counterpart are emitted in both.
"""

SCOPE = "llm_otel"  # the instrumentation scope of every span, metric and event llm-otel records

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
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_REASONING_LEVEL = "gen_ai.request.reasoning.level"
REQUEST_PREVIOUS_RESPONSE_ID = "gen_ai.request.previous_response.id"
OUTPUT_TYPE = "gen_ai.output.type"
CONVERSATION_ID = "gen_ai.conversation.id"
CONVERSATION_COMPACTED = "gen_ai.conversation.compacted"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_STATUS = "gen_ai.response.status"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
LATEST_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
USAGE_AUDIO_INPUT_TOKENS = "gen_ai.usage.audio.input_tokens"
USAGE_AUDIO_OUTPUT_TOKENS = "gen_ai.usage.audio.output_tokens"
EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
TOKEN_TYPE = "gen_ai.token.type"
LATEST_TOKEN_MODALITY = "gen_ai.token.modality"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# opt-in content
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
CONTENT_EVENT = "gen_ai.client.inference.operation.details"  # a log record, inference only

# tools and agents
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
AGENT_DESCRIPTION = "gen_ai.agent.description"
WORKFLOW_NAME = "gen_ai.workflow.name"  # v1.41; v0.1.0 names a workflow in gen_ai.agent.name
DATA_SOURCE_ID = "gen_ai.data_source.id"

# retrieval
RETRIEVAL_QUERY_TEXT = "gen_ai.retrieval.query.text"  # content
RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"  # content: [{"id", "score"}]
LATEST_RETRIEVAL_TOP_K = "gen_ai.retrieval.top_k"  # v1.41: gen_ai.request.top_k (a double)

# evaluation results (feedback), a log record
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"

# OpenAI (also for Azure OpenAI): provider extras land under this namespace
OPENAI_NAMESPACE = "openai"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"  # also on the metrics
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"  # also on the metrics

# the project's own few attributes
OWN_PREFIX = "llm_otel."  # + framework + "." + a library's extra (``llm_otel.llamaindex.nodes``)
SPAN_KIND = "llm_otel.span.kind"  # what a step is when no GenAI operation fits
# tokens counted locally with tiktoken: never usage. By default under their own names;
# with LLM_OTEL_ESTIMATED_USAGE=report in gen_ai.usage.*, marked USAGE_ESTIMATED
ESTIMATED_INPUT_TOKENS = "llm_otel.usage.estimated_input_tokens"
ESTIMATED_OUTPUT_TOKENS = "llm_otel.usage.estimated_output_tokens"
USAGE_ESTIMATED = "llm_otel.usage.estimated"
COST_USD = "llm_otel.cost.usd"
SHARED_REQUEST = "llm_otel.request.shared"  # a batch's runs answered by one request counted elsewhere
RUN_ABANDONED = "llm_otel.run.abandoned"  # ended by us: its end never came
STREAM_CLOSED_EARLY = "llm_otel.stream.closed_early"
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

# metrics, with the conventions' bucket advice (the client's, for chunk timings too)
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"
METRIC_INVOKE_AGENT_DURATION = "gen_ai.invoke_agent.duration"  # v0.1.0 (workflows too)
METRIC_EXECUTE_TOOL_DURATION = "gen_ai.execute_tool.duration"  # v0.1.0
# v0.1.0 in place of the four above for inference and embeddings
LATEST_METRIC_INFERENCE_DURATION = "gen_ai.client.inference.duration"
LATEST_METRIC_INFERENCE_FIRST_CHUNK = "gen_ai.client.inference.time_to_first_chunk"
LATEST_METRIC_INFERENCE_PER_CHUNK = "gen_ai.client.inference.time_per_output_chunk"
LATEST_METRIC_INFERENCE_INPUT_TOKENS = "gen_ai.client.inference.operation.input_tokens"
LATEST_METRIC_INFERENCE_OUTPUT_TOKENS = "gen_ai.client.inference.operation.output_tokens"
LATEST_METRIC_USAGE_PREFIX = "gen_ai.client.inference.usage."  # + input_tokens, cache_read.input_tokens, ...
LATEST_METRIC_EMBEDDINGS_DURATION = "gen_ai.client.embeddings.duration"
LATEST_METRIC_EMBEDDINGS_INPUT_TOKENS = "gen_ai.client.embeddings.operation.input_tokens"

TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
FIRST_CHUNK_BUCKETS = PER_CHUNK_BUCKETS = DURATION_BUCKETS  # the client advice: a slow stream is not +Inf
AGENT_DURATION_BUCKETS = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6]

INFERENCE_OPERATIONS = frozenset(("chat", "text_completion", "generate_content"))

# Arize Phoenix groups and renders spans by OpenInference's span kind; one attribute per
# span makes our chains, tools and retrievers show as such there (it ignores the rest).
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
_OPENINFERENCE_KINDS = {
    "retrieval": "RETRIEVER", "reranking": "RERANKER", "postprocess": "RERANKER",
    "invoke_agent": "AGENT", "create_agent": "AGENT", "execute_tool": "TOOL", "embeddings": "EMBEDDING",
    "chat": "LLM", "text_completion": "LLM", "generate_content": "LLM",
}


def openinference_kind(kind: "str | None", operation: "str | None" = None) -> str:
    """OpenInference's span kind for a GenAI operation, or else a step's kind (an agent's
    steps and workflows are chains there: only an agent's own run is an agent)."""
    return _OPENINFERENCE_KINDS.get(operation or "", None) or _OPENINFERENCE_KINDS.get(kind or "", "CHAIN")
