"""Plain data out of LlamaIndex objects: what a span is, and the fields of its record.

Nothing here names a telemetry key; that is the core's job. The facts LlamaIndex users
know from its callbacks (event type, component, counts) travel as the records' ``extras``,
which the core names under the framework's namespace.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

from llm_otel.core import tool_arguments

FRAMEWORK = "llamaindex"
# the records' extras (keys relative to the framework's namespace)
EVENT_TYPE = "event_type"  # the CBEventType name LlamaIndex users know
COMPONENT = "component"  # the class that ran
CHUNKS = "chunks"  # chunks produced
NODES = "nodes"  # nodes parsed / retrieved / returned
INPUT_NODES = "input_nodes"
DOCUMENTS = "documents"
INPUTS = "inputs"  # texts embedded
SUB_QUESTIONS = "sub_questions"
RERANK_TOP_N = "rerank.top_n"
RERANK_MODEL = "rerank.model"
RERANK_NODE_IDS = "rerank.node_ids"  # what a reranker kept, best first
RERANK_SCORES = "rerank.scores"
TEMPLATE_VARS = "template.variables"
TOOL_NAME = "sub_question.tool"
TREE_CHILDREN = "tree.num_children"
TREE_ROOTS = "tree.root_nodes"

_LLM_CHAT = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_LLM_COMPLETE = frozenset({"complete", "acomplete", "stream_complete", "astream_complete"})
_LLM_STREAM = frozenset({"stream_chat", "astream_chat", "stream_complete", "astream_complete"})
_LLM_PREDICT = frozenset({"predict", "apredict", "stream", "astream", "structured_predict",
                          "astructured_predict", "stream_structured_predict",
                          "astream_structured_predict"})
_LLM_CALL = frozenset({"predict_and_call", "apredict_and_call"})
_EMBED = frozenset({"get_query_embedding", "aget_query_embedding", "get_text_embedding",
                    "aget_text_embedding", "get_text_embedding_batch", "aget_text_embedding_batch",
                    "get_agg_embedding_from_queries", "aget_agg_embedding_from_queries"})
_RETRIEVE = frozenset({"retrieve", "aretrieve"})
_QUERY = frozenset({"query", "aquery"})
_SYNTH = frozenset({"synthesize", "asynthesize"})
_PARSE = frozenset({"__call__", "acall", "get_nodes_from_documents", "aget_nodes_from_documents"})
_SPLIT = frozenset({"split_text", "split_texts", "split_text_metadata_aware",
                    "split_texts_metadata_aware"})
# only the abstract ``_postprocess_nodes`` is a dispatcher span (DispatcherSpanMixin)
_POST = frozenset({"postprocess_nodes", "apostprocess_nodes", "_postprocess_nodes", "_apostprocess_nodes"})
_PRIVATE_OK = frozenset({"__call__", "_postprocess_nodes", "_apostprocess_nodes"})
_TOOL = frozenset({"call", "acall", "__call__"})
_CHAT_ENGINE = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_QGEN = frozenset({"generate", "agenerate"})

_PROVIDERS = {"azure_openai": "azure.ai.openai", "bedrock": "aws.bedrock", "bedrock_converse": "aws.bedrock",
              "gemini": "gcp.gemini", "google_genai": "gcp.gen_ai", "vertex": "gcp.vertex_ai",
              "mistralai": "mistral_ai", "watsonx": "ibm.watsonx.ai"}


_AGENTS_MODULE = "llama_index.core.agent.workflow"


class Classes:
    """The LlamaIndex base classes, imported once when instrumenting (never at import)."""

    def __init__(self) -> None:
        from llama_index.core.base.base_query_engine import BaseQueryEngine
        from llama_index.core.base.base_retriever import BaseRetriever
        from llama_index.core.base.embeddings.base import BaseEmbedding
        from llama_index.core.base.llms.base import BaseLLM
        from llama_index.core.node_parser.interface import NodeParser, TextSplitter
        from llama_index.core.postprocessor.types import BaseNodePostprocessor
        from llama_index.core.question_gen.types import BaseQuestionGenerator
        from llama_index.core.response_synthesizers.base import BaseSynthesizer
        from llama_index.core.tools.types import BaseTool

        self.llm, self.embedding, self.retriever = BaseLLM, BaseEmbedding, BaseRetriever
        self.query_engine, self.synthesizer, self.node_parser = BaseQueryEngine, BaseSynthesizer, NodeParser
        self.splitter, self.postprocessor, self.tool = TextSplitter, BaseNodePostprocessor, BaseTool
        self.question_gen = BaseQuestionGenerator
        try:
            from llama_index.core.chat_engine.types import BaseChatEngine
            self.chat_engine: Any = BaseChatEngine
        except ImportError:  # pragma: no cover
            self.chat_engine = ()
        try:
            from workflows import Workflow
            self.workflow: Any = Workflow
        except ImportError:  # pragma: no cover
            self.workflow = ()
        self._agents: Any = ()

    @property
    def agents(self) -> Any:
        """LlamaIndex's workflow agent classes, looked up, never imported: their import costs
        20-100 ms, and an agent exists only once the app has imported them itself."""
        if not self._agents:
            module = sys.modules.get(_AGENTS_MODULE)
            found = (getattr(module, "AgentWorkflow", None), getattr(module, "BaseWorkflowAgent", None))
            if all(isinstance(cls, type) for cls in found):  # not while it is half imported
                self._agents = found
        return self._agents


def span_name(id_: str) -> Tuple[str, str]:
    """``"Class.method-<uuid4>"`` -> (``"Class"``, ``"method"``)."""
    name = id_[:-37] if len(id_) > 37 and id_[-37] == "-" else id_
    owner, _, method = name.rpartition(".")
    return owner, method


_KINDS: Dict[Tuple[Classes, type, str], Optional[str]] = {}


def classify(classes: Classes, instance: Any, method: str) -> Optional[str]:
    """The kind of work a LlamaIndex span is, or None for plumbing we keep out of the tree.

    The answer depends only on the instance's class and the method, so it is cached per
    (classes, class, method): a query opens a dozen LlamaIndex spans and each answer
    otherwise takes up to a dozen ABC ``isinstance`` checks."""
    if instance is None or method.startswith("_") and method not in _PRIVATE_OK:
        return None
    key = (classes, type(instance), method)  # the Classes object itself: an id could be reused
    try:
        return _KINDS[key]
    except KeyError:
        pass
    kind = _classify(classes, instance, method)
    if len(_KINDS) >= 4096:  # a bound on odd apps that make classes on the fly
        _KINDS.clear()
    _KINDS[key] = kind
    return kind


def _classify(classes: Classes, instance: Any, method: str) -> Optional[str]:
    if isinstance(instance, classes.llm):
        if method in _LLM_CHAT:
            return "chat"
        if method in _LLM_COMPLETE:
            return "text_completion"
        if method in _LLM_PREDICT:
            return "templating"
        if method in _LLM_CALL:
            return "function_call"
        return None
    if isinstance(instance, classes.embedding):
        return "embeddings" if method in _EMBED else None
    if isinstance(instance, classes.retriever):
        return "retrieve" if method in _RETRIEVE else None
    if isinstance(instance, classes.query_engine):
        return "query" if method in _QUERY else None
    if isinstance(instance, classes.synthesizer):
        return "synthesize" if method in _SYNTH else None
    if isinstance(instance, classes.splitter) and method in _SPLIT:
        return "chunking"
    if isinstance(instance, classes.node_parser):
        return "node_parsing" if method in _PARSE else None
    if isinstance(instance, classes.postprocessor):
        if method in _POST:
            return "reranking" if "rerank" in type(instance).__name__.lower() else "postprocess"
        return None
    if isinstance(instance, classes.tool):
        return "tool" if method in _TOOL else None
    if isinstance(instance, classes.question_gen):
        return "question_generation" if method in _QGEN else None
    if classes.chat_engine and isinstance(instance, classes.chat_engine):
        return "chat_engine" if method in _CHAT_ENGINE else None
    if classes.workflow and isinstance(instance, classes.workflow):
        if method == "run":
            return "agent" if classes.agents and isinstance(instance, classes.agents) else "workflow"
        return "agent_step" if classes.agents and isinstance(instance, classes.agents) else "workflow_step"
    return None


EVENT_TYPES = {
    "chat": "LLM", "text_completion": "LLM", "embeddings": "EMBEDDING", "retrieve": "RETRIEVE",
    "query": "QUERY", "synthesize": "SYNTHESIZE", "chunking": "CHUNKING", "node_parsing": "NODE_PARSING",
    "reranking": "RERANKING", "postprocess": "NODE_POSTPROCESSING", "tool": "FUNCTION_CALL",
    "function_call": "FUNCTION_CALL", "templating": "TEMPLATING", "question_generation": "SUB_QUESTION",
    "sub_question": "SUB_QUESTION", "tree": "TREE", "chat_engine": "QUERY", "agent": "AGENT",
    "agent_step": "AGENT_STEP", "workflow": "WORKFLOW", "workflow_step": "WORKFLOW",
}


def is_stream(method: str) -> bool:
    return method in _LLM_STREAM


def provider(instance: Any) -> str:
    """``llama_index.llms.openai.base`` -> ``openai``; core and user classes -> ``llama_index``."""
    parts = type(instance).__module__.split(".")
    if len(parts) >= 3 and parts[0] == "llama_index" and parts[1] in ("llms", "embeddings"):
        return _PROVIDERS.get(parts[2], parts[2])
    return "llama_index"


def _known(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value and value != "unknown" else None


def llm_request(instance: Any, arguments: Dict[str, Any]) -> Dict[str, Any]:
    """Model and parameters of an LLM call, from the LLM object and the call's kwargs."""
    out: Dict[str, Any] = {}
    model = getattr(instance, "model", None)
    if not _known(model):
        try:
            model = instance.metadata.model_name
        except Exception:  # noqa: BLE001 - a custom LLM's metadata may raise
            model = None
    out["request_model"] = _known(model)
    params: Dict[str, Any] = {}
    extra = getattr(instance, "additional_kwargs", None)
    if isinstance(extra, dict):
        params.update(extra)
    for name in ("temperature", "max_tokens", "top_p", "top_k", "seed"):
        value = getattr(instance, name, None)
        if value is not None:
            params.setdefault(name, value)
    call_kwargs = arguments.get("kwargs")
    if isinstance(call_kwargs, dict):
        params.update(call_kwargs)
    for name, kind in (("temperature", float), ("top_p", float), ("top_k", float), ("max_tokens", int),
                       ("seed", int), ("frequency_penalty", float), ("presence_penalty", float)):
        value = params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = kind(value)
    stop = params.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        out["stop_sequences"] = list(stop)
    return out


def embedding_model(instance: Any) -> Optional[str]:
    return _known(getattr(instance, "model_name", None))


def _text_of(message: Any) -> str:
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else ("" if content is None else str(content))


def message(msg: Any, finish_reason: Optional[str] = None) -> Dict[str, Any]:
    """A LlamaIndex ``ChatMessage`` in the GenAI message shape."""
    role = getattr(msg, "role", "user")
    role = getattr(role, "value", role)
    parts: List[Dict[str, Any]] = []
    text = _text_of(msg)
    if text:
        parts.append({"type": "text", "content": text})
    seen = set()
    for block in getattr(msg, "blocks", None) or ():
        name = getattr(block, "tool_name", None)  # ToolCallBlock (0.14)
        if name is not None:
            call_id = getattr(block, "tool_call_id", None)
            seen.add(call_id)
            parts.append({"type": "tool_call", "id": call_id, "name": name,
                          "arguments": tool_arguments(getattr(block, "tool_kwargs", None))})
    extra = getattr(msg, "additional_kwargs", None) or {}
    for call in extra.get("tool_calls") or ():  # OpenAI's own, also kept beside the blocks
        call_id = _get(call, "id")
        if call_id is not None and call_id in seen:
            continue
        function = _get(call, "function")
        parts.append({"type": "tool_call", "id": call_id, "name": _get(function, "name"),
                      "arguments": tool_arguments(_get(function, "arguments"))})
    if role == "tool":
        parts = [{"type": "tool_call_response", "id": extra.get("tool_call_id"), "response": text}]
    out: Dict[str, Any] = {"role": str(role), "parts": parts}
    if finish_reason:
        out["finish_reason"] = finish_reason
    return out




def user_message(msg: Any) -> Optional[Dict[str, Any]]:
    """An agent's ``user_msg`` (a string or a ``ChatMessage``) as a message."""
    if msg is None:
        return None
    return prompt_message(msg) if isinstance(msg, str) else message(msg)


def prompt_message(prompt: Any) -> Dict[str, Any]:
    return {"role": "user", "parts": [{"type": "text", "content": str(prompt)}]}


def llm_input(inv: Any, messages: Any, prompt: Any) -> None:
    """Hand the call's messages (or prompt) to the core, converted only if needed."""
    if messages is not None:
        inv.set_input(messages, _messages_input)
    elif prompt is not None:
        inv.set_input(prompt, _prompt_input)


def _messages_input(messages: Any, inv: Any) -> None:
    inv.input_messages = [message(m) for m in messages]


def _prompt_input(prompt: Any, inv: Any) -> None:
    inv.input_messages = [prompt_message(prompt)]


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def llm_response(response: Any) -> Dict[str, Any]:
    """Response id, model, finish reasons, usage and output from a Chat/CompletionResponse."""
    out: Dict[str, Any] = {}
    if response is None:
        return out
    raw = getattr(response, "raw", None)
    out["response_id"] = _get(raw, "id") if isinstance(_get(raw, "id"), str) else None
    model = _get(raw, "model")
    out["response_model"] = model if isinstance(model, str) else None
    reasons = [r for r in (_get(c, "finish_reason") for c in (_get(raw, "choices") or ())) if isinstance(r, str)]
    if not reasons:
        reason = _get(raw, "stop_reason") or _get(raw, "finish_reason")
        reasons = [reason] if isinstance(reason, str) else []
    out["finish_reasons"] = reasons or None
    usage = _get(raw, "usage")
    extra = getattr(response, "additional_kwargs", None) or {}
    out["input_tokens"] = _int(_get(usage, "prompt_tokens")) or _int(_get(usage, "input_tokens")) \
        or _int(extra.get("prompt_tokens"))
    out["output_tokens"] = _int(_get(usage, "completion_tokens")) or _int(_get(usage, "output_tokens")) \
        or _int(extra.get("completion_tokens"))
    return out


def output_content(response: Any, inv: Any) -> None:
    """The message (or text) of a Chat/CompletionResponse as the output message, with the
    provider's finish reason when the response carried one (LlamaIndex keeps none of its
    own: none is invented here; the core knows what a message without one means)."""
    reasons = inv.finish_reasons
    finish = reasons[0] if reasons else None
    msg = getattr(response, "message", None)
    if msg is not None:
        inv.output_messages = [message(msg, finish)]
    else:
        text = getattr(response, "text", None)
        out = {"role": "assistant", "parts": [{"type": "text", "content": text or ""}]}
        if finish:
            out["finish_reason"] = finish
        inv.output_messages = [out]


def query_text(query: Any) -> Optional[str]:
    """A ``str`` or ``QueryBundle`` query as text."""
    if query is None:
        return None
    if isinstance(query, str):
        return query
    text = getattr(query, "query_str", None)
    return text if isinstance(text, str) else str(query)


def _score(item: Any) -> Optional[float]:
    score = getattr(item, "score", None)
    return float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None


def documents(nodes: Any) -> List[Dict[str, Any]]:
    """Retrieved nodes as the conventions' documents: id, score, and the text and metadata
    the core records only when content is captured (references, not copies)."""
    out = []
    for item in nodes or ():
        node = getattr(item, "node", item)
        try:
            text = node.get_content()  # the node's own text, without its metadata
        except Exception:  # noqa: BLE001 - a custom node class
            text = getattr(node, "text", None)
        out.append({"id": getattr(node, "node_id", None), "score": _score(item), "content": text,
                    "metadata": getattr(node, "metadata", None) or None})
    return out


def reranked(nodes: Any) -> Dict[str, Any]:
    """What a reranker kept: count, node ids and scores (no convention for rerankers)."""
    ids = [str(getattr(getattr(item, "node", item), "node_id", "")) for item in nodes or ()]
    out: Dict[str, Any] = {NODES: len(ids), RERANK_NODE_IDS: ids}
    scores = [_score(item) for item in nodes or ()]
    if ids and None not in scores:
        out[RERANK_SCORES] = scores
    return out


def data_source_id(retriever: Any) -> str:
    """What a retriever searches: its index's id (``index.set_index_id`` names it), else
    the retriever's class."""
    index_id = getattr(getattr(retriever, "_index", None), "index_id", None)
    return index_id if isinstance(index_id, str) and index_id else type(retriever).__name__


def top_k(retriever: Any) -> Optional[int]:
    value = getattr(retriever, "similarity_top_k", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---- agents, workflows and conversations ------------------------------------------------

_DEFAULT_CHAT_STORE_KEY = "chat_history"  # LlamaIndex's key when none is given: no conversation


def conversation_id(memory: Any) -> Optional[str]:
    """The conversation a LlamaIndex memory holds: ``Memory.session_id``, or a chat store
    key the app chose (the default key names no conversation)."""
    if memory is None:
        return None
    session = getattr(memory, "session_id", None)
    if isinstance(session, str) and session:
        return session
    key = getattr(memory, "chat_store_key", None)
    return key if isinstance(key, str) and key and key != _DEFAULT_CHAT_STORE_KEY else None


def run_argument(arguments: Dict[str, Any], name: str) -> Any:
    """An argument of a workflow run, wherever the version puts it: the run's own
    parameters, its ``**kwargs``, or the start event built from them."""
    value = arguments.get(name)
    if value is None:
        value = _get(arguments.get("kwargs"), name)
    if value is None:
        start = arguments.get("start_event")
        getter = getattr(start, "get", None)
        if callable(getter):
            try:
                value = getter(name)
            except Exception:  # noqa: BLE001 - an event class of the app's
                value = None
    return value


def run_inputs(arguments: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A workflow run's inputs as JSON-able data: the start event's fields, or the kwargs."""
    start = arguments.get("start_event")
    if start is not None:
        try:
            fields = {k: v for k, v in start.model_dump(exclude_none=True).items() if k != "_data"}
            fields.update(start.to_dict())
            return fields or None
        except Exception:  # noqa: BLE001 - not a workflows Event
            return None
    kwargs = arguments.get("kwargs")
    return dict(kwargs) if isinstance(kwargs, dict) and kwargs else None


def workflow_name(workflow: Any) -> str:
    """The name LlamaIndex gives a workflow (explicit, or module-qualified), else its class."""
    try:
        name = getattr(workflow, "workflow_name", None)
    except Exception:  # noqa: BLE001
        name = None
    return name if isinstance(name, str) and name else type(workflow).__name__


def agent_facts(agent: Any) -> Tuple[Optional[str], Optional[str], Any]:
    """(name, description, llm) of an agent; an ``AgentWorkflow`` answers for its root
    agent, and names a model only when all its agents share one."""
    members = getattr(agent, "agents", None)
    if isinstance(members, dict) and members:
        root = members.get(getattr(agent, "root_agent", None)) or next(iter(members.values()))
        llms = {id(getattr(member, "llm", None)) for member in members.values()}
        llm = getattr(root, "llm", None) if len(llms) == 1 else None
        return getattr(root, "name", None), getattr(root, "description", None), llm
    return getattr(agent, "name", None), getattr(agent, "description", None), getattr(agent, "llm", None)


def agent_output(result: Any) -> Any:
    """The final message of an agent run: a StopEvent's result, an AgentOutput's response."""
    output = getattr(result, "result", result)
    return getattr(output, "response", output)


def _declares(event: Any, name: str) -> bool:
    """Whether the event's class declares the field: reading a missing one from a workflow
    event raises and catches inside its ``__getattr__``, at a cost on every step."""
    fields = getattr(type(event), "model_fields", None)
    return isinstance(fields, dict) and name in fields


def tool_call(event: Any) -> Optional[Tuple[str, str]]:
    """(tool name, call id) of a workflow event that asks for a tool (``ToolCall``)."""
    if not _declares(event, "tool_id"):
        return None
    call_id, name = getattr(event, "tool_id", None), getattr(event, "tool_name", None)
    if isinstance(call_id, str) and isinstance(name, str) and call_id:
        return name, call_id
    return None


def current_agent(event: Any) -> Optional[str]:
    """The agent whose turn an agent workflow's event belongs to (AgentInput, AgentOutput...)."""
    name = getattr(event, "current_agent_name", None) if _declares(event, "current_agent_name") else None
    return name if isinstance(name, str) else None


def tool_output(result: Any) -> Tuple[Any, bool]:
    """(content, is_error) of a ``ToolOutput``."""
    if result is None:
        return None, False
    content = getattr(result, "content", None)
    if content is None:
        content = getattr(result, "raw_output", result)
    return content, bool(getattr(result, "is_error", False))


def size(value: Any) -> Optional[int]:
    try:
        return len(value)
    except TypeError:
        return None
