"""Figures for docs/reliability.md that its tests bound but do not print.

``python benchmarks/reliability_figures.py [open-runs] [model-names] [full-disk]`` prints one JSON
line per figure:

- ``open-runs``: Python heap kept per LangChain run that never ends (chat, completion, chain,
  tool, retriever; 100 KB inputs; content capture off), through LangChain's callback manager.
- ``model-names``: heap the tokenizer's and the price table's lookups keep for distinct model
  names (what a proxy or user input can send): their caches at the bound, and the growth from
  200,000 to 380,000 names.
- ``full-disk``: the JSONL trace file on a 64 KiB tmpfs that fills up mid-line and is freed: exports
  that failed, lines written, good lines lost. Mounting needs root.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import threading
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' 64 KiB tmpfs

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from exporters.small_disk import mounted_small_disk  # noqa: E402

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)


def _emit(**figure) -> None:
    print(json.dumps(figure), flush=True)


def _loaded() -> None:
    """The encodings and the price table loaded first, so their own memory is not counted."""
    from llm_otel.core import tokens
    from llm_otel.usage import pricing

    ready = threading.Event()
    tokens.when_loaded("gpt-4o", lambda _encoding: ready.set())
    ready.wait(90)
    pricing.load_prices()


def _heap_growth(work) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        kept = work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - start, kept
    finally:
        tracemalloc.stop()


def open_runs(count: int = 400, size: int = 100_000) -> None:
    from langchain_core.callbacks import CallbackManager
    from langchain_core.messages import HumanMessage

    from llm_otel.instrumentors.langchain import LangChainInstrumentor

    inst = LangChainInstrumentor()
    inst.instrument()
    manager = CallbackManager(handlers=[])

    def runs(n_runs):
        kept = []
        for n in range(n_runs):
            text = f"{n} " + "x" * size  # let go by its caller at once: a task that died
            kept += manager.on_chat_model_start({"name": "m"}, [[HumanMessage(text)]],
                                                invocation_params={"model": "gpt-4o"})
            kept += manager.on_llm_start({"name": "m"}, [text], invocation_params={"model": "gpt-3.5-turbo-instruct"})
            kept.append(manager.on_chain_start({"name": "c"}, {"question": text}))
            kept.append(manager.on_tool_start({"name": "t"}, text, inputs={"query": text}))
            kept.append(manager.on_retriever_start({"name": "r"}, text))
        return kept

    runs(5)
    held, _managers = _heap_growth(lambda: runs(count))
    _emit(figure="langchain runs that never end, content off", runs=5 * count, input_chars=size,
          bytes_per_run=round(held / (5 * count)), open_runs=inst.handler.open_runs())


def model_names() -> None:
    from llm_otel.core import tokens
    from llm_otel.usage.pricing import cost_usd

    def tokenizer(start, stop):
        for i in range(start, stop):
            tokens.encoding(f"user-supplied-model-{i}")
            tokens.encoding_name(f"user-supplied-model-{i}")

    def prices(start, stop):
        for i in range(start, stop):
            cost_usd(f"house-model-{i}", 10, 1) if i % 4 else cost_usd(f"claude-3-5-sonnet-proxy-{i}", 10, 1)

    for name, lookup in (("tokenizer", tokenizer), ("prices", prices)):
        lookup(0, 20_000)
        gc.collect()
        tracemalloc.start()
        try:
            lookup(20_000, 200_000)  # the bounded cache turns over: its entries are now traced
            gc.collect()
            full = tracemalloc.get_traced_memory()[0]
            lookup(200_000, 380_000)
            gc.collect()
            more = tracemalloc.get_traced_memory()[0] - full
        finally:
            tracemalloc.stop()
        _emit(figure=f"{name}: heap held for distinct model names", names=380_000, cache_bytes=full,
              growth_from_200k_to_380k_bytes=more)


def full_disk() -> None:
    from llm_otel.exporters import JsonlFileExporter, JsonlReader
    from opentelemetry.sdk.trace.export import SpanExportResult

    tracer = trace.get_tracer("figures")
    EXPORTER.clear()
    for i in range(30):
        with tracer.start_as_current_span(f"span {i:02d}") as span:
            span.set_attribute("payload", "x" * 600)
    finished = EXPORTER.get_finished_spans()
    with tempfile.TemporaryDirectory() as tmp, mounted_small_disk(Path(tmp)) as disk:
        path = disk.root / "traces.jsonl"
        exporter = JsonlFileExporter(path)
        results = [exporter.export([s]) for s in finished[:10]]
        disk.fill()
        results += [exporter.export([s]) for s in finished[10:20]]
        disk.free()
        results += [exporter.export([s]) for s in finished[20:]]
        exporter.shutdown()
        reader = JsonlReader(path)
        read = [s.name for s in reader]
        written = [s.name for s, r in zip(finished, results) if r is SpanExportResult.SUCCESS]
    _emit(figure="jsonl on a full disk", spans=30, failed_while_full=results[10:20].count(SpanExportResult.FAILURE),
          failed_after_free=results[20:].count(SpanExportResult.FAILURE), reported_written=len(written),
          read_back=len(read), written_but_lost=len(set(written) - set(read)), bad_lines=len(reader.bad_lines))


FIGURES = {"open-runs": open_runs, "model-names": model_names, "full-disk": full_disk}

if __name__ == "__main__":
    _loaded()
    for wanted in sys.argv[1:] or list(FIGURES):
        FIGURES[wanted]()
