"""One generic sync and one async wrapper for every traced SDK method.

An *endpoint* (a small extractor module: :mod:`.chat`, :mod:`.completions`,
:mod:`.embeddings`, :mod:`.responses`) supplies ``start(resource, kwargs)`` ->
invocation, ``end(inv, result, kwargs)`` and a ``StreamState`` class; the wrapper does
the rest: suppression, the SDK call inside the invocation's context, errors passed
through unchanged, streams proxied, raw responses read without being consumed.
"""

from __future__ import annotations

import contextvars
import weakref
from typing import Any, Callable, Dict

import wrapt
from openai import AsyncStream, Stream

from llm_otel.core.guard import report
from llm_otel.core.invocation import LLMInvocation
from llm_otel.core.recorder import Recorder, suppressed

from .streams import TracedAsyncStream, TracedStream, Tracker

try:
    from openai._legacy_response import LegacyAPIResponse
except ImportError:  # pragma: no cover
    LegacyAPIResponse = ()  # type: ignore[assignment,misc]
try:
    from openai._response import APIResponse, AsyncAPIResponse
except ImportError:  # pragma: no cover
    APIResponse = AsyncAPIResponse = ()  # type: ignore[assignment,misc]

# Set while a traced SDK call runs: an inner traced call (a client-level wrapper over the
# global one, an old SDK's ``parse`` calling ``create``) then calls straight through, so
# one API call is one record.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_otel_openai_call", default=False)


def _start(endpoint: Any, recorder: Recorder, resource: Any, kwargs: Dict[str, Any]) -> Any:
    try:
        inv = endpoint.start(resource, kwargs)
    except Exception as exc:  # noqa: BLE001
        report(f"openai {endpoint.__name__} request", exc)
        return None
    return recorder.start_llm(inv)  # guarded: None on our own failure


def _finish(endpoint: Any, recorder: Recorder, inv: LLMInvocation, kwargs: Dict[str, Any], result: Any) -> Any:
    """Record ``result`` and return what the caller gets (the result, or a traced stream)."""
    try:
        if isinstance(result, Stream):
            return TracedStream(result, Tracker(recorder, inv, endpoint.StreamState(inv, kwargs)))
        if isinstance(result, AsyncStream):
            return TracedAsyncStream(result, Tracker(recorder, inv, endpoint.StreamState(inv, kwargs)))
        if isinstance(result, LegacyAPIResponse):
            return _raw_response(endpoint, recorder, inv, kwargs, result)
        if isinstance(result, (APIResponse, AsyncAPIResponse)):
            return _streamed_response(endpoint, recorder, inv, kwargs, result)
        endpoint.end(inv, result, kwargs)
    except Exception as exc:  # noqa: BLE001
        report(f"openai {endpoint.__name__} response", exc)
    recorder.stop_llm(inv)
    return result


def _raw_response(endpoint: Any, recorder: Recorder, inv: LLMInvocation, kwargs: Dict[str, Any],
                  raw: Any) -> Any:
    """``with_raw_response``: read the parsed value the SDK caches, so the caller's own
    ``.parse()`` returns the very same object (a traced stream for ``stream=True``)."""
    try:
        parsed = raw.parse()
    except Exception:  # noqa: BLE001 - e.g. a structured-output parser rejecting the reply:
        recorder.stop_llm(inv)  # the caller's own .parse() raises it again, where it belongs
        return raw
    if isinstance(parsed, (Stream, AsyncStream)):
        traced = _finish(endpoint, recorder, inv, kwargs, parsed)
        cache = getattr(raw, "_parsed_by_type", None)
        if isinstance(cache, dict):
            for key, value in list(cache.items()):
                if value is parsed:
                    cache[key] = traced
        return raw
    endpoint.end(inv, parsed, kwargs)
    recorder.stop_llm(inv)
    return raw


def _streamed_response(endpoint: Any, recorder: Recorder, inv: LLMInvocation, kwargs: Dict[str, Any],
                       response: Any) -> Any:
    """``with_streaming_response``: the body is the caller's to read, so nothing is read
    here. The invocation ends when the caller parses it (with the parsed data), closes it
    or drops it."""
    tracker = Tracker(recorder, inv, _ParsedState(endpoint, kwargs))
    if isinstance(response, AsyncAPIResponse):
        return TracedAsyncAPIResponse(response, tracker)
    return TracedAPIResponse(response, tracker)


class _ParsedState:
    """Stream state for a streamed response: receives at most one parsed value."""

    def __init__(self, endpoint: Any, kwargs: Dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.kwargs = kwargs
        self.parsed: Any = None

    def chunk(self, inv: LLMInvocation, parsed: Any) -> None:
        self.parsed = parsed

    def finish(self, inv: LLMInvocation) -> None:
        if self.parsed is not None:
            self.endpoint.end(inv, self.parsed, self.kwargs)


class TracedAPIResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, response: Any, tracker: Tracker) -> None:
        super().__init__(response)
        self._self_tracker = tracker
        weakref.finalize(self, tracker.finish)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        tracker = self._self_tracker
        if tracker.done or args or kwargs.get("to") is not None:
            return parsed
        if isinstance(parsed, Stream):  # stream=True: the stream carries the data
            tracker.done = True
            return TracedStream(parsed, Tracker(tracker.recorder, tracker.inv,
                                                tracker.state.endpoint.StreamState(tracker.inv,
                                                                                   tracker.state.kwargs)))
        tracker.state.parsed = parsed
        tracker.finish()
        return parsed

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tracker.finish()


class TracedAsyncAPIResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, response: Any, tracker: Tracker) -> None:
        super().__init__(response)
        self._self_tracker = tracker
        weakref.finalize(self, tracker.finish)

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = await self.__wrapped__.parse(*args, **kwargs)
        tracker = self._self_tracker
        if tracker.done or args or kwargs.get("to") is not None:
            return parsed
        if isinstance(parsed, AsyncStream):
            tracker.done = True
            return TracedAsyncStream(parsed, Tracker(tracker.recorder, tracker.inv,
                                                     tracker.state.endpoint.StreamState(tracker.inv,
                                                                                        tracker.state.kwargs)))
        tracker.state.parsed = parsed
        tracker.finish()
        return parsed

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_tracker.finish()


def sync_wrapper(endpoint: Any, recorder: Recorder) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
        if _IN_CALL.get() or suppressed():
            return wrapped(*args, **kwargs)
        inv = _start(endpoint, recorder, instance, kwargs)
        if inv is None:
            return wrapped(*args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            with recorder.activate(inv):
                result = wrapped(*args, **kwargs)
        except BaseException as exc:
            recorder.fail_llm(inv, exc)
            raise
        finally:
            _IN_CALL.reset(token)
        return _finish(endpoint, recorder, inv, kwargs, result)

    return wrapper


def async_wrapper(endpoint: Any, recorder: Recorder) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
        if _IN_CALL.get() or suppressed():
            return await wrapped(*args, **kwargs)
        inv = _start(endpoint, recorder, instance, kwargs)
        if inv is None:
            return await wrapped(*args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            with recorder.activate(inv):
                result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            recorder.fail_llm(inv, exc)
            raise
        finally:
            _IN_CALL.reset(token)
        return _finish(endpoint, recorder, inv, kwargs, result)

    return wrapper
