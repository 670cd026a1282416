"""Retrievers nest their inside work; a completion batch (one request, many runs) is counted once.

With the OpenAI instrumentor on too, against the local stand-in OpenAI server (real HTTP,
real SDK, real LangChain) and recorded traffic.
"""

from __future__ import annotations

import asyncio
import json
from typing import List

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import FakeListLLM
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import OpenAI, OpenAIEmbeddings
from lc_support import DURATION, TOKENS, named, one, parent_of
from opentelemetry import trace
from support.cassettes import Cassette, serve
from support.standin import running_standin, standin_server as standin

import llm_otel
from llm_otel import config
from support.estimates import estimated_tokens

KEY = "sk-test-not-a-real-key"
tracer = trace.get_tracer("test")


pytestmark = pytest.mark.usefixtures("openai_instrumented")


@pytest.fixture(scope="module")
def server():
    with running_standin() as served:
        yield served


@pytest.fixture
def standin_url(server):
    url, journal = server
    journal.clear()
    return url, journal


TEXTS = ["OpenTelemetry traces requests across services", "Spans nest under their parent span",
         "Tokens are counted by the API", "Bananas are yellow fruit"]


def vector_store(url: str) -> InMemoryVectorStore:
    embeddings = OpenAIEmbeddings(model="text-embedding-3-small", base_url=url, api_key=KEY, max_retries=0,
                                  check_embedding_ctx_length=False)  # no tokenizer download
    store = InMemoryVectorStore(embeddings)
    store.add_texts(TEXTS, ids=[f"doc-{i}" for i in range(len(TEXTS))])
    return store


def _embedding_spans(got):
    return [s for s in got if s.attributes.get("gen_ai.operation.name") == "embeddings"]


def _assert_query_embedding_nested(got, journal):
    retriever = one(got, "retrieval VectorStoreRetriever")
    assert retriever.attributes["llm_otel.span.kind"] == "retriever"
    indexing, query = _embedding_spans(got)  # add_texts, then the retriever's query embedding
    assert parent_of(got, indexing) is None
    assert parent_of(got, query) is retriever
    assert query.context.trace_id == retriever.context.trace_id
    assert query.attributes["gen_ai.usage.input_tokens"] == journal[-1][2]["usage"]["prompt_tokens"]


# ---- retrievers ------------------------------------------------------------------------


def test_vector_store_retriever_query_embedding_is_its_child(spans, standin_url):
    url, journal = standin_url
    retriever = vector_store(url).as_retriever(search_kwargs={"k": 2})
    docs = retriever.invoke("how do spans nest")
    assert [d.id for d in docs][0] == "doc-1"
    got = spans()
    _assert_query_embedding_nested(got, journal)
    assert one(got, "retrieval VectorStoreRetriever").attributes["gen_ai.operation.name"] == "retrieval"
    # the span is current only while the retriever runs: nothing after it is its child
    with tracer.start_as_current_span("after"):
        pass
    assert parent_of(spans(), one(spans(), "after")) is None


@pytest.mark.parametrize("content", ["off", "on", "on, v0.1.0"])
def test_vector_store_retrieval_top_k_query_and_documents(spans, standin_url, monkeypatch, content):
    url, journal = standin_url
    if content != "off":
        monkeypatch.setenv(config.CAPTURE_CONTENT_ENV, "SPAN_ONLY")
    if content == "on, v0.1.0":
        monkeypatch.setenv(config.SEMCONV_OPT_IN_ENV, "gen_ai_latest_experimental")
    config.reload()
    try:
        retriever = vector_store(url).as_retriever(search_kwargs={"k": 2})
        docs = retriever.invoke("how do spans nest", config={"metadata": {"session_id": "s-3"}})
    finally:
        monkeypatch.delenv(config.CAPTURE_CONTENT_ENV, raising=False)
        monkeypatch.delenv(config.SEMCONV_OPT_IN_ENV, raising=False)
        config.reload()
    got = spans()
    _assert_query_embedding_nested(got, journal)  # in every mode
    span = one(got, "retrieval VectorStoreRetriever")
    a = span.attributes
    if content == "on, v0.1.0":
        assert a["gen_ai.retrieval.top_k"] == 2
    else:
        assert a["gen_ai.request.top_k"] == 2.0
    assert a["gen_ai.data_source.id"] == "VectorStoreRetriever"
    assert a["gen_ai.conversation.id"] == "s-3"
    if content == "off":
        assert not [k for k in a if k.startswith("gen_ai.retrieval.")]
        return
    assert a["gen_ai.retrieval.query.text"] == "how do spans nest"
    if content == "on":  # v1.41's schema wants an id and a score per document: this retriever gives no score
        assert "gen_ai.retrieval.documents" not in a
        return
    recorded = json.loads(a["gen_ai.retrieval.documents"])
    assert [d["id"] for d in recorded] == [d.id for d in docs]
    assert [d["content"] for d in recorded] == [d.page_content for d in docs]
    assert all("score" not in d for d in recorded)  # this retriever returns none: none invented


class ScoredRetriever(BaseRetriever):
    """A retriever that returns its similarity scores in each document's metadata."""

    store: InMemoryVectorStore
    k: int = 3

    def _get_relevant_documents(self, query: str, *, run_manager) -> List[Document]:
        found = self.store.similarity_search_with_score(query, k=self.k)
        return [Document(id=doc.id, page_content=doc.page_content, metadata={**doc.metadata, "score": score})
                for doc, score in found]


def test_retrieval_documents_with_scores_and_top_k_under_the_latest_conventions(spans, standin_url, monkeypatch,
                                                                                capture_content):
    url, _ = standin_url
    monkeypatch.setenv(config.SEMCONV_OPT_IN_ENV, "gen_ai_latest_experimental")
    config.reload()
    try:
        docs = ScoredRetriever(store=vector_store(url), k=2).invoke("bananas")
    finally:
        monkeypatch.delenv(config.SEMCONV_OPT_IN_ENV)
        config.reload()
    span = one(spans(), "retrieval ScoredRetriever")
    assert span.attributes["gen_ai.retrieval.top_k"] == 2 and "gen_ai.request.top_k" not in span.attributes
    recorded = json.loads(span.attributes["gen_ai.retrieval.documents"])
    assert [(d["id"], d["score"]) for d in recorded] == [(d.id, d.metadata["score"]) for d in docs]
    assert recorded[0]["id"] == "doc-3" and recorded[1]["score"] < recorded[0]["score"]


def test_top_k_given_to_invoke_wins(spans, standin_url):
    url, _ = standin_url
    retriever = vector_store(url).as_retriever(search_kwargs={"k": 1})
    assert len(retriever.invoke("spans", k=3)) == 3
    assert one(spans(), "retrieval VectorStoreRetriever").attributes["gen_ai.request.top_k"] == 3.0


async def test_vector_store_retriever_ainvoke_query_embedding_is_its_child(spans, standin_url):
    url, journal = standin_url
    retriever = vector_store(url).as_retriever(search_kwargs={"k": 2})
    await retriever.ainvoke("how do spans nest")
    _assert_query_embedding_nested(spans(), journal)


async def test_concurrent_ainvoke_each_embedding_under_its_own_retriever(spans, standin_url):
    url, _ = standin_url
    retriever = vector_store(url).as_retriever(search_kwargs={"k": 1})
    await asyncio.gather(*(retriever.ainvoke(q) for q in ["spans", "tokens", "bananas"]))
    got = spans()
    retrievers = named(got, "retrieval VectorStoreRetriever")
    queries = [s for s in _embedding_spans(got) if parent_of(got, s) is not None]
    assert len(retrievers) == 3 and len(queries) == 3
    assert {parent_of(got, q).context.span_id for q in queries} == {r.context.span_id for r in retrievers}


def test_retriever_in_a_chain_keeps_the_chain_tree(spans, standin_url):
    url, _ = standin_url
    retriever = vector_store(url).as_retriever(search_kwargs={"k": 1})
    chain = retriever | RunnableLambda(lambda docs: docs[0].page_content)
    assert chain.invoke("bananas") == "Bananas are yellow fruit"
    got = spans()
    node = one(got, "retrieval VectorStoreRetriever")
    assert parent_of(got, node).name == "RunnableSequence"
    assert parent_of(got, _embedding_spans(got)[-1]) is node


class Traced(Embeddings):
    """An embeddings model whose query embedding opens a span of its own (any traced work)."""

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return [standin.embed(t, 16) for t in texts]

    def embed_query(self, text: str) -> List[float]:
        with tracer.start_as_current_span("embed-query"):
            return standin.embed(text, 16)


class OldStyleRetriever(BaseRetriever):
    """A retriever written without ``run_manager``: LangChain passes it none."""

    store: InMemoryVectorStore

    def _get_relevant_documents(self, query: str) -> List[Document]:
        return self.store.similarity_search(query, k=1)


def test_old_style_retriever_without_run_manager_nests_sync_and_async(spans):
    store = InMemoryVectorStore(Traced())
    store.add_texts(TEXTS)
    retriever = OldStyleRetriever(store=store)
    assert retriever.invoke("bananas")[0].page_content == "Bananas are yellow fruit"
    assert asyncio.run(retriever.ainvoke("bananas"))[0].page_content == "Bananas are yellow fruit"
    got = spans()
    inner = named(got, "embed-query")
    outer = named(got, "retrieval OldStyleRetriever")
    assert len(inner) == len(outer) == 2
    assert [parent_of(got, s).context.span_id for s in inner] == [r.context.span_id for r in outer]


def test_failing_retriever_still_ends_and_leaves_nothing_current(spans):
    class Broken(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):
            with tracer.start_as_current_span("inside"):
                raise KeyError(query)

    with pytest.raises(KeyError):
        Broken().invoke("q")
    assert trace.get_current_span() is trace.INVALID_SPAN
    got = spans()
    assert parent_of(got, one(got, "inside")) is one(got, "retrieval Broken")
    assert one(got, "retrieval Broken").attributes["error.type"] == "KeyError"


# ---- completion batches: one request, several runs, counted once ----------------------


def completion_llm(url: str, **kwargs) -> OpenAI:
    return OpenAI(model="gpt-3.5-turbo-instruct", base_url=url, api_key=KEY, max_retries=0, **kwargs)


PROMPTS = ["Say hello to Alice", "Say hello to Bob in a longer sentence please", "Name a colour"]


def _completion_spans(got):
    return [s for s in got if s.attributes.get("gen_ai.operation.name") == "text_completion"]


def _assert_batch_counted_once(got, metric_reader, usage_block, served, sdk=True):
    requests = [resp for path, _, resp in served if path.endswith("/completions")]
    prompt = sum(r["usage"]["prompt_tokens"] for r in requests)
    completion = sum(r["usage"]["completion_tokens"] for r in requests)
    calls = _completion_spans(got)
    assert len(calls) == len(PROMPTS)  # one span per LangChain run, no extra SDK span
    first, *others = calls
    assert first.attributes["gen_ai.usage.input_tokens"] == prompt  # the request's usage
    assert first.attributes["gen_ai.usage.output_tokens"] == completion
    assert "llm_otel.usage.estimated" not in first.attributes
    for span in others:
        assert span.attributes["llm_otel.request.shared"] is True
        assert "gen_ai.usage.input_tokens" not in span.attributes
        assert "gen_ai.usage.output_tokens" not in span.attributes
        if sdk:  # LangChain's completion result carries no response id: the SDK's record does
            assert span.attributes["gen_ai.response.id"] == requests[0]["id"]
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == prompt
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == completion
    assert metric_reader.count(DURATION) == len(requests)
    assert (usage_block.input_tokens, usage_block.output_tokens) == (prompt, completion)
    assert usage_block.requests == len(requests)


def test_completion_batch_is_one_request_counted_once(spans, metric_reader, standin_url):
    url, journal = standin_url
    with llm_otel.usage() as used:
        out = completion_llm(url).batch(PROMPTS)
    assert len(out) == 3 and "Alice" in out[0]
    assert len(journal) == 1 and json.loads(json.dumps(journal[0][1]["prompt"])) == PROMPTS
    _assert_batch_counted_once(spans(), metric_reader, used, journal)


async def test_async_completion_batch_is_counted_once(spans, metric_reader, standin_url):
    url, journal = standin_url
    with llm_otel.usage() as used:
        out = await completion_llm(url).abatch(PROMPTS)
    assert len(out) == 3 and len(journal) == 1
    _assert_batch_counted_once(spans(), metric_reader, used, journal)


def test_batch_split_in_two_requests_adds_both_usages(spans, metric_reader, standin_url):
    url, journal = standin_url
    with llm_otel.usage() as used:
        result = completion_llm(url, batch_size=2).generate(PROMPTS)
    assert len(result.generations) == 3 and len(journal) == 2  # LangChain sent 2 + 1 prompts
    got = spans()
    requests = [resp for _, _, resp in journal]
    assert _completion_spans(got)[0].attributes["gen_ai.usage.input_tokens"] == sum(
        r["usage"]["prompt_tokens"] for r in requests)
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == sum(r["usage"]["prompt_tokens"]
                                                                         for r in requests)
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == sum(r["usage"]["completion_tokens"]
                                                                          for r in requests)
    assert used.total_tokens == sum(r["usage"]["total_tokens"] for r in requests)
    # one claimed record, standing for the two API requests made under it
    assert metric_reader.count(DURATION) == 1 and used.requests == 2


def test_batch_without_the_sdk_instrumentor_is_counted_once(spans, metric_reader, standin_url,
                                                            openai_instrumented):
    """LangChain alone: its result carries the request's usage on the first run only."""
    url, journal = standin_url
    openai_instrumented.uninstrument()
    try:
        with llm_otel.usage() as used:
            completion_llm(url).batch(PROMPTS)
    finally:
        openai_instrumented.instrument()
    assert len(journal) == 1
    _assert_batch_counted_once(spans(), metric_reader, used, journal, sdk=False)


def test_failed_batch_request_is_one_failure(spans, metric_reader, standin_url):
    url, journal = standin_url
    import openai

    with llm_otel.usage() as used, pytest.raises(openai.NotFoundError):
        OpenAI(model="does-not-exist", base_url=url, api_key=KEY, max_retries=0).batch(PROMPTS)
    calls = _completion_spans(spans())
    assert len(calls) == 3 and all(c.attributes["error.type"] == "NotFoundError" for c in calls)
    assert metric_reader.count(DURATION) == 1
    assert (used.requests, used.failed_requests) == (1, 1)


def test_model_without_usage_still_counts_each_prompt(spans, metric_reader, estimate_mode):
    """A batch of a model that reports no usage (here one answer per prompt, no API): each run
    is counted locally, as before, since no request's usage covers the others."""
    out = FakeListLLM(responses=["one two three", "four five", "six"]).batch(PROMPTS)
    assert out == ["one two three", "four five", "six"]
    calls = _completion_spans(spans())
    outputs = [estimated_tokens(c.attributes, estimate_mode, "output") for c in calls]
    assert len(calls) == 3 and all(outputs)
    assert not any("llm_otel.request.shared" in c.attributes for c in calls)
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == (
        sum(outputs) if estimate_mode == "report" else 0)
    assert metric_reader.count(DURATION) == 3


def test_recorded_completion_counted_once_with_both_instrumentors(spans, metric_reader, lc_recordings):
    cassette = Cassette(lc_recordings / "test_chains/test_sequential_chain.yaml")
    prompt = json.loads(cassette.interactions[0].request_body)["prompt"]
    with serve(cassette) as url:
        result = completion_llm(url, temperature=0.7).generate(prompt)
    assert result.generations[0][0].text
    (call,) = _completion_spans(spans())
    assert (call.attributes["gen_ai.usage.input_tokens"], call.attributes["gen_ai.usage.output_tokens"]) == (61, 145)
    assert call.attributes["server.address"] == "127.0.0.1"  # the SDK's record merged in
    assert metric_reader.total(TOKENS, gen_ai__token__type="input") == 61
    assert metric_reader.total(TOKENS, gen_ai__token__type="output") == 145
    assert metric_reader.count(DURATION) == 1


def test_uninstrument_restores_the_retriever_methods(spans, instrumented):
    from langchain_core.vectorstores import VectorStoreRetriever

    store = InMemoryVectorStore(Traced())
    store.add_texts(TEXTS)
    store.as_retriever().invoke("spans")  # wraps the class's method on first use
    assert hasattr(VectorStoreRetriever._get_relevant_documents, "__wrapped__")
    instrumented.uninstrument()
    try:
        assert not hasattr(VectorStoreRetriever._get_relevant_documents, "__wrapped__")
        assert not hasattr(BaseRetriever.invoke, "__wrapped__")
        before = len(spans())
        assert store.as_retriever().invoke("bananas")[0].page_content == "Bananas are yellow fruit"
        assert [s.name for s in spans()[before:]] == ["embed-query"]
    finally:
        instrumented.instrument()
    store.as_retriever().invoke("bananas")
    got = spans()
    assert parent_of(got, named(got, "embed-query")[-1]) is named(got, "retrieval VectorStoreRetriever")[-1]
