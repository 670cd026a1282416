"""A LangChain chain with a retriever and a tool, traced with llm-otel.

    OTEL_TRACES_EXPORTER=console opentelemetry-instrument python examples/langchain_chain.py

One trace: the ``travel_assistant`` chain, inside it the retriever (an in-memory vector
store over OpenAI embeddings), the prompt, the chat model asking for the ``get_weather``
tool, the tool run, and the chat model's final answer — each model call one LLM span,
even though ``ChatOpenAI`` calls the OpenAI SDK underneath. Without ``OPENAI_API_KEY``
it runs against the local stand-in server (``standin_server.py``).
"""

from __future__ import annotations

import os

from standin_server import ensure_openai_env

MODEL = os.environ.get("LLM_OTEL_EXAMPLE_MODEL", "gpt-4o-mini")
GUIDES = [
    "Paris: the Louvre opens at 9am; bring an umbrella in spring.",
    "Lisbon: tram 28 crosses the old town; pastries at Belem.",
    "Oslo: the fjord ferries leave from Aker Brygge every hour.",
]


def build():
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tools import tool
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"{city}: 18C, light rain"

    embeddings = OpenAIEmbeddings(model="text-embedding-3-small", check_embedding_ctx_length=False)
    retriever = InMemoryVectorStore.from_texts(GUIDES, embeddings).as_retriever(search_kwargs={"k": 2})
    llm = ChatOpenAI(model=MODEL, temperature=0, max_retries=0).bind_tools([get_weather])

    def travel_assistant(question: str) -> str:
        docs = retriever.invoke(question)
        context = "\n".join(d.page_content for d in docs)
        messages = [SystemMessage(f"Answer with the context below.\nContext:\n{context}"),
                    HumanMessage(question)]
        reply = llm.invoke(messages)
        while reply.tool_calls:  # the model asked for tools: run them, hand back the results
            messages.append(reply)
            messages.extend(get_weather.invoke(call) for call in reply.tool_calls)
            reply = llm.invoke(messages)
        return reply.content

    return RunnableLambda(travel_assistant).with_config(run_name="travel_assistant")


def main() -> None:
    target = ensure_openai_env()
    print(f"calling {target} with model {MODEL}")
    print(build().invoke("What should I pack for Paris, given the weather in Paris?"))


if __name__ == "__main__":
    main()
