"""The callback handler: LangChain runs become invocation records, the tree comes from run ids.

The handler never attaches an OTel context (see DESIGN.md, "Known traps"): a run's parent is
the span of its ``parent_run_id``, or the caller's current span for a root run. Code that runs
*inside* a run sees the run's span through the wrappers in :mod:`.wrappers`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Callable, Dict, List, Optional, Union
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import context as otel_context
from opentelemetry import trace

from llm_otel import config
from llm_otel.core.guard import guarded, report
from llm_otel.core.invocation import LLMInvocation, StepInvocation, ToolInvocation
from llm_otel.core.recorder import Recorder, suppressed

from . import extract

Record = Union[LLMInvocation, ToolInvocation, StepInvocation]

HIDDEN_TAG = "langsmith:hidden"
MAX_RUNS = 10_000
ABANDONED = "llm_otel.run.abandoned"
STREAM_CLOSED = "llm_otel.stream.closed_early"
# on the runs of a completion batch after the first: answered by the same request, whose
# usage (and metrics) the first run's span carries
SHARED_REQUEST = "llm_otel.request.shared"
_USAGE = frozenset(("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                    "reasoning_output_tokens"))
MAX_DOCUMENT_IDS = 100
# control flow, not failure: LangGraph raises these to interrupt or hand over
_CONTROL_FLOW = {"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"}

# set by the ``stream`` wrappers while LangChain runs one step of a model's stream: there,
# ``_stream`` is called without its run manager, so the run's record is handed over here
STREAM_SLOT: ContextVar[Optional[List[Optional[LLMInvocation]]]] = ContextVar("llm_otel_lc_stream", default=None)
# set by the LangGraph wrappers while an agent graph (model node + "tools" node) runs: its
# first chain run is the graph itself, recorded as ``invoke_agent``
AGENT_SLOT: ContextVar[Optional[List[bool]]] = ContextVar("llm_otel_lc_agent", default=None)
# set by the retriever ``invoke`` wrappers: retrievers written without a ``run_manager``
# parameter get none, so ``on_retriever_start`` hands the run's record over here
RETRIEVER_SLOT: ContextVar[Optional[List[Optional[StepInvocation]]]] = ContextVar("llm_otel_lc_retriever",
                                                                                 default=None)


class _Run:
    """One LangChain run: its record (None for a hidden or suppressed run) and its parent.

    A model run also keeps LangChain's input (messages or prompt) unconverted: it becomes
    semconv messages only if needed, for content capture or for counting tokens locally.
    ``owner`` is set on the runs of a completion batch after the first: the record of the
    first run, which owns the one request they all share (``batch`` is set on that first run).
    """

    __slots__ = ("record", "parent", "inputs", "convert", "owner", "batch")

    def __init__(self, record: Optional[Record], parent: Optional["_Run"]) -> None:
        self.record = record
        self.parent = parent
        self.inputs: Any = None
        self.convert: Optional[Callable[[Any], List[Dict[str, Any]]]] = None
        self.owner: Optional[LLMInvocation] = None
        self.batch = False

    def fill_inputs(self, inv: LLMInvocation) -> None:
        if self.convert is None or inv.input_messages is not None:
            return
        if inv.input_tokens is None or config.settings().capture_content:
            try:
                inv.input_messages = self.convert(self.inputs)
            except Exception as exc:  # noqa: BLE001 - the record still ends, without them
                report("langchain.input_messages", exc)
            self.convert = None


class OTelCallbackHandler(BaseCallbackHandler):
    """Maps LangChain runs to llm-otel records; added to every callback manager by the instrumentor."""

    run_inline = True  # called in the caller's thread and context, also by async managers
    raise_error = False

    def __init__(self, recorder: Recorder, max_runs: int = MAX_RUNS) -> None:
        super().__init__()
        self.recorder = recorder
        self.max_runs = max_runs
        self.enabled = True
        self._runs: "OrderedDict[UUID, _Run]" = OrderedDict()
        self._lock = threading.Lock()

    # ---- the run table -----------------------------------------------------------------

    def _add(self, run_id: UUID, record: Optional[Record], parent_run_id: Optional[UUID]) -> _Run:
        with self._lock:
            run = _Run(record, self._runs.get(parent_run_id) if parent_run_id else None)
            self._runs[run_id] = run
            evicted = self._runs.popitem(last=False)[1] if len(self._runs) > self.max_runs else None
        if evicted is not None and evicted.record is not None and not evicted.record.ended:
            self._abandon(evicted)
        return run

    def _abandon(self, run: _Run) -> None:
        """End a run that never finished (abandoned generator, crashed task), marked as such."""
        record = run.record
        record.attributes[ABANDONED] = True  # type: ignore[union-attr]
        if isinstance(record, LLMInvocation):
            run.fill_inputs(record)
            self.recorder.stop_llm(record)
        else:
            self.recorder.stop(record)  # type: ignore[arg-type]

    def _pop_run(self, run_id: UUID) -> Optional[_Run]:
        with self._lock:
            return self._runs.pop(run_id, None)

    def _pop(self, run_id: UUID) -> Optional[Record]:
        run = self._pop_run(run_id)
        return run.record if run is not None else None

    def record(self, run_id: Optional[UUID]) -> Optional[Record]:
        """The record of a live run, or of its nearest recorded ancestor for a hidden run."""
        run = self._runs.get(run_id) if run_id is not None else None
        while run is not None and run.record is None:
            run = run.parent
        return run.record if run is not None else None

    def llm(self, run_id: Optional[UUID]) -> Optional[LLMInvocation]:
        run = self._runs.get(run_id) if run_id is not None else None
        record = run.record if run is not None else None
        return record if isinstance(record, LLMInvocation) and not record.ended else None

    def share_request(self, run_ids: List[Any]) -> Optional[LLMInvocation]:
        """Several runs answered by one request (a completion LLM's batch): the first run's
        record owns it (the caller claims it); the others learn their owner. Returns the owner."""
        first = self._runs.get(run_ids[0]) if run_ids and run_ids[0] is not None else None
        owner = first.record if first is not None else None
        if not isinstance(owner, LLMInvocation) or owner.ended:
            return None
        if len(run_ids) > 1:
            first.batch = True
            for run_id in run_ids[1:]:
                run = self._runs.get(run_id)
                if run is not None and isinstance(run.record, LLMInvocation):
                    run.owner = owner
        return owner

    def _parent_context(self, parent_run_id: Optional[UUID]) -> Any:
        """The parent run's span in the current context; the current context for a root run."""
        record = self.record(parent_run_id)
        if record is not None and record.span is not None:
            return trace.set_span_in_context(record.span, otel_context.get_current())
        return None

    def open_runs(self) -> int:
        return len(self._runs)

    def _skip(self, tags: Optional[List[str]]) -> bool:
        return not self.enabled or suppressed() or (tags is not None and HIDDEN_TAG in tags)

    # ---- models ------------------------------------------------------------------------

    @guarded
    def on_chat_model_start(self, serialized: Dict[str, Any], messages: List[List[Any]], *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                            metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        batch = messages[0] if messages else []
        self._start_llm("chat", serialized, batch, extract.messages, run_id, parent_run_id, tags, metadata, kwargs)

    @guarded
    def on_llm_start(self, serialized: Dict[str, Any], prompts: List[str], *, run_id: UUID,
                     parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                     metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        prompt = prompts[0] if prompts else ""
        self._start_llm("text_completion", serialized, prompt, extract.prompt_messages, run_id, parent_run_id,
                        tags, metadata, kwargs)

    def _start_llm(self, operation: str, serialized: Any, inputs: Any,
                   convert: Callable[[Any], List[Dict[str, Any]]], run_id: UUID, parent_run_id: Optional[UUID],
                   tags: Optional[List[str]], metadata: Optional[Dict[str, Any]], kwargs: Dict[str, Any]) -> None:
        if not self.enabled or suppressed():
            self._add(run_id, None, parent_run_id)
            return
        metadata = metadata or {}
        params = kwargs.get("invocation_params") or {}
        inv = LLMInvocation(operation=operation, provider=extract.provider(metadata, params),
                            request_model=extract.model_name(metadata, params, serialized),
                            **extract.request_params(metadata, params, serialized))
        slot = STREAM_SLOT.get()
        if slot is not None and slot[0] is None:
            inv.stream = True  # called by ``stream()`` / ``astream()``
        else:
            slot = None
        inv.attributes = extract.run_attributes(tags, metadata)
        thread = metadata.get("thread_id")
        if isinstance(thread, (str, int)) and not isinstance(thread, bool):
            inv.conversation_id = str(thread)
        self.recorder.start_llm(inv, self._parent_context(parent_run_id))
        run = self._add(run_id, inv, parent_run_id)
        run.inputs, run.convert = inputs, convert
        if slot is not None:
            slot[0] = inv

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)  # the hot path: a dict lookup and a clock read
        if run is not None and isinstance(run.record, LLMInvocation):
            self.recorder.chunk(run.record)

    @guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._pop_run(run_id)
        inv = run.record if run is not None else None
        if not isinstance(inv, LLMInvocation) or inv.ended:
            return
        try:
            batch = run.batch  # type: ignore[union-attr]
            for key, value in extract.llm_result(response).items():
                # what the SDK underneath merged in wins, except a batch's usage: LangChain sums
                # it over the requests a large batch is split into (the SDK merge kept the last)
                if getattr(inv, key, None) is None or (batch and key in _USAGE):
                    setattr(inv, key, value)
        except Exception as exc:  # noqa: BLE001 - the span still ends, with what we have
            report("langchain.llm_result", exc)
        owner = run.owner  # type: ignore[union-attr]
        if owner is not None and inv.input_tokens is None and inv.output_tokens is None \
                and _reported_usage(owner):
            _share(inv, owner)
            for name in ("response_id", "server_address", "server_port"):
                if getattr(inv, name) is None:
                    setattr(inv, name, getattr(owner, name))
        else:
            run.fill_inputs(inv)  # type: ignore[union-attr]
        self.recorder.stop_llm(inv)

    @guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if isinstance(error, GeneratorExit):  # the consumer stopped reading: not a failure
            inv = self.llm(run_id)
            if inv is not None:
                inv.attributes[STREAM_CLOSED] = True
            self.on_llm_end(kwargs.get("response"), run_id=run_id)
            return
        run = self._pop_run(run_id)
        inv = run.record if run is not None else None
        if isinstance(inv, LLMInvocation):
            if run.owner is not None:  # type: ignore[union-attr]
                _share(inv, run.owner)  # type: ignore[union-attr] # one failed request, counted once
            if config.settings().capture_content:
                run.fill_inputs(inv)  # type: ignore[union-attr]
            self.recorder.fail_llm(inv, error)

    # ---- chains, agents, LangGraph nodes ---------------------------------------------------

    @guarded
    def on_chain_start(self, serialized: Dict[str, Any], inputs: Any, *, run_id: UUID,
                       parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                       metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        if self._skip(tags):
            self._add(run_id, None, parent_run_id)
            return
        metadata = metadata or {}
        name = extract.run_name(serialized, kwargs, "chain")
        step = StepInvocation(name=name, inputs=inputs, attributes=extract.run_attributes(tags, metadata))
        agent = metadata.get("lc_agent_name")
        slot = AGENT_SLOT.get()
        graph_agent = slot is not None and slot[0]
        if graph_agent:
            slot[0] = False  # type: ignore[index]
        if graph_agent or name == "AgentExecutor" or (isinstance(agent, str) and agent == name):
            step.operation, step.kind, step.agent_name = "invoke_agent", "agent", name
            step.name = f"invoke_agent {name}"
        elif metadata.get("langgraph_node") == name:
            step.kind = "node"
            step.attributes["llm_otel.langgraph.node"] = name
            if isinstance(metadata.get("langgraph_step"), int):
                step.attributes["llm_otel.langgraph.step"] = metadata["langgraph_step"]
        self.recorder.start_step(step, self._parent_context(parent_run_id))
        self._add(run_id, step, parent_run_id)

    @guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        step = self._pop(run_id)
        if isinstance(step, StepInvocation):
            step.outputs = outputs
            self.recorder.stop(step)

    @guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        step = self._pop(run_id)
        if step is None or isinstance(step, LLMInvocation):
            return
        if isinstance(error, GeneratorExit):  # the consumer stopped reading the stream
            step.attributes[STREAM_CLOSED] = True
            self.recorder.stop(step)
        elif {k.__name__ for k in type(error).__mro__} & _CONTROL_FLOW:
            step.attributes["llm_otel.langgraph.interrupted"] = type(error).__name__
            self.recorder.stop(step)
        else:
            self.recorder.fail(step, error)

    @guarded
    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        record = self.record(run_id)
        if isinstance(record, StepInvocation):
            self.recorder.agent_event(record, False, tool_name=getattr(action, "tool", None),
                                      arguments=getattr(action, "tool_input", None))

    @guarded
    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        record = self.record(run_id)
        if isinstance(record, StepInvocation):
            self.recorder.agent_event(record, True, output=getattr(finish, "return_values", None))

    def on_interrupt(self, event: Any) -> None:
        """LangGraph's lifecycle events reach every handler of its graph callback manager,
        ours included; the interrupted node already says so on its span."""

    def on_resume(self, event: Any) -> None:
        """See :meth:`on_interrupt`."""

    # ---- tools -------------------------------------------------------------------------

    @guarded
    def on_tool_start(self, serialized: Dict[str, Any], input_str: str, *, run_id: UUID,
                      parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                      metadata: Optional[Dict[str, Any]] = None, inputs: Optional[Dict[str, Any]] = None,
                      **kwargs: Any) -> None:
        if self._skip(tags):
            self._add(run_id, None, parent_run_id)
            return
        serialized = serialized or {}
        description = serialized.get("description")
        tool = ToolInvocation(name=extract.run_name(serialized, kwargs, "tool"),
                              call_id=kwargs.get("tool_call_id"), tool_type="function",
                              description=description if isinstance(description, str) and description else None,
                              arguments=inputs if inputs is not None else input_str,
                              attributes=extract.run_attributes(tags, metadata))
        self.recorder.start_tool(tool, self._parent_context(parent_run_id))
        self._add(run_id, tool, parent_run_id)

    @guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        tool = self._pop(run_id)
        if isinstance(tool, ToolInvocation):
            try:
                tool.result = extract.tool_output(output)
            except Exception as exc:  # noqa: BLE001
                report("langchain.tool_output", exc)
            self.recorder.stop(tool)

    @guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        tool = self._pop(run_id)
        if isinstance(tool, ToolInvocation):
            self.recorder.fail(tool, error)

    # ---- retrievers --------------------------------------------------------------------

    @guarded
    def on_retriever_start(self, serialized: Dict[str, Any], query: str, *, run_id: UUID,
                           parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                           metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        if self._skip(tags):
            self._add(run_id, None, parent_run_id)
            return
        step = StepInvocation(name=extract.run_name(serialized, kwargs, "retriever"), kind="retriever",
                              inputs=query, attributes=extract.run_attributes(tags, metadata))
        self.recorder.start_step(step, self._parent_context(parent_run_id))
        self._add(run_id, step, parent_run_id)
        slot = RETRIEVER_SLOT.get()
        if slot is not None and slot[0] is None:
            slot[0] = step

    @guarded
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        step = self._pop(run_id)
        if not isinstance(step, StepInvocation):
            return
        try:
            count, ids, contents = extract.documents(documents)
            step.attributes["llm_otel.retriever.document_count"] = count
            if ids:
                step.attributes["llm_otel.retriever.document_ids"] = ids[:MAX_DOCUMENT_IDS]
            step.outputs = contents
        except Exception as exc:  # noqa: BLE001
            report("langchain.documents", exc)
        self.recorder.stop(step)

    @guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        step = self._pop(run_id)
        if isinstance(step, StepInvocation):
            self.recorder.fail(step, error)


def _reported_usage(inv: LLMInvocation) -> bool:
    """The API's usage reached this record (merged from the SDK or from LangChain's result)."""
    return (inv.input_tokens is not None or inv.output_tokens is not None) and not inv.usage_estimated


def _share(inv: LLMInvocation, owner: LLMInvocation) -> None:
    """``inv`` was answered by ``owner``'s request: its tokens and the request's metrics are
    counted on ``owner``; this run keeps its span, marked as such."""
    inv.counted_elsewhere = True
    inv.attributes[SHARED_REQUEST] = True
