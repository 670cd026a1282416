#!/usr/bin/env bash
# Install Phoenix (the local OTLP backend of the e2e tests and `demo.sh --phoenix`) into its
# own virtualenv, .venv-phoenix, from tests/e2e/requirements-phoenix.txt. Never into .venv:
# its pins are its own and it brings OpenInference's OpenAI instrumentor, whose
# `opentelemetry_instrumentor` entry point would patch the OpenAI SDK a second time.
# Does nothing when the installed requirements are current. Prints the `phoenix` path.
set -euo pipefail
cd "$(dirname "$0")/.."
# Phoenix needs Python >= 3.11 whatever the project's Python is (PYTHON may be 3.9): the first
# of PHOENIX_PYTHON, PYTHON, python3, python3.13, python3.12, python3.11 that is recent enough
PY=
for candidate in ${PHOENIX_PYTHON:-} ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        PY=$candidate
        break
    fi
done
if [ -z "$PY" ]; then
    echo "Phoenix needs Python >= 3.11 and none was found; set PHOENIX_PYTHON to one" >&2
    exit 1
fi
req=tests/e2e/requirements-phoenix.txt
stamp=.venv-phoenix/.installed-from
if ! { [ -x .venv-phoenix/bin/phoenix ] && cmp -s "$req" "$stamp"; }; then
    [ -x .venv-phoenix/bin/python ] || "$PY" -m venv .venv-phoenix
    echo '*' > .venv-phoenix/.gitignore  # keep the venv out of git
    .venv-phoenix/bin/pip install -q --upgrade pip >&2
    .venv-phoenix/bin/pip install -q -r "$req" >&2
    cp "$req" "$stamp"
fi
echo "$PWD/.venv-phoenix/bin/phoenix"
