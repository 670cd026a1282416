"""Instrumentors, one package per instrumented library; shipped as ``llm_otel.instrumentors``."""
