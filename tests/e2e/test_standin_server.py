"""The stand-in OpenAI server, driven by the real ``openai`` SDK over real local HTTP.

It must speak the real wire format (the SDK parses it, SSE included) and be deterministic,
since the examples, the demo and the e2e assertions rely on it.
"""

from __future__ import annotations

import json
import os

import openai
import pytest

from e2e_support import standin_server
from support.standin import running_standin

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"}}, "required": ["city", "unit", "days"]}}}]


@pytest.fixture(scope="module")
def server():
    with running_standin() as served:
        yield served


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server[0], api_key="anything", max_retries=0)


def test_chat_is_deterministic_with_consistent_usage(client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there, how are you?"}]
    one = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    two = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert one.model_dump() == two.model_dump()
    assert one.id.startswith("chatcmpl-") and one.model == "gpt-4o-mini"
    text = one.choices[0].message.content
    assert "Hello there, how are you?" in text and one.choices[0].finish_reason == "stop"
    usage = one.usage
    assert usage.completion_tokens == standin_server.count_tokens(text)
    assert usage.prompt_tokens == 3 + sum(3 + standin_server.count_tokens(m["content"]) for m in messages)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    other = client.chat.completions.create(model="gpt-4o-mini", messages=messages[1:])
    assert other.id != one.id and other.usage.prompt_tokens < usage.prompt_tokens


def test_max_tokens_truncates_with_length_finish_reason(client):
    r = client.chat.completions.create(model="gpt-4o-mini", max_tokens=3,
                                       messages=[{"role": "user", "content": "Tell me a long story"}])
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_stream_matches_the_full_reply_and_ends_with_usage(client):
    messages = [{"role": "user", "content": "Count to three."}]
    full = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert len(chunks) > 4  # really split up
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == full.usage.total_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    plain = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
    assert all(c.usage is None for c in plain)  # usage only when asked for


def test_tool_call_then_answer_from_the_tool_result(client):
    messages = [{"role": "user", "content": "What's the weather in San Francisco?"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "San Francisco", "unit": "celsius", "days": 3}
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert "sunny, 21C" in second.choices[0].message.content
    none = client.chat.completions.create(model="gpt-4o-mini", messages=messages[:1], tools=TOOLS,
                                          tool_choice="none")
    assert none.choices[0].message.tool_calls is None


def test_streamed_tool_call_reassembles(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=TOOLS,
        stream=True, stream_options={"include_usage": True})
    name, args, reasons = "", "", []
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            reasons.append(choice.finish_reason)
    assert name == "get_weather" and json.loads(args)["city"] == "Oslo"
    assert reasons[-1] == "tool_calls"


def test_n_choices(client):
    r = client.chat.completions.create(model="gpt-4o-mini", n=2, messages=[{"role": "user", "content": "Hi"}])
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].message.content != r.choices[1].message.content


def test_embeddings_float_and_base64_agree(client):
    floats = client.embeddings.create(model="text-embedding-3-small", input=["cats purr", "dogs bark"],
                                      encoding_format="float", dimensions=64)
    packed = client.embeddings.create(model="text-embedding-3-small", input=["cats purr", "dogs bark"])
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 64
    assert floats.usage.prompt_tokens == 4
    assert len(packed.data[0].embedding) == 256  # the SDK asked for base64 and decoded it
    a = floats.data[0].embedding
    assert sum(x * x for x in a) == pytest.approx(1.0)
    near = client.embeddings.create(model="text-embedding-3-small", input="cats purr loudly",
                                    encoding_format="float", dimensions=64).data[0].embedding
    far = floats.data[1].embedding
    dot = lambda u, v: sum(x * y for x, y in zip(u, v))  # noqa: E731
    assert dot(a, near) > dot(a, far)  # shared words, similar vectors: retrieval works


def test_completions_and_models(client):
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert r.choices[0].text.strip() and r.usage.prompt_tokens == 2
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]


def test_errors_are_the_apis(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="does-not-exist", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])


def test_journal_records_what_was_served(server, client):
    _, journal = server
    before = len(journal)
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "log me"}])
    path, body, response = journal[before]
    assert path.endswith("/chat/completions") and body["messages"][0]["content"] == "log me"
    assert response["id"] == r.id


def test_ensure_openai_env_prefers_the_users_settings(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-user")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert standin_server.ensure_openai_env() == "the OpenAI API"
    assert "OPENAI_BASE_URL" not in os.environ
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    assert standin_server.ensure_openai_env() == "http://localhost:11434/v1"
    assert os.environ["OPENAI_API_KEY"] == "not-needed"


def test_ensure_openai_env_starts_the_standin_when_nothing_is_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    url = standin_server.ensure_openai_env()
    assert os.environ["OPENAI_BASE_URL"] == url and url.startswith("http://127.0.0.1:")
    reply = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
    assert "ping" in reply.choices[0].message.content
