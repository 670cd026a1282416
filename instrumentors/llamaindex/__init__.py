"""LlamaIndex instrumentation through ``llama_index.core.instrumentation``.

A span handler and an event handler on the root dispatcher see every component that
LlamaIndex instruments (LLMs, embeddings, retrievers, query engines, synthesizers, node
parsers, rerankers, tools, agents and workflows) without user code; the legacy callback
manager is not used. Spans become records (GenAI ``chat`` / ``text_completion`` /
``embeddings``, ``execute_tool``, ``invoke_agent`` and named steps) and the core turns them
into spans and metrics. An LLM span claims the call, so the OpenAI SDK underneath
LlamaIndex's OpenAI LLM adds to it instead of recording it twice.
"""

from __future__ import annotations

import importlib
from typing import Any, Collection, List, Optional, Tuple

from llm_otel.core import LibraryInstrumentor, patch, recorder_for, unpatch

_PATCHES: List[Tuple[str, str, str]] = [
    # (module, "Class.method", Wrappers method)
    ("llama_index.core.indices.common_tree.base", "GPTTreeIndexBuilder.build_from_nodes", "tree"),
    ("llama_index.core.query_engine.sub_question_query_engine",
     "SubQuestionQueryEngine._query_subq", "sub_question"),
    ("llama_index.core.query_engine.sub_question_query_engine",
     "SubQuestionQueryEngine._aquery_subq", "asub_question"),
    ("llama_index.llms.openai.base", "OpenAI._stream_chat", "stream"),
    ("llama_index.llms.openai.base", "OpenAI._stream_complete", "stream"),
    ("llama_index.llms.openai.base", "OpenAI._astream_chat", "astream"),
    ("llama_index.llms.openai.base", "OpenAI._astream_complete", "astream"),
    ("llama_index.core.llms.custom", "CustomLLM.astream_chat", "custom_astream"),
    ("llama_index.core.llms.custom", "CustomLLM.astream_complete", "custom_astream"),
]


# a Workflow.run that is itself a sync dispatcher span returning a handler (llama-index-workflows
# 1.x, and the workflows inside llama-index-core before it): run in a copy of the caller's Context
_SYNC_RUNS = [("workflows.workflow", "Workflow.run"), ("llama_index.core.workflow.workflow", "Workflow.run")]


def _sync_span_run(module: str, name: str) -> bool:
    try:
        owner = importlib.import_module(module)
        for part in name.split("."):
            owner = getattr(owner, part)
    except (ImportError, AttributeError):
        return False
    return bool(getattr(owner, "__dispatcher_span_decorated__", False))


def _handlers(tracker: Any) -> Tuple[Any, Any]:
    """A span handler and an event handler (pydantic models, as the dispatcher expects).

    The methods call ``tracker`` from this closure rather than through ``self._tracker``:
    a pydantic private attribute is read through ``BaseModel.__getattr__``, which raises
    and catches an AttributeError on every read, three times per LlamaIndex span."""
    enter, exit_, drop, on_event = tracker.enter, tracker.exit, tracker.drop, tracker.event
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
    from pydantic import PrivateAttr

    class LLMOtelSpanHandler(BaseSpanHandler):  # type: ignore[misc,type-arg]
        """Feeds span enter/exit/drop to the tracker; keeps no spans of its own."""

        _tracker: Any = PrivateAttr()

        def __init__(self, tracker: Any) -> None:
            super().__init__()
            self._tracker = tracker

        @classmethod
        def class_name(cls) -> str:
            return "LLMOtelSpanHandler"

        def span_enter(self, id_: str, bound_args: Any, instance: Any = None, parent_id: Optional[str] = None,
                       tags: Any = None, **kwargs: Any) -> None:
            enter(id_, bound_args, instance, parent_id)

        def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                      **kwargs: Any) -> None:
            exit_(id_, result)

        def span_drop(self, id_: str, bound_args: Any, instance: Any = None, err: Any = None,
                      **kwargs: Any) -> None:
            drop(id_, err)

        def new_span(self, *args: Any, **kwargs: Any) -> None:  # unused: span_enter is overridden
            return None

        def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def close(self) -> None:
            """``Dispatcher.shutdown()``: end what is still open."""
            self._tracker.end_all()

    class LLMOtelEventHandler(BaseEventHandler):  # type: ignore[misc]
        _tracker: Any = PrivateAttr()

        def __init__(self, tracker: Any) -> None:
            super().__init__()
            self._tracker = tracker

        @classmethod
        def class_name(cls) -> str:
            return "LLMOtelEventHandler"

        def handle(self, event: Any, **kwargs: Any) -> None:
            on_event(event)

    return LLMOtelSpanHandler(tracker), LLMOtelEventHandler(tracker)


class LlamaIndexInstrumentor(LibraryInstrumentor):
    """``LlamaIndexInstrumentor().instrument()``; also loaded by ``opentelemetry-instrument``.

    Options: ``tracer_provider``, ``meter_provider``, ``max_runs`` (open LlamaIndex spans
    kept; the oldest are ended, marked stale, beyond it) and ``stale_after`` (seconds after
    which a span whose end never came is ended).
    """

    _tracker: Optional[Any] = None
    _wrappers: Optional[Any] = None
    _span_handler: Optional[Any] = None
    _event_handler: Optional[Any] = None
    _applied: List[Tuple[str, str]] = []

    trigger_module = "llama_index.core"

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("llama-index-core >= 0.12",)

    def _instrument(self, **kwargs: Any) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        from .extract import Classes
        from .handler import Tracker
        from .wrappers import Wrappers

        recorder = recorder_for(kwargs)
        tracker = Tracker(recorder, Classes(), max_runs=int(kwargs.get("max_runs") or 10_000),
                          stale_after=float(kwargs.get("stale_after") or 3600.0))
        span_handler, event_handler = _handlers(tracker)
        dispatcher = get_dispatcher()
        dispatcher.add_span_handler(span_handler)
        dispatcher.add_event_handler(event_handler)
        wrappers = Wrappers(recorder, tracker)
        applied = []
        for module, name, method in _PATCHES:
            if patch(module, name, getattr(wrappers, method)):
                applied.append((module, name))
        for module, name in _SYNC_RUNS:
            if _sync_span_run(module, name) and patch(module, name, wrappers.sync_run):
                applied.append((module, name))
        self._tracker, self._span_handler, self._event_handler = tracker, span_handler, event_handler
        self._wrappers, self._applied = wrappers, applied

    def _rebind(self, recorder: Any) -> None:
        if self._tracker is not None:
            self._tracker.recorder = recorder
        if self._wrappers is not None:
            self._wrappers.recorder = recorder

    def _uninstrument(self, **kwargs: Any) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        dispatcher = get_dispatcher()
        dispatcher.span_handlers = [h for h in dispatcher.span_handlers if h is not self._span_handler]
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not self._event_handler]
        for module, name in self._applied:
            unpatch(module, name)
        if self._tracker is not None:
            self._tracker.enabled = False
            self._tracker.end_all()
        self._tracker = self._span_handler = self._event_handler = self._wrappers = None
        self._applied = []


__all__ = ["LlamaIndexInstrumentor"]
