"""Bounded run tables, stale spans, suppression, instrument/uninstrument, streams read after
the call, fork."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

import pytest
from li_support import ScriptedLLM, documents, gen_ai
from llama_index.core import VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.trace import StatusCode

from llm_otel.instrumentors.llamaindex import LlamaIndexInstrumentor

DURATION = "gen_ai.client.operation.duration"
FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"


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
    (span,) = gen_ai(spans(), "retrieval")
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


@pytest.mark.parametrize("method", ["astream_chat", "astream_complete"])
@pytest.mark.parametrize("read", ["all", "closed_early"])
def test_custom_llm_async_stream_is_one_span_without_a_caller_span(spans, metric_reader, method, read):
    """A CustomLLM's async stream (MockLLM here) reads its own sync stream when first read,
    after its span exited; with no span of the app's current that was a second span in a
    second trace, counted twice, and closing the stream early marked both ERROR."""
    from llama_index.core.llms import ChatMessage, MockLLM

    llm = MockLLM(max_tokens=6)

    async def main():
        if method == "astream_chat":
            stream = await llm.astream_chat([ChatMessage(role="user", content="tell me more")])
        else:
            stream = await llm.astream_complete("tell me more")
        got = []
        async for chunk in stream:
            got.append(chunk)
            if read == "closed_early" and len(got) == 2:
                break
        await stream.aclose()
        return got

    chunks = asyncio.run(main())
    assert len(chunks) == (6 if read == "all" else 2)
    (span,) = spans()
    assert span.attributes["gen_ai.operation.name"] == ("chat" if method == "astream_chat" else "text_completion")
    assert span.parent is None and span.status.status_code != StatusCode.ERROR
    assert "error.type" not in span.attributes
    assert span.attributes.get("llm_otel.stream.closed_early") is (True if read == "closed_early" else None)
    assert metric_reader.count(DURATION) == 1
    assert metric_reader.count(FIRST_CHUNK) == 1


def test_sync_stream_closed_early_is_not_an_error(spans, metric_reader):
    gen = ScriptedLLM(script=["one two three four"]).stream_complete("count")
    assert next(gen).delta == "one"
    gen.close()
    (span,) = gen_ai(spans(), "text_completion")
    assert span.attributes["llm_otel.stream.closed_early"] is True
    assert span.status.status_code != StatusCode.ERROR and "error.type" not in span.attributes
    assert metric_reader.count(DURATION) == 1


def test_tracker_survives_a_fork_while_its_lock_is_held(tmp_path):
    """os.fork() while another thread holds the tracker's table lock: the child records its
    own LlamaIndex calls instead of hanging on that lock."""
    script = tmp_path / "fork_app.py"
    script.write_text(FORK_APP)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["child:1", "parent:1"]


FORK_APP = r'''
import os, threading, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from llama_index.core.llms import MockLLM
from llm_otel.instrumentors.llamaindex import LlamaIndexInstrumentor

instrumentor = LlamaIndexInstrumentor()
instrumentor.instrument()
lock = instrumentor._tracker.lock
held, release = threading.Event(), threading.Event()


def spans_soon():
    """Finished spans, once there are some (a span waiting on the tokenizer's load ends a
    moment after its call)."""
    deadline = time.monotonic() + 30
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(exporter.get_finished_spans())


def hold():
    with lock:
        held.set()
        release.wait()


threading.Thread(target=hold, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    MockLLM(max_tokens=2).complete("in the child")  # needs the tracker's lock
    print(f"child:{spans_soon()}", flush=True)
    os._exit(0)
deadline = time.monotonic() + 60
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        raise SystemExit("the child hung")
    time.sleep(0.01)
release.set()
MockLLM(max_tokens=2).complete("in the parent")
print(f"parent:{spans_soon()}", flush=True)
raise SystemExit(os.waitstatus_to_exitcode(status))
'''



AGENT_AFTER_INSTRUMENTING = """
import asyncio, sys
import llama_index.core
import llm_otel
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter, provider = InMemorySpanExporter(), TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
llm_otel.instrument("llama_index")
print("agents imported by instrumenting:", "llama_index.core.agent.workflow" in sys.modules)

from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata

class Answers(CustomLLM):
    @property
    def metadata(self):
        return LLMMetadata(model_name="scripted")

    def complete(self, prompt, formatted=False, **kwargs):
        return CompletionResponse(text="Thought: I can answer without using any more tools.\\nAnswer: hi")

    def stream_complete(self, prompt, formatted=False, **kwargs):
        yield self.complete(prompt)

async def main():
    return await ReActAgent(name="helper", tools=[], llm=Answers()).run("hi")

print("answer:", asyncio.run(main()))
print("agent spans:", sorted(s.name for s in exporter.get_finished_spans() if s.name.startswith("invoke_agent")))
"""


def test_instrumenting_imports_no_agent_modules_the_app_did_not():
    """LlamaIndex's agent workflows cost 20-100 ms to import: instrumenting leaves them to the
    app, and an agent the app makes afterwards is still recognised as one."""
    done = subprocess.run([sys.executable, "-c", AGENT_AFTER_INSTRUMENTING], capture_output=True, text=True,
                          timeout=120)
    assert "agents imported by instrumenting: False" in done.stdout, done.stdout + done.stderr
    assert "agent spans: ['invoke_agent helper']" in done.stdout, done.stdout + done.stderr
