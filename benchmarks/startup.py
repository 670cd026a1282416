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
from typing import Any, Dict, List

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
t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
{statement}
sys.stdout.write("%r %r %r" % (time.perf_counter() - t0, time.thread_time() - c0, time.process_time() - p0))
"""


def time_import(setup: str, statement: str, runs: int) -> List[Any]:
    """(wall, CPU of the importing thread, CPU of the process) per run, in seconds: the
    process's CPU also counts what llm-otel loads on threads of its own meanwhile."""
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
               PYTHONDONTWRITEBYTECODE="1")
    out = []
    for _ in range(runs):
        code = _CHILD.format(setup=setup, statement=statement)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        out.append(tuple(float(x) for x in proc.stdout.split()))
    return out


def imports(runs: int) -> None:
    # warm the OS file cache and write the bytecode caches an installed app would have
    subprocess.run([sys.executable, "-c", f"{USED}; {SDK}; import llm_otel.auto"], capture_output=True,
                   env=dict(os.environ, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                            OTEL_LOGS_EXPORTER="none"))
    for name, setup, statement in IMPORTS:
        runs_ = time_import(setup, statement, runs)
        times = [wall for wall, _, _ in runs_]
        print(json.dumps({"kind": "import", "name": name, "ms": statistics.median(times) * 1e3,
                          "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3, "runs": runs,
                          "thread_cpu_ms": statistics.median(t for _, t, _ in runs_) * 1e3,
                          "process_cpu_ms": statistics.median(c for _, _, c in runs_) * 1e3}), flush=True)


_MARK = "llm-otel-bench: timed import starts"
_WHO = "llm-otel-bench: importers"
# records, for every module imported from the mark on, its thread and the nearest llm_otel
# module on the importing stack (importtime's tree cannot tell threads apart: the price table
# and the encoding load on threads of their own)
_WHO_HOOK = """
import sys, threading, json
who = {}
class Who:
    def find_spec(self, name, path=None, target=None):
        frame = sys._getframe(1)
        via = None
        while frame is not None:
            module = frame.f_globals.get('__name__', '')
            if module.startswith('llm_otel') and module != name:
                via = module
                break
            frame = frame.f_back
        who.setdefault(name, (threading.current_thread().name, via))
        return None
sys.meta_path.insert(0, Who())
"""
_PROFILE = """
import cProfile, pstats, io, sys
profiler = cProfile.Profile()
profiler.enable()
import llm_otel.auto
profiler.disable()
rows = []
for (file, line, func), (cc, nc, tt, ct, callers) in pstats.Stats(profiler).stats.items():
    rows.append((ct, file, line, func, nc))
rows.sort(reverse=True)
sys.stdout.write(json.dumps([r for r in rows if r[0] > 0.002][:60]))
"""


def import_breakdown(runs: int) -> None:
    """``python -X importtime``: what ``import llm_otel.auto`` loads beyond an app whose
    libraries are imported and used and whose OTel SDK is configured. Per package (llm-otel's
    by module): the import time of its modules (median over runs), the thread that imported
    it and the llm-otel module that asked for it. Then the work of ``llm_otel.auto``'s body
    that is not importing (``instrument()``: entry points, dependency checks, patching),
    from cProfile. One JSON line per contributor, largest first."""
    env = dict(os.environ, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
               PYTHONDONTWRITEBYTECODE="1")
    code = (f"{USED}; {SDK}\n{_WHO_HOOK}\nsys.stderr.write({_MARK!r} + '\\n')\nimport llm_otel.auto\n"
            f"sys.stderr.write({_WHO!r} + json.dumps(who) + '\\n')")
    totals: List[float] = []
    selfs: Dict[str, List[float]] = {}
    who: Dict[str, Any] = {}
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                              env=env, check=True)
        timed, _, tail = proc.stderr.split(_MARK, 1)[1].partition(_WHO)
        who.update(json.loads(tail.splitlines()[0]))
        run_selfs: Dict[str, float] = {}
        for line in timed.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _cum, name = line[len("import time:"):].split("|", 2)
            run_selfs[name.strip()] = run_selfs.get(name.strip(), 0.0) + int(own) / 1e3
        totals.append(sum(run_selfs.values()))
        for module, ms in run_selfs.items():
            selfs.setdefault(module, []).append(ms)
    packages: Dict[str, List[float]] = {}
    for module, values in selfs.items():
        top = module if module.startswith("llm_otel") else module.split(".")[0]
        values = values + [0.0] * (runs - len(values))
        packages[top] = [a + b for a, b in zip(packages.get(top, [0.0] * runs), values)]
    print(json.dumps({"kind": "import_breakdown", "name": "(every module imported)", "ms": statistics.median(totals),
                      "min_ms": min(totals), "max_ms": max(totals), "runs": runs}), flush=True)
    for name, values in sorted(packages.items(), key=lambda item: -statistics.median(item[1])):
        ms = statistics.median(values)
        if ms < 0.5:
            continue
        thread, via = who.get(name, (None, None))
        print(json.dumps({"kind": "import_breakdown", "name": name, "ms": ms, "min_ms": min(values),
                          "max_ms": max(values), "thread": thread, "via": via, "runs": runs}), flush=True)
    proc = subprocess.run([sys.executable, "-c", f"{USED}; {SDK}; import json\n{_PROFILE}"], capture_output=True,
                          text=True, env=env, check=True)
    for ct, file, line, func, calls in json.loads(proc.stdout):
        if "llm_otel" in file or "importlib" in file and "metadata" in file or "packaging" in file \
                or "instrumentation" in file or "wrapt" in file:
            print(json.dumps({"kind": "import_profile", "function": f"{_short(file)}:{line}({func})",
                              "cumulative_ms": ct * 1e3, "calls": calls}), flush=True)


def _short(file: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


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
    p_brk = sub.add_parser("breakdown")
    p_brk.add_argument("--runs", type=int, default=7)
    p_mem = sub.add_parser("memory")
    p_mem.add_argument("--calls", type=int, default=100_000)
    p_mem.add_argument("--traced", type=int, default=10_000, help="the last N calls run under tracemalloc")
    args = ap.parse_args()
    if args.what == "imports":
        imports(args.runs)
    elif args.what == "breakdown":
        import_breakdown(args.runs)
    else:
        memory(args.calls, min(args.traced, args.calls // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
