"""Your own pipeline traced with ``@llm_otel.track``, trace data and ``usage()``.

    OTEL_TRACES_EXPORTER=llm_otel_console opentelemetry-instrument python examples/track_pipeline.py

``@track`` puts a span around each step; the OpenAI calls inside join the same trace.
``update_current_trace`` tags the whole trace (user, session, tags, metadata, a feedback
score) so a backend can filter on it, and ``usage()`` counts tokens, requests and cost
of everything inside the block. Without ``OPENAI_API_KEY`` it runs against the local
stand-in server (``standin_server.py``).
"""

from __future__ import annotations

import os
import re

import llm_otel
from llm_otel import track, update_current_span, update_current_trace

from standin_server import ensure_openai_env

MODEL = os.environ.get("LLM_OTEL_EXAMPLE_MODEL", "gpt-4o-mini")
FAQ = {
    "refund": "Refunds are issued within 5 working days to the original payment method.",
    "shipping": "Orders ship within 24 hours; tracking links arrive by e-mail.",
    "warranty": "Every device has a two-year warranty covering manufacturing defects.",
}


@track(kind="retriever")
def find_articles(question: str) -> list:
    """Keyword lookup: a real app would query a search index or a vector store here."""
    words = set(re.findall(r"\w+", question.lower()))
    hits = [text for key, text in FAQ.items() if key in words or key.rstrip("s") in words]
    update_current_span(metadata={"hits": len(hits)})
    return hits


@track
def draft_answer(client, question: str, articles: list) -> str:
    context = "\n".join(articles) or "(no article found)"
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": f"Answer from this context only:\n{context}"},
                  {"role": "user", "content": question}],
        temperature=0,
    )
    return response.choices[0].message.content


@track
def polish(client, draft: str):
    """A streamed rewrite: the generator's span lasts until the last piece is consumed."""
    stream = client.chat.completions.create(
        model=MODEL, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": f"Rewrite politely: {draft}"}])
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


@track(name="support_pipeline", tags=["example"], metadata={"pipeline_version": "1"})
def support_pipeline(client, question: str, user_id: str) -> str:
    update_current_trace(user_id=user_id, session_id="session-42", tags=["support"],
                         metadata={"channel": "cli"})
    articles = find_articles(question)
    draft = draft_answer(client, question, articles)
    answer = "".join(polish(client, draft))
    update_current_trace(feedback_scores=[{"name": "grounded", "value": 1.0 if articles else 0.0,
                                           "reason": "answer drew on the FAQ" if articles else "no article"}])
    return answer


def main() -> None:
    target = ensure_openai_env()
    # A no-op under opentelemetry-instrument; lets a plain `python track_pipeline.py` count usage().
    llm_otel.instrument("openai")
    import openai

    client = openai.OpenAI(max_retries=0)
    print(f"calling {target} with model {MODEL}")
    with llm_otel.usage() as used:
        print(support_pipeline(client, "How long does a refund take?", user_id="user-7"))
    cost = "unknown price" if used.cost_usd is None else f"${used.cost_usd:.6f}"
    print(f"usage: {used.requests} requests, {used.input_tokens} input + {used.output_tokens} output "
          f"tokens, cost {cost}")


if __name__ == "__main__":
    main()
