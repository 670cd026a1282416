"""LangChain tests: instrumented once for this folder, uninstrumented after it."""

from __future__ import annotations

import pytest

from llm_otel.instrumentors.langchain import LangChainInstrumentor
from llm_otel.instrumentors.openai import OpenAIInstrumentor


@pytest.fixture(scope="module", autouse=True)
def instrumented():
    inst = LangChainInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()


@pytest.fixture(scope="module")
def openai_instrumented():
    """The OpenAI instrumentor on too, for the tests of LangChain over the traced SDK."""
    inst = OpenAIInstrumentor()
    already = inst.is_instrumented_by_opentelemetry
    inst.instrument()
    yield inst
    if not already:
        inst.uninstrument()


@pytest.fixture
def lc_recordings(recordings):
    return recordings / "langchain"
