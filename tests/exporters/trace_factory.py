"""Real traces for the local tools' tests, made through the core recorder.

An agent run (step) with two chat calls and a tool execution between them: the first call
asks for a tool, the second answers from its result. Content is recorded (the caller
turns capture on), usage is exact on the first call and estimated by the core on the
second, cost is set on the record as the cost hook would.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from llm_otel.core import LLMInvocation, StepInvocation, ToolInvocation, get_recorder

SYSTEM = [{"type": "text", "content": "You are a weather assistant."}]
TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}]


def user(text: str) -> Dict[str, Any]:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


def chat(recorder, input_messages, output_messages, model="gpt-4o-mini", usage=(None, None),
         cost: Optional[float] = None, error: Optional[BaseException] = None, system=SYSTEM, tools=TOOLS,
         tags: Optional[List[str]] = None, finish_reason: str = "stop") -> LLMInvocation:
    inv = LLMInvocation(request_model=model, input_messages=input_messages, system_instructions=system,
                        tool_definitions=tools, tags=tags)
    op = recorder.start(inv)
    time.sleep(0.002)
    if error is not None:
        op.fail(error)
        return inv
    inv.output_messages = output_messages
    inv.response_model = model + "-2024-07-18"
    inv.response_id = "chatcmpl-test"
    inv.finish_reasons = [finish_reason]
    inv.input_tokens, inv.output_tokens = usage
    inv.cost_usd = cost
    op.end()
    return inv


def agent_trace(question: str = "What's the weather in Paris?", city: str = "Paris", tags=("prod",),
                feedback: Optional[Dict[str, float]] = None, feedback_span: bool = False,
                recorder=None) -> None:
    """Record one agent run: chat (tool call) -> execute_tool -> chat (answer)."""
    recorder = recorder or get_recorder()
    scores = {k: (v, None) for k, v in feedback.items()} if feedback and not feedback_span else None
    step = recorder.start(StepInvocation(name="invoke_agent weather", kind="agent", operation="invoke_agent",
                                         agent_name="weather", tags=list(tags) if tags else None, scores=scores))
    with step.current():
        call = {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": city}}
        chat(recorder, [user(question)],
             [{"role": "assistant", "parts": [call], "finish_reason": "tool_calls"}],
             usage=(52, 14), cost=0.0000162, finish_reason="tool_calls")
        with recorder.start(ToolInvocation(name="get_weather", call_id="call_1", arguments={"city": city})) as tool:
            time.sleep(0.001)
            tool.record.result = f"Sunny, 21 C in {city}"
        chat(recorder, [user(question), {"role": "assistant", "parts": [call]},
                        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                                    "response": tool.record.result}]}],
             [{"role": "assistant", "parts": [{"type": "text", "content": f"It is sunny and 21 C in {city}."}],
               "finish_reason": "stop"}])
        if feedback and feedback_span:
            recorder.start(StepInvocation(name="feedback", kind="feedback",
                                          scores={k: (v, None) for k, v in feedback.items()})).end()
    step.end()


def failing_trace(recorder=None) -> None:
    """A chain whose chat call fails (rate limit)."""
    recorder = recorder or get_recorder()
    with recorder.start(StepInvocation(name="chain summarize", kind="chain")):
        chat(recorder, [user("Summarize this.")], None, error=RuntimeError("rate limited"))


def names(spans: List[Any]) -> List[str]:
    return [s.name for s in spans]
