"""The filesystem storage driver: keys are files under a root directory.

Writes go to a hidden temporary file in the target directory, are flushed (``fsync``
unless disabled) and renamed into place, and the directory is synced: a crash at any
moment leaves either the old object or the new one, never half of one. Temporary names
start with ``.`` and are never listed.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import shutil
from typing import AsyncIterator

from ...digest import CHUNK, Digester
from ...writeback import BATCH, MAX_PARTS, SYNC_EVERY, hash_and_write, sync_in_background
from .base import StorageDriver

class FilesystemDriver(StorageDriver):
    """Keys as files under ``root``; upload spools under ``root/uploads/<id>/``."""

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.fsync = fsync
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(os.path.join(self.root, "uploads"), exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def _sync_dir(self, path: str) -> None:
        if not self.fsync:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
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
        directory, name = os.path.split(path)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{name}.tmp.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fdatasync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)
        if sync:
            self._sync_dir(directory)

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
        try:
            os.utime(self._path(key))
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
        open(os.path.join(d, "data"), "wb").close()
        # the session survives a restart only if its info does; but an fsync per session start
        # is not worth it: a session lost to a power cut is simply restarted by the client
        self._write_atomic(os.path.join(d, "info.json"), info, False)

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
        try:
            return os.stat(self._spool(upload_id, "data")).st_mtime
        except (FileNotFoundError, NotADirectoryError):
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
        fd = os.open(self._spool(upload_id, "data"), os.O_WRONLY)
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[None] | None = None
        syncing: asyncio.Future[None] | None = None
        pos = synced = offset
        buf: list[bytes] = []
        size = 0
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            async for chunk in chunks:
                buf.append(chunk)
                size += len(chunk)
                if size < BATCH and len(buf) < MAX_PARTS:
                    continue
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, hash_and_write, fd, buf, digester,
                                               pos if self.fsync else None)
                pos += size
                buf, size = [], 0
                if self.fsync and pos - synced >= SYNC_EVERY and (syncing is None or syncing.done()):
                    syncing = asyncio.wrap_future(sync_in_background(fd))
                    synced = pos
            if pending is not None:
                await pending
                pending = None
            if buf:
                hash_and_write(fd, buf, digester)
                pos += size
            if syncing is not None:
                await syncing
                syncing = None
            return pos
        except BaseException:
            for fut in (pending, syncing):
                if fut is not None:
                    try:
                        await asyncio.shield(fut)
                    except Exception:  # noqa: BLE001 - the original error is the one to report
                        pass
            pending = syncing = None
            os.ftruncate(fd, offset)
            raise
        finally:
            os.close(fd)

    async def spool_chunks(self, upload_id: str) -> AsyncIterator[bytes]:
        with open(self._spool(upload_id, "data"), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    async def spool_commit(self, upload_id: str, key: str) -> None:
        src = self._spool(upload_id, "data")
        dst = self._path(key)
        if os.path.exists(dst):
            await self.spool_delete(upload_id)
            return
        await asyncio.get_running_loop().run_in_executor(None, self._commit, src, dst)
        await self.spool_delete(upload_id)

    def _commit(self, src: str, dst: str) -> None:
        """Flush the spool, rename it into place, flush the directory (in a worker thread)."""
        if self.fsync:
            fd = os.open(src, os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        directory = os.path.dirname(dst)
        os.makedirs(directory, exist_ok=True)
        try:
            os.rename(src, dst)
        except OSError as e:  # pragma: no cover - the spool vanished (cancelled concurrently)
            if e.errno != errno.ENOENT:
                raise
            raise FileNotFoundError(src) from e
        self._sync_dir(directory)

    async def spool_delete(self, upload_id: str) -> None:
        shutil.rmtree(self._spool(upload_id), ignore_errors=True)

    async def spool_list(self) -> list[str]:
        return await self.list("uploads")
