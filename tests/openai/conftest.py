"""OpenAI instrumentor fixtures: instrumented for this folder only, replayed cassettes."""

from __future__ import annotations

import pytest

from llm_otel.instrumentors.openai import OpenAIInstrumentor
from support.cassettes import Cassette


@pytest.fixture(scope="module", autouse=True)
def instrumentor():
    """Globally instrumented while this folder's tests run, restored afterwards."""
    inst = OpenAIInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()


@pytest.fixture
def cassette(recordings):
    """``cassette("test_chat/test_chat")`` -> a Cassette over the recorded OpenAI traffic."""
    def load(name: str) -> Cassette:
        return Cassette(recordings / "openai" / f"{name}.yaml")
    return load

