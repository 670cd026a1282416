"""OpenAI chat, streaming and tool calls, traced with llm-otel.

Run it under OpenTelemetry's launcher (the instrumentor is found by its entry point)::

    OTEL_TRACES_EXPORTER=console opentelemetry-instrument python examples/openai_chat.py

With ``OPENAI_API_KEY`` set it calls the OpenAI API (``OPENAI_BASE_URL`` picks another
OpenAI-compatible server); with neither it starts the local stand-in server
(``standin_server.py``, deterministic replies) so it runs offline. Each scenario is one
trace: a span of the app's own around the LLM spans llm-otel records.
"""

from __future__ import annotations

import json
import os

from opentelemetry import trace

from standin_server import ensure_openai_env

MODEL = os.environ.get("LLM_OTEL_EXAMPLE_MODEL", "gpt-4o-mini")
tracer = trace.get_tracer("examples.openai_chat")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"}},
            "required": ["city"],
        },
    },
}


def get_weather(city: str) -> dict:
    """The app's own tool (a real app would call a weather service here)."""
    return {"city": city, "temperature_c": 18, "conditions": "light rain"}


def chat(client) -> str:
    with tracer.start_as_current_span("example chat"):
        response = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": "You are terse."},
                      {"role": "user", "content": "Name one use of OpenTelemetry."}],
            temperature=0.2,
            max_tokens=60,
        )
    return response.choices[0].message.content


def stream(client) -> str:
    with tracer.start_as_current_span("example stream"):
        pieces = []
        chunks = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count from one to five."}],
            stream=True,
            stream_options={"include_usage": True},  # the last chunk carries token usage
        )
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    return "".join(pieces)


def weather_agent(client) -> str:
    """The tool loop: the model asks for get_weather, the app runs it, the model answers."""
    with tracer.start_as_current_span("example weather agent"):
        messages = [{"role": "user", "content": "What's the weather in Paris right now?"}]
        first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
        message = first.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = get_weather(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
        final = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    return final.choices[0].message.content


def main() -> None:
    target = ensure_openai_env()
    import openai  # after ensure_openai_env(): the client reads OPENAI_BASE_URL / OPENAI_API_KEY

    client = openai.OpenAI(max_retries=0)
    print(f"calling {target} with model {MODEL}")
    print("chat:   ", chat(client))
    print("stream: ", stream(client))
    print("tools:  ", weather_agent(client))


if __name__ == "__main__":
    main()
