"""The few places LlamaIndex's instrumentation module does not reach.

- Tree building (``GPTTreeIndexBuilder.build_from_nodes``) and sub-questions
  (``SubQuestionQueryEngine._query_subq``) are no dispatcher spans; LlamaIndex reports them
  only to the legacy callback manager (TREE, SUB_QUESTION). They become steps here, current
  for the code inside so the LLM and query spans they run nest under them.
- A streamed OpenAI call runs its SDK request when the stream is first read, after the
  LlamaIndex span has exited. The generator is wrapped so each step of it runs in the
  context the stream was created in: the LLM span current and claimed, so the OpenAI
  instrumentor adds to it instead of making a second span.
- A workflow whose ``Workflow.run`` is itself a sync dispatcher span (llama-index-workflows
  1.x) returns a handler and ends its span in the handler's done-callback, in another
  Context: the span it made current would stay current in the caller's Context after the
  run (the next run would nest under the ended one). ``run`` is called in a copy of the
  caller's Context, which the workflow's tasks, created inside it, inherit.
- A custom LLM's ``astream_chat`` / ``astream_complete`` (``CustomLLM``: MockLLM, the
  app's own models) read its sync stream when first read, also after the span exited:
  its async generator is read with the LLM span current and claimed, so that inner call
  is part of the same span (one span, one count, in the caller's trace) even when no span
  of the app's is current.
"""

from __future__ import annotations

import contextvars
from typing import Any

from llm_otel.core import Recorder, StepInvocation, carry_context, carry_context_async, guarded, suppressed

from . import extract as ex


class Wrappers:
    def __init__(self, recorder: Recorder, tracker: Any) -> None:
        self.recorder = recorder
        self.tracker = tracker

    # ---- TREE --------------------------------------------------------------------------

    @guarded
    def _tree_step(self, instance: Any, args: Any, kwargs: Any) -> StepInvocation:
        nodes = args[0] if args else kwargs.get("nodes")
        step = StepInvocation(name=f"tree {type(instance).__name__}", kind="tree", framework=ex.FRAMEWORK,
                              extras={ex.EVENT_TYPE: "TREE", ex.COMPONENT: type(instance).__name__})
        count = ex.size(nodes)
        if count is not None:
            step.extras[ex.INPUT_NODES] = count
        num_children = getattr(instance, "num_children", None)
        if isinstance(num_children, int):
            step.extras[ex.TREE_CHILDREN] = num_children
        return step

    @guarded
    def _tree_done(self, step: StepInvocation, graph: Any) -> None:
        _count(step, ex.NODES, getattr(graph, "all_nodes", None))
        _count(step, ex.TREE_ROOTS, getattr(graph, "root_nodes", None))

    def tree(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        step = self._tree_step(instance, args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        with self.recorder.start(step):
            graph = wrapped(*args, **kwargs)
            self._tree_done(step, graph)
        return graph

    # ---- SUB_QUESTION ------------------------------------------------------------------

    @guarded
    def _subq_step(self, args: Any, kwargs: Any) -> StepInvocation:
        sub_q = args[0] if args else kwargs.get("sub_q")
        tool = getattr(sub_q, "tool_name", None)
        step = StepInvocation(name=f"sub_question {tool}" if tool else "sub_question", kind="sub_question",
                              inputs=getattr(sub_q, "sub_question", None), framework=ex.FRAMEWORK,
                              extras={ex.EVENT_TYPE: "SUB_QUESTION", ex.COMPONENT: "SubQuestionQueryEngine"})
        if tool:
            step.extras[ex.TOOL_NAME] = str(tool)
        return step

    @guarded
    def _subq_done(self, step: StepInvocation, pair: Any) -> None:
        if pair is None:  # LlamaIndex logs the failure and answers without this sub-question
            step.error_type = "SubQuestionFailed"
        else:
            step.outputs = getattr(pair, "answer", None)
            _count(step, ex.NODES, getattr(pair, "sources", None))

    def sub_question(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        step = self._subq_step(args, kwargs)
        if step is None:
            return wrapped(*args, **kwargs)
        with self.recorder.start(step):
            pair = wrapped(*args, **kwargs)
            self._subq_done(step, pair)
        return pair

    async def asub_question(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        step = self._subq_step(args, kwargs)
        if step is None:
            return await wrapped(*args, **kwargs)
        with self.recorder.start(step):
            pair = await wrapped(*args, **kwargs)
            self._subq_done(step, pair)
        return pair

    # ---- workflow runs that end in another Context ------------------------------------

    def sync_run(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return contextvars.copy_context().run(wrapped, *args, **kwargs)

    # ---- streams read later, in the context they were made in -------------------------

    def stream(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        gen = wrapped(*args, **kwargs)
        if suppressed() or not hasattr(gen, "__next__"):
            return gen
        return carry_context(gen)

    async def astream(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        agen = await wrapped(*args, **kwargs)
        if suppressed() or not hasattr(agen, "__anext__"):
            return agen
        return carry_context_async(agen)

    async def custom_astream(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        agen = await wrapped(*args, **kwargs)
        op = self._stream_op(instance, agen)
        return op.each_step_async(agen, claim=True) if op is not None else agen

    @guarded
    def _stream_op(self, instance: Any, agen: Any) -> Any:
        if suppressed() or not hasattr(agen, "__anext__"):
            return None
        return self.tracker.stream_made_here(instance)


def _count(step: StepInvocation, key: str, value: Any) -> None:
    count = ex.size(value)
    if count is not None:
        step.extras[key] = count
