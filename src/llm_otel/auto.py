"""``import llm_otel.auto``: configure OpenTelemetry from the environment and instrument.

If the app has not set a TracerProvider / MeterProvider, the SDK is configured the way
``opentelemetry-instrument`` does it, from ``OTEL_*`` variables (OTLP by default,
``OTEL_TRACES_EXPORTER=console`` for the terminal). An app that set its own providers
keeps them. Importing twice does nothing more.
"""

from __future__ import annotations

import logging

from opentelemetry import metrics, trace

from llm_otel.instrumentation import instrument

logger = logging.getLogger("llm_otel")


def _sdk_configured() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) or not isinstance(
        metrics.get_meter_provider(), metrics._internal._ProxyMeterProvider)


def _configure_sdk() -> None:
    if _sdk_configured():
        return
    try:
        from opentelemetry.sdk._configuration import _OTelSDKConfigurator

        _OTelSDKConfigurator().configure()
    except Exception as exc:  # noqa: BLE001 - never break the importing app
        logger.warning("llm_otel.auto: could not configure the OpenTelemetry SDK: %s", exc)


_configure_sdk()
instrumented = instrument()
