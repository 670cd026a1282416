"""``usage()``: tokens, requests and cost of every LLM call made inside a block.

::

    with llm_otel.usage() as u:          # or: async with llm_otel.usage() as u:
        chain.invoke(...)
    print(u.total_tokens, u.cost_usd, u.by_model)

Built like langchain_core's ``get_openai_callback``, but fed by the core, so every
instrumentor counts: a core end hook adds each recorded LLM call to the counters that
are active *in the context where the call ran* (a ContextVar holding a stack of them;
a lock around each counter's totals). So:

- ``asyncio.gather`` / tasks created inside the block count in it; a task created
  before the block runs in the context it copied then, and does not;
- threads count when they run in a copy of the block's context
  (``contextvars.copy_context().run``, a ``ThreadPoolExecutor`` given the context);
- nested blocks each count what ran inside them.

The same hook prices each call (:mod:`llm_otel.usage.pricing`) and sets
``inv.cost_usd``, which the core records on the LLM span as ``llm_otel.cost.usd``.

What is counted where: generation calls (chat, text completion, Responses) in
``input_tokens`` / ``output_tokens`` / ``requests``; embeddings apart in
``embedding_tokens`` / ``embedding_requests`` (as LlamaIndex's ``TokenCountingHandler``
keeps them); ``total_tokens`` and ``cost_usd`` cover both. Tokens the API did not report
and that were counted locally are never mixed in: they are ``estimated_input_tokens`` /
``estimated_output_tokens`` (and ``estimated_cost_usd``).
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import types
import weakref
from typing import Any, Dict, Optional, Tuple

from llm_otel.core import LLMInvocation, add_end_hook
from llm_otel.core.forksafe import ForkSafeLock
from llm_otel.usage import pricing
from llm_otel.usage.pricing import Price, cost_usd, price_for, reload_prices, set_price

__all__ = ["ModelUsage", "Price", "Usage", "cost_usd", "price_for", "reload_prices", "set_price", "usage"]

_active: contextvars.ContextVar[Tuple["Usage", ...]] = contextvars.ContextVar("llm_otel_usage", default=())


SETTLE_TIMEOUT_S = 5.0  # the longest a read waits for the cost and estimates of calls that ended


class ModelUsage:
    """Counts for one model (also the base of :class:`Usage`).

    A call's reported tokens and requests are counted the moment it ends. Its cost and any
    local estimate need data that may still be loading then (the price table at start-up,
    an encoding): they follow once it is there, and reading them waits for that (at most
    ``SETTLE_TIMEOUT_S``), so what a block says after its calls have ended is complete."""

    def __init__(self, owner: Optional["Usage"] = None) -> None:
        self._owner = owner
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_input_tokens = 0
        self.reasoning_tokens = 0
        self.requests = 0
        self.failed_requests = 0
        self.embedding_tokens = 0
        self.embedding_requests = 0
        self._estimated_input_tokens = 0
        self._estimated_output_tokens = 0
        self._unpriced = 0
        self._cost = 0.0
        self._estimated_cost = 0.0

    def _settle(self) -> None:
        if self._owner is not None:
            self._owner._settle()

    @property
    def total_tokens(self) -> int:
        """Every token the API reported: input, output and embeddings."""
        return self.input_tokens + self.output_tokens + self.embedding_tokens

    @property
    def cost_usd(self) -> Optional[float]:
        """Total cost in USD of the reported usage; None when any call with usage had an
        unknown price."""
        self._settle()
        return None if self._unpriced else self._cost

    @property
    def unpriced_requests(self) -> int:
        """Calls with usage whose model has no price."""
        self._settle()
        return self._unpriced

    @property
    def estimated_input_tokens(self) -> int:
        """Input tokens counted locally for calls whose API reported none (an estimate)."""
        self._settle()
        return self._estimated_input_tokens

    @property
    def estimated_output_tokens(self) -> int:
        """Output tokens counted locally for calls whose API reported none (an estimate)."""
        self._settle()
        return self._estimated_output_tokens

    @property
    def estimated_cost_usd(self) -> float:
        """Cost of the locally estimated tokens (an estimate, never part of ``cost_usd``)."""
        self._settle()
        return self._estimated_cost

    def _count(self, inv: LLMInvocation) -> None:
        """The call's reported usage, final when it ends."""
        if inv.operation == "embeddings":
            self.embedding_requests += inv.requests
            self.embedding_tokens += inv.input_tokens or 0
        else:
            self.requests += inv.requests
            self.input_tokens += inv.input_tokens or 0
            self.output_tokens += inv.output_tokens or 0
            self.cached_input_tokens += inv.cache_read_input_tokens or 0
            self.reasoning_tokens += inv.reasoning_output_tokens or 0
        self.failed_requests += inv.error_type is not None

    def _complete(self, inv: LLMInvocation, estimated_cost: Optional[float]) -> None:
        """What followed: the local estimates and the cost."""
        self._estimated_input_tokens += inv.estimated_input_tokens or 0
        self._estimated_output_tokens += inv.estimated_output_tokens or 0
        if inv.input_tokens is not None or inv.output_tokens is not None:
            if inv.cost_usd is not None:
                self._cost += inv.cost_usd
            else:
                self._unpriced += 1
        if estimated_cost is not None:
            self._estimated_cost += estimated_cost

    def _fields(self) -> Dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens, "cached_input_tokens": self.cached_input_tokens,
                "reasoning_tokens": self.reasoning_tokens, "requests": self.requests,
                "failed_requests": self.failed_requests, "embedding_tokens": self.embedding_tokens,
                "embedding_requests": self.embedding_requests,
                "estimated_input_tokens": self._estimated_input_tokens,
                "estimated_output_tokens": self._estimated_output_tokens,
                "cost_usd": None if self._unpriced else self._cost,
                "estimated_cost_usd": self._estimated_cost}

    def as_dict(self) -> Dict[str, Any]:
        self._settle()
        return self._fields()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"{type(self).__name__}({fields})"


class Usage(ModelUsage):
    """The counters of one ``usage()`` block; read them during or after it.

    ``by_model`` maps the model that answered (the response model, else the requested
    one) to its own :class:`ModelUsage`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._by_model: Dict[str, ModelUsage] = {}
        self._lock = ForkSafeLock()
        self._settled = threading.Condition(threading.Lock())
        self._pending = 0  # calls counted whose estimates and cost have not followed yet
        self._tokens: list = []

    @property
    def by_model(self) -> Dict[str, ModelUsage]:
        self._settle()
        return self._by_model

    def add(self, inv: LLMInvocation, estimated_cost: Optional[float] = None) -> None:
        """Count one finished LLM call whole (the core's end hooks do it in two steps)."""
        self._count_call(inv, pending=False)
        self._complete_call(inv, estimated_cost, pending=False)

    def _model(self, inv: LLMInvocation) -> ModelUsage:
        model = inv.response_model or inv.request_model or "unknown"
        per_model = self._by_model.get(model)
        if per_model is None:
            per_model = self._by_model[model] = ModelUsage(self)
        return per_model

    def _count_call(self, inv: LLMInvocation, pending: bool = True) -> None:
        with self._lock:
            self._count(inv)
            self._model(inv)._count(inv)
        if pending:
            with self._settled:
                self._pending += 1

    def _complete_call(self, inv: LLMInvocation, estimated_cost: Optional[float], pending: bool = True) -> None:
        with self._lock:
            self._complete(inv, estimated_cost)
            self._model(inv)._complete(inv, estimated_cost)
        if pending:
            with self._settled:
                self._pending = max(0, self._pending - 1)
                if not self._pending:
                    self._settled.notify_all()

    def _settle(self) -> None:
        if self._pending:  # a call's estimates or cost wait for data still loading
            with self._settled:
                self._settled.wait_for(lambda: not self._pending, SETTLE_TIMEOUT_S)

    def _after_fork_in_child(self) -> None:
        """What the parent was still loading completes in the parent only."""
        self._settled = threading.Condition(threading.Lock())
        self._pending = 0

    def as_dict(self) -> Dict[str, Any]:
        self._settle()
        out = self._fields()
        out["by_model"] = {name: m._fields() for name, m in self._by_model.items()}
        return out

    # ---- the block -------------------------------------------------------------------

    def __enter__(self) -> "Usage":
        self._tokens.append(_active.set(_active.get() + (self,)))
        _open.add(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        token = self._tokens.pop() if self._tokens else None
        try:
            if token is None:
                raise ValueError("no token")
            _active.reset(token)
        except ValueError:  # exited in another context than entered: just drop this one
            _active.set(tuple(u for u in _active.get() if u is not self))

    async def __aenter__(self) -> "Usage":
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)


_open: "weakref.WeakSet[Usage]" = weakref.WeakSet()  # blocks entered and still referenced


def _after_fork_in_child() -> None:
    for counter in list(_open):
        counter._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def usage() -> Usage:
    """Count tokens, requests and cost of the LLM calls made inside ``with`` / ``async with``."""
    return Usage()


def active() -> Tuple[Usage, ...]:
    """The ``usage()`` blocks counting in the current context, outermost first."""
    return _active.get()


def _on_llm_ended(inv: LLMInvocation) -> None:
    """Core hook, the moment a call ends: its reported usage counts where it ran."""
    for counter in _active.get():
        counter._count_call(inv)


def _on_llm_complete(inv: LLMInvocation) -> None:
    """Core end hook, once prices (and any estimate) are there: price the call (for its
    span), then complete its count where it ran."""
    if inv.cost_usd is None:
        inv.cost_usd = cost_usd(inv.response_model, inv.input_tokens, inv.output_tokens,
                                inv.cache_read_input_tokens, inv.cache_creation_input_tokens,
                                fallback_model=inv.request_model, provider=inv.provider)
    counters = _active.get()
    if not counters:
        return
    estimated_cost = None
    if inv.estimated_input_tokens is not None or inv.estimated_output_tokens is not None:
        estimated_cost = cost_usd(inv.response_model, inv.estimated_input_tokens, inv.estimated_output_tokens,
                                  fallback_model=inv.request_model, provider=inv.provider)
    for counter in counters:
        counter._complete_call(inv, estimated_cost)


add_end_hook(_on_llm_ended, at_once=True)
add_end_hook(_on_llm_complete, needs=pricing.PRICES)


class _CallableModule(types.ModuleType):
    """``llm_otel.usage`` is this package *and* the ``usage()`` function: calling the
    module opens a block, so ``import llm_otel.usage.pricing`` keeps working too."""

    def __call__(self) -> Usage:
        return Usage()


sys.modules[__name__].__class__ = _CallableModule
