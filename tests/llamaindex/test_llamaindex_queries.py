"""Real LlamaIndex pipelines (VectorStoreIndex, TreeIndex, SubQuestionQueryEngine) on mocks."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import version

import pytest
from li_support import EVENT_TYPE, ScriptedLLM, children, documents, gen_ai, named, one, one_of, parent_of, roots
from llama_index.core import TreeIndex, VectorStoreIndex
from llama_index.core.query_engine import SubQuestionQueryEngine
from llama_index.core.question_gen import LLMQuestionGenerator
from llama_index.core.tools import QueryEngineTool, ToolMetadata
from opentelemetry import trace
from packaging.version import Version

# seen on 0.12.52, not on 0.14: splitting these documents fetches NLTK's stopwords
splits_long_documents = pytest.mark.skipif(Version(version("llama-index-core")) < Version("0.14"), reason=(
    "llama-index-core < 0.14 downloads NLTK's stopwords to split long documents; offline here"))
TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"
FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
tracer = trace.get_tracer("test")


@splits_long_documents
def test_index_build_parses_and_embeds_with_counts(spans, metric_reader):
    index = VectorStoreIndex.from_documents(documents(3, 300))
    got = spans()
    parse = one(got, "node_parsing")
    assert parse.attributes[EVENT_TYPE] == "NODE_PARSING"
    assert parse.attributes["llm_otel.llamaindex.documents"] == 3
    nodes = len(index.docstore.docs)
    assert parse.attributes["llm_otel.llamaindex.nodes"] == nodes
    # per-document chunking is counted on the parser, not a span each
    assert parse.attributes["llm_otel.llamaindex.chunks"] == nodes
    assert not named(got, "chunking")
    assert "llm_otel.llamaindex.duration_ms" not in parse.attributes  # the span's own duration says it
    embed = one(got, "embeddings")
    assert embed.attributes[EVENT_TYPE] == "EMBEDDING"
    assert embed.attributes["llm_otel.llamaindex.inputs"] == nodes
    assert embed.attributes["gen_ai.embeddings.dimension.count"] == 8
    # counted locally: MockEmbedding reports none; an estimate, not usage
    assert embed.attributes["llm_otel.usage.estimated_input_tokens"] > 0
    assert "gen_ai.usage.input_tokens" not in embed.attributes
    assert metric_reader.total(TOKENS, gen_ai__operation__name="embeddings") == 0


@splits_long_documents
def test_query_is_one_trace_under_the_callers_span(spans, metric_reader):
    index = VectorStoreIndex.from_documents(documents(3, 300))
    engine = index.as_query_engine(similarity_top_k=2)
    before = {s.context.span_id for s in spans()}
    with tracer.start_as_current_span("request") as request:
        response = engine.query("what is in document 1?")
    assert str(response)
    got = [s for s in spans() if s.context.span_id not in before]
    assert roots(got) == [s for s in got if s.name == "request"]
    assert {s.context.trace_id for s in got} == {request.get_span_context().trace_id}

    query = one(got, "query")
    assert parent_of(got, query).name == "request"
    assert query.attributes[EVENT_TYPE] == "QUERY"
    assert query.attributes["llm_otel.llamaindex.component"] == "RetrieverQueryEngine"
    retrieve, synth = one_of(got, "retrieval"), one(got, "synthesize")
    assert parent_of(got, retrieve) is query and parent_of(got, synth) is query
    # a retrieval in the conventions' words: named after the index it searched, top_k asked for
    assert retrieve.name == f"retrieval {index.index_id}"
    assert retrieve.kind == trace.SpanKind.CLIENT  # v1.41
    assert retrieve.attributes["gen_ai.data_source.id"] == index.index_id
    assert retrieve.attributes["gen_ai.request.top_k"] == 2.0
    assert retrieve.attributes["openinference.span.kind"] == "RETRIEVER"
    assert retrieve.attributes[EVENT_TYPE] == "RETRIEVE"
    assert retrieve.attributes["llm_otel.llamaindex.component"] == "VectorIndexRetriever"
    assert retrieve.attributes["llm_otel.llamaindex.nodes"] == len(response.source_nodes) == 2
    # documents and the query are content: not recorded by default
    assert not [k for k in retrieve.attributes if k.startswith(("gen_ai.retrieval.", "llm_otel.llamaindex.retrieval"))]
    assert parent_of(got, one(got, "embeddings")) is retrieve
    assert synth.attributes["llm_otel.llamaindex.input_nodes"] == 2

    templating = one(got, "templating")
    assert parent_of(got, templating) is synth
    assert templating.attributes[EVENT_TYPE] == "TEMPLATING"
    assert set(templating.attributes["llm_otel.llamaindex.template.variables"]) == {"context_str", "query_str"}
    (llm,) = gen_ai(got, "text_completion")
    assert parent_of(got, llm) is templating
    assert llm.kind == trace.SpanKind.CLIENT
    assert llm.attributes["gen_ai.provider.name"] == "llama_index"
    assert llm.attributes["gen_ai.request.max_tokens"] == 8
    assert llm.attributes[EVENT_TYPE] == "LLM"
    # MockLLM reports no usage: the core counts locally and says so (an estimate, not usage)
    assert llm.attributes["llm_otel.usage.estimated_input_tokens"] > 0
    assert llm.attributes["llm_otel.usage.estimated_output_tokens"] == 8
    assert "gen_ai.usage.output_tokens" not in llm.attributes
    assert "gen_ai.response.finish_reasons" not in llm.attributes  # MockLLM gives none; none invented
    assert metric_reader.count(DURATION, gen_ai__operation__name="text_completion") == 1
    assert metric_reader.total(TOKENS, gen_ai__operation__name="text_completion") == 0
    # nothing of ours is left current
    assert not trace.get_current_span().get_span_context().is_valid


def test_query_without_a_caller_span_has_one_root(spans):
    engine = VectorStoreIndex.from_documents(documents(2, 100)).as_query_engine()
    before = {s.context.span_id for s in spans()}
    engine.query("anything?")
    got = [s for s in spans() if s.context.span_id not in before]
    assert [s.name for s in roots(got)] == ["query RetrieverQueryEngine"]
    assert len({s.context.trace_id for s in got}) == 1


def test_concurrent_async_queries_keep_their_own_trees(spans):
    engine = VectorStoreIndex.from_documents(documents(2, 100)).as_query_engine()
    before = {s.context.span_id for s in spans()}

    async def one_query(i):
        with tracer.start_as_current_span(f"request {i}"):
            await asyncio.sleep(0)
            return await engine.aquery(f"question {i}?")

    async def main():
        return await asyncio.gather(*(one_query(i) for i in range(6)))

    asyncio.run(main())
    got = [s for s in spans() if s.context.span_id not in before]
    requests = named(got, "request")
    assert len(requests) == 6 and len(roots(got)) == 6
    for request in requests:
        trace_spans = [s for s in got if s.context.trace_id == request.context.trace_id]
        (query,) = named(trace_spans, "query")
        assert parent_of(got, query) is request
        kinds = sorted(s.name.split(" ")[0] for s in children(got, query))
        assert kinds == ["retrieval", "synthesize"]
        assert len(gen_ai(trace_spans, "text_completion")) == 1
        assert len(gen_ai(trace_spans, "embeddings")) == 1


def test_streamed_query_records_chunks_once(spans, metric_reader):
    engine = VectorStoreIndex.from_documents(documents(2, 100)).as_query_engine(
        streaming=True, llm=ScriptedLLM(script=["one two three four"]))
    before = {s.context.span_id for s in spans()}
    with tracer.start_as_current_span("request"):
        response = engine.query("stream it")
        assert "".join(response.response_gen) == "one two three four"
    got = [s for s in spans() if s.context.span_id not in before]
    (llm,) = gen_ai(got, "text_completion")
    # generated while the caller reads the answer, after the query returned: still under synthesize
    assert parent_of(got, parent_of(got, llm)) is one(got, "synthesize")
    assert llm.attributes["gen_ai.request.stream"] is True
    assert llm.attributes["gen_ai.request.model"] == "scripted-1"
    assert llm.attributes["llm_otel.usage.estimated_output_tokens"] > 0
    assert metric_reader.count(FIRST_CHUNK) == 1
    assert metric_reader.count(DURATION, gen_ai__operation__name="text_completion") == 1
    assert len({s.context.trace_id for s in got}) == 1


def test_async_streamed_query_without_caller_span_is_one_trace(spans):
    engine = VectorStoreIndex.from_documents(documents(2, 100)).as_query_engine(
        streaming=True, llm=ScriptedLLM(script=["one two three"]))
    before = {s.context.span_id for s in spans()}

    async def main():
        response = await engine.aquery("stream it")
        return "".join([t async for t in response.async_response_gen()])

    assert asyncio.run(main()) == "one two three"
    got = [s for s in spans() if s.context.span_id not in before]
    assert [s.name for s in roots(got)] == ["query RetrieverQueryEngine"]
    assert len({s.context.trace_id for s in got}) == 1
    assert len(gen_ai(got, "chat") + gen_ai(got, "text_completion")) == 1


def test_content_only_when_capture_is_on(spans, capture_content):
    engine = VectorStoreIndex.from_documents(documents(2, 50)).as_query_engine(similarity_top_k=2)
    before = {s.context.span_id for s in spans()}
    response = engine.query("secret question")
    got = [s for s in spans() if s.context.span_id not in before]
    retrieve = one_of(got, "retrieval")
    assert retrieve.attributes["gen_ai.retrieval.query.text"] == "secret question"
    docs = json.loads(retrieve.attributes["gen_ai.retrieval.documents"])
    # every document as v1.41 requires it (id and score) and, with content on, its text
    assert [d["id"] for d in docs] == [n.node.node_id for n in response.source_nodes]
    assert [d["score"] for d in docs] == [n.score for n in response.source_nodes]
    assert [d["content"] for d in docs] == [n.node.get_content() for n in response.source_nodes]
    assert all(d["content"].startswith("document ") for d in docs)
    assert one(got, "query").attributes["llm_otel.input"] == "secret question"
    assert "gen_ai.input.messages" in gen_ai(got, "text_completion")[0].attributes


def test_no_content_by_default(spans):
    engine = VectorStoreIndex.from_documents(documents(2, 50)).as_query_engine(similarity_top_k=1)
    before = {s.context.span_id for s in spans()}
    engine.query("secret question")
    got = [s for s in spans() if s.context.span_id not in before]
    for span in got:
        for key, value in span.attributes.items():
            assert key not in ("llm_otel.input", "llm_otel.output", "gen_ai.input.messages",
                               "gen_ai.output.messages"), key
            assert "secret question" not in str(value)


def test_tree_index_build_and_query(spans, metric_reader):
    index = TreeIndex.from_documents(documents(6, 40), num_children=2)
    got = spans()
    tree = one(got, "tree")
    assert tree.attributes[EVENT_TYPE] == "TREE"
    assert tree.attributes["llm_otel.llamaindex.input_nodes"] == 6
    assert tree.attributes["llm_otel.llamaindex.tree.num_children"] == 2
    assert tree.attributes["llm_otel.llamaindex.nodes"] == len(index.index_struct.all_nodes)
    assert tree.attributes["llm_otel.llamaindex.tree.root_nodes"] == len(index.index_struct.root_nodes)
    summaries = gen_ai(got, "text_completion")
    # 6 leaves, 2 children each: 3 summaries, then 2 (3 -> ceil), then 1
    assert len(summaries) == len(index.index_struct.all_nodes) - 6
    for llm in summaries:
        assert parent_of(got, parent_of(got, llm)) is tree
    assert metric_reader.count(DURATION, gen_ai__operation__name="text_completion") == len(summaries)

    before = {s.context.span_id for s in spans()}
    index.as_query_engine().query("which leaf?")
    got = [s for s in spans() if s.context.span_id not in before]
    retrieve = one_of(got, "retrieval")
    assert retrieve.attributes["llm_otel.llamaindex.component"] == "TreeSelectLeafRetriever"
    assert retrieve.attributes["gen_ai.data_source.id"] == index.index_id
    assert parent_of(got, retrieve) is one(got, "query")
    assert any(parent_of(got, parent_of(got, s)) is retrieve for s in gen_ai(got, "text_completion"))


SUBQ = ('```json\n{"items": [{"sub_question": "What is in A?", "tool_name": "essays"},'
        ' {"sub_question": "What is in B?", "tool_name": "essays"}]}\n```')


@pytest.mark.parametrize("use_async", [False, True])
def test_sub_question_engine(spans, use_async):
    index = VectorStoreIndex.from_documents(documents(2, 60))
    tools = [QueryEngineTool(query_engine=index.as_query_engine(),
                             metadata=ToolMetadata(name="essays", description="essays"))]
    engine = SubQuestionQueryEngine.from_defaults(
        query_engine_tools=tools, use_async=use_async,
        question_gen=LLMQuestionGenerator.from_defaults(llm=ScriptedLLM(script=[SUBQ])))
    before = {s.context.span_id for s in spans()}
    with tracer.start_as_current_span("request"):
        engine.query("Compare A and B")
    got = [s for s in spans() if s.context.span_id not in before]
    assert [s.name for s in roots(got)] == ["request"]
    top = [s for s in named(got, "query") if s.attributes["llm_otel.llamaindex.component"] == "SubQuestionQueryEngine"]
    assert len(top) == 1 and top[0].attributes["llm_otel.llamaindex.sub_questions"] == 2
    qgen = one(got, "question_generation")
    assert parent_of(got, qgen) is top[0]
    assert qgen.attributes[EVENT_TYPE] == "SUB_QUESTION"
    assert qgen.attributes["llm_otel.llamaindex.sub_questions"] == 2
    subs = named(got, "sub_question")
    assert len(subs) == 2
    for sub in subs:
        assert parent_of(got, sub) is top[0]
        assert sub.attributes["llm_otel.llamaindex.sub_question.tool"] == "essays"
        inner = [s for s in children(got, sub) if s.name.startswith("query ")]
        assert len(inner) == 1
        assert {s.name.split(" ")[0] for s in children(got, inner[0])} == {"retrieval", "synthesize"}
    # one LLM call for the questions, one answer per sub-question, one final answer
    assert len(gen_ai(got, "text_completion")) == 4


def test_llm_reranker_between_retrieve_and_synthesize(spans):
    from llama_index.core.postprocessor import LLMRerank

    rerank = LLMRerank(top_n=1, choice_batch_size=5, llm=ScriptedLLM(script=["Doc: 2, Relevance: 9\n"]))
    engine = VectorStoreIndex.from_documents(documents(3, 40)).as_query_engine(
        similarity_top_k=3, node_postprocessors=[rerank])
    before = {s.context.span_id for s in spans()}
    response = engine.query("which one?")
    got = [s for s in spans() if s.context.span_id not in before]
    span = one(got, "reranking")
    assert span.attributes[EVENT_TYPE] == "RERANKING"
    assert span.attributes["llm_otel.llamaindex.component"] == "LLMRerank"
    assert span.attributes["llm_otel.llamaindex.rerank.top_n"] == 1
    assert span.attributes["llm_otel.llamaindex.input_nodes"] == 3
    assert span.attributes["llm_otel.llamaindex.nodes"] == 1
    assert list(span.attributes["llm_otel.llamaindex.rerank.node_ids"]) == \
        [n.node.node_id for n in response.source_nodes]
    assert json.loads(span.attributes["llm_otel.llamaindex.rerank.scores"]) == [9.0]
    assert span.attributes["openinference.span.kind"] == "RERANKER"
    assert parent_of(got, span) is one(got, "query")
    # the reranker's own LLM call nests under it
    assert any(parent_of(got, parent_of(got, s)) is span for s in gen_ai(got, "text_completion"))


@pytest.mark.parametrize("stream", [False, True])
def test_chat_engine_turn_is_one_trace(spans, instrumented, stream):
    engine = VectorStoreIndex.from_documents(documents(2, 50)).as_chat_engine(
        chat_mode="condense_plus_context", llm=ScriptedLLM(script=["hello there"]))
    before = {s.context.span_id for s in spans()}
    with tracer.start_as_current_span("request"):
        if stream:
            assert "".join(engine.stream_chat("hi").response_gen) == "hello there"
        else:
            assert str(engine.chat("hi")) == "hello there"
    got = [s for s in spans() if s.context.span_id not in before]
    chat = one(got, "chat_engine")
    assert chat.attributes["llm_otel.llamaindex.component"] == "CondensePlusContextChatEngine"
    assert parent_of(got, chat).name == "request"
    assert {s.name.split(" ")[0] for s in children(got, chat)} >= {"retrieval", "synthesize"}
    assert len(gen_ai(got, "text_completion")) == 1
    assert [s.name for s in roots(got)] == ["request"]
    assert not instrumented._tracker.runs


def test_chat_engine_memory_is_the_conversation(spans):
    """A chat engine's memory under a chat store key of the app's: every span of each turn
    carries it as the conversation id (Phoenix groups them as one session)."""
    from llama_index.core.memory import ChatMemoryBuffer

    engine = VectorStoreIndex.from_documents(documents(2, 50)).as_chat_engine(
        chat_mode="condense_plus_context", llm=ScriptedLLM(script=["hello there"]),
        memory=ChatMemoryBuffer.from_defaults(chat_store_key="user-7"))
    before = {s.context.span_id for s in spans()}
    engine.chat("hi")
    engine.chat("and again")
    got = [s for s in spans() if s.context.span_id not in before]
    assert len(named(got, "chat_engine")) == 2 and len(got) > 6
    assert {s.attributes.get("gen_ai.conversation.id") for s in got} == {"user-7"}


def _keyword_retriever(nodes):
    """A retriever of the app's that finds nodes by a word and gives them no score."""
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore

    class KeywordRetriever(BaseRetriever):
        def _retrieve(self, query_bundle):
            words = set(query_bundle.query_str.lower().split())
            return [NodeWithScore(node=n) for n in nodes if words & set(n.get_content().lower().split())]

    return KeywordRetriever()


@pytest.mark.parametrize("latest", [False, True])
def test_retriever_without_scores(spans, capture_content, request, latest):
    """v1.41 requires an id and a score per document (Phoenix drops the whole list for one
    without): unscored documents are not listed there, and are under v0.1.0."""
    from llama_index.core.schema import TextNode

    if latest:
        request.getfixturevalue("latest_semconv")
    nodes = [TextNode(text="apples are red", id_="n1"), TextNode(text="pears are green", id_="n2")]
    found = _keyword_retriever(nodes).retrieve("red apples")
    assert [n.node.node_id for n in found] == ["n1"]
    span = one_of(spans(), "retrieval")
    assert span.name == "retrieval KeywordRetriever"  # no index: the retriever's class is the source
    assert span.attributes["gen_ai.data_source.id"] == "KeywordRetriever"
    assert span.attributes["gen_ai.retrieval.query.text"] == "red apples"
    assert span.attributes["llm_otel.llamaindex.nodes"] == 1
    assert span.kind == (trace.SpanKind.INTERNAL if latest else trace.SpanKind.CLIENT)
    if latest:
        assert json.loads(span.attributes["gen_ai.retrieval.documents"]) == [
            {"id": "n1", "content": "apples are red"}]
    else:
        assert "gen_ai.retrieval.documents" not in span.attributes


def test_retrieval_top_k_under_the_latest_conventions(spans, latest_semconv):
    index = VectorStoreIndex.from_documents(documents(3, 40))
    index.set_index_id("essays")
    index.as_retriever(similarity_top_k=2).retrieve("document 2")
    span = one_of(spans(), "retrieval")
    assert span.name == "retrieval essays"
    assert span.attributes["gen_ai.retrieval.top_k"] == 2 and "gen_ai.request.top_k" not in span.attributes
