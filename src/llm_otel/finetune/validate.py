"""The rules of OpenAI's chat fine-tuning format, checked before a line is written.

After the OpenAI cookbook's data-preparation checks: known roles and keys, a system
message only first, user/assistant alternation, tool messages only answering pending
tool calls, every tool call answered before the conversation moves on, a non-empty
assistant turn, and the example ending on the assistant turn it teaches.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

ROLES = {"system", "user", "assistant", "tool"}
MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id", "weight", "function_call"}
EXAMPLE_KEYS = {"messages", "tools", "parallel_tool_calls", "functions"}


def _content_ok(content: Any) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content)


def validate_example(example: Any) -> List[str]:
    """Everything wrong with ``example`` (empty list: valid)."""
    if not isinstance(example, dict):
        return ["example is not a JSON object"]
    errors: List[str] = []
    unknown = set(example) - EXAMPLE_KEYS
    if unknown:
        errors.append(f"unknown top-level keys {sorted(unknown)}")
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return errors + ["'messages' must be a non-empty list"]
    errors.extend(_check_tools(example.get("tools")))

    pending: Dict[str, int] = {}  # tool call id -> index of the assistant message that made it
    previous = None
    for i, message in enumerate(messages):
        where = f"message {i}"
        if not isinstance(message, dict):
            errors.append(f"{where}: not an object")
            continue
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            errors.append(f"{where}: unknown role {role!r}")
            continue
        extra = set(message) - MESSAGE_KEYS
        if extra:
            errors.append(f"{where}: unknown keys {sorted(extra)}")
        content = message.get("content")
        if role == "system" and i != 0:
            errors.append(f"{where}: system message not first")
        if role != "tool" and pending:
            errors.append(f"{where}: tool call(s) {sorted(pending)} not answered before a {role} message")
            pending.clear()
        if role in ("system", "user"):
            if not _content_ok(content) or not content:
                errors.append(f"{where}: {role} message needs non-empty content")
            if role == "user" and previous == "user":
                errors.append(f"{where}: two user messages in a row")
            if role == "user" and message.get("tool_calls"):
                errors.append(f"{where}: user message with tool_calls")
        elif role == "assistant":
            if previous in (None, "system"):
                errors.append(f"{where}: assistant message before any user message")
            if previous == "assistant":
                errors.append(f"{where}: two assistant messages in a row")
            calls = message.get("tool_calls") or []
            has_text = isinstance(content, str) and content.strip() != ""
            if content is not None and not isinstance(content, str):
                errors.append(f"{where}: assistant content must be a string or null")
            if not has_text and not calls:
                errors.append(f"{where}: empty assistant turn (no content, no tool calls)")
            errors.extend(_check_calls(where, calls, pending, i))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if previous not in ("assistant", "tool"):
                errors.append(f"{where}: tool message not after an assistant tool call")
            if not isinstance(call_id, str) or call_id not in pending:
                errors.append(f"{where}: tool_call_id {call_id!r} answers no pending tool call")
            else:
                del pending[call_id]
            if not isinstance(content, str):
                errors.append(f"{where}: tool message content must be a string")
        previous = role
    if previous != "assistant":
        errors.append("the last message must be the assistant turn to learn")
    return errors


def _check_calls(where: str, calls: Any, pending: Dict[str, int], index: int) -> List[str]:
    errors: List[str] = []
    if not isinstance(calls, list):
        return [f"{where}: tool_calls must be a list"]
    for call in calls:
        if not isinstance(call, dict):
            errors.append(f"{where}: tool call is not an object")
            continue
        call_id = call.get("id")
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        if not isinstance(call_id, str) or not call_id:
            errors.append(f"{where}: tool call without an id")
        elif call_id in pending:
            errors.append(f"{where}: duplicate tool call id {call_id!r}")
        else:
            pending[call_id] = index
        if call.get("type") != "function":
            errors.append(f"{where}: tool call type must be 'function'")
        if not isinstance(function.get("name"), str) or not function.get("name"):
            errors.append(f"{where}: tool call without a function name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            errors.append(f"{where}: tool call arguments must be a JSON string")
        else:
            try:
                json.loads(arguments)
            except ValueError:
                errors.append(f"{where}: tool call arguments are not valid JSON")
    return errors


def _check_tools(tools: Any) -> List[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        return ["'tools' must be a list"]
    errors: List[str] = []
    names = set()
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            errors.append(f"tool {i}: must be {{'type': 'function', 'function': {{...}}}}")
            continue
        name = function.get("name")
        if not isinstance(name, str) or not name:
            errors.append(f"tool {i}: function without a name")
        elif name in names:
            errors.append(f"tool {i}: duplicate function name {name!r}")
        else:
            names.add(name)
        if "parameters" in function and not isinstance(function["parameters"], dict):
            errors.append(f"tool {i}: parameters must be a JSON schema object")
    return errors
