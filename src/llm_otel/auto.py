"""``import llm_otel.auto``: what ``opentelemetry-instrument`` sets up, from inside the app.

Unless the app has already set a TracerProvider or MeterProvider, the SDK is configured the
way ``opentelemetry-instrument`` configures it, with OTel's own loader: the installed distro
first (opentelemetry-distro defaults each unset ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` to
``otlp``), then the SDK configurator, from the ``OTEL_*`` variables. With a local traces
exporter of ours, unset metrics and logs exporters mean ``none`` (:mod:`llm_otel.local_mode`).
Then this package's instrumentors are turned on, except those listed in
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``. Importing twice does nothing more.
"""

from __future__ import annotations

import logging

from opentelemetry import metrics, trace

from llm_otel import local_mode
from llm_otel.instrumentation import instrument

logger = logging.getLogger("llm_otel")


def _sdk_configured() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) or not isinstance(
        metrics.get_meter_provider(), metrics._internal._ProxyMeterProvider)


def _configure_sdk() -> None:
    if _sdk_configured():
        return
    try:
        from opentelemetry.instrumentation.auto_instrumentation._load import _load_configurators, _load_distro

        local_mode.apply()
        _load_distro().configure()
        _load_configurators()
    except Exception as exc:  # noqa: BLE001 - never break the importing app
        logger.warning("llm_otel.auto: could not configure the OpenTelemetry SDK: %s", exc)


_configure_sdk()
instrumented = instrument()
