"""Azure OpenAI: real ``AzureOpenAI`` / ``AsyncAzureOpenAI`` clients over real HTTP to a local
server that answers Azure's paths (``/openai/deployments/{deployment}/...``) with recorded
OpenAI replies. Every path reports the provider ``azure.ai.openai``; the API's extras stay
under ``openai.*``, where the conventions put them for Azure OpenAI too."""

from __future__ import annotations

import openai
import pytest

from oai_support import http_client, json_reply, llm_spans, local_server, needs_sdk

API_VERSION = "2024-10-21"
JOKE = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]
ENDPOINTS = ("/chat/completions", "/embeddings", "/responses")


@pytest.fixture
def azure(cassette):
    """``azure(name)`` -> (served, client factory): recorded replies for the Azure paths."""
    def start(name):
        recorded = cassette(name)

        def answer(method, path, body):
            endpoint = next(e for e in ENDPOINTS if path.endswith(e))
            it = recorded.next(method, "/v1" + endpoint)
            return it.status, it.headers, it.body
        return answer
    return start


def _client(served, async_=False, **kwargs):
    cls = openai.AsyncAzureOpenAI if async_ else openai.AzureOpenAI
    return cls(azure_endpoint=served.url, api_key="0123456789abcdef0123456789abcdef", api_version=API_VERSION,
               max_retries=0, http_client=http_client(async_), **kwargs)


def _no_azure_keys(span):
    assert span.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert not [k for k in span.attributes if k.startswith("azure.")]


def test_chat_sync(azure, spans, metric_reader):
    with local_server(azure("test_chat/test_chat")) as served:
        result = _client(served).chat.completions.create(model="gpt-35-turbo", messages=JOKE)
    assert served.requests[0][1] == "/openai/deployments/gpt-35-turbo/chat/completions"
    assert f"api-version={API_VERSION}" in served.requests[0][2]
    [span] = llm_spans(spans)
    _no_azure_keys(span)
    a = span.attributes
    assert a["gen_ai.response.id"] == result.id
    assert a["openai.api.type"] == "chat_completions"
    assert a["openai.response.system_fingerprint"] == result.system_fingerprint
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", served.port)
    assert metric_reader.count("gen_ai.client.operation.duration", gen_ai__provider__name="azure.ai.openai") == 1
    assert metric_reader.total("gen_ai.client.token.usage", gen_ai__provider__name="azure.ai.openai",
                               gen_ai__token__type="input") == result.usage.prompt_tokens


async def test_chat_async(azure, spans):
    with local_server(azure("test_chat/test_with_asyncio_run")) as served:
        client = _client(served, async_=True, azure_deployment="gpt-35-turbo")
        result = await client.chat.completions.create(model="gpt-35-turbo", messages=JOKE)
    assert served.requests[0][1] == "/openai/deployments/gpt-35-turbo/chat/completions"
    [span] = llm_spans(spans)
    _no_azure_keys(span)
    assert span.attributes["gen_ai.response.id"] == result.id


def test_chat_stream(azure, spans):
    with local_server(azure("test_chat/test_chat_streaming_memory_leak_prevention")) as served:
        stream = _client(served).chat.completions.create(model="gpt-35-turbo", messages=JOKE, stream=True)
        chunks = list(stream)
    [span] = llm_spans(spans)
    _no_azure_keys(span)
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.response.id"] == chunks[0].id
    assert span.attributes["openai.response.system_fingerprint"] == "fp_2b778c6b35"


def test_embeddings(azure, spans):
    with local_server(azure("test_embeddings/test_embeddings")) as served:
        result = _client(served).embeddings.create(model="text-embedding-ada-002", input="hello")
    assert served.requests[0][1] == "/openai/deployments/text-embedding-ada-002/embeddings"
    [span] = llm_spans(spans)
    _no_azure_keys(span)
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert "openai.request.input_count" not in span.attributes


def test_responses(azure, spans):
    needs_sdk("responses", "no Responses API")
    with local_server(azure("test_responses/test_responses")) as served:
        result = _client(served).responses.create(model="gpt-4.1-nano", input="What is the capital of France?")
    assert served.requests[0][1] == "/openai/responses"
    [span] = llm_spans(spans)
    _no_azure_keys(span)
    assert span.attributes["openai.api.type"] == "responses"
    assert span.attributes["gen_ai.response.id"] == result.id


def test_error_does_not_leak_the_azure_key(spans):
    """Azure keys are 32 hex characters, not ``sk-``: a 401 that echoes it is masked too."""
    key = "0123456789abcdef0123456789abcdef"

    def answer(method, path, body):
        return json_reply({"error": {"code": "401", "message": f"Access denied: invalid key {key}."}}, status=401)

    with local_server(answer) as served:
        with pytest.raises(openai.AuthenticationError):
            _client(served).chat.completions.create(model="gpt-35-turbo", messages=JOKE)
    [span] = llm_spans(spans)
    _no_azure_keys(span)
    recorded = str(dict(span.attributes)) + str(span.status.description) + str(
        [dict(e.attributes) for e in span.events])
    assert key not in recorded
