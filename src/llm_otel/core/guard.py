"""Instrumentation must never break the app: our own errors are logged once and swallowed."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Set, TypeVar

logger = logging.getLogger("llm_otel")
_seen: Set[str] = set()

F = TypeVar("F", bound=Callable[..., Any])


def report(where: str, exc: BaseException) -> None:
    """Log an instrumentation fault once per place, with its traceback."""
    if where in _seen:
        logger.debug("llm_otel: instrumentation error in %s", where, exc_info=exc)
        return
    _seen.add(where)
    logger.warning("llm_otel: instrumentation error in %s (the call itself is unaffected; "
                   "further errors here are logged at DEBUG)", where, exc_info=exc)


def guarded(fn: F) -> F:
    """Run ``fn``; on an ``Exception`` of ours, report it and return None."""
    where = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - this is the guard
            report(where, exc)
            return None

    return wrapper  # type: ignore[return-value]
