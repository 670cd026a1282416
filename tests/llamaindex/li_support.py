"""Span-tree helpers and scripted models for the LlamaIndex tests."""

from __future__ import annotations

from typing import Any, List

from llama_index.core import Document
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback

EVENT_TYPE = "llm_otel.llamaindex.event_type"


class ScriptedLLM(CustomLLM):
    """Answers from a script, in order (cycling); streams the answer in words."""

    script: List[str]
    calls: int = 0
    fail_with: Any = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted-1")

    def _next(self) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        text = self.script[self.calls % len(self.script)]
        self.calls += 1
        return text

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._next())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        text = self._next()

        def gen():
            so_far = ""
            for word in text.split(" "):
                delta = word if not so_far else " " + word
                so_far += delta
                yield CompletionResponse(text=so_far, delta=delta)
        return gen()


def documents(n: int = 3, words: int = 300) -> List[Document]:
    return [Document(text=f"document {i}. " + " ".join(f"w{i}_{j}" for j in range(words)), doc_id=f"doc-{i}")
            for i in range(n)]


def by_id(spans):
    return {s.context.span_id: s for s in spans}


def parent_of(spans, span):
    return by_id(spans).get(span.parent.span_id) if span.parent else None


def named(spans, prefix):
    return [s for s in spans if s.name == prefix or s.name.startswith(prefix + " ")]


def one(spans, prefix):
    found = named(spans, prefix)
    assert len(found) == 1, f"{len(found)} spans named {prefix!r}: {[s.name for s in spans]}"
    return found[0]


def children(spans, span):
    return [s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id]


def roots(spans):
    ids = by_id(spans)
    return [s for s in spans if s.parent is None or s.parent.span_id not in ids]


def gen_ai(spans, operation):
    return [s for s in spans if s.attributes.get("gen_ai.operation.name") == operation]


def one_of(spans, operation):
    """The one span of a GenAI operation (``retrieval``, ``invoke_agent`` ...)."""
    found = gen_ai(spans, operation)
    assert len(found) == 1, f"{len(found)} {operation} spans: {[s.name for s in spans]}"
    return found[0]
