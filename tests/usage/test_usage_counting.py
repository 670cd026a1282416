"""usage() counts exactly what ran inside it: tasks, threads, nesting, concurrency."""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import llm_otel
from llm_otel.core import LLMInvocation, get_recorder
from llm_otel.usage import active
from support.slow_import import HOLD_UP_IMPORT


def call(model="gpt-4o-mini", inp=10, out=5, cached=None, reasoning=None, error=None):
    """One LLM call recorded through the core, as any instrumentor records it."""
    op = get_recorder().start(LLMInvocation(request_model=model))
    inv = op.record
    if error is not None:
        op.fail(error)
        return inv
    inv.response_model = model
    inv.input_tokens, inv.output_tokens = inp, out
    inv.cache_read_input_tokens, inv.reasoning_output_tokens = cached, reasoning
    op.end()
    return inv


def test_counts_tokens_requests_and_cost_inside_the_block_only(spans, published):
    call()
    with llm_otel.usage() as u:
        call(inp=100, out=20, cached=40, reasoning=7)
        call(model="gpt-4o", inp=1000, out=10)
        assert u.requests == 2  # readable while the block runs
    call()
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (1100, 30, 1130)
    assert (u.cached_input_tokens, u.reasoning_tokens, u.requests, u.failed_requests) == (40, 7, 2, 0)
    rates, big_rates = published("gpt-4o-mini"), published("gpt-4o")
    mini = (60 * rates.input + 40 * rates.cached + 20 * rates.output) / 1e6
    big = (1000 * big_rates.input + 10 * big_rates.output) / 1e6
    assert u.by_model["gpt-4o-mini"].cost_usd == pytest.approx(mini)
    assert u.by_model["gpt-4o"].input_tokens == 1000
    assert u.cost_usd == pytest.approx(mini + big)
    assert u.as_dict()["by_model"]["gpt-4o"]["requests"] == 1
    assert active() == ()


def test_failed_calls_count_as_failed_requests(spans):
    with llm_otel.usage() as u:
        call(error=TimeoutError("slow"))
    assert (u.requests, u.failed_requests, u.total_tokens, u.cost_usd) == (1, 1, 0, 0.0)


async def test_three_calls_in_gather_count_three_times(spans):
    async def one():
        await asyncio.sleep(0)
        call()

    async with llm_otel.usage() as u:
        await asyncio.gather(one(), one(), one())
    assert (u.requests, u.input_tokens, u.output_tokens) == (3, 30, 15)


async def test_a_task_created_before_the_block_does_not_count_inside_it(spans):
    go = asyncio.Event()

    async def early():
        await go.wait()
        call()

    with llm_otel.usage() as outer:
        task = asyncio.ensure_future(early())  # copies the context: only `outer` is active
        await asyncio.sleep(0)
        with llm_otel.usage() as inner:
            go.set()
            await task
            call()
    assert inner.requests == 1
    assert outer.requests == 2


def test_threads_count_when_they_run_in_a_copy_of_the_context(spans):
    with llm_otel.usage() as u:
        with ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(contextvars.copy_context().run, call) for _ in range(4)]:
                future.result()
        thread = threading.Thread(target=contextvars.copy_context().run, args=(call,))
        thread.start()
        thread.join()
        bare = threading.Thread(target=call)  # a new thread starts with an empty context
        bare.start()
        bare.join()
    assert u.requests == 5


def test_nested_blocks_each_count_what_ran_inside_them(spans):
    with llm_otel.usage() as outer:
        call(inp=1, out=1)
        with llm_otel.usage() as inner:
            call(inp=10, out=10)
            with llm_otel.usage() as innermost:
                call(inp=100, out=100)
        call(inp=1000, out=1000)
    assert outer.total_tokens == 2222 and outer.requests == 4
    assert inner.total_tokens == 220 and inner.requests == 2
    assert innermost.total_tokens == 200 and innermost.requests == 1


def test_totals_are_exact_under_heavy_thread_concurrency(spans, published):
    with llm_otel.usage() as u:
        def many():
            for _ in range(150):
                call(inp=3, out=2)

        threads = [threading.Thread(target=contextvars.copy_context().run, args=(many,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert (u.requests, u.input_tokens, u.output_tokens) == (1200, 3600, 2400)
    mini = published("gpt-4o-mini")
    assert u.cost_usd == pytest.approx(1200 * (3 * mini.input + 2 * mini.output) / 1e6)


def test_a_call_claimed_by_a_framework_is_counted_once(spans):
    recorder = get_recorder()
    with llm_otel.usage() as u:
        framework = recorder.start(LLMInvocation(request_model="gpt-4o-mini"))
        with framework.current(claim=True):
            call(inp=7, out=3)  # the SDK's record: merged into the framework's
        framework.end()
    assert (u.requests, u.input_tokens, u.output_tokens) == (1, 7, 3)
    assert len(spans()) == 1


def test_leaving_in_another_context_is_harmless():
    u = llm_otel.usage()
    u.__enter__()
    contextvars.copy_context().run(u.__exit__, None, None, None)
    assert u in active()  # still active here: the copy was left, not this context
    u.__exit__(None, None, None)
    assert active() == ()


def test_an_unknown_model_makes_the_total_cost_unknown(spans, published):
    with llm_otel.usage() as u:
        call(model="gpt-4o-mini")
        inv = call(model="house-model-v3")
    assert inv.cost_usd is None
    assert "llm_otel.cost.usd" not in spans()[-1].attributes
    assert "llm_otel.cost.usd" in spans()[0].attributes
    assert u.cost_usd is None and u.unpriced_requests == 1
    mini = published("gpt-4o-mini")
    assert u.by_model["gpt-4o-mini"].cost_usd == pytest.approx((10 * mini.input + 5 * mini.output) / 1e6)
    assert u.by_model["house-model-v3"].cost_usd is None


# ---- calls that end while prices or an encoding still load -------------------------------

FIRST_CALLS = HOLD_UP_IMPORT + textwrap.dedent("""
    import json, sys, time
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())
    import llm_otel
    from llm_otel.core import LLMInvocation, get_recorder
    from llm_otel.usage import pricing

    hold_up_import("genai_prices.data", 1.0)  # still loading when the block ends, with every release
    llm_otel.instrument()  # starts loading the price table in the background
    with llm_otel.usage() as u:
        op = get_recorder().start(LLMInvocation(request_model="gpt-4o-mini"))
        op.record.input_tokens, op.record.output_tokens = 1000, 100
        op.end()
        # no usage reported: estimated with cl100k_base, which loads only now
        op = get_recorder().start(LLMInvocation(request_model="gpt-4", output_messages=[
            {"role": "assistant", "parts": [{"type": "text", "content": "the answer " * 50}]}]))
        op.end()
    loaded_at_exit = pricing.PRICES.ready()
    print(json.dumps({"loaded_at_exit": loaded_at_exit, "requests": u.requests, "input": u.input_tokens,
                      "cost": u.cost_usd, "estimated_out": u.estimated_output_tokens,
                      "estimated_cost": u.estimated_cost_usd, "by_model": sorted(u.by_model),
                      "expected": pricing.cost_usd("gpt-4o-mini", 1000, 100)}))
""")


def test_a_block_read_right_after_calls_that_ended_while_data_loaded_is_complete(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    env["TIKTOKEN_CACHE_DIR"] = str(tmp_path)  # only the bundled encodings: a real load
    proc = subprocess.run([sys.executable, "-c", FIRST_CALLS], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["loaded_at_exit"] is False  # the case under test: the block ended before the prices
    assert (got["requests"], got["input"]) == (2, 1000)
    assert got["cost"] == pytest.approx(got["expected"]) and got["cost"] > 0
    assert got["estimated_out"] > 0 and got["estimated_cost"] > 0
    assert got["by_model"] == ["gpt-4", "gpt-4o-mini"]
