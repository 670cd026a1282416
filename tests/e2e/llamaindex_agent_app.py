"""A LlamaIndex agent app for the Phoenix end-to-end test (run by it under
``opentelemetry-instrument``, against the stand-in OpenAI server).

A FunctionAgent answers from notes through a query-engine tool: each turn is an agent run
whose tool call runs a RAG query (a retrieval with documents, an answer written by the
model). Two turns share one memory, so they are one conversation.
"""

from __future__ import annotations

import asyncio
import os

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.memory import Memory
from llama_index.core.tools import QueryEngineTool
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

NOTES = [
    "Phoenix accepts OTLP traces over HTTP on port 6006 and over gRPC on port 4317.",
    "Jaeger shows traces from any OTLP exporter.",
    "Message content is recorded only when content capture is turned on.",
]
SESSION = "notes-session-1"
QUESTIONS = ["What does Phoenix accept?", "And what about Jaeger?"]


async def main() -> None:
    base = os.environ["OPENAI_BASE_URL"]
    Settings.llm = OpenAI(model="gpt-4o-mini", api_base=base, max_retries=0)
    Settings.embed_model = OpenAIEmbedding(model="text-embedding-3-small", api_base=base, max_retries=0)
    index = VectorStoreIndex.from_documents([Document(text=t, doc_id=f"note-{i}") for i, t in enumerate(NOTES)])
    index.set_index_id("notes")
    search = QueryEngineTool.from_defaults(index.as_query_engine(similarity_top_k=2), name="search_notes",
                                           description="Searches the team's notes on tracing backends.")
    agent = FunctionAgent(name="notes_agent", description="Answers questions from the team's notes.",
                          tools=[search], llm=Settings.llm)
    memory = Memory.from_defaults(session_id=SESSION)
    for question in QUESTIONS:
        print(await agent.run(question, memory=memory))


if __name__ == "__main__":
    asyncio.run(main())
