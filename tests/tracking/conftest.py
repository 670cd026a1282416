"""Tracking tests: no global instrumentation here (``track_openai`` instruments one client)."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from llm_otel.instrumentors.openai import OpenAIInstrumentor
from support.cassettes import Cassette


@pytest.fixture
def no_global_openai():
    """OpenAI not patched globally during the test (another folder may have left it on)."""
    inst = OpenAIInstrumentor()
    was_on = inst.is_instrumented_by_opentelemetry
    if was_on:
        inst.uninstrument()
    yield
    if was_on:
        inst.instrument()


@pytest.fixture
def cassette(recordings):
    """``cassette("test_chat/test_chat")`` -> a Cassette over the recorded OpenAI traffic."""
    def load(name: str) -> Cassette:
        return Cassette(recordings / "openai" / f"{name}.yaml")
    return load


def by_name(spans: List[Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for span in spans:
        assert span.name not in out, f"two spans named {span.name!r}"
        out[span.name] = span
    return out


def parent_id(span: Any) -> Any:
    return span.parent.span_id if span.parent is not None else None
