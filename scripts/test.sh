#!/usr/bin/env bash
# Set up .venv from the project's own files and run the whole test suite.
#
# The end-to-end tests (tests/e2e) need a Phoenix server: scripts/setup_phoenix.sh installs
# it into its own virtualenv, .venv-phoenix, in parallel with the project's install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

phoenix_log=$(mktemp "${TMPDIR:-/tmp}/llm-otel-phoenix-install.XXXXXX")
scripts/setup_phoenix.sh > "$phoenix_log" 2>&1 &
phoenix_pid=$!

[ -x .venv/bin/python ] || "$PY" -m venv .venv
install_log=$(mktemp "${TMPDIR:-/tmp}/llm-otel-install.XXXXXX")
if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e ".[dev]"; } >"$install_log" 2>&1; then
    echo "installing the project into .venv failed:" >&2
    tail -n 40 "$install_log" >&2
    exit 1
fi
rm -f "$install_log"
cp pyproject.toml .venv/.demo-installed-from  # [dev] includes [all]: scripts/demo.sh need not reinstall

if ! wait "$phoenix_pid"; then
    echo "installing Phoenix into .venv-phoenix failed:" >&2
    tail -n 30 "$phoenix_log" >&2
    exit 1
fi
rm -f "$phoenix_log"
export LLM_OTEL_PHOENIX="$PWD/.venv-phoenix/bin/phoenix"
exec .venv/bin/python -m pytest "$@"
