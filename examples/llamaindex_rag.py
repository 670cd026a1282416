"""A LlamaIndex RAG query, traced with llm-otel.

    OTEL_TRACES_EXPORTER=console opentelemetry-instrument python examples/llamaindex_rag.py

Builds a vector index over a few documents (OpenAI embeddings), then asks a question: the
trace shows the query, the retrieval (the query's embedding inside it) and the synthesis
with its LLM call. Needs ``llama-index-core``, ``llama-index-llms-openai`` and
``llama-index-embeddings-openai``. Without ``OPENAI_API_KEY`` it runs against the local
stand-in server (``standin_server.py``).
"""

from __future__ import annotations

import os

from standin_server import ensure_openai_env

MODEL = os.environ.get("LLM_OTEL_EXAMPLE_MODEL", "gpt-4o-mini")
NOTES = [
    "llm-otel records every LLM call as an OpenTelemetry span with GenAI attributes.",
    "Phoenix and Jaeger both accept OTLP, over gRPC on 4317 or HTTP on 4318.",
    "Message content is recorded only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is set.",
]


def build():
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai import OpenAI

    base = os.environ.get("OPENAI_BASE_URL")  # LlamaIndex reads OPENAI_API_BASE, not this
    Settings.llm = OpenAI(model=MODEL, temperature=0, api_base=base, max_retries=0)
    Settings.embed_model = OpenAIEmbedding(model="text-embedding-3-small", api_base=base, max_retries=0)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in NOTES])
    return index.as_query_engine(similarity_top_k=2)


def main() -> None:
    target = ensure_openai_env()
    print(f"calling {target} with model {MODEL}")
    engine = build()
    print(engine.query("Where do I send traces, and is message content recorded?"))


if __name__ == "__main__":
    main()
