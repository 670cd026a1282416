#!/usr/bin/env bash
# One command for the whole suite: makes benchmarks/.venv (llm-otel[all] + the peers from
# requirements.txt; never your own env, the peers register `opentelemetry_instrumentor`
# entry points), puts the genai-openai peer (requirements-genai.txt) into an overlay folder
# only its own process sees, and runs run.py in the venv.
#   benchmarks/run.sh            full run (30-45 minutes on a busy 2-CPU machine)
#   benchmarks/run.sh --quick    a fast pass (about 6 minutes)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="${LLM_OTEL_BENCH_VENV:-$HERE/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.installed"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$HERE/requirements.txt" -nt "$STAMP" ] || [ "$HERE/requirements-genai.txt" -nt "$STAMP" ] \
    || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[all]" -r "$HERE/requirements.txt"
  rm -rf "$VENV/overlays/genai-openai"
  "$VENV/bin/python" -m pip install -q --no-deps --target "$VENV/overlays/genai-openai" -r "$HERE/requirements-genai.txt"
  touch "$STAMP"
fi
exec "$VENV/bin/python" "$HERE/run.py" "$@"
