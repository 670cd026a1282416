"""Fixtures of the conventions tests: the OpenAI SDK instrumented for this folder, the
conventions profile and the content mode switched per test, metrics read per call."""

from __future__ import annotations

import pytest

from conv_support import V010, V141, Metrics
from llm_otel import config
from llm_otel.instrumentors.openai import OpenAIInstrumentor
from support.cassettes import Cassette


@pytest.fixture(scope="module", autouse=True)
def instrumentor():
    inst = OpenAIInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()


def _switch(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    config.reload()


@pytest.fixture(params=[V141, V010])
def profile(request, monkeypatch):
    """Each test once per profile: v1.41 (the default) and v0.1.0 (the opt-in)."""
    if request.param == V010:
        _switch(monkeypatch, config.SEMCONV_OPT_IN_ENV, "gen_ai_latest_experimental")
    else:
        monkeypatch.delenv(config.SEMCONV_OPT_IN_ENV, raising=False)
        config.reload()
    yield request.param
    monkeypatch.delenv(config.SEMCONV_OPT_IN_ENV, raising=False)
    config.reload()


@pytest.fixture
def content_mode(monkeypatch):
    """``content_mode("EVENT_ONLY")``: that value of the capture variable for this test."""
    yield lambda value: _switch(monkeypatch, config.CAPTURE_CONTENT_ENV, value)
    monkeypatch.delenv(config.CAPTURE_CONTENT_ENV, raising=False)
    config.reload()


@pytest.fixture
def metrics(metric_reader):
    """``metrics.read(id, ...)``: name -> unit, kind and the points of this test's calls."""
    return Metrics(metric_reader._reader)


@pytest.fixture
def cassette(recordings):
    return lambda name: Cassette(recordings / "openai" / f"{name}.yaml")
