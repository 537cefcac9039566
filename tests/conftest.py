"""Shared fixtures: generated images in tmp_path, peer tools, real servers."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import pytest

from ocikit.testing import write_image, write_index
from ocikit.transports.layout import OCILayout

from servers import RunningServer, docker_registry, require  # noqa: F401  (re-exported for tests)




@pytest.fixture
def layout(tmp_path) -> OCILayout:
    """An empty OCI layout in tmp_path."""
    return OCILayout(str(tmp_path / "layout"), create=True)


@pytest.fixture
def multi_layout(tmp_path) -> OCILayout:
    """A layout with tag ``multi`` = a 3-platform OCI index and tag ``single`` = one amd64 image."""
    lay = OCILayout(str(tmp_path / "multi"), create=True)
    write_index(lay, "multi")
    write_image(lay, "single")
    return lay


@pytest.fixture
def registry(tmp_path) -> Iterator[RunningServer]:
    """Debian's docker-registry on a free 127.0.0.1 port."""
    with docker_registry(str(tmp_path)) as srv:
        yield srv


def run_ocikit(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ocikit CLI in a subprocess (as a user would)."""
    p = subprocess.run([sys.executable, "-m", "ocikit", *args], capture_output=True, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"ocikit {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
    return p


@pytest.fixture
def ocikit():
    return run_ocikit


@pytest.fixture
def peer():
    return require
