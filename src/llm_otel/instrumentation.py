"""``instrument()`` / ``uninstrument()``: turn the instrumentors on and off by name.

The instrumentors are the ``opentelemetry_instrumentor`` entry points this distribution
declares, so ``opentelemetry-instrument`` and this function load the very same objects.
A library that is not installed (or too old) is skipped with a debug log, and one named in
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` is left alone, as ``opentelemetry-instrument``
leaves it.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Set

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
# OTel's own view of the entry points (the one its loader uses); also Python 3.9's
# importlib.metadata has no entry_points(group=)
from opentelemetry.util._importlib_metadata import entry_points

logger = logging.getLogger("llm_otel")

_GROUP = "opentelemetry_instrumentor"
_OURS = "llm_otel."
DISABLED_ENV = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


def _ours() -> Dict[str, Any]:
    eps = entry_points(group=_GROUP)
    return {ep.name: ep for ep in eps if ep.value.startswith(_OURS)}


def available() -> List[str]:
    """Names of this package's instrumentors: ``openai``, ``langchain``, ``llama_index``."""
    return sorted(_ours())


def disabled() -> Set[str]:
    """The names ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` lists (``*`` disables them all),
    read as ``opentelemetry-instrument`` reads it."""
    names = {name.strip() for name in os.environ.get(DISABLED_ENV, "").split(",") if name.strip()}
    return set(available()) if "*" in names else names


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
    each instrumentor. A name in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` is skipped even
    when named here: the operator's switch wins over the code. Calling it again is harmless;
    with providers given, an instrumented library records to them from then on. Returns the
    names now instrumented.
    """
    done = []
    off = disabled() & set(available())  # an unknown name still raises below
    for name in names or available():
        if name in off:
            logger.debug("llm_otel: %s disabled by %s", name, DISABLED_ENV)
            continue
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
