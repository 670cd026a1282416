"""Print a pip/uv constraints file pinning every declared dependency at its lower bound.

Reads the installed metadata of llm-otel (so run it with the interpreter of an environment
that has the project installed): the runtime dependencies and every extra's, each pinned
``==`` the version its ``>=`` names (the highest, for a project two extras name: openai for
LangChain's). A marker other than the extra (``python_version``)
is kept, so one file serves every interpreter. CI installs the floor environment with it.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

_EXTRA = re.compile(r'\s*(and\s+)?extra\s*==\s*"[^"]*"\s*(and\s+)?')


def floor_constraints(dist: str = "llm-otel") -> list:
    lowest = {}  # (name, marker) -> the highest lower bound declared: [dev] installs every extra
    for raw in metadata.requires(dist) or ():
        req = Requirement(raw)
        if req.name == dist:  # the [all] / [dev] self-references
            continue
        lower = [spec.version for spec in req.specifier if spec.operator in (">=", "~=", "==")]
        if not lower:  # a cap only (e.g. for one Python): the pinned floor must respect it
            continue
        marker = _EXTRA.sub(" ", str(req.marker)).strip() if req.marker else ""
        key = (req.name, marker)
        if key not in lowest or Version(lower[0]) > Version(lowest[key]):
            lowest[key] = lower[0]
    return sorted(f"{name}=={version}" + (f"; {marker}" if marker else "") for (name, marker), version in lowest.items())


if __name__ == "__main__":
    sys.stdout.write("".join(line + "\n" for line in floor_constraints()))
