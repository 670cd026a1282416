"""Prices: the shipped table, snapshot matching, overrides, and cost on real recorded calls."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import httpx
import pytest

import llm_otel
from llm_otel.usage import cost_usd, price_for, reload_prices, set_price
from llm_otel.usage.pricing import Price

PRICES = Path(llm_otel.usage.__file__).with_name("prices.json")


def recorded_usage(cassette):
    return [httpx.Response(it.status, headers=it.headers, content=it.body).json()["usage"]
            for it in cassette.interactions]


def test_the_shipped_table_is_dated_sourced_and_well_formed():
    data = json.loads(PRICES.read_text())
    assert "openai.com" in data["_source"]
    datetime.date.fromisoformat(data["_as_of"])
    assert data["unit"] == "USD per 1M tokens"
    for name, entry in data["models"].items():
        assert name == name.lower() and set(entry) <= {"input", "output", "cached_input", "cache_write"}
        assert entry["input"] >= 0
        if "cached_input" in entry:
            assert entry["cached_input"] <= entry["input"]


def test_dated_snapshots_match_their_base_model_unless_priced_themselves():
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini") == Price(0.15, 0.60, 0.075)
    assert price_for("GPT-4o-mini") == price_for("gpt-4o-mini")
    assert price_for("gpt-4o-2024-08-06") == price_for("gpt-4o")
    assert price_for("gpt-4o-2024-05-13") == Price(5.00, 15.00)  # the older, dearer snapshot


def test_unknown_models_have_no_cost_never_a_guess():
    assert price_for("gpt-3.5-turbo-0613") is None  # a snapshot we have no price for
    assert price_for("my-azure-deployment") is None
    assert price_for("ft:gpt-4o-mini-2024-07-18:org::abc") is None
    assert cost_usd("my-azure-deployment", 10, 10) is None
    assert cost_usd("gpt-4o", None, None) is None
    assert cost_usd("text-embedding-3-small", 10, 5) is None  # output tokens but no output rate


def test_cost_arithmetic_with_cached_input_and_cache_writes():
    set_price("cachey", input=2.0, output=8.0, cached_input=0.5, cache_write=2.5)
    assert cost_usd("cachey", 1000, 100, cached_input_tokens=600, cache_write_tokens=300) == pytest.approx(
        (100 * 2.0 + 600 * 0.5 + 300 * 2.5 + 100 * 8.0) / 1e6)
    set_price("plain", input=1.0)  # no cached rate: cached tokens at the input rate
    assert cost_usd("plain", 1000, 0, cached_input_tokens=1000) == pytest.approx(1000 / 1e6)


def test_set_price_overrides_the_table_and_the_env_file(tmp_path, monkeypatch):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"gpt-4o-mini": {"input": 1.0, "output": 2.0},
                                             "house-model": {"input": 3.0, "output": 4.0}}}))
    monkeypatch.setenv("LLM_OTEL_PRICES_FILE", str(prices))
    reload_prices()
    assert price_for("gpt-4o-mini-2024-07-18") == Price(1.0, 2.0)
    assert price_for("house-model") == Price(3.0, 4.0)
    assert price_for("gpt-4o") == Price(2.50, 10.00, 1.25)  # the rest of the table stays
    set_price("gpt-4o-mini", input=0.1, output=0.2)
    assert price_for("gpt-4o-mini") == Price(0.1, 0.2)
    with pytest.raises(ValueError):
        set_price("x", input=-1)


def test_a_broken_prices_file_is_reported_and_ignored(tmp_path, monkeypatch, caplog):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("LLM_OTEL_PRICES_FILE", str(bad))
    reload_prices()
    assert price_for("gpt-4o-mini") == Price(0.15, 0.60, 0.075)
    assert "LLM_OTEL_PRICES_FILE" in caplog.text


def test_prompt_caching_on_the_real_sdk_prices_cached_tokens(spans, cassette):
    tape = cassette("test_prompt_caching/test_openai_prompt_caching")
    client = tape.openai_client()
    recorded = recorded_usage(tape)
    messages = [{"role": "user", "content": "summarize"}]
    with llm_otel.usage() as u:
        for _ in recorded:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    cached = [r["prompt_tokens_details"]["cached_tokens"] for r in recorded]
    assert sum(cached) > 0
    assert u.cached_input_tokens == sum(cached)
    assert u.input_tokens == sum(r["prompt_tokens"] for r in recorded)
    assert u.output_tokens == sum(r["completion_tokens"] for r in recorded)
    expected = [((r["prompt_tokens"] - c) * 0.15 + c * 0.075 + r["completion_tokens"] * 0.60) / 1e6
                for r, c in zip(recorded, cached)]
    assert u.cost_usd == pytest.approx(sum(expected))
    assert [s.attributes["llm_otel.cost.usd"] for s in spans()] == pytest.approx(expected)
    assert list(u.by_model) == ["gpt-4o-mini-2024-07-18"]


def test_embeddings_priced_by_the_requested_model_when_the_answer_names_a_variant(spans, cassette):
    tape = cassette("test_embeddings/test_embeddings")
    client = tape.openai_client()
    with llm_otel.usage() as u:
        for _ in tape.interactions:
            client.embeddings.create(model="text-embedding-ada-002", input="Tell me a joke about opentelemetry")
    tokens = sum(r["prompt_tokens"] for r in recorded_usage(tape))
    # embeddings are counted apart from generation (as LlamaIndex's TokenCountingHandler does)
    assert (u.embedding_tokens, u.embedding_requests, u.input_tokens, u.requests) == (tokens, 4, 0, 0)
    assert u.total_tokens == tokens
    assert set(u.by_model) == {"text-embedding-ada-002", "text-embedding-ada-002-v2"}
    assert u.cost_usd == pytest.approx(tokens * 0.10 / 1e6)


def test_a_call_that_cannot_be_priced_leaves_cost_out_of_the_span_and_the_total(spans, cassette):
    tape = cassette("test_chat/test_chat")
    client = tape.openai_client()
    with llm_otel.usage() as u:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    assert u.cost_usd is not None  # gpt-3.5-turbo-0125 is in the table
    set_price("gpt-3.5-turbo-0125", input=0.5)  # an override without an output rate: no guess
    with llm_otel.usage() as unknown:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    assert unknown.cost_usd is None and unknown.unpriced_requests == 1
    assert unknown.by_model["gpt-3.5-turbo-0125"].cost_usd is None
    assert unknown.total_tokens > 0
    assert "llm_otel.cost.usd" not in spans()[-1].attributes


def test_track_openai_with_the_global_instrumentor_on_records_each_call_once(spans, cassette):
    tape = cassette("test_chat/test_chat")
    client = llm_otel.track_openai(tape.openai_client())
    with llm_otel.usage() as u:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    (span,) = spans()
    assert u.requests == 1 and u.input_tokens == recorded_usage(tape)[0]["prompt_tokens"]
    assert span.attributes["llm_otel.cost.usd"] == pytest.approx(u.cost_usd)
