"""Writing an archive atomically: a staging directory beside the target, then temp file + rename.

Content for a new archive is staged in ``.NAME.ocikit-staging-XXXX/`` next to the target
(same filesystem, so layouts can hardlink blobs in). :meth:`ArchiveOutput.publish` writes the
whole tar to a temp file (:func:`ocikit.durable.temp_path`: ``.tmp-NAME-XXXX``), flushes it and
renames it over the target, holding an exclusive ``flock`` on the parent directory so
concurrent ocikit writers of one archive serialise. An interrupted write leaves only dot-files
(``.tmp-``, ``ocikit-staging``), never a half archive under the target name; a full disk
raises :class:`~ocikit.errors.DiskFull`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from typing import Any, Awaitable, Callable, TypeVar

from ... import durable
from ...errors import ArchiveInvalid
from .tarwriter import TarWriter

T = TypeVar("T")


class ArchiveOutput:
    """The place a new version of the archive at ``path`` is built and published."""

    def __init__(self, path: str, *, sync: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.dir = os.path.dirname(self.path)
        self.base = os.path.basename(self.path)
        self.sync = sync
        self.token = secrets.token_hex(6)
        self.tmp_path = durable.temp_path(self.dir, self.base)
        self._staging: str | None = None
        self._tar: TarWriter | None = None
        if os.path.isdir(self.path):
            raise ArchiveInvalid(f"{self.path}: is a directory; an archive target must be a file")
        os.makedirs(self.dir, exist_ok=True)

    @property
    def staging(self) -> str:
        """The staging directory (created on first use)."""
        if self._staging is None:
            d = os.path.join(self.dir, f".{self.base}.ocikit-staging-{self.token}")
            os.makedirs(d)
            self._staging = d
        return self._staging

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock on the target's directory, for read-merge-publish."""
        return durable.lock(self.dir)

    def tar(self) -> TarWriter:
        """The new archive's tar, opened on first use (members may be written before :meth:`publish`)."""
        if self._tar is None:
            fd = os.open(self.tmp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self._tar = TarWriter(fd)
        return self._tar

    def publish(self, write: Callable[[TarWriter], None]) -> None:
        """Finish the archive with ``write(tar_writer)``, flush it and rename it into place."""
        with durable.removing_on_error(self.tmp_path, self.path):
            try:
                w = self.tar()
                os.lseek(w.fd, 0, os.SEEK_END)
                write(w)
                w.finish()
                if self.sync:
                    durable.sync_data(w.fd)
            finally:
                self._close_tar()
            durable.publish(self.tmp_path, self.path, sync=False)
        if self.sync:
            durable.fsync_dir(self.dir)

    def _close_tar(self) -> None:
        if self._tar is not None:
            with contextlib.suppress(OSError):
                os.close(self._tar.fd)
            self._tar = None

    def discard(self) -> None:
        """Remove the staging directory and an unpublished temp archive."""
        if self._tar is not None:
            self._close_tar()
            with contextlib.suppress(OSError):
                os.unlink(self.tmp_path)
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None


def existing_archive(path: str) -> bool:
    """True when ``path`` is a non-empty file (an archive to add to, not to create)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return st.st_size > 0


def archive_changed(path: str, before: os.stat_result | None) -> bool:
    """True when the file at ``path`` is not the one ``before`` described (another writer replaced it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return before is not None
    return before is None or (st.st_ino, st.st_mtime_ns, st.st_size) != (before.st_ino, before.st_mtime_ns,
                                                                       before.st_size)


class Inflight:
    """Worker-thread work a writer must see finish before it cleans up.

    Cancelling an ``await asyncio.to_thread(...)`` does not stop the thread: a late write into
    a closed (and perhaps reused) file descriptor, or a directory re-created after removal,
    would follow. Writers run such work through ``await inflight(awaitable)`` (shielded, so it
    completes) and ``await inflight.drain()`` before closing files.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    async def __call__(self, aw: Awaitable[T]) -> T:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
