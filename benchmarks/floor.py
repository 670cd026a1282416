"""The floor: the same calls wrapped by hand, the least any instrumentation can cost.

One CLIENT span made current around the call (so HTTP spans would nest), the GenAI
semconv attributes llm-otel records, and the same histograms: operation duration, token
usage (input and output), and for streams time-to-first-chunk and time-per-chunk. A
stream keeps its type (a ``wrapt.ObjectProxy``) and, without ``include_usage``, counts
tokens locally with tiktoken, as llm-otel does. No guard, no extraction layer, no
configuration lookups: whatever llm-otel costs above this is the price of its design.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any, Dict, List, Optional

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llm_otel.core import semconv as sc

_ENCODING: Any = None


def _encoding() -> Any:
    global _ENCODING
    if _ENCODING is None:  # the verified offline cl100k_base llm-otel uses, loaded once
        import threading

        from llm_otel.core import tokens

        ready = threading.Event()
        tokens.when_loaded("gpt-4", lambda encoding: ready.set())
        ready.wait(30)
        _ENCODING = tokens.encoding("gpt-4")
    return _ENCODING


class Floor:
    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = tracer_provider.get_tracer("floor")
        meter = meter_provider.get_meter("floor")
        self.duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION, unit="s", explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS)
        self.tokens = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE, unit="{token}", explicit_bucket_boundaries_advisory=sc.TOKEN_BUCKETS)
        self.first_chunk = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK, unit="s", explicit_bucket_boundaries_advisory=sc.FIRST_CHUNK_BUCKETS)
        self.per_chunk = meter.create_histogram(
            sc.METRIC_TIME_PER_OUTPUT_CHUNK, unit="s", explicit_bucket_boundaries_advisory=sc.PER_CHUNK_BUCKETS)

    # -- one span around any call ---------------------------------------------------------
    def _start(self, operation: str, model: str, extra: Optional[Dict[str, Any]] = None):
        attrs = {sc.OPERATION_NAME: operation, sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: model,
                 sc.SERVER_ADDRESS: "api.openai.com", sc.SERVER_PORT: 443}
        if extra:
            attrs.update(extra)
        span = self.tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs)
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token, perf_counter()

    def _fail(self, span: Any, error: BaseException, operation: str, model: str, start: float) -> None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
        span.end()
        self.duration.record(perf_counter() - start, {sc.OPERATION_NAME: operation, sc.PROVIDER_NAME: "openai",
                                                      sc.REQUEST_MODEL: model,
                                                      sc.ERROR_TYPE: type(error).__qualname__})

    def _finish(self, span: Any, operation: str, model: str, start: float, response_model: Optional[str],
                response_attrs: Dict[str, Any], input_tokens: Optional[int], output_tokens: Optional[int]) -> Dict:
        end = perf_counter()
        span.set_attributes(response_attrs)
        span.end()
        attrs = {sc.OPERATION_NAME: operation, sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: model,
                 sc.SERVER_ADDRESS: "api.openai.com", sc.SERVER_PORT: 443}
        if response_model:
            attrs[sc.RESPONSE_MODEL] = response_model
        self.duration.record(end - start, attrs)
        if input_tokens is not None:
            self.tokens.record(input_tokens, {**attrs, sc.TOKEN_TYPE: "input"})
        if output_tokens is not None:
            self.tokens.record(output_tokens, {**attrs, sc.TOKEN_TYPE: "output"})
        return attrs

    # -- the OpenAI calls ----------------------------------------------------------------
    def chat(self, client: Any, **kwargs: Any) -> Any:
        model = kwargs["model"]
        span, token, start = self._start("chat", model, {sc.REQUEST_TEMPERATURE: kwargs.get("temperature"),
                                                         sc.REQUEST_MAX_TOKENS: kwargs.get("max_tokens")})
        try:
            response = client.chat.completions.create(**kwargs)
        except BaseException as error:
            self._fail(span, error, "chat", model, start)
            raise
        finally:
            otel_context.detach(token)
        usage = response.usage
        self._finish(span, "chat", model, start, response.model, {
            sc.RESPONSE_ID: response.id, sc.RESPONSE_MODEL: response.model,
            sc.RESPONSE_FINISH_REASONS: [c.finish_reason for c in response.choices],
            sc.USAGE_INPUT_TOKENS: usage.prompt_tokens, sc.USAGE_OUTPUT_TOKENS: usage.completion_tokens,
        }, usage.prompt_tokens, usage.completion_tokens)
        return response

    def stream(self, client: Any, **kwargs: Any) -> Any:
        model = kwargs["model"]
        span, token, start = self._start("chat", model, {sc.REQUEST_TEMPERATURE: kwargs.get("temperature"),
                                                         sc.REQUEST_MAX_TOKENS: kwargs.get("max_tokens")})
        try:
            stream = client.chat.completions.create(**kwargs)
        except BaseException as error:
            self._fail(span, error, "chat", model, start)
            raise
        finally:
            otel_context.detach(token)
        return _FloorStream(stream, self, span, model, start, kwargs.get("messages") or ())

    def embeddings(self, client: Any, **kwargs: Any) -> Any:
        model = kwargs["model"]
        span, token, start = self._start("embeddings", model)
        try:
            response = client.embeddings.create(**kwargs)
        except BaseException as error:
            self._fail(span, error, "embeddings", model, start)
            raise
        finally:
            otel_context.detach(token)
        data = response.data
        self._finish(span, "embeddings", model, start, response.model, {
            sc.RESPONSE_MODEL: response.model, sc.USAGE_INPUT_TOKENS: response.usage.prompt_tokens,
            sc.EMBEDDINGS_DIMENSION_COUNT: len(data[0].embedding) if data else 0,
        }, response.usage.prompt_tokens, None)
        return response

    def around(self, fn: Any, model: str, *args: Any) -> Any:
        """A framework call (an LCEL chain, a LlamaIndex query) as one chat span."""
        span, token, start = self._start("chat", model)
        try:
            result = fn(*args)
        except BaseException as error:
            self._fail(span, error, "chat", model, start)
            raise
        finally:
            otel_context.detach(token)
        self._finish(span, "chat", model, start, None, {}, None, None)
        return result


class _FloorStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """Still an ``openai.Stream``; per chunk: a clock read, an append and three attribute reads."""

    def __init__(self, stream: Any, floor: Floor, span: Any, model: str, start: float, messages: Any) -> None:
        super().__init__(stream)
        self._self_floor = floor
        self._self_span = span
        self._self_model = model
        self._self_start = start
        self._self_messages = messages
        self._self_times: List[float] = []
        self._self_text: List[str] = []
        self._self_finish: List[str] = []
        self._self_usage: Any = None
        self._self_meta: Any = None
        self._self_done = False

    def __iter__(self) -> "_FloorStream":
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self.__wrapped__)
        except StopIteration:
            self._self_end()
            raise
        except BaseException as error:
            if not self._self_done:
                self._self_done = True
                self._self_floor._fail(self._self_span, error, "chat", self._self_model, self._self_start)
            raise
        self._self_times.append(perf_counter())
        if self._self_meta is None:
            self._self_meta = chunk
        for choice in chunk.choices:
            content = choice.delta.content
            if content:
                self._self_text.append(content)
            if choice.finish_reason:
                self._self_finish.append(choice.finish_reason)
        if chunk.usage is not None:
            self._self_usage = chunk.usage
        return chunk

    def _self_end(self) -> None:
        if self._self_done:
            return
        self._self_done = True
        usage = self._self_usage
        if usage is not None:
            input_tokens, output_tokens = usage.prompt_tokens, usage.completion_tokens
        else:  # count locally, as llm-otel does
            encoding = _encoding()
            input_tokens = 3 + sum(3 + len(encoding.encode(m.get("content") or "", disallowed_special=()))
                                   for m in self._self_messages)
            output_tokens = len(encoding.encode("".join(self._self_text), disallowed_special=()))
        meta = self._self_meta
        response_model = meta.model if meta is not None else None
        floor = self._self_floor
        attrs = floor._finish(self._self_span, "chat", self._self_model, self._self_start, response_model, {
            sc.RESPONSE_ID: meta.id if meta is not None else None, sc.RESPONSE_MODEL: response_model,
            sc.RESPONSE_FINISH_REASONS: self._self_finish,
            sc.USAGE_INPUT_TOKENS: input_tokens, sc.USAGE_OUTPUT_TOKENS: output_tokens,
        }, input_tokens, output_tokens)
        times = self._self_times
        if times:
            floor.first_chunk.record(times[0] - self._self_start, attrs)
            record = floor.per_chunk.record
            for previous, current in zip(times, times[1:]):
                record(current - previous, attrs)
