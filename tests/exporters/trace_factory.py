"""Real traces for the local tools' tests, made through the core recorder.

An agent run (step) with two chat calls and a tool execution between them: the first call
asks for a tool, the second answers from its result. Content is recorded (the caller
turns capture on), usage is exact on the first call and estimated by the core on the
second, cost is set on the record as the cost hook would.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from llm_otel.core.invocation import LLMInvocation, StepInvocation, ToolInvocation
from llm_otel.core.recorder import get_recorder

SYSTEM = [{"type": "text", "content": "You are a weather assistant."}]
TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}]


def user(text: str) -> Dict[str, Any]:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


def chat(recorder, input_messages, output_messages, model="gpt-4o-mini", usage=(None, None),
         cost: Optional[float] = None, error: Optional[BaseException] = None, system=SYSTEM, tools=TOOLS,
         attributes: Optional[Dict[str, Any]] = None, finish_reason: str = "stop") -> LLMInvocation:
    inv = LLMInvocation(request_model=model, input_messages=input_messages, system_instructions=system,
                        tool_definitions=tools, attributes=dict(attributes or {}))
    recorder.start_llm(inv)
    time.sleep(0.002)
    if error is not None:
        recorder.fail_llm(inv, error)
        return inv
    inv.output_messages = output_messages
    inv.response_model = model + "-2024-07-18"
    inv.response_id = "chatcmpl-test"
    inv.finish_reasons = [finish_reason]
    inv.input_tokens, inv.output_tokens = usage
    inv.cost_usd = cost
    recorder.stop_llm(inv)
    return inv


def agent_trace(question: str = "What's the weather in Paris?", city: str = "Paris", tags=("prod",),
                feedback: Optional[Dict[str, float]] = None, feedback_span: bool = False,
                recorder=None) -> None:
    """Record one agent run: chat (tool call) -> execute_tool -> chat (answer)."""
    recorder = recorder or get_recorder()
    attrs: Dict[str, Any] = {"llm_otel.tags": list(tags)} if tags else {}
    if feedback and not feedback_span:
        attrs.update({f"llm_otel.feedback.{k}.value": v for k, v in feedback.items()})
    step = recorder.start_step(StepInvocation(name="agent weather", kind="agent", operation="invoke_agent",
                                              agent_name="weather", attributes=attrs))
    with recorder.activate(step):
        call = {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": city}}
        chat(recorder, [user(question)],
             [{"role": "assistant", "parts": [call], "finish_reason": "tool_calls"}],
             usage=(52, 14), cost=0.0000162, finish_reason="tool_calls")
        tool = recorder.start_tool(ToolInvocation(name="get_weather", call_id="call_1", arguments={"city": city}))
        with recorder.activate(tool):
            time.sleep(0.001)
        tool.result = f"Sunny, 21 C in {city}"
        recorder.stop(tool)
        chat(recorder, [user(question), {"role": "assistant", "parts": [call]},
                        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                                    "response": tool.result}]}],
             [{"role": "assistant", "parts": [{"type": "text", "content": f"It is sunny and 21 C in {city}."}],
               "finish_reason": "stop"}])
        if feedback and feedback_span:
            fb = recorder.start_step(StepInvocation(name="feedback", kind="feedback", attributes={
                f"llm_otel.feedback.{k}.value": v for k, v in feedback.items()}))
            recorder.stop(fb)
    recorder.stop(step)


def failing_trace(recorder=None) -> None:
    """A chain whose chat call fails (rate limit)."""
    recorder = recorder or get_recorder()
    step = recorder.start_step(StepInvocation(name="chain summarize", kind="chain"))
    with recorder.activate(step):
        chat(recorder, [user("Summarize this.")], None, error=RuntimeError("rate limited"))
    recorder.stop(step)


def names(spans: List[Any]) -> List[str]:
    return [s.name for s in spans]
