"""Helpers for the registry tests: run skopeo, read digests through it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from servers import require


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = require("skopeo")
    p = subprocess.run([exe, "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {p.stderr}")
    return p


def skopeo_inspect(ref: str, *extra: str) -> dict[str, Any]:
    return json.loads(skopeo("inspect", "--tls-verify=false", *extra, ref).stdout)


def skopeo_raw_digest(ref: str) -> str:
    from ocikit.digest import Digest
    exe = require("skopeo")
    p = subprocess.run([exe, "inspect", "--raw", "--tls-verify=false", ref], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return str(Digest.of(p.stdout))


def run(coro: Any) -> Any:
    return asyncio.run(coro)
