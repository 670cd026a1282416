"""``instrument()`` / ``uninstrument()``: turn the instrumentors on and off by name.

The instrumentors are the ``opentelemetry_instrumentor`` entry points this distribution
declares, so ``opentelemetry-instrument`` and this function load the very same objects.
A library that is not installed (or too old) is skipped with a debug log.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any, Dict, List

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

logger = logging.getLogger("llm_otel")

_GROUP = "opentelemetry_instrumentor"
_OURS = "llm_otel."


def _ours() -> Dict[str, Any]:
    eps = entry_points(group=_GROUP)
    return {ep.name: ep for ep in eps if ep.value.startswith(_OURS)}


def available() -> List[str]:
    """Names of this package's instrumentors: ``openai``, ``langchain``, ``llama_index``."""
    return sorted(_ours())


def _instrumentor(name: str) -> Any:
    """The instrumentor singleton, or None when its module cannot be imported."""
    eps = _ours()
    if name not in eps:
        raise ValueError(f"unknown instrumentor {name!r}; choose from {sorted(eps)}")
    try:
        return eps[name].load()()  # BaseInstrumentor is a singleton per class
    except ImportError as exc:
        logger.debug("llm_otel: instrumentor %s unavailable: %s", name, exc)
        return None
    except Exception as exc:  # noqa: BLE001 - a broken install must not break the app
        logger.warning("llm_otel: instrumentor %s could not be loaded: %r", name, exc)
        return None


def instrument(*names: str, **kwargs: Any) -> List[str]:
    """Instrument the named libraries (all installed ones when none is named).

    Keyword arguments (``tracer_provider``, ``meter_provider``, ``logger_provider``) go to
    each instrumentor. Calling it again is harmless; with providers given, an instrumented
    library records to them from then on. Returns the names now instrumented.
    """
    done = []
    for name in names or available():
        inst = _instrumentor(name)
        if inst is None:
            continue
        conflict = get_dependency_conflicts(inst.instrumentation_dependencies())
        if conflict is not None:
            if names:
                logger.warning("llm_otel: not instrumenting %s: %s", name, conflict)
            else:
                logger.debug("llm_otel: skipping %s: %s", name, conflict)
            continue
        inst.instrument(**kwargs)  # once; again with providers given, it re-binds
        done.append(name)
    return done


def uninstrument(*names: str) -> None:
    """Restore the original functions of the named (default: all) libraries."""
    for name in names or available():
        inst = _instrumentor(name)
        if inst is not None and inst.is_instrumented_by_opentelemetry:
            inst.uninstrument()
