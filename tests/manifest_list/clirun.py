"""Run the ocikit CLI in-process (click's runner): the same command code, without a new interpreter each time."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from ocikit.cli.main import cli


@dataclass
class Ran:
    returncode: int
    stdout: bytes
    stderr: bytes


def invoke(*args: str, check: bool = True) -> Ran:
    """``ocikit ARGS...``; with ``check``, a non-zero exit fails the test with its stderr."""
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    ran = Ran(r.exit_code, r.stdout_bytes, r.stderr_bytes or b"")
    if check and ran.returncode != 0:
        raise AssertionError(f"ocikit {' '.join(args)} exited {ran.returncode}: {ran.stderr.decode()}")
    return ran
