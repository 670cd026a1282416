"""Without the recorded traffic the suite stops at once with one plain message."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_missing_recordings_stop_the_run_with_a_clear_message(tmp_path):
    env = {**os.environ, "LLM_OTEL_RECORDINGS": str(tmp_path / "nowhere")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/finetune", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4  # pytest's usage error: nothing ran
    assert f"not at {tmp_path / 'nowhere'}" in proc.stderr and "LLM_OTEL_RECORDINGS" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
