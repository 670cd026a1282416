"""Reliability fixtures: the OpenAI SDK instrumented for this folder, replayed cassettes,
the content settings per test, and a processor that sees spans start as well as end (so a
test can tell that nothing was left open)."""

from __future__ import annotations

import pytest

from llm_otel import config
from llm_otel.instrumentors.openai import OpenAIInstrumentor
from rel_support import OPEN_SPANS
from support.cassettes import Cassette


@pytest.fixture
def open_spans():
    """``open_spans()`` -> names of the spans started during this test and still open."""
    before = set(OPEN_SPANS.open)
    return lambda: sorted(name for sid, name in list(OPEN_SPANS.open.items()) if sid not in before)


@pytest.fixture(scope="module", autouse=True)
def instrumentor():
    """The OpenAI SDK instrumented while each module runs (module scope: a directory without
    __init__.py is no package, so package scope would last the whole session)."""
    inst = OpenAIInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()


@pytest.fixture
def cassette(recordings):
    def load(name: str, repeat: bool = False) -> Cassette:
        return Cassette(recordings / "openai" / f"{name}.yaml", repeat=repeat)
    return load


@pytest.fixture
def content_mode(monkeypatch):
    """``content_mode("SPAN_AND_EVENT")``: set the capture mode for one test."""
    def set_mode(mode):
        if mode is None:
            monkeypatch.delenv(config.CAPTURE_CONTENT_ENV, raising=False)
        else:
            monkeypatch.setenv(config.CAPTURE_CONTENT_ENV, mode)
        config.reload()
    yield set_mode
    monkeypatch.delenv(config.CAPTURE_CONTENT_ENV, raising=False)
    monkeypatch.delenv(config.REDACT_PATTERNS_ENV, raising=False)
    monkeypatch.delenv(config.CAPTURE_IMAGES_ENV, raising=False)
    config.set_redactor(None)
    config.reload()


@pytest.fixture(scope="module")
def langchain_instrumentor():
    """LangChain instrumented for one module (imported first, so instrument() patches at once)."""
    import langchain_core  # noqa: F401
    from llm_otel.instrumentors.langchain import LangChainInstrumentor

    inst = LangChainInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()


@pytest.fixture(scope="module")
def llamaindex_instrumentor():
    """LlamaIndex instrumented for one module (imported first, so instrument() patches at once)."""
    import llama_index.core  # noqa: F401
    from llm_otel.instrumentors.llamaindex import LlamaIndexInstrumentor

    inst = LlamaIndexInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()
