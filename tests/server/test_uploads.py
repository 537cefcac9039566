"""How uploads reach the disk: bounded write syscalls, streamed bodies in many pieces, background flushes."""

from __future__ import annotations

import os
import random

import pytest

from ocikit import durable
from ocikit.digest import Digest

MIB = 1 << 20


@pytest.mark.parametrize("sizes", [
    [0],
    [1],
    [MIB],
    [MIB + 1],
    [3 * MIB + 17],
    [256 << 10] * 17,
    [1] * 1500,  # more parts than IOV_MAX fit in one writev
    [5, MIB - 3, 700_000, 2 * MIB, 0, 4096, 123_457],
])
def test_write_parts_keeps_every_byte_and_bounds_each_syscall(tmp_path, monkeypatch, sizes):
    rnd = random.Random(len(sizes) * 31 + sum(sizes))
    parts = [rnd.randbytes(n) for n in sizes]
    calls: list[int] = []
    real_write, real_writev = os.write, os.writev

    def write(fd, data):
        calls.append(len(data))
        return real_write(fd, data)

    def writev(fd, bufs):
        bufs = list(bufs)
        assert len(bufs) <= 1024
        calls.append(sum(len(b) for b in bufs))
        return real_writev(fd, bufs)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "writev", writev)
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"head")
        assert durable.write_parts(fd, parts) == sum(sizes)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"head" + b"".join(parts)
    assert all(n <= durable.WRITE_MAX for n in calls[1:])
    assert sum(calls[1:]) == sum(sizes)


def test_write_parts_finishes_a_short_write(tmp_path, monkeypatch):
    real_writev = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, bufs: real_writev(fd, [bytes(bufs[0])[:3]]))
    path = tmp_path / "f"
    parts = [b"abcdef", b"ghij"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        assert durable.write_parts(fd, parts) == 10
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abcdefghij"


async def test_streamed_body_in_many_uneven_pieces(client):
    """Transfer-Encoding: chunked with pieces of every size (and an empty one): every byte arrives once."""
    rnd = random.Random(7)
    pieces = [rnd.randbytes(n) for n in (1, 0, 65_536, 3 * MIB + 5, 17, MIB, 250_000, 2 * MIB - 1, 9)]
    data = b"".join(pieces)
    d = Digest.of(data)

    async def body():
        for p in pieces:
            yield p

    async with client.s.post(client.url("/v2/push/pieces/blobs/uploads/")) as r:
        loc = r.headers["Location"]
    async with client.s.patch(client.url(loc), data=body()) as r:
        assert r.status == 202, await r.text()
        assert r.headers["Range"] == f"0-{len(data) - 1}"
    async with client.s.put(client.url(loc), params={"digest": str(d)}) as r:
        assert r.status == 201, await r.text()
    async with client.s.get(client.url(f"/v2/push/pieces/blobs/{d}")) as r:
        assert await r.read() == data


async def test_spool_is_flushed_in_the_background_while_it_grows(tmp_path, monkeypatch):
    """With fsync on, fdatasync runs every SYNC_EVERY bytes during the append (not only at commit)."""
    from ocikit.digest import Digester
    from ocikit.server.storage import fs

    monkeypatch.setattr(fs, "SYNC_EVERY", 2 * MIB)
    monkeypatch.setattr(durable, "BATCH", MIB)
    synced: list[int] = []   # the spool's size each time a background flush is started
    real = durable.sync_in_background

    def sync_in_background(fd):
        synced.append(os.fstat(fd).st_size)
        return real(fd)

    monkeypatch.setattr(durable, "sync_in_background", sync_in_background)
    rnd = random.Random(3)
    pieces = [rnd.randbytes(300_000) for _ in range(40)]

    async def chunks():
        for p in pieces:
            yield p

    for fsync in (True, False):
        synced.clear()
        driver = fs.FilesystemDriver(str(tmp_path / f"root-{fsync}"), fsync=fsync)
        await driver.spool_create("u", b"{}")
        digester = Digester()
        assert await driver.spool_append("u", 0, chunks(), digester) == 12_000_000
        assert digester.digest() == Digest.of(b"".join(pieces))
        with open(os.path.join(driver.root, "uploads", "u", "data"), "rb") as f:
            assert f.read() == b"".join(pieces)
        if fsync:
            # at least one flush started while the spool was still growing (one runs at a time,
            # so how many depends on the disk)
            assert synced and min(synced) < 12_000_000
        else:
            assert synced == []
