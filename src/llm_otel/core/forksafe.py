"""Locks a forked child can use.

A ``threading.Lock`` held by another thread when the process forks stays held forever in
the child, which has no such thread to release it: the child hangs on its first use
(pre-fork servers, ``multiprocessing`` with fork). A lock of llm-otel is either a
:class:`ForkSafeLock`, re-created unlocked in the child, or belongs to an object registered
with :func:`reset_after_fork`, whose ``_after_fork_in_child()`` re-creates its locks and drops
state that belongs to the parent (an exporter's open traces, a file offset). Both are held
weakly and run by one ``os.register_at_fork`` hook, so whatever a parent thread held at the
fork, the child starts clean.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from llm_otel.core.guard import report

_locks: "weakref.WeakSet[ForkSafeLock]" = weakref.WeakSet()
_objects: "weakref.WeakSet[Any]" = weakref.WeakSet()


class ForkSafeLock:
    """A lock (``with lock:``) that is new and free in a forked child; ``reentrant=True``
    for an ``RLock``."""

    __slots__ = ("_lock", "_factory", "__weakref__")

    def __init__(self, reentrant: bool = False) -> None:
        self._factory = threading.RLock if reentrant else threading.Lock
        self._lock = self._factory()
        _locks.add(self)

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self._lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()



def reset_after_fork(obj: Any) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked from now on."""
    _objects.add(obj)


def _after_fork_in_child() -> None:
    for lock in list(_locks):
        lock._lock = lock._factory()
    for obj in list(_objects):
        try:
            obj._after_fork_in_child()
        except Exception as exc:  # noqa: BLE001 - never break the child
            report("forksafe.after_fork_in_child", exc)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
