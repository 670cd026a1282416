"""Traced streams: the caller keeps an object that IS still an ``openai.Stream`` /
``AsyncStream`` (a wrapt proxy), and the operation ends exactly once.

A stream ends when its HTTP response is released, whoever releases it: the SDK at the
end of the events, ``close()``, a ``with`` exit, or the SDK's own helpers
(``chat.completions.stream()``, ``responses.stream()``, a streaming raw response), which
close the response directly, bypassing the stream object. So the end is hooked on the
response's ``close``/``aclose``; exhaustion and errors are seen on the proxy, and an
abandoned stream ends when it is garbage collected (``weakref.finalize`` on the proxy,
holding only the tracker, never the stream).
"""

from __future__ import annotations

import weakref
from typing import Any

import wrapt

from llm_otel.core import report


class Tracker:
    """The end-once bookkeeping shared by a proxy, its response hook and its finalizer."""

    __slots__ = ("op", "state", "_open", "reading", "closed_while_reading", "__weakref__")

    def __init__(self, op: Any, state: Any) -> None:
        self.op = op
        self.state = state
        self._open = [True]  # popped by the one end (atomic)
        # the SDK (or httpx) closes the response inside a read that then ends or raises:
        # the read says which it was
        self.reading = False
        self.closed_while_reading = False

    def chunk(self, item: Any) -> None:
        try:
            self.op.chunk()
            self.state.chunk(item)
        except Exception as exc:  # noqa: BLE001 - never break the caller's loop
            report("openai stream chunk", exc)

    def _take(self) -> bool:
        try:
            self._open.pop()
            return True
        except IndexError:
            return False

    def _collect(self) -> None:
        try:
            self.state.finish(self.op.record)
        except Exception as exc:  # noqa: BLE001
            report("openai stream finish", exc)

    def _complete(self) -> bool:
        try:
            return bool(self.state.complete)
        except Exception:  # noqa: BLE001
            return False

    def finish(self, reason: Any = None) -> None:
        if self._take():
            self._collect()
            self.op.end(reason)

    def closed(self) -> None:
        """The response was released: the end, or an early close."""
        if self.reading:
            self.closed_while_reading = True
            return
        self.finish(None if self._complete() else "closed_early")

    def abandoned(self) -> None:
        self.finish(None if self._complete() else "abandoned")

    def fail(self, error: BaseException) -> None:
        if self._take():
            self._collect()  # what arrived before the error is still worth recording
            self.op.fail(error)

    def hand_over(self) -> None:
        """Another tracker takes over the operation (a raw response parsed into a stream)."""
        self._take()


def watch_close(response: Any, tracker: Tracker) -> None:
    """End ``tracker`` when the HTTP response is closed, by whatever path."""
    if response is None:
        return
    try:
        close = getattr(response, "close", None)
        if close is not None:
            def closing(*args: Any, **kwargs: Any) -> Any:
                try:
                    return close(*args, **kwargs)
                finally:
                    tracker.closed()

            response.close = closing
        aclose = getattr(response, "aclose", None)
        if aclose is not None:
            async def aclosing(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await aclose(*args, **kwargs)
                finally:
                    tracker.closed()

            response.aclose = aclosing
    except Exception as exc:  # noqa: BLE001 - a response we cannot hook still ends on close()/GC
        report("openai watch response close", exc)


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A sync ``openai.Stream`` that reports each chunk and ends its operation once."""

    def __init__(self, stream: Any, tracker: Tracker) -> None:
        super().__init__(stream)
        self._self_tracker = tracker
        self._self_finalizer = weakref.finalize(self, tracker.abandoned)
        watch_close(getattr(stream, "response", None), tracker)

    def __iter__(self) -> "TracedStream":
        return self

    def __next__(self) -> Any:
        tracker = self._self_tracker
        tracker.reading = True
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            tracker.finish()
            raise
        except BaseException as exc:
            tracker.fail(exc)
            raise
        finally:
            tracker.reading = False
        tracker.chunk(item)
        if tracker.closed_while_reading:
            tracker.closed()
        return item

    def __enter__(self) -> "TracedStream":
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_tracker.closed()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tracker.closed()


class TracedAsyncStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """An ``openai.AsyncStream`` that reports each chunk and ends its operation once."""

    def __init__(self, stream: Any, tracker: Tracker) -> None:
        super().__init__(stream)
        self._self_tracker = tracker
        self._self_finalizer = weakref.finalize(self, tracker.abandoned)
        watch_close(getattr(stream, "response", None), tracker)

    def __aiter__(self) -> "TracedAsyncStream":
        return self

    async def __anext__(self) -> Any:
        tracker = self._self_tracker
        tracker.reading = True
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            tracker.finish()
            raise
        except BaseException as exc:
            tracker.fail(exc)
            raise
        finally:
            tracker.reading = False
        tracker.chunk(item)
        if tracker.closed_while_reading:
            tracker.closed()
        return item

    async def __aenter__(self) -> "TracedAsyncStream":
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_tracker.closed()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_tracker.closed()
