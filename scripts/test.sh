#!/usr/bin/env bash
# Set up .venv from the project's own files and run the whole test suite.
#
# The end-to-end tests (tests/e2e) need a Phoenix server: it is installed into its own
# virtualenv, .venv-phoenix, from tests/e2e/requirements-phoenix.txt (reinstalled only when
# that file changes), in parallel with the project's install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

phoenix_venv() {
    local req=tests/e2e/requirements-phoenix.txt stamp=.venv-phoenix/.installed-from
    if [ -x .venv-phoenix/bin/phoenix ] && cmp -s "$req" "$stamp"; then
        return 0
    fi
    [ -x .venv-phoenix/bin/python ] || "$PY" -m venv .venv-phoenix
    echo '*' > .venv-phoenix/.gitignore  # keep the venv out of git
    .venv-phoenix/bin/pip install -q --upgrade pip >/dev/null
    .venv-phoenix/bin/pip install -q -r "$req"
    cp "$req" "$stamp"
}

phoenix_log=$(mktemp "${TMPDIR:-/tmp}/llm-otel-phoenix-install.XXXXXX")
phoenix_venv > "$phoenix_log" 2>&1 &
phoenix_pid=$!

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e ".[dev]"

if ! wait "$phoenix_pid"; then
    echo "installing Phoenix into .venv-phoenix failed:" >&2
    tail -n 30 "$phoenix_log" >&2
    exit 1
fi
rm -f "$phoenix_log"
export LLM_OTEL_PHOENIX="$PWD/.venv-phoenix/bin/phoenix"
exec .venv/bin/python -m pytest "$@"
