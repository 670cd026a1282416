"""LangChain instrumentation: every run a span, every model call one GenAI span.

Our callback handler is added to every ``BaseCallbackManager`` as it is built, so users pass
nothing; runs become records (LLM calls, tools, chains, retrievers, agents, LangGraph nodes)
and the core turns them into spans and metrics. A few wrappers make a run's span current for
the code that runs inside it, so the OpenAI SDK call under ``ChatOpenAI`` merges into the
LangChain LLM span instead of making a second one, and a retriever's query embedding nests
under the retriever's span.
"""

from __future__ import annotations

from typing import Any, Collection, List, Optional, Tuple

import wrapt

from llm_otel.core import LibraryInstrumentor, patch, recorder_for, unpatch

_PATCHES: List[Tuple[str, str, str]] = [
    # (module, "Class.method", Wrappers method)
    ("langchain_core.callbacks.base", "BaseCallbackManager.__init__", "manager_init"),
    ("langchain_core.runnables.config", "_set_config_context", "config_context"),
    ("langchain_core.language_models.chat_models", "BaseChatModel._generate_with_cache", "generate"),
    ("langchain_core.language_models.chat_models", "BaseChatModel._agenerate_with_cache", "agenerate"),
    ("langchain_core.language_models.chat_models", "BaseChatModel.stream", "stream"),
    ("langchain_core.language_models.chat_models", "BaseChatModel.astream", "astream"),
    ("langchain_core.language_models.llms", "BaseLLM.generate", "keep_prompts"),
    ("langchain_core.language_models.llms", "BaseLLM.agenerate", "akeep_prompts"),
    ("langchain_core.language_models.llms", "BaseLLM._generate_helper", "generate_helper"),
    ("langchain_core.language_models.llms", "BaseLLM._agenerate_helper", "agenerate_helper"),
    ("langchain_core.language_models.llms", "BaseLLM.stream", "stream"),
    ("langchain_core.language_models.llms", "BaseLLM.astream", "astream"),
    ("langchain_core.retrievers", "BaseRetriever.invoke", "retriever_invoke"),
    ("langchain_core.retrievers", "BaseRetriever.ainvoke", "retriever_ainvoke"),
]
# applied when the app imports LangGraph (if ever): no LangGraph import for LangChain-only apps
_LANGGRAPH_TRIGGER = "langgraph.pregel.main"
_LANGGRAPH_PATCHES: List[Tuple[str, str, str]] = [
    ("langgraph._internal._runnable", "_set_config_context", "config_context"),
    ("langgraph.pregel.main", "Pregel.stream", "graph_stream"),
    ("langgraph.pregel.main", "Pregel.astream", "graph_astream"),
]


class LangChainInstrumentor(LibraryInstrumentor):
    """``LangChainInstrumentor().instrument()``; also loaded by ``opentelemetry-instrument``."""

    _handler: Optional[Any] = None
    _wrappers: Optional[Any] = None
    _applied: List[Tuple[str, str]] = []

    trigger_module = "langchain_core"

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("langchain-core >= 0.3",)

    def _instrument(self, **kwargs: Any) -> None:
        from .handler import OTelCallbackHandler
        from .wrappers import Wrappers

        recorder = recorder_for(kwargs)
        handler = OTelCallbackHandler(recorder, max_runs=int(kwargs.get("max_runs") or 10_000))
        wrappers = Wrappers(handler)
        self._handler, self._wrappers, self._applied = handler, wrappers, []
        self._patch(_PATCHES, wrappers)
        wrapt.register_post_import_hook(lambda _module: self._patch(_LANGGRAPH_PATCHES, wrappers),
                                        _LANGGRAPH_TRIGGER)

    def _patch(self, patches: List[Tuple[str, str, str]], wrappers: Any) -> None:
        if self._wrappers is not wrappers:
            return  # uninstrumented (or instrumented anew) before the module was imported
        for module, name, method in patches:
            if patch(module, name, getattr(wrappers, method)):
                self._applied.append((module, name))

    def _rebind(self, recorder: Any) -> None:
        if self._handler is not None:
            self._handler.recorder = recorder

    def _uninstrument(self, **kwargs: Any) -> None:
        for module, name in self._applied:
            unpatch(module, name)
        if self._wrappers is not None:
            self._wrappers.unwrap_lazy()
        if self._handler is not None:
            self._handler.enabled = False  # managers built earlier still hold it: make it inert
        self._handler, self._wrappers, self._applied = None, None, []

    @property
    def handler(self) -> Any:
        """The callback handler in use (None when not instrumented)."""
        return self._handler


__all__ = ["LangChainInstrumentor"]
