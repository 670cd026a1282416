"""Helpers for the OpenAI instrumentor tests."""

from __future__ import annotations

import json

import openai
import pytest

#: (major, minor) of the installed SDK, for the tests whose expectations differ by version
OPENAI_VERSION = tuple(int(part) for part in openai.__version__.split(".")[:2])
#: where structured output lives: ``beta.chat.completions.parse`` in every 1.40+ release,
#: ``chat.completions.parse`` too from 1.92
PARSE_RESOURCES = ("beta.chat.completions",) + (("chat.completions",) if OPENAI_VERSION >= (1, 92) else ())
needs_responses_api = pytest.mark.skipif(OPENAI_VERSION < (1, 66), reason="the Responses API arrived in openai 1.66")


def resource(client, path):
    """``resource(client, "beta.chat.completions")`` -> that resource object of ``client``."""
    for part in path.split("."):
        client = getattr(client, part)
    return client


def llm_spans(spans):
    """The GenAI spans of this test (others, e.g. user spans, filtered out)."""
    return [s for s in spans() if s.attributes.get("gen_ai.operation.name")]


def content(span, key):
    """A captured content attribute, parsed back from JSON."""
    return json.loads(span.attributes[key])
