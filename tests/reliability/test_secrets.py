"""Security and privacy: no credential in anything exported, content off by default,
the redaction hook and patterns, base64 images as placeholders, attribute length limits.

Everything the SDK pipeline exported (span names, attributes, events, status, resource,
metric attributes) and every log record is dumped to one text and scanned for the API
key and auth header values, with content capture off and on, also on error paths."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rel_support import API_KEY, client_for
import llm_otel
from llm_otel import config
from llm_otel.core.content import REDACTED, REDACTION_FAILED
from llm_otel.core import LLMInvocation, StepInvocation, ToolInvocation
from llm_otel.core.recorder import Recorder
from support.cassettes import load

MODES = [None, "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"]
BEARER = f"Bearer {API_KEY}"
# what must never appear: the key, its distinctive middle, the auth header value
FORBIDDEN = [API_KEY, API_KEY[8:30], "RELIABILITYtestKEY"]


def exported_text(spans, metric_reader=None, caplog=None) -> str:
    """Everything exported, as one string."""
    out = []
    for span in spans():
        out.append(span.name)
        out.append(repr(dict(span.attributes or {})))
        out.append(repr(span.status.description))
        out.append(repr(dict(span.resource.attributes)))
        for event in span.events:
            out.append(event.name)
            out.append(repr(dict(event.attributes or {})))
        for link in span.links:
            out.append(repr(dict(link.attributes or {})))
    if metric_reader is not None:
        metric_reader.points("")  # collects every metric's points into the reader's list
        out.extend(f"{name} {dict(p.attributes)!r}" for name, p in metric_reader._points)
        assert any(name == "gen_ai.client.operation.duration" for name, _ in metric_reader._points)
    if caplog is not None:
        handler_format = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in caplog.records:  # ours and the OTel SDK's (the app's own libraries log what they like)
            if not record.name.startswith(("llm_otel", "opentelemetry")):
                continue
            out.append(handler_format.format(record))
            if record.exc_info:
                out.append(handler_format.formatException(record.exc_info))
    return "\n".join(out)


def assert_clean(text: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in text, f"secret {secret!r} leaked"


def _echo_401(request: httpx.Request) -> httpx.Response:
    """A misbehaving server that echoes the credentials it got (some proxies do)."""
    auth = request.headers["authorization"]
    body = {"error": {"message": f"Incorrect API key provided: {API_KEY}. Header was Authorization: {auth}; "
                                 f"api_key={API_KEY}", "type": "invalid_request_error",
                      "code": "invalid_api_key", "param": None}}
    return httpx.Response(401, json=body, request=request)


@pytest.mark.parametrize("mode", MODES)
def test_no_secret_anywhere_success_error_and_stream(mode, content_mode, cassette, spans, metric_reader, caplog):
    content_mode(mode)
    caplog.set_level(logging.DEBUG)
    chat = cassette("test_chat/test_chat").openai_client(api_key=API_KEY)
    chat.chat.completions.create(model="gpt-3.5-turbo", messages=[
        {"role": "user", "content": f"my key is {API_KEY}, header {BEARER}"}])
    stream = cassette("test_chat/test_chat_async_streaming").openai_client(api_key=API_KEY)
    for _ in stream.chat.completions.create(model="gpt-4", stream=True, messages=[
            {"role": "system", "content": f"Authorization: {BEARER}"}, {"role": "user", "content": "hi"}]):
        pass
    bad = client_for(_echo_401)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert API_KEY in str(caught.value)  # the caller's exception is untouched ...
    assert caught.value.request.headers["authorization"] == BEARER
    text = exported_text(spans, metric_reader, caplog)
    assert len(spans()) == 3 and "AuthenticationError" in text
    assert_clean(text)  # ... but nothing of it reached telemetry
    if mode is None:
        assert "my key is" not in text
    else:
        assert "my key is " + REDACTED in text


def test_no_secret_through_langchain(content_mode, recordings, spans, caplog):
    """ChatOpenAI holds the key as a SecretStr; its serialized form and invocation params
    pass through the LangChain callback handler: none of it may carry the key."""
    from langchain_openai import ChatOpenAI
    from llm_otel.instrumentors.langchain import LangChainInstrumentor
    from support.cassettes import Cassette, serve

    content_mode("SPAN_AND_EVENT")
    caplog.set_level(logging.DEBUG)
    inst = LangChainInstrumentor()
    inst.instrument()
    try:
        with serve(Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml")) as base_url:
            llm = ChatOpenAI(model="gpt-3.5-turbo", api_key=API_KEY, base_url=base_url, max_retries=0,
                             default_headers={"X-Api-Key": API_KEY})
            llm.invoke("Tell me a joke about opentelemetry")
    finally:
        inst.uninstrument()
    assert any(s.attributes.get("gen_ai.operation.name") == "chat" for s in spans())
    assert_clean(exported_text(spans, caplog=caplog))


def test_content_off_by_default():
    """A fresh process with no settings records no content."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLM_OTEL_"))}
    code = ("from llm_otel import config; s = config.settings(); "
            "print(s.content_mode, s.capture_content, s.capture_images, len(s.redact_patterns))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["NO_CONTENT", "False", "False", "0"]


def test_content_off_records_no_message_attributes(content_mode, cassette, spans):
    content_mode(None)
    client = cassette("test_chat/test_chat").openai_client()
    client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "SECRET-PROMPT"}])
    (span,) = spans()
    assert not [k for k in span.attributes if "messages" in k or "instructions" in k]
    assert span.events == () or not span.events
    assert "SECRET-PROMPT" not in exported_text(spans)


def test_redact_patterns_from_env(content_mode, monkeypatch, cassette, spans):
    monkeypatch.setenv(config.REDACT_PATTERNS_ENV, json.dumps([r"\d{3}-\d{2}-\d{4}", r"[\w.]+@example\.com",
                                                               "(unclosed"]))
    content_mode("SPAN_AND_EVENT")
    assert len(config.settings().redact_patterns) == 2  # the broken one is skipped, not fatal
    client = cassette("test_chat/test_chat").openai_client()
    client.chat.completions.create(model="gpt-3.5-turbo", messages=[
        {"role": "system", "content": "user ssn 123-45-6789"},
        {"role": "user", "content": "mail jane.doe@example.com please"}])
    (span,) = spans()
    text = exported_text(spans)
    assert "123-45-6789" not in text and "jane.doe@example.com" not in text
    assert json.loads(span.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == f"mail {REDACTED} please"
    assert REDACTED in span.attributes["gen_ai.system_instructions"]
    (event,) = [e for e in span.events if REDACTED in json.dumps(dict(e.attributes))]


def test_redact_patterns_one_per_line():
    patterns = config.parse_redact_patterns("foo\\d+\n\n  bar  \n")
    assert [p.pattern for p in patterns] == [r"foo\d+", "bar"]


def test_redactor_hook_applies_to_llm_tool_and_step_content(content_mode, cassette, spans):
    content_mode("SPAN_ONLY")
    seen = []

    def hook(text: str) -> str:
        seen.append(text)
        return text.replace("Alice", "<name>")

    config.set_redactor(hook)
    client = cassette("test_chat/test_chat").openai_client()
    client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "I am Alice"}])
    recorder = Recorder()
    with recorder.start(ToolInvocation(name="lookup", arguments={"who": "Alice"})) as tool:
        tool.record.result = "Alice is 30"
    with recorder.start(StepInvocation(name="chain", inputs="Alice?")) as step:
        step.record.outputs = ["Alice", {"nested": "Alice"}]
    text = exported_text(spans)
    assert "Alice" not in text and text.count("<name>") >= 5
    assert "I am Alice" in seen


def test_redactor_that_raises_fails_closed(content_mode, cassette, spans, caplog):
    content_mode("SPAN_ONLY")

    def broken(text):
        raise RuntimeError("redactor bug")

    config.set_redactor(broken)
    client = cassette("test_chat/test_chat").openai_client()
    result = client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "private"}])
    assert result.choices[0].message.content  # the call is unaffected
    (span,) = spans()
    messages = json.loads(span.attributes["gen_ai.input.messages"])
    assert messages[0]["parts"][0]["content"] == REDACTION_FAILED
    assert "private" not in exported_text(spans)
    with pytest.raises(TypeError):
        config.set_redactor("not callable")


def _vision_request(recordings):
    """The real base64 vision request recorded in the cassette (an inline JPEG)."""
    path = recordings / "openai" / "test_vision" / "test_vision_base64.yaml"
    body = json.loads(next(it for it in load(path) if it.status == 200 and "base64" in it.request_body).request_body)
    return path, body


@pytest.mark.parametrize("keep", [False, True])
def test_base64_images_placeholder_unless_asked(keep, recordings, content_mode, monkeypatch, spans):
    from support.cassettes import Cassette

    if keep:
        monkeypatch.setenv(config.CAPTURE_IMAGES_ENV, "true")
    content_mode("SPAN_ONLY")
    path, body = _vision_request(recordings)
    url = next(p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url")
    assert url.startswith("data:image/") and len(url) > 1000
    client = Cassette(path).openai_client()
    client.chat.completions.create(**body)
    (span,) = spans()
    recorded = span.attributes["gen_ai.input.messages"]
    b64 = url.partition(",")[2]
    if keep:
        assert b64[:4096] in recorded  # kept (up to LLM_OTEL_CONTENT_MAX_LENGTH)
    else:
        assert b64[:64] not in recorded and "image omitted" in recorded
        assert len(recorded) < 2000
        parts = json.loads(recorded)[0]["parts"]
        assert {"type": "blob", "modality": "image", "mime_type": "image/jpeg"}.items() <= parts[1].items()
    # a data URL anywhere in captured content (a step's input, say) is replaced too
    recorder = Recorder()
    recorder.start(StepInvocation(name="s", inputs={"image": url})).end()
    assert (b64[:4096] in spans()[-1].attributes["llm_otel.input"]) is keep


def test_attribute_value_length_limit_is_honoured(monkeypatch, content_mode):
    """OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT caps every string attribute (the SDK enforces it,
    ours included), and LLM_OTEL_CONTENT_MAX_LENGTH caps each content string first."""
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "200")
    monkeypatch.setenv(config.CONTENT_MAX_LENGTH_ENV, "50")
    content_mode("SPAN_AND_EVENT")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # reads the limits from the environment
    assert provider._span_limits.max_attribute_length == 200
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = Recorder(tracer_provider=provider)
    op = recorder.start(LLMInvocation(request_model="m" * 500, input_messages=[
        {"role": "user", "parts": [{"type": "text", "content": "x" * 100_000}]}] * 20))
    op.record.response_id = "r" * 10_000
    op.record.input_tokens = op.record.output_tokens = 1
    op.end()
    recorder.start(StepInvocation(name="s", inputs="y" * 10_000)).end()
    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    for span in finished:
        values = list(span.attributes.values()) + [v for e in span.events for v in e.attributes.values()]
        assert values and all(len(v) <= 200 for v in values if isinstance(v, str))
    assert finished[0].attributes["gen_ai.response.id"] == "r" * 200
    assert "[truncated 99950 chars]" in finished[1].attributes["llm_otel.input"] or \
        "truncated" in finished[1].attributes["llm_otel.input"]
    provider.shutdown()


@pytest.mark.parametrize("mode", MODES)
def test_no_secret_in_track_inputs_outputs_or_errors(mode, content_mode, spans, caplog):
    """``@track`` records a function's arguments and result as content: a key passed as an
    argument, returned in a dict, or raised in an exception must not be recorded."""
    content_mode(mode)
    caplog.set_level(logging.DEBUG)

    @llm_otel.track
    def call_backend(api_key, headers, prompt):
        return {"authorization": f"Bearer {api_key}", "echo": prompt}

    @llm_otel.track(name="failing")
    def failing(token):
        raise PermissionError(f"rejected credentials api_key={token}")

    assert call_backend(API_KEY, {"Authorization": BEARER}, "hello")["echo"] == "hello"
    with pytest.raises(PermissionError):
        failing(API_KEY)
    text = exported_text(spans, caplog=caplog)
    assert len(spans()) == 2 and "PermissionError" in text
    assert_clean(text)
    if mode is not None:
        assert "hello" in text  # content was captured, only the secrets were masked


def test_no_secret_through_llamaindex(content_mode, recordings, spans, caplog):
    """LlamaIndex's OpenAI LLM keeps ``api_key`` as a plain field on the instance the
    span handler sees: none of it may reach the spans."""
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.llms.openai import OpenAI as LlamaOpenAI
    from llm_otel.instrumentors.llamaindex import LlamaIndexInstrumentor
    from support.cassettes import Cassette, serve

    content_mode("SPAN_AND_EVENT")
    caplog.set_level(logging.DEBUG)
    inst = LlamaIndexInstrumentor()
    inst.instrument()
    try:
        with serve(Cassette(recordings / "openai" / "test_chat" / "test_chat.yaml")) as base_url:
            llm = LlamaOpenAI(model="gpt-3.5-turbo", api_key=API_KEY, api_base=base_url, max_retries=0,
                              default_headers={"X-Api-Key": API_KEY})
            llm.chat([ChatMessage(role="user", content="Tell me a joke about opentelemetry")])
    finally:
        inst.uninstrument()
    assert any(s.attributes.get("gen_ai.operation.name") == "chat" for s in spans())
    assert_clean(exported_text(spans, caplog=caplog))


@pytest.mark.parametrize("text,secret", [
    (f"Authorization: Bearer {API_KEY[3:]}", API_KEY[3:]),
    ('{"api_key": "abc123def456ghi"}', "abc123def456ghi"),
    ("curl -H 'x-api-key: 0123456789abcdef'", "0123456789abcdef"),
    ("https://h/v1?api-key=QWERTYUIOP12345&x=1", "QWERTYUIOP12345"),
    (f"my key is {API_KEY}.", API_KEY),
    ("basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("password=hunter2hunter2", "hunter2hunter2"),
    ("client_secret: 'cs_live_abcdefgh'", "cs_live_abcdefgh"),
])
def test_scrub_secrets_formats(text, secret):
    from llm_otel.core.content import scrub_secrets

    scrubbed = scrub_secrets(text)
    assert secret not in scrubbed and REDACTED in scrubbed


def test_scrub_secrets_leaves_prose_alone():
    from llm_otel.core.content import scrub_secrets

    prose = "The key point: ask the desk-lamp-maker; tokens: 12; a risk-assessment is basic."
    assert scrub_secrets(prose) == prose
