"""Locks a forked child can use.

A ``threading.Lock`` held by another thread when the process forks stays held forever in
the child, which has no such thread to release it: the child hangs on its first use
(pre-fork servers, ``multiprocessing`` with fork). Every lock of llm-otel is a
:class:`ForkSafeLock`, re-created unlocked in the child by an ``os.register_at_fork``
hook, so whatever a parent thread held at the fork, the child starts clean.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

_locks: "weakref.WeakSet[ForkSafeLock]" = weakref.WeakSet()


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



def _renew_locks() -> None:
    for lock in list(_locks):
        lock._lock = lock._factory()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_renew_locks)
