"""The end-to-end tests' LangChain agent: two turns of one conversation with a travel agent
whose tool searches guides through a retriever (OPENAI_BASE_URL: the stand-in server).

``create_agent`` named ``travel_agent``, a ``search_guides`` tool, a retriever over an
in-memory vector store (OpenAI embeddings) that returns each guide's similarity score, and
LangGraph's ``thread_id`` naming the conversation.
"""

from __future__ import annotations

import os
from typing import List

from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langgraph.checkpoint.memory import InMemorySaver

GUIDES = {
    "guide-paris": "Paris: the Louvre opens at 9am; bring an umbrella in spring.",
    "guide-lisbon": "Lisbon: tram 28 crosses the old town; pastries at Belem.",
    "guide-oslo": "Oslo: the fjord ferries leave from Aker Brygge every hour.",
}
QUESTIONS = ["What should I pack for Paris?", "And what about Oslo?"]
THREAD = os.environ.get("E2E_THREAD", "trip-42")


class GuideRetriever(BaseRetriever):
    """The guides nearest a query, each with its similarity score."""

    store: InMemoryVectorStore
    k: int = 2

    def _get_relevant_documents(self, query: str, *, run_manager) -> List[Document]:
        return [Document(id=doc.id, page_content=doc.page_content, metadata={"score": score})
                for doc, score in self.store.similarity_search_with_score(query, k=self.k)]


def build():
    embeddings = OpenAIEmbeddings(model="text-embedding-3-small", check_embedding_ctx_length=False)
    store = InMemoryVectorStore(embeddings)
    store.add_texts(list(GUIDES.values()), ids=list(GUIDES))
    retriever = GuideRetriever(store=store)

    @tool
    def search_guides(place: str) -> str:
        """Travel guides about a place."""
        return "\n".join(d.page_content for d in retriever.invoke(place))

    model = ChatOpenAI(model="gpt-4o-mini", temperature=0, max_retries=0)
    return create_agent(model, [search_guides], name="travel_agent", checkpointer=InMemorySaver())


def main() -> None:
    agent = build()
    config = {"configurable": {"thread_id": THREAD}}
    for question in QUESTIONS:
        print(agent.invoke({"messages": [("user", question)]}, config)["messages"][-1].content)


if __name__ == "__main__":
    main()
