"""Hypothesis strategies for odd inputs, shared by the fuzz tests: mostly well-typed
values, sometimes anything (wrong types, None, huge and non-UTF-8 strings, base64 images,
broken JSON)."""

from __future__ import annotations

import inspect

from hypothesis import strategies as st
from openai.resources.chat import Completions

DATA_URL = "data:image/png;base64," + "iVBORw0KGgo" * 3000
HUGE = "ü" * 300_000
ODD_STRINGS = st.sampled_from(["", "\ud800", "caf\udce9", "\x00nul", HUGE, DATA_URL, "🦜" * 10, "null", "{", "-1"])
TEXT = st.one_of(st.text(max_size=20), ODD_STRINGS)
INTS = st.one_of(st.integers(-5, 10_000), st.integers(-2**70, 2**70))
NUMBERS = st.one_of(INTS, st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
ANY = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                   max_leaves=6)


def maybe(strategy):
    """Mostly the right type, sometimes anything at all."""
    return st.one_of(strategy, strategy, ANY)


def obj(**fields):
    return st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})


ARGS_JSON = st.one_of(TEXT, st.sampled_from(['{"a": ', '{"a": 1}', "[]", "null", '{"x": "\\ud800"}', "{}" * 1000]))
FUNCTION = obj(name=TEXT, arguments=ARGS_JSON)
TOOL_CALL = obj(id=TEXT, type=st.sampled_from(["function", "custom"]), index=INTS, function=FUNCTION,
                custom=obj(name=TEXT, input=TEXT))
MESSAGE = obj(role=st.sampled_from(["assistant", "tool", "user"]), content=TEXT, refusal=TEXT,
              tool_calls=st.lists(TOOL_CALL, max_size=3), function_call=FUNCTION)
USAGE = obj(prompt_tokens=INTS, completion_tokens=INTS, total_tokens=INTS, input_tokens=INTS, output_tokens=INTS,
            prompt_tokens_details=obj(cached_tokens=INTS), input_tokens_details=obj(cached_tokens=INTS),
            completion_tokens_details=obj(reasoning_tokens=INTS), output_tokens_details=obj(reasoning_tokens=INTS))
CHOICE = obj(index=st.integers(0, 3), finish_reason=st.sampled_from(["stop", "length", "tool_calls", None]),
             message=MESSAGE, delta=MESSAGE, text=TEXT, logprobs=ANY)
CHAT_BODY = st.one_of(obj(id=TEXT, object=TEXT, created=INTS, model=TEXT, choices=st.lists(CHOICE, max_size=3),
                          usage=USAGE, service_tier=TEXT, system_fingerprint=TEXT), ANY)
EMBEDDINGS_BODY = st.one_of(obj(object=TEXT, model=TEXT, usage=USAGE, data=st.lists(
    obj(object=TEXT, index=INTS, embedding=st.one_of(st.lists(NUMBERS, max_size=8), TEXT)), max_size=3)), ANY)
OUTPUT_ITEM = obj(type=st.sampled_from(["message", "function_call", "reasoning", "refusal", "web_search_call"]),
                  id=TEXT, role=TEXT, status=TEXT, name=TEXT, call_id=TEXT, arguments=ARGS_JSON,
                  content=st.lists(obj(type=st.sampled_from(["output_text", "refusal"]), text=TEXT, refusal=TEXT),
                                   max_size=2),
                  summary=st.lists(obj(type=st.just("summary_text"), text=TEXT), max_size=2))
RESPONSES_BODY = st.one_of(obj(id=TEXT, object=TEXT, model=TEXT, status=TEXT, output=st.lists(OUTPUT_ITEM, max_size=3),
                               usage=USAGE, incomplete_details=obj(reason=TEXT), error=ANY), ANY)

PART = st.one_of(
    obj(type=st.just("text"), text=TEXT),
    obj(type=st.just("image_url"), image_url=obj(url=st.sampled_from([DATA_URL, "https://x.test/a.png", ""]),
                                                 detail=TEXT)),
    obj(type=st.just("input_audio"), input_audio=obj(data=TEXT, format=TEXT)),
    obj(type=st.just("file"), file=obj(file_id=TEXT, filename=TEXT)),
    ANY)
REQUEST_MESSAGE = st.fixed_dictionaries(
    {"role": maybe(st.sampled_from(["user", "system", "developer", "assistant", "tool", "function"]))},
    optional={"content": maybe(st.one_of(TEXT, st.lists(PART, max_size=3))), "tool_calls": maybe(
        st.lists(TOOL_CALL, max_size=2)), "tool_call_id": maybe(TEXT), "name": maybe(TEXT)})
TOOL_DEF = obj(type=st.just("function"), function=obj(name=TEXT, description=TEXT, parameters=ANY))
CHAT_OPTIONAL = {"temperature": maybe(NUMBERS), "top_p": maybe(NUMBERS), "max_tokens": maybe(INTS),
                 "max_completion_tokens": maybe(INTS), "n": maybe(INTS), "seed": maybe(INTS),
                 "stop": maybe(st.one_of(TEXT, st.lists(TEXT, max_size=3))),
                 "tools": maybe(st.lists(TOOL_DEF, max_size=2)),
                 "response_format": maybe(obj(type=st.sampled_from(["json_object", "json_schema", "text"]))),
                 "service_tier": maybe(TEXT), "user": maybe(TEXT)}
# only the arguments this openai's create() takes (1.40 has no max_completion_tokens): one it
# does not know is refused by the signature before anything runs, so there is no call to trace
_CREATE_TAKES = inspect.signature(Completions.create).parameters
CHAT_KWARGS = st.fixed_dictionaries(
    {"model": maybe(TEXT), "messages": maybe(st.lists(REQUEST_MESSAGE, max_size=4))},
    optional={name: value for name, value in CHAT_OPTIONAL.items() if name in _CREATE_TAKES})
MODES = st.sampled_from(["NO_CONTENT", "SPAN_AND_EVENT"])


class Unprintable:
    """An argument whose __str__ and __repr__ raise, and whose attributes explode."""

    def __str__(self):
        raise ValueError("no str for you")

    __repr__ = __str__

    def __getattr__(self, name):
        raise RuntimeError(f"no attribute {name}")
