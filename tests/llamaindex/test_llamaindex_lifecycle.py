"""Bounded run tables, stale spans, suppression, instrument/uninstrument."""

from __future__ import annotations

import gc

from li_support import ScriptedLLM, documents, gen_ai
from llama_index.core import VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value

from llm_otel.instrumentors.llamaindex import LlamaIndexInstrumentor


def test_abandoned_streams_are_bounded_and_ended_stale(spans, instrumented):
    tracker = instrumented._tracker
    old_max = tracker.max_runs
    tracker.max_runs = 3
    try:
        llm = ScriptedLLM(script=["never read"])
        streams = [llm.stream_complete(f"prompt {i}") for i in range(5)]  # never consumed
        assert len(tracker.runs) <= 3
        stale = gen_ai(spans(), "text_completion")
        assert len(stale) == 2
        assert all(s.attributes["llm_otel.run.abandoned"] is True for s in stale)
        del streams
        gc.collect()
    finally:
        tracker.max_runs = old_max
        tracker.end_all()
    assert not tracker.runs and not tracker.streams
    assert len(gen_ai(spans(), "text_completion")) == 5  # every span ended exactly once


def test_table_is_empty_after_queries(instrumented):
    engine = VectorStoreIndex.from_documents(documents(2, 50)).as_query_engine()
    for i in range(3):
        engine.query(f"q{i}")
    streamed = VectorStoreIndex.from_documents(documents(2, 50)).as_query_engine(streaming=True)
    assert "".join(streamed.query("s").response_gen)
    assert not instrumented._tracker.runs and not instrumented._tracker.streams


def test_suppressed_records_nothing(spans):
    engine = VectorStoreIndex.from_documents(documents(1, 50)).as_query_engine()
    before = len(spans())
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        assert str(engine.query("quiet"))
    finally:
        detach(token)
    assert len(spans()) == before


def test_uninstrument_removes_handlers_and_instrument_twice_is_once(spans, instrumented):
    dispatcher = get_dispatcher()
    handlers = list(dispatcher.span_handlers)
    instrumented.instrument()  # already instrumented: nothing added
    assert dispatcher.span_handlers == handlers
    instrumented.uninstrument()
    try:
        assert instrumented._span_handler is None
        assert not [h for h in dispatcher.span_handlers if type(h).__name__ == "LLMOtelSpanHandler"]
        assert not [h for h in dispatcher.event_handlers if type(h).__name__ == "LLMOtelEventHandler"]
        from llama_index.core.query_engine.sub_question_query_engine import SubQuestionQueryEngine
        assert not hasattr(SubQuestionQueryEngine._query_subq, "__wrapped__")
        ScriptedLLM(script=["x"]).complete("hi")
        assert not gen_ai(spans(), "text_completion")
    finally:
        instrumented.instrument()
    ScriptedLLM(script=["x"]).complete("hi")
    assert len(gen_ai(spans(), "text_completion")) == 1
    assert isinstance(instrumented, LlamaIndexInstrumentor)


def test_exit_in_another_context_ends_the_span_without_detaching(spans, instrumented, caplog):
    """A sync function returning a Future exits in a done-callback's Context: the span ends,
    nothing is detached there (no 'Failed to detach context' error)."""
    import contextvars
    import inspect
    import uuid

    from opentelemetry import trace

    retriever = VectorStoreIndex.from_documents(documents(1, 20)).as_retriever()
    tracker = instrumented._tracker
    span_id = f"VectorIndexRetriever.retrieve-{uuid.uuid4()}"
    bound = inspect.signature(lambda str_or_query_bundle: None).bind("q")

    def enter():
        tracker.enter(span_id, bound, retriever, None)
        return trace.get_current_span()

    caller = contextvars.copy_context()
    current = caller.run(enter)
    assert current.is_recording()
    with caplog.at_level("ERROR"):
        contextvars.copy_context().run(tracker.exit, span_id, [])
    assert "detach" not in caplog.text
    (span,) = [s for s in spans() if s.name == "retrieve VectorIndexRetriever"]
    assert span.attributes["llm_otel.llamaindex.nodes"] == 0
    assert span_id not in tracker.runs


def test_runs_evicted_while_open_still_detach_their_context(spans, instrumented):
    from opentelemetry import trace

    engine = VectorStoreIndex.from_documents(documents(2, 50)).as_query_engine()
    tracker = instrumented._tracker
    old_max = tracker.max_runs
    tracker.max_runs = 2  # query -> retrieve -> embeddings: the query is evicted while it runs
    try:
        before = {s.context.span_id for s in spans()}
        assert str(engine.query("q"))
        assert not trace.get_current_span().get_span_context().is_valid  # nothing left attached
        got = [s for s in spans() if s.context.span_id not in before]
        stale = [s for s in got if s.attributes.get("llm_otel.run.abandoned")]
        assert stale and any(s.name.startswith("query ") for s in stale)
        assert len({s.context.span_id for s in got}) == len(got)  # each span ended once
    finally:
        tracker.max_runs = old_max
        tracker.end_all()
    assert not tracker.evicted


def test_dispatcher_shutdown_ends_open_spans(spans, instrumented):
    stream = ScriptedLLM(script=["never read"]).stream_complete("abandoned")
    assert instrumented._tracker.runs
    get_dispatcher().shutdown()
    (span,) = gen_ai(spans(), "text_completion")
    assert span.attributes["llm_otel.run.abandoned"] is True
    assert not instrumented._tracker.runs
    del stream
