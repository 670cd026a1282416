"""The examples' local OpenAI-compatible stand-in server, for tests that need real HTTP
with responses shaped by the request (tool calls, batches, embeddings) rather than a
fixed recording."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import standin_server  # noqa: E402 - shipped with the examples, not a package


@contextlib.contextmanager
def running_standin() -> Iterator[Tuple[str, List[dict]]]:
    """Serve the stand-in on 127.0.0.1; yields its ``/v1`` base URL and its request journal."""
    journal: List[dict] = []
    server, url = standin_server.start(journal=journal)
    try:
        yield url, journal
    finally:
        server.shutdown()
        server.server_close()
