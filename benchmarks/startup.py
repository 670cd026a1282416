"""Import time of ``llm_otel.auto`` and memory after many calls, each in fresh processes.

``python benchmarks/startup.py imports`` times imports in new interpreters (median of
several); ``python benchmarks/startup.py memory --calls 100000`` makes that many
instrumented calls (chat, with a consumed and an abandoned stream now and then) and
reports RSS and tracemalloc growth after the warm-up. Both print one JSON line per figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tracemalloc
from pathlib import Path
from time import perf_counter
from typing import List

HERE = Path(__file__).resolve().parent

# the app's own libraries: an app that uses llm-otel has imported them anyway
LIBRARIES = "import openai, langchain_core.language_models, langchain_openai, llama_index.core, llama_index.llms.openai"
# ... and used: the first API call loads openai.resources (the SDK imports it lazily), a chain
# run loads LangChain's runnables and callbacks, a query LlamaIndex's query engine
USED = LIBRARIES + ("; import openai.resources, langchain_core.runnables, langchain_core.callbacks.manager, "
                    "llama_index.core.query_engine")
# the OTel SDK imported and configured from OTEL_* the way opentelemetry-instrument (and
# llm_otel.auto, when the app set no providers) does it
SDK = ("import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, opentelemetry.sdk._configuration; "
       "opentelemetry.sdk._configuration._OTelSDKConfigurator().configure()")

IMPORTS = [
    # (name, untimed setup, timed statement)
    ("opentelemetry.sdk", "", "import opentelemetry.sdk"),
    ("OTel SDK (trace, metrics, configured)", "", SDK),
    ("llm_otel.auto", "", "import llm_otel.auto"),
    ("OTel SDK, libraries already imported", LIBRARIES, SDK),
    ("llm_otel.auto, libraries already imported", LIBRARIES, "import llm_otel.auto"),
    ("OTel SDK, libraries imported and used", USED, SDK),
    ("llm_otel.auto, libraries imported and used", USED, "import llm_otel.auto"),
]

_CHILD = """
import time, sys
{setup}
t0 = time.perf_counter()
{statement}
sys.stdout.write(repr(time.perf_counter() - t0))
"""


def time_import(setup: str, statement: str, runs: int) -> List[float]:
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
               PYTHONDONTWRITEBYTECODE="1")
    out = []
    for _ in range(runs):
        code = _CHILD.format(setup=setup, statement=statement)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        out.append(float(proc.stdout.strip()))
    return out


def imports(runs: int) -> None:
    time_import("", "import json", 1)  # warm the OS file cache
    for name, setup, statement in IMPORTS:
        times = time_import(setup, statement, runs)
        print(json.dumps({"kind": "import", "name": name, "ms": statistics.median(times) * 1e3,
                          "min_ms": min(times) * 1e3, "runs": runs}), flush=True)


def _rss_kib() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory(calls: int, traced: int) -> None:
    sys.path.insert(0, str(HERE))
    import bench  # the same pipeline and workloads as the timings

    pipeline = bench.Pipeline()
    work = bench.Workloads()
    import llm_otel

    llm_otel.instrument(tracer_provider=pipeline.tracer_provider, meter_provider=pipeline.meter_provider)
    client = work.client

    def one(i: int) -> None:
        if i % 40 == 0:  # abandoned mid-way: its span must still end (GC) and be freed
            stream = client.chat.completions.create(stream=True, **work.chat_kwargs)
            for n, _ in enumerate(stream):
                if n == 2:
                    break
            del stream
        elif i % 20 == 0:
            work.stream()
        else:
            work.chat()

    warmup = min(5000, calls // 10)
    for i in range(warmup):
        one(i)
    gc.collect()
    rss0 = _rss_kib()
    spans0 = pipeline.exporter.count
    t0 = perf_counter()
    untraced = max(0, calls - warmup - traced)
    for i in range(untraced):
        one(i)
    gc.collect()
    rss1 = _rss_kib()
    tracemalloc.start(5)
    gc.collect()
    snap0 = tracemalloc.take_snapshot()
    cur0 = tracemalloc.get_traced_memory()[0]
    for i in range(traced):
        one(i)
    gc.collect()
    cur1 = tracemalloc.get_traced_memory()[0]
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    rss2 = _rss_kib()
    # the stdlib's bounded caches (re: 512 patterns) and tracemalloc's own records are not growth
    noise = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, re.__file__),
             tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    stats = snap1.filter_traces(noise).compare_to(snap0.filter_traces(noise), "lineno")
    ours = [tracemalloc.Filter(True, "*/llm_otel/*", all_frames=True),
            tracemalloc.Filter(True, "*/instrumentors/*", all_frames=True)]
    ours_growth = sum(s.size_diff for s in snap1.filter_traces(ours).compare_to(snap0.filter_traces(ours), "lineno"))
    made = calls - warmup
    print(json.dumps({
        "kind": "memory", "calls": calls, "warmup": warmup, "spans": pipeline.exporter.count - spans0,
        "rss_after_warmup_kib": rss0, "rss_end_kib": rss2,
        "rss_growth_kib": rss2 - rss0, "rss_growth_untraced_kib": rss1 - rss0, "untraced_calls": untraced,
        "tracemalloc_calls": traced, "tracemalloc_growth_bytes": cur1 - cur0,
        "growth_bytes": sum(s.size_diff for s in stats), "llm_otel_growth_bytes": ours_growth,
        "tracemalloc_top": [str(s) for s in stats[:5]], "seconds": perf_counter() - t0, "calls_measured": made,
        "bytes_per_call": sum(s.size_diff for s in stats) / traced if traced else None,
    }), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="what", required=True)
    p_imp = sub.add_parser("imports")
    p_imp.add_argument("--runs", type=int, default=7)
    p_mem = sub.add_parser("memory")
    p_mem.add_argument("--calls", type=int, default=100_000)
    p_mem.add_argument("--traced", type=int, default=10_000, help="the last N calls run under tracemalloc")
    args = ap.parse_args()
    if args.what == "imports":
        imports(args.runs)
    else:
        memory(args.calls, min(args.traced, args.calls // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
