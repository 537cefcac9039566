"""Shared fixtures: generated images in tmp_path, peer tools, real servers."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ocikit.testing import write_image, write_index
from ocikit.transports.layout import OCILayout

from helpers.cli import run_ocikit
from helpers.peers import require
from helpers.servers import RunningServer, docker_registry, self_signed_cert

# This machine sets PYTHONDONTWRITEBYTECODE=1; every `ocikit` subprocess of the suite would then
# compile the whole package again. Let them (and us) cache bytecode.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# Fuzz and property tests: bounded in `make test`, long under `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
settings.register_profile("default", max_examples=150, deadline=None)
settings.register_profile("fuzz", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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

@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: ``(cert.pem, key.pem)`` (``ocikit serve --tls-cert/--tls-key``)."""
    return self_signed_cert(str(tmp_path_factory.mktemp("tls")))

@pytest.fixture
def ocikit():
    """:func:`helpers.cli.run_ocikit`: ``ocikit("copy", SRC, DST)`` runs the command in a subprocess."""
    return run_ocikit

@pytest.fixture
def peer():
    """:func:`helpers.peers.require`: ``peer("skopeo")`` is the tool's path, or the test skips (fails under CI)."""
    return require
