"""Peer tools in tests: find them (:func:`require`), run skopeo, read a manifest digest through it.

A peer that is missing skips its test on a developer's machine and fails it under CI, where
``make test`` (``.ci/install-peers.sh``) installs every peer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from ocikit.core.digest import Digest


def require(tool: str) -> str:
    """The path of a peer tool; fails under CI (make test installs them), skips elsewhere."""
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"peer tool {tool!r} is not installed (make test installs it)")
    pytest.skip(f"peer tool {tool!r} is not installed")
    raise AssertionError  # unreachable


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``skopeo --insecure-policy ARGS`` (text output); with ``check``, a failure fails the test with its stderr."""
    exe = require("skopeo")
    p = subprocess.run([exe, "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {p.stderr}")
    return p


def skopeo_inspect(ref: str, *extra: str) -> dict[str, Any]:
    """``skopeo inspect`` of ``ref`` (any transport; TLS not verified), parsed."""
    return json.loads(skopeo("inspect", "--tls-verify=false", *extra, ref).stdout)


def skopeo_raw(ref: str, *extra: str) -> bytes:
    """The exact bytes ``skopeo inspect --raw`` prints for ``ref`` (the manifest; with ``--config``, the config)."""
    exe = require("skopeo")
    p = subprocess.run([exe, "--insecure-policy", "inspect", "--raw", "--tls-verify=false", *extra, ref],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout


def skopeo_digest(ref: str) -> str:
    """The digest of the manifest skopeo reads for ``ref``, computed here from its raw bytes."""
    return str(Digest.of(skopeo_raw(ref)))


def oci_image_tool_validate(layout: str, tag: str, *, check: bool = True) -> subprocess.CompletedProcess:
    """``oci-image-tool validate --type image --ref name=TAG LAYOUT`` (text output); with ``check``,
    a failure fails the test showing what the tool said ("Validation succeeded" is required).

    oci-image-tool 1.0.0-rc1 filters index.json entries with a loop that deletes from the slice
    it walks and skips the entry after each deletion, so with three or more entries a single
    ``--ref name=TAG`` leaves a neighbour behind ("is not unique"), whatever wrote the layout.
    Every ``--ref`` runs the filter once more, so repeating it once per entry converges.
    """
    exe = require("oci-image-tool")
    with open(os.path.join(layout, "index.json"), "rb") as f:
        entries = len(json.load(f).get("manifests", []))
    refs = [a for _ in range(max(entries, 1)) for a in ("--ref", f"name={tag}")]
    p = subprocess.run([exe, "validate", "--type", "image", *refs, layout], capture_output=True, text=True)
    if check:
        out = p.stdout + p.stderr
        assert p.returncode == 0 and "Validation succeeded" in out, out
    return p


def sh(*args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run a command (a peer tool, openssl, a pipeline through ``sh -c``); stdout and stderr as bytes.
    With ``check``, a non-zero exit fails the test showing the end of its stderr."""
    p = subprocess.run(list(args), capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.decode(errors='replace')[-2000:]}"
                             f"{p.stdout.decode(errors='replace')[-500:]}")
    return p
