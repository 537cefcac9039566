"""Fixtures for the registry transport tests: one docker-registry per module, generated images."""

from __future__ import annotations

from typing import Iterator

import pytest

from ocikit.testing import write_image, write_index
from ocikit.transports.layout import OCILayout

from helpers.servers import RunningServer, docker_registry


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> Iterator[RunningServer]:
    """A docker-registry shared by one test module (tests use distinct repositories)."""
    with docker_registry(str(tmp_path_factory.mktemp("reg"))) as srv:
        yield srv


@pytest.fixture(scope="module")
def src_layout(tmp_path_factory) -> OCILayout:
    """Tags: ``multi`` (3-platform OCI index), ``single`` (one image), ``dmulti`` (docker manifest list)."""
    lay = OCILayout(str(tmp_path_factory.mktemp("src") / "lay"), create=True)
    write_index(lay, "multi")
    write_image(lay, "single", seed=7)
    write_index(lay, "dmulti", docker=True, seed=3)
    return lay
