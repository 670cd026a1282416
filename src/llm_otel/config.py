"""Settings read from the environment: OpenTelemetry's variables first, ``LLM_OTEL_*`` after.

Read once and cached; :func:`reload` re-reads them (tests, or an app that changes its
environment before instrumenting).
"""

from __future__ import annotations

import logging
import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Pattern, Tuple

logger = logging.getLogger("llm_otel")

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_MAX_LENGTH_ENV = "LLM_OTEL_CONTENT_MAX_LENGTH"
REDACT_PATTERNS_ENV = "LLM_OTEL_REDACT_PATTERNS"
CAPTURE_IMAGES_ENV = "LLM_OTEL_CAPTURE_IMAGES"
ESTIMATED_USAGE_ENV = "LLM_OTEL_ESTIMATED_USAGE"
SEMCONV_OPT_IN_ENV = "OTEL_SEMCONV_STABILITY_OPT_IN"  # gen_ai_latest_experimental: v0.1.0 names
FOREIGN_SPANS_ENV = "LLM_OTEL_FOREIGN_SPANS"
# scopes known to record the GenAI client metrics themselves: their calls count in usage()
# and cost, their metrics are theirs (the reference util-genai instrumentations)
_FOREIGN_DEFAULTS = ("*", "opentelemetry.instrumentation.genai.*=usage", "opentelemetry.util.genai*=usage",
                     "opentelemetry.instrumentation.openai_v2=usage", "opentelemetry.instrumentation.google_genai=usage",
                     "opentelemetry.instrumentation.vertexai=usage")

_MODES = {"NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    content_mode: str = "NO_CONTENT"
    content_max_length: int = 16384
    # regexes whose matches are replaced by "[REDACTED]" in captured content
    redact_patterns: Tuple[Pattern[str], ...] = ()
    # keep base64 image data (data: URLs) in captured content instead of a placeholder
    capture_images: bool = False
    # tokens counted locally when the API reported none: "separate" (own attributes,
    # usage().estimated_*), "report" (also gen_ai.usage.* and the token metric, marked),
    # "off" (not counted)
    estimated_usage: str = "separate"
    # the GenAI conventions' newest names (semantic-conventions-genai v0.1.0) instead of v1.41's
    latest_semconv: bool = False
    # GenAI spans of other instrumentation scopes counted like ours: (pattern, what) in order,
    # the last match wins; what is "metrics" (usage, cost and metrics), "usage" or "none"
    foreign_scopes: Tuple[Tuple[str, str], ...] = ()

    def foreign_scope(self, scope: str) -> Optional[str]:
        """What is done with a GenAI span of ``scope``: "metrics", "usage" or None (left out)."""
        taken = "none"
        for pattern, what in self.foreign_scopes:
            if scope == pattern or (pattern.endswith("*") and scope.startswith(pattern[:-1])):
                taken = what
        return None if taken == "none" else taken

    # derived from the two modes above once, not on every read: the hot path asks each call
    estimates: bool = field(init=False)
    report_estimates: bool = field(init=False)
    capture_content: bool = field(init=False)
    content_on_span: bool = field(init=False)
    content_in_event: bool = field(init=False)

    def __post_init__(self) -> None:
        mode, usage = self.content_mode, self.estimated_usage
        for name, value in (("estimates", usage != "off"), ("report_estimates", usage == "report"),
                            ("capture_content", mode != "NO_CONTENT"),
                            ("content_on_span", mode in ("SPAN_ONLY", "SPAN_AND_EVENT")),
                            ("content_in_event", mode in ("EVENT_ONLY", "SPAN_AND_EVENT"))):
            object.__setattr__(self, name, value)


def parse_content_mode(raw: Optional[str]) -> str:
    """``true``/``false`` (any case) or one of the GenAI utils' modes; anything else is off."""
    value = (raw or "").strip()
    if value.upper() in _MODES:
        return value.upper()
    if value.lower() in _TRUE:
        return "SPAN_ONLY"
    if value.lower() not in _FALSE:
        logger.warning("%s=%r is not one of true/false/%s; content capture stays off",
                       CAPTURE_CONTENT_ENV, raw, "/".join(sorted(_MODES)))
    return "NO_CONTENT"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
        if value > 0:
            return value
    except ValueError:
        pass
    logger.warning("%s=%r is not a positive integer; using %d", name, raw, default)
    return default


def parse_redact_patterns(raw: Optional[str]) -> Tuple[Pattern[str], ...]:
    """A JSON list of regexes (``["sk-[A-Za-z0-9]+", "\\d{16}"]``) or one regex per line.

    A pattern that does not compile is logged and skipped, never fatal.
    """
    value = (raw or "").strip()
    if not value:
        return ()
    items = None
    if value.startswith("["):
        try:
            loaded = json.loads(value)
            if isinstance(loaded, list):
                items = [str(item) for item in loaded]
        except ValueError:
            pass
    if items is None:
        items = [line.strip() for line in value.splitlines() if line.strip()]
    out = []
    for item in items:
        try:
            out.append(re.compile(item))
        except re.error as exc:
            logger.warning("%s: pattern %r does not compile (%s); skipped", REDACT_PATTERNS_ENV, item, exc)
    return tuple(out)


_ESTIMATE_MODES = ("separate", "report", "off")


def parse_estimated_usage(raw: Optional[str]) -> str:
    value = (raw or "").strip().lower()
    if not value:
        return Settings.estimated_usage
    if value in _ESTIMATE_MODES:
        return value
    logger.warning("%s=%r is not one of %s; using %s", ESTIMATED_USAGE_ENV, raw, "/".join(_ESTIMATE_MODES),
                   Settings.estimated_usage)
    return Settings.estimated_usage


def parse_foreign_scopes(raw: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    """``LLM_OTEL_FOREIGN_SPANS``: comma-separated scope names (a trailing ``*`` matches a
    prefix) after the defaults, the last match winning: ``name`` takes a scope's GenAI spans
    into usage(), cost and the metrics, ``name=usage`` into usage() and cost only (the scope
    records its metrics itself), ``-name`` leaves it out; ``-*`` turns it all off."""
    entries = []
    for item in list(_FOREIGN_DEFAULTS) + [i.strip() for i in (raw or "").split(",") if i.strip()]:
        if item.startswith("-"):
            entries.append((item[1:].strip(), "none"))
            continue
        name, _, what = item.partition("=")
        what = what.strip().lower() or "metrics"
        if what not in ("metrics", "usage", "none"):
            logger.warning("%s: %r is not name, name=usage or -name; skipped", FOREIGN_SPANS_ENV, item)
            continue
        entries.append((name.strip(), what))
    return tuple(entries)


def _read() -> Settings:
    return Settings(
        content_mode=parse_content_mode(os.environ.get(CAPTURE_CONTENT_ENV)),
        content_max_length=_int_env(CONTENT_MAX_LENGTH_ENV, Settings.content_max_length),
        redact_patterns=parse_redact_patterns(os.environ.get(REDACT_PATTERNS_ENV)),
        capture_images=(os.environ.get(CAPTURE_IMAGES_ENV) or "").strip().lower() in _TRUE,
        estimated_usage=parse_estimated_usage(os.environ.get(ESTIMATED_USAGE_ENV)),
        latest_semconv="gen_ai_latest_experimental" in [
            v.strip() for v in (os.environ.get(SEMCONV_OPT_IN_ENV) or "").split(",")],
        foreign_scopes=parse_foreign_scopes(os.environ.get(FOREIGN_SPANS_ENV)),
    )


_settings: Settings = _read()


def settings() -> Settings:
    return _settings


def reload() -> Settings:
    global _settings
    _settings = _read()
    return _settings


Redactor = Callable[[str], str]
_redactor: Optional[Redactor] = None


def set_redactor(fn: Optional[Redactor]) -> None:
    """Apply ``fn(text) -> text`` to every captured content string before it is recorded.

    Runs after the ``LLM_OTEL_REDACT_PATTERNS`` regexes. ``None`` removes it. If ``fn``
    raises, the string is recorded as ``"[REDACTION FAILED]"`` (fail closed).
    """
    global _redactor
    if fn is not None and not callable(fn):
        raise TypeError("set_redactor expects a callable taking and returning a str, or None")
    _redactor = fn


def redactor() -> Optional[Redactor]:
    return _redactor
