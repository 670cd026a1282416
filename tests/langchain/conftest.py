"""LangChain tests: instrumented once for this folder, uninstrumented after it."""

from __future__ import annotations

import pytest

from llm_otel.instrumentors.langchain import LangChainInstrumentor


@pytest.fixture(scope="module", autouse=True)
def instrumented():
    inst = LangChainInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()


@pytest.fixture
def lc_recordings(recordings):
    return recordings / "langchain"
