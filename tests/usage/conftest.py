"""usage() tests: the global OpenAI instrumentor on for this folder; prices restored per test."""

from __future__ import annotations

import pytest

from llm_otel.instrumentors.openai import OpenAIInstrumentor
from llm_otel.usage import reload_prices
from support.cassettes import Cassette


@pytest.fixture(scope="package", autouse=True)
def instrumentor():
    inst = OpenAIInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()


@pytest.fixture(autouse=True)
def builtin_prices(monkeypatch):
    monkeypatch.delenv("LLM_OTEL_PRICES_FILE", raising=False)
    reload_prices(clear_overrides=True)
    yield
    reload_prices(clear_overrides=True)


@pytest.fixture
def cassette(recordings):
    def load(name: str) -> Cassette:
        return Cassette(recordings / "openai" / f"{name}.yaml")
    return load
