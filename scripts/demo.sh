#!/usr/bin/env bash
# See llm-otel's traces in two minutes.
#
#   scripts/demo.sh                       traces printed as trees in this terminal
#   scripts/demo.sh --phoenix             traces sent to a local Phoenix (installed into
#                                         .venv-phoenix); prints the UI URL and keeps Phoenix
#                                         up until Ctrl-C, with or without a terminal
#   scripts/demo.sh --phoenix --no-wait   the same, then stops Phoenix at once
#
# Sets up .venv (pip install -e ".[all]"), then runs examples/openai_chat.py and
# examples/track_pipeline.py under `opentelemetry-instrument`. With OPENAI_API_KEY set they
# call the OpenAI API (OPENAI_BASE_URL for another OpenAI-compatible server); without it,
# a local stand-in server (examples/standin_server.py: deterministic replies, not a model).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

phoenix=false
wait_for_ctrl_c=true
for arg in "$@"; do
    case "$arg" in
        --phoenix) phoenix=true ;;
        --no-wait) wait_for_ctrl_c=false ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $arg (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# -- the project's environment (reinstalled only when pyproject.toml changes) --------------
if ! { [ -x .venv/bin/opentelemetry-instrument ] && cmp -s pyproject.toml .venv/.demo-installed-from; }; then
    say "setting up .venv (pip install -e \".[all]\")"
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e ".[all]"
    cp pyproject.toml .venv/.demo-installed-from
fi

pids=()
cleanup() {
    set +e  # under set -e a failing command here would turn Ctrl-C's 130 into 1
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    if [ -n "${phoenix_dir:-}" ]; then  # a process still writing there makes the first try fail
        rm -rf "$phoenix_dir" 2>/dev/null || { sleep 1; rm -rf "$phoenix_dir"; }
    fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for() {  # URL, seconds, what
    local deadline=$((SECONDS + $2))
    until .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then echo "$3 did not come up at $1" >&2; exit 1; fi
        sleep 0.5
    done
}

# -- where the LLM calls go -------------------------------------------------------------------
if [ -n "${OPENAI_API_KEY:-}" ]; then
    say "calling ${OPENAI_BASE_URL:-the OpenAI API} with your OPENAI_API_KEY"
elif [ -n "${OPENAI_BASE_URL:-}" ]; then
    say "calling the OpenAI-compatible server at $OPENAI_BASE_URL"
else
    port=$(free_port)
    .venv/bin/python examples/standin_server.py --port "$port" >/dev/null &
    pids+=($!)
    export OPENAI_BASE_URL="http://127.0.0.1:$port/v1" OPENAI_API_KEY="standin-no-key"
    wait_for "$OPENAI_BASE_URL/models" 20 "the stand-in server"
    say "no OPENAI_API_KEY: using the local stand-in server at $OPENAI_BASE_URL (deterministic replies, not a model)"
fi

# -- where the traces go ----------------------------------------------------------------------
export OTEL_SERVICE_NAME=${OTEL_SERVICE_NAME:-llm-otel-demo}
export OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none
if $phoenix; then
    say "starting Phoenix (first run installs it into .venv-phoenix; that takes a few minutes)"
    phoenix_bin=${LLM_OTEL_PHOENIX:-$(scripts/setup_phoenix.sh)}
    phoenix_dir=$(mktemp -d "${TMPDIR:-/tmp}/llm-otel-demo-phoenix.XXXXXX")
    ui_port=${PHOENIX_PORT:-6006}
    PHOENIX_WORKING_DIR="$phoenix_dir" PHOENIX_HOST=127.0.0.1 PHOENIX_PORT="$ui_port" \
        PHOENIX_GRPC_PORT="${PHOENIX_GRPC_PORT:-$(free_port)}" PHOENIX_TELEMETRY_ENABLED=false \
        "$phoenix_bin" serve >"$phoenix_dir/phoenix.log" 2>&1 &
    phoenix_pid=$!
    pids+=("$phoenix_pid")
    wait_for "http://127.0.0.1:$ui_port/healthz" 90 "Phoenix"
    export OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf
    export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:$ui_port/v1/traces"
    export OTEL_RESOURCE_ATTRIBUTES="openinference.project.name=llm-otel-demo"
    # Phoenix is where you read prompts and answers, so record them for this demo
    export OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=${OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT:-true}
else
    export OTEL_TRACES_EXPORTER=${OTEL_TRACES_EXPORTER:-llm_otel_console}
fi

for example in openai_chat.py track_pipeline.py; do
    say "opentelemetry-instrument python examples/$example"
    .venv/bin/opentelemetry-instrument .venv/bin/python "examples/$example"
done

if $phoenix; then
    say "Phoenix UI: http://127.0.0.1:$ui_port  (project \"llm-otel-demo\")"
    if $wait_for_ctrl_c; then
        echo "Phoenix keeps running until you press Ctrl-C (--no-wait: stop it at once)."
        wait "$phoenix_pid" || true
        echo "Phoenix stopped by itself; its log was $phoenix_dir/phoenix.log" >&2
        tail -n 20 "$phoenix_dir/phoenix.log" >&2 || true
        exit 1
    fi
fi
