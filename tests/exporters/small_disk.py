"""A real full disk: a 64 KiB tmpfs that a test fills up and frees again.

Mounting needs root (CAP_SYS_ADMIN), which the test sandbox has; a test fails, with the
reason, where it cannot mount rather than pretend with a substitute.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path
from typing import Iterator


class SmallDisk:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / ".filler"

    def fill(self) -> None:
        """Take every free block; the files already there keep only their last block's slack."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)

    def free(self) -> None:
        self._filler.unlink()


@contextlib.contextmanager
def mounted_small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """Mount a 64 KiB tmpfs under ``tmp_path`` for the ``with`` block."""
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(root)], capture_output=True,
                             text=True)
    assert mounted.returncode == 0, f"cannot mount a 64 KiB tmpfs (needs root): {mounted.stderr.strip()}"
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)
