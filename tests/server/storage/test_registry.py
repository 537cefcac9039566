"""RegistryStorage.fill_upload: bytes a worker thread receives itself, hashed and written to a spool there."""

from __future__ import annotations

import os
import threading
from typing import Callable

import pytest

from ocikit.core.digest import Digest
from ocikit.core.errors import BlobUploadInvalid
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage

PIECE = 1 << 20
DATA = os.urandom(3 * PIECE + 4321)
NAME = "fill/test"


class BytesFill:
    """A Fill (the protocol ThreadedGet follows) that hands ``data`` on in pieces of ``piece`` bytes."""

    def __init__(self, data: bytes, piece: int = PIECE) -> None:
        self.data = data
        self.piece = piece
        self.threads: set[str] = set()
        self.aborted = threading.Event()

    def run(self, sink: Callable[[memoryview], None]) -> None:
        self.threads.add(threading.current_thread().name)
        view = memoryview(self.data)
        for i in range(0, len(view), self.piece):
            if self.aborted.is_set():
                raise ConnectionAbortedError("aborted")
            sink(view[i:i + self.piece])

    def abort(self) -> None:
        self.aborted.set()


@pytest.fixture
def storage(tmp_path) -> RegistryStorage:
    return RegistryStorage(FilesystemDriver(str(tmp_path / "root"), fsync=False))


async def test_a_fill_is_written_in_its_own_thread_and_verified_before_the_commit(storage):
    upload = await storage.start_upload(NAME)
    ends: list[int] = []
    pieces: list[int] = []
    fill = BytesFill(DATA)
    assert await storage.fill_upload(NAME, upload, fill, len(DATA),
                                     lambda end, piece: (ends.append(end), pieces.append(len(piece)))) == len(DATA)
    assert sum(pieces) == len(DATA)
    assert fill.threads == {"ocikit-fill"}
    assert ends == [min(n, len(DATA)) for n in range(PIECE, len(DATA) + PIECE, PIECE)]
    digest = Digest.of(DATA)
    seen: list[bool] = []
    await storage.finish_upload(NAME, upload, digest,
                                verified=lambda: seen.append(os.path.exists(storage.blob_path(digest) or "")))
    assert seen == [False]  # told before the blob is committed
    with open(storage.blob_path(digest) or "", "rb") as f:
        assert f.read() == DATA


async def test_a_fill_after_an_append_goes_on_from_its_end(storage):
    upload = await storage.start_upload(NAME)

    async def head():  # type: ignore[no-untyped-def]
        yield DATA[:1000]
    await storage.append_upload(NAME, upload, head(), content_length=1000)
    ends: list[int] = []
    assert await storage.fill_upload(NAME, upload, BytesFill(DATA[1000:]), len(DATA) - 1000,
                                     lambda end, piece: ends.append(end)) \
        == len(DATA)
    assert ends[0] == 1000 + PIECE and ends[-1] == len(DATA)
    assert await storage.finish_upload(NAME, upload, Digest.of(DATA)) == len(DATA)


@pytest.mark.parametrize("data, problem", [(DATA + b"x", "longer"), (DATA[:-1], "shorter")],
                         ids=["one-byte-more", "one-byte-less"])
async def test_more_or_fewer_bytes_are_refused_and_the_spool_is_cut_back(storage, data, problem):
    upload = await storage.start_upload(NAME)

    async def head():  # type: ignore[no-untyped-def]
        yield b"0123456789"
    await storage.append_upload(NAME, upload, head(), content_length=10)
    with pytest.raises(BlobUploadInvalid, match=problem):
        await storage.fill_upload(NAME, upload, BytesFill(data, piece=PIECE // 3), len(DATA), lambda end, piece: None)
    assert (await storage.upload_state(NAME, upload)).offset == 10
    # and the upload goes on from there, its hash right
    await storage.fill_upload(NAME, upload, BytesFill(DATA), len(DATA), lambda end, piece: None)
    assert await storage.finish_upload(NAME, upload, Digest.of(b"0123456789" + DATA)) == 10 + len(DATA)


async def test_an_error_in_the_fill_thread_passes_through_and_cuts_the_spool_back(storage):
    upload = await storage.start_upload(NAME)

    class Failing(BytesFill):
        def run(self, sink: Callable[[memoryview], None]) -> None:
            sink(memoryview(self.data)[:PIECE])
            raise ConnectionResetError("upstream went away")

    with pytest.raises(ConnectionResetError, match="upstream went away"):
        await storage.fill_upload(NAME, upload, Failing(DATA), len(DATA), lambda end, piece: None)
    assert (await storage.upload_state(NAME, upload)).offset == 0
