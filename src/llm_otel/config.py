"""Settings read from the environment: OpenTelemetry's variables first, ``LLM_OTEL_*`` after.

Read once and cached; :func:`reload` re-reads them (tests, or an app that changes its
environment before instrumenting).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional

logger = logging.getLogger("llm_otel")

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_MAX_LENGTH_ENV = "LLM_OTEL_CONTENT_MAX_LENGTH"

_MODES = {"NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    content_mode: str = "NO_CONTENT"
    content_max_length: int = 16384

    @property
    def capture_content(self) -> bool:
        return self.content_mode != "NO_CONTENT"

    @property
    def content_on_span(self) -> bool:
        return self.content_mode in ("SPAN_ONLY", "SPAN_AND_EVENT")

    @property
    def content_in_event(self) -> bool:
        return self.content_mode in ("EVENT_ONLY", "SPAN_AND_EVENT")


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


def _read() -> Settings:
    return Settings(
        content_mode=parse_content_mode(os.environ.get(CAPTURE_CONTENT_ENV)),
        content_max_length=_int_env(CONTENT_MAX_LENGTH_ENV, Settings.content_max_length),
    )


_settings: Settings = _read()


def settings() -> Settings:
    return _settings


def reload() -> Settings:
    global _settings
    _settings = _read()
    return _settings
