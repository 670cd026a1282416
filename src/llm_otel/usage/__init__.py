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
import sys
import types
from typing import Any, Dict, Optional, Tuple

from llm_otel.core import LLMInvocation, add_end_hook
from llm_otel.core.forksafe import ForkSafeLock
from llm_otel.usage import pricing
from llm_otel.usage.pricing import Price, cost_usd, price_for, reload_prices, set_price

__all__ = ["ModelUsage", "Price", "Usage", "cost_usd", "price_for", "reload_prices", "set_price", "usage"]

_active: contextvars.ContextVar[Tuple["Usage", ...]] = contextvars.ContextVar("llm_otel_usage", default=())


class ModelUsage:
    """Counts for one model (also the base of :class:`Usage`)."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_input_tokens = 0
        self.reasoning_tokens = 0
        self.requests = 0
        self.failed_requests = 0
        self.embedding_tokens = 0
        self.embedding_requests = 0
        self.estimated_input_tokens = 0
        self.estimated_output_tokens = 0
        self.unpriced_requests = 0  # calls with usage whose model has no price
        self._cost = 0.0
        self._estimated_cost = 0.0

    @property
    def total_tokens(self) -> int:
        """Every token the API reported: input, output and embeddings."""
        return self.input_tokens + self.output_tokens + self.embedding_tokens

    @property
    def cost_usd(self) -> Optional[float]:
        """Total cost in USD of the reported usage; None when any call with usage had an
        unknown price."""
        return None if self.unpriced_requests else self._cost

    @property
    def estimated_cost_usd(self) -> float:
        """Cost of the locally estimated tokens (an estimate, never part of ``cost_usd``)."""
        return self._estimated_cost

    def _add(self, inv: LLMInvocation, estimated_cost: Optional[float]) -> None:
        failed = inv.error_type is not None
        if inv.operation == "embeddings":
            self.embedding_requests += inv.requests
            self.embedding_tokens += inv.input_tokens or 0
        else:
            self.requests += inv.requests
            self.input_tokens += inv.input_tokens or 0
            self.output_tokens += inv.output_tokens or 0
            self.cached_input_tokens += inv.cache_read_input_tokens or 0
            self.reasoning_tokens += inv.reasoning_output_tokens or 0
        self.failed_requests += failed
        self.estimated_input_tokens += inv.estimated_input_tokens or 0
        self.estimated_output_tokens += inv.estimated_output_tokens or 0
        if inv.cost_usd is not None and (inv.input_tokens is not None or inv.output_tokens is not None):
            self._cost += inv.cost_usd
        elif inv.input_tokens is not None or inv.output_tokens is not None:
            self.unpriced_requests += 1
        if estimated_cost is not None:
            self._estimated_cost += estimated_cost

    def as_dict(self) -> Dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens, "cached_input_tokens": self.cached_input_tokens,
                "reasoning_tokens": self.reasoning_tokens, "requests": self.requests,
                "failed_requests": self.failed_requests, "embedding_tokens": self.embedding_tokens,
                "embedding_requests": self.embedding_requests,
                "estimated_input_tokens": self.estimated_input_tokens,
                "estimated_output_tokens": self.estimated_output_tokens, "cost_usd": self.cost_usd,
                "estimated_cost_usd": self.estimated_cost_usd}

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
        self.by_model: Dict[str, ModelUsage] = {}
        self._lock = ForkSafeLock()
        self._tokens: list = []

    def add(self, inv: LLMInvocation, estimated_cost: Optional[float] = None) -> None:
        """Count one finished LLM call (the end hook does this for recorded calls)."""
        model = inv.response_model or inv.request_model or "unknown"
        with self._lock:
            self._add(inv, estimated_cost)
            per_model = self.by_model.get(model)
            if per_model is None:
                per_model = self.by_model[model] = ModelUsage()
            per_model._add(inv, estimated_cost)

    def as_dict(self) -> Dict[str, Any]:
        out = super().as_dict()
        out["by_model"] = {name: m.as_dict() for name, m in self.by_model.items()}
        return out

    # ---- the block -------------------------------------------------------------------

    def __enter__(self) -> "Usage":
        self._tokens.append(_active.set(_active.get() + (self,)))
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


def usage() -> Usage:
    """Count tokens, requests and cost of the LLM calls made inside ``with`` / ``async with``."""
    return Usage()


def active() -> Tuple[Usage, ...]:
    """The ``usage()`` blocks counting in the current context, outermost first."""
    return _active.get()


def _on_llm_end(inv: LLMInvocation) -> None:
    """Core end hook: price the call (for its span), then count it where it ran."""
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
        counter.add(inv, estimated_cost)


add_end_hook(_on_llm_end, needs=pricing.PRICES)


class _CallableModule(types.ModuleType):
    """``llm_otel.usage`` is this package *and* the ``usage()`` function: calling the
    module opens a block, so ``import llm_otel.usage.pricing`` keeps working too."""

    def __call__(self) -> Usage:
        return Usage()


sys.modules[__name__].__class__ = _CallableModule
