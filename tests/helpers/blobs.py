"""Big random blobs pushed to a registry, pulled and hashed, and found in an ``ocikit serve`` root."""

from __future__ import annotations

import hashlib
import os
import time

import aiohttp


async def push_big_blob(host: str, path: str, size: int, repo: str = "big/blob",
                        headers: dict[str, str] | None = None) -> str:
    """Write ``size`` random bytes to ``path`` and push them as one blob to ``repo`` of the registry
    at ``host`` (a monolithic PUT streamed from the file, ``headers`` sent with every request: an
    ``Authorization``); returns the blob's digest."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(left, 4 << 20))
            h.update(piece)
            f.write(piece)
            left -= len(piece)
    digest = f"sha256:{h.hexdigest()}"
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(f"http://{host}/v2/{repo}/blobs/uploads/") as r:
            assert r.status == 202
            loc = r.headers["Location"]
        with open(path, "rb") as f:
            async with s.put(loc if loc.startswith("http") else f"http://{host}{loc}", params={"digest": digest},
                             data=f, headers={"Content-Length": str(size),
                                              "Content-Type": "application/octet-stream"}) as r:
                assert r.status == 201, await r.text()
    return digest


async def pull_hash(session: aiohttp.ClientSession, url: str, **kwargs: object) -> str:
    """GET ``url`` (200 expected) and return the digest of its body, read piece by piece."""
    h = hashlib.sha256()
    async with session.get(url, **kwargs) as r:  # type: ignore[arg-type]
        assert r.status == 200, await r.text()
        async for chunk in r.content.iter_chunked(1 << 20):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def blob_file(root: str, digest: str) -> str:
    """Where ``ocikit serve --root ROOT`` stores the blob ``digest``."""
    alg, enc = digest.split(":")
    return os.path.join(root, "blobs", alg, enc[:2], enc)


def wait_stored(root: str, digest: str, size: int, timeout: float = 60.0) -> None:
    """Poll until ``ocikit serve --root ROOT`` holds the whole blob ``digest`` (fails after ``timeout`` s)."""
    path = blob_file(root, digest)
    deadline = time.monotonic() + timeout
    while not (os.path.exists(path) and os.path.getsize(path) == size):
        assert time.monotonic() < deadline, f"{digest} not stored in {root} after {timeout} s"
        time.sleep(0.05)


__all__ = ["blob_file", "pull_hash", "push_big_blob", "wait_stored"]
