"""Helpers for the OpenAI instrumentor tests."""

from __future__ import annotations

import json


def llm_spans(spans):
    """The GenAI spans of this test (others, e.g. user spans, filtered out)."""
    return [s for s in spans() if s.attributes.get("gen_ai.operation.name")]


def content(span, key):
    """A captured content attribute, parsed back from JSON."""
    return json.loads(span.attributes[key])
