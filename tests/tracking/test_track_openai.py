"""The classic pipeline on the real OpenAI SDK replaying recorded traffic, via track_openai."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

import llm_otel
from llm_otel import track, track_openai, update_current_trace
from tracking.conftest import by_name, parent_id

pytestmark = pytest.mark.usefixtures("no_global_openai")


def recorded_usage(cassette):
    """What the API reported, read from the recorded response bodies."""
    out = []
    for it in cassette.interactions:
        body = httpx.Response(it.status, headers=it.headers, content=it.body).json()
        out.append((body["model"], body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]))
    return out


def test_preprocess_generate_postprocess_is_one_trace_with_trace_data_and_exact_usage(spans, cassette):
    tape = cassette("test_chat/test_chat")
    client = track_openai(tape.openai_client())

    @track
    def preprocess(question):
        return question.strip()

    @track
    def generate(prompt):
        response = client.chat.completions.create(model="gpt-3.5-turbo",
                                                  messages=[{"role": "user", "content": prompt}])
        return response.choices[0].message.content

    @track
    def postprocess(text):
        return text.strip()

    @track(name="llm_chain")
    def chain(question):
        update_current_trace(tags=["jokes"], metadata={"topic": "opentelemetry"}, user_id="u-7",
                             session_id="chat-1",
                             feedback_scores=[{"name": "funny", "value": 0.5, "reason": "groan"}])
        return postprocess(generate(preprocess(question)))

    with llm_otel.usage() as u:
        answer = chain("  Tell me a joke about opentelemetry ")

    model, prompt_tokens, completion_tokens = recorded_usage(tape)[0]
    assert answer
    got = by_name(spans())
    root, llm = got["llm_chain"], got["chat gpt-3.5-turbo"]
    assert {s.context.trace_id for s in got.values()} == {root.context.trace_id}
    assert root.parent is None
    for name in ("preprocess", "generate", "postprocess"):
        assert parent_id(got[name]) == root.context.span_id
    assert parent_id(llm) == got["generate"].context.span_id
    assert root.attributes["llm_otel.tags"] == ("jokes",)
    assert root.attributes["llm_otel.metadata.topic"] == "opentelemetry"
    assert root.attributes["llm_otel.feedback.funny.value"] == 0.5
    assert root.attributes["session.id"] == "chat-1" and root.attributes["user.id"] == "u-7"
    assert json.loads(root.attributes["llm_otel.input"]) == {"question": "  Tell me a joke about opentelemetry "}
    assert root.attributes["llm_otel.output"] == answer

    assert (u.input_tokens, u.output_tokens, u.requests) == (prompt_tokens, completion_tokens, 1)
    assert u.total_tokens == prompt_tokens + completion_tokens
    expected_cost = (prompt_tokens * 0.50 + completion_tokens * 1.50) / 1e6  # gpt-3.5-turbo-0125
    assert u.cost_usd == pytest.approx(expected_cost)
    assert llm.attributes["llm_otel.cost.usd"] == pytest.approx(expected_cost)
    assert llm.attributes["gen_ai.usage.input_tokens"] == prompt_tokens
    assert list(u.by_model) == [model]


def test_track_openai_instruments_that_client_only(spans, cassette):
    tape = cassette("test_chat/test_chat")
    plain = tape.openai_client()
    traced = tape.openai_client()
    assert track_openai(traced) is traced and isinstance(traced, openai.OpenAI)
    messages = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]
    with llm_otel.usage() as u:
        plain.chat.completions.create(model="gpt-3.5-turbo", messages=messages)
        traced.chat.completions.create(model="gpt-3.5-turbo", messages=messages)
    (span,) = spans()
    assert span.name == "chat gpt-3.5-turbo"
    assert u.requests == 1  # usage() counts recorded calls; the untraced client records none


async def test_async_client_gather_counts_every_call(spans, cassette):
    tape = cassette("test_chat/test_with_asyncio_run")
    client = track_openai(tape.openai_client(async_=True))
    assert isinstance(client, openai.AsyncOpenAI)

    @track
    async def ask():
        response = await client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Tell me a joke about opentelemetry"}])
        return response.usage.total_tokens

    @track(name="fan_out")
    async def fan_out():
        return await asyncio.gather(ask(), ask(), ask())

    async with llm_otel.usage() as u:
        totals = await fan_out()
    recorded = recorded_usage(tape)
    assert u.requests == 3
    assert u.input_tokens == sum(p for _, p, _ in recorded)
    assert u.output_tokens == sum(c for _, _, c in recorded)
    assert u.total_tokens == sum(totals)
    got = spans()
    asks = {s.context.span_id for s in got if s.name == "ask"}
    llm_spans = [s for s in got if s.name == "chat gpt-3.5-turbo"]
    assert len(llm_spans) == 3 and {parent_id(s) for s in llm_spans} == asks


def test_a_tracked_generator_over_a_stream_outlives_its_llm_span(spans, cassette):
    tape = cassette("test_openai_metrics/test_chat_completion_metrics_stream")
    client = track_openai(tape.openai_client())

    @track
    def pieces():
        stream = client.chat.completions.create(
            model="gpt-3.5-turbo", stream=True, messages=[{"role": "user", "content": "a poem"}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    with llm_otel.usage() as u:
        text = "".join(pieces())
    assert text
    got = spans()
    llm = next(s for s in got if s.name == "chat gpt-3.5-turbo")
    gen = next(s for s in got if s.name == "pieces")
    assert parent_id(llm) == gen.context.span_id
    assert gen.end_time >= llm.end_time
    assert u.requests == 1
    # the recorded stream carries no usage: estimated, and kept apart from the API's usage
    assert u.estimated_output_tokens == llm.attributes["llm_otel.usage.estimated_output_tokens"] > 0
    assert u.output_tokens == 0 and u.cost_usd == 0 and u.estimated_cost_usd > 0
