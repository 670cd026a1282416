"""The one rule of the architecture, enforced: instrumentors extract, the core records.

Under instrumentors/ nothing imports llm-otel past its door (``llm_otel.core``, the
package itself), nothing imports OpenTelemetry's API (only ``opentelemetry.instrumentation``,
the entry-point base machinery), nothing reads llm-otel's configuration, and no code names a
telemetry key: attribute names live in the core (``core/semconv.py``, ``core/mapping.py``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

INSTRUMENTORS = Path(__file__).resolve().parents[2] / "instrumentors"
FILES = sorted(INSTRUMENTORS.rglob("*.py"))

# a string that names an attribute, event or metric of the conventions or of our own
_KEY = re.compile(r"^(?:gen_ai|llm_otel|openinference)\.[a-z_]|^openai\.(?:request|response|api)\."
                  r"|^(?:error\.type|server\.address|server\.port|session\.id|user\.id|exception\.[a-z]+)$")


def _docstrings(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _imports(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _violations(path: Path) -> List[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(INSTRUMENTORS.parent)
    out = []
    for line, module in _imports(tree):
        if module.startswith("llm_otel") and module != "llm_otel.core":
            out.append(f"{where}:{line}: imports {module} (only llm_otel.core is the door)")
        if module.startswith("opentelemetry") and not module.startswith("opentelemetry.instrumentation"):
            out.append(f"{where}:{line}: imports {module} (OpenTelemetry's API is the core's)")
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if _KEY.search(node.value):
                out.append(f"{where}:{node.lineno}: names the telemetry key {node.value!r}")
        if isinstance(node, ast.Attribute) and node.attr in ("settings", "reload") and \
                isinstance(node.value, ast.Name) and node.value.id == "config":
            out.append(f"{where}:{node.lineno}: reads llm-otel's configuration")
    return out


def test_there_are_instrumentors_to_check():
    assert {p.parent.name for p in FILES} >= {"openai", "langchain", "llamaindex"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(INSTRUMENTORS)))
def test_instrumentors_reach_llm_otel_only_through_the_core_door(path):
    assert _violations(path) == []


def test_the_check_catches_what_it_forbids(tmp_path):
    """The rule's own test: a file breaking each clause is reported for each."""
    bad = INSTRUMENTORS / "_boundary_probe.py"
    bad.write_text("from llm_otel.core.recorder import Recorder\nfrom opentelemetry import trace\n"
                   "from llm_otel import config\nKEY = 'gen_ai.request.model'\nOTHER = 'error.type'\n"
                   "x = config.settings()\n")
    try:
        found = "\n".join(_violations(bad))
    finally:
        bad.unlink()
    for fragment in ("imports llm_otel.core.recorder", "imports opentelemetry", "imports llm_otel ",
                     "'gen_ai.request.model'", "'error.type'", "configuration"):
        assert fragment in found, fragment
