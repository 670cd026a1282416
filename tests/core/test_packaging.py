"""The wheel ships what the repo holds: every package, the instrumentors, the data files."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _packages_on_disk():
    found = set()
    for init in (ROOT / "src" / "llm_otel").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT / "src").parts))
    for init in (ROOT / "instrumentors").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT / "instrumentors").parts
        found.add(".".join(("llm_otel", "instrumentors") + rel))
    return found


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert _packages_on_disk() == listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools writes build/ into the tree it builds, and CI's version
    # matrix runs this test in two environments at once
    source = tmp_path_factory.mktemp("source") / "llm-otel"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__",
                                                                ".hypothesis", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(source)], check=True)
    (path,) = out.glob("llm_otel-*.whl")
    with zipfile.ZipFile(path) as zf:
        return set(zf.namelist()), zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()


def test_wheel_contains_core_and_instrumentors(wheel):
    names, _ = wheel
    for package in _packages_on_disk():
        assert package.replace(".", "/") + "/__init__.py" in names
    assert not any(n.startswith("instrumentors/") for n in names)  # only as llm_otel.instrumentors
    data = [p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src").rglob("*.json")]
    assert all(d in names for d in data)


def test_wheel_declares_the_instrumentor_entry_points(wheel):
    _, entry_points = wheel
    assert "openai = llm_otel.instrumentors.openai:OpenAIInstrumentor" in entry_points
    assert "langchain = llm_otel.instrumentors.langchain:LangChainInstrumentor" in entry_points
    assert "llama_index = llm_otel.instrumentors.llamaindex:LlamaIndexInstrumentor" in entry_points
