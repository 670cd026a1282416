#!/usr/bin/env bash
# One command for the whole suite: makes benchmarks/.venv (llm-otel[all] + the peers from
# requirements.txt; never /work/venv or your own env, the peers register
# `opentelemetry_instrumentor` entry points) and runs run.py in it.
#   benchmarks/run.sh            full run (about 10 minutes)
#   benchmarks/run.sh --quick    a fast pass
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="${LLM_OTEL_BENCH_VENV:-$HERE/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.installed"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$HERE/requirements.txt" -nt "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[all]" -r "$HERE/requirements.txt"
  touch "$STAMP"
fi
exec "$VENV/bin/python" "$HERE/run.py" "$@"
