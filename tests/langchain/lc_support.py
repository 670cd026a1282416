"""Span-tree helpers for the LangChain tests."""

from __future__ import annotations

TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"


def tree(spans):
    """{span name: parent span name} plus the spans by name (names may repeat: lists)."""
    by_id = {s.context.span_id: s for s in spans}
    out = {}
    for s in spans:
        parent = by_id.get(s.parent.span_id) if s.parent else None
        out.setdefault(s.name, []).append(parent.name if parent else None)
    return out


def named(spans, name):
    found = [s for s in spans if s.name == name]
    assert found, f"no span {name!r} in {[s.name for s in spans]}"
    return found


def one(spans, name):
    found = named(spans, name)
    assert len(found) == 1, f"{len(found)} spans named {name!r}"
    return found[0]


def parent_of(spans, span):
    by_id = {s.context.span_id: s for s in spans}
    return by_id.get(span.parent.span_id) if span.parent else None
