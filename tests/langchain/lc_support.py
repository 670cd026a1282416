"""Span-tree helpers for the LangChain tests."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from typing import Any, Dict, Iterator, Optional

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

TOKENS = "gen_ai.client.token.usage"
DURATION = "gen_ai.client.operation.duration"

# LangGraph 1.x needs Python 3.10 and the [langchain] extra installs it from 3.10 on: there a
# missing LangGraph fails these tests; on 3.9 they skip
needs_langgraph = pytest.mark.skipif(sys.version_info < (3, 10), reason="LangGraph 1.x needs Python >= 3.10")
needs_create_agent = pytest.mark.skipif(int(version("langchain").split(".")[0]) < 1,
                                        reason=f"langchain {version('langchain')}: create_agent is LangChain 1.x")


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



class ScriptedChat(BaseChatModel):
    """A chat model that answers from ``replies`` (AIMessages) in order, as a tool-calling
    model does: ``bind_tools`` is accepted, ``stream()`` yields the reply as one
    ``AIMessageChunk`` with its tool calls as chunks (as OpenAI's streams do), and ``usage``
    (``{"input_tokens": .., "output_tokens": ..}``) is reported on every reply, as an API does."""

    replies: Any
    model_name: str = "scripted-1"
    usage: Optional[Dict[str, int]] = None

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedChat":
        return self

    def _reply(self) -> AIMessage:
        reply = next(self.replies)
        if self.usage:
            total = self.usage["input_tokens"] + self.usage["output_tokens"]
            reply = reply.model_copy(update={"usage_metadata": {**self.usage, "total_tokens": total}})
        return reply

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply())])

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        reply = self._reply()
        calls = [{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                 for i, c in enumerate(reply.tool_calls)]
        yield ChatGenerationChunk(message=AIMessageChunk(content=reply.content, tool_call_chunks=calls,
                                                         usage_metadata=reply.usage_metadata))


def scripted(*replies: AIMessage, **kwargs: Any) -> ScriptedChat:
    return ScriptedChat(replies=iter(replies), **kwargs)
