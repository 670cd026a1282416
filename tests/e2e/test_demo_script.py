"""scripts/demo.sh parses and answers --help without touching any environment.

(The examples it runs are exercised end to end by the Phoenix tests.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.sh"


def test_demo_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(DEMO)], check=True)


def test_demo_help_and_bad_option():
    help_ = subprocess.run(["bash", str(DEMO), "--help"], capture_output=True, text=True, timeout=10)
    assert help_.returncode == 0 and "--phoenix" in help_.stdout
    bad = subprocess.run(["bash", str(DEMO), "--bogus"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "unknown option" in bad.stderr
