"""Pricing never touches the network, never grows without bound, and survives threads and fork."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from llm_otel.usage import cost_usd, price_for, reload_prices, set_price
from llm_otel.usage import pricing


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def test_pricing_opens_no_socket_and_starts_no_updater():
    done = run_python("""
        import os, sys, threading

        def no_network(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto",
                         "urllib.Request"):
                print("NETWORK", event, args, flush=True)
                os._exit(3)

        sys.addaudithook(no_network)
        import llm_otel
        from llm_otel.usage.pricing import cost_usd, load_prices
        print(load_prices())
        for model, provider in [("gpt-4o-mini", "openai"), ("claude-sonnet-4-20250514", "anthropic"),
                                ("gemini-2.5-pro", "gcp.gemini"), ("gpt-4o", None), ("house-model", None),
                                ("us.anthropic.claude-sonnet-4-20250514-v1:0", "aws.bedrock")]:
            print(model, cost_usd(model, 300000, 100, 1000, provider=provider))
        print("threads", sorted(t.name for t in threading.enumerate()))
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NETWORK" not in done.stdout
    assert "genai-prices" in done.stdout and "gpt-4o-mini 0." in done.stdout and "house-model None" in done.stdout
    assert "threads ['MainThread']" in done.stdout  # genai-prices' updater thread never started


def test_a_snapshot_installed_by_genai_prices_updater_is_not_used():
    done = run_python("""
        import genai_prices
        from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot

        set_custom_snapshot(DataSnapshot(providers=[], from_auto_update=True))  # as UpdatePrices installs one
        try:
            genai_prices.calc_price(genai_prices.Usage(input_tokens=1), "gpt-4o-mini", provider_id="openai")
        except LookupError:
            print("genai-prices itself now prices from the installed snapshot")
        from llm_otel.usage.pricing import cost_usd
        print("cost", cost_usd("gpt-4o-mini", 1000, 100, provider="openai"))
    """)
    assert done.returncode == 0, done.stderr
    assert "installed snapshot" in done.stdout
    assert "cost 0." in done.stdout


def test_200k_distinct_model_names_keep_memory_flat():
    done = run_python("""
        import resource, sys
        from llm_otel.usage.pricing import cost_usd, load_prices

        load_prices()

        def names(start, stop):
            for i in range(start, stop):
                if i % 4:
                    cost_usd(f"house-model-{i}", 10, 1, provider="perplexity")  # unknown: cost None
                else:
                    cost_usd(f"claude-3-5-sonnet-proxy-{i}", 10, 1)  # many names of one known model

        names(0, 10000)  # past the cache's bound
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        names(10000, 210000)
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print("growth_kb", growth // 1024 if sys.platform == "darwin" else growth)  # bytes there, KB here
    """, timeout=300)
    assert done.returncode == 0, done.stderr
    growth_kb = int(done.stdout.split("growth_kb")[1])
    assert growth_kb < 4096  # an unbounded table grows ~25 MB here


def test_lookups_racing_set_price_never_keep_a_stale_price(published):
    published_input = published("gpt-4o-mini").input
    stop = threading.Event()
    errors = []

    def look():
        try:
            while not stop.is_set():
                price_for("gpt-4o-mini-2024-07-18")  # from set_price, or from genai-prices (slower)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=look) for _ in range(4)]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so lookups get overtaken by set_price
    for worker in workers:
        worker.start()
    try:
        for i in range(1, 400):
            set_price("gpt-4o-mini", input=float(i), output=1.0)
            assert price_for("gpt-4o-mini-2024-07-18").input == float(i)
            reload_prices(clear_overrides=True)
            assert price_for("gpt-4o-mini-2024-07-18").input == published_input
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        sys.setswitchinterval(switch_interval)
    assert errors == []


def test_a_fork_while_another_thread_holds_the_price_lock_does_not_hang_the_child():
    held, release = threading.Event(), threading.Event()

    def hold():
        with pricing._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        pid = os.fork()
        if pid == 0:  # the child: price a call, then leave without running pytest's teardown
            code = 3
            try:
                code = 0 if cost_usd("gpt-4o", 100, 10, provider="azure.ai.openai") else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on the price lock")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        release.set()
        holder.join()
