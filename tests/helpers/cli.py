"""Run the ``ocikit`` command in tests: the one place that knows how.

- :func:`run_ocikit` runs ``python -m ocikit`` in a subprocess, as a user does (a fresh
  interpreter, real exit codes, signals, the environment);
- :func:`invoke` runs the same click command in-process (no new interpreter each time), for
  tests that run many commands and need nothing a subprocess gives;
- :func:`run_json` is :func:`run_ocikit` with ``--format json``, its stdout parsed;
- :func:`expect_failure` runs a command that must fail and checks the one-line error it prints.

All return a :class:`subprocess.CompletedProcess` (bytes, or text with ``text=True``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

OCIKIT = (sys.executable, "-m", "ocikit")
"""The command line that runs ocikit with this interpreter (for ``Popen`` in tests that need one)."""


def run_ocikit(*args: str, input: bytes | str | None = None, check: bool = True, text: bool = False,
               env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m ocikit ARGS``; with ``check``, a non-zero exit fails the test showing stdout and stderr.

    ``env``: variables set on top of this process's environment."""
    p = subprocess.run([*OCIKIT, *args], capture_output=True, input=input, text=text, timeout=timeout,
                       env={**os.environ, **env} if env is not None else None)
    if check and p.returncode != 0:
        raise AssertionError(f"ocikit {' '.join(args)} exited {p.returncode}:\n{_s(p.stdout)}\n{_s(p.stderr)}")
    return p


def invoke(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``ocikit ARGS`` in-process (click's runner); stdout and stderr as bytes; with ``check``, a
    non-zero exit fails the test with its stderr."""
    from click.testing import CliRunner

    from ocikit.cli.main import cli

    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    p = subprocess.CompletedProcess(["ocikit", *args], r.exit_code, r.stdout_bytes, r.stderr_bytes or b"")
    if check and p.returncode != 0:
        raise AssertionError(f"ocikit {' '.join(args)} exited {p.returncode}: {_s(p.stderr)}")
    return p


def run_json(*args: str, check: bool = True) -> tuple[int, dict[str, Any]]:
    """``ocikit --format json ARGS``: the exit code and the parsed JSON document it printed."""
    p = run_ocikit("--format", "json", *args, check=check, text=True)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"not JSON ({p.returncode}): {p.stdout!r} {p.stderr!r}") from None


def expect_failure(*args: str, match: str, code: int | None = None, input: bytes | str | None = None,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``ocikit ARGS`` (a subprocess) that must fail as a user is promised: a non-zero exit
    (exactly ``code`` if given) and stderr of one line, matching the regular expression ``match``."""
    p = run_ocikit(*args, input=input, check=False, text=True, env=env)
    assert p.returncode != 0, f"ocikit {' '.join(args)} succeeded:\n{p.stdout}"
    if code is not None:
        assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"not a one-line error:\n{p.stderr}"
    assert re.search(match, lines[0]), f"stderr does not match {match!r}:\n{p.stderr}"
    return p


def _s(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
