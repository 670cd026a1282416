"""OpenTelemetry instrumentor for the OpenAI Python SDK (``openai >= 1.40``).

This module only wires wrappers: :mod:`.patch` holds the generic sync/async wrapper, the
extractor modules turn requests and responses into :class:`LLMInvocation` fields, and
the core records them. Nothing here imports ``openai`` until instrumentation starts.
"""

from __future__ import annotations

import sys
from typing import Any, Collection, Dict, Set, Tuple

from llm_otel.core import instrumentor as _core
from llm_otel.core.instrumentor import LibraryInstrumentor
from llm_otel.core.recorder import get_recorder

__all__ = ["OpenAIInstrumentor", "instrument_client", "uninstrument_client"]

_INSTRUMENTS = ("openai >= 1.40",)

# (module, "Class.method", endpoint module name, async?)
_TARGETS: Tuple[Tuple[str, str, str, bool], ...] = (
    ("openai.resources.chat.completions", "Completions.create", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions.create", "chat", True),
    ("openai.resources.chat.completions", "Completions.parse", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions.parse", "chat", True),
    # openai < 1.92 has structured output only here, and from 1.46 it no longer goes
    # through ``create``; up to 1.45 it does, and the inner call then records nothing more.
    # (From 1.92 this module is gone: ``beta.chat`` is the ``chat`` resource above.)
    ("openai.resources.beta.chat.completions", "Completions.parse", "chat", False),
    ("openai.resources.beta.chat.completions", "AsyncCompletions.parse", "chat", True),
    ("openai.resources.completions", "Completions.create", "completions", False),
    ("openai.resources.completions", "AsyncCompletions.create", "completions", True),
    ("openai.resources.embeddings", "Embeddings.create", "embeddings", False),
    ("openai.resources.embeddings", "AsyncEmbeddings.create", "embeddings", True),
    ("openai.resources.responses", "Responses.create", "responses", False),
    ("openai.resources.responses", "AsyncResponses.create", "responses", True),
    ("openai.resources.responses", "Responses.parse", "responses", False),
    ("openai.resources.responses", "AsyncResponses.parse", "responses", True),
)

# client attribute path -> (method names, endpoint module name), for instrument_client
_CLIENT_RESOURCES: Tuple[Tuple[Tuple[str, ...], Tuple[str, ...], str], ...] = (
    (("chat", "completions"), ("create", "parse"), "chat"),
    (("beta", "chat", "completions"), ("create", "parse"), "chat"),  # create: from 1.92 only
    (("completions",), ("create",), "completions"),
    (("embeddings",), ("create",), "embeddings"),
    (("responses",), ("create", "parse"), "responses"),
)


def _endpoint(name: str) -> Any:
    import importlib

    return importlib.import_module(f"{__name__}.{name}")


def _wrapper(endpoint_name: str, is_async: bool, recorder: Any) -> Any:
    wrappers = _endpoint("patch")
    factory = wrappers.async_wrapper if is_async else wrappers.sync_wrapper
    return factory(_endpoint(endpoint_name), recorder)


class OpenAIInstrumentor(LibraryInstrumentor):
    """Traces chat completions (incl. ``parse`` and streams), legacy completions,
    embeddings and the Responses API, sync and async, for every OpenAI client."""

    trigger_module = "openai"

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        recorder = get_recorder(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        _state["recorder"] = recorder
        for module in {target[0] for target in _TARGETS}:
            if module in sys.modules:
                _patch_module(module, recorder)
            else:  # e.g. the Responses API (~100 ms of imports): patched when the app loads it
                _defer(module)

    def _uninstrument(self, **kwargs: Any) -> None:
        _state["recorder"] = None  # a deferred module imported from now on stays unpatched
        for module, name, _endpoint_name, _is_async in _TARGETS:
            if module in sys.modules:  # never import a module just to unpatch it
                _core.unpatch(module, name)


# Target modules the SDK had not imported yet are patched by a post-import hook when the
# app first uses them (``client.responses`` imports ``openai.resources.responses``), so
# instrumenting costs no import of SDK parts the app never touches.
_state: Dict[str, Any] = {"recorder": None}
_hooked: Set[str] = set()


def _patch_module(module: str, recorder: Any) -> None:
    for target_module, name, endpoint, is_async in _TARGETS:
        if target_module == module:
            _core.patch(module, name, _wrapper(endpoint, is_async, recorder))


def _defer(module: str) -> None:
    if module in _hooked:  # one hook per module per process; it reads _state when it fires
        return
    _hooked.add(module)
    import wrapt

    def imported(_module: Any) -> None:
        _hooked.discard(module)  # a post-import hook fires once
        recorder = _state["recorder"]
        if recorder is None:
            return
        try:
            _patch_module(module, recorder)
        except Exception as exc:  # noqa: BLE001 - never break the app's import
            from llm_otel.core.guard import report

            report(f"openai deferred patch of {module}", exc)

    wrapt.register_post_import_hook(imported, module)


def instrument_client(client: Any, tracer_provider: Any = None, meter_provider: Any = None) -> Any:
    """Trace ONE ``OpenAI`` / ``AsyncOpenAI`` (or Azure) client, without global patching.

    The client's own resource objects get wrapped methods; other clients are untouched.
    With the global instrumentor also on, each call is still recorded once (the outer,
    client-level wrapper records; the inner one calls through). Returns ``client``.
    """
    import openai
    import wrapt

    is_async = isinstance(client, openai.AsyncOpenAI)
    recorder = get_recorder(tracer_provider, meter_provider)
    for path, methods, endpoint in _CLIENT_RESOURCES:
        resource: Any = client
        try:
            for part in path:
                resource = getattr(resource, part)
        except AttributeError:
            continue  # an SDK version without this resource
        wrapped_any = False
        for method in methods:
            if isinstance(vars(resource).get(method), wrapt.FunctionWrapper):
                continue  # this client is already instrumented
            bound = getattr(resource, method, None)
            if bound is None:
                continue
            setattr(resource, method, wrapt.FunctionWrapper(bound, _wrapper(endpoint, is_async, recorder)))
            wrapped_any = True
        if wrapped_any:
            # with_raw_response / with_streaming_response are cached views built from the
            # bound methods: drop them so they are rebuilt over the wrapped ones
            for cached in ("with_raw_response", "with_streaming_response"):
                vars(resource).pop(cached, None)
    _follow_copies(client, tracer_provider, meter_provider)
    return client


def _follow_copies(client: Any, tracer_provider: Any, meter_provider: Any) -> None:
    """``client.with_options(...)`` / ``client.copy()`` build a new client with new
    resources: instrument those copies too, so per-request options keep tracing."""
    import wrapt

    def copied(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        new = wrapped(*args, **kwargs)
        try:
            instrument_client(new, tracer_provider, meter_provider)
        except Exception as exc:  # noqa: BLE001 - never break the caller
            from llm_otel.core.guard import report

            report("openai instrument_client copy", exc)
        return new

    for name in ("copy", "with_options"):
        if not isinstance(vars(client).get(name), wrapt.FunctionWrapper) and hasattr(client, name):
            setattr(client, name, wrapt.FunctionWrapper(getattr(client, name), copied))


def uninstrument_client(client: Any) -> Any:
    """Undo :func:`instrument_client` for ``client``; returns ``client``."""
    import wrapt

    for path, methods, _endpoint_name in _CLIENT_RESOURCES:
        resource: Any = client
        try:
            for part in path:
                resource = getattr(resource, part)
        except AttributeError:
            continue
        removed = False
        for method in methods:
            if isinstance(vars(resource).get(method), wrapt.FunctionWrapper):
                delattr(resource, method)
                removed = True
        if removed:
            for cached in ("with_raw_response", "with_streaming_response"):
                vars(resource).pop(cached, None)
    for name in ("copy", "with_options"):
        if isinstance(vars(client).get(name), wrapt.FunctionWrapper):
            delattr(client, name)
    return client

