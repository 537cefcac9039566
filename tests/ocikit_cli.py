"""Run the ocikit CLI in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys


def run_ocikit(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m ocikit ARGS``; with ``check``, a non-zero exit fails the test with stderr."""
    p = subprocess.run([sys.executable, "-m", "ocikit", *args], capture_output=True, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"ocikit {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
    return p
