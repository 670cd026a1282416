"""One contender in one process: paired, alternating blocks of instrumented and plain calls.

``python benchmarks/bench.py --contender llm-otel --cases chat,stream`` prints one JSON
line per case. Each round runs a block of calls instrumented and a block plain (the order
flips every round, so drift cancels); the figure is the median over rounds of the
per-call difference. Every contender gets the same SDK pipeline: a TracerProvider with a
SimpleSpanProcessor into an exporter that drops (and counts) spans, a MeterProvider with
an InMemoryMetricReader, and a LoggerProvider that drops log records (content events).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from time import perf_counter, process_time
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

import responses  # noqa: E402
from responses import CHAT_MODEL, EMBED_MODEL, MESSAGES  # noqa: E402


class DropExporter(SpanExporter):
    """Counts spans and forgets them: the exporter costs nothing, the SDK's work stays."""

    def __init__(self) -> None:
        self.count = 0
        self.kept: Optional[List[Any]] = None  # a list while the spans of one call are wanted

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.count += len(spans)
        if self.kept is not None:
            self.kept.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class Switch(SimpleSpanProcessor):
    """A SimpleSpanProcessor that can be turned off (to time an exporter on its own)."""

    enabled = False

    def on_end(self, span: Any) -> None:
        if self.enabled:
            super().on_end(span)


class Pipeline:
    def __init__(self, span_exporter: Optional[SpanExporter] = None) -> None:
        self.exporter = DropExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.switch: Optional[Switch] = None
        if span_exporter is not None:
            self.switch = Switch(span_exporter)
            self.tracer_provider.add_span_processor(self.switch)
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        self.logger_provider = _drop_logs()


def _drop_logs() -> Any:
    """Content events (openai-v2) go to the logs API: give it a real SDK that drops them."""
    try:
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import LogExporter, LogExportResult, SimpleLogRecordProcessor

        class DropLogs(LogExporter):
            def export(self, batch: Any) -> Any:
                return LogExportResult.SUCCESS

            def shutdown(self) -> None:
                pass

        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(DropLogs()))
        set_logger_provider(provider)
        try:
            from opentelemetry._events import set_event_logger_provider
            from opentelemetry.sdk._events import EventLoggerProvider

            set_event_logger_provider(EventLoggerProvider(provider))
        except Exception:  # noqa: BLE001 - the events API is going away
            pass
        return provider
    except Exception:  # noqa: BLE001
        return None


# ---- the workloads: one call each, what an app does -------------------------------------

class Workloads:
    """Builds each case's plain call once (clients, chains, indexes are made up front)."""

    def __init__(self) -> None:
        self.server = responses.Server(stream_chunks=40)
        self.long_server = responses.Server(stream_chunks=240)
        self.client = self.server.openai_client()
        self.long_client = self.long_server.openai_client()
        self.chat_kwargs = dict(model=CHAT_MODEL, messages=MESSAGES, temperature=0.7, max_tokens=100)
        self._chain: Any = None
        self._query_engine: Any = None
        self._fake_chain: Any = None
        self._mock_engine: Any = None
        self._resources: List[Any] = []

    # openai
    def chat(self) -> None:
        self.client.chat.completions.create(**self.chat_kwargs)

    def stream(self) -> None:
        for _ in self.client.chat.completions.create(stream=True, stream_options={"include_usage": True},
                                                     **self.chat_kwargs):
            pass

    def stream_no_usage(self) -> None:
        for _ in self.client.chat.completions.create(stream=True, **self.chat_kwargs):
            pass

    def stream_long(self) -> None:
        for _ in self.long_client.chat.completions.create(stream=True, stream_options={"include_usage": True},
                                                          **self.chat_kwargs):
            pass

    def embeddings(self) -> None:
        self.client.embeddings.create(model=EMBED_MODEL, input="The quick brown fox jumps over the lazy dog")

    def rebind(self) -> None:
        """Forget the SDK's cached ``with_raw_response`` wrappers (LangChain calls through
        them): they captured ``create`` when first used, so a patch applied later would go
        unseen, unlike in an app that instruments at start-up."""
        for resource in self._resources:
            for name in ("with_raw_response", "with_streaming_response"):
                vars(resource).pop(name, None)

    # frameworks
    def langchain_chain(self) -> Any:
        if self._chain is None:
            from langchain_core.output_parsers import StrOutputParser
            from langchain_core.prompts import ChatPromptTemplate
            from langchain_openai import ChatOpenAI

            llm = ChatOpenAI(model=CHAT_MODEL, api_key=responses.API_KEY, base_url=responses.BASE_URL,
                             max_retries=0, temperature=0.7, http_client=self.server.http_client())
            prompt = ChatPromptTemplate.from_messages([("system", "You are a terse assistant."),
                                                       ("user", "Tell me a short joke about {topic}.")])
            self._chain = prompt | llm | StrOutputParser()
            self._resources += [llm.client, llm.async_client]
        return self._chain

    def langchain(self) -> None:
        self.langchain_chain().invoke({"topic": "OpenTelemetry"})

    def llamaindex_engine(self) -> Any:
        if self._query_engine is None:
            from llama_index.core import Document, Settings, VectorStoreIndex
            from llama_index.core.embeddings import MockEmbedding
            from llama_index.llms.openai import OpenAI

            llm = OpenAI(model=CHAT_MODEL, api_key=responses.API_KEY, api_base=responses.BASE_URL,
                         max_retries=0, temperature=0.7, http_client=self.server.http_client())
            Settings.llm = llm
            Settings.embed_model = MockEmbedding(embed_dim=8)
            docs = [Document(text=f"Document {i}: spans, metrics and logs are OpenTelemetry signals. " * 3)
                    for i in range(4)]
            index = VectorStoreIndex.from_documents(docs, embed_model=Settings.embed_model)
            self._query_engine = index.as_query_engine(llm=llm, similarity_top_k=2)
        return self._query_engine

    def llamaindex(self) -> None:
        self.llamaindex_engine().query("Which signals does OpenTelemetry have?")

    # frameworks on their own fakes: what llm-otel's framework spans cost, no SDK call underneath
    def langchain_fake_chain(self) -> Any:
        if self._fake_chain is None:
            from langchain_core.language_models.fake_chat_models import FakeListChatModel
            from langchain_core.output_parsers import StrOutputParser
            from langchain_core.prompts import ChatPromptTemplate

            prompt = ChatPromptTemplate.from_messages([("system", "You are a terse assistant."),
                                                       ("user", "Tell me a short joke about {topic}.")])
            model = FakeListChatModel(responses=[" ".join(responses.WORDS[:20])])
            self._fake_chain = prompt | model | StrOutputParser()
        return self._fake_chain

    def langchain_fake(self) -> None:
        self.langchain_fake_chain().invoke({"topic": "OpenTelemetry"})

    def llamaindex_mock_engine(self) -> Any:
        if self._mock_engine is None:
            from llama_index.core import Document, VectorStoreIndex
            from llama_index.core.embeddings import MockEmbedding
            from llama_index.core.llms import MockLLM

            docs = [Document(text=f"Document {i}: spans, metrics and logs are OpenTelemetry signals. " * 3)
                    for i in range(4)]
            index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
            self._mock_engine = index.as_query_engine(llm=MockLLM(max_tokens=40), similarity_top_k=2)
        return self._mock_engine

    def llamaindex_mock(self) -> None:
        self.llamaindex_mock_engine().query("Which signals does OpenTelemetry have?")

    def with_noop_handlers(self, case: str) -> Callable[[], None]:
        """The case with a callback handler that does nothing registered the way llm-otel
        registers its own: what the framework itself spends dispatching to any handler."""
        if case == "langchain_fake":
            from langchain_core.callbacks import BaseCallbackHandler

            class Noop(BaseCallbackHandler):
                run_inline = True  # as llm-otel's handler

            config = {"callbacks": [Noop()]}
            chain = self.langchain_fake_chain()
            return lambda: chain.invoke({"topic": "OpenTelemetry"}, config=config)
        if case == "llamaindex_mock":
            from llama_index.core.instrumentation import get_dispatcher
            from llama_index.core.instrumentation.event_handlers import BaseEventHandler
            from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

            class NoopSpans(BaseSpanHandler):  # type: ignore[misc,type-arg]
                def span_enter(self, *args: Any, **kwargs: Any) -> None:
                    pass

                def span_exit(self, *args: Any, **kwargs: Any) -> None:
                    pass

                def span_drop(self, *args: Any, **kwargs: Any) -> None:
                    pass

                def new_span(self, *args: Any, **kwargs: Any) -> None:
                    return None

                def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
                    return None

                def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
                    return None

            class NoopEvents(BaseEventHandler):  # type: ignore[misc]
                def handle(self, event: Any, **kwargs: Any) -> None:
                    pass

            dispatcher, spans, events = get_dispatcher(), NoopSpans(), NoopEvents()

            def run() -> None:
                dispatcher.span_handlers.append(spans)
                dispatcher.event_handlers.append(events)
                try:
                    self.llamaindex_mock()
                finally:
                    dispatcher.span_handlers.remove(spans)
                    dispatcher.event_handlers.remove(events)
            return run
        raise ValueError(case)


CASES = ["chat", "stream", "stream_no_usage", "stream_long", "embeddings", "langchain", "llamaindex"]
FRAMEWORK_CASES = ["langchain_fake", "llamaindex_mock"]  # llm-otel only: the peers trace no framework


# ---- contenders -------------------------------------------------------------------------

class Contender:
    """Turns instrumentation on and off; ``call(case)`` is what the instrumented block runs."""

    name = "?"
    frameworks = True  # instruments LangChain/LlamaIndex themselves (or only the SDK under them)

    def __init__(self, pipeline: Pipeline, work: Workloads) -> None:
        self.pipeline = pipeline
        self.work = work

    state = False

    def switch(self, on: bool) -> None:
        if on != self.state:
            self.on() if on else self.off()
            self.state = on
            self.work.rebind()

    def on(self) -> None:
        pass

    def off(self) -> None:
        pass

    def call(self, case: str) -> Callable[[], None]:
        return getattr(self.work, case)


class Plain(Contender):
    name = "plain"


class FloorContender(Contender):
    name = "floor"

    def __init__(self, pipeline: Pipeline, work: Workloads) -> None:
        super().__init__(pipeline, work)
        from floor import Floor

        self.floor = Floor(pipeline.tracer_provider, pipeline.meter_provider)

    def call(self, case: str) -> Callable[[], None]:
        f, w = self.floor, self.work
        kwargs = w.chat_kwargs

        def drain(client: Any, **extra: Any) -> Callable[[], None]:
            def run() -> None:
                for _ in f.stream(client, stream=True, **extra, **kwargs):
                    pass
            return run

        usage = {"stream_options": {"include_usage": True}}
        return {
            "chat": lambda: f.chat(w.client, **kwargs),
            "stream": drain(w.client, **usage),
            "stream_no_usage": drain(w.client),
            "stream_long": drain(w.long_client, **usage),
            "embeddings": lambda: f.embeddings(w.client, model=EMBED_MODEL,
                                               input="The quick brown fox jumps over the lazy dog"),
            "langchain": lambda: f.around(w.langchain_chain().invoke, CHAT_MODEL, {"topic": "OpenTelemetry"}),
            "llamaindex": lambda: f.around(w.llamaindex_engine().query, CHAT_MODEL,
                                           "Which signals does OpenTelemetry have?"),
        }[case]


class LlmOtel(Contender):
    name = "llm-otel"

    def __init__(self, pipeline: Pipeline, work: Workloads) -> None:
        super().__init__(pipeline, work)
        import llm_otel

        self.llm_otel = llm_otel
        self.names: List[str] = []
        for name in llm_otel.available():  # those that have landed and load
            try:
                llm_otel.instrument(name, tracer_provider=pipeline.tracer_provider,
                                    meter_provider=pipeline.meter_provider)
                llm_otel.uninstrument(name)
                self.names.append(name)
            except Exception as exc:  # noqa: BLE001
                print(f"llm-otel: instrumentor {name} unavailable: {exc!r}", file=sys.stderr)

    def on(self) -> None:
        self.llm_otel.instrument(*self.names, tracer_provider=self.pipeline.tracer_provider,
                                 meter_provider=self.pipeline.meter_provider)

    def off(self) -> None:
        self.llm_otel.uninstrument(*self.names)


class ExporterCost(LlmOtel):
    """llm-otel stays on; the blocks differ only in the extra exporter (console or JSONL)."""

    name = "exporter"

    def __init__(self, pipeline: Pipeline, work: Workloads) -> None:
        super().__init__(pipeline, work)
        if pipeline.switch is None:
            raise SystemExit("--exporter is required for this contender")
        LlmOtel.on(self)

    def on(self) -> None:
        self.pipeline.switch.enabled = True  # type: ignore[union-attr]

    def off(self) -> None:
        self.pipeline.switch.enabled = False  # type: ignore[union-attr]


class Instrumentor(Contender):
    """A peer with a working ``uninstrument()``."""

    frameworks = False

    def instrumentor(self) -> Any:
        raise NotImplementedError

    def __init__(self, pipeline: Pipeline, work: Workloads) -> None:
        super().__init__(pipeline, work)
        self.inst = self.instrumentor()

    def on(self) -> None:
        self.inst.instrument(tracer_provider=self.pipeline.tracer_provider,
                             meter_provider=self.pipeline.meter_provider)

    def off(self) -> None:
        self.inst.uninstrument()


class OpenAIV2(Instrumentor):
    name = "openai-v2"

    def instrumentor(self) -> Any:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        return OpenAIInstrumentor()


class GenAIOpenAI(Instrumentor):
    """The official peer from open-telemetry/opentelemetry-python-genai. Its
    opentelemetry-util-genai (>= 1.3b0) cannot live beside openai-v2's (1.1b0), so it comes
    from an overlay folder that only this contender's process has on its path (run.py)."""

    name = "genai-openai"

    def instrumentor(self) -> Any:
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()


class OpenInference(Instrumentor):
    name = "openinference"

    def instrumentor(self) -> Any:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()


class OpenLLMetry(Contender):
    """``uninstrument()`` leaves its wrappers in place, so it is toggled by swapping the
    patched attributes themselves: everything its ``instrument()`` changed in the loaded
    openai / langchain / llama_index modules and classes is put back or re-applied."""

    name = "openllmetry"
    frameworks = False

    def __init__(self, pipeline: Pipeline, work: Workloads) -> None:
        super().__init__(pipeline, work)
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        before = _patchable()
        OpenAIInstrumentor().instrument(tracer_provider=pipeline.tracer_provider,
                                        meter_provider=pipeline.meter_provider)
        after = _patchable()
        self.changes = [(owner, name, before[key][2], value)
                        for key, (owner, name, value) in after.items()
                        if key in before and before[key][2] is not value and hasattr(value, "__wrapped__")]
        if not self.changes:
            raise RuntimeError("OpenLLMetry patched nothing that could be found")
        self.off()

    def on(self) -> None:
        for owner, name, _, patched in self.changes:
            setattr(owner, name, patched)

    def off(self) -> None:
        for owner, name, original, _ in self.changes:
            setattr(owner, name, original)


def _patchable() -> Dict[Any, Any]:
    out: Dict[Any, Any] = {}
    for modname, mod in list(sys.modules.items()):
        if mod is None or not modname.startswith(("openai", "langchain", "llama_index")):
            continue
        for name, value in list(vars(mod).items()):
            out[(id(mod), name)] = (mod, name, value)
            if isinstance(value, type) and getattr(value, "__module__", None) == modname:
                for attr, member in list(vars(value).items()):
                    out[(id(value), attr)] = (value, attr, member)
    return out


CONTENDERS = {c.name: c for c in (Plain, FloorContender, LlmOtel, ExporterCost, OpenAIV2, GenAIOpenAI, OpenInference,
                                   OpenLLMetry)}


# ---- bare spans: the OTel SDK's own price for the spans llm-otel records --------------------

class Template:
    """The spans one instrumented call recorded (names, kinds, attributes, nesting), replayed
    with the bare SDK: each span started with all its attributes, made current for its
    children, ended. What llm-otel costs per span above this is its own work."""

    def __init__(self, spans: Sequence[Any]) -> None:
        by_id = {s.context.span_id: s for s in spans}
        self.roots: List[Any] = []
        self.children: Dict[int, List[Any]] = {}
        for span in sorted(spans, key=lambda s: s.start_time):
            parent = span.parent.span_id if span.parent is not None else None
            if parent in by_id:
                self.children.setdefault(parent, []).append(span)
            else:
                self.roots.append(span)
        self.count = len(spans)

    def replay(self, tracer: Any) -> None:
        from opentelemetry import context

        def one(span: Any) -> None:
            live = tracer.start_span(span.name, kind=span.kind, attributes=dict(span.attributes))
            token = context.attach(trace.set_span_in_context(live))
            try:
                for child in self.children.get(span.context.span_id, ()):
                    one(child)
            finally:
                context.detach(token)
                live.end()

        for root in self.roots:
            one(root)


def bare_spans(contender: Contender, case: str) -> Callable[[], None]:
    """The plain call plus a bare replay of the spans llm-otel records for it."""
    exporter = contender.pipeline.exporter
    contender.switch(True)
    exporter.kept = []
    try:
        contender.call(case)()
        settle(exporter)  # its LLM span may end later, once a background load is there
    finally:
        spans, exporter.kept = exporter.kept, None
        contender.switch(False)
    template = Template(spans)
    tracer = contender.pipeline.tracer_provider.get_tracer("bare")
    plain = getattr(contender.work, case)

    def run() -> None:
        plain()
        template.replay(tracer)
    return run


# ---- measurement ------------------------------------------------------------------------

# CPU time of this process: on a shared machine, other processes' load does not inflate it
# (wall-clock time would, unequally between the two blocks of a pair). BENCH_CLOCK=wall to compare.
clock = perf_counter if os.environ.get("BENCH_CLOCK") == "wall" else process_time


def warm_up(fn: Callable[[], None], calls: int = 3, seconds: float = 1.5,
            exporter: Optional[DropExporter] = None) -> None:
    """At least ``calls`` calls and ``seconds`` of them, then :func:`settle`."""
    deadline = perf_counter() + seconds
    done = 0
    while done < calls or perf_counter() < deadline:
        fn()
        done += 1
    settle(exporter)


def settle(exporter: Optional[DropExporter] = None, limit: float = 120.0) -> None:
    """Until no span of llm-otel waits on a background load. llm-otel loads the price table
    and the token encoding off the caller's thread, and a call that ends before they are
    there ends its span later, on the loader's thread: on a slow machine the warm-up's spans
    would otherwise end inside a timed block (an "off" block counted 56 once).
    With ``exporter``: also until its count stops moving (the last waiting span is ended
    just after it stops being counted as waiting)."""
    recorder = sys.modules.get("llm_otel.core.recorder")
    deadline = perf_counter() + limit
    while recorder is not None and getattr(recorder, "_deferred", None) and perf_counter() < deadline:
        time.sleep(0.01)
    last = None
    while exporter is not None and exporter.count != last and perf_counter() < deadline:
        last = exporter.count
        time.sleep(0.05)


def paired(contender: Contender, case: str, rounds: int, block: int,
           refs: Optional[Dict[str, Callable[[], None]]] = None) -> Dict[str, Any]:
    """Median per-call difference of instrumented and plain blocks. ``refs``: other ways of
    making the call (the hand-written floor, a bare replay of the spans, no-op handlers),
    each timed as a block of its own in the same rounds, so their differences to the plain
    call and their ratios to llm-otel's are measured pairwise too."""
    refs = refs or {}
    plain = getattr(contender.work, case)
    instrumented = contender.call(case)
    exporter = contender.pipeline.exporter
    # warm up every path (imports, caches, tiktoken, pydantic models, the background loads)
    contender.switch(True)
    warm_up(instrumented, max(3, block // 4), exporter=exporter)
    contender.switch(False)
    for _ in range(max(3, block // 4)):
        plain()
        for ref in refs.values():
            ref()
    kinds = ["on", "off", *refs]
    diffs: List[float] = []
    ref_diffs: Dict[str, List[float]] = {name: [] for name in refs}
    plains: List[float] = []
    spans = calls = leaked = 0
    for r in range(rounds):
        times: Dict[str, float] = {}
        order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
        if r % 2:
            order.reverse()
        for kind in order:
            contender.switch(kind == "on")
            fn = instrumented if kind == "on" else plain if kind == "off" else refs[kind]
            before = exporter.count
            t0 = clock()
            for _ in range(block):
                fn()
            times[kind] = (clock() - t0) / block
            if kind == "on":
                spans += exporter.count - before
                calls += block
            elif kind == "off":
                leaked += exporter.count - before
        contender.switch(False)
        diffs.append(times["on"] - times["off"])
        plains.append(times["off"])
        for name in refs:
            ref_diffs[name].append(times[name] - times["off"])
    q = statistics.quantiles(diffs, n=4) if len(diffs) >= 2 else [diffs[0]] * 3
    out = {"case": case, "plain_us": statistics.median(plains) * 1e6,
           "overhead_us": statistics.median(diffs) * 1e6, "q1_us": q[0] * 1e6, "q3_us": q[2] * 1e6,
           "spans_per_call": spans / calls if calls else 0.0,
           "plain_spans": leaked, "rounds": rounds, "block": block}
    for name, values in ref_diffs.items():
        out[f"{name}_overhead_us"] = statistics.median(values) * 1e6
        out[f"ratio_to_{name}"] = statistics.median(d / f for d, f in zip(diffs, values) if f > 0) \
            if any(f > 0 for f in values) else None
    return out


BLOCKS = {"chat": 40, "stream": 20, "stream_no_usage": 20, "stream_long": 6, "embeddings": 40,
          "langchain": 10, "llamaindex": 4, "langchain_fake": 20, "llamaindex_mock": 8}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--contender", required=True, choices=sorted(CONTENDERS))
    ap.add_argument("--cases", default=",".join(CASES), help=f"from {', '.join(CASES + FRAMEWORK_CASES)}")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the block sizes")
    ap.add_argument("--exporter", choices=["console", "jsonl"], help="add llm-otel's exporter to the pipeline")
    ap.add_argument("--label", default=None, help="name of this run in the output")
    ap.add_argument("--with-floor", action="store_true",
                    help="also time the floor in the same rounds (for the ratio to the floor); for the "
                         "framework-only cases, no-op handlers and a bare SDK replay of the spans instead")
    args = ap.parse_args(argv)

    span_exporter = None
    if args.exporter:
        span_exporter = _llm_otel_exporter(args.exporter)
    pipeline = Pipeline(span_exporter)
    work = Workloads()
    label = args.label or args.contender
    cases = []
    for case in filter(None, args.cases.split(",")):
        try:
            getattr(work, case)()  # import and build everything (chains, indexes) before instrumenting
            cases.append(case)
        except ImportError as exc:
            print(json.dumps({"contender": label, "case": case, "error": f"not installed: {exc}"}), flush=True)
    try:
        contender = CONTENDERS[args.contender](pipeline, work)
    except ImportError as exc:
        print(json.dumps({"contender": label, "error": f"not installed: {exc}"}), flush=True)
        return 0
    floor = FloorContender(pipeline, work) if args.with_floor else None
    gc.collect()
    for case in cases:
        block = max(1, int(BLOCKS[case] * args.scale))
        refs: Dict[str, Callable[[], None]] = {}
        if floor is not None and case in FRAMEWORK_CASES:
            refs = {"noop": work.with_noop_handlers(case), "bare": bare_spans(contender, case)}
        elif floor is not None:
            refs = {"floor": floor.call(case)}
        result = paired(contender, case, args.rounds, block, refs)
        result["contender"] = label
        result["frameworks"] = contender.frameworks
        print(json.dumps(result), flush=True)
    return 0


def _llm_otel_exporter(kind: str) -> SpanExporter:
    if kind == "console":
        from llm_otel.exporters import ConsoleTreeExporter

        return ConsoleTreeExporter(out=open(os.devnull, "w"), color=False)
    from llm_otel.exporters import JsonlFileExporter

    return JsonlFileExporter(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"llm-otel-bench-{os.getpid()}.jsonl"))


if __name__ == "__main__":
    sys.exit(main())
