"""Operations: what the core makes of a record, and the only way to act on it.

``recorder.start(record)`` returns an :class:`Operation`. It is

- the only way to make the record's span current: ``with op.current():``, ``op.each_step``
  for a lazily consumed stream, or ``attach``/``detach`` for a framework whose own enter
  and exit callbacks bracket the work. A token is always detached in the Context it was
  attached in; one taken elsewhere (a done-callback, another task) is dropped instead;
- where streamed chunks are noted (``op.chunk()``);
- ended exactly once, by ``op.end()`` or ``op.fail(error)``, from any thread;
- a context manager for the common case: ``with recorder.start(record) as op:`` makes it
  current for the block and ends it (or fails it, on an exception, which passes through).

``op.current(claim=True)`` marks an LLM call as recorded by this operation: an SDK call
made inside (a framework's model calling the OpenAI SDK) becomes a *contribution* that opens
no span and adds its response and exact usage to this operation when it ends. Every method
is guarded: a fault of ours is logged once and never reaches the app.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any, AsyncIterator, Callable, Iterator, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace

from llm_otel.core.guard import report

# the open Operation that owns the LLM call being made in this context (see claim)
CLAIM = otel_context.create_key("llm_otel.claimed-llm-operation")
# the Operation whose span is current: a new operation's parent (agents, conversations)
CURRENT = otel_context.create_key("llm_otel.current-operation")
# set beside every attach: proves that a detach runs in the Context of its attach
_PROBE: contextvars.ContextVar[Any] = contextvars.ContextVar("llm_otel_attach_probe", default=None)


class Operation:
    """A started record: span, timing and the end-once state (see the module docstring)."""

    __slots__ = ("record", "recorder", "span", "parent", "start_perf", "chunk_perfs", "_open", "contributions",
                 "claims", "_token", "start_name", "__weakref__")

    def __init__(self, recorder: Any, record: Any, span: Any, parent: Optional["Operation"] = None) -> None:
        self.record = record
        self.recorder = recorder
        self.span = span
        self.parent = parent  # the operation this one runs under, if one of ours
        self.start_perf = time.perf_counter()
        self.chunk_perfs: Optional[list] = None
        self._open = [True]  # popped by the one end: list.pop is atomic, so two threads cannot both end
        self.contributions: Optional[list] = None  # SDK calls made under this operation's claim
        self._token: Any = None
        self.start_name: Optional[str] = None  # the name the span started with, before cleaning

    def __bool__(self) -> bool:
        return True

    # ---- context -----------------------------------------------------------------------

    def attach(self, claim: bool = False) -> Any:
        """Make this operation current until :meth:`detach` (which must see the same Context)."""
        try:
            ctx = otel_context.get_current()
            if self.span is not None:
                ctx = otel_context.set_value(CURRENT, self, trace.set_span_in_context(self.span, ctx))
            if claim:
                ctx = otel_context.set_value(CLAIM, self, ctx)
                self.claims = True
            return _PROBE.set(self), otel_context.attach(ctx)
        except Exception as exc:  # noqa: BLE001
            report("operation.attach", exc)
            return None

    @staticmethod
    def detach(token: Any) -> None:
        """Undo :meth:`attach`; a token from another Context (an exit in a done-callback or
        another task) is dropped: that Context is not ours to change."""
        if token is None:
            return
        try:
            _PROBE.reset(token[0])
        except ValueError:
            return
        except Exception as exc:  # noqa: BLE001
            report("operation.detach", exc)
            return
        otel_context.detach(token[1])

    def current(self, claim: bool = False) -> "_Current":
        """``with op.current():`` - this operation's span is current inside the block;
        ``claim=True`` (frameworks' LLM calls) makes SDK calls inside contribute to it."""
        return _Current(self, claim)

    def each_step(self, iterator: Iterator[Any], claim: bool = False) -> Iterator[Any]:
        """``iterator`` with this operation current while each item is produced (not while
        the consumer holds it): a stream's work runs when it is read, after its call returned."""
        return each_step(iterator, lambda: self.attach(claim), self.detach)

    def each_step_async(self, iterator: AsyncIterator[Any], claim: bool = False) -> AsyncIterator[Any]:
        return each_step_async(iterator, lambda: self.attach(claim), self.detach)

    def attach_to_copied_context(self) -> None:
        """Make this operation current for the rest of a Context the caller copied for this
        work alone and discards afterwards (LangChain runs a child in ``copy_context()``):
        there is no later point to detach at, and nothing outlives that Context."""
        self.attach()

    # ---- the with-form -----------------------------------------------------------------

    def __enter__(self) -> "Operation":
        self._token = self.attach()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        token, self._token = self._token, None
        self.detach(token)
        if exc is not None:
            self.fail(exc)
        else:
            self.end()
        return False

    # ---- progress and end --------------------------------------------------------------

    def chunk(self) -> None:
        """One streamed chunk arrived: a clock read and an append."""
        now = time.perf_counter()
        perfs = self.chunk_perfs
        if perfs is None:
            self.chunk_perfs = [now]
        else:
            perfs.append(now)

    @property
    def first_chunk_seen(self) -> bool:
        return self.chunk_perfs is not None

    @property
    def keeps_output(self) -> bool:
        """Whether a stream reader should keep the output it sees: recorded as content,
        or counted locally because the response will carry no usage."""
        return self.recorder.wants_output(self.record)

    @property
    def ended(self) -> bool:
        return not self._open

    @property
    def trace_id(self) -> Optional[int]:
        """The id of the trace this operation's span is in (None without a span)."""
        return self.span.get_span_context().trace_id if self.span is not None else None

    def _take(self) -> bool:
        try:
            self._open.pop()
            return True
        except IndexError:
            return False

    def end(self, reason: Optional[str] = None) -> None:
        """End once. ``reason``: ``"abandoned"`` (its end never came: evicted, garbage
        collected), ``"closed_early"`` (a stream closed before its end)."""
        if self._take():
            self.recorder.finish(self, None, reason)

    def fail(self, error: Optional[BaseException], reason: Optional[str] = None) -> None:
        """End once, as failed by ``error`` (the library's exception, recorded, not raised)."""
        if self._take():
            self.recorder.finish(self, error, reason)

    # ---- agents ------------------------------------------------------------------------

    def agent_action(self, tool_name: Optional[str], arguments: Any = None) -> None:
        """The agent decided to call a tool (an event on its span; arguments are content)."""
        self.recorder.agent_event(self, False, tool_name, arguments, None)

    def agent_finish(self, output: Any = None) -> None:
        """The agent finished (an event on its span; the output is content)."""
        self.recorder.agent_event(self, True, None, None, output)


def current_trace_id() -> Optional[int]:
    """The id of the trace the caller is in, or None outside any."""
    ctx = trace.get_current_span().get_span_context()
    return ctx.trace_id if ctx.is_valid else None


def carry_context(iterator: Iterator[Any]) -> Iterator[Any]:
    """``iterator`` with each step run in the Context current *now* (a stream read later,
    after the call that made it returned, stays in that call's trace and claim)."""
    context = otel_context.get_current()
    return each_step(iterator, lambda: _attach_context(context), Operation.detach)


def carry_context_async(iterator: AsyncIterator[Any]) -> AsyncIterator[Any]:
    context = otel_context.get_current()
    return each_step_async(iterator, lambda: _attach_context(context), Operation.detach)


def _attach_context(context: Any) -> Any:
    return _PROBE.set(context), otel_context.attach(context)


class Contribution(Operation):
    """An SDK call made under a framework's claim: no span of its own; its response and
    exact usage are added to the claiming operation when it ends."""

    __slots__ = ("owner",)

    def __init__(self, recorder: Any, record: Any, owner: Operation) -> None:
        super().__init__(recorder, record, None, owner)
        self.owner = owner

    def attach(self, claim: bool = False) -> Any:
        # the owner's span is current already; a claim made here nests (an LLM wrapper's
        # inner LLM calling the SDK: the SDK call contributes to this one, this one to the owner)
        return super().attach(claim) if claim else None

    def chunk(self) -> None:
        pass  # the framework times the stream it hands out

    @property
    def keeps_output(self) -> bool:
        return self.owner.keeps_output


class NoOperation:
    """What ``start`` returns when nothing is recorded (suppressed, or a fault of ours):
    every method does nothing, and it is false, so callers can simply call through."""

    __slots__ = ()
    record = None
    span = None
    parent = None
    trace_id = None
    ended = True
    first_chunk_seen = False
    keeps_output = False

    def __bool__(self) -> bool:
        return False

    def attach(self, claim: bool = False) -> None:
        return None

    @staticmethod
    def detach(token: Any) -> None:
        pass

    def current(self, claim: bool = False) -> "_Current":
        return _NULL

    def each_step(self, iterator: Any, claim: bool = False) -> Any:
        return iterator

    each_step_async = each_step

    def attach_to_copied_context(self) -> None:
        pass

    def __enter__(self) -> "NoOperation":
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        return False

    def chunk(self) -> None:
        pass

    def end(self, reason: Optional[str] = None) -> None:
        pass

    def fail(self, error: Any, reason: Optional[str] = None) -> None:
        pass

    def agent_action(self, tool_name: Any, arguments: Any = None) -> None:
        pass

    def agent_finish(self, output: Any = None) -> None:
        pass


NOOP = NoOperation()


class _Current:
    """The context manager of :meth:`Operation.current`: a small class rather than a
    ``@contextmanager`` generator, as it runs around every recorded call."""

    __slots__ = ("op", "claim", "token")

    def __init__(self, op: Any, claim: bool) -> None:
        self.op = op
        self.claim = claim
        self.token: Any = None

    def __enter__(self) -> Any:
        if self.op is not None:
            self.token = self.op.attach(self.claim)
        return self.op

    def __exit__(self, *exc_info: Any) -> None:
        token, self.token = self.token, None
        Operation.detach(token)


_NULL = _Current(None, False)


# ---- running each step of a stream inside a context -----------------------------------


def each_step(iterator: Iterator[Any], enter: Callable[[], Any], leave: Callable[[Any], Any]) -> Iterator[Any]:
    """``iterator`` with ``enter()`` before and ``leave(token)`` after producing each item, in
    the same frame, so a token is always reset where it was set; closing closes ``iterator``
    inside the context too."""
    try:
        while True:
            token = enter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                leave(token)
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            token = enter()
            try:
                close()
            finally:
                leave(token)


async def each_step_async(iterator: AsyncIterator[Any], enter: Callable[[], Any],
                          leave: Callable[[Any], Any]) -> AsyncIterator[Any]:
    try:
        while True:
            token = enter()
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            finally:
                leave(token)
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            token = enter()
            try:
                await aclose()
            finally:
                leave(token)


def wrapped_by_each_step(gen: Any) -> bool:
    """True for a generator made by :func:`each_step` / :func:`each_step_async`."""
    code = getattr(gen, "gi_code", None) or getattr(gen, "ag_code", None)
    return code is each_step.__code__ or code is each_step_async.__code__
