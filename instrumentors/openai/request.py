"""One sync and one async wrapper around the SDK's ``request``, the call every API request
goes through.

Wrapping the client's ``request`` rather than each resource method reaches every way an
app can make a call: ``create``/``parse``, the ``beta`` helpers of every SDK version, the
stream helpers, ``with_raw_response`` / ``with_streaming_response`` views (which the SDK
caches per client with the method bound at first use), ``with_options`` copies and
``client.post``. The request body (plus ``extra_body``) is what the API receives, so
every parameter sent is seen.

An *endpoint* (a small extractor module: :mod:`.chat`, :mod:`.completions`,
:mod:`.embeddings`, :mod:`.responses`, :mod:`.retrieve`) supplies ``start(client, body, options)`` -> record,
``end(record, result)`` and a ``StreamState`` class; the wrapper does the rest: the SDK call
inside the operation's context, errors passed through unchanged, streams proxied, raw
responses read without being consumed.
"""

from __future__ import annotations

import contextvars
import importlib
import weakref
from typing import Any, Callable, Dict, Optional, Tuple

import wrapt
from openai import AsyncStream, Stream

from llm_otel.core import register_secret, report

from .streams import TracedAsyncStream, TracedStream, Tracker, watch_close
from .utils import SENTINELS

try:
    from openai._legacy_response import LegacyAPIResponse
except ImportError:  # pragma: no cover
    LegacyAPIResponse = ()  # type: ignore[assignment,misc]
try:
    from openai._response import APIResponse, AsyncAPIResponse
except ImportError:  # pragma: no cover
    APIResponse = AsyncAPIResponse = ()  # type: ignore[assignment,misc]

# Set while a traced request runs: an inner traced request (a client-level wrapper over the
# global one) calls straight through, so one API call is one record.
_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_otel_openai_call", default=False)

_ROUTES: Dict[Tuple[str, str], str] = {
    ("post", "/chat/completions"): "chat",
    ("post", "/completions"): "completions",
    ("post", "/embeddings"): "embeddings",
    ("post", "/responses"): "responses",
}
_RESPONSE_PREFIX = "/responses/"  # GET /responses/{id}: retrieve
_endpoints: Dict[str, Any] = {}


class Binding:
    """The recorder a set of wrappers records to; ``instrument(tracer_provider=...)`` on an
    instrumented SDK re-binds it without re-patching."""

    __slots__ = ("recorder",)

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder


def _route(options: Any) -> Any:
    """The endpoint module for a request, or None for calls that are not traced."""
    try:
        method, url = options.method.lower(), options.url
        name = _ROUTES.get((method, url))
        if name is None and method == "get" and url.startswith(_RESPONSE_PREFIX) \
                and "/" not in url[len(_RESPONSE_PREFIX):]:
            name = "retrieve"
    except Exception:  # noqa: BLE001 - not the options object we know
        return None
    if name is None:
        return None
    endpoint = _endpoints.get(name)
    if endpoint is None:
        endpoint = _endpoints[name] = importlib.import_module(f"{__package__}.{name}")
    return endpoint


def _body(options: Any) -> Optional[Dict[str, Any]]:
    """What the API receives: the JSON body (plus ``extra_body``); a GET's query."""
    body = getattr(options, "json_data", None)
    if body is None and options.method.lower() == "get":
        body = getattr(options, "params", None) or {}
    if not isinstance(body, dict):
        return None
    extra = getattr(options, "extra_json", None)  # extra_body=...: sent as part of the body
    if isinstance(extra, dict) and extra:
        body = {**body, **extra}
    # what was given: None and the SDK's NOT_GIVEN / omit read as absent, so the endpoints
    # read a top-level field with ``body.get(name)`` (a copy: what is sent stays as it is)
    return {key: value for key, value in body.items() if value is not None and not isinstance(value, SENTINELS)}


def _options(args: Any, kwargs: Dict[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs.get("options")


def _start(binding: Binding, client: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
    """(endpoint, operation) for a traced request; (None, None) to call straight through."""
    if _IN_CALL.get():
        return None, None
    options = _options(args, kwargs)
    endpoint = _route(options)
    if endpoint is None:
        return None, None
    try:
        body = _body(options)
        if body is None:
            return None, None
        register_secret(getattr(client, "api_key", None))  # masked wherever it is echoed
        record = endpoint.start(client, body, options)
    except Exception as exc:  # noqa: BLE001
        report(f"openai {endpoint.__name__} request", exc)
        return None, None
    op = binding.recorder.start(record)
    return (endpoint, op) if op else (None, None)


def _finish(endpoint: Any, op: Any, result: Any) -> Any:
    """Record ``result`` and return what the caller gets (the result, or a traced stream)."""
    try:
        if isinstance(result, Stream):
            return TracedStream(result, Tracker(op, endpoint.StreamState(op)))
        if isinstance(result, AsyncStream):
            return TracedAsyncStream(result, Tracker(op, endpoint.StreamState(op)))
        if isinstance(result, LegacyAPIResponse):
            return _raw_response(endpoint, op, result)
        if isinstance(result, (APIResponse, AsyncAPIResponse)):
            return _streamed_response(endpoint, op, result)
        endpoint.end(op.record, result)
    except Exception as exc:  # noqa: BLE001
        report(f"openai {endpoint.__name__} response", exc)
    op.end()
    return result


def _raw_response(endpoint: Any, op: Any, raw: Any) -> Any:
    """``with_raw_response``: read the parsed value the SDK caches, so the caller's own
    ``.parse()`` returns the very same object (a traced stream for ``stream=True``)."""
    try:
        parsed = raw.parse()
    except Exception:  # noqa: BLE001 - e.g. a structured-output parser rejecting the reply:
        op.end()  # the caller's own .parse() raises it again, where it belongs
        return raw
    if isinstance(parsed, (Stream, AsyncStream)):
        traced = _finish(endpoint, op, parsed)
        cache = getattr(raw, "_parsed_by_type", None)
        if isinstance(cache, dict):
            for key, value in list(cache.items()):
                if value is parsed:
                    cache[key] = traced
        return raw
    endpoint.end(op.record, parsed)
    op.end()
    return raw


class _ParsedState:
    """Stream state of a streamed response: at most one parsed value."""

    complete = False

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint
        self.parsed: Any = None

    def chunk(self, parsed: Any) -> None:
        self.parsed = parsed
        self.complete = True

    def finish(self, inv: Any) -> None:
        if self.parsed is not None:
            self.endpoint.end(inv, self.parsed)


def _streamed_response(endpoint: Any, op: Any, response: Any) -> Any:
    """``with_streaming_response``: the body is the caller's to read, so nothing is read
    here. The operation ends when the caller parses it (with the parsed data), closes it
    (also by leaving its ``with`` block) or drops it."""
    tracker = Tracker(op, _ParsedState(endpoint))
    watch_close(getattr(response, "http_response", None), tracker)
    cls = TracedAsyncAPIResponse if isinstance(response, AsyncAPIResponse) else TracedAPIResponse
    return cls(response, tracker)


def _parsed(proxy: Any, parsed: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
    tracker = proxy._self_tracker
    if args or kwargs.get("to") is not None or tracker.op.ended:
        return parsed  # a custom parse target: not a response we read
    if isinstance(parsed, Stream):  # stream=True: the stream carries the data from here
        tracker.hand_over()
        return TracedStream(parsed, Tracker(tracker.op, tracker.state.endpoint.StreamState(tracker.op)))
    if isinstance(parsed, AsyncStream):
        tracker.hand_over()
        return TracedAsyncStream(parsed, Tracker(tracker.op, tracker.state.endpoint.StreamState(tracker.op)))
    tracker.state.chunk(parsed)
    tracker.finish()
    return parsed


class TracedAPIResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, response: Any, tracker: Tracker) -> None:
        super().__init__(response)
        self._self_tracker = tracker
        weakref.finalize(self, tracker.abandoned)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return _parsed(self, self.__wrapped__.parse(*args, **kwargs), args, kwargs)


class TracedAsyncAPIResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, response: Any, tracker: Tracker) -> None:
        super().__init__(response)
        self._self_tracker = tracker
        weakref.finalize(self, tracker.abandoned)

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return _parsed(self, await self.__wrapped__.parse(*args, **kwargs), args, kwargs)


def sync_wrapper(binding: Binding) -> Callable[..., Any]:
    def request(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
        endpoint, op = _start(binding, instance, args, kwargs)
        if op is None:
            return wrapped(*args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            with op.current():
                result = wrapped(*args, **kwargs)
        except BaseException as exc:
            op.fail(exc)
            raise
        finally:
            _IN_CALL.reset(token)
        return _finish(endpoint, op, result)

    return request


def async_wrapper(binding: Binding) -> Callable[..., Any]:
    async def request(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
        endpoint, op = _start(binding, instance, args, kwargs)
        if op is None:
            return await wrapped(*args, **kwargs)
        token = _IN_CALL.set(True)
        try:
            with op.current():
                result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            op.fail(exc)
            raise
        finally:
            _IN_CALL.reset(token)
        return _finish(endpoint, op, result)

    return request
