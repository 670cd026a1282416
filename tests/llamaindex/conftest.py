"""LlamaIndex tests: instrumented (with the OpenAI SDK underneath) for this folder only.

``Settings.llm`` / ``Settings.embed_model`` are mocks, so nothing is downloaded or sent.
They run on llama-index-core 0.12 and 0.14.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import llama_index.core
import pytest

from llm_otel import config


def _offline_nltk() -> None:
    """llama-index-core ships the NLTK data its sentence splitter needs (stopwords,
    punkt_tab), but 0.12 looks for it in the user's cache (``$NLTK_DATA/_static/nltk_cache``)
    and downloads it when absent, while 0.14 uses the shipped copy or ``$NLTK_DATA`` itself.
    A directory that is both points every version at the shipped copy: no test downloads."""
    shipped = Path(llama_index.core.__file__).parent / "_static" / "nltk_cache"
    if "NLTK_DATA" in os.environ or not shipped.is_dir():
        return
    root = Path(tempfile.mkdtemp(prefix="llm-otel-nltk-"))
    atexit.register(shutil.rmtree, root, True)  # removes the links, never what they point at
    for entry in shipped.iterdir():
        (root / entry.name).symlink_to(entry)
    (root / "_static").mkdir()
    (root / "_static" / "nltk_cache").symlink_to(shipped)
    os.environ["NLTK_DATA"] = str(root)
    import nltk.data  # NLTK reads only below its data paths: where the links lead is one

    nltk.data.path.append(str(shipped))


_offline_nltk()

from llama_index.core import Settings  # noqa: E402
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


@pytest.fixture
def latest_semconv(monkeypatch):
    """The semantic-conventions-genai v0.1.0 names for one test."""
    monkeypatch.setenv(config.SEMCONV_OPT_IN_ENV, "gen_ai_latest_experimental")
    config.reload()
    yield
    monkeypatch.delenv(config.SEMCONV_OPT_IN_ENV)
    config.reload()
