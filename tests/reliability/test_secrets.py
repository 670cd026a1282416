"""Security and privacy: no credential in anything exported, content off by default,
the redaction hook and patterns, base64 images as placeholders, attribute length limits.

Everything the SDK pipeline exported (span names, attributes, events, status, resource,
metric attributes) and every log record is dumped to one text and scanned for the API
key and auth header values, with content capture off and on, also on error paths."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
from support.logs import as_json, events
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
    for record in events():  # the GenAI events (log records)
        out.append(repr(record.body))
        out.append(repr(dict(record.attributes or {})))
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
    system, user = json.loads(span.attributes["gen_ai.input.messages"])
    assert user["parts"][0]["content"] == f"mail {REDACTED} please"
    assert system["role"] == "system" and REDACTED in system["parts"][0]["content"]
    (event,) = [e for e in events("gen_ai.client.inference.operation.details")
                if REDACTED in as_json(e.attributes["gen_ai.input.messages"])]


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


# ---- every secret shape, everywhere ------------------------------------------------------

AZURE_KEY = "9f2b4c6d8e0a1b3c5d7e9f1a2b3c4d5e"  # 32 hex, as Azure issues them
# (name, text holding the secret, the secret): fake values in each provider's format
SHAPES = [
    ("openai project key", "key sk-proj-Xk29Lm0PqRsT1uVwX2yZa3Bc4De5Fg6Hi7Jk8Lm in it", "sk-proj-Xk29Lm0PqRsT1uVwX2yZa"),
    ("openai legacy key", "OPENAI=sk-4fQz8LmN0pRsT1uVwX2yZa3Bc4De5Fg6Hi7Jk8LmNo9PqR", "4fQz8LmN0pRsT1uVwX2y"),
    ("openai service account", "sk-svcacct-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56", "Ab12Cd34Ef56Gh78Ij90"),
    ("openai restricted key", "rk-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78", "Ab12Cd34Ef56Gh78Ij90"),
    ("anthropic key", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-AbCdEf_gh12", "Zx9Yw8Vu7Ts6Rq5Po4Nm3"),
    ("aws access key id", "aws id AKIAIOSFODNN7EXAMPLE set", "AKIAIOSFODNN7EXAMPLE"),
    ("aws temporary key id", "ASIAY34FZKBOKMUTVV7A from sts", "ASIAY34FZKBOKMUTVV7A"),
    ("aws secret key, named", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("aws secret key, json", '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI/K7MDENG"),
    ("github classic token", "push with ghp_16C7e42F292c6912E7710c838347Ae178B4a ok", "16C7e42F292c6912E7710c"),
    ("github oauth token", "gho_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c6912E7710c"),
    ("github user token", "ghu_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c6912E7710c"),
    ("github app token", "ghs_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c6912E7710c"),
    ("github refresh token", "ghr_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c6912E7710c"),
    ("github fine-grained token", "github_pat_11ABCDEFG0aBcDeFgHiJkLm_NoPqRsTuVwXyZ0123456789abcdefghijklmnopqrstuvwxyzABCDE",
     "11ABCDEFG0aBcDeFgHiJkLm"),
    ("google api key", "maps key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI", "SyDdI0hCZtE6vySjMm"),
    ("google oauth token", "ya29.a0AfH6SMBx3kXyZ_abcDEF123ghiJKL456", "a0AfH6SMBx3kXyZ"),
    ("stripe live key", "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "51H8xYzAbCdEfGhIjKlMnOpQr"),
    ("stripe test key", "sk_test_51H8xYzAbCdEfGhIjKlMnOpQr", "51H8xYzAbCdEfGhIjKlMnOpQr"),
    ("stripe restricted key", "rk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "51H8xYzAbCdEfGhIjKlMnOpQr"),
    ("slack bot token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOpQrStUvWx"),
    ("slack user token", "xoxp-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOpQrStUvWx"),
    ("slack app token", "xapp-1-A0123456789-1234567890123-abcdef0123456789", "A0123456789-1234567890123"),
    ("slack refresh token", "xoxr-123456789012-AbCdEfGhIjKlMnOpQrSt", "AbCdEfGhIjKlMnOpQrSt"),
    ("slack webhook", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
     "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("hugging face token", "HF hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "AbCdEfGhIjKlMnOpQrStUvWxYz"),
    ("jwt", "id eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
     "eyJzdWIiOiIxMjM0NTY3ODkwIn0"),
    ("azure key in a 401 body", f"Access denied due to invalid subscription key {AZURE_KEY} or wrong endpoint", AZURE_KEY),
    ("azure key, openai wording", f"Incorrect API key provided: {AZURE_KEY}.", AZURE_KEY),
    ("azure api-key header", f"api-key: {AZURE_KEY}", AZURE_KEY),
    ("bearer header", "Authorization: Bearer 7f3a9c2e1b8d4f6a0e5cQWERTY", "7f3a9c2e1b8d4f6a0e5c"),
    ("bare bearer token", "sent bearer abc.DEF-123_456~xyz", "abc.DEF-123_456~xyz"),
    ("basic header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ("json api_key", '{"api_key": "plainvalue-0192"}', "plainvalue-0192"),
    ("json password with spaces", '{"password": "correct horse battery staple"}', "horse battery"),
    ("escaped json", '{\\"Authorization\\": \\"Token q1w2e3r4t5\\"}', "q1w2e3r4t5"),
    ("x-api-key header", "curl -H 'X-Api-Key: qwerty0987poiu'", "qwerty0987poiu"),
    ("query string", "GET /v1/items?api_key=QWERTYUIOP12345&page=2", "QWERTYUIOP12345"),
    ("python repr", "Client(api_key='opaque0987value', timeout=30)", "opaque0987value"),
    ("env line", "export GITHUB_TOKEN=opaque0987value", "opaque0987value"),
    ("json list of keys", '{"api_keys": ["first-0192", "second-3847"]}', "second-3847"),
    ("access tokens", "access_tokens=at-0192,at-3847", "at-0192"),
    ("python auth tuple", "get(url, auth=('ada', 'pa55word-ada'))", "pa55word-ada"),
    ("password colon", "db password: hunter2hunter2", "hunter2hunter2"),
    ("client_secret", "client_secret=cs_9f8e7d6c5b4a", "cs_9f8e7d6c5b4a"),
    ("access_token", "access_token: 'at-1q2w3e4r5t'", "at-1q2w3e4r5t"),
    ("url password", "postgres://admin:s3cr3tpassw0rd@db.example.com:5432/app", "s3cr3tpassw0rd"),
    ("pem private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAzX9b\n-----END RSA PRIVATE KEY-----",
     "MIIEpAIBAAKCAQEAzX9b"),
]
SHAPE_IDS = [name for name, _, _ in SHAPES]


def _echo_chat(request: httpx.Request) -> httpx.Response:
    """A chat completion whose answer repeats the last message: the secret goes out again."""
    last = json.loads(request.content)["messages"][-1]["content"]
    return httpx.Response(200, request=request, json={
        "id": "chatcmpl-echo", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": last}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})


@pytest.mark.parametrize("name,text,secret", SHAPES, ids=SHAPE_IDS)
def test_scrub_secrets_masks_every_shape(name, text, secret):
    from llm_otel.core.secrets import scrub_secrets

    scrubbed = scrub_secrets(text)
    assert secret not in scrubbed and REDACTED in scrubbed
    assert scrub_secrets(scrubbed) == scrubbed  # masking twice changes nothing more


@pytest.mark.parametrize("mode", ["SPAN_AND_EVENT", "EVENT_ONLY"])
@pytest.mark.parametrize("name,text,secret", SHAPES, ids=SHAPE_IDS)
def test_every_shape_is_masked_in_llm_spans(name, text, secret, mode, content_mode, spans):
    """In the system instructions, the prompt and the model's answer, on the span and in
    its content event."""
    content_mode(mode)
    client_for(_echo_chat).chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": f"context: {text}"}, {"role": "user", "content": f"repeat: {text}"}])
    (span,) = spans()
    exported = exported_text(spans)
    assert secret not in exported
    recorded = [e.attributes for e in events("gen_ai.client.inference.operation.details")]
    if mode == "SPAN_AND_EVENT":
        recorded.append(span.attributes)
    # the system message is part of the chat's history: an input message, not system instructions
    assert recorded and all(REDACTED in as_json(attrs["gen_ai.input.messages"])
                            and REDACTED in as_json(attrs["gen_ai.output.messages"]) for attrs in recorded)
    assert ("repeat: " in exported) and ("context: " in exported)  # the rest of the content is kept


@pytest.mark.parametrize("name,text,secret", SHAPES, ids=SHAPE_IDS)
def test_every_shape_is_masked_in_track_content_jsonl_file_and_console(name, text, secret, spans, tmp_path):
    from llm_otel.exporters.console import ConsoleTreeExporter
    from llm_otel.exporters.jsonl import JsonlFileExporter

    @llm_otel.track
    def handle(note, options):
        return {"reply": f"done with {note}", "seen": [options]}

    assert handle(f"note {text}", {"raw": text})["reply"].endswith(text)
    exported = spans()
    assert secret not in exported_text(spans)
    assert REDACTED in exported[0].attributes["llm_otel.input"] and REDACTED in exported[0].attributes["llm_otel.output"]
    path = tmp_path / "traces.jsonl"
    jsonl = JsonlFileExporter(path)
    jsonl.export(exported)
    jsonl.shutdown()
    console = io.StringIO()
    ConsoleTreeExporter(out=console, color=False).export(exported)
    assert "handle" in path.read_text() and "handle" in console.getvalue()
    assert secret not in path.read_text() and secret not in console.getvalue()


def test_track_masks_arguments_named_like_credentials_whatever_their_type(spans):
    class Creds:
        def __repr__(self):
            return "Creds(opaque)"

    @llm_otel.track
    def connect(api_key, password, x_api_key, token, secret, authorization, config, **extra):
        return {"Authorization": authorization, "session": {"refresh_token": ["r1", "r2"]}, "user": "ada"}

    connect("k-opaque-1", 123456, ["list", "of", "parts"], {"nested": "dict"}, Creds(), "Token abc",
            {"db": {"host": "db.local", "passwd": "p@ss"}, "headers": {"X-Api-Key": "v"}, "max_tokens": 256},
            clientSecret="cs", access_token=b"bytes", token_count=7)
    (span,) = spans()
    inputs = json.loads(span.attributes["llm_otel.input"])
    assert inputs == {"api_key": REDACTED, "password": REDACTED, "x_api_key": REDACTED, "token": REDACTED,
                      "secret": REDACTED, "authorization": REDACTED,
                      "config": {"db": {"host": "db.local", "passwd": REDACTED}, "headers": {"X-Api-Key": REDACTED},
                                 "max_tokens": 256},
                      "extra": {"clientSecret": REDACTED, "access_token": REDACTED, "token_count": 7}}
    assert json.loads(span.attributes["llm_otel.output"]) == {
        "Authorization": REDACTED, "session": {"refresh_token": REDACTED}, "user": "ada"}


NOT_SECRETS = [
    "The key point: ask the desk-lamp-maker; a risk-assessment is basic, and a basic introduction helps.",
    "max_tokens: 256, token_count=12, tokens: 40, prompt_tokens=10; the author's key ideas",
    "request 123e4567-e89b-12d3-a456-426614174000 in trace 4bf92f3577b34da6a3ce929d0e0e4736, span 00f067aa0ba902b7",
    "fixed in commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (md5 5d41402abc4b2a76b9719d911017c592)",
    "cache_key=user-42 primary_key: 17 sort_key='name' public_key: ssh-ed25519",
    "visit https://example.com/docs?page=2&lang=en or mail ada@example.com",
]


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_ordinary_text_ids_and_hashes_are_kept(text, content_mode, spans):
    """Bare 32-hex strings (trace ids, MD5 sums) are kept: only a credential word just
    before one, or the process knowing the value, makes it a secret."""
    content_mode("SPAN_ONLY")
    client_for(_echo_chat).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    (span,) = spans()
    messages = json.loads(span.attributes["gen_ai.input.messages"])
    assert messages[0]["parts"][0]["content"] == text
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == text


@pytest.mark.parametrize("name,expected", [
    *[(n, True) for n in ("api_key", "apikey", "apiKey", "X-Api-Key", "x_api_key", "password", "passwd", "secret",
                          "client_secret", "clientSecret", "token", "access_token", "refresh_token", "id_token",
                          "Authorization", "Proxy-Authorization", "auth", "private_key", "credentials", "cookie",
                          "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GITHUB_TOKEN", "HF_TOKEN",
                          "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DB_PASSWORD", "Ocp-Apim-Subscription-Key",
                          "SecretAccessKey", "basic_auth", "user_token", "api_keys", "db_passwords", "access_tokens")],
    *[(n, False) for n in ("max_tokens", "maxTokens", "token_count", "tokens", "input_tokens", "eos_token",
                           "pad_token_id", "key", "keys", "cache_key", "primary_key", "public_key", "author",
                           "keyword", "tokenizer", "token_type", "cached_tokens", "total_tokens", "PWD", "SSH_AUTH_SOCK", "AWS_ACCESS_KEY_ID", "")],
])
def test_is_secret_name(name, expected):
    from llm_otel.core.secrets import is_secret_name

    assert is_secret_name(name) is expected


def test_values_the_process_holds_are_masked_wherever_they_appear(monkeypatch, spans):
    """A key from the environment (named like one) or registered by a client is masked even
    where no pattern would see it; a value under another name is not."""
    from llm_otel.core.secrets import register_secret

    monkeypatch.setenv("ACME_SERVICE_API_KEY", "plain-words-as-key")
    monkeypatch.setenv("ACME_SERVICE_URL", "https://acme.example")
    register_secret("registered-opaque-value")
    register_secret("short")  # too short to mask safely: ignored

    @llm_otel.track
    def call(url):
        return "used plain-words-as-key and registered-opaque-value at " + url + ", short reply"

    call("https://acme.example")
    (span,) = spans()
    output = span.attributes["llm_otel.output"]
    assert output == f"used {REDACTED} and {REDACTED} at https://acme.example, short reply"
    monkeypatch.delenv("ACME_SERVICE_API_KEY")
    call("https://acme.example")
    assert "plain-words-as-key" in spans()[-1].attributes["llm_otel.output"]  # the environment is read again


@contextlib.contextmanager
def _azure_401(body: bytes):
    """A real HTTP server that answers every request 401 with ``body``; yields its URL."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("message,known", [
    (f"Access denied due to invalid subscription key {AZURE_KEY} or wrong API endpoint.", None),
    (f"Incorrect API key provided: {AZURE_KEY}. You can find your API key in the portal.", None),
    (f"Unauthorized. Received api-key={AZURE_KEY}", None),
    (f"Unauthorized: {AZURE_KEY} is not valid for this resource", "environment"),
    (f"Unauthorized: {AZURE_KEY} is not valid for this resource", "registered"),
])
def test_azure_key_echoed_by_a_401_stays_out_of_status_and_exception_event(message, known, monkeypatch, content_mode,
                                                                          spans, caplog):
    """A real openai client (AzureOpenAI) against a local server whose 401 body echoes the
    key: by its wording, or, with no credential word near it, because the process knows
    the key (AZURE_OPENAI_API_KEY, or registered as a client's would be)."""
    from llm_otel.core.secrets import register_secret

    content_mode("SPAN_AND_EVENT")
    caplog.set_level(logging.DEBUG)
    key = AZURE_KEY if known is None else f"{AZURE_KEY[:-6]}{known[:6]}"  # distinct per case
    message = message.replace(AZURE_KEY, key)
    if known == "environment":
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
    elif known == "registered":
        register_secret(key)
    body = json.dumps({"error": {"code": "401", "message": message}}).encode()
    with _azure_401(body) as endpoint:
        client = openai.AzureOpenAI(api_key=key, azure_endpoint=endpoint, api_version="2024-10-21", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert key in str(caught.value)  # the caller's exception is untouched
    (span,) = spans()
    assert span.status.status_code.name == "ERROR" and "AuthenticationError" in span.status.description
    (event,) = [e for e in span.events if e.name == "exception"]
    assert "401" in event.attributes["exception.message"] and "AuthenticationError" in event.attributes[
        "exception.stacktrace"]
    for text in (span.status.description, event.attributes["exception.message"],
                 event.attributes["exception.stacktrace"], exported_text(spans, caplog=caplog)):
        assert key not in text
    assert REDACTED in event.attributes["exception.message"]
