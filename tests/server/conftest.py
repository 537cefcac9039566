"""Fixtures for ``ocikit serve`` tests: a running server per module, a client per test."""

from __future__ import annotations

import os
from typing import AsyncIterator, Iterator

import aiohttp
import bcrypt
import pytest

from helpers.rawhttp import USERS, Client
from helpers.servers import RunningServer, SeaweedServer, seaweedfs, start_ocikit_serve


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Iterator[SeaweedServer]:
    """One SeaweedFS per test process; each server under test gets its own key prefix in its bucket."""
    with seaweedfs(str(tmp_path_factory.mktemp("seaweed"))) as s:
        yield s


@pytest.fixture(scope="module", params=["fs", "s3"])
def serve(request, tmp_path_factory) -> Iterator[RunningServer]:
    """One ``ocikit serve`` subprocess shared by a module's tests (each test uses its own repositories),
    once on the filesystem driver and once on the S3 driver (SeaweedFS)."""
    tmp = str(tmp_path_factory.mktemp("serve"))
    if request.param == "s3":
        s3: SeaweedServer = request.getfixturevalue("seaweed")
        with start_ocikit_serve(tmp, storage=s3.storage_url(os.path.basename(tmp)), env=s3.env) as srv:
            yield srv
        return
    with start_ocikit_serve(tmp) as srv:
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
