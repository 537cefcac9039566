"""Fixtures of the mirror tests."""

from __future__ import annotations

from asyncio import run as arun

import pytest

from ocikit.testing import write_index
from ocikit.transports.layout import OCILayout

from helpers.images import push_signature, write_app


@pytest.fixture
def src(tmp_path):
    """Layout ``multi-arch``: tag multi = 3-platform index (signed via the sha256-<hex> tag), tag single."""
    lay = OCILayout(str(tmp_path / "src" / "multi-arch"), create=True)
    idx = write_index(lay, "multi")

    async def more():
        await write_app(lay, "single", 1)
        await push_signature(lay, idx)
    arun(more())
    return lay, idx
