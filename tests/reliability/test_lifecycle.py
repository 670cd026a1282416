"""Lifecycle: instrument/uninstrument 100 times (all three instrumentors, through the
public ``llm_otel.instrument()``): originals restored exactly, never a stacked wrapper,
one span per call while on and none while off; and fork safety of the export pipeline."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import wrapt

import llm_otel
from rel_support import OtlpBackend
from support.cassettes import Cassette

CYCLES = 100
MESSAGES = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


def _targets():
    """(module, "Class.attr") of everything any of our instrumentors patches."""
    from llm_otel.instrumentors import langchain, llamaindex, openai

    out = [(openai._CLIENT_MODULE, n) for n, _is_async in openai._TARGETS]
    out += [(m, n) for m, n, _w in langchain._PATCHES]
    out += [(m, n) for m, n, _w in llamaindex._PATCHES]
    return out


def _snapshot():
    """The raw attribute (not looked up through descriptors) at every patch target."""
    found = {}
    for module, name in _targets():
        try:
            owner = importlib.import_module(module)
        except ImportError:
            continue  # an optional library (langgraph) not installed
        *path, attr = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        found[(module, name)] = vars(owner).get(attr) if isinstance(owner, type) else getattr(owner, attr)
    return found


def _ours(func) -> bool:
    """Whether ``func`` is wrapped by llm-otel: some originals are wrapt wrappers of the
    library's own (llama-index-core 0.12 wraps CustomLLM's async streams in its dispatcher's)."""
    while hasattr(func, "_self_wrapper"):  # a wrapt function wrapper, in wrapt 1.x and 2.x
        if getattr(func._self_wrapper, "__module__", "").startswith("llm_otel."):
            return True
        func = func.__wrapped__
    return False


def _calls(openai_client, chat_model, llama_llm):
    openai_client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    chat_model.invoke("hello")
    llama_llm.complete("hello")


def test_instrument_uninstrument_100_times(instrumentor, recordings, spans):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    instrumentor.uninstrument()  # this folder's fixture instruments OpenAI; start from nothing
    llm_otel.uninstrument()
    try:
        originals = _snapshot()
        assert len(originals) >= 20
        assert not any(_ours(f) for f in originals.values())
        client = Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml", repeat=True).openai_client()
        chat_model = FakeListChatModel(responses=["hi"] * (CYCLES * 2))
        llama_llm = MockLLM(max_tokens=4)
        exporter = spans.__self__
        from llm_otel.instrumentation import _instrumentor

        singletons = [_instrumentor(name) for name in ("openai", "langchain", "llama_index")]
        for cycle in range(CYCLES):
            # every 10th cycle through the public API (it scans entry points: ~35 ms),
            # the others through the very instrumentor objects it loads
            public = cycle % 10 == 0
            if public:
                assert set(llm_otel.instrument()) == {"openai", "langchain", "llama_index"}
            else:
                for inst in singletons:
                    inst.instrument()
            wrapped = _snapshot()
            for inst in singletons:  # twice is once
                inst.instrument()
            assert _snapshot() == wrapped
            for key, func in wrapped.items():
                assert isinstance(func, wrapt.FunctionWrapper) and _ours(func), key
                assert func.__wrapped__ is originals[key], key  # exactly one layer, over the original
            exporter.clear()
            _calls(client, chat_model, llama_llm)
            llm_spans = [s for s in exporter.get_finished_spans() if s.attributes.get("gen_ai.operation.name")]
            assert len(llm_spans) == 3, (cycle, [s.name for s in llm_spans])  # one per call
            if public:
                llm_otel.uninstrument()
            else:
                for inst in singletons:
                    inst.uninstrument()
            now = _snapshot()
            assert all(now[key] is originals[key] for key in originals), cycle
            exporter.clear()
            _calls(client, chat_model, llama_llm)
            assert exporter.get_finished_spans() == (), cycle
    finally:
        llm_otel.uninstrument()
        instrumentor.instrument()


FORK_SCRIPT = textwrap.dedent("""
    import os, sys
    import httpx, openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from llm_otel.instrumentors.openai import OpenAIInstrumentor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1]), schedule_delay_millis=50))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0,
            "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}

    def call(model):
        client = openai.OpenAI(api_key="sk-x", max_retries=0, http_client=httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body))))
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])

    call("before-fork")
    provider.force_flush()  # the export worker thread is running now
    pid = os.fork()
    if pid == 0:
        for _ in range(5):
            call("child")
        ok = provider.force_flush(10000)
        os._exit(0 if ok else 3)
    for _ in range(5):
        call("parent")
    _, status = os.waitpid(pid, 0)
    ok = provider.force_flush(10000)
    provider.shutdown()
    print("child", os.waitstatus_to_exitcode(status), "parent", ok)
""")


def test_fork_child_spans_exported_parent_unaffected(tmp_path):
    """The SDK's BatchSpanProcessor re-creates its worker in a forked child (register_at_fork):
    the child's spans are exported by the child, the parent's by the parent, none twice."""
    backend = OtlpBackend().start()
    try:
        script = tmp_path / "fork_app.py"
        script.write_text(FORK_SCRIPT)
        out = subprocess.run([sys.executable, str(script), backend.endpoint], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["child", "0", "parent", "True"]
        names = sorted(backend.names)
        assert names.count("chat child") == 5
        assert names.count("chat parent") == 5
        assert names.count("chat before-fork") == 1  # exported before the fork, not again by the child
        assert len(backend.span_ids) == len(set(backend.span_ids)) == 11
    finally:
        backend.stop()
