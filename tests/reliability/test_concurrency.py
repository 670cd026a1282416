"""Concurrency: 50 threads and 500 asyncio tasks make instrumented OpenAI calls (plain and
streamed, recorded traffic) inside ``@track`` spans and ``usage()`` blocks. Every LLM span
has its job's span as parent, every trace holds exactly its job's spans, and every usage
total is exact (equal to the sum over that job's spans; the outer block's to the sum over all)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import defaultdict

import llm_otel
from llm_otel import track
from rel_support import OPEN_SPANS
from support.cassettes import Cassette

THREADS = 50
TASKS = 500
CALLS = 3  # per job: two plain calls and one stream
MESSAGES = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


def _clients(recordings, async_=False):
    chat = Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml", repeat=True)
    stream = Cassette(recordings / "openai" / "test_chat" / "test_chat_async_streaming.yaml", repeat=True)
    return chat.openai_client(async_=async_), stream.openai_client(async_=async_)


def _check(spans, jobs):
    """jobs: job name -> Usage. Returns the (input, output) tokens over all LLM spans."""
    finished = spans()
    by_id = {s.context.span_id: s for s in finished}
    roots = {s.name: s for s in finished if s.name.startswith("job-")}
    assert set(roots) == set(jobs)
    traces = defaultdict(list)
    for span in finished:
        traces[span.context.trace_id].append(span)
    assert len(traces) == len(jobs)  # one trace per job, nothing crossed over
    for name, u in jobs.items():
        root = roots[name]
        assert root.parent is None
        members = traces[root.context.trace_id]
        llm = [s for s in members if s.attributes.get("gen_ai.operation.name") == "chat"]
        assert len(members) == 1 + CALLS and len(llm) == CALLS
        assert all(s.parent.span_id == root.context.span_id for s in llm)
        # the plain calls report usage; the stream reports none and is estimated, apart
        assert (u.input_tokens, u.output_tokens, u.requests) == (
            _total(llm, "gen_ai.usage.input_tokens"), _total(llm, "gen_ai.usage.output_tokens"), CALLS)
        assert (u.estimated_input_tokens, u.estimated_output_tokens) == (
            _total(llm, "llm_otel.usage.estimated_input_tokens"), _total(llm, "llm_otel.usage.estimated_output_tokens"))
    assert all(s.end_time is not None for s in by_id.values())
    llm = [s for s in finished if s.attributes.get("gen_ai.operation.name") == "chat"]
    return _total(llm, "gen_ai.usage.input_tokens"), _total(llm, "gen_ai.usage.output_tokens")


def _total(spans, key):
    return sum(s.attributes.get(key, 0) for s in spans)


def test_50_threads(recordings, spans):
    spans.__self__.clear()
    chat, stream = _clients(recordings)
    jobs = {}
    errors = []
    barrier = threading.Barrier(THREADS)

    @track(name="job")
    def job(name):
        llm_otel.update_current_span(name=name)
        barrier.wait()  # all threads inside their spans at once
        chat.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
        for _ in stream.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True):
            pass
        chat.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)

    def worker(i):
        try:
            with llm_otel.usage() as u:
                job(f"job-{i}")
            jobs[f"job-{i}"] = u
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with llm_otel.usage() as outer:
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(worker, i)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    totals = _check(spans, jobs)
    # the outer block saw every call of every thread (they ran in copies of its context)
    assert (outer.input_tokens, outer.output_tokens, outer.requests) == (*totals, CALLS * THREADS)


def test_500_asyncio_tasks(recordings, spans):
    spans.__self__.clear()
    before_open = set(OPEN_SPANS.open)

    async def main():
        chat, stream = _clients(recordings, async_=True)
        jobs = {}
        gate = asyncio.Event()

        @track(name="job")
        async def job(name):
            llm_otel.update_current_span(name=name)
            await gate.wait()  # every task inside its span before any call
            await chat.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
            async for _ in await stream.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True):
                await asyncio.sleep(0)
            await chat.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)

        async def one(i):
            async with llm_otel.usage() as u:
                await job(f"job-{i}")
            jobs[f"job-{i}"] = u

        async with llm_otel.usage() as outer:
            tasks = [asyncio.create_task(one(i)) for i in range(TASKS)]
            await asyncio.sleep(0)
            gate.set()
            await asyncio.gather(*tasks)
        return jobs, outer

    jobs, outer = asyncio.run(main())
    totals = _check(spans, jobs)
    assert (outer.input_tokens, outer.output_tokens, outer.requests) == (*totals, CALLS * TASKS)
    assert set(OPEN_SPANS.open) <= before_open
