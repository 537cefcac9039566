"""The filesystem storage driver: keys are files under a root directory.

Every write follows :mod:`ocikit.durable`'s rules: a hidden temp file in the target
directory, flushed (unless ``fsync`` is off), renamed into place, the directory flushed — a
crash at any moment leaves either the old object or the new one, never half of one; a full
disk raises :class:`~ocikit.core.errors.DiskFull` (the server answers 503 and stays up) and leaves
no temp file. Temp names start with ``.`` and are never listed.

A concurrent ``registry gc`` (another process) is kept from deleting what the server is making
live by ``flock`` on the directory holding a key: every write, touch and blob commit holds it
shared; gc's :meth:`FilesystemDriver.delete_if_older` holds it exclusive while it re-reads the
key's age and unlinks it. So a key gc found old is either refreshed before gc looks again (and
kept), or written anew after it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from typing import AsyncIterator, Callable, Iterator

from ... import durable
from ...core.digest import CHUNK, Digester
from .base import Fill, StorageDriver

SYNC_EVERY = 64 << 20
"""An upload spool is fdatasync'd in the background every this many bytes while it grows."""


class FilesystemDriver(StorageDriver):
    """Keys as files under ``root``; upload spools under ``root/uploads/<id>/``."""

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.fsync = fsync
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(os.path.join(self.root, "uploads"), exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    @contextlib.contextmanager
    def _guard(self, path: str, *, create: bool = True, exclusive: bool = False) -> Iterator[bool]:
        """Hold the ``flock`` of the directory of ``path`` (shared, or ``exclusive`` for gc); yields
        whether the directory exists (it is made first with ``create``)."""
        directory = os.path.dirname(path)
        if create:
            os.makedirs(directory, exist_ok=True)
        try:
            fd = durable.flock_dir(directory, shared=not exclusive)
        except (FileNotFoundError, NotADirectoryError):
            if create:
                raise
            yield False
            return
        try:
            yield True
        finally:
            os.close(fd)

    # --- small objects ---------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        if durable and self.fsync:
            # fsync can wait on a journal commit that flushes other uploads: keep it off the loop
            await asyncio.get_running_loop().run_in_executor(None, self._write_atomic, self._path(key), data, True)
        else:
            self._write_atomic(self._path(key), data, False)

    def _write_atomic(self, path: str, data: bytes, sync: bool) -> None:
        with durable.disk_full_guard(path), self._guard(path):
            durable.atomic_write(path, data, sync=sync)

    async def size(self, key: str) -> int | None:
        try:
            return os.stat(self._path(key)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def mtime(self, key: str) -> float | None:
        try:
            return os.stat(self._path(key)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def touch(self, key: str) -> bool:
        path = self._path(key)
        try:
            with self._guard(path, create=False) as there:
                if there:
                    os.utime(path)
                return there
        except (FileNotFoundError, NotADirectoryError):
            return False

    async def delete_if_older(self, key: str, cutoff: float) -> bool:
        """Unlink ``key`` if its mtime, read again under the directory's exclusive lock, is before ``cutoff``."""
        path = self._path(key)
        try:
            with self._guard(path, create=False, exclusive=True) as there:
                if not there or os.stat(path).st_mtime >= cutoff:
                    return False
                os.unlink(path)
                return True
        except (FileNotFoundError, NotADirectoryError):
            return False

    async def delete(self, key: str) -> bool:
        try:
            os.unlink(self._path(key))
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False

    async def list(self, prefix: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self._path(prefix)) if not n.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []

    async def is_dir(self, prefix: str) -> bool:
        return os.path.isdir(self._path(prefix))

    async def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    # --- large objects ---------------------------------------------------------------

    def local_path(self, key: str) -> str | None:
        return self._path(key)

    async def read_chunks(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        remaining = length
        with open(self._path(key), "rb") as f:
            f.seek(offset)
            while remaining is None or remaining > 0:
                chunk = f.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    # --- upload spools ---------------------------------------------------------------

    def _spool(self, upload_id: str, name: str = "") -> str:
        return os.path.join(self.root, "uploads", upload_id, name) if name else \
            os.path.join(self.root, "uploads", upload_id)

    async def spool_create(self, upload_id: str, info: bytes) -> None:
        d = self._spool(upload_id)
        os.makedirs(d)
        try:
            with durable.disk_full_guard(f"upload {upload_id}"):
                open(os.path.join(d, "data"), "wb").close()
                # the session survives a restart only if its info does; but an fsync per session
                # start is not worth it: a session lost to a power cut is simply restarted
                self._write_atomic(os.path.join(d, "info.json"), info, False)
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)   # no half-made session stays behind
            raise

    def spool_path(self, upload_id: str) -> str | None:
        return self._spool(upload_id, "data")

    async def spool_info(self, upload_id: str) -> bytes | None:
        try:
            with open(self._spool(upload_id, "info.json"), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def spool_size(self, upload_id: str) -> int | None:
        try:
            return os.stat(self._spool(upload_id, "data")).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def spool_mtime(self, upload_id: str) -> float | None:
        """When the spool last grew; a session still being made (no data file yet) is as old as its
        directory, so a concurrent gc does not take it for a leftover."""
        for path in (self._spool(upload_id, "data"), self._spool(upload_id)):
            try:
                return os.stat(path).st_mtime
            except (FileNotFoundError, NotADirectoryError):
                continue
        return None

    async def spool_append(self, upload_id: str, offset: int, chunks: AsyncIterator[bytes],
                           digester: Digester | None) -> int:
        """Hash and write in a worker thread, one batch in flight while the next one arrives.

        hashlib and os.writev release the GIL, so receiving (event loop) and hashing/writing
        (worker) use both cores; batches keep the hand-over cost negligible. With fsync on,
        write-back of each batch starts at once, and every ``SYNC_EVERY`` bytes an fdatasync
        runs in the background (one at a time per spool): the device's cache flush, which costs
        ~0.1 s however little is left, and the bytes the disk has not taken yet are then paid
        while the upload is still arriving, so the fdatasync before the 201 finds little to do
        (measured: 0.62 s -> 0.10 s at the end of a 1 GiB push).
        """
        with self._spool_end(upload_id, offset) as fd:
            return await durable.write_stream(fd, chunks, digester, offset=offset, sync=self.fsync,
                                              sync_every=SYNC_EVERY)

    @contextlib.contextmanager
    def _spool_end(self, upload_id: str, offset: int) -> Iterator[int]:
        """The spool's data file, open for writing at ``offset``; cut back there on any error."""
        fd = os.open(self._spool(upload_id, "data"), os.O_WRONLY)
        try:
            with durable.disk_full_guard(f"upload {upload_id}"):
                try:
                    os.lseek(fd, offset, os.SEEK_SET)
                    yield fd
                except BaseException:
                    os.ftruncate(fd, offset)   # nothing of a failed append stays in the spool
                    raise
        finally:
            os.close(fd)

    async def spool_fill(self, upload_id: str, offset: int, fill: Fill, digester: Digester | None,
                         written: Callable[[int, memoryview], None]) -> int:
        """Hash and write in the filling thread itself, each piece as it comes (with fsync on,
        write-back and background flushes as :meth:`spool_append` does)."""
        with self._spool_end(upload_id, offset) as fd:
            return await durable.write_from_thread(fd, fill.run, digester, abort=fill.abort, offset=offset,
                                                   sync=self.fsync, sync_every=SYNC_EVERY, written=written)

    async def spool_chunks(self, upload_id: str) -> AsyncIterator[bytes]:
        with open(self._spool(upload_id, "data"), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    async def spool_commit(self, upload_id: str, key: str) -> bool:
        """Commit (or, when the content is there already, refresh it); ``True``: ``key`` is fresh."""
        await asyncio.get_running_loop().run_in_executor(None, self._commit, self._spool(upload_id, "data"),
                                                         self._path(key))
        await self.spool_delete(upload_id)
        return True

    def _commit(self, src: str, dst: str) -> None:
        """In a worker thread, under the shared lock of the blob's directory: refresh ``dst`` if it is
        there; else flush the spool, rename it into place, flush the directory. Either way ``dst``
        leaves with a fresh mtime (the spool's is that of its last write, maybe older than a gc's
        grace), so a gc that found it old cannot take it once the upload is acknowledged."""
        with durable.disk_full_guard(dst), self._guard(dst):
            try:
                os.utime(dst)
                return
            except FileNotFoundError:
                pass
            try:
                durable.publish(src, dst, sync=self.fsync)
            except FileNotFoundError as e:  # pragma: no cover - the spool vanished (cancelled concurrently)
                raise FileNotFoundError(src) from e
            os.utime(dst)

    async def spool_delete(self, upload_id: str) -> None:
        shutil.rmtree(self._spool(upload_id), ignore_errors=True)

    async def spool_list(self) -> list[str]:
        return await self.list("uploads")
