"""Prices: genai-prices' bundled data by provider and model, the override layers, and cost on real
recorded calls. Expected costs come from the rates genai-prices publishes (found by its own lookup)."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

import genai_prices
import httpx
import pytest
from genai_prices.data import providers as bundled
from genai_prices.types import StartDateConstraint, TieredPrices

import llm_otel
from llm_otel.usage import cost_usd, price_for, reload_prices, set_price
from llm_otel.usage.pricing import Price, load_prices


def recorded_usage(cassette):
    return [httpx.Response(it.status, headers=it.headers, content=it.body).json()["usage"]
            for it in cassette.interactions]


def genai_total(model, provider_id=None, when=None, **usage):
    """What genai-prices' own ``calc_price`` charges (its lookup and arithmetic, not ours)."""
    calc = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider_id,
                                   genai_request_timestamp=when)
    return float(calc.total_price)


def test_openai_models_cost_what_genai_prices_publishes(published):
    mini, big = published("gpt-4o-mini"), published("gpt-4o")
    assert 0 < mini.cached < mini.input < mini.output and 0 < big.cached < big.input  # a cache discount to get right
    assert cost_usd("gpt-4o-mini", 1000, 200) == pytest.approx((1000 * mini.input + 200 * mini.output) / 1e6)
    assert cost_usd("gpt-4o", 1000, 200, cached_input_tokens=600, provider="openai") == pytest.approx(
        (400 * big.input + 600 * big.cached + 200 * big.output) / 1e6)
    assert cost_usd("gpt-4o", 1000, 200, cached_input_tokens=600) == pytest.approx(
        genai_total("gpt-4o", input_tokens=1000, cache_read_tokens=600, output_tokens=200))
    assert price_for("gpt-4o-mini") == Price(mini.input, mini.output, mini.cached, mini.input)


def test_claude_cache_reads_and_writes_are_priced_apart_and_included_in_input(published):
    claude = published("claude-sonnet-4-20250514", "anthropic")
    assert claude.cached < claude.input < claude.write < claude.output
    # input_tokens is the whole prompt: 100 plain + 600 read from the cache + 300 written to it
    expected = (100 * claude.input + 600 * claude.cached + 300 * claude.write + 50 * claude.output) / 1e6
    assert cost_usd("claude-sonnet-4-20250514", 1000, 50, 600, 300, provider="anthropic") == pytest.approx(expected)
    assert cost_usd("claude-sonnet-4-20250514", 1000, 50, 600, 300) == pytest.approx(expected)  # found by model
    assert price_for("claude-sonnet-4-20250514", provider="anthropic") == Price(
        claude.input, claude.output, claude.cached, claude.write)
    # Anthropic's API counts input_tokens without the cache: passed unconverted, it does not add up
    assert cost_usd("claude-sonnet-4-20250514", 100, 50, 600, 300, provider="anthropic") is None


@pytest.mark.parametrize("otel_name, genai_id, model", [
    ("openai", "openai", "gpt-4o-mini"),
    ("azure.ai.openai", "azure", "gpt-4o-mini"),
    ("anthropic", "anthropic", "claude-sonnet-4-20250514"),
    ("aws.bedrock", "aws", "us.anthropic.claude-sonnet-4-20250514-v1:0"),
    ("gcp.vertex_ai", "google", "claude-sonnet-4@20250514"),
    ("gcp.gemini", "google", "gemini-2.5-flash"),
    ("gcp.gen_ai", "google", "gemini-2.5-flash"),
    ("mistral_ai", "mistral", "mistral-large-latest"),
    ("groq", "groq", "llama-3.3-70b-versatile"),
    ("deepseek", "deepseek", "deepseek-chat"),
    ("x_ai", "x-ai", "grok-4"),
    ("cohere", "cohere", "command-r"),
    ("perplexity", "perplexity", "sonar"),
])
def test_each_genai_provider_name_prices_from_that_providers_list(otel_name, genai_id, model):
    usage = dict(input_tokens=2000, cache_read_tokens=500, output_tokens=300)
    got = cost_usd(model, 2000, 300, cached_input_tokens=500, provider=otel_name)
    assert got is not None and got > 0
    assert got == pytest.approx(genai_total(model, genai_id, **usage))


def test_a_fee_per_request_is_part_of_the_cost():
    fee = genai_total("sonar", "perplexity")  # no tokens at all: what one request costs by itself
    assert fee > 0
    assert cost_usd("sonar", 0, 0, provider="perplexity") == pytest.approx(fee)
    assert cost_usd("sonar", 1000, 100, provider="perplexity") == pytest.approx(
        genai_total("sonar", "perplexity", input_tokens=1000, output_tokens=100))


def test_a_tiered_price_takes_the_tier_of_the_whole_input():
    model = next(m for m in next(p for p in bundled if p.id == "google").models if m.id == "gemini-2.5-pro")
    price = model.get_prices(datetime.now(timezone.utc))
    assert isinstance(price.input_mtok, TieredPrices)
    (tier,) = price.input_mtok.tiers
    small, large = tier.start, tier.start + 1  # a tier applies above its start, to all tokens
    assert cost_usd("gemini-2.5-pro", small, 0, provider="gcp.gemini") == pytest.approx(
        small * float(price.input_mtok.base) / 1e6)
    assert cost_usd("gemini-2.5-pro", large, 0, provider="gcp.gemini") == pytest.approx(
        large * float(tier.price) / 1e6)
    assert cost_usd("gemini-2.5-pro", large, 100, 1000, provider="gcp.gemini") == pytest.approx(
        genai_total("gemini-2.5-pro", "google", input_tokens=large, cache_read_tokens=1000, output_tokens=100))
    assert float(tier.price) != float(price.input_mtok.base)


def test_a_price_that_changed_on_a_date_is_the_one_in_force_now():
    usage = dict(input_tokens=300_000, output_tokens=1000)
    now = datetime.now(timezone.utc)
    changed = [(p.id, m.id, c.constraint.start_date) for p in bundled for m in p.models
               if p.id in ("openai", "anthropic") and isinstance(m.prices, list)
               for c in m.prices if isinstance(c.constraint, StartDateConstraint) and c.constraint.start_date < now.date()]
    provider_id, model, start = changed[0]
    before = datetime.combine(start - timedelta(days=1), time(12), timezone.utc)
    old, current = genai_total(model, provider_id, before, **usage), genai_total(model, provider_id, now, **usage)
    assert old != current
    assert cost_usd(model, usage["input_tokens"], usage["output_tokens"], provider=provider_id) == pytest.approx(current)


def test_dated_names_match_as_genai_prices_matches_them(published):
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini") == price_for("GPT-4o-mini ")
    assert price_for("gpt-4o-2024-08-06") == price_for("gpt-4o")
    # a snapshot priced on its own (gpt-4o-2024-05-13 in recent data) keeps its own price
    assert price_for("gpt-4o-2024-05-13").input == published("gpt-4o-2024-05-13").input
    assert price_for("claude-sonnet-4-20250514") == price_for("claude-sonnet-4")


def test_unknown_models_have_no_cost_never_a_guess():
    assert price_for("my-azure-deployment") is None
    assert price_for("my-azure-deployment", provider="azure.ai.openai") is None
    assert cost_usd("house-model-v3", 10, 10) is None
    assert cost_usd("house-model-v3", 10, 10, provider="my-gateway") is None
    assert cost_usd("claude-sonnet-4", 10, 10, provider="openai") is None  # not on that provider's list
    assert cost_usd("gpt-4o", None, None) is None
    assert cost_usd("gpt-4o", 10, 5, cached_input_tokens=11) is None  # usage that does not add up
    assert cost_usd("text-embedding-3-small", 10, 5, provider="openai") is None  # output, but no output rate
    assert cost_usd("text-embedding-3-small", 10, 0, provider="openai") > 0
    assert cost_usd(123, 10, 1) is None  # a malformed response model is no model
    assert cost_usd("gpt-4o-mini", 10, 1, provider=123) == cost_usd("gpt-4o-mini", 10, 1)


def test_a_provider_name_genai_prices_does_not_know_prices_by_model():
    assert cost_usd("gpt-4o-mini", 100, 10, provider="my-gateway") == pytest.approx(
        cost_usd("gpt-4o-mini", 100, 10))


def test_the_response_model_first_then_the_requested_one(published):
    mini = published("gpt-4o-mini")
    assert cost_usd("my-deployment", 100, 0, fallback_model="gpt-4o-mini", provider="azure.ai.openai") == (
        pytest.approx(100 * mini.input / 1e6))


def test_cost_arithmetic_with_cached_input_and_cache_writes():
    set_price("cachey", input=2.0, output=8.0, cached_input=0.5, cache_write=2.5)
    assert cost_usd("cachey", 1000, 100, cached_input_tokens=600, cache_write_tokens=300) == pytest.approx(
        (100 * 2.0 + 600 * 0.5 + 300 * 2.5 + 100 * 8.0) / 1e6)
    set_price("plain", input=1.0)  # no cached rate: cached tokens at the input rate
    assert cost_usd("plain", 1000, 0, cached_input_tokens=1000) == pytest.approx(1000 / 1e6)


def test_set_price_wins_over_genai_prices_for_every_name_and_provider(published):
    mini = published("gpt-4o-mini")
    set_price("gpt-4o-mini", input=0.1, output=0.2)
    assert price_for("gpt-4o-mini-2024-07-18") == Price(0.1, 0.2)
    assert cost_usd("gpt-4o-mini-2024-07-18", 1000, 100, provider="openai") == pytest.approx((100 + 20) / 1e6)
    with pytest.raises(ValueError):
        set_price("x", input=-1)
    reload_prices(clear_overrides=True)
    assert price_for("gpt-4o-mini").input == mini.input


def test_the_prices_file_wins_over_genai_prices_and_set_price_over_both(tmp_path, monkeypatch, published):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"gpt-4o-mini": {"input": 1.0, "output": 2.0},
                                             "house-model": {"input": 3.0, "output": 4.0}}}))
    monkeypatch.setenv("LLM_OTEL_PRICES_FILE", str(prices))
    reload_prices()
    assert price_for("gpt-4o-mini-2024-07-18", provider="openai") == Price(1.0, 2.0)
    assert price_for("house-model") == Price(3.0, 4.0)
    assert price_for("gpt-4o").input == published("gpt-4o").input  # the rest comes from genai-prices
    set_price("gpt-4o-mini", input=0.1, output=0.2)
    assert price_for("gpt-4o-mini") == Price(0.1, 0.2)
    assert any(str(prices) in line and "2 models" in line for line in load_prices())


def test_a_broken_prices_file_is_reported_and_ignored(tmp_path, monkeypatch, caplog, published):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("LLM_OTEL_PRICES_FILE", str(bad))
    reload_prices()
    assert price_for("gpt-4o-mini").input == published("gpt-4o-mini").input
    assert "LLM_OTEL_PRICES_FILE" in caplog.text


def test_load_prices_names_the_sources():
    set_price("house-model", input=1.0)
    sources = load_prices()
    assert sources[0] == "set_price: 1 models"
    assert f"genai-prices {genai_prices.__version__} bundled data" in sources[-1]


def test_prompt_caching_on_the_real_sdk_prices_cached_tokens(spans, cassette, published):
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
    mini = published("gpt-4o-mini-2024-07-18", "openai")
    expected = [((r["prompt_tokens"] - c) * mini.input + c * mini.cached + r["completion_tokens"] * mini.output) / 1e6
                for r, c in zip(recorded, cached)]
    assert u.cost_usd == pytest.approx(sum(expected))
    assert [s.attributes["llm_otel.cost.usd"] for s in spans()] == pytest.approx(expected)
    assert list(u.by_model) == ["gpt-4o-mini-2024-07-18"]


def test_embeddings_priced_by_the_requested_model_when_the_answer_names_a_variant(spans, cassette, published):
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
    assert u.cost_usd == pytest.approx(tokens * published("text-embedding-ada-002", "openai").input / 1e6)


def test_a_call_that_cannot_be_priced_leaves_cost_out_of_the_span_and_the_total(spans, cassette):
    tape = cassette("test_chat/test_chat")
    client = tape.openai_client()
    with llm_otel.usage() as u:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    assert u.cost_usd is not None  # genai-prices knows gpt-3.5-turbo-0125
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
