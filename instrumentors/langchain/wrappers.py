"""The wrappers: our handler in every callback manager, and run spans current *inside* runs.

A run's operation is made current only around code that runs inside the run: around the
model methods that call the SDK (claimed, so the OpenAI instrumentor's call contributes to the
LangChain LLM operation), around a retriever's ``_get_relevant_documents`` (its query
embedding nests under it), and in the throw-away context LangChain copies for a run's children
(``_set_config_context``), so tools, lambdas and LangGraph nodes see their own span.
"""

from __future__ import annotations

from functools import partial
from contextvars import ContextVar
from typing import Any, AsyncIterator, Callable, Iterator, List, Optional, Set, Tuple

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from llm_otel.core import ForkSafeLock, Operation, StepInvocation, each_step, each_step_async, report

from . import extract
from .handler import GRAPH_SLOT, PROMPT_KEEPER, RETRIEVER_SLOT, STREAM_SLOT, OTelCallbackHandler


class Wrappers:
    """Holds the handler; every wrapper is a bound method so ``uninstrument`` can drop them all."""

    def __init__(self, handler: OTelCallbackHandler) -> None:
        self.handler = handler
        self._lazy: Set[Tuple[type, str]] = set()
        self._lazy_lock = ForkSafeLock()

    # ---- BaseCallbackManager.__init__ --------------------------------------------------

    def manager_init(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        try:
            handler = self.handler
            if not handler.enabled:
                return
            if handler in instance.inheritable_handlers:
                return
            # copies: the lists the user passed in stay as they were
            instance.handlers = list(instance.handlers)
            instance.inheritable_handlers = list(instance.inheritable_handlers)
            instance.add_handler(handler, True)
        except Exception as exc:  # noqa: BLE001
            report("langchain.manager_init", exc)

    # ---- a run's span current for its children ------------------------------------------

    def config_context(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        """``_set_config_context`` runs inside the context LangChain copies for a run's children.

        That context is thrown away when the children are done, so the attach needs no detach.
        """
        result = wrapped(*args, **kwargs)
        try:
            config = args[0] if args else kwargs.get("config")
            callbacks = config.get("callbacks") if isinstance(config, dict) else None
            op = self.handler.op(getattr(callbacks, "parent_run_id", None))
            if op is not None and not op.ended:
                op.attach_to_copied_context()
        except Exception as exc:  # noqa: BLE001
            report("langchain.config_context", exc)
        return result

    # ---- models: the SDK call sees the LLM span and the claim ------------------------------

    def _llm(self, run_manager: Any) -> Optional[Operation]:
        return self.handler.llm(getattr(run_manager, "run_id", None))

    def generate(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        """``BaseChatModel._generate_with_cache(messages, stop, run_manager, ...)``."""
        op = self._llm(kwargs.get("run_manager", args[2] if len(args) > 2 else None))
        if op is None:
            return wrapped(*args, **kwargs)
        with op.current(claim=True):
            return wrapped(*args, **kwargs)

    async def agenerate(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        op = self._llm(kwargs.get("run_manager", args[2] if len(args) > 2 else None))
        if op is None:
            return await wrapped(*args, **kwargs)
        with op.current(claim=True):
            return await wrapped(*args, **kwargs)

    def _batch_owner(self, args: Any, kwargs: Any) -> Optional[Operation]:
        """A completion LLM sends its batch of prompts as one request for several runs: the
        first run claims it (its span gets the SDK's data and the request's usage); the
        others are told so by the handler and count no tokens of their own."""
        try:
            managers = kwargs.get("run_managers", args[2] if len(args) > 2 else None)
            if not isinstance(managers, list) or not managers:
                return None
            return self.handler.share_request([getattr(m, "run_id", None) for m in managers])
        except Exception as exc:  # noqa: BLE001
            report("langchain.batch_owner", exc)
            return None

    # ``BaseLLM.generate`` / ``agenerate`` start the runs of a completion LLM and make its
    # calls: the runs' text prompts are kept alive for that long, and no longer.

    def keep_prompts(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        token = PROMPT_KEEPER.set([])
        try:
            return wrapped(*args, **kwargs)
        finally:
            PROMPT_KEEPER.reset(token)

    async def akeep_prompts(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        token = PROMPT_KEEPER.set([])
        try:
            return await wrapped(*args, **kwargs)
        finally:
            PROMPT_KEEPER.reset(token)

    def generate_helper(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        """``BaseLLM._generate_helper(prompts, stop, run_managers, ...)``."""
        op = self._batch_owner(args, kwargs)
        if op is None:
            return wrapped(*args, **kwargs)
        with op.current(claim=True):
            return wrapped(*args, **kwargs)

    async def agenerate_helper(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        op = self._batch_owner(args, kwargs)
        if op is None:
            return await wrapped(*args, **kwargs)
        with op.current(claim=True):
            return await wrapped(*args, **kwargs)

    # ``stream()`` calls the subclass's ``_stream`` without its run manager: the stream wrapper
    # opens a slot the handler fills on ``on_chat_model_start``, and ``_stream`` (wrapped on
    # the subclass that defines it, on first use) makes the operation found there current.

    def stream(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        self._ensure_wrapped(type(instance), "_stream", self.inner_stream)
        return _with_slot(wrapped(*args, **kwargs), STREAM_SLOT, [None])

    def astream(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        self._ensure_wrapped(type(instance), "_astream", self.inner_astream)
        self._ensure_wrapped(type(instance), "_stream", self.inner_stream)  # the default _astream runs it
        return _with_aslot(wrapped(*args, **kwargs), STREAM_SLOT, [None])

    def _stream_op(self, kwargs: Any) -> Optional[Operation]:
        op = self._llm(kwargs.get("run_manager"))
        if op is None:
            slot = STREAM_SLOT.get()
            op = slot[0] if slot is not None else None
        return op if op is not None and not op.ended else None

    def inner_stream(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        """Each step of the model's stream runs with the LLM operation current and claimed."""
        op = self._stream_op(kwargs)
        iterator = wrapped(*args, **kwargs)
        return iterator if op is None else op.each_step(iterator, claim=True)

    def inner_astream(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        op = self._stream_op(kwargs)
        iterator = wrapped(*args, **kwargs)
        return iterator if op is None else op.each_step_async(iterator, claim=True)

    # ---- retrievers: the retrieval (query embedding, vector store) sees the retriever's span --
    # ``_get_relevant_documents`` is defined by each retriever class: wrapped on the class that
    # defines it, on first use. Retrievers written without ``run_manager`` get none, so
    # ``invoke`` opens a slot the handler fills on ``on_retriever_start``.

    def retriever_invoke(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        """``BaseRetriever.invoke``."""
        self._ensure_wrapped(type(instance), "_get_relevant_documents", self.retrieve, _abstract_retriever)
        token = RETRIEVER_SLOT.set([None, _top_k(instance, kwargs)])
        try:
            return wrapped(*args, **kwargs)
        finally:
            RETRIEVER_SLOT.reset(token)

    async def retriever_ainvoke(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        cls = type(instance)
        self._ensure_wrapped(cls, "_aget_relevant_documents", self.aretrieve, _abstract_retriever)
        self._ensure_wrapped(cls, "_get_relevant_documents", self.retrieve, _abstract_retriever)  # the default runs it
        token = RETRIEVER_SLOT.set([None, _top_k(instance, kwargs)])
        try:
            return await wrapped(*args, **kwargs)
        finally:
            RETRIEVER_SLOT.reset(token)

    def _retriever_op(self, kwargs: Any) -> Optional[Operation]:
        try:
            run_id = getattr(kwargs.get("run_manager"), "run_id", None)
            op = self.handler.op(run_id) if run_id is not None else None
            if op is None:
                slot = RETRIEVER_SLOT.get()
                op = slot[0] if slot is not None else None
            return op if op is not None and isinstance(op.record, StepInvocation) and not op.ended else None
        except Exception as exc:  # noqa: BLE001
            report("langchain.retriever_op", exc)
            return None

    def retrieve(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        op = self._retriever_op(kwargs)
        if op is None:
            return wrapped(*args, **kwargs)
        with op.current():
            return wrapped(*args, **kwargs)

    async def aretrieve(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        op = self._retriever_op(kwargs)
        if op is None:
            return await wrapped(*args, **kwargs)
        with op.current():
            return await wrapped(*args, **kwargs)

    # ---- LangGraph agents ----------------------------------------------------------------

    def graph_stream(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        """``Pregel.stream``: a graph's own run becomes ``invoke_workflow``, an agent graph's
        ``invoke_agent``."""
        return _with_slot(wrapped(*args, **kwargs), GRAPH_SLOT, [True, _is_agent_graph(instance)])

    def graph_astream(self, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        return _with_aslot(wrapped(*args, **kwargs), GRAPH_SLOT, [True, _is_agent_graph(instance)])

    def _ensure_wrapped(self, cls: type, name: str, wrapper: Callable[..., Any],
                        skip: Optional[Callable[[type], bool]] = None) -> None:
        try:
            owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
            if owner is None or (skip or _core_model)(owner):
                return
            key = (owner, name)
            if key in self._lazy:
                return
            with self._lazy_lock:
                if key in self._lazy:
                    return
                wrapt.wrap_function_wrapper(owner, name, wrapper)
                self._lazy.add(key)
        except Exception as exc:  # noqa: BLE001
            report("langchain.ensure_wrapped", exc)

    def unwrap_lazy(self) -> None:
        with self._lazy_lock:
            for owner, name in self._lazy:
                unwrap(owner, name)
            self._lazy.clear()


def _core_model(owner: type) -> bool:
    """A model's base ``_stream`` raises NotImplementedError; LangChain falls back to generate."""
    return getattr(owner, "__module__", "").startswith("langchain_core.")


def _abstract_retriever(owner: type) -> bool:
    """``BaseRetriever``'s own methods: abstract, or (async) running the sync one in a thread
    with the context copied, where the wrapped sync method activates the span."""
    return owner.__name__ == "BaseRetriever" and owner.__module__ == "langchain_core.retrievers"


def _top_k(retriever: Any, kwargs: Any) -> Any:
    try:
        return extract.top_k(retriever, kwargs)
    except Exception as exc:  # noqa: BLE001
        report("langchain.top_k", exc)
        return None


def _is_agent_graph(graph: Any) -> bool:
    """The shape of ``create_react_agent`` / ``create_agent``: a model node and a ``tools`` node."""
    nodes = getattr(graph, "nodes", None)
    return isinstance(nodes, dict) and "tools" in nodes and ("agent" in nodes or "model" in nodes)


def _with_slot(iterator: Iterator[Any], var: ContextVar, slot: List[Any]) -> Iterator[Any]:
    """Run each step of a stream with ``var`` set to ``slot`` (set and reset in one frame)."""
    return each_step(iterator, partial(var.set, slot), var.reset)


def _with_aslot(iterator: AsyncIterator[Any], var: ContextVar, slot: List[Any]) -> AsyncIterator[Any]:
    return each_step_async(iterator, partial(var.set, slot), var.reset)

