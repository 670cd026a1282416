"""The local trace exporters stay local: no OTLP metrics or logs unless asked for.

``OTEL_TRACES_EXPORTER=llm_otel_console`` (or ``llm_otel_jsonl``) says there is no
collector. opentelemetry-distro would still default metrics and logs to OTLP, and with
nothing listening the SDK prints export errors and the program's exit waits for retries.
So when every traces exporter is a local one and one of them is ours, an *unset*
``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` means ``none``; a value the user set is
kept (``OTEL_METRICS_EXPORTER=otlp`` still exports metrics).
"""

from __future__ import annotations

import os
from typing import Dict, Mapping, MutableMapping

OURS = ("llm_otel_console", "llm_otel_jsonl")
_LOCAL = frozenset(OURS + ("console", "none"))
_QUIETED = ("OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")


def defaults(environ: Mapping[str, str]) -> Dict[str, str]:
    """The variables local mode sets in ``environ`` (none when it does not apply)."""
    names = {n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()}
    if not names or not names <= _LOCAL or not names & set(OURS):
        return {}
    return {var: "none" for var in _QUIETED if var not in environ}


def apply(environ: MutableMapping[str, str] = os.environ) -> Dict[str, str]:
    """Set local mode's defaults in ``environ`` before the SDK is configured; returns them."""
    quiet = defaults(environ)
    environ.update(quiet)
    return quiet
