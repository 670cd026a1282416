"""Run each step of a lazily consumed stream inside a context, and hand its items out of it.

A stream's work (an SDK call underneath, a nested run) happens when the consumer asks for
the next item, often after the call that made the stream has returned. ``enter`` makes
the right span or slot current for exactly that step and ``leave`` undoes it before the
item reaches the consumer, so tokens are always reset in the frame that set them.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Iterator


def each_step(iterator: Iterator[Any], enter: Callable[[], Any], leave: Callable[[Any], Any]) -> Iterator[Any]:
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
            close()


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
            await aclose()


def wrapped_by_each_step(gen: Any) -> bool:
    """True for a generator made by :func:`each_step` / :func:`each_step_async`."""
    code = getattr(gen, "gi_code", None) or getattr(gen, "ag_code", None)
    return code is each_step.__code__ or code is each_step_async.__code__
