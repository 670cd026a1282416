"""Agents with function tools (ReActAgent on a scripted LLM), tool and LLM errors."""

from __future__ import annotations

import asyncio
import json

import pytest
from li_support import EVENT_TYPE, ScriptedLLM, children, gen_ai, named, one, parent_of, roots

ReActAgent = pytest.importorskip("llama_index.core.agent.workflow", reason="workflow agents arrived in "
                                 "llama-index-core 0.12.x after the 0.12.0 floor").ReActAgent
from llama_index.core.tools import FunctionTool
from opentelemetry import trace
from opentelemetry.trace import StatusCode

DURATION = "gen_ai.client.operation.duration"
tracer = trace.get_tracer("test")

ACT = 'Thought: I need a tool.\nAction: multiply\nAction Input: {"a": 3, "b": 4}'
ANSWER = "Thought: I can answer without using any more tools.\nAnswer: 12"


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def run(agent, message):
    async def main():
        with tracer.start_as_current_span("request"):
            return await agent.run(message)
    return asyncio.run(main())


def test_react_agent_with_function_tool(spans, metric_reader):
    llm = ScriptedLLM(script=[ACT, ANSWER])
    agent = ReActAgent(name="calculator", tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    result = run(agent, "What is 3 times 4?")
    assert "12" in str(result)
    got = spans()
    assert [s.name for s in roots(got)] == ["request"]
    agent_span = one(got, "invoke_agent")
    assert agent_span.name == "invoke_agent calculator"
    assert agent_span.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent_span.attributes["gen_ai.agent.name"] == "calculator"
    assert parent_of(got, agent_span).name == "request"

    steps = named(got, "agent_step")
    assert steps and all(parent_of(got, s) is agent_span for s in steps)
    assert all(s.attributes[EVENT_TYPE] == "AGENT_STEP" for s in steps)
    step_names = [s.name.split(" ", 1)[1] for s in sorted(steps, key=lambda s: s.start_time)]
    assert step_names.count("run_agent_step") == 2 and step_names.count("call_tool") == 1

    # the custom LLM's astream_chat reads stream_chat which reads stream_complete: one call, one span
    chats = gen_ai(got, "chat")
    assert len(chats) == 2 and not gen_ai(got, "text_completion")
    assert all(parent_of(got, c).name == "agent_step run_agent_step" for c in chats)
    assert all(c.attributes["gen_ai.request.model"] == "scripted-1" for c in chats)
    assert all(c.attributes["gen_ai.request.stream"] is True for c in chats)
    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 2

    tool = one(got, "execute_tool")
    assert tool.name == "execute_tool multiply"
    assert tool.attributes["gen_ai.tool.name"] == "multiply"
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert "Multiply two integers" in tool.attributes["gen_ai.tool.description"]
    assert tool.attributes[EVENT_TYPE] == "FUNCTION_CALL"
    assert parent_of(got, tool).name == "agent_step call_tool"
    assert "gen_ai.tool.call.arguments" not in tool.attributes  # content is off by default


def test_tool_arguments_and_result_with_content(spans, capture_content):
    agent = ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=ScriptedLLM(script=[ACT, ANSWER]))
    run(agent, "What is 3 times 4?")
    tool = one(spans(), "execute_tool")
    assert '"a": 3' in tool.attributes["gen_ai.tool.call.arguments"]
    assert tool.attributes["gen_ai.tool.call.result"] == "12"


def test_failing_tool_is_an_error_span_and_the_agent_goes_on(spans):
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    act = 'Thought: I need a tool.\nAction: divide\nAction Input: {"a": 1, "b": 0}'
    agent = ReActAgent(tools=[FunctionTool.from_defaults(divide)], llm=ScriptedLLM(script=[act, ANSWER]))
    run(agent, "1/0?")
    got = spans()
    tool = one(got, "execute_tool")
    assert tool.attributes["error.type"] == "ZeroDivisionError"
    assert tool.status.status_code == StatusCode.ERROR
    assert tool.events[0].name == "exception"
    assert one(got, "invoke_agent").status.status_code != StatusCode.ERROR  # the agent went on
    assert len(gen_ai(got, "chat")) == 2


def test_llm_error_passes_through_and_is_recorded(spans, metric_reader):
    boom = RuntimeError("model down")
    llm = ScriptedLLM(script=["x"], fail_with=boom)
    with pytest.raises(RuntimeError) as info:
        llm.complete("hello")
    assert info.value is boom
    (span,) = gen_ai(spans(), "text_completion")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    assert metric_reader.count(DURATION, error__type="RuntimeError") == 1


def test_failing_stream_is_recorded_once(spans):
    llm = ScriptedLLM(script=["a b c"])
    gen = llm.stream_complete("hi")
    next(gen)
    with pytest.raises(ValueError):
        gen.throw(ValueError("consumer gave up"))
    (span,) = gen_ai(spans(), "text_completion")
    assert span.attributes["error.type"] == "ValueError"
    assert not children(spans(), span)


def test_function_agent_with_tool_calls(spans, metric_reader, capture_content):
    from llama_index.core.base.llms import types

    if not hasattr(types, "ToolCallBlock"):
        pytest.skip("tool calls as content blocks (ToolCallBlock, MockFunctionCallingLLM) arrived in "
                    "llama-index-core 0.14")
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    def respond(messages, **kwargs):
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role="assistant", content="3 times 4 is 12")
        return ChatMessage(role="assistant", blocks=[
            TextBlock(text="Let me multiply."),
            ToolCallBlock(tool_call_id="call_1", tool_name="multiply", tool_kwargs={"a": 3, "b": 4})])

    llm = MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)
    agent = FunctionAgent(name="math", tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    assert "12" in str(run(agent, "What is 3 times 4?"))
    got = spans()
    agent_span = one(got, "invoke_agent")
    assert agent_span.attributes["gen_ai.agent.name"] == "math"
    chats = gen_ai(got, "chat")
    assert len(chats) == 2
    assert all(parent_of(got, c).name == "agent_step run_agent_step" for c in chats)
    assert metric_reader.count(DURATION, gen_ai__operation__name="chat") == 2
    first, second = sorted(chats, key=lambda s: s.start_time)
    output = json.loads(first.attributes["gen_ai.output.messages"])[0]
    assert output["parts"][0] == {"type": "text", "content": "Let me multiply."}
    assert output["parts"][1] == {"type": "tool_call", "id": "call_1", "name": "multiply",
                                  "arguments": {"a": 3, "b": 4}}
    assert "tool_call_response" in second.attributes["gen_ai.input.messages"] or \
        "12" in second.attributes["gen_ai.input.messages"]
    tool = one(got, "execute_tool")
    assert parent_of(got, tool).name == "agent_step call_tool"
    assert tool.attributes["gen_ai.tool.call.result"] == "12"
    assert parent_of(got, agent_span).name == "request"
