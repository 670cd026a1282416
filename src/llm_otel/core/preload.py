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

A loader thread still running when the interpreter finalizes crashed the process: a short-lived
app exited with SIGABRT or SIGSEGV instead of 0 (3 in 90 runs of a 200-call script here; most
likely a thread in native code, tiktoken's or pydantic-core's Rust, ended by ``pthread_exit``
when it takes the GIL back). So every loader
thread starts through :func:`start_loader`, and at exit the process waits for the ones still
running (:func:`let_loads_finish`, at most ``EXIT_WAIT_S`` for the whole exit) - which also lets
the calls that wait on a load end with its data.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, List

from llm_otel.core.guard import report

FORK_WAIT_S = 5.0
EXIT_WAIT_S = 3.0
MAX_WAITING = 1024

_preloads: "weakref.WeakSet[Preload]" = weakref.WeakSet()
_loaders = [0]  # loader threads started and not finished
_loaders_lock = threading.Lock()
_exit_hooked = [False]
_exit_deadline: List[float] = []


def start_loader(target: Callable[[], None]) -> None:
    """Run ``target`` on a loader thread of its own (the one way llm-otel starts one); the
    process waits for it at exit (bounded). Raises what ``_thread.start_new_thread`` raises."""
    with _loaders_lock:
        _loaders[0] += 1
        hook, _exit_hooked[0] = not _exit_hooked[0], True
    if hook:
        atexit.register(let_loads_finish)

    def run() -> None:
        try:
            target()
        finally:
            with _loaders_lock:
                _loaders[0] -= 1

    try:
        # not threading.Thread: its start() waits for the new thread to run (milliseconds
        # under load); this returns at once
        _thread.start_new_thread(run, ())
    except BaseException:
        with _loaders_lock:
            _loaders[0] -= 1
        raise


def loading() -> bool:
    """True while a loader thread runs."""
    return _loaders[0] > 0


def exiting() -> bool:
    """True once the process exits: a loader starts no further step, and what fails for
    the interpreter shutting down (no new thread, no new atexit hook) is not an error."""
    return bool(_exit_deadline)


def let_loads_finish() -> None:
    """At exit: wait until no loader thread runs, for at most ``EXIT_WAIT_S`` in all (every
    caller in one exit shares the deadline), so none is in native code at finalization."""
    if not _exit_deadline:
        _exit_deadline.append(time.monotonic() + EXIT_WAIT_S)
    while loading() and time.monotonic() < _exit_deadline[0]:
        time.sleep(0.005)


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
            start_loader(self._run)
        except Exception as exc:  # noqa: BLE001 - e.g. no thread can start at interpreter exit
            report(f"preload {self.name}", exc)
            self._finish()

    def load_here(self) -> None:
        """Load on this thread, now (a direct caller that cannot do without the data); at
        exit, past the bounded wait, not at all (the load may hang on a slow disk)."""
        if exiting():
            return
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
            atexit.register(self._answer_at_exit)
        self.start()

    def _run(self) -> None:
        self._loader = _thread.get_ident()
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001
            if not exiting():
                report(f"preload {self.name}", exc)
        self._finish()

    def _finish(self) -> None:
        self._done.set()
        self._answer_waiting()

    def _answer_at_exit(self) -> None:
        let_loads_finish()  # answered with the data when it comes in time
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
    global _loaders_lock
    _loaders_lock = threading.Lock()
    _loaders[0] = 0  # the parent's loader threads do not exist here
    for preload in list(_preloads):
        preload._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
