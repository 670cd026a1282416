"""The callback handler: LangChain runs become invocation records, the tree comes from run ids.

The handler never makes a run current (see DESIGN.md, "Known traps"): a run's parent is the
operation of its ``parent_run_id``, or the caller's current span for a root run. Code that runs
*inside* a run sees the run's operation through the wrappers in :mod:`.wrappers`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Callable, Dict, List, Optional, Tuple
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from llm_otel.core import (ForkSafeLock, LLMInvocation, Operation, Recorder, StepInvocation, ToolInvocation,
                           current_trace_id, guarded, report, suppressed)

from . import extract

HIDDEN_TAG = "langsmith:hidden"
MAX_RUNS = 10_000
# tool calls a model asked for, kept until the tool runs (to find a call id LangChain does
# not pass on): per trace, for this many traces, this many calls each
MAX_CALL_TRACES = 1_000
MAX_CALLS = 128
# control flow, not failure: LangGraph raises these to interrupt or hand over
_CONTROL_FLOW = {"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"}

# set by the ``stream`` wrappers while LangChain runs one step of a model's stream: there,
# ``_stream`` is called without its run manager, so the run's operation is handed over here
STREAM_SLOT: ContextVar[Optional[List[Optional[Operation]]]] = ContextVar("llm_otel_lc_stream", default=None)
# set by the LangGraph wrappers while a graph runs: ``[first run pending, agent-shaped]``. Its
# first chain run is the graph itself: ``invoke_agent`` for an agent graph (a model node and a
# "tools" node), else ``invoke_workflow``
GRAPH_SLOT: ContextVar[Optional[List[bool]]] = ContextVar("llm_otel_lc_graph", default=None)
# set by the retriever ``invoke`` wrappers: ``[operation, top_k]``. Retrievers written without
# a ``run_manager`` parameter get none, so ``on_retriever_start`` hands the operation over here
RETRIEVER_SLOT: ContextVar[Optional[List[Any]]] = ContextVar("llm_otel_lc_retriever", default=None)
# set by the completion LLM wrappers for the length of ``generate``: what keeps a run's text
# prompt alive while the call that made it runs (the record holds it only weakly)
PROMPT_KEEPER: ContextVar[Optional[List[Any]]] = ContextVar("llm_otel_lc_prompts", default=None)


class _Prompt:
    """A text prompt, weakly referable: an open run's record holds it only while the call
    that made it keeps it (a run that never ends keeps no 100 KB prompt alive)."""

    __slots__ = ("text", "__weakref__")

    def __init__(self, text: str) -> None:
        self.text = text


def _prompt_messages(prompts: List[_Prompt], inv: LLMInvocation) -> None:
    """The core's converter for a completion LLM's prompt."""
    inv.input_messages = extract.prompt_messages(prompts[0].text)


class _Run:
    """One LangChain run: its operation (None for a hidden or suppressed run) and its parent.

    ``owner`` is set on the runs of a completion batch after the first: the operation of the
    first run, which owns the one request they all share.
    """

    __slots__ = ("op", "parent", "owner")

    def __init__(self, op: Optional[Operation], parent: Optional["_Run"]) -> None:
        self.op = op
        self.parent = parent
        self.owner: Optional[Operation] = None


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
        self._lock = ForkSafeLock()
        # trace id (or thread, outside any span) -> [(tool name, arguments key, call id)] asked for
        self._calls: "OrderedDict[Any, List[Tuple[str, int, str]]]" = OrderedDict()

    # ---- the run table -----------------------------------------------------------------

    def _add(self, run_id: UUID, op: Optional[Operation], parent_run_id: Optional[UUID]) -> _Run:
        with self._lock:
            run = _Run(op, self._runs.get(parent_run_id) if parent_run_id else None)
            self._runs[run_id] = run
            evicted = self._runs.popitem(last=False)[1] if len(self._runs) > self.max_runs else None
        if evicted is not None and evicted.op is not None:
            evicted.op.end("abandoned")  # its end never came (abandoned generator, crashed task)
        return run

    def _pop_run(self, run_id: UUID) -> Optional[_Run]:
        with self._lock:
            return self._runs.pop(run_id, None)

    def _pop(self, run_id: UUID) -> Optional[Operation]:
        run = self._pop_run(run_id)
        return run.op if run is not None else None

    def op(self, run_id: Optional[UUID]) -> Optional[Operation]:
        """The operation of a live run, or of its nearest recorded ancestor for a hidden run."""
        run = self._runs.get(run_id) if run_id is not None else None
        while run is not None and run.op is None:
            run = run.parent
        return run.op if run is not None else None

    def llm(self, run_id: Optional[UUID]) -> Optional[Operation]:
        """The open operation of a live model run."""
        run = self._runs.get(run_id) if run_id is not None else None
        op = run.op if run is not None else None
        return op if op is not None and isinstance(op.record, LLMInvocation) and not op.ended else None

    def share_request(self, run_ids: List[Any]) -> Optional[Operation]:
        """Several runs answered by one request (a completion LLM's batch): the first run's
        operation owns it (the caller claims it); the others learn their owner."""
        owner = self.llm(run_ids[0]) if run_ids else None
        if owner is None:
            return None
        for run_id in run_ids[1:]:
            run = self._runs.get(run_id)
            if run is not None and run.op is not None and isinstance(run.op.record, LLMInvocation):
                run.owner = owner
        return owner

    def open_runs(self) -> int:
        return len(self._runs)

    # ---- tool call ids -------------------------------------------------------------------
    # langchain-core 0.3 and AgentExecutor do not pass a tool's call id to ``on_tool_start``:
    # it is the id of the call the model asked for, in the same trace, with the same tool
    # name and arguments (the first such call not yet run; else the first of that name).
    # Runs made outside any span (an app's own loop: ``model.invoke``, then
    # ``tool.invoke(call)``) are each a trace of their own: there, calls are kept per thread.

    def _remember_calls(self, key: Any, calls: List[Tuple[str, int, str]]) -> None:
        with self._lock:
            pending = self._calls.pop(key, None) or []
            pending.extend(calls)
            del pending[:-MAX_CALLS]
            self._calls[key] = pending
            while len(self._calls) > MAX_CALL_TRACES:
                self._calls.popitem(last=False)

    def _take_call(self, key: Any, name: str, arguments: Any, given: Optional[str]) -> Optional[str]:
        """The call id of a tool run (``given`` if LangChain passed it), and that call is done."""
        if not self._calls.get(key):
            return given
        args_key = extract.args_key(arguments) if given is None else None
        with self._lock:
            pending = self._calls.get(key) or []
            if given is not None:
                found = next((i for i, call in enumerate(pending) if call[2] == given), None)
            else:
                found = next((i for i, call in enumerate(pending) if call[0] == name and call[1] == args_key),
                             None)
                if found is None:
                    found = next((i for i, call in enumerate(pending) if call[0] == name), None)
            if found is None:
                return given
            call_id = pending.pop(found)[2]
            if not pending:
                self._calls.pop(key, None)
        return given if given is not None else call_id

    def _skip(self, tags: Optional[List[str]]) -> bool:
        return not self.enabled or suppressed() or (tags is not None and HIDDEN_TAG in tags)

    def _start(self, record: Any, run_id: UUID, parent_run_id: Optional[UUID]) -> Operation:
        op = self.recorder.start(record, parent=self.op(parent_run_id))
        self._add(run_id, op or None, parent_run_id)
        return op

    # ---- models ------------------------------------------------------------------------

    @guarded
    def on_chat_model_start(self, serialized: Dict[str, Any], messages: List[List[Any]], *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                            metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        batch = messages[0] if messages else []
        self._start_llm("chat", serialized, batch, _chat_messages, run_id, parent_run_id, tags, metadata, kwargs)

    @guarded
    def on_llm_start(self, serialized: Dict[str, Any], prompts: List[str], *, run_id: UUID,
                     parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                     metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        prompt = _Prompt(prompts[0] if prompts else "")
        keeper = PROMPT_KEEPER.get()
        if keeper is None:
            keeper = STREAM_SLOT.get()
        if keeper is not None:  # alive while the call that made the run runs
            keeper.append(prompt)
        self._start_llm("text_completion", serialized, [prompt], _prompt_messages, run_id, parent_run_id,
                        tags, metadata, kwargs)

    def _start_llm(self, operation: str, serialized: Any, source: Any, convert: Callable[[Any, Any], None],
                   run_id: UUID, parent_run_id: Optional[UUID],
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
        inv.tags, inv.metadata = extract.user_tags(tags), extract.user_metadata(metadata)
        inv.conversation_id = extract.conversation_id(metadata)
        inv.set_input(source, convert)
        op = self._start(inv, run_id, parent_run_id)
        if slot is not None and op:
            slot[0] = op

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)  # the hot path: a dict lookup and a clock read
        if run is not None and run.op is not None:
            run.op.chunk()

    @guarded
    def on_llm_end(self, response: Any, *, run_id: UUID, reason: Optional[str] = None, **kwargs: Any) -> None:
        run = self._pop_run(run_id)
        op = run.op if run is not None else None
        if op is None or op.ended or not isinstance(op.record, LLMInvocation):
            return
        inv = op.record
        try:
            for key, value in extract.llm_result(response).items():
                if getattr(inv, key, None) is None:  # what the SDK underneath gave wins
                    setattr(inv, key, value)
            if inv.output_messages is None and inv.output_converter is None:
                inv.set_output(response, _output_messages)
            calls = extract.requested_calls(response)
            if calls:
                self._remember_calls(op.trace_id if current_trace_id() is not None else _loose(), calls)
        except Exception as exc:  # noqa: BLE001 - the span still ends, with what we have
            report("langchain.llm_result", exc)
        owner = run.owner  # type: ignore[union-attr]
        if owner is not None and inv.input_tokens is None and inv.output_tokens is None \
                and _reported_usage(owner):
            _share(inv, owner.record)
        op.end(reason)

    @guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if isinstance(error, GeneratorExit):  # the consumer stopped reading: not a failure
            self.on_llm_end(kwargs.get("response"), run_id=run_id, reason="closed_early")
            return
        run = self._pop_run(run_id)
        op = run.op if run is not None else None
        if op is not None and isinstance(op.record, LLMInvocation):
            if run.owner is not None:  # type: ignore[union-attr]
                _share(op.record, run.owner.record)  # type: ignore[union-attr] # one failed request, counted once
            op.fail(error)

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
        step = StepInvocation(name=name, inputs=inputs, tags=extract.user_tags(tags),
                              metadata=extract.user_metadata(metadata),
                              conversation_id=extract.conversation_id(metadata))
        slot = GRAPH_SLOT.get()
        graph = slot is not None and slot[0]
        if graph:
            slot[0] = False  # type: ignore[index]
        if (graph and slot[1]) or _is_agent_run(name, serialized, metadata):  # type: ignore[index]
            step.operation, step.kind, step.agent_name = "invoke_agent", "agent", name
            step.messages_converter = extract.agent_messages
        elif graph:
            step.operation, step.kind, step.agent_name = "invoke_workflow", "workflow", name
            step.messages_converter = extract.agent_messages
        elif metadata.get("langgraph_node") == name:
            step.kind, step.framework = "node", "langgraph"
            step.extras["node"] = name
            if isinstance(metadata.get("langgraph_step"), int):
                step.extras["step"] = metadata["langgraph_step"]
        self._start(step, run_id, parent_run_id)

    @guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        op = self._pop(run_id)
        if op is not None and isinstance(op.record, StepInvocation):
            op.record.outputs = outputs
            op.end()

    @guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        op = self._pop(run_id)
        if op is None or not isinstance(op.record, StepInvocation):
            return
        if isinstance(error, GeneratorExit):  # the consumer stopped reading the stream
            op.end("closed_early")
        elif {k.__name__ for k in type(error).__mro__} & _CONTROL_FLOW:
            op.record.framework = "langgraph"
            op.record.extras["interrupted"] = type(error).__name__
            op.end()
        else:
            op.fail(error)

    @guarded
    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        op = self.op(run_id)
        if op is not None and isinstance(op.record, StepInvocation):
            op.agent_action(getattr(action, "tool", None), getattr(action, "tool_input", None))

    @guarded
    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        op = self.op(run_id)
        if op is not None and isinstance(op.record, StepInvocation):
            op.agent_finish(getattr(finish, "return_values", None))

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
        name = extract.run_name(serialized, kwargs, "tool")
        parent = self.op(parent_run_id)
        trace_id = parent.trace_id if parent is not None else current_trace_id()
        given = kwargs.get("tool_call_id")
        call_id = self._take_call(trace_id if trace_id is not None else _loose(), name,
                                  inputs if inputs is not None else input_str,
                                  given if isinstance(given, str) and given else None)
        tool = ToolInvocation(name=name, call_id=call_id, tool_type="function",
                              description=description if isinstance(description, str) and description else None,
                              arguments=inputs if inputs is not None else input_str,
                              tags=extract.user_tags(tags), metadata=extract.user_metadata(metadata),
                              conversation_id=extract.conversation_id(metadata or {}))
        op = self.recorder.start(tool, parent=parent)
        self._add(run_id, op or None, parent_run_id)

    @guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        op = self._pop(run_id)
        if op is not None and isinstance(op.record, ToolInvocation):
            try:
                op.record.result = extract.tool_output(output)
                if op.record.call_id is None:  # langchain-core 0.3 names it only on the ToolMessage
                    returned = getattr(output, "tool_call_id", None)
                    op.record.call_id = returned if isinstance(returned, str) and returned else None
            except Exception as exc:  # noqa: BLE001
                report("langchain.tool_output", exc)
            op.end()

    @guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        op = self._pop(run_id)
        if op is not None and isinstance(op.record, ToolInvocation):
            op.fail(error)

    # ---- retrievers --------------------------------------------------------------------

    @guarded
    def on_retriever_start(self, serialized: Dict[str, Any], query: str, *, run_id: UUID,
                           parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
                           metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        if self._skip(tags):
            self._add(run_id, None, parent_run_id)
            return
        name = extract.run_name(serialized, kwargs, "retriever")
        step = StepInvocation(name=name, kind="retriever", operation="retrieval", data_source_id=name,
                              query=query if isinstance(query, str) else None,
                              tags=extract.user_tags(tags), metadata=extract.user_metadata(metadata),
                              conversation_id=extract.conversation_id(metadata or {}))
        slot = RETRIEVER_SLOT.get()
        if slot is None or slot[0] is not None:
            slot = None
        else:
            step.top_k = slot[1]  # the retriever's k, read from it by the invoke wrapper
        op = self._start(step, run_id, parent_run_id)
        if slot is not None and op:
            slot[0] = op

    @guarded
    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        op = self._pop(run_id)
        if op is None or not isinstance(op.record, StepInvocation):
            return
        try:
            op.record.documents = extract.documents(documents)
        except Exception as exc:  # noqa: BLE001
            report("langchain.documents", exc)
        op.end()

    @guarded
    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        op = self._pop(run_id)
        if op is not None and isinstance(op.record, StepInvocation):
            op.fail(error)


def _output_messages(result: Any, inv: LLMInvocation) -> None:
    """The core's converter for a model's output messages."""
    inv.output_messages = extract.output_messages(result)


def _chat_messages(batch: List[Any], inv: LLMInvocation) -> None:
    """The core's converter for a chat model's input messages."""
    inv.input_messages = extract.messages(batch)


def _loose() -> Tuple[str, int]:
    """Where the tool calls of runs made outside any span are kept: per thread."""
    return ("outside any span", threading.get_ident())


def _is_agent_run(name: str, serialized: Any, metadata: Dict[str, Any]) -> bool:
    """An agent's own run: ``AgentExecutor`` (by name, or by class when its iterator streams
    it), or a run named by its ``lc_agent_name`` metadata (``create_agent``, or the app's own
    ``with_config(run_name=x, metadata={"lc_agent_name": x})``; its children inherit the
    metadata under other names)."""
    if name == "AgentExecutor" or metadata.get("lc_agent_name") == name:
        return True
    ids = serialized.get("id") if isinstance(serialized, dict) else None
    return isinstance(ids, list) and bool(ids) and ids[-1] == "AgentExecutor"


def _reported_usage(owner: Operation) -> bool:
    """The API's usage reached the owner's record (from the SDK or from LangChain's result)."""
    inv = owner.record
    return inv.input_tokens is not None or inv.output_tokens is not None or any(
        c.input_tokens is not None or c.output_tokens is not None for c in owner.contributions or ())


def _share(inv: LLMInvocation, owner: LLMInvocation) -> None:
    """``inv`` was answered by ``owner``'s request: its tokens and the request's metrics are
    counted on ``owner``; this run keeps its span, marked as such, with the request's ids."""
    inv.counted_elsewhere = True
    for name in ("response_id", "server_address", "server_port"):
        if getattr(inv, name) is None:
            setattr(inv, name, getattr(owner, name))
