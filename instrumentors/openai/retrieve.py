"""``responses.retrieve(id)`` (``GET /responses/{id}``, plain or streamed): polling or
resuming a background response, traced as the conventions' ``fetch_response``.

Recorded: the response id asked for, then the fetched response's status, model, finish
reason and service tier; with content captured its instructions, tools and output. No
usage (that response's tokens belong to the call that created it) and no input messages.
A fetched response that failed is what was fetched, not a failed fetch.
"""

from __future__ import annotations

from typing import Any, Dict
from urllib.parse import unquote

from llm_otel.core import LLMInvocation

from . import responses
from .utils import get, provider_of, response_extras, server_of, text

OPERATION = "fetch_response"


def start(client: Any, body: Dict[str, Any], options: Any) -> LLMInvocation:
    """``body``: the request's query parameters (``stream``, ``starting_after``)."""
    inv = LLMInvocation(operation=OPERATION, provider=provider_of(client))
    inv.server_address, inv.server_port = server_of(client)
    inv.response_id = unquote(options.url.rsplit("/", 1)[-1])
    inv.stream = get(body, "stream") is True
    inv.usage_expected = True  # nothing to count locally: a stream's text is not kept for it
    inv.provider_extras["api.type"] = responses.API_TYPE
    return inv


def end(inv: LLMInvocation, response: Any) -> None:
    inv.response_id = get(response, "id") or inv.response_id
    inv.response_model = get(response, "model")
    inv.response_status = text(get(response, "status"))
    response_extras(inv, response)
    reason = responses.finish_reason(response, responses.pending_calls(response))
    inv.finish_reasons = [reason] if reason else None
    inv.set_output(response, _content)


def _content(response: Any, inv: LLMInvocation) -> None:
    responses.output_content(response, inv)
    inv.system_instructions = responses.instructions(get(response, "instructions"))
    inv.tool_definitions = responses.tool_definitions(get(response, "tools"))


class StreamState(responses.StreamState):
    """A resumed event stream: the final event carries the fetched response."""

    ended = staticmethod(end)
