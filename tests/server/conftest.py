"""Fixtures for ``ocikit serve`` tests: a running server per module, a client per test."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import aiohttp
import bcrypt
import pytest

from helpers.rawhttp import USERS, Client
from helpers.servers import RunningServer, start_ocikit_serve


@pytest.fixture(scope="module")
def serve(tmp_path_factory) -> Iterator[RunningServer]:
    """One ``ocikit serve`` subprocess shared by a module's tests (each test uses its own repositories)."""
    with start_ocikit_serve(str(tmp_path_factory.mktemp("serve"))) as srv:
        yield srv


@pytest.fixture
async def client(serve) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as s:
        yield Client(serve.url, s)


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory) -> str:
    """A bcrypt htpasswd file (cost 4) with :data:`USERS`."""
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}\n"
                            for u, p in USERS.items()))
    return str(path)
