"""Running peer command-line tools from tests."""

from __future__ import annotations

import json
import subprocess


def skopeo(*args: str) -> str:
    """``skopeo ARGS``; its stdout, or a failed assertion showing its stderr."""
    p = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def skopeo_digest(ref: str) -> str:
    """The Digest ``skopeo inspect`` reports for ``ref``."""
    return json.loads(skopeo("inspect", ref))["Digest"]
