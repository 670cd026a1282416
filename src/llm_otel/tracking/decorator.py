"""``@track``: a span around the user's own function, built on the core's step records.

The span is the operation of a :class:`StepInvocation`, made current, ended or failed
through the core like every instrumentor's, so it nests with their spans (LLM calls made inside become its
children) and follows the same content rules. Generators are traced until they finish,
are closed, or are garbage collected; the span is current only while the generator's
own code runs (each ``next``/``send``/``throw``), never in the consumer between items,
so context is always detached in the context it was attached in.

Inputs and outputs: ``@track`` is the user's choice for their own function, so they are
recorded by default (``capture_input`` / ``capture_output``), even when GenAI message
capture is off; ``LLM_OTEL_TRACK_CAPTURE=false`` turns that default off process-wide.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from llm_otel import config
from llm_otel.core import StepInvocation, get_recorder, report
from llm_otel.tracking import state
from llm_otel.tracking.serialize import MAX_ITEMS, to_jsonable

CAPTURE_ENV = "LLM_OTEL_TRACK_CAPTURE"


def _default_capture() -> bool:
    return os.environ.get(CAPTURE_ENV, "true").strip().lower() not in ("false", "0", "no", "off")


class _Options:
    __slots__ = ("name", "kind", "tags", "metadata", "capture_input", "capture_output", "signature", "skip_first",
                 "simple_names")

    def __init__(self, func: Callable[..., Any], name: Optional[str], kind: str, tags: Optional[Sequence[str]],
                 metadata: Optional[Dict[str, Any]], capture_input: Optional[bool],
                 capture_output: Optional[bool]) -> None:
        qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or "function"
        self.name = name or qualname.rsplit("<locals>.", 1)[-1]
        self.kind = kind
        self.tags = [str(t) for t in tags] if tags else None
        self.metadata = dict(metadata) if metadata else None
        default = _default_capture()
        self.capture_input = default if capture_input is None else bool(capture_input)
        self.capture_output = default if capture_output is None else bool(capture_output)
        try:
            self.signature: Optional[inspect.Signature] = inspect.signature(func)
        except (TypeError, ValueError):
            self.signature = None
        params = list(self.signature.parameters) if self.signature else []
        self.skip_first = bool(params) and params[0] in ("self", "cls")
        # plain positional-or-keyword parameters only: bind by zip, not Signature.bind
        plain = self.signature is not None and all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in self.signature.parameters.values())
        self.simple_names: Optional[tuple] = tuple(params) if plain else None


def track(func: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None, kind: str = "chain",
          tags: Optional[Sequence[str]] = None, metadata: Optional[Dict[str, Any]] = None,
          capture_input: Optional[bool] = None, capture_output: Optional[bool] = None) -> Any:
    """Trace a function, method, async function, generator or async generator.

    ``@track`` or ``@track(name=..., tags=[...], metadata={...}, capture_input=False)``.
    The wrapped callable keeps its kind (``inspect.iscoroutinefunction`` etc. still hold),
    returns what the function returns and raises what it raises, unchanged.
    """
    if func is None:
        return lambda f: track(f, name=name, kind=kind, tags=tags, metadata=metadata,
                               capture_input=capture_input, capture_output=capture_output)
    if isinstance(func, (classmethod, staticmethod)):
        return type(func)(track(func.__func__, name=name, kind=kind, tags=tags, metadata=metadata,
                                capture_input=capture_input, capture_output=capture_output))
    opts = _Options(func, name, kind, tags, metadata, capture_input, capture_output)
    if inspect.isasyncgenfunction(func):
        wrapper = _async_generator_wrapper(func, opts)
    elif inspect.iscoroutinefunction(func):
        wrapper = _async_wrapper(func, opts)
    elif inspect.isgeneratorfunction(func):
        wrapper = _generator_wrapper(func, opts)
    else:
        wrapper = _sync_wrapper(func, opts)
    functools.update_wrapper(wrapper, func)
    wrapper.__llm_otel_tracked__ = True  # type: ignore[attr-defined]
    return wrapper


# ---- start / stop, all guarded: a fault here never reaches the user's function -----------


class _Run:
    """One traced call: the tracked operation and, for generators, the items."""

    __slots__ = ("tracked", "opts", "items", "item_count")

    def __init__(self, tracked: state.Tracked, opts: _Options) -> None:
        self.tracked = tracked
        self.opts = opts
        self.items: List[Any] = []
        self.item_count = 0

    def activate(self) -> Any:
        return self.tracked.op.current()

    def item(self, value: Any) -> None:
        if self.opts.capture_output:
            if self.item_count < MAX_ITEMS:
                self.items.append(value)
            self.item_count += 1

    def items_output(self) -> Any:
        out: List[Any] = list(self.items)
        if self.item_count > len(out):
            out.append(f"...[{self.item_count - len(out)} more items]")
        return out

    def end(self, result: Any = None, has_result: bool = True) -> None:
        try:
            tracked = self.tracked
            if has_result and self.opts.capture_output and not tracked.output_set:
                tracked.op.record.outputs = to_jsonable(result, config.settings().content_max_length)
            tracked.op.end()
            state.closed(tracked)
        except Exception as exc:  # noqa: BLE001
            report("llm_otel.track (end)", exc)

    def fail(self, error: BaseException) -> None:
        try:
            self.tracked.op.fail(error)
            state.closed(self.tracked)
        except Exception as exc:  # noqa: BLE001
            report("llm_otel.track (fail)", exc)


def _begin(opts: _Options, args: Any, kwargs: Any) -> Optional[_Run]:
    try:
        step = StepInvocation(name=opts.name, kind=opts.kind, capture_content=True,
                              tags=list(opts.tags) if opts.tags else None,
                              metadata=dict(opts.metadata) if opts.metadata else None)
        if opts.capture_input:
            step.inputs = _inputs(opts, args, kwargs)
        op = get_recorder().start(step)
        if not op:
            return None
    except Exception as exc:  # noqa: BLE001
        report("llm_otel.track (start)", exc)
        return None
    try:
        tracked = state.Tracked(op)
        state.opened(tracked)
        return _Run(tracked, opts)
    except Exception as exc:  # noqa: BLE001 - do not leave the span open: end it, call through
        report("llm_otel.track (start)", exc)
        op.end()
        return None


def _inputs(opts: _Options, args: Any, kwargs: Any) -> Any:
    """The bound arguments by parameter name, ``self``/``cls`` left out."""
    limit = config.settings().content_max_length
    names = opts.simple_names
    if names is not None and len(args) <= len(names) and not any(k in names[:len(args)] for k in kwargs) \
            and all(k in names for k in kwargs):
        arguments = dict(zip(names, args))
        arguments.update(kwargs)
        if opts.skip_first and args:
            del arguments[names[0]]
        return to_jsonable(arguments, limit)
    if opts.signature is not None:
        try:
            bound = opts.signature.bind(*args, **kwargs)
        except TypeError:
            pass  # the call itself will raise (and be recorded); keep the raw arguments
        else:
            arguments = dict(bound.arguments)
            if opts.skip_first and args:
                arguments.pop(next(iter(opts.signature.parameters)), None)
            return to_jsonable(arguments, limit)
    raw: Dict[str, Any] = {"args": list(args[1:] if opts.skip_first else args)}
    if kwargs:
        raw["kwargs"] = kwargs
    return to_jsonable(raw, limit)


# ---- the wrappers --------------------------------------------------------------------


def _sync_wrapper(func: Callable[..., Any], opts: _Options) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = _begin(opts, args, kwargs)
        if run is None:
            return func(*args, **kwargs)
        with run.activate():
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                run.fail(exc)
                raise
        run.end(result)
        return result

    return wrapper


def _async_wrapper(func: Callable[..., Any], opts: _Options) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = _begin(opts, args, kwargs)
        if run is None:
            return await func(*args, **kwargs)
        with run.activate():
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:  # CancelledError too: the span says it was cancelled
                run.fail(exc)
                raise
        run.end(result)
        return result

    return wrapper


def _generator_wrapper(func: Callable[..., Any], opts: _Options) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = _begin(opts, args, kwargs)
        if run is None:
            return (yield from func(*args, **kwargs))
        try:
            with run.activate():
                gen = func(*args, **kwargs)
                value = next(gen)
        except StopIteration as stop:
            run.end(run.items_output())
            return stop.value
        except BaseException as exc:
            run.fail(exc)
            raise
        while True:
            run.item(value)
            try:
                sent = yield value
            except GeneratorExit:  # close(), or the consumer dropped us (GC)
                try:
                    with run.activate():
                        gen.close()
                except BaseException as exc:
                    run.fail(exc)
                    raise
                run.end(run.items_output())
                raise
            except BaseException as thrown:  # throw() from the consumer: pass it inside
                try:
                    with run.activate():
                        value = gen.throw(thrown)
                except StopIteration as stop:
                    run.end(run.items_output())
                    return stop.value
                except BaseException as exc:
                    run.fail(exc)
                    raise
            else:
                try:
                    with run.activate():
                        value = gen.send(sent)
                except StopIteration as stop:
                    run.end(run.items_output())
                    return stop.value
                except BaseException as exc:
                    run.fail(exc)
                    raise

    return wrapper


def _async_generator_wrapper(func: Callable[..., Any], opts: _Options) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = _begin(opts, args, kwargs)
        if run is None:
            agen = func(*args, **kwargs)
            try:
                sent = None
                while True:
                    try:
                        value = await agen.asend(sent)
                    except StopAsyncIteration:
                        return
                    sent = yield value
            finally:
                await agen.aclose()
        try:
            with run.activate():
                agen = func(*args, **kwargs)
                value = await agen.__anext__()
        except StopAsyncIteration:
            run.end(run.items_output())
            return
        except BaseException as exc:
            run.fail(exc)
            raise
        while True:
            run.item(value)
            try:
                sent = yield value
            except GeneratorExit:  # aclose(), or the event loop finalizing an abandoned one
                try:
                    with run.activate():
                        await agen.aclose()
                except BaseException as exc:
                    run.fail(exc)
                    raise
                run.end(run.items_output())
                raise
            except BaseException as thrown:
                try:
                    with run.activate():
                        value = await agen.athrow(thrown)
                except StopAsyncIteration:
                    run.end(run.items_output())
                    return
                except BaseException as exc:
                    run.fail(exc)
                    raise
            else:
                try:
                    with run.activate():
                        value = await agen.asend(sent)
                except StopAsyncIteration:
                    run.end(run.items_output())
                    return
                except BaseException as exc:
                    run.fail(exc)
                    raise

    return wrapper
