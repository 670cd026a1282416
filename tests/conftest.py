"""Shared fixtures: one in-memory SDK pipeline for the whole run, emptied per test.

OpenTelemetry's global providers can be set once per process, so they are set here at
import time and every test reads what it produced through ``spans`` / ``metric_points``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics import Histogram
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from support.logs import LOG_EXPORTER, LOGGER_PROVIDER, events

from llm_otel import config

# pytest puts tests/ on sys.path, so without the `langchain` package the folder tests/langchain
# would import as a namespace package of that name; langchain-core 0.3 probes `import langchain`
# and then fails on its missing attributes. Make the import fail as it does for a user.
_langchain = importlib.util.find_spec("langchain")
if _langchain is not None and _langchain.origin is None and all(
        Path(p).resolve().parent == Path(__file__).resolve().parent for p in _langchain.submodule_search_locations):
    sys.modules["langchain"] = None  # type: ignore[assignment]

RECORDINGS = Path(os.environ.get("LLM_OTEL_RECORDINGS",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "recordings"))


def _preload() -> None:
    """Load the tokenizer encodings and the price table before any test: a span whose end
    needs them ends later while they load (never on the caller's thread), and tests read
    spans right after a call. tests/core/test_tokens.py and the deferred-end tests cover
    the loading itself."""
    import threading

    from llm_otel.core import tokens
    from llm_otel.usage import pricing

    for model in ("gpt-4o", "gpt-3.5-turbo"):
        ready = threading.Event()
        tokens.when_loaded(model, lambda _encoding: ready.set())
        ready.wait(60)
    ready = threading.Event()
    pricing.PRICES.when_ready(ready.set)
    ready.wait(60)


_preload()

set_logger_provider(LOGGER_PROVIDER)

SPAN_EXPORTER = InMemorySpanExporter()
METRIC_READER = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
_tracer_provider = TracerProvider()
_tracer_provider.add_span_processor(SimpleSpanProcessor(SPAN_EXPORTER))
trace.set_tracer_provider(_tracer_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[METRIC_READER]))


class Metrics:
    """Histogram points recorded since the test began (delta points, accumulated)."""

    def __init__(self, reader: InMemoryMetricReader) -> None:
        self._reader = reader
        self._points = []  # (metric name, point)

    def points(self, name: str):
        data = self._reader.get_metrics_data()
        for rm in (data.resource_metrics if data else ()):
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    self._points.extend((metric.name, p) for p in metric.data.data_points)
        return [p for n, p in self._points if n == name]

    def total(self, name: str, **attrs) -> float:
        """Sum of the values recorded for ``name`` whose attributes include ``attrs``
        (``gen_ai__token__type="input"`` means ``gen_ai.token.type``)."""
        return sum(p.sum for p in self.points(name)
                   if all(p.attributes.get(k.replace("__", ".")) == v for k, v in attrs.items()))

    def count(self, name: str, **attrs) -> int:
        return sum(p.count for p in self.points(name)
                   if all(p.attributes.get(k.replace("__", ".")) == v for k, v in attrs.items()))


@pytest.fixture
def spans():
    """The finished spans of this test, oldest first (call it: ``spans()``)."""
    SPAN_EXPORTER.clear()
    yield SPAN_EXPORTER.get_finished_spans
    SPAN_EXPORTER.clear()


@pytest.fixture(autouse=True)
def _fresh_events():
    """Every test starts with no GenAI events (log records) recorded."""
    LOG_EXPORTER.clear()
    yield


@pytest.fixture
def logs():
    """The GenAI events (log records) of this test, oldest first: ``logs()`` or
    ``logs("gen_ai.evaluation.result")``."""
    return events


@pytest.fixture
def metric_reader():
    METRIC_READER.get_metrics_data()  # drop what earlier tests recorded
    return Metrics(METRIC_READER)


@pytest.fixture
def capture_content(monkeypatch):
    """Turn content capture on for one test."""
    monkeypatch.setenv(config.CAPTURE_CONTENT_ENV, "SPAN_ONLY")
    config.reload()
    yield
    monkeypatch.delenv(config.CAPTURE_CONTENT_ENV)
    config.reload()


def pytest_sessionstart(session) -> None:
    """Most tests replay recorded OpenAI traffic, which lives outside the repository: say so
    once, plainly, instead of failing in every test that opens a cassette."""
    if not (RECORDINGS / "openai").is_dir():
        raise pytest.UsageError(
            f"the recorded OpenAI traffic the tests replay is not at {RECORDINGS}. It is not part of the "
            "repository: point LLM_OTEL_RECORDINGS at the recordings directory (the workspace keeps it at "
            "../shared/recordings, next to this checkout).")


@pytest.fixture
def recordings() -> Path:
    return RECORDINGS


@pytest.fixture(params=["separate", "report"])
def estimate_mode(request, monkeypatch):
    """Run a test under both ways local token estimates are reported: ``separate`` (the
    default: own attributes, never usage) and ``report`` (opted in: gen_ai.usage.*, marked)."""
    monkeypatch.setenv(config.ESTIMATED_USAGE_ENV, request.param)
    config.reload()
    yield request.param
    monkeypatch.delenv(config.ESTIMATED_USAGE_ENV)
    config.reload()

