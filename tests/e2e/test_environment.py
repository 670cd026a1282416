"""The e2e setup keeps Phoenix apart from the project's environment.

Phoenix brings OpenInference's OpenAI instrumentor; if it were installed next to
llm-otel, ``opentelemetry-instrument`` would load it too and every OpenAI call would be
traced twice, so the e2e results would not be llm-otel's alone.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

from e2e_support import phoenix_executable


def test_only_llm_otel_instrumentors_are_registered_here():
    found = {ep.name: ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
    assert found, "llm-otel's own entry points are missing: is the package installed?"
    foreign = {name: value for name, value in found.items() if not value.startswith("llm_otel.")}
    assert not foreign, f"peer instrumentors in the test environment: {foreign}"


def test_phoenix_runs_from_another_environment():
    phoenix = Path(phoenix_executable()).resolve()
    assert not phoenix.is_relative_to(Path(sys.prefix).resolve()), phoenix
