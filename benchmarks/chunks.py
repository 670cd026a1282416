"""Per-chunk cost of a traced stream, split into its two parts.

1. The hook: what runs inside ``__next__`` for each chunk (the proxy, the clock read,
   the stream state's attribute reads and appends). Timed by pulling N real, already
   parsed ``ChatCompletionChunk`` objects through llm-otel's ``TracedStream`` and through
   the floor's proxy, against a bare iterator; the stream is not exhausted inside the
   timing, so the end-of-stream work is not counted here.
2. The deferred record: ``gen_ai.client.operation.time_per_output_chunk`` is "recorded
   for each chunk received after the first one" (GenAI semconv), so every chunk also costs
   one OTel SDK ``Histogram.record`` with the metric attributes, at the end of the stream.
   That is the SDK's price and the floor pays it too.

Prints one JSON line per figure (microseconds per chunk, CPU time, best of several runs).
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from time import process_time
from typing import Any, Callable, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402

N = 4000
REPEAT = 15


def _chunks(work: bench.Workloads) -> List[Any]:
    stream = work.long_client.chat.completions.create(stream=True, **work.chat_kwargs)
    return [chunk for chunk in stream]


def _best(make: Callable[[], Any]) -> float:
    """Best per-chunk time of pulling N chunks through ``make()``'s iterator."""
    best = float("inf")
    for _ in range(REPEAT):
        it = make()
        nxt = it.__next__
        gc.disable()
        t0 = process_time()
        for _ in range(N):
            nxt()
        elapsed = process_time() - t0
        gc.enable()
        best = min(best, elapsed / N)
        del it, nxt
        gc.collect()  # abandoned traced streams end here, outside the timing
    return best * 1e6


def main() -> int:
    pipeline = bench.Pipeline()
    work = bench.Workloads()
    chunks = _chunks(work)
    many = (chunks * (N // len(chunks) + 2))[:N + 1]
    bare = _best(lambda: iter(many))

    from floor import Floor, _FloorStream

    floor = Floor(pipeline.tracer_provider, pipeline.meter_provider)

    def floor_stream() -> Any:
        span, token, start = floor._start("chat", bench.CHAT_MODEL)
        from opentelemetry import context

        context.detach(token)
        return _FloorStream(iter(many), floor, span, bench.CHAT_MODEL, start, bench.MESSAGES)

    out = {"kind": "chunk", "chunks": N, "bare_iterator_us": bare,
           "floor_hook_us": _best(floor_stream) - bare}
    try:
        from llm_otel.core import get_recorder
        from llm_otel.instrumentors.openai import chat
        from llm_otel.instrumentors.openai.streams import TracedStream, Tracker

        recorder = get_recorder(pipeline.tracer_provider, pipeline.meter_provider)
        body = dict(work.chat_kwargs, stream=True, stream_options={"include_usage": True})

        def ours(kw: Any = body) -> Any:
            op = recorder.start(chat.start(work.client, kw, None))
            return TracedStream(iter(many), Tracker(op, chat.StreamState(op)))

        out["llm_otel_hook_us"] = _best(ours) - bare
        no_usage = dict(work.chat_kwargs, stream=True)
        out["llm_otel_hook_no_usage_us"] = _best(lambda: ours(no_usage)) - bare
    except ImportError as exc:
        out["llm_otel_error"] = str(exc)

    # the deferred per-chunk histogram record, with the attributes both record
    from llm_otel.core import semconv as sc

    attrs = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: bench.CHAT_MODEL,
             sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18", sc.SERVER_ADDRESS: "api.openai.com", sc.SERVER_PORT: 443}
    record = floor.per_chunk.record
    best = float("inf")
    for _ in range(REPEAT):
        t0 = process_time()
        for _ in range(N):
            record(0.01, attrs)
        best = min(best, (process_time() - t0) / N)
    out["sdk_histogram_record_us"] = best * 1e6
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
