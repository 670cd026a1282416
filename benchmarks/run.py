"""Run the whole benchmark suite and print the tables (``--quick`` for a fast pass).

Every contender runs in its own process (``bench.py``) on the same harness: the plain
call, the hand-written floor, llm-otel and the peers. Then the content-capture runs, the
exporter costs, import time and memory (``startup.py``). Raw results go to
``benchmarks/results/<timestamp>.jsonl``; the tables to stdout and ``results/latest.md``.
Use ``benchmarks/run.sh`` to get the peers' virtualenv made for you.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

CONTENDERS = ["floor", "llm-otel", "openai-v2", "genai-openai", "openinference", "openllmetry"]
PEERS = ["openai-v2", "genai-openai", "openinference", "openllmetry"]
# a contender whose packages cannot share the venv: the folder run.sh installs them into
OVERLAYS = {"genai-openai": Path(sys.prefix) / "overlays" / "genai-openai"}
FRAMEWORK_CASES = {
    "langchain_fake": "LangChain LCEL chain: prompt | FakeListChatModel | StrOutputParser",
    "llamaindex_mock": "LlamaIndex query: VectorStoreIndex (MockEmbedding) + MockLLM",
}
BEFORE_REDESIGN = "c59b44d"  # the commit before the core's redesign (issue 14: 10 files, 42 functions, 149 calls)
CASE_NAMES = {
    "chat": "chat (non-streaming)",
    "stream": "stream, 40 chunks, include_usage",
    "stream_no_usage": "stream, 40 chunks, no usage (local token count)",
    "stream_long": "stream, 240 chunks, include_usage",
    "embeddings": "embeddings",
    "langchain": "LangChain LCEL chain (ChatOpenAI)",
    "llamaindex": "LlamaIndex query (VectorStoreIndex + OpenAI LLM)",
}
# NO_CONTENT / SPAN_ONLY: what llm-otel and opentelemetry-util-genai both accept
CONTENT_OFF = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT", "TRACELOOP_TRACE_CONTENT": "false",
               "OPENINFERENCE_HIDE_INPUTS": "true", "OPENINFERENCE_HIDE_OUTPUTS": "true"}
CONTENT_ON = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY", "TRACELOOP_TRACE_CONTENT": "true",
              "OPENINFERENCE_HIDE_INPUTS": "false", "OPENINFERENCE_HIDE_OUTPUTS": "false"}
CHUNK_DELTA = 200
# issue 14's targets
RATIO_TARGETS = {"chat": 1.25, "embeddings": 1.25, "stream": 1.1, "stream_no_usage": 1.1, "stream_long": 1.1}
SPAN_TARGET_US = 90
IMPORT_TARGET_MS = 50  # stream_long has 240 chunks, stream 40


def _env(base: Dict[str, str], contender: str) -> Dict[str, str]:
    overlay = OVERLAYS.get(contender)
    if overlay is None or not overlay.is_dir():
        return base
    return dict(base, PYTHONPATH=os.pathsep.join(filter(None, [str(overlay), base.get("PYTHONPATH")])))


def _run(args: List[str], env: Dict[str, str], log: Any) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    errors = tempfile.TemporaryFile("w+")  # a pipe would fill up and block a chatty child
    proc = subprocess.Popen([sys.executable, *args], cwd=str(HERE), env=env, stdout=subprocess.PIPE,
                            stderr=errors, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        out.append(row)
        log.write(json.dumps(row) + "\n")
        log.flush()
        _progress(row)
    proc.wait()
    errors.seek(0)
    err = errors.read()
    errors.close()
    if proc.returncode:
        print(f"  ! {' '.join(args)} exited {proc.returncode}:\n{err[-2000:]}", file=sys.stderr)
    return out


def _progress(row: Dict[str, Any]) -> None:
    if "error" in row:
        print(f"  {row.get('contender', row.get('kind'))}: {row['error']}", file=sys.stderr)
    elif row.get("kind") == "import":
        print(f"  import {row['name']}: {row['ms']:.1f} ms", file=sys.stderr)
    elif row.get("kind") == "chunk":
        print(f"  per chunk: llm-otel hook {row.get('llm_otel_hook_us', float('nan')):.2f} us, floor hook "
              f"{row['floor_hook_us']:.2f} us, SDK histogram record {row['sdk_histogram_record_us']:.2f} us",
              file=sys.stderr)
    elif row.get("kind") in ("import_breakdown", "import_profile", "profile_category", "profile_function"):
        pass
    elif row.get("kind") == "callpath":
        print(f"  call path {row['case']}{' at ' + row['ref'] if row.get('ref') else ''}: {row['files']} files, "
              f"{row['functions']} functions, {row['calls']} calls", file=sys.stderr)
    elif row.get("kind") == "profile":
        print(f"  profile {row['case']}: {row['overhead_us']:.0f} us/call, {row['spans']} spans", file=sys.stderr)
    elif row.get("kind") == "memory":
        print(f"  memory: RSS {row['rss_growth_kib']} KiB, traced {row['tracemalloc_growth_bytes']} B",
              file=sys.stderr)
    else:
        print(f"  {row['contender']:<22} {row['case']:<16} +{row['overhead_us']:8.1f} us/call "
              f"(plain {row['plain_us']:.0f} us, {row['spans_per_call']:.0f} spans)", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, smaller blocks, 10k-call memory run")
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--rounds", type=int, help="rounds per case (default 30, --quick 8)")
    ap.add_argument("--scale", type=float, help="multiply the block sizes (default 1, --quick 0.5)")
    ap.add_argument("--skip", default="", help="comma list of: frameworks,content,exporters,chunks,imports,"
                                                "callpath,profile,memory")
    ap.add_argument("--render", nargs="+", metavar="JSONL", help="only render the tables from saved results "
                    "(later files override earlier ones for the same figure)")
    args = ap.parse_args()
    if args.render:
        rows = [json.loads(line) for path in args.render for line in open(path) if line.startswith("{")]
        print(render(_latest(rows), quick=args.quick, seconds=0.0, load="see the runs"))
        return 0
    rounds, scale = (8, 0.5) if args.quick else (30, 1.0)
    rounds, scale = args.rounds or rounds, args.scale or scale
    skip = set(filter(None, args.skip.split(",")))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    log = open(RESULTS / f"{stamp}.jsonl", "w")
    base_env = dict(os.environ, PYTHONHASHSEED="0")
    rows: List[Dict[str, Any]] = []
    common = ["--rounds", str(rounds), "--scale", str(scale)]
    started = time.perf_counter()
    load_before = _load()

    contenders = [c for c in args.contenders.split(",") if c]
    off = dict(base_env, **CONTENT_OFF)
    for contender in contenders:
        print(f"[{contender}]", file=sys.stderr)
        extra = ["--with-floor"] if contender == "llm-otel" else []
        rows += _run(["bench.py", "--contender", contender, *extra, *common], _env(off, contender), log)
    if "frameworks" not in skip and "llm-otel" in contenders:
        print("[llm-otel framework spans: no-op handlers and bare SDK spans in the same rounds]", file=sys.stderr)
        rows += _run(["bench.py", "--contender", "llm-otel", "--with-floor", "--cases", ",".join(FRAMEWORK_CASES),
                      *common], off, log)
    if "callpath" not in skip:
        print("[call path through llm-otel's code, now and before the redesign]", file=sys.stderr)
        rows += _run(["hotpath.py", "callpath"], off, log)
        rows += _run(["hotpath.py", "callpath", "--ref", BEFORE_REDESIGN], off, log)
    if "profile" not in skip:
        for case in FRAMEWORK_CASES:
            print(f"[profile {case}]", file=sys.stderr)
            rows += _run(["hotpath.py", "profile", "--case", case, "--runs", "100" if args.quick else "300",
                          "--repeats", "3" if args.quick else "5"], off, log)
    if "content" not in skip:
        for contender in [c for c in contenders if c != "floor"]:
            # off and on back to back, so the pair shares the machine's conditions
            print(f"[{contender}, content off then on]", file=sys.stderr)
            rows += _run(["bench.py", "--contender", contender, "--cases", "chat,stream",
                          "--label", f"{contender}:content-off", *common], _env(off, contender), log)
            rows += _run(["bench.py", "--contender", contender, "--cases", "chat,stream",
                          "--label", f"{contender}+content", *common],
                         _env(dict(base_env, **CONTENT_ON), contender), log)
    if "exporters" not in skip and "llm-otel" in contenders:
        for kind in ("console", "jsonl"):
            print(f"[llm-otel {kind} exporter]", file=sys.stderr)
            rows += _run(["bench.py", "--contender", "exporter", "--exporter", kind, "--cases", "chat,stream",
                          "--label", f"exporter:{kind}", *common], dict(base_env, **CONTENT_OFF), log)
    if "chunks" not in skip:
        print("[per-chunk hook]", file=sys.stderr)
        rows += _run(["chunks.py"], dict(base_env, **CONTENT_OFF), log)
    if "imports" not in skip:
        print("[imports]", file=sys.stderr)
        rows += _run(["startup.py", "imports", "--runs", "3" if args.quick else "9"], base_env, log)
        rows += _run(["startup.py", "breakdown", "--runs", "3" if args.quick else "7"], base_env, log)
    if "memory" not in skip:
        print("[memory]", file=sys.stderr)
        calls = "10000" if args.quick else "100000"
        rows += _run(["startup.py", "memory", "--calls", calls, "--traced", "3000" if args.quick else "10000"],
                     dict(base_env, **CONTENT_OFF), log)
    log.close()

    report = render(rows, quick=args.quick, seconds=time.perf_counter() - started,
                    load=f"{load_before} at the start, {_load()} at the end")
    (RESULTS / "latest.md").write_text(report)
    print(report)
    return 0


def _latest(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per figure, the last one seen."""
    keyed: Dict[Any, Dict[str, Any]] = {}
    for row in rows:
        if row.get("kind") in ("callpath", "profile", "profile_category", "profile_function"):
            key: Any = (row["kind"], row["case"], row.get("ref"), row.get("category"), row.get("function"))
        elif row.get("kind") == "import_profile":
            key = (row["kind"], row["function"])
        elif "case" in row:
            key = (row.get("contender"), row.get("case"))
        else:
            key = (row.get("kind"), row.get("name"))
        keyed[key] = row
    return list(keyed.values())


# ---- tables ----------------------------------------------------------------------------

def _by(rows: List[Dict[str, Any]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for row in rows:
        if "case" in row and "overhead_us" in row and "kind" not in row:
            out.setdefault(row["contender"], {})[row["case"]] = row
    return out


def _us(row: Optional[Dict[str, Any]]) -> str:
    if row is None:
        return "n/a"
    spans = row["spans_per_call"]
    note = "" if round(spans) == 1 else f" ({spans:.0f} spans)"
    return f"{row['overhead_us']:.0f}{note}"


def _ratio(ours: Optional[Dict[str, Any]], floor: Optional[Dict[str, Any]]) -> str:
    """Pairwise in llm-otel's own process when it timed the floor too (--with-floor)."""
    if ours and "ratio_to_floor" in ours:
        return f"{ours['ratio_to_floor']:.2f}x (floor {ours['floor_overhead_us']:.0f} in the same rounds)"
    if ours and floor and floor["overhead_us"] > 0:
        return f"{ours['overhead_us'] / floor['overhead_us']:.2f}x"
    return "n/a"


def _ratio_value(ours: Dict[str, Any], floor: Optional[Dict[str, Any]]) -> Optional[float]:
    if "ratio_to_floor" in ours:
        return ours["ratio_to_floor"]
    if floor and floor["overhead_us"] > 0:
        return ours["overhead_us"] / floor["overhead_us"]
    return None


def per_chunk(by: Dict[str, Dict[str, Dict[str, Any]]], contender: str) -> Optional[float]:
    cases = by.get(contender, {})
    if "stream" in cases and "stream_long" in cases:
        return (cases["stream_long"]["overhead_us"] - cases["stream"]["overhead_us"]) / CHUNK_DELTA
    return None


def _run_note(quick: bool, seconds: float, load: str) -> str:
    if not seconds:
        return "rendered from saved results"
    return f"{'--quick' if quick else 'full'} run, {seconds:.0f} s, load average {load}"


def _load() -> str:
    try:
        return "%.1f" % os.getloadavg()[0]
    except OSError:
        return "?"


def render(rows: List[Dict[str, Any]], quick: bool = False, seconds: float = 0.0, load: str = "?") -> str:
    by = _by(rows)
    present = [c for c in CONTENDERS if c in by]
    peers = [c for c in PEERS if c in by]
    lines: List[str] = []
    add = lines.append
    plain_source = by.get("floor") or by.get("llm-otel") or next(iter(by.values()), {})
    add(f"llm-otel {_git()}; Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{_run_note(quick, seconds, load)}. Overhead = median over rounds of "
        "(instrumented block - plain block) per call, in microseconds of CPU time; lower is better. "
        "`(n spans)`: spans per call when not 1.")
    add("")
    header = ["case", "plain call"] + present + (["llm-otel / floor"] if "llm-otel" in by and "floor" in by else [])
    add("| " + " | ".join(header) + " |")
    add("|" + "---|" * len(header))
    for case, title in CASE_NAMES.items():
        if not any(case in by[c] for c in present):
            continue
        plain = plain_source.get(case)
        cells = [title, f"{plain['plain_us']:.0f}" if plain else "n/a"]
        cells += [_us(by[c].get(case)) for c in present]
        if "llm-otel / floor" in header:
            cells.append(_ratio(by["llm-otel"].get(case), by["floor"].get(case)))
        add("| " + " | ".join(cells) + " |")
    chunk_cells = ["per stream chunk (slope 40 -> 240 chunks)", ""]
    chunk_cells += [f"{v:.2f}" if (v := per_chunk(by, c)) is not None else "n/a" for c in present]
    if "llm-otel / floor" in header:
        ours, floor = per_chunk(by, "llm-otel"), per_chunk(by, "floor")
        chunk_cells.append(f"{ours / floor:.2f}x" if ours and floor and floor > 0 else "n/a")
    add("| " + " | ".join(chunk_cells) + " |")
    add("")

    content = [c for c in present if f"{c}+content" in by]
    if content:
        add("Content capture off and on (each contender's own switch), overhead per call in microseconds:")
        add("")
        add("| case | " + " | ".join(f"{c} off" + " | " + f"{c} on" for c in content) + " |")
        add("|" + "---|" * (1 + 2 * len(content)))
        for case in ("chat", "stream"):
            cells = [CASE_NAMES[case]]
            for c in content:
                off = by.get(f"{c}:content-off", by[c])  # the off run made next to the on run, if any
                cells += [_us(off.get(case)), _us(by[f"{c}+content"].get(case))]
            add("| " + " | ".join(cells) + " |")
        add("")

    exporters = [k for k in ("console", "jsonl") if f"exporter:{k}" in by]
    if exporters:
        add("llm-otel's local exporters, added to the pipeline (SimpleSpanProcessor), extra cost per call "
            "in microseconds (llm-otel on in both blocks):")
        add("")
        add("| case | " + " | ".join(f"{k} exporter" for k in exporters) + " |")
        add("|" + "---|" * (1 + len(exporters)))
        for case in ("chat", "stream"):
            add("| " + " | ".join([CASE_NAMES[case]] + [_us(by[f"exporter:{k}"].get(case)) for k in exporters]) + " |")
        add("")

    chunk = next((r for r in rows if r.get("kind") == "chunk"), None)
    if chunk:
        add(f"Per stream chunk, measured directly ({chunk['chunks']} parsed chunks pulled through each proxy, "
            "CPU time, best of 15), microseconds:")
        add("")
        add("| per chunk | floor | llm-otel |")
        add("|---|---|---|")
        add(f"| in `__next__` (proxy, clock read, state), include_usage | {chunk['floor_hook_us']:.2f} | "
            f"{chunk.get('llm_otel_hook_us', float('nan')):.2f} |")
        add(f"| the same, no usage (text kept for local counting) | | "
            f"{chunk.get('llm_otel_hook_no_usage_us', float('nan')):.2f} |")
        add(f"| at the end: one `time_per_output_chunk` Histogram.record (OTel SDK) | "
            f"{chunk['sdk_histogram_record_us']:.2f} | {chunk['sdk_histogram_record_us']:.2f} |")
        add("")

    imports = {r["name"]: r for r in rows if r.get("kind") == "import"}
    if imports:
        add("Import time in a fresh interpreter (OTEL_*_EXPORTER=none), ms over "
            f"{next(iter(imports.values()))['runs']} runs: wall clock median (best-worst), and the median CPU time "
            "of the importing thread and of the whole process (threads llm-otel starts to load the price table "
            "and the encoding count in the latter):")
        add("")
        add("| import | wall median | wall best-worst | CPU, importing thread | CPU, process |")
        add("|---|---:|---|---:|---:|")
        for name, row in imports.items():
            add(f"| `{name}` | {row['ms']:.0f} | {row['min_ms']:.0f}-{row.get('max_ms', row['min_ms']):.0f} | "
                f"{_opt(row.get('thread_cpu_ms'))} | {_opt(row.get('process_cpu_ms'))} |")
        for state, label in (("already imported", "libraries imported (includes the `openai.resources` import the "
                                                   "SDK itself defers to the first call)"),
                             ("imported and used", "**libraries imported and used**")):
            median, best = _import_delta(imports, state), _import_delta(imports, state, "min_ms")
            if median is not None:
                add(f"| llm_otel.auto beyond the OTel SDK, {label} | {median:.0f} | best {best:.0f} | "
                    f"{_opt(_import_delta(imports, state, 'thread_cpu_ms'))} | "
                    f"{_opt(_import_delta(imports, state, 'process_cpu_ms'))} |")
        add("")
        add("(`beyond` rows: the llm_otel.auto runs' median minus the SDK runs' median; best minus best.)")
        add("")

    add(render_frameworks(by))
    add(render_callpath(rows))
    add(render_profiles(rows))
    add(render_import_breakdown(rows))

    memory = next((r for r in rows if r.get("kind") == "memory"), None)
    if memory:
        add(f"Memory: {memory['calls']} instrumented calls (chat; every 20th a stream, every 40th an abandoned "
            f"stream), after {memory['warmup']} warm-up calls. RSS {memory['rss_after_warmup_kib']} -> "
            f"{memory['rss_end_kib']} KiB ({memory['rss_growth_kib']:+d} KiB in all, "
            f"{memory.get('rss_growth_untraced_kib', 0):+d} KiB over the {memory.get('untraced_calls', '?')} calls "
            f"before tracemalloc started). tracemalloc over the last {memory['tracemalloc_calls']} calls: "
            f"{memory.get('growth_bytes', memory['tracemalloc_growth_bytes']):+d} bytes "
            f"({memory['bytes_per_call']:+.3f} B/call; the stdlib's bounded `re` cache and tracemalloc's own "
            f"records left out), {memory.get('llm_otel_growth_bytes', 0):+d} bytes of it allocated under "
            f"llm-otel frames; {memory['spans']} spans ended.")
        if memory.get("tracemalloc_top"):
            add("")
            add("Largest remaining differences: " + "; ".join(
                f"`{line.split('/site-packages/')[-1]}`" for line in memory["tracemalloc_top"][:3]))
        add("")

    add(targets(by, peers, imports, memory, chunk))
    return "\n".join(lines) + "\n"


def render_frameworks(by: Dict[str, Dict[str, Dict[str, Any]]]) -> str:
    """Per span: llm-otel, the framework's own dispatch to a handler that does nothing, and
    the bare SDK replay of the same spans, all from the same rounds."""
    ours = by.get("llm-otel", {})
    present = [c for c in FRAMEWORK_CASES if c in ours]
    if not present:
        return ""
    lines = ["Framework spans (no SDK call underneath; llm-otel, a no-op handler and a bare replay of llm-otel's "
             "spans with the OTel SDK, each against the uninstrumented call in the same rounds), microseconds:", "",
             "| case | spans | plain call | llm-otel per call | **llm-otel per span** | no-op handler per span | "
             "bare SDK span per span | llm-otel's own per span (llm-otel - no-op - bare) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for case in present:
        row = ours[case]
        n = row["spans_per_call"] or 1
        noop, bare = row.get("noop_overhead_us"), row.get("bare_overhead_us")
        own = (row["overhead_us"] - (noop or 0) - (bare or 0)) / n if noop is not None and bare is not None else None
        lines.append(f"| {FRAMEWORK_CASES[case].replace('|', chr(92) + '|')} | {n:.0f} | {row['plain_us']:.0f} | {row['overhead_us']:.0f} "
                     f"(IQR {row['q1_us']:.0f}-{row['q3_us']:.0f}) | **{row['overhead_us'] / n:.0f}** | "
                     f"{_num(noop, n)} | {_num(bare, n)} | {_num(own, 1)} |")
    return "\n".join(lines) + "\n"


def _num(value: Optional[float], divide: float) -> str:
    return "n/a" if value is None else f"{value / divide:.0f}"


def render_callpath(rows: List[Dict[str, Any]]) -> str:
    now = {r["case"]: r for r in rows if r.get("kind") == "callpath" and not r.get("ref")}
    before = {r["case"]: r for r in rows if r.get("kind") == "callpath" and r.get("ref")}
    if not now:
        return ""
    ref = next(iter(before.values()), {}).get("ref", "?")
    lines = [f"llm-otel's own code one call crosses (sys.setprofile, files / functions / calls under src/llm_otel "
             f"and instrumentors; comprehensions count as functions), now and at {ref}, before the redesign:", "",
             "| case | now | before |", "|---|---|---|"]
    for case, row in now.items():
        old = before.get(case)
        lines.append(f"| {case} | {row['files']} / {row['functions']} / {row['calls']} | "
                     + (f"{old['files']} / {old['functions']} / {old['calls']}" if old else "n/a") + " |")
    return "\n".join(lines) + "\n"


def render_profiles(rows: List[Dict[str, Any]], top: int = 12) -> str:
    heads = [r for r in rows if r.get("kind") == "profile"]
    out: List[str] = []
    for head in heads:
        case = head["case"]
        cats = [r for r in rows if r.get("kind") == "profile_category" and r["case"] == case]
        funcs = [r for r in rows if r.get("kind") == "profile_function" and r["case"] == case]
        out += [f"Where the time goes, {case} ({head['spans']} spans; cProfile, {head['repeats']} x {head['runs']} "
                f"calls, on minus off by category of code; scaled by {head['scale']:.2f} = overhead without the "
                f"profiler ({head['overhead_us']:.0f} us/call) / under it), microseconds per span:", "",
                "| category | us per span |", "|---|---:|"]
        out += [f"| {r['category']} | {r['us_per_span']:.1f} |" for r in cats[:top] if r["us_per_span"] is not None]
        out += ["", "| llm-otel function (inclusive) | calls per call | us per span |", "|---|---:|---:|"]
        out += [f"| `{r['function']}` | {r['calls_per_call']} | {r['us_per_span']:.1f} |" for r in funcs[:top]
                if r["us_per_span"] is not None]
        out.append("")
    return "\n".join(out)


def render_import_breakdown(rows: List[Dict[str, Any]], top: int = 14) -> str:
    parts = [r for r in rows if r.get("kind") == "import_breakdown"]
    if not parts:
        return ""
    lines = [f"What `import llm_otel.auto` loads beyond the configured SDK (python -X importtime, median of "
             f"{parts[0]['runs']} runs; a module's own import time, by package; `llm_otel.auto`'s own line is the "
             "work of `instrument()` that is not an import), ms:", "",
             "| module or package | median | range | imported by | thread |", "|---|---:|---|---|---|"]
    for row in parts[:top]:
        lines.append(f"| `{row['name']}` | {row['ms']:.1f} | {row['min_ms']:.1f}-{row['max_ms']:.1f} | "
                     f"{row.get('via') or ''} | {row.get('thread') or ''} |")
    profile = [r for r in rows if r.get("kind") == "import_profile"][:top]
    if profile:
        lines += ["", "Inside it (cProfile of the import, inflated by the profiler; inclusive ms):", "",
                  "| function | ms | calls |", "|---|---:|---:|"]
        lines += [f"| `{r['function']}` | {r['cumulative_ms']:.0f} | {r['calls']} |" for r in profile]
    return "\n".join(lines) + "\n"


def _git() -> str:
    """The commit measured, and whether the source had uncommitted changes."""
    try:
        root = HERE.parent
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "instrumentors"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"commit {commit}" + (" + uncommitted changes in src/instrumentors" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "(no git)"


def _import_delta(imports: Dict[str, Dict[str, Any]], state: str = "imported and used",
                  field: str = "ms") -> Optional[float]:
    ours = imports.get(f"llm_otel.auto, libraries {state}")
    sdk = imports.get(f"OTel SDK, libraries {state}")
    return ours[field] - sdk[field] if ours and sdk and field in ours and field in sdk else None


def _opt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def targets(by: Dict[str, Dict[str, Dict[str, Any]]], peers: List[str], imports: Dict[str, Any],
            memory: Optional[Dict[str, Any]], chunk: Optional[Dict[str, Any]] = None) -> str:
    out = ["Targets:", ""]
    ours, floor = by.get("llm-otel", {}), by.get("floor", {})

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    for case, limit in RATIO_TARGETS.items():
        ratio = _ratio_value(ours[case], floor.get(case)) if case in ours else None
        if ratio is not None:
            out.append(f"- {CASE_NAMES[case]}: llm-otel / floor = {ratio:.2f}x (target <= {limit}x): "
                       f"{verdict(ratio <= limit)}")
    for case in CASE_NAMES:
        if case not in ours:
            continue
        worse = [p for p in peers if case in by[p] and by[p][case]["overhead_us"] <= ours[case]["overhead_us"]]
        if any(case in by[p] for p in peers):
            spans = f" (llm-otel records {ours[case]['spans_per_call']:.0f} spans, the peers 1)" \
                if round(ours[case]["spans_per_call"]) > 1 else ""
            out.append(f"- {CASE_NAMES[case]}: below every peer: "
                       f"{verdict(not worse)}" + (f" (not below {', '.join(worse)})" if worse else "") + spans)
    chunk_slope, floor_chunk = per_chunk(by, "llm-otel"), per_chunk(by, "floor")
    if chunk_slope is not None:
        own = f" (floor: {floor_chunk:.2f} us)" if floor_chunk is not None else ""
        out.append(f"- per stream chunk, slope of the stream cases: {chunk_slope:.2f} us{own}")
    if chunk and "llm_otel_hook_us" in chunk:
        hook = chunk["llm_otel_hook_us"]
        out.append(f"- per stream chunk, llm-otel's own work in `__next__`: {hook:.2f} us (target < 2 us): "
                   f"{verdict(hook < 2)}; plus the SDK's {chunk['sdk_histogram_record_us']:.2f} us for the "
                   "per-chunk histogram record the conventions ask for (the floor pays it too)")
    for case in FRAMEWORK_CASES:
        row = ours.get(case)
        if row and row["spans_per_call"]:
            per_span = row["overhead_us"] / row["spans_per_call"]
            out.append(f"- {FRAMEWORK_CASES[case]}: {per_span:.0f} us per span (target <= {SPAN_TARGET_US} us): "
                       f"{verdict(per_span <= SPAN_TARGET_US)}")
    added, best = _import_delta(imports), _import_delta(imports, field="min_ms")
    if added is not None and best is not None:
        cpu = _import_delta(imports, field="thread_cpu_ms")
        out.append(f"- `import llm_otel.auto` beyond the OTel SDK (libraries imported and used): median {added:.0f} ms, "
                   f"best {best:.0f} ms wall" + (f", {cpu:.0f} ms CPU of the importing thread" if cpu is not None
                                                  else "") +
                   f" (target <= {IMPORT_TARGET_MS} ms): {verdict(added <= IMPORT_TARGET_MS)} on "
                   f"the median, {verdict(best <= IMPORT_TARGET_MS)} on the best run")
    if memory:
        per_call = memory["bytes_per_call"] or 0.0
        out.append(f"- memory growth: {per_call:+.3f} B/call (tracemalloc), RSS "
                   f"{memory.get('rss_growth_untraced_kib', memory['rss_growth_kib']):+d} KiB over "
                   f"{memory.get('untraced_calls', memory['calls_measured'])} calls (target: none): "
                   f"{verdict(per_call < 1.0)}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
