"""usage() counts calls from any instrumentor: LangChain over the instrumented OpenAI SDK."""

from __future__ import annotations

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

import llm_otel
from llm_otel import track
from llm_otel.instrumentors.langchain import LangChainInstrumentor
from support.cassettes import Cassette, serve


class LangChainCount(BaseCallbackHandler):
    """LangChain's own count: each reply's ``usage_metadata`` (what langchain-core's
    ``get_usage_metadata_callback`` adds up; early 0.3 releases do not have it)."""

    def __init__(self) -> None:
        self.usage = []

    def on_llm_end(self, response, **kwargs):
        self.usage.extend(gen.message.usage_metadata for gens in response.generations for gen in gens)


@pytest.fixture(scope="module", autouse=True)
def langchain_instrumented():
    inst = LangChainInstrumentor()
    was_on = inst.is_instrumented_by_opentelemetry
    if not was_on:
        inst.instrument()
    yield
    if not was_on:
        inst.uninstrument()


def test_a_langchain_call_inside_track_is_counted_once_and_matches_langchains_own_count(spans, recordings):
    tape = Cassette(recordings / "langchain" / "test_langchain_metrics" / "test_llm_chain_metrics.yaml")
    with serve(tape) as url:
        llm = ChatOpenAI(base_url=url, api_key="sk-test-not-a-real-key", max_retries=0, model="gpt-3.5-turbo",
                         temperature=0)
        chain = ChatPromptTemplate.from_template("What is a good name for a company that makes {product}?") \
            | llm | StrOutputParser()

        langchain_count = LangChainCount()

        @track(name="name_company")
        def name_company(product):
            return chain.invoke({"product": product}, config={"callbacks": [langchain_count]})

        with llm_otel.usage() as u:
            assert name_company("colorful socks") == "Rainbow Threads"
    (theirs,) = langchain_count.usage
    assert (u.requests, u.input_tokens, u.output_tokens) == (1, theirs["input_tokens"], theirs["output_tokens"])
    assert u.total_tokens == theirs["total_tokens"]
    got = spans()
    chat = next(s for s in got if s.name == "chat gpt-3.5-turbo")
    root = next(s for s in got if s.name == "name_company")
    assert chat.context.trace_id == root.context.trace_id
    assert chat.attributes["llm_otel.cost.usd"] == pytest.approx(u.cost_usd)
