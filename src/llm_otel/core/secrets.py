"""Credentials kept out of telemetry: by value, by shape and by name.

- **By value**: the secrets this process holds - environment variables named like a
  credential (:func:`is_secret_name`: ``OPENAI_API_KEY``, ``GITHUB_TOKEN``,
  ``DB_PASSWORD`` ...) and values given to :func:`register_secret` (an SDK client's
  ``api_key``) - are masked wherever they appear, whatever they look like.
- **By shape**: provider key formats (OpenAI, Anthropic, AWS, GitHub, Google, Stripe,
  Slack, Hugging Face, JWTs, PEM private keys, passwords in URLs), ``Bearer``/``Basic``
  credentials, and a long key-like run shortly after "key", "secret", "password" or
  "credential" on the same line (an Azure 32-hex key echoed in a 401 body).
- **By name**: ``name=value``, ``name: value``, ``"name": "value"`` and ``name='value'``
  (query strings, headers, JSON, Python reprs) where the name is a credential's.

Cost: every pattern starts with a literal, so ``re`` finds candidates with its fast
substring search, and runs only when cheap ``in`` tests (most behind a one-character
test) find its trigger. Case-insensitive patterns run on ``text.lower()``. Bare 32-hex
strings (trace ids, MD5 sums) are left alone unless one of those words comes just before.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from typing import Callable, Dict, List, Optional, Pattern, Tuple

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8  # shorter values would mask ordinary words
MAX_REGISTERED = 100  # register_secret keeps the most recent ones: each costs an `in` test per string


def _prefixed(prefix: str, body: str) -> Pattern[str]:
    """``prefix`` + ``body``, not glued to a letter or digit before it. The literal comes
    first so that ``re`` searches for it with its fast substring search."""
    literal = re.escape(prefix)
    return re.compile(f"{literal}(?<![A-Za-z0-9]{literal}){body}")


# ---- shapes (case-sensitive) ------------------------------------------------------------

_OPENAI = (_prefixed("sk-", r"[A-Za-z0-9_\-*]{8,}"),  # OpenAI sk-, sk-proj-, sk-svcacct-; Anthropic sk-ant-
           _prefixed("rk-", r"[A-Za-z0-9_\-*]{8,}"))
_STRIPE = (_prefixed("sk_", r"(?:live|test)_[A-Za-z0-9]{8,}"), _prefixed("rk_", r"(?:live|test)_[A-Za-z0-9]{8,}"))
_GITHUB = (_prefixed("gh", r"[pousr]_[A-Za-z0-9]{20,}"), _prefixed("github_pat_", r"[A-Za-z0-9_]{20,}"))
_HUGGING_FACE = _prefixed("hf_", r"[A-Za-z0-9]{30,}")
_GOOGLE = (_prefixed("AIza", r"[0-9A-Za-z_\-]{30,}"), _prefixed("ya29.", r"[0-9A-Za-z_\-]{20,}"))
_SLACK = (_prefixed("xox", r"[abeoprs]-[A-Za-z0-9-]{8,}"), _prefixed("xapp-", r"\d-[A-Za-z0-9-]{8,}"))
_SLACK_WEBHOOK = re.compile(r"(hooks\.slack\.com/services/)[A-Za-z0-9/_-]{8,}")
_AWS_KEY_ID = (_prefixed("AKIA", r"[A-Z0-9]{16}(?![A-Za-z0-9])"), _prefixed("ASIA", r"[A-Z0-9]{16}(?![A-Za-z0-9])"))
# header.payload.signature; the signature may be cut off
_JWT = re.compile(r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?")
# to the END line or, in a string cut before it, to the end
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[\s\S]*)")
_URL_PASSWORD = re.compile(r"(://[^\s/:@]{1,256}:)[^\s/@]{1,256}(?=@)")  # scheme://user:password@host
_DIGITS = "0123456789"


def _scrub_shapes(text: str) -> str:
    if "-" in text and "k-" in text:
        for pattern in _OPENAI:
            text = pattern.sub(REDACTED, text)
    if "_" in text:
        if "k_" in text:
            for pattern in _STRIPE:
                text = pattern.sub(REDACTED, text)
        if "gh" in text or "github_pat_" in text:
            for pattern in _GITHUB:
                text = pattern.sub(REDACTED, text)
        if "hf_" in text:
            text = _HUGGING_FACE.sub(REDACTED, text)
    if "AIza" in text or "ya29." in text:
        for pattern in _GOOGLE:
            text = pattern.sub(REDACTED, text)
    if "-" in text:
        if "xox" in text or "xapp-" in text:
            for pattern in _SLACK:
                text = pattern.sub(REDACTED, text)
        if "PRIVATE KEY-----" in text:
            text = _PEM.sub(REDACTED, text)
    if "/" in text:
        if "hooks.slack.com/" in text:
            text = _SLACK_WEBHOOK.sub(r"\1" + REDACTED, text)
        if "@" in text and "://" in text:
            text = _URL_PASSWORD.sub(r"\1" + REDACTED, text)
    if "IA" in text:
        for pattern in _AWS_KEY_ID:
            text = pattern.sub(REDACTED, text)
    if "J" in text and "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


# ---- case-insensitive rules, matched in text.lower() ------------------------------------

Rewrite = Callable[[str, "re.Match[str]"], Optional[str]]

# "Bearer <token>" / "Basic <base64>": the token must look like one (see _auth_scheme)
_AUTH_SCHEMES = tuple((word, re.compile(word + r"\s+([a-z0-9._~+/-]{8,}=*)")) for word in ("bearer", "basic"))
_TOKEN_EVIDENCE = re.compile(r"\d|[+/=_~]|[a-z][A-Z]")

# name=value, name: value, "name": "value", name='value', \"name\": \"value\" where the name
# holds the stem; is_secret_name decides. A name ending in "token(s)" is the only kind the
# "token" stem can make secret (others also hold "key", "secret" ... and are found there),
# which keeps token_count, token_type ... out of the callback.
_SEPARATOR = r"(?P<sep>\\?[\"']?[ \t]{0,4}[:=][ \t]{0,4})"
_VALUE = (r"(?P<value>\\\"(?:(?!\\\")[^\n])*\\\"|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
          r"|\[[^\[\]\n]{0,400}\]|\([^()\n]{0,400}\)|(?:(?:bearer|basic|token)[ \t]+)?(?:\[redacted\]|(?![\[{(])[^\s\"',;&\\}\]]+))")
_SCHEME_PREFIX = re.compile(r"(?i)(?:bearer|basic|token)[ \t]+")
_NOT_A_VALUE = frozenset(("", "[]", "()", "null", "none", "true", "false", "undefined", REDACTED.lower()))
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _pair_pattern(stem: str, rest_of_name: str = r"[\w.-]{0,40}?") -> Pattern[str]:
    return re.compile(stem + rest_of_name + _SEPARATOR + _VALUE)


# a key-like run (32+ characters, a digit among them) within 40 characters after the
# word, on the same line: "Incorrect API key provided: 0123...", "invalid subscription
# key 0123..." (Azure), "client secret ..."
def _near_pattern(word: str) -> Pattern[str]:
    return re.compile(word + r"s?\b[^\n]{0,40}?(?<![\w+/=-])(?P<run>[a-z0-9_+/=-]{32,})")


_PAIRS = {stem: _pair_pattern(stem) for stem in ("key", "secret", "passw", "auth", "credential", "cookie", "sig")}
_PAIRS["token"] = _pair_pattern("token", rest_of_name="s?")
_NEAR = {"key": _near_pattern("key"), "secret": _near_pattern("secret"), "passw": _near_pattern(r"passw(?:or)?d"),
         "credential": _near_pattern("credential")}


def _lower(text: str) -> str:
    """``text.lower()`` with the same offsets (a few characters, such as "İ", lower to two)."""
    lower = text.lower()
    if len(lower) == len(text):
        return lower
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)


def _rewrite(text: str, lower: str, pattern: Pattern[str], rewrite: Rewrite) -> str:
    """``text`` with each match of ``pattern`` in ``lower`` replaced by ``rewrite(text,
    match)`` (None keeps it)."""
    out: List[str] = []
    done = 0
    for match in pattern.finditer(lower):
        new = rewrite(text, match)
        if new is not None:
            out.append(text[done:match.start()])
            out.append(new)
            done = match.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _auth_scheme(text: str, match: "re.Match[str]") -> Optional[str]:
    token_start = match.start(1)
    if _TOKEN_EVIDENCE.search(text, token_start, match.end()) is None:
        return None  # "a basic introduction"
    return text[match.start():token_start] + REDACTED


def _pair(text: str, match: "re.Match[str]") -> Optional[str]:
    start = match.start()
    floor = max(0, start - 40)
    while start > floor and text[start - 1] in _NAME_CHARS:
        start -= 1
    if not is_secret_name(text[start:match.start("sep")]):
        return None
    value = text[match.start("value"):match.end()]
    quote = ""
    for mark in ('\\"', '"', "'"):
        if value.startswith(mark) and len(value) >= 2 * len(mark) and value.endswith(mark):
            quote, value = mark, value[len(mark):-len(mark)]
            break
    scheme = _SCHEME_PREFIX.match(value)
    kept = scheme.group(0) if scheme is not None and scheme.end() < len(value) else ""
    if value[len(kept):].strip().lower() in _NOT_A_VALUE:
        return None
    return f"{text[match.start():match.start('value')]}{quote}{kept}{REDACTED}{quote}"


def _near_word(text: str, match: "re.Match[str]") -> Optional[str]:
    run = match.start("run")
    if not any(ch in _DIGITS for ch in text[run:match.end()]):
        return None  # a long word, not a key
    return text[match.start():run] + REDACTED


Rules = Tuple[Tuple[str, Tuple[Tuple[Pattern[str], Rewrite], ...]], ...]
# (word, what runs when the lowered text holds it); name=value pairs only in a text that
# has a separator
_AUTH_RULES: Rules = tuple((word, ((pattern, _auth_scheme),)) for word, pattern in _AUTH_SCHEMES)
_RULES_WITHOUT_SEPARATOR: Rules = _AUTH_RULES + tuple(
    (word, ((pattern, _near_word),)) for word, pattern in _NEAR.items())
_RULES_WITH_SEPARATOR: Rules = _AUTH_RULES + tuple(
    (stem, ((pair, _pair),) + (((_NEAR[stem], _near_word),) if stem in _NEAR else ()))
    for stem, pair in _PAIRS.items())


def _scrub_case_insensitive(text: str) -> str:
    lower = _lower(text)
    rules = _RULES_WITH_SEPARATOR if "=" in text or ":" in text else _RULES_WITHOUT_SEPARATOR
    for word, patterns in rules:
        if word in lower:
            for pattern, rewrite in patterns:
                new = _rewrite(text, lower, pattern, rewrite)
                if new is not text:
                    text, lower = new, _lower(new)
    return text


def scrub_secrets(text: str) -> str:
    """``text`` with every credential it holds replaced by ``[REDACTED]``."""
    for value in _known_values():
        if value in text:
            text = text.replace(value, REDACTED)
    return _scrub_case_insensitive(_scrub_shapes(text))


# ---- names ----------------------------------------------------------------------------

_WORDS = re.compile(r"[A-Z0-9]+(?![a-z])|[A-Z]?[a-z0-9]+")
# the whole name, separators and case removed
_SECRET_NAMES = frozenset((
    "apikey", "xapikey", "token", "secret", "password", "passwd", "passphrase", "auth", "authorization",
    "proxyauthorization", "credential", "credentials", "cookie", "setcookie", "privatekey", "secretkey",
    "accesskey", "accesstoken", "refreshtoken", "authtoken", "apitoken", "idtoken", "sessiontoken",
    "bearertoken", "clientsecret", "sig", "signature", "bearer"))
# a word that makes any name a credential's: db_password, aws_secret_access_key, client_secret
_SECRET_WORDS = frozenset(("password", "passwords", "passwd", "passphrase", "passphrases", "secret", "secrets",
                           "credential", "credentials", "apikey", "apikeys", "privatekey", "privatekeys",
                           "authorization", "cookie", "cookies"))
# "<word>_token" that counts or marks tokens of text rather than holding one: max_token,
# eos_token (plural names - max_tokens, input_tokens - never end in "token")
_TEXT_TOKEN_WORDS = frozenset((
    "max", "min", "num", "eos", "bos", "pad", "unk", "sep", "cls", "mask", "special", "start", "end", "stop",
    "eot", "eom", "first", "last", "per", "each", "added", "decoder", "encoder", "vocab"))
# "<word>_tokens" that holds tokens one signs in with (the others count tokens of text)
_CREDENTIAL_TOKENS_WORDS = frozenset(("access", "refresh", "auth", "api", "bearer", "session", "id", "oauth"))
# "<word>_key" that keys data rather than unlocking anything: primary_key, cache_key, public_key
_DATA_KEY_WORDS = frozenset((
    "primary", "foreign", "sort", "partition", "cache", "dict", "map", "hash", "row", "object", "lookup", "group",
    "routing", "message", "idempotency", "composite", "unique", "index", "shard", "sharding", "public", "s3",
    "sorting", "join", "dedup", "dedupe", "deduplication", "translation", "i18n", "cursor", "config", "settings",
    "metadata", "state", "memory", "context", "output", "input", "prompt", "result", "response", "request", "data",
    "field", "column", "table", "record", "item", "entry", "label", "ref", "event"))


def is_secret_name(name: object) -> bool:
    """Whether a parameter, dict key, header or variable called ``name`` holds a credential.

    Case and separators do not matter (``apiKey``, ``X-Api-Key``, ``OPENAI_API_KEY``);
    names that count tokens (``max_tokens``, ``token_count``) or key data (``cache_key``)
    do not hold one.
    """
    return isinstance(name, str) and _is_secret_name(name)


@functools.lru_cache(maxsize=2048)
def _is_secret_name(name: str) -> bool:
    words = [w.lower() for w in _WORDS.findall(name)]
    if not words:
        return False
    joined = "".join(words)
    if joined in _SECRET_NAMES or not _SECRET_WORDS.isdisjoint(words):
        return True
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if last == "token":
        return before not in _TEXT_TOKEN_WORDS
    if last == "tokens":
        return before in _CREDENTIAL_TOKENS_WORDS
    if last in ("key", "keys"):
        return bool(before) and before not in _DATA_KEY_WORDS
    if last in ("auth", "signature"):
        return True
    return joined.endswith(("apikey", "accesstoken", "refreshtoken", "authtoken", "privatekey", "secretkey",
                            "clientsecret", "password"))


# ---- values ---------------------------------------------------------------------------

_registered: Dict[str, None] = {}  # insertion-ordered; dict writes are atomic: no lock to survive fork
_registrations = itertools.count(1)
_generation = 0  # changes on every registration
_known: Tuple[int, int, Tuple[str, ...]] = (-1, -1, ())  # (environment size, generation, values)
# os.environ's own dict: its len() is a C call, os.environ's a Python method (this runs per string)
_ENVIRON = getattr(os.environ, "_data", os.environ)


def register_secret(value: Optional[str]) -> None:
    """Mask ``value`` wherever it appears in telemetry from now on (an SDK client's key).

    Values shorter than 8 characters are ignored (they would mask ordinary words); the
    last 100 registered values are kept.
    """
    global _generation
    if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH or value in _registered:
        return
    _registered[value] = None
    while len(_registered) > MAX_REGISTERED:
        _registered.pop(next(iter(_registered)), None)
    _generation = next(_registrations)


def _known_values() -> Tuple[str, ...]:
    """The secret values to mask, longest first. Re-read when the environment gains or
    loses a variable or a value is registered (a value changed in place is not seen: the
    client that uses it registers it)."""
    global _known
    env_size, generation = len(_ENVIRON), _generation  # read before the values they guard
    if _known[0] == env_size and _known[1] == generation:
        return _known[2]
    found = list(_registered)
    for name, value in list(os.environ.items()):
        if len(value.strip()) >= MIN_SECRET_LENGTH and is_secret_name(name):
            found.append(value)
    # a value inside the mark itself would make every mark grow each time it is scrubbed
    values = tuple(sorted({value for value in found if value not in REDACTED}, key=len, reverse=True))
    _known = (env_size, generation, values)
    return values


def known_values() -> Tuple[str, ...]:
    """The secret values masked now; the same tuple object until the set changes."""
    return _known_values()


def longest_known() -> int:
    """The length of the longest secret value known (0 if none)."""
    values = _known_values()
    return len(values[0]) if values else 0


@functools.lru_cache(maxsize=4096)
def _key(name: str, values: Tuple[str, ...]) -> Tuple[str, bool]:
    return scrub_secrets(name), is_secret_name(name)


def scrub_key(name: str) -> Tuple[str, bool]:
    """A dict key as it may be recorded, and whether the value under it is a credential.
    Cached (keys repeat: "role", "content"), for keys up to 256 characters."""
    if len(name) > 256:
        return scrub_secrets(name), is_secret_name(name)
    return _key(name, _known_values())
