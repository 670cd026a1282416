"""OpenTelemetry instrumentor for the OpenAI Python SDK (``openai >= 1.40``).

Every API request of the SDK goes through the client's ``request``; wrapping it (on the
classes for ``instrument()``, on one client for :func:`instrument_client`) traces chat
completions (incl. ``parse`` and streams), legacy completions, embeddings and the
Responses API (incl. ``retrieve``) on every path the SDK offers. :mod:`.request` holds the
wrapper and routes each request by its path to an extractor module, which turns the body
and the response into a record; the core records it.
Nothing here imports ``openai`` until instrumentation starts.
"""

from __future__ import annotations

from typing import Any, Collection, Optional

from llm_otel.core import LibraryInstrumentor, get_recorder, patch, recorder_for, report, unpatch

__all__ = ["OpenAIInstrumentor", "instrument_client", "uninstrument_client"]

_INSTRUMENTS = ("openai >= 1.40",)
_CLIENT_MODULE = "openai._base_client"
_TARGETS = (("SyncAPIClient.request", False), ("AsyncAPIClient.request", True))


class OpenAIInstrumentor(LibraryInstrumentor):
    """Traces every OpenAI client of the process, sync and async (Azure included)."""

    trigger_module = "openai"
    _binding: Optional[Any] = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        from .request import Binding, async_wrapper, sync_wrapper

        binding = Binding(recorder_for(kwargs))
        for name, is_async in _TARGETS:
            patch(_CLIENT_MODULE, name, async_wrapper(binding) if is_async else sync_wrapper(binding))
        type(self)._binding = binding

    def _rebind(self, recorder: Any) -> None:
        if self._binding is not None:
            self._binding.recorder = recorder

    def _uninstrument(self, **kwargs: Any) -> None:
        for name, _is_async in _TARGETS:
            unpatch(_CLIENT_MODULE, name)
        type(self)._binding = None


def instrument_client(client: Any, tracer_provider: Any = None, meter_provider: Any = None) -> Any:
    """Trace ONE ``OpenAI`` / ``AsyncOpenAI`` (or Azure) client, without global patching.

    The client's own ``request`` gets the wrapper; other clients are untouched. With the
    global instrumentor on as well, each call is still recorded once. ``with_options()`` /
    ``copy()`` of the client are traced too. Returns ``client``.
    """
    import wrapt
    from openai._base_client import AsyncAPIClient

    from .request import Binding, async_wrapper, sync_wrapper

    if isinstance(vars(client).get("request"), wrapt.FunctionWrapper):
        return client  # already instrumented
    binding = Binding(get_recorder(tracer_provider, meter_provider))
    wrapper = async_wrapper(binding) if isinstance(client, AsyncAPIClient) else sync_wrapper(binding)
    client.request = wrapt.FunctionWrapper(client.request, wrapper)
    _follow_copies(client, tracer_provider, meter_provider)
    return client


def _follow_copies(client: Any, tracer_provider: Any, meter_provider: Any) -> None:
    """``client.with_options(...)`` / ``client.copy()`` build a new client: trace it too."""
    import wrapt

    def copied(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        new = wrapped(*args, **kwargs)
        try:
            instrument_client(new, tracer_provider, meter_provider)
        except Exception as exc:  # noqa: BLE001 - never break the caller
            report("openai instrument_client copy", exc)
        return new

    for name in ("copy", "with_options"):
        if not isinstance(vars(client).get(name), wrapt.FunctionWrapper) and hasattr(client, name):
            setattr(client, name, wrapt.FunctionWrapper(getattr(client, name), copied))


def uninstrument_client(client: Any) -> Any:
    """Undo :func:`instrument_client` for ``client``; returns ``client``."""
    import wrapt

    for name in ("request", "copy", "with_options"):
        if isinstance(vars(client).get(name), wrapt.FunctionWrapper):
            delattr(client, name)
    return client
