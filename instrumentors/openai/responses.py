"""Responses API (placeholder until the extractor lands)."""
from __future__ import annotations
from typing import Any, Dict
from llm_otel.core.invocation import LLMInvocation
from .utils import new_invocation, get

OPERATION = "chat"

def start(resource: Any, kwargs: Dict[str, Any]) -> LLMInvocation:
    return new_invocation(OPERATION, resource, kwargs)

def end(inv: LLMInvocation, response: Any, kwargs: Dict[str, Any]) -> None:
    inv.response_id = get(response, "id")
    inv.response_model = get(response, "model")

class StreamState:
    def __init__(self, inv, kwargs): pass
    def chunk(self, inv, chunk): pass
    def finish(self, inv): pass
