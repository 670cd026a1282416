"""Traced streams: the caller keeps an object that IS still an ``openai.Stream`` /
``AsyncStream`` (a wrapt proxy), and the invocation ends exactly once — on exhaustion,
``close()``, ``with``-exit, an error mid-stream, or garbage collection of an abandoned
stream (``weakref.finalize`` on the proxy; the finalizer holds only the tracker, never
the stream, so it does not keep the stream alive)."""

from __future__ import annotations

import weakref
from typing import Any

import wrapt

from llm_otel.core.guard import report
from llm_otel.core.invocation import LLMInvocation


class Tracker:
    """The end-once bookkeeping shared by a proxy and its finalizer."""

    __slots__ = ("recorder", "inv", "state", "done", "__weakref__")

    def __init__(self, recorder: Any, inv: LLMInvocation, state: Any) -> None:
        self.recorder = recorder
        self.inv = inv
        self.state = state
        self.done = False

    def chunk(self, item: Any) -> None:
        try:
            self.recorder.chunk(self.inv)
            self.state.chunk(self.inv, item)
        except Exception as exc:  # noqa: BLE001 - never break the caller's loop
            report("openai stream chunk", exc)

    def _collect(self) -> None:
        try:
            self.state.finish(self.inv)
        except Exception as exc:  # noqa: BLE001
            report("openai stream finish", exc)

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self._collect()
        self.recorder.stop_llm(self.inv)

    def fail(self, error: BaseException) -> None:
        if self.done:
            return
        self.done = True
        self._collect()  # what arrived before the error is still worth recording
        self.recorder.fail_llm(self.inv, error)


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A sync ``openai.Stream`` that reports each chunk and ends its invocation once."""

    def __init__(self, stream: Any, tracker: Tracker) -> None:
        super().__init__(stream)
        self._self_tracker = tracker
        self._self_finalizer = weakref.finalize(self, tracker.finish)

    def __iter__(self) -> "TracedStream":
        return self

    def __next__(self) -> Any:
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            self._self_tracker.finish()
            raise
        except BaseException as exc:
            self._self_tracker.fail(exc)
            raise
        self._self_tracker.chunk(item)
        return item

    def __enter__(self) -> "TracedStream":
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_tracker.finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tracker.finish()


class TracedAsyncStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """An ``openai.AsyncStream`` that reports each chunk and ends its invocation once."""

    def __init__(self, stream: Any, tracker: Tracker) -> None:
        super().__init__(stream)
        self._self_tracker = tracker
        self._self_finalizer = weakref.finalize(self, tracker.finish)

    def __aiter__(self) -> "TracedAsyncStream":
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_tracker.finish()
            raise
        except BaseException as exc:
            self._self_tracker.fail(exc)
            raise
        self._self_tracker.chunk(item)
        return item

    async def __aenter__(self) -> "TracedAsyncStream":
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_tracker.finish()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_tracker.finish()
