"""Where llm-otel's time goes per call and per span, and how much of our code a call crosses.

``python benchmarks/hotpath.py callpath`` counts, for one call of each case (after a
warm-up), the files, functions and calls of llm-otel's own code it runs through
(``sys.setprofile``, restricted to ``src/llm_otel`` and ``instrumentors``).

``python benchmarks/hotpath.py profile --case langchain_fake`` runs the case many times
under cProfile (CPU-time clock) with llm-otel on and then off, and prints:

- the overhead by *category* of code (llm-otel, OTel SDK, OTel API/context, the
  framework's callback dispatch, tiktoken, pydantic, the rest): self time on minus self
  time off, per call and per span. Built-ins and standard-library functions count for the
  category of the code that called them;
- llm-otel's functions by inclusive time per span (their callees included).

cProfile slows every Python call down, so its microseconds run high; each figure is also
given scaled by (overhead measured without a profiler) / (overhead under the profiler),
measured in the same process. Both print one JSON line per figure as well.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import sysconfig
import time
from pathlib import Path
from time import process_time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402

OURS = (str(ROOT / "src" / "llm_otel") + os.sep, str(ROOT / "instrumentors") + os.sep)
STDLIB = (sysconfig.get_paths()["stdlib"] + os.sep, "<frozen ")


def ours(filename: str) -> bool:
    return filename.startswith(OURS) or f"{os.sep}llm_otel{os.sep}" in filename


def short(filename: str) -> str:
    for root in (str(ROOT) + os.sep, "site-packages" + os.sep):
        if root in filename:
            return filename.split(root, 1)[1]
    return filename


# ---- question: how much of our code does one call cross ----------------------------------

def callpath(case: str, work: bench.Workloads) -> Dict[str, Any]:
    fn = getattr(work, case)
    bench.warm_up(fn)
    calls: Dict[Tuple[str, str, int], int] = {}

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if ours(code.co_filename):
                key = (code.co_filename, code.co_name, code.co_firstlineno)
                calls[key] = calls.get(key, 0) + 1

    sys.setprofile(hook)
    try:
        fn()
    finally:
        sys.setprofile(None)
    files = sorted({short(f) for f, _, _ in calls})
    return {"kind": "callpath", "case": case, "files": len(files), "functions": len(calls),
            "calls": sum(calls.values()), "file_list": files,
            "top": sorted(((f"{short(f)}:{name}", n) for (f, name, _), n in calls.items()),
                          key=lambda item: -item[1])[:int(os.environ.get("CALLPATH_TOP", "12"))]}


def callpath_at(ref: str, cases: str) -> int:
    """Run ``callpath`` on the code of commit ``ref``: its ``src/llm_otel`` and
    ``instrumentors`` laid out as the installed package, first on the path of a child."""
    import subprocess
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", ref, "src/llm_otel", "instrumentors"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(tmp)
        package = Path(tmp) / "src" / "llm_otel"
        (Path(tmp) / "instrumentors").rename(package / "instrumentors")
        env = dict(os.environ, PYTHONPATH=str(Path(tmp) / "src"))
        out = subprocess.run([sys.executable, __file__, "callpath", "--cases", cases], env=env, cwd=HERE,
                             capture_output=True, text=True)
        sys.stderr.write(out.stderr[-2000:])
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                row["ref"] = ref
                print(json.dumps(row), flush=True)
        return out.returncode


# ---- question: where the time goes -----------------------------------------------------------

_SEP = os.sep
# (what a path contains, its category), first match wins
_CATEGORIES = [
    (f"opentelemetry{_SEP}sdk{_SEP}trace", "OTel SDK: spans, processor"),
    (f"opentelemetry{_SEP}sdk{_SEP}metrics", "OTel SDK: metrics"),
    (f"opentelemetry{_SEP}sdk{_SEP}", "OTel SDK: other"),
    (f"opentelemetry{_SEP}attributes", "OTel: attribute validation (BoundedAttributes)"),
    (f"opentelemetry{_SEP}context", "OTel: context attach/detach/get_value"),
    (f"opentelemetry{_SEP}trace", "OTel: trace API (set_span_in_context, ...)"),
    (f"opentelemetry{_SEP}metrics", "OTel: metrics API"),
    (f"{_SEP}opentelemetry{_SEP}", "OTel: other"),
    ("langchain_core", "framework (LangChain: callback managers, runs)"),
    ("llama_index", "framework (LlamaIndex: dispatcher, events)"),
    (f"{_SEP}pydantic", "pydantic (model attribute reads, validation)"),
    ("tiktoken", "tiktoken (local token count)"),
    (f"{_SEP}wrapt{_SEP}", "wrapt"),
]


def category(filename: str) -> Optional[str]:
    """The kind of code a file is (llm-otel's by module), or None for built-ins and the
    standard library (which count for their caller's category)."""
    if ours(filename):
        name = short(filename)
        return "llm-otel " + name.split(f"llm_otel{_SEP}", 1)[-1]
    for part, cat in _CATEGORIES:
        if part in filename:
            return cat
    if filename == "~" or filename.startswith(STDLIB):
        return None
    return "other"


def by_category(stats: Dict[Any, Any]) -> Dict[str, float]:
    """Self time per category; a built-in's or stdlib function's self time goes to its callers'
    categories in proportion to the time each caller spent in it (one level up, then up again
    while the caller is itself built-in or stdlib)."""
    out: Dict[str, float] = {}

    def owner(func: Any, depth: int = 0) -> Dict[str, float]:
        cat = category(func[0])
        if cat is not None or depth > 6:
            return {cat or "stdlib": 1.0}
        callers = stats.get(func, (0, 0, 0, 0, {}))[4]
        total = sum(edge[2] for edge in callers.values()) or 0.0
        if not callers or total <= 0:
            return {"stdlib": 1.0}
        shares: Dict[str, float] = {}
        for caller, edge in callers.items():
            for cat_, share in owner(caller, depth + 1).items():
                shares[cat_] = shares.get(cat_, 0.0) + share * edge[2] / total
        return shares

    for func, (_cc, _nc, tottime, _ct, _callers) in stats.items():
        for cat, share in owner(func).items():
            out[cat] = out.get(cat, 0.0) + tottime * share
    return out


def profiled(fn: Callable[[], None], runs: int) -> pstats.Stats:
    # cProfile's own clock: a Python timer (process_time) would inflate every call ~8x
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    for _ in range(runs):
        fn()
    profiler.disable()
    return pstats.Stats(profiler)


def timed(fn: Callable[[], None], runs: int) -> float:
    gc.collect()
    t0 = process_time()
    for _ in range(runs):
        fn()
    return (process_time() - t0) / runs


def profile(case: str, runs: int, repeats: int, top: int) -> List[Dict[str, Any]]:
    pipeline = bench.Pipeline()
    work = bench.Workloads()
    fn = getattr(work, case)
    fn()
    contender = bench.LlmOtel(pipeline, work)
    exporter = pipeline.exporter
    contender.switch(True)
    bench.warm_up(fn, exporter=exporter)  # and until what a call's end loads in the background is there
    exporter.kept, since = [], time.time_ns()
    for _ in range(30):
        fn()
    # spans of these calls only: an LLM span of a warm-up call may end late (a background load)
    spans = round(sum(1 for s in exporter.kept if s.start_time >= since) / 30)
    exporter.kept = None
    contender.switch(False)
    for _ in range(30):
        fn()

    # the real overhead (no profiler) and the profiled one, alternating, median of repeats
    real: List[float] = []
    under: List[float] = []
    cats: Dict[str, List[float]] = {}
    funcs: Dict[Tuple[str, int, str], List[float]] = {}
    counts: Dict[Tuple[str, int, str], int] = {}
    for _ in range(repeats):
        contender.switch(True)
        on_t = timed(fn, runs)
        on = profiled(fn, runs)
        contender.switch(False)
        off_t = timed(fn, runs)
        off = profiled(fn, runs)
        real.append(on_t - off_t)
        under.append((on.total_tt - off.total_tt) / runs)
        on_cat, off_cat = by_category(on.stats), by_category(off.stats)  # type: ignore[attr-defined]
        for cat in set(on_cat) | set(off_cat):
            cats.setdefault(cat, []).append((on_cat.get(cat, 0.0) - off_cat.get(cat, 0.0)) / runs)
        for func, (_cc, nc, _tt, ct, _callers) in on.stats.items():  # type: ignore[attr-defined]
            if ours(func[0]):
                funcs.setdefault(func, []).append(ct / runs)
                counts[func] = nc // runs
    real_us, under_us = statistics.median(real) * 1e6, statistics.median(under) * 1e6
    scale = real_us / under_us if under_us > 0 else float("nan")
    rows: List[Dict[str, Any]] = [{"kind": "profile", "case": case, "spans": spans, "runs": runs,
                                   "repeats": repeats, "overhead_us": real_us, "profiled_overhead_us": under_us,
                                   "scale": scale}]
    for cat, values in sorted(cats.items(), key=lambda item: -statistics.median(item[1])):
        us = statistics.median(values) * 1e6
        rows.append({"kind": "profile_category", "case": case, "category": cat, "profiled_us_per_call": us,
                     "us_per_span": us * scale / spans if spans else None})
    ranked = sorted(funcs.items(), key=lambda item: -statistics.median(item[1]))[:top]
    for func, values in ranked:
        us = statistics.median(values) * 1e6
        rows.append({"kind": "profile_function", "case": case, "function": f"{short(func[0])}:{func[1]}({func[2]})",
                     "calls_per_call": counts[func], "profiled_us_per_call": us,
                     "us_per_span": us * scale / spans if spans else None})
    return rows


def render_profile(rows: List[Dict[str, Any]]) -> str:
    head = rows[0]
    spans = head["spans"]
    lines = [f"{head['case']}: {spans} spans per call; overhead {head['overhead_us']:.0f} us per call without a "
             f"profiler, {head['profiled_overhead_us']:.0f} under cProfile (scale {head['scale']:.2f}); "
             f"median of {head['repeats']} x {head['runs']} calls", "",
             "| category | us per span (scaled) | profiled us per call |", "|---|---:|---:|"]
    for row in rows:
        if row["kind"] == "profile_category":
            lines.append(f"| {row['category']} | {row['us_per_span']:.1f} | {row['profiled_us_per_call']:.0f} |")
    lines += ["", "| llm-otel function (inclusive) | calls per call | us per span (scaled) | profiled us per call |",
              "|---|---:|---:|---:|"]
    for row in rows:
        if row["kind"] == "profile_function":
            lines.append(f"| `{row['function']}` | {row['calls_per_call']} | {row['us_per_span']:.1f} | "
                         f"{row['profiled_us_per_call']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p_path = sub.add_parser("callpath")
    p_path.add_argument("--cases", default="chat,embeddings,stream,langchain_fake,llamaindex_mock")
    p_path.add_argument("--ref", help="count the code of this git commit instead of the working tree's")
    p_prof = sub.add_parser("profile")
    p_prof.add_argument("--case", default="langchain_fake")
    p_prof.add_argument("--runs", type=int, default=300)
    p_prof.add_argument("--repeats", type=int, default=3)
    p_prof.add_argument("--top", type=int, default=25)
    p_prof.add_argument("--table", action="store_true", help="also print the tables (to stderr)")
    args = ap.parse_args()
    if args.what == "callpath" and args.ref:
        return callpath_at(args.ref, args.cases)
    if args.what == "callpath":
        pipeline = bench.Pipeline()
        work = bench.Workloads()
        cases = [c for c in args.cases.split(",") if c]
        for case in cases:
            getattr(work, case)()
        bench.LlmOtel(pipeline, work).switch(True)
        for case in cases:
            print(json.dumps(callpath(case, work)), flush=True)
        return 0
    rows = profile(args.case, args.runs, args.repeats, args.top)
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.table:
        print(render_profile(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
