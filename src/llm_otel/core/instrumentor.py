"""The base of every llm-otel instrumentor, and safe patching helpers.

One distribution ships several instrumentors, so ``opentelemetry-instrument``'s
distribution-level dependency check cannot tell whether *this* library is installed and
passes ``skip_dep_check``. :class:`LibraryInstrumentor` always checks its own library, so
a missing one is skipped quietly, and instrumenting twice is the same as once.

Patching is deferred until the app imports the library (a wrapt post-import hook on
``trigger_module``): ``import llm_otel.auto`` costs no import of LlamaIndex or LangChain
in an app that never uses them.

``instrument``/``uninstrument`` hold one lock, so concurrent calls cannot leave a library
half patched; ``instrument(tracer_provider=...)`` on an instrumented library re-binds it to
the new providers (without patching twice).
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any, Callable, Dict, Optional

import wrapt
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap

try:
    from opentelemetry.instrumentation.dependencies import DependencyConflictError
except ImportError:  # opentelemetry-instrumentation < 0.53b0: it never asks us to raise one
    DependencyConflictError = None  # type: ignore[assignment,misc]

from llm_otel.core.forksafe import ForkSafeLock

logger = logging.getLogger("llm_otel")
# one for all, reentrant: instrumenting one library may import another, whose import hook
# then instruments it in the same thread
_lock = ForkSafeLock(reentrant=True)
_on: set = set()  # the instrumentor classes instrumented now


class LibraryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    #: the module whose import triggers patching; None patches at once
    trigger_module: Optional[str] = None
    _deferred: Optional[Dict[str, Any]] = None
    _hook_registered = False

    def instrument(self, **kwargs: Any) -> Any:
        from llm_otel.core import foreign
        from llm_otel.core.recorder import preload

        with _lock:
            result = self._instrument_once(**kwargs)
            if self.is_instrumented_by_opentelemetry:
                _on.add(type(self))
        preload()  # what the end of a call needs, loading in the background from now on
        foreign.install(kwargs.get("tracer_provider"))  # GenAI spans that others record count too
        return result

    def _instrument_once(self, **kwargs: Any) -> Any:
        if self.is_instrumented_by_opentelemetry:
            from llm_otel.core.recorder import PROVIDER_OPTIONS

            if any(kwargs.get(name) is not None for name in PROVIDER_OPTIONS):
                self._bind(kwargs)
            return None
        kwargs.pop("skip_dep_check", None)
        raise_on_conflict = kwargs.pop("raise_exception_on_conflict", False)
        conflict = get_dependency_conflicts(self.instrumentation_dependencies())
        if conflict is not None:
            if raise_on_conflict:
                raise DependencyConflictError(conflict)
            logger.debug("llm_otel: %s not applied: %s", type(self).__name__, conflict)
            return None
        trigger = self.trigger_module
        if trigger and trigger not in sys.modules:
            self._deferred = kwargs
            self._is_instrumented_by_opentelemetry = True
            if not self._hook_registered:
                type(self)._hook_registered = True
                wrapt.register_post_import_hook(self._on_import, trigger)
            return None
        return super().instrument(skip_dep_check=True, **kwargs)

    def _bind(self, kwargs: Any) -> None:
        """Already instrumented: record to the providers given from now on."""
        if self._deferred is not None:  # not patched yet: patch with these when imported
            self._deferred.update(kwargs)
            return
        from llm_otel.core.recorder import recorder_for

        logger.info("llm_otel: %s re-bound to the providers given", type(self).__name__)
        self._rebind(recorder_for(kwargs))

    def _rebind(self, recorder: Any) -> None:
        """Make the patched code record to ``recorder`` (each instrumentor says how)."""
        raise NotImplementedError

    def _on_import(self, _module: Any) -> None:
        with _lock:
            self._patch_deferred()

    def _patch_deferred(self) -> None:
        type(self)._hook_registered = False  # a post-import hook fires once
        kwargs, self._deferred = self._deferred, None
        if kwargs is None:  # uninstrumented before the library was imported
            return
        try:
            self._instrument(**kwargs)
        except Exception as exc:  # noqa: BLE001 - never break the app's import
            self._is_instrumented_by_opentelemetry = False
            logger.warning("llm_otel: instrumenting %s failed", self.trigger_module, exc_info=exc)

    def uninstrument(self, **kwargs: Any) -> Any:
        from llm_otel.core import foreign

        with _lock:
            _on.discard(type(self))
            if not _on:
                foreign.pause()  # llm-otel is off: other scopes' GenAI spans are not counted either
            if self._deferred is not None:  # never patched: just forget the pending request
                self._deferred = None
                self._is_instrumented_by_opentelemetry = False
                return None
            return super().uninstrument(**kwargs)


# (module, name) -> the wrapper patch() installed there, to take off exactly that one
_patched: Dict[Any, Any] = {}


def patch(module: str, name: str, wrapper: Callable[..., Any]) -> bool:
    """Wrap ``module.name`` (``"Class.method"``) with wrapt; False if it does not exist.

    SDK versions differ in what they have; a missing method is skipped, not an error.
    """
    try:
        _patched[(module, name)] = wrapt.wrap_function_wrapper(module, name, wrapper)
        return True
    except (ImportError, AttributeError) as exc:
        logger.debug("llm_otel: not patching %s.%s: %s", module, name, exc)
        return False


def unpatch(module: str, name: str) -> None:
    """Restore what :func:`patch` wrapped; nothing happens if it was not wrapped.

    The class's own attribute is compared and restored, not what attribute lookup returns:
    a method the library itself wraps in a wrapt descriptor (LlamaIndex's dispatcher spans)
    binds on lookup, and restoring that bound object would replace the library's wrapper."""
    try:
        owner_path, _, attr = name.rpartition(".")
        owner: Any = importlib.import_module(module)
        for part in owner_path.split(".") if owner_path else ():
            owner = getattr(owner, part)
        ours = _patched.pop((module, name), None)
        current = vars(owner).get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
        if ours is not None and current is ours:
            setattr(owner, attr, ours.__wrapped__)
        elif ours is None:
            unwrap(owner, attr)
    except (ImportError, AttributeError) as exc:
        logger.debug("llm_otel: not unpatching %s.%s: %s", module, name, exc)
