"""Locks and state of the local exporters made safe across ``os.fork()``.

A forked child gets a copy of every lock as it was at the fork: one that another thread of
the parent held stays held forever in the child, which then hangs on it (at the latest in
``TracerProvider.shutdown()`` at exit). Objects registered here have their
``_after_fork_in_child()`` called in the child right after the fork, to re-create their
locks and drop state that belongs to the parent. They are held weakly: registering keeps
nothing alive.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from llm_otel.core.guard import report

_registered: "weakref.WeakSet[Any]" = weakref.WeakSet()


def reset_after_fork(obj: Any) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked from now on."""
    _registered.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_registered):
        try:
            obj._after_fork_in_child()
        except Exception as exc:  # noqa: BLE001 - never break the child
            report("forksafe.after_fork_in_child", exc)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
