"""LlamaIndex spans and events (``llama_index.core.instrumentation``) to llm-otel records.

The tree is kept by LlamaIndex span id: ``span_enter`` gives each span its parent's id,
so a record's parent is found in :attr:`Tracker.runs` even where the context did not flow
(a new task, a thread pool). Only the code *inside* a LlamaIndex span sees its operation:
``span_enter`` runs in the wrapped function's own frame and ``span_exit`` / ``span_drop``
in the same frame for sync and async functions, so the operation is attached there and
detached there (the core drops a detach from another Context: a sync function that
returns a Future exits in a done-callback; parenting then stays by id).

Plumbing spans (``_retrieve``, ``get_response``, output parsers) get no span of their
own: they resolve to their parent, so their children nest where users expect them.
"""

from __future__ import annotations

import contextvars
import inspect
import time
import weakref
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from llm_otel.core import (ForkSafeLock, LLMInvocation, Operation, Recorder, StepInvocation, ToolInvocation,
                           current_trace_id, guarded, report, suppressed, wrapped_by_each_step)

from . import extract as ex

_LLM_KINDS = ("chat", "text_completion")
# the LLM stream whose span last exited in this context (weakly): a custom LLM's async stream
# made by this call, which Wrappers.custom_astream hands back read inside its span
_LAST_STREAM: "contextvars.ContextVar[Any]" = contextvars.ContextVar("llm_otel_llamaindex_stream",
                                                                    default=None)


class Run:
    """One LlamaIndex span: its operation, or (``op is None``) the run it resolves to."""

    __slots__ = ("id", "kind", "op", "target", "instance", "parent", "start", "token",
                 "streaming", "last", "call", "agent", "__weakref__")

    def __init__(self, id_: str, kind: Optional[str], op: Optional[Operation], target: Optional["Run"],
                 instance: Any, parent: Optional["Run"]) -> None:
        self.id = id_
        self.kind = kind
        self.op = op
        self.target = target if target is not None else self
        self.instance = instance
        self.parent = parent
        self.start = time.perf_counter()
        self.token: Any = None  # when this run's operation was attached in its frame
        self.streaming = False
        self.last: Any = None  # last streamed response
        self.call: Optional[Tuple[str, str]] = None  # a step's tool call: (tool name, call id)
        self.agent: Optional[str] = None  # an agent run's active agent (AgentWorkflow hands off)

    @property
    def record(self) -> Any:
        return self.op.record if self.op is not None else None


def _family(kind: Optional[str]) -> Optional[str]:
    return "chat" if kind == "text_completion" else kind


class Tracker:
    """Runs by LlamaIndex span id, bounded; builds and ends records through the recorder."""

    def __init__(self, recorder: Recorder, classes: ex.Classes, max_runs: int = 10_000,
                 stale_after: float = 3600.0) -> None:
        self.recorder = recorder
        self.classes = classes
        self.max_runs = max(1, int(max_runs))
        self.stale_after = float(stale_after)
        self.runs: "OrderedDict[str, Run]" = OrderedDict()
        self.streams: Dict[int, List[Run]] = {}  # LLM streams returned, not yet read to the end
        # runs ended early (evicted) while their frame still runs: their exit still detaches
        self.evicted: "OrderedDict[str, Run]" = OrderedDict()
        self.lock = ForkSafeLock()
        self.enabled = True
        self.events = {
            "LLMChatStartEvent": self._llm_start, "LLMCompletionStartEvent": self._llm_start,
            "LLMChatInProgressEvent": self._llm_chunk, "LLMCompletionInProgressEvent": self._llm_chunk,
            "LLMChatEndEvent": self._llm_end, "LLMCompletionEndEvent": self._llm_end,
            "ExceptionEvent": self._exception, "EmbeddingEndEvent": self._embedding_end,
            "RetrievalStartEvent": self._query_start, "QueryStartEvent": self._query_start,
            "SynthesizeStartEvent": self._query_start, "RetrievalEndEvent": self._nodes_end,
            "ReRankStartEvent": self._rerank_start, "ReRankEndEvent": self._reranked,
            "LLMPredictStartEvent": self._template_start,
            "LLMStructuredPredictStartEvent": self._template_start,
            "AgentToolCallEvent": self._tool_call,
        }

    # ---- table -----------------------------------------------------------------------

    def _add(self, run: Run) -> None:
        evicted = []
        with self.lock:
            self.runs[run.id] = run
            while len(self.runs) > self.max_runs:
                evicted.append(self.runs.popitem(last=False)[1])
            if self.stale_after and self.runs:
                now = time.perf_counter()
                while self.runs:
                    oldest = next(iter(self.runs.values()))
                    if now - oldest.start <= self.stale_after:
                        break
                    evicted.append(self.runs.popitem(last=False)[1])
        for old in evicted:
            if old.token is not None:
                with self.lock:
                    self.evicted[old.id] = old
                    while len(self.evicted) > 1024:
                        self.evicted.popitem(last=False)
            self._end_stale(old)

    def _pop(self, id_: str) -> Optional[Run]:
        with self.lock:
            return self.runs.pop(id_, None)

    def _end_stale(self, run: Run) -> None:
        """A run whose end never came (abandoned stream, lost callback): end it, marked."""
        self._forget_stream(run)
        if run.op is not None and not run.op.ended:
            self._finish(run, "abandoned")

    def end_all(self) -> None:
        with self.lock:
            runs = list(self.runs.values())
            self.runs.clear()
        for run in runs:
            self._end_stale(run)

    # ---- spans -----------------------------------------------------------------------

    @guarded
    def enter(self, id_: str, bound_args: Any, instance: Any, parent_id: Optional[str]) -> None:
        if not self.enabled or suppressed():
            return
        owner, method = ex.span_name(id_)
        kind = ex.classify(self.classes, instance, method)
        parent = self.runs.get(parent_id) if parent_id else None
        parent = parent.target if parent is not None else None
        if kind is None and instance is None and parent is not None and parent.kind in ("agent", "workflow"):
            # a workflow step: LlamaIndex wraps the step function itself, so no instance
            kind, instance = ("agent_step" if parent.kind == "agent" else "workflow_step"), parent.instance
        if kind is None:
            if parent is not None:  # plumbing: children resolve to the parent
                self._add(Run(id_, None, None, parent, instance, parent))
            return
        if parent is not None:
            if parent.instance is instance and _family(parent.kind) == _family(kind):
                # the same component calling itself (retrieve -> retrieve, chat -> complete)
                self._add(Run(id_, kind, None, parent, instance, parent))
                return
            if kind == "chunking" and parent.kind in ("node_parsing", "chunking"):
                # per-text chunking under a parser: counted on the parser, not a span each
                self._add(Run(id_, kind, None, parent, instance, parent))
                return
        if kind in _LLM_KINDS:
            owner_run = self._owner_of_claim(instance, parent)
            if owner_run is not None:
                self._add(Run(id_, kind, None, owner_run, instance, parent))
                return
        arguments = getattr(bound_args, "arguments", None) or {}
        record = self._build(kind, owner, method, instance, arguments, parent)
        if record is None:
            return
        # the caller's context when it is (inside) the parent's trace, else the parent by id
        op = self.recorder.start(record, parent=parent.op if parent is not None else None,
                                 parent_as_fallback=True)
        if not op:
            return
        run = Run(id_, kind, op, None, instance, parent)
        if kind == "agent_step":
            self._note_step(run, arguments.get("ev"))
        elif kind in ("agent", "workflow") and op.keeps_output:
            _run_content(record, arguments)
        # an LLM span we own is also "the record of this call": the SDK underneath contributes
        run.token = op.attach(claim=isinstance(record, LLMInvocation))
        self._add(run)

    @staticmethod
    def _note_step(run: Run, event: Any) -> None:
        """What an agent's step says about the run: the tool call it executes, the agent
        whose turn it is (the tools it calls ran under that agent)."""
        run.call = ex.tool_call(event)
        name = ex.current_agent(event)
        agent = run.parent
        if name is not None and agent is not None and agent.kind == "agent":
            agent.agent = name

    def _owner_of_claim(self, instance: Any, parent: Optional[Run]) -> Optional[Run]:
        """The LLM run this call is part of: a stream of the same LLM in the same trace whose
        first chunk is still to come (a custom LLM's ``astream_chat`` reading its own
        ``stream_chat`` when first read). An LLM called inside another LLM's span (a
        ``StructuredLLM`` around OpenAI) needs nothing here: that span claimed the call, and
        the core merges the inner record into it."""
        streams = self.streams.get(id(instance))
        if streams:
            trace_id = parent.op.trace_id if parent is not None and parent.op is not None else current_trace_id()
            for stream in reversed(streams):
                op = stream.op
                if not op.ended and not op.first_chunk_seen and op.trace_id == trace_id:
                    return stream
        return None

    @staticmethod
    def _detach(run: Run) -> None:
        token, run.token = run.token, None
        Operation.detach(token)  # nothing happens for an exit in another Context

    def _evicted(self, id_: str) -> None:
        """The exit of a run ended early: only give back the context it attached."""
        if self.evicted:
            with self.lock:
                run = self.evicted.pop(id_, None)
            if run is not None:
                self._detach(run)

    @guarded
    def exit(self, id_: str, result: Any) -> None:
        run = self.runs.get(id_)
        if run is None:
            self._evicted(id_)
            return
        self._detach(run)
        record = run.record
        if record is None:
            self._pop(id_)
            if run.kind == "chunking" and run.target.op is not None:
                _add_count(run.target.op, ex.CHUNKS, ex.size(result))
            return
        if run.kind in _LLM_KINDS and (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            run.streaming = True  # ends on its end event; kept in the table until then
            with self.lock:
                self.streams.setdefault(id(run.instance), []).append(run)
            _LAST_STREAM.set(weakref.ref(run))
            return
        self._pop(id_)
        try:
            self._outputs(run, result)
        except Exception as exc:  # noqa: BLE001 - an odd result must not leave the span open
            report("llama_index outputs", exc)
        error = getattr(result, "exception", None) if isinstance(record, ToolInvocation) else None
        if isinstance(error, BaseException):  # a tool error LlamaIndex caught for the agent
            self._fail(run, error)
        else:
            self._finish(run)

    @guarded
    def drop(self, id_: str, err: Optional[BaseException]) -> None:
        run = self._pop(id_)
        if run is None:
            self._evicted(id_)
            return
        self._detach(run)
        if run.record is None:
            return
        self._fail(run, err)

    def _forget_stream(self, run: Run) -> None:
        if not run.streaming:
            return
        with self.lock:
            streams = self.streams.get(id(run.instance))
            if streams is not None and run in streams:
                streams.remove(run)
                if not streams:
                    del self.streams[id(run.instance)]

    def _fail(self, run: Run, err: Optional[BaseException]) -> None:
        self._forget_stream(run)
        if run.op.ended:
            return
        if err is None:
            self._finish(run)
            return
        run.op.fail(err)

    def _finish(self, run: Run, reason: Optional[str] = None) -> None:
        if run.op.ended:
            return
        self._forget_stream(run)
        run.op.end(reason)

    # ---- records ---------------------------------------------------------------------

    def _build(self, kind: str, owner: str, method: str, instance: Any, args: Dict[str, Any],
               parent: Optional[Run]) -> Any:
        attrs: Dict[str, Any] = {ex.EVENT_TYPE: ex.EVENT_TYPES.get(kind, kind.upper()), ex.COMPONENT: owner}
        if kind in _LLM_KINDS:
            inv = LLMInvocation(operation=kind, provider=ex.provider(instance), stream=ex.is_stream(method),
                                framework=ex.FRAMEWORK, extras=attrs, **ex.llm_request(instance, args))
            ex.llm_input(inv, args.get("messages"), args.get("prompt"))
            return inv
        if kind == "embeddings":
            texts = args.get("texts") or args.get("queries")
            if texts is None:
                one = args.get("text", args.get("query"))
                texts = [one] if isinstance(one, str) else None
            inv = LLMInvocation(operation="embeddings", provider=ex.provider(instance),
                                request_model=ex.embedding_model(instance), framework=ex.FRAMEWORK, extras=attrs)
            _set_count(inv, ex.INPUTS, ex.size(texts))  # the texts come with the end events
            return inv
        if kind == "tool":
            return _tool(instance, owner, args, parent, attrs)
        if kind == "agent":
            return _agent(instance, owner, args, attrs)
        if kind == "workflow":
            return StepInvocation(name=f"workflow {owner}", kind=kind, operation="invoke_workflow",
                                  agent_name=ex.workflow_name(instance),
                                  conversation_id=ex.conversation_id(ex.run_argument(args, "memory")),
                                  framework=ex.FRAMEWORK, extras=attrs)
        if kind == "retrieve":
            query = args.get("str_or_query_bundle", args.get("query_bundle", args.get("query")))
            return StepInvocation(name=f"retrieve {owner}", kind=kind, operation="retrieval",
                                  query=ex.query_text(query), top_k=ex.top_k(instance),
                                  data_source_id=ex.data_source_id(instance), framework=ex.FRAMEWORK,
                                  extras=attrs)
        step = StepInvocation(name=f"{kind} {method if kind.endswith('step') else owner}", kind=kind,
                              framework=ex.FRAMEWORK, extras=attrs)
        if kind in ("query", "synthesize", "question_generation", "chat_engine"):
            query = args.get("str_or_query_bundle", args.get("query_bundle", args.get("query")))
            if kind == "chat_engine":
                query = args.get("message")
                step.conversation_id = ex.conversation_id(getattr(instance, "_memory", None))
            step.inputs = ex.query_text(query)
            if kind == "synthesize":
                _set_count(step, ex.INPUT_NODES, ex.size(args.get("nodes")))
        elif kind == "node_parsing":
            _set_count(step, ex.DOCUMENTS, ex.size(args.get("nodes", args.get("documents"))))
        elif kind in ("reranking", "postprocess"):
            _set_count(step, ex.INPUT_NODES, ex.size(args.get("nodes")))
            _set_count(step, ex.RERANK_TOP_N, getattr(instance, "top_n", None))
            model = getattr(instance, "model", None)
            if isinstance(model, str) and model:
                attrs[ex.RERANK_MODEL] = model
            step.inputs = ex.query_text(args.get("query_bundle") or args.get("query_str"))
        elif kind == "chunking":
            step.inputs = args.get("text") if isinstance(args.get("text"), str) else None
        elif kind in ("templating", "function_call"):
            _template(step, args.get("prompt"), args)
        return step

    def _outputs(self, run: Run, result: Any) -> None:
        record, kind = run.record, run.kind
        if isinstance(record, LLMInvocation):
            if kind == "embeddings":
                dims = _dimensions(result)
                if dims:
                    record.embedding_dimensions = record.embedding_dimensions or dims
            elif result is not None and record.output_converter is None and not record.output_messages:
                _apply_response(record, result)
            return
        if isinstance(record, ToolInvocation):
            content, is_error = ex.tool_output(result)
            record.result = content
            if is_error:
                error = getattr(result, "exception", None)
                record.error_type = type(error).__qualname__ if isinstance(error, BaseException) else "ToolError"
            return
        if kind == "chunking":
            _set_count(record, ex.CHUNKS, ex.size(result))
        elif kind == "node_parsing":
            _set_count(record, ex.NODES, ex.size(result))
        elif kind == "retrieve":
            if ex.NODES not in record.extras and isinstance(result, list):
                _documents(run, result)
        elif kind in ("reranking", "postprocess"):
            if ex.RERANK_NODE_IDS not in record.extras and isinstance(result, list):
                record.extras.update(ex.reranked(result))
        elif kind in ("query", "synthesize", "chat_engine"):
            text = getattr(result, "response", None)
            if isinstance(text, str):
                record.outputs = text
            _stream_in_context(result, run.op)
            _set_count(record, ex.NODES, ex.size(getattr(result, "source_nodes", None)))
        elif kind == "question_generation":
            count = ex.size(result)
            _set_count(record, ex.SUB_QUESTIONS, count)
            parent = run.parent
            if count is not None and parent is not None and parent.op is not None:
                _add_count(parent.op, ex.SUB_QUESTIONS, count)
            if isinstance(result, list):
                record.outputs = [{"tool": getattr(q, "tool_name", None), "question": getattr(q, "sub_question", None)}
                                  for q in result]
        elif kind == "templating" and isinstance(result, str):
            record.outputs = result
        elif kind == "agent":
            output = ex.agent_output(result)
            if output is not None and hasattr(output, "role"):
                record.output_messages = [ex.message(output)]
            elif output is not None:  # a structured or custom result
                record.outputs = output
        elif kind == "workflow":
            record.outputs = getattr(result, "result", result)

    # ---- events ----------------------------------------------------------------------

    @guarded
    def event(self, event: Any) -> None:
        handler = self.events.get(type(event).__name__)
        if handler is None:
            return
        run = self.runs.get(event.span_id) if event.span_id else None
        if run is None or run.op is None or run.op.ended:
            return
        handler(run, event)

    def _llm_start(self, run: Run, event: Any) -> None:
        inv = run.record
        if not isinstance(inv, LLMInvocation) or inv.input_converter is not None or inv.input_messages:
            return
        ex.llm_input(inv, getattr(event, "messages", None), getattr(event, "prompt", None))

    def _llm_chunk(self, run: Run, event: Any) -> None:
        if isinstance(run.record, LLMInvocation):
            run.op.chunk()
            run.last = getattr(event, "response", None)

    def _llm_end(self, run: Run, event: Any) -> None:
        inv = run.record
        if not isinstance(inv, LLMInvocation):
            return
        response = getattr(event, "response", None) or run.last
        if response is not None:
            _apply_response(inv, response)
        if run.streaming:  # the span already exited: this is the stream's end
            self._pop(run.id)
            self._finish(run)

    def _exception(self, run: Run, event: Any) -> None:
        if run.streaming:
            self._pop(run.id)
            error = getattr(event, "exception", None)
            if isinstance(error, GeneratorExit):  # the reader closed the stream: not an error
                self._finish(run, "closed_early")
            else:
                self._fail(run, error)

    def _embedding_end(self, run: Run, event: Any) -> None:
        inv = run.record
        if not isinstance(inv, LLMInvocation):
            return
        # one event per API batch: the texts embedded add up (to the count known at the start)
        inv.input_texts = (inv.input_texts or []) + [str(c) for c in getattr(event, "chunks", None) or ()]
        if inv.extras.get(ex.INPUTS, 0) < len(inv.input_texts):
            inv.extras[ex.INPUTS] = len(inv.input_texts)
        embeddings = getattr(event, "embeddings", None) or []
        if embeddings and ex.size(embeddings[0]):
            inv.embedding_dimensions = len(embeddings[0])

    def _query_start(self, run: Run, event: Any) -> None:
        """The query, if the call's arguments did not give it (content: only when kept)."""
        record = run.record
        if isinstance(record, StepInvocation) and record.inputs is None and record.operation is None \
                and run.op.keeps_output:
            record.inputs = ex.query_text(getattr(event, "query", None) or getattr(event, "str_or_query_bundle", None))

    def _nodes_end(self, run: Run, event: Any) -> None:
        if isinstance(run.record, StepInvocation):
            _documents(run, getattr(event, "nodes", None))

    def _reranked(self, run: Run, event: Any) -> None:
        if isinstance(run.record, StepInvocation):
            run.record.extras.update(ex.reranked(getattr(event, "nodes", None)))

    def _rerank_start(self, run: Run, event: Any) -> None:
        record = run.record
        if isinstance(record, StepInvocation):
            _set_count(record, ex.RERANK_TOP_N, getattr(event, "top_n", None))
            model = getattr(event, "model_name", None)
            if isinstance(model, str) and model:
                record.extras[ex.RERANK_MODEL] = model
            _set_count(record, ex.INPUT_NODES, ex.size(getattr(event, "nodes", None)))

    def _template_start(self, run: Run, event: Any) -> None:
        if isinstance(run.record, StepInvocation):
            _template(run.record, getattr(event, "template", None), getattr(event, "template_args", None) or {})

    def stream_made_here(self, instance: Any) -> Optional[Operation]:
        """The operation of the LLM stream this context's last call of ``instance`` made,
        if it is still to be read (see Wrappers.custom_astream)."""
        ref = _LAST_STREAM.get()
        run = ref() if ref is not None else None
        if run is None or run.instance is not instance or run.op.ended or run.op.first_chunk_seen:
            return None
        _LAST_STREAM.set(None)
        return run.op

    def _tool_call(self, run: Run, event: Any) -> None:
        tool = getattr(event, "tool", None)
        run.op.agent_action(getattr(tool, "name", None), getattr(event, "arguments", None))


# ---- helpers ---------------------------------------------------------------------------


def _set_count(record: Any, key: str, value: Optional[int]) -> None:
    if isinstance(value, int):
        record.extras[key] = value


def _add_count(op: Operation, key: str, value: Optional[int]) -> None:
    if isinstance(value, int) and not op.ended:
        op.record.extras[key] = op.record.extras.get(key, 0) + value


def _template(step: StepInvocation, template: Any, args: Dict[str, Any]) -> None:
    if template is None:
        return
    names = getattr(template, "template_vars", None)
    if isinstance(names, (list, tuple)):
        step.extras[ex.TEMPLATE_VARS] = [str(n) for n in names]
    try:
        text = template.get_template()
    except Exception:  # noqa: BLE001 - a custom prompt class
        text = None
    if text is not None and step.inputs is None:
        step.inputs = text


def _tool(instance: Any, owner: str, args: Dict[str, Any], parent: Optional[Run],
          attrs: Dict[str, Any]) -> ToolInvocation:
    """A tool call; its call id is the one the agent step running it was asked for, and its
    agent the one whose turn it is (the core finds the agent otherwise)."""
    meta = getattr(instance, "metadata", None)
    name = str(getattr(meta, "name", None) or owner)
    call_args = args.get("kwargs") or args.get("args") or {k: v for k, v in args.items() if k != "self"}
    context_param = getattr(instance, "ctx_param_name", None)  # the workflow Context LlamaIndex passes
    if context_param and isinstance(call_args, dict) and context_param in call_args:
        call_args = {k: v for k, v in call_args.items() if k != context_param}
    tool = ToolInvocation(name=name, description=getattr(meta, "description", None), tool_type="function",
                          arguments=call_args or None, framework=ex.FRAMEWORK, extras=attrs)
    if parent is not None and parent.call is not None and parent.call[0] == name:
        tool.call_id = parent.call[1]
        agent = parent.parent
        if agent is not None and agent.kind == "agent":
            tool.agent_name = agent.agent
    return tool


def _agent(instance: Any, owner: str, args: Dict[str, Any], attrs: Dict[str, Any]) -> StepInvocation:
    """An agent run (FunctionAgent, ReActAgent, AgentWorkflow): who it is, its model, the
    conversation its memory holds, and what the user said."""
    name, description, llm = ex.agent_facts(instance)
    step = StepInvocation(name=f"invoke_agent {name or owner}", kind="agent", operation="invoke_agent",
                          agent_name=str(name or owner), agent_description=description,
                          conversation_id=ex.conversation_id(ex.run_argument(args, "memory")),
                          framework=ex.FRAMEWORK, extras=attrs)
    if llm is not None:
        step.provider = ex.provider(llm)
        step.request_model = ex.llm_request(llm, {}).get("request_model")
    return step


def _run_content(step: StepInvocation, args: Dict[str, Any]) -> None:
    """What an agent or workflow run was given, when content is kept: an agent's chat
    history and user message as messages, a workflow's start event fields."""
    if step.kind == "workflow":
        step.inputs = ex.run_inputs(args)
        return
    history = ex.run_argument(args, "chat_history")
    messages = [ex.message(m) for m in history] if isinstance(history, list) else []
    user = ex.user_message(ex.run_argument(args, "user_msg"))
    if user is not None:
        messages.append(user)
    step.input_messages = messages or None


def _documents(run: Run, nodes: Any) -> None:
    """How many documents a retrieval found (not content: always recorded) and, when content
    is kept, the documents."""
    if nodes is None:
        return
    record = run.record
    record.extras[ex.NODES] = len(nodes)
    if run.op.keeps_output:
        record.documents = ex.documents(nodes)


def _stream_in_context(result: Any, op: Operation) -> None:
    """A streamed answer is generated when the caller reads it, after this span ended: its
    LLM call then runs with this span current, so it stays in the query's trace."""
    if type(result).__name__ not in ("StreamingResponse", "AsyncStreamingResponse"):
        return
    gen = getattr(result, "response_gen", None)
    if wrapped_by_each_step(gen):
        return  # already wrapped by the synthesizer under this query
    if inspect.isgenerator(gen):
        result.response_gen = op.each_step(gen)
    elif inspect.isasyncgen(gen):
        result.response_gen = op.each_step_async(gen)


def _dimensions(result: Any) -> Optional[int]:
    if isinstance(result, list) and result:
        first = result[0]
        if isinstance(first, list):
            return len(first) or None
        if isinstance(first, (int, float)):
            return len(result)
    return None


def _apply_response(inv: LLMInvocation, response: Any) -> None:
    """Fill in what the call returned; what the SDK underneath already gave wins."""
    for name, value in ex.llm_response(response).items():
        if value is not None and getattr(inv, name) is None:
            setattr(inv, name, value)
    if inv.output_converter is None and not inv.output_messages:
        inv.set_output(response, ex.output_content)
