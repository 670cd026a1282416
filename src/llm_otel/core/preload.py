"""Data slow to load (a price table), loaded once, off every caller's thread.

Importing genai-prices' data takes 0.1-0.4 s. An LLM call must not wait for it, nor must the
app's start-up: :meth:`Preload.start` (at instrument time) loads it on a thread of its own,
and the core finishes a call that needs it once it is there (:meth:`Preload.when_ready`),
with the call's own end time.

A load is an import, and an import is visible half-made: while one thread runs a module, the
module already sits in ``sys.modules``, and code on other threads that looks a module up
there instead of importing it (the OpenAI SDK does so for its HTTP clients) finds it without
its attributes. So a load imports nothing such code looks for (see ``usage.pricing``).

A fork while another thread imports leaves the child a module lock held by a thread it does
not have: the child would hang on its first import of that module. So a fork waits (a
bounded while) for a load in progress to finish. When it did not finish (a slow disk), the
child releases what the loader thread was importing (its module locks and half-made modules,
nothing of any other thread) and loads again; and it forgets what was waiting in the parent.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys
import threading
import weakref
from typing import Any, Callable, List

from llm_otel.core.guard import report

FORK_WAIT_S = 5.0
MAX_WAITING = 1024

_preloads: "weakref.WeakSet[Preload]" = weakref.WeakSet()


class Preload:
    """``load()`` run once on a background thread; ``ready()``, ``when_ready(callback)``."""

    def __init__(self, name: str, load: Callable[[], Any]) -> None:
        self.name = name
        self._load = load
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._started = False
        self._waiting: List[Callable[[], None]] = []
        self._exit_hooked = False
        self._loader = None  # the loading thread's ident
        _preloads.add(self)

    def ready(self) -> bool:
        return self._done.is_set()

    def start(self) -> None:
        """Begin loading (once), without waiting for it."""
        with self._lock:
            if self._started:
                return
            self._started = True
        try:
            # not threading.Thread: its start() waits for the new thread to run (milliseconds
            # under load); this returns at once
            _thread.start_new_thread(self._run, ())
        except Exception as exc:  # noqa: BLE001 - e.g. no thread can start at interpreter exit
            report(f"preload {self.name}", exc)
            self._finish()

    def load_here(self) -> None:
        """Load on this thread, now (a direct caller that cannot do without the data)."""
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001
            report(f"preload {self.name}", exc)

    def when_ready(self, callback: Callable[[], None]) -> None:
        """``callback()`` once loaded: now, on this thread, if it is; else on the loader's."""
        with self._lock:
            waits = not self._done.is_set() and len(self._waiting) < MAX_WAITING
            if waits:
                self._waiting.append(callback)
                hook, self._exit_hooked = not self._exit_hooked, True
        if not waits:
            _call(callback, self.name)
            return
        if hook:  # registered after the app's providers exist: runs before their shutdown
            atexit.register(self._answer_waiting)
        self.start()

    def _run(self) -> None:
        self._loader = _thread.get_ident()
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001
            report(f"preload {self.name}", exc)
        self._finish()

    def _finish(self) -> None:
        self._done.set()
        self._answer_waiting()

    def _answer_waiting(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for callback in waiting:
            _call(callback, self.name)

    def _before_fork(self) -> None:
        if self._started and not self._done.is_set():
            self._done.wait(FORK_WAIT_S)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._waiting = []  # the parent answers its own
        if self._done.is_set():
            return
        if self._loader is None or _forget_imports_of(self._loader):
            self._started = False  # loads again when next wanted
        else:  # an import the child cannot release: no data here rather than a hang
            report(f"preload {self.name}", RuntimeError("forked while loading; not loaded in this process"))
            self._load = _nothing
            self._started = False


def _nothing() -> None:
    return None


def _forget_imports_of(ident: int) -> bool:
    """In a forked child: drop the module locks that thread ``ident`` (absent here) held, and the
    modules it left half-made, so the child's own import of them runs afresh instead of waiting
    forever. Only that thread's imports are touched. False if this Python's import machinery is
    not the one this knows (CPython 3.9-3.13: ``_bootstrap._module_locks``, ``_ModuleLock.owner``)."""
    bootstrap = sys.modules.get("_frozen_importlib")
    locks = getattr(bootstrap, "_module_locks", None)
    if not isinstance(locks, dict):
        return False
    for name, ref in list(locks.items()):
        lock = ref() if callable(ref) else None
        if lock is None or not hasattr(lock, "owner"):
            continue
        if lock.owner != ident:
            continue
        locks.pop(name, None)
        module = sys.modules.get(name)
        if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
            del sys.modules[name]
    blocking = getattr(bootstrap, "_blocking_on", None)
    if blocking is not None and hasattr(blocking, "pop"):
        blocking.pop(ident, None)
    return True


def _call(callback: Callable[[], None], name: str) -> None:
    try:
        callback()
    except Exception as exc:  # noqa: BLE001
        report(f"preload {name} callback", exc)


def _before_fork() -> None:
    for preload in list(_preloads):
        preload._before_fork()


def _after_fork_in_child() -> None:
    for preload in list(_preloads):
        preload._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
