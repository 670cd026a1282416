"""usage() tests: the global OpenAI instrumentor on for this folder; prices restored per test."""

from __future__ import annotations

from types import SimpleNamespace

import genai_prices
import pytest

from llm_otel.instrumentors.openai import OpenAIInstrumentor
from llm_otel.usage import reload_prices
from support.cassettes import Cassette


@pytest.fixture(scope="module", autouse=True)
def instrumentor():
    """Module scope: a "package" fixture in a folder without ``__init__.py`` lives for the
    whole session, and other folders' tests must not find OpenAI patched."""
    inst = OpenAIInstrumentor()
    was_on = inst.is_instrumented_by_opentelemetry
    if not was_on:
        inst.instrument()
    yield inst
    if not was_on:
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


@pytest.fixture
def published():
    """A model's rates in USD per 1M tokens as genai-prices publishes them now, found by
    genai-prices' own lookup: expected costs are derived from these, never from our code."""
    def rates(model: str, provider_id=None) -> SimpleNamespace:
        price = genai_prices.calc_price(genai_prices.Usage(), model, provider_id=provider_id).model_price

        def rate(key):
            value = getattr(price, key)
            return None if value is None else float(value)

        return SimpleNamespace(input=rate("input_mtok"), output=rate("output_mtok"),
                               cached=rate("cache_read_mtok"), write=rate("cache_write_mtok"))
    return rates
