"""End-to-end fixtures: a real Phoenix server (session-wide, always stopped) and the
stand-in OpenAI server. The helpers live in e2e_support.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from e2e_support import PHOENIX_START_TIMEOUT, Phoenix, StandIn, _free_port, phoenix_executable, standin_server


@pytest.fixture(scope="session")
def phoenix():
    """``phoenix serve`` on free ports with a throwaway SQLite working dir; always stopped."""
    executable = phoenix_executable()
    workdir = Path(tempfile.mkdtemp(prefix="llm-otel-phoenix-"))
    server = Phoenix(http_port=_free_port(), grpc_port=_free_port(), log_path=workdir / "phoenix.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
    env.update({
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(server.http_port),
        "PHOENIX_GRPC_PORT": str(server.grpc_port),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
        "PHOENIX_LOG_SQL": "false",
    })
    log = open(server.log_path, "wb")
    proc = subprocess.Popen([executable, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=workdir)
    try:
        deadline = time.monotonic() + PHOENIX_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"phoenix serve exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"phoenix serve not healthy after {PHOENIX_START_TIMEOUT}s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def standin():
    """The stand-in OpenAI server, with a journal of what it served."""
    journal: list = []
    server, url = standin_server.start(journal=journal)
    try:
        yield StandIn(url, server.server_address[1], journal)
    finally:
        server.shutdown()
        server.server_close()


