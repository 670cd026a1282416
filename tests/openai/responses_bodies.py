"""Responses API bodies for the local server: the envelope of a recorded response
(../shared/recordings/openai/test_responses/test_responses.yaml) with the output items the
tests need, each shaped as the API documents it and the SDK models it
(test_bodies_match_the_sdk_models validates them all against ``openai.types.responses``).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List

ENVELOPE: Dict[str, Any] = {
    "id": "resp_685ff88d1f7c8199980b00a1f8b7467b05baa2d6acc60d4f", "object": "response",
    "created_at": 1751120013, "status": "completed", "background": False, "error": None,
    "incomplete_details": None, "instructions": None, "max_output_tokens": None, "max_tool_calls": None,
    "model": "gpt-4.1-nano-2025-04-14", "output": [], "parallel_tool_calls": True,
    "previous_response_id": None, "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
    "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
    "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled",
    "usage": {"input_tokens": 14, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
              "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 22},
    "user": None, "metadata": {},
}


def response(output: List[Dict[str, Any]], **fields: Any) -> Dict[str, Any]:
    body = copy.deepcopy(ENVELOPE)
    body["output"] = output
    body.update(fields)
    return body


def message(text: str) -> Dict[str, Any]:
    return {"id": "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c2ca0131", "type": "message",
            "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]}


WEB_SEARCH = {"id": "ws_0be194b6f69aea1900695d806aa95c81949ad5969b2ee4921c", "type": "web_search_call",
              "status": "completed",
              "action": {"type": "search", "query": "python factorial",
                         "sources": [{"type": "url", "url": "https://docs.python.org/3/library/math.html"}]}}
FILE_SEARCH = {"id": "fs_67ccd3b0e0a48190a1e9f5f4fd4c56a30e1d7d1c1d2b1f1a", "type": "file_search_call",
               "status": "completed", "queries": ["deep research"],
               "results": [{"file_id": "file-2dtbBZdjtDKS8eqWxqbgDi", "filename": "deep_research_blog.pdf",
                            "score": 0.92, "text": "Deep research is...", "attributes": {}}]}
CODE_INTERPRETER = {"id": "ci_690bdbfed8688190884efd4c7ae6435b", "type": "code_interpreter_call",
                    "status": "completed", "code": "print(10 + 20)",
                    "container_id": "cntr_690bdbfed8688190884efd4c7ae6435b0db1f006442e8941",
                    "outputs": [{"type": "logs", "logs": "30"}]}
IMAGE_GENERATION = {"id": "ig_68b1c5d5e4f08190a1c2d3e4f5a6b7c8", "type": "image_generation_call",
                    "status": "completed", "result": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
                                                     "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}
MCP_CALL = {"id": "mcp_682d437d90a88191bf88cd03aae0c3e503937d5f622d7a90", "type": "mcp_call",
            "approval_request_id": None, "arguments": "{\"repoName\":\"openai/tiktoken\"}", "error": None,
            "name": "ask_question", "output": "tiktoken is a fast BPE tokeniser.", "server_label": "deepwiki",
            "status": "completed"}
CUSTOM_CALL = {"id": "ctc_6890e975e86c819c9338825b3e1994810694874df0e59c1d", "type": "custom_tool_call",
               "status": "completed", "call_id": "call_aGiFQkRWSWAIsMQ19fKqxUgb", "name": "code_exec",
               "input": "print(\"hello world\")"}
COMPUTER_CALL = {"id": "cu_67cc5d2b0f3c8190a0bb1e4f8bfd7d3b", "type": "computer_call", "status": "completed",
                 "call_id": "call_zw3NqPl3Wm3xXP1Q5Hc3kJ3q",
                 "action": {"type": "click", "button": "left", "x": 156, "y": 50}, "pending_safety_checks": []}

SERVER_TOOLS = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1234567890"]},
                {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"},
                {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.deepwiki.com/mcp",
                 "require_approval": "never"}]


def event_stream(final: Dict[str, Any], final_event: str = "response.completed",
                 deltas: List[str] = ()) -> List[Any]:
    """A Responses event stream: created, text deltas, the final event (``(name, data)`` pairs)."""
    created = {**final, "status": "in_progress", "output": [], "usage": None, "error": None}
    events = [("response.created", {"type": "response.created", "sequence_number": 0, "response": created})]
    for number, delta in enumerate(deltas, start=1):
        events.append(("response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": number, "item_id": "msg_1", "output_index": 0,
            "content_index": 0, "delta": delta, "logprobs": []}))
    events.append((final_event, {"type": final_event, "sequence_number": len(events), "response": final}))
    return events
