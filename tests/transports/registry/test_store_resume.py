"""A chunked push cut mid-way resumes at the offset the registry reports, not from byte 0.

A proxy in front of ``ocikit serve`` drops the PATCH that would take a 200 MiB upload past 60 %;
the client asks the upload URL how far it got (``GET``, ``Range``) and sends the rest from
there. The bytes sent again are counted, and the blob arrives digest-exact.
"""

from __future__ import annotations

import hashlib
from asyncio import run as arun

from ocikit.core.digest import Digest
from ocikit.model import Descriptor
from ocikit.transports import OpenOptions, open_store

from helpers.app_servers import push_cutting_proxy
from helpers.servers import start_ocikit_serve

SIZE = 200 << 20
PIECE = 1 << 20
CHUNK = 16 << 20


def piece(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (PIECE // 32)


async def pieces():
    for i in range(SIZE // PIECE):
        yield piece(i)


def blob_digest() -> Digest:
    h = hashlib.sha256()
    for i in range(SIZE // PIECE):
        h.update(piece(i))
    return Digest("sha256:" + h.hexdigest())


def test_cut_chunked_push_resumes_at_the_registrys_offset(tmp_path):
    desc = Descriptor("application/octet-stream", blob_digest(), SIZE)
    cut_at = SIZE * 60 // 100
    with start_ocikit_serve(str(tmp_path)) as reg, push_cutting_proxy(reg.host, cut_at) as (host, stats):
        async def push() -> tuple[int, int, bool]:
            store = open_store(f"docker://{host}/big/blob", write=True,
                               options=OpenOptions(tls_verify=False, upload_mode="chunked", chunk_size=CHUNK))
            try:
                await store.put_blob(desc, pieces())
                return store.upload_resumes, store.upload_bytes_resent, await store.has_blob(desc)
            finally:
                await store.close()
        resumes, resent, there = arun(push())
        direct = open_store(f"docker://{reg.host}/big/blob", options=OpenOptions(tls_verify=False))

        async def fetch() -> str:
            h = hashlib.sha256()
            try:
                async for c in direct.blob_chunks(desc):
                    h.update(c)
            finally:
                await direct.close()
            return "sha256:" + h.hexdigest()
        stored = arun(fetch())
    assert stats["cuts"] == 1 and there and stored == desc.digest
    # the chunk that was cut started at the registry's offset: the retry starts there again,
    # and nothing before it was sent twice
    starts = [int(r.split("-")[0]) for r in stats["patches"]]
    cut_start = (cut_at // CHUNK) * CHUNK
    assert starts == sorted(starts) and starts.count(cut_start) == 2 and starts[0] == 0
    assert resumes == 1 and resent == CHUNK  # one chunk again (ocikit serve drops a broken chunk), not 120 MiB
