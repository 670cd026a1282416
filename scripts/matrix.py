"""Prove the declared range: the core and OpenAI tests on every CPython that llm-otel's
``requires-python`` admits and this machine has (``.[openai,test]``: the newest openai,
which LangChain's and LlamaIndex's bounds keep out of the main suite's .venv), the whole
suite but the Phoenix end-to-end and benchmark tests once with every dependency pinned at
its declared lower bound (scripts/floors.py, on the lowest Python; openai there at
LangChain's floor), once on an openai release from the middle of the
range (1.46-1.91: structured output without ``create``, no Responses API) and once on the
[openai] extra's own floor (1.40).

Run with the interpreter of the project's .venv (scripts/test.sh sets it up; its metadata is
what floors and ``requires-python`` are read from). Environments are made with uv, installed
from PyPI into .venv if missing, under .venv-matrix/. A Python the machine lacks is reported,
not failed. Ends with one ``matrix: N passed, N failed`` line; exits 1 if any run failed.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Optional, Tuple

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / ".venv-matrix"
TESTS = ["tests/core", "tests/openai"]
# at the floors, every instrumentor's and feature's tests (the end-to-end ones need Phoenix's
# own environment and the benchmarks' peers are the newest: both run in the main suite)
FLOOR_TESTS = ["tests", "--ignore=tests/e2e", "--ignore=tests/benchmarks"]
MIDDLE_OPENAI = "1.60.0"
MINORS = range(9, 16)
WORKERS = max(1, min(2, os.cpu_count() or 1))  # CI's machine has 2 cores  # CPython 3.9 ... 3.15, as far as requires-python admits them
_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def uv() -> str:
    return str(Path(sys.executable).with_name("uv"))


def install_uv() -> None:
    """uv, from PyPI into this environment, if it is not there yet."""
    if not Path(uv()).exists():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv>=0.5"], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"installing uv failed:\n{done.stderr}")


def find_python(minor: int) -> Optional[str]:
    """This machine's CPython 3.<minor>: the newest pyenv build, else one on PATH (a pyenv
    shim on PATH may name a version it does not run, so each candidate is asked)."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    builds = sorted(glob.glob(f"{pyenv}/versions/3.{minor}.*/bin/python3"),
                    key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/versions/")[1].split("/")[0])])
    for candidate in builds[::-1] + [shutil.which(f"python3.{minor}")]:
        if candidate and subprocess.run([candidate, "-c", f"import sys; sys.exit(sys.version_info[:2] != (3, {minor}))"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def run_tests(name: str, python: str, target: str, constraints: Optional[Path] = None,
              extra: Tuple[str, ...] = (), tests: Tuple[str, ...] = tuple(TESTS)) -> Tuple[str, int, int]:
    """Make .venv-matrix/<name> with ``python``, install ``target`` (the project with extras)
    and ``extra``, run ``tests``."""
    started = time.perf_counter()
    env_dir = ENVS / name
    shutil.rmtree(env_dir, ignore_errors=True)
    env_python = str(env_dir / "bin" / "python")
    # --seed: pip, which tests/core/test_packaging.py builds the wheel with
    made = subprocess.run([uv(), "venv", "-q", "--seed", "-p", python, str(env_dir)], capture_output=True, text=True)
    if made.returncode:
        return f"cannot make a virtualenv with {python}:\n{made.stderr[-2000:]}", 0, 1
    install = [uv(), "pip", "install", "-q", "-p", env_python, "-e", target, *extra]
    if constraints:
        install += ["-c", str(constraints)]
    done = subprocess.run(install, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        return f"install failed:\n{done.stderr[-3000:]}", 0, 1
    versions = subprocess.run([env_python, "-c", "import sys, openai, opentelemetry.sdk.version as s; "
                               "print(sys.version.split()[0], openai.__version__, s.__version__)"],
                              capture_output=True, text=True).stdout.split()
    proc = subprocess.run([env_python, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                          capture_output=True, text=True)
    closing = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {kind.rstrip("s"): int(n) for n, kind in _SUMMARY.findall(closing)}
    passed, failed = counts.get("passed", 0), counts.get("failed", 0) + counts.get("error", 0)
    if proc.returncode and not failed:
        failed = 1
    label = (f"python {versions[0]}, openai {versions[1]}, opentelemetry-sdk {versions[2]}: " if len(versions) == 3
             else "")
    detail = f"{label}{closing.strip('= ')} ({time.perf_counter() - started:.0f} s with the install)"
    if proc.returncode:
        detail += "\n" + "\n".join(line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR")))
    return detail, passed, failed


def openai_floor() -> str:
    """The lower bound the [openai] extra declares."""
    for raw in metadata.requires("llm-otel") or ():
        req = Requirement(raw)
        if req.name == "openai" and req.marker and req.marker.evaluate({"extra": "openai"}):
            return next(spec.version for spec in req.specifier if spec.operator == ">=")
    raise SystemExit("llm-otel declares no openai floor in its [openai] extra")


def main() -> int:
    requires_python = SpecifierSet(metadata.metadata("llm-otel")["Requires-Python"] or "")
    admitted = [m for m in MINORS if requires_python.contains(f"3.{m}.0")]
    install_uv()
    ENVS.mkdir(exist_ok=True)
    (ENVS / ".gitignore").write_text("*\n")
    floors = ENVS / "floors.txt"
    floors.write_text(subprocess.run([sys.executable, str(ROOT / "scripts" / "floors.py")], check=True,
                                     capture_output=True, text=True).stdout)
    runs = []
    for minor in admitted:
        python = find_python(minor)
        if python is None:
            print(f"[3.{minor}] not on this machine: not tested", flush=True)
            continue
        runs.append((f"3.{minor}", python, ".[openai,test]", None, (), tuple(TESTS)))
    if runs:
        lowest = runs[0][1]
        runs.insert(0, ("floor", lowest, ".[dev]", floors, (), tuple(FLOOR_TESTS)))  # the longest: first
        # [datalib]: this release decodes embeddings with numpy, which it does not require
        runs.append((f"openai-{MIDDLE_OPENAI}", lowest, ".[openai,test]", None,
                     (f"openai[datalib]=={MIDDLE_OPENAI}",), tuple(TESTS)))
        # the floor run has openai at LangChain's floor (langchain-openai needs a newer one):
        # the [openai] extra's own floor, for the core and OpenAI tests, with what that release
        # needs and does not require (numpy for embeddings; an httpx before 0.28, whose dropped
        # `proxies` argument it passes)
        runs.append((f"openai-{openai_floor()}", lowest, ".[openai,test]", None,
                     (f"openai[datalib]=={openai_floor()}", "httpx<0.28"), tuple(TESTS)))
    total_passed = total_failed = 0
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # each run is one pytest process
        results = [pool.submit(run_tests, *run) for run in runs]
        for (name, *_), result in zip(runs, results):
            detail, passed, failed = result.result()
            total_passed, total_failed = total_passed + passed, total_failed + failed
            print(f"[{name}] {'ok' if not failed else 'FAILED'}: {detail}", flush=True)
    print(f"matrix: {total_passed} passed, {total_failed} failed")
    return 1 if total_failed or not runs else 0


if __name__ == "__main__":
    sys.exit(main())
