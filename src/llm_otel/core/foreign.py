"""GenAI spans that others record count like ours: an SDK that traces itself (the Anthropic
SDK), or another instrumentation beside llm-otel.

A span processor on the app's tracer provider sees every span start and end. A finished
inference or embeddings span of another instrumentation scope feeds the same end-of-call
path as our records: the cost, the ``usage()`` blocks active where it started, and the
GenAI client metrics (unless that scope records them itself). Nothing is counted twice:

- our own spans never enter (they are counted when their operation ends);
- a foreign span that wraps one of our LLM calls, or runs inside one that is not a
  framework's claim, is the same API call traced twice (another OpenAI instrumentor beside
  ours): ours counts it; the other scope is named in a warning, once;
- a foreign span inside a framework's claimed call (LangChain's ChatAnthropic over the
  Anthropic SDK) is the SDK call of that framework call: its exact usage is added to it,
  as an instrumented SDK's would be.

A span that is not sampled carries no usage and cannot be counted. Which scopes are taken
in: ``LLM_OTEL_FOREIGN_SPANS`` (see :func:`llm_otel.config.parse_foreign_scopes`).
"""

from __future__ import annotations

import contextvars
import logging
import weakref
from collections import OrderedDict
from typing import Any, Optional, Set

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

from llm_otel import config
from llm_otel.core import semconv as sc
from llm_otel.core.forksafe import ForkSafeLock
from llm_otel.core.guard import report
from llm_otel.core.records import LLMInvocation

logger = logging.getLogger("llm_otel")

TAKEN = frozenset(("chat", "text_completion", "generate_content", "embeddings"))
MAX_OPEN = 10_000  # foreign GenAI spans started and not ended yet, remembered
_warned: Set[str] = set()


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def record_of(attributes: Any) -> LLMInvocation:
    """The record of a finished GenAI span, read from its conventions' attributes."""
    get = attributes.get
    inv = LLMInvocation(operation=get(sc.OPERATION_NAME), provider=_str(get(sc.PROVIDER_NAME)) or "unknown",
                        request_model=_str(get(sc.REQUEST_MODEL)))
    inv.response_model = _str(get(sc.RESPONSE_MODEL))
    inv.response_id = _str(get(sc.RESPONSE_ID))
    inv.input_tokens = _int(get(sc.USAGE_INPUT_TOKENS))
    inv.output_tokens = _int(get(sc.USAGE_OUTPUT_TOKENS))
    inv.cache_read_input_tokens = _int(get(sc.USAGE_CACHE_READ_INPUT_TOKENS))
    inv.cache_creation_input_tokens = _int(get(sc.LATEST_USAGE_CACHE_WRITE_INPUT_TOKENS)) \
        or _int(get(sc.USAGE_CACHE_CREATION_INPUT_TOKENS))
    inv.reasoning_output_tokens = _int(get(sc.USAGE_REASONING_OUTPUT_TOKENS))
    inv.server_address = _str(get(sc.SERVER_ADDRESS))
    inv.server_port = _int(get(sc.SERVER_PORT))
    inv.error_type = _str(get(sc.ERROR_TYPE))
    inv.stream = get(sc.REQUEST_STREAM) is True
    reasons = get(sc.RESPONSE_FINISH_REASONS)
    if isinstance(reasons, (list, tuple)):
        inv.finish_reasons = [r for r in reasons if isinstance(r, str)]
    if get(sc.USAGE_ESTIMATED) is True:  # another tool's local count: an estimate, not usage
        inv.estimated_input_tokens, inv.estimated_output_tokens = inv.input_tokens, inv.output_tokens
        inv.input_tokens = inv.output_tokens = None
    return inv


class ForeignSpans(SpanProcessor):  # type: ignore[misc]
    """A span processor counting other scopes' GenAI calls."""

    def __init__(self, recorder: Any) -> None:
        super().__init__()
        self.recorder = recorder
        self.enabled = True
        self._open: "OrderedDict[int, Any]" = OrderedDict()  # span id -> (context, metrics?) at start
        self._lock = ForkSafeLock()

    # -- the SDK's SpanProcessor protocol ---------------------------------------------------

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        try:
            if not self.enabled:
                return
            scope = getattr(span.instrumentation_scope, "name", "") or ""
            if scope == sc.SCOPE:
                return
            attributes = span.attributes or {}
            if attributes.get(sc.OPERATION_NAME) not in TAKEN:
                return
            taken = config.settings().foreign_scope(scope)
            if taken is None:
                return
            # where the call starts is where it counts (usage() blocks, like ours)
            entry = (contextvars.copy_context(), taken == "metrics")
            with self._lock:
                self._open[span.context.span_id] = entry
                while len(self._open) > MAX_OPEN:
                    self._open.popitem(last=False)
        except Exception as exc:  # noqa: BLE001 - a processor must not raise into the SDK
            report("foreign spans: start", exc)

    def on_end(self, span: Any) -> None:
        try:
            with self._lock:
                entry = self._open.pop(span.context.span_id, None)
            if entry is None or not self.enabled:
                return
            context, metrics = entry
            scope = getattr(span.instrumentation_scope, "name", "") or "unknown"
            parent = span.parent.span_id if span.parent is not None else None
            verdict = self.recorder.foreign_relation(span.context.span_id, parent)
            if verdict == "duplicate":
                _warn_once(scope)
                return
            inv = record_of(span.attributes or {})
            if verdict is not None:  # the SDK call of a framework's claimed call
                self.recorder.contribute_foreign(verdict, inv)
                return
            seconds = max(0, (span.end_time or 0) - (span.start_time or 0)) / 1e9
            context.run(self.recorder.count_foreign, inv, seconds, metrics)
        except Exception as exc:  # noqa: BLE001
            report("foreign spans: end", exc)

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _after_fork_in_child(self) -> None:
        self._open = OrderedDict()


def _warn_once(scope: str) -> None:
    if scope in _warned:
        return
    _warned.add(scope)
    logger.warning("llm_otel: spans of %r trace the same GenAI calls as llm-otel's (another instrumentation "
                   "of the same library is on); each call is counted once, by llm-otel", scope)


_installed: "weakref.WeakKeyDictionary[Any, ForeignSpans]" = weakref.WeakKeyDictionary()
_install_lock = ForkSafeLock()
#: instrument() ran before the app had an SDK tracer provider: try again when we record
pending = [False]


def install(tracer_provider: Any = None) -> bool:
    """Count foreign GenAI spans of ``tracer_provider`` (default: the global one). True when
    in place; False when there is no SDK provider yet (``instrument()`` before the app set
    one: the core tries again when it records)."""
    from llm_otel.core.forksafe import reset_after_fork
    from llm_otel.core.recorder import get_recorder

    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor"):
        pending[0] = tracer_provider is None
        return False
    pending[0] = False
    with _install_lock:
        processor = _installed.get(provider)
        if processor is not None:
            processor.enabled = True
            return True
        processor = ForeignSpans(get_recorder(tracer_provider))
        provider.add_span_processor(processor)
        reset_after_fork(processor)
        _installed[provider] = processor
    return True


def pause() -> None:
    """Stop counting (every library uninstrumented); ``install`` resumes."""
    for processor in list(_installed.values()):
        processor.enabled = False
