"""OpenAI through llm-otel and Anthropic through its own tracing, in one ``@track`` pipeline,
counted together by one ``usage()``.

    OTEL_TRACES_EXPORTER=llm_otel_console opentelemetry-instrument python examples/mixed_providers.py

llm-otel traces the OpenAI SDK; the Anthropic SDK traces itself (its spans are on by
default). llm-otel counts every GenAI span, whoever recorded it: one ``usage()`` total, one
cost and one set of GenAI metrics cover both providers. Without ``OPENAI_API_KEY`` /
``ANTHROPIC_API_KEY`` it runs against the local stand-in server (``standin_server.py``),
which answers both APIs.
"""

from __future__ import annotations

import os

import anthropic
import openai

import llm_otel
from llm_otel import track

from standin_server import ensure_anthropic_env, ensure_openai_env

OPENAI_MODEL = os.environ.get("LLM_OTEL_EXAMPLE_MODEL", "gpt-4o-mini")
ANTHROPIC_MODEL = os.environ.get("LLM_OTEL_EXAMPLE_ANTHROPIC_MODEL", "claude-sonnet-4-6")


@track
def draft(client: openai.OpenAI, topic: str) -> str:
    reply = client.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": f"Write two sentences about {topic}."}])
    return reply.choices[0].message.content


@track
def review(client: anthropic.Anthropic, text: str) -> str:
    with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=200,
                                messages=[{"role": "user", "content": f"Improve this text: {text}"}]) as stream:
        return stream.get_final_text()


@track(name="write_with_review")
def pipeline(topic: str) -> str:
    return review(anthropic.Anthropic(), draft(openai.OpenAI(), topic))


def main() -> None:
    print(f"OpenAI calls go to {ensure_openai_env()}, Anthropic calls to {ensure_anthropic_env()}")
    llm_otel.instrument()  # a no-op under opentelemetry-instrument or `import llm_otel.auto`
    with llm_otel.usage() as u:
        text = pipeline("OpenTelemetry for LLM apps")
    print(text)
    print(f"requests {u.requests}  tokens in {u.input_tokens} out {u.output_tokens}  cost {u.cost_usd}")
    for model, counts in u.by_model.items():
        print(f"  {model}: {counts.requests} request(s), tokens in {counts.input_tokens} out {counts.output_tokens}, "
              f"cost {counts.cost_usd}")


if __name__ == "__main__":
    main()
