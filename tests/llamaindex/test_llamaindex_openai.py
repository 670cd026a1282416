"""LlamaIndex's OpenAI LLM and embeddings on the instrumented OpenAI SDK, recorded traffic over
local HTTP: one span and one count per call, the SDK's exact data merged into it."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import version

import pytest

import pytest
from li_support import gen_ai, parent_of, roots
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import ChatMessage
from llama_index.core.schema import TextNode
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI
from opentelemetry import trace
from packaging.version import Version
from support.cassettes import Cassette, load, serve

TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"
FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
KEY = "sk-test-not-a-real-key"
tracer = trace.get_tracer("test")


def _recorded_usage(path, route):
    """(prompt, completion) tokens of the first recorded response on ``route``."""
    import gzip
    for it in load(path):
        if it.path == route:
            body = it.body
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            data = json.loads(body)
            return data["usage"].get("prompt_tokens"), data["usage"].get("completion_tokens"), data
    raise AssertionError(route)


def test_rag_with_openai_llm_and_embeddings_no_double_count(spans, metric_reader, li_recordings):
    path = li_recordings / "test_chroma_vector_store/test_rag_with_chroma.yaml"
    prompt_tokens, completion_tokens, recorded = _recorded_usage(path, "/v1/chat/completions")
    with serve(Cassette(path)) as url:
        embed = OpenAIEmbedding(model="text-embedding-3-large", api_key=KEY, api_base=url, max_retries=0)
        llm = OpenAI(model="gpt-3.5-turbo", temperature=0.1, api_key=KEY, api_base=url, max_retries=0)
        nodes = [TextNode(text=f"Paul Graham essay part {i}.", id_=f"n{i}") for i in range(22)]
        index = VectorStoreIndex(nodes, embed_model=embed)
        engine = index.as_query_engine(llm=llm, similarity_top_k=2)
        with tracer.start_as_current_span("request") as request:
            response = engine.query("What did the author do growing up?")
    assert str(response) == recorded["choices"][0]["message"]["content"]
    got = spans()
    embeddings = gen_ai(got, "embeddings")
    assert len(embeddings) == 2  # the index build and the query: the SDK added no span of its own
    build, query_embed = sorted(embeddings, key=lambda s: s.start_time)
    assert build.attributes["gen_ai.provider.name"] == "openai"
    assert build.attributes["gen_ai.request.model"] == "text-embedding-3-large"
    assert build.attributes["llm_otel.llamaindex.inputs"] == 22
    assert build.attributes["server.address"] == "127.0.0.1"  # learnt from the SDK underneath
    assert parent_of(got, query_embed).attributes["gen_ai.operation.name"] == "retrieval"

    (chat,) = gen_ai(got, "chat")
    assert chat.name == "chat gpt-3.5-turbo"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.request.temperature"] == 0.1
    assert chat.attributes["gen_ai.response.id"] == recorded["id"]
    assert chat.attributes["gen_ai.response.model"] == recorded["model"]
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert chat.attributes["gen_ai.usage.input_tokens"] == prompt_tokens
    assert chat.attributes["gen_ai.usage.output_tokens"] == completion_tokens
    assert "llm_otel.usage.estimated" not in chat.attributes
    assert parent_of(got, chat).name.startswith("templating ")
    assert chat.context.trace_id == request.get_span_context().trace_id
    assert [s.name for s in roots([s for s in got if s.context.trace_id == chat.context.trace_id])] == ["request"]

    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 1
    assert metric_reader.total(TOKENS, gen_ai__operation__name="chat", gen_ai__token__type="input") == prompt_tokens
    assert metric_reader.total(TOKENS, gen_ai__operation__name="chat", gen_ai__token__type="output") \
        == completion_tokens
    assert metric_reader.count(DURATION, gen_ai__operation__name="embeddings") == 2


def test_streamed_openai_chat_is_one_span(spans, metric_reader, recordings):
    path = recordings / "openai/test_chat/test_chat_streaming_partial_consumption.yaml"
    with serve(Cassette(path)) as url:
        llm = OpenAI(model="gpt-3.5-turbo", api_key=KEY, api_base=url, max_retries=0)
        with tracer.start_as_current_span("request"):
            chunks = list(llm.stream_chat([ChatMessage(role="user", content="Tell me a joke about opentelemetry")]))
    assert len(chunks) > 3
    got = spans()
    (chat,) = gen_ai(got, "chat")
    assert chat.attributes["gen_ai.request.stream"] is True
    assert chat.attributes["gen_ai.response.id"].startswith("chatcmpl-")  # from the SDK's stream
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert chat.attributes["llm_otel.usage.estimated_output_tokens"] > 0  # the stream reported no usage
    assert parent_of(got, chat).name == "request"
    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 1
    assert metric_reader.count(FIRST_CHUNK) == 1


def test_async_streamed_openai_chat_is_one_span(spans, metric_reader, recordings):
    path = recordings / "openai/test_chat/test_chat_async_streaming.yaml"

    async def main(url):
        llm = OpenAI(model="gpt-3.5-turbo", api_key=KEY, api_base=url, max_retries=0)
        with tracer.start_as_current_span("request"):
            stream = await llm.astream_chat([ChatMessage(role="user", content="Tell me a joke about opentelemetry")])
            return [c async for c in stream]

    with serve(Cassette(path)) as url:
        chunks = asyncio.run(main(url))
    assert chunks
    (chat,) = gen_ai(spans(), "chat")
    assert chat.attributes["gen_ai.response.id"].startswith("chatcmpl-")
    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 1
    assert metric_reader.count(FIRST_CHUNK) == 1


@pytest.mark.skipif(Version(version("llama-index-llms-openai")) < Version("0.8"), reason=(
    "the recording holds the response_format request llama-index-llms-openai 0.8 sends; 0.4 asks for a tool call"))
def test_structured_llm_with_recorded_openai(spans, metric_reader, li_recordings):
    from llama_index.llms.openai.utils import is_json_schema_supported
    from pydantic import BaseModel, Field

    if not is_json_schema_supported("gpt-4o"):
        pytest.skip("this llama-index-llms-openai / openai pair asks for structured output by function "
                    "calling; the recording answers a response_format request")

    class Invoice(BaseModel):
        """Example model for structured output testing."""

        invoice_id: str = Field(description="Invoice identifier")
        amount: float = Field(description="Invoice amount")
        customer_name: str = Field(description="Customer name")

    path = li_recordings / "test_structured_llm/test_structured_llm_model_attributes.yaml"
    prompt_tokens, completion_tokens, _ = _recorded_usage(path, "/v1/chat/completions")
    with serve(Cassette(path)) as url:
        llm = OpenAI(model="gpt-4o", temperature=0.7, api_key=KEY, api_base=url, max_retries=0)
        result = llm.as_structured_llm(Invoice).chat([
            ChatMessage(role="system", content="Extract invoice information from the following text."),
            ChatMessage(role="user", content="Invoice #12345 for $199.99 to John Smith")])
    assert result.raw.customer_name == "John Smith"
    (chat,) = gen_ai(spans(), "chat")
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o"
    assert chat.attributes["gen_ai.usage.input_tokens"] == prompt_tokens
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == completion_tokens


def test_index_build_in_several_embedding_batches_adds_them_up(spans, metric_reader):
    """An index larger than embed_batch_size sends one API request per batch: the one
    embeddings span stands for all of them (usage summed), usage() counts every request."""
    import llm_otel
    from llama_index.core import Document
    from support.standin import running_standin

    with running_standin() as (url, journal):
        embed = OpenAIEmbedding(model="text-embedding-3-small", api_key=KEY, api_base=url, max_retries=0,
                                embed_batch_size=2)
        with llm_otel.usage() as counted:
            index = VectorStoreIndex.from_documents(
                [Document(text=f"note {i}: traces of an LLM app, batch by batch") for i in range(5)],
                embed_model=embed)
    served = [r for path, _b, r in journal if path.endswith("/embeddings")]
    assert len(served) == 3 == len(index.docstore.docs) // 2 + 1  # 2 + 2 + 1 texts
    tokens = sum(r["usage"]["prompt_tokens"] for r in served)
    (span,) = gen_ai(spans(), "embeddings")
    assert span.attributes["gen_ai.usage.input_tokens"] == tokens
    assert span.attributes["llm_otel.llamaindex.inputs"] == 5
    assert counted.embedding_requests == 3 and counted.embedding_tokens == tokens
    assert metric_reader.count(DURATION, gen_ai__operation__name="embeddings") == 1
    assert metric_reader.total(TOKENS, gen_ai__operation__name="embeddings") == tokens
