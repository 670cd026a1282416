"""Cost of masking credentials, per string: before and after ``llm_otel.core.secrets``.

(Not named ``secrets.py``: run from this folder, it would shadow the standard library's
``secrets``, which pydantic imports.)

``python benchmarks/secrets_cost.py`` times ``scrub_secrets`` on plain prose, a 16 KB prompt
(prose, and JSON that mentions tokens and keys), and one string per secret shape; and
``content.to_json`` on a chat message list (the path every captured message takes). "before"
is ``core/content.py`` as it was just before ``core/secrets.py`` was added (read from git;
``--before REF`` to choose another commit), "after" is the working tree. Two values are
registered first, as an instrumented app's clients would. Prints a table and one JSON line
per figure: microseconds of CPU time per call, the best of ``--rounds`` rounds, before and
after alternating (on a shared machine the best is the least disturbed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import timeit
import types
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llm_otel.core import content, secrets  # noqa: E402

PROSE = ("The quarterly report covers revenue, churn and the roadmap for the next two releases; "
         "summarize it for the board in five bullet points and keep the tone neutral. ")
PROMPT_16K = (PROSE * 200)[:16384]
JSON_16K = (json.dumps({"model": "gpt-4o", "max_tokens": 256, "usage": {"prompt_tokens": 12, "total_tokens": 40},
                        "cache_key": "a1", "note": "the key point is the token budget"}) + "\n") * 90
JSON_16K = JSON_16K[:16384]

SHAPES: List[Tuple[str, str]] = [
    ("openai sk-proj", "sk-proj-4fQz8LmN0pRsT1uVwX2yZa3Bc4De5Fg6Hi7Jk8Lm"),
    ("anthropic sk-ant", "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-AbCdEf"),
    ("aws access key id", "AKIAIOSFODNN7EXAMPLE"),
    ("aws secret (named)", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("github ghp_", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("github_pat_", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123"),
    ("google AIza", "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"),
    ("stripe sk_live_", "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr"),
    ("slack xoxb-", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("jwt", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("azure key in a 401", "Access denied due to invalid subscription key. Key: 9f2b4c6d8e0a1b3c5d7e9f1a2b3c4d5e"),
    ("bearer header", "Authorization: Bearer 7f3a9c2e1b8d4f6a0e5c"),
    ("json api_key", '{"api_key": "abc123def456ghi789"}'),
    ("query string", "https://h.example/v1?api-key=QWERTYUIOP12345&x=1"),
    ("python repr", "Client(api_key='k-9d8c7b6a5f4e', timeout=30)"),
    ("registered value", "opaque-9c1e7a55f0b24d3e"),
]
MESSAGES = [{"role": "system", "parts": [{"type": "text", "content": "You are a careful assistant."}]},
            {"role": "user", "parts": [{"type": "text", "content": PROSE}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "lookup",
                                             "arguments": {"query": "churn", "limit": 5}}]}]


def old_content(ref: str) -> types.ModuleType:
    """``core/content.py`` at ``ref``, as a module (it imports only ``llm_otel.config``)."""
    source = subprocess.run(["git", "show", f"{ref}:src/llm_otel/core/content.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("content_before")
    exec(compile(source, f"{ref}:content.py", "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def default_before() -> str:
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "-1", "--",
                            "src/llm_otel/core/secrets.py"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return f"{added}^" if added else "HEAD"


def per_call_us(before: Callable[[], Any], after: Callable[[], Any], rounds: int) -> Tuple[float, float]:
    """CPU microseconds per call of each, the best of ``rounds`` alternating rounds."""
    timers = [timeit.Timer(fn, timer=time.process_time) for fn in (before, after)]
    numbers = [max(1, int(timer.autorange()[0] / 4)) for timer in timers]  # rounds of ~50 ms
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for side, timer in enumerate(timers):
            best[side] = min(best[side], timer.timeit(numbers[side]) / numbers[side] * 1e6)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="git ref of the 'before' content.py")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    ref = args.before or default_before()
    before = old_content(ref)
    secrets.register_secret("opaque-9c1e7a55f0b24d3e")
    secrets.register_secret("client-key-0f1e2d3c4b5a")

    cases: List[Tuple[str, str, Any]] = [("plain prose (170 chars)", "scrub", PROSE),
                                         ("16 KB prompt, prose", "scrub", PROMPT_16K),
                                         ("16 KB prompt, JSON naming tokens and keys", "scrub", JSON_16K)]
    cases += [(f"shape: {name}", "scrub", f"see {value} here") for name, value in SHAPES]
    cases.append(("chat messages -> to_json (3 messages)", "to_json", MESSAGES))

    rows: List[Dict[str, Any]] = []
    for name, kind, value in cases:
        if kind == "scrub":
            old, new = per_call_us(lambda: before.scrub_secrets(value), lambda: secrets.scrub_secrets(value),
                                   args.rounds)
            masked_before = before.scrub_secrets(value) != value
            masked_after = secrets.scrub_secrets(value) != value
        else:
            old, new = per_call_us(lambda: before.to_json(value, 16384), lambda: content.to_json(value, 16384),
                                   args.rounds)
            masked_before = masked_after = None
        rows.append({"case": name, "before_us": round(old, 2), "after_us": round(new, 2),
                     "masked_before": masked_before, "masked_after": masked_after})

    print(f"before = {ref}; {len(secrets._known_values())} secret values known after\n")
    print("| case | before µs | after µs | masked before | masked after |")
    print("|---|---:|---:|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['before_us']:.2f} | {row['after_us']:.2f} | "
              f"{_yes(row['masked_before'])} | {_yes(row['masked_after'])} |")
    print()
    for row in rows:
        print(json.dumps(row))


def _yes(flag: Any) -> str:
    return "" if flag is None else ("yes" if flag else "**no**")


if __name__ == "__main__":
    main()
