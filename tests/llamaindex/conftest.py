"""LlamaIndex tests: instrumented (with the OpenAI SDK underneath) for this folder only.

``Settings.llm`` / ``Settings.embed_model`` are mocks, so nothing is downloaded or sent.
"""

from __future__ import annotations

import pytest
from llama_index.core import Settings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM

from llm_otel.instrumentors.llamaindex import LlamaIndexInstrumentor
from llm_otel.instrumentors.openai import OpenAIInstrumentor


@pytest.fixture(scope="module", autouse=True)
def instrumented():
    openai_inst = OpenAIInstrumentor()
    openai_inst.instrument()
    inst = LlamaIndexInstrumentor()
    inst.instrument()
    yield inst
    inst.uninstrument()
    openai_inst.uninstrument()


@pytest.fixture(autouse=True)
def offline_settings():
    Settings.llm = MockLLM(max_tokens=8)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    yield
    Settings.llm = MockLLM(max_tokens=8)
    Settings.embed_model = MockEmbedding(embed_dim=8)


@pytest.fixture
def li_recordings(recordings):
    return recordings / "llamaindex"
