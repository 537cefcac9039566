"""A real, small tmpfs for disk-full tests (root only; skipped where mounting is impossible)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Iterator

import pytest


@contextlib.contextmanager
def mounted_tmpfs(path: str, size: str) -> Iterator[str]:
    """Mount a tmpfs of ``size`` (``256k``, ``2m``) on the new directory ``path``; unmount after."""
    os.makedirs(path)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=True)
