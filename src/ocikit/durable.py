"""Durability in one place: how ocikit writes a file that must survive a crash or a full disk.

Every writer of a file that must never be seen half-written (a layout's blob or
``index.json``, a server's blob, upload spool or link, an archive, a pulled artifact, a built
layer, a credentials file, a journal line) goes through this module. The rules:

- **temp file**: a new file is written under :func:`temp_path` — ``.tmp-[NAME-]HEX`` in the
  directory of its final name (same filesystem, so the rename is atomic; a dot-file, so
  listings and a layout's ``gc`` know it for what it is);
- **file sync**: its data is flushed with ``fdatasync`` (:func:`sync_data`) before it gets
  its final name, unless the owner was told not to (``--no-fsync``, a staging area);
- **rename**: ``os.replace`` onto the final name (:func:`publish`), then the directory is
  flushed (:func:`fsync_dir`) — or, where many names are published and then named at once
  (a layout's blobs, then ``index.json``), once before the file that names them;
- **cleanup**: on any failure, the temp file is removed and the final name never appears
  (:func:`publishing`, :func:`removing_on_error`);
- **disk full**: ``ENOSPC`` and ``EDQUOT`` become :class:`~ocikit.core.errors.DiskFull`, from every
  writer alike (:func:`disk_full_guard`);
- **locks**: an exclusive ``flock`` on a directory or lock file (:func:`lock`) serialises
  read-modify-write in any number of processes; a directory's shared and exclusive ``flock``
  (:func:`flock_dir`) let writers of a directory run together and a remover wait for them.

Large files stream through :func:`write_stream`: received pieces are gathered into batches
of :data:`BATCH` bytes, each batch hashed and written in a worker thread while the next one
arrives (hashlib and ``writev`` release the GIL, so both cores work), in ``write`` syscalls
of at most :data:`WRITE_MAX` bytes (one page short of 1 MiB: see there), with disk
write-back started at once for each batch (Linux ``sync_file_range``) and an ``fdatasync`` in
the background every ``sync_every`` bytes, so the final flush before the rename finds little
left to do. Every write and flush goes through the two primitives :func:`write_fully` and
:func:`sync_data`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import time
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterator, Sequence

from .core.errors import DiskFull

if TYPE_CHECKING:  # pragma: no cover
    import concurrent.futures

    from .core.digest import Digester

TMP_PREFIX = ".tmp-"
"""Every temp file ocikit writes on its way to a final name starts with this."""
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""``errno`` values that mean "no room": the disk, or the user's quota on it, is full."""
WRITE_MAX = (1 << 20) - 4096
"""Largest single ``write``/``writev`` issued by :func:`write_parts` (and the piece a
:class:`~ocikit.transports.registry.threadget.ThreadedGet` hands on). On Linux 6.x ext4 a
write covering an aligned range of 1 or 2 MiB lands in a large page-cache folio, taken from the
high-order free blocks, which a VM with free page reporting (this project's machines) has given
back to its host: every first touch then faults in the host, and the page-cache copy ran at
0.6 GB/s with ~1.3 s of system CPU per 800 MB, against 5 GB/s and 0.16 s for writes one page
shorter, whose unaligned offsets keep folios small (``/proc`` CPU of a cold pull through the
cache: 2.3-3.0 CPU-s with 1 MiB pieces, 1.2-1.5 with these; 2 MiB writes measured ~4x the
system CPU of 1 MiB ones before that)."""
BATCH = 4 * 1024 * 1024
"""Bytes :func:`write_stream` hands to its hashing/writing worker at once."""
MAX_PARTS = 512
"""At most this many received pieces per batch."""
SYNC_EVERY = 64 << 20
"""The usual ``sync_every`` of :func:`write_stream` (a layout's blobs use less; see its ``blobs``)."""
INLINE_MAX = 256 << 10
"""A last batch this small is hashed and written on the caller's thread (no hand-over)."""


# ---- the rules: names, disk full, cleanup ----------------------------------------------------


def temp_path(directory: str, name: str = "") -> str:
    """A fresh temp file name in ``directory``: ``.tmp-NAME-HEX`` (``.tmp-HEX`` with no name)."""
    return os.path.join(directory, f"{TMP_PREFIX}{name + '-' if name else ''}{secrets.token_hex(8)}")


def is_disk_full(e: BaseException) -> bool:
    """Does ``e`` say the disk (or the quota on it) is full?"""
    return isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS


@contextlib.contextmanager
def disk_full_guard(what: str) -> Iterator[None]:
    """Turn a full disk or quota met inside the block into :class:`DiskFull` naming ``what``."""
    try:
        yield
    except OSError as e:
        if e.errno in DISK_FULL_ERRNOS:
            raise DiskFull(f"no space left on device writing {what}") from None
        raise


@contextlib.contextmanager
def removing_on_error(path: str, what: str | None = None) -> Iterator[None]:
    """Remove ``path`` if the block fails in any way; a full disk becomes :class:`DiskFull`."""
    try:
        with disk_full_guard(what or path):
            yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


# ---- the primitives: every write and every flush ---------------------------------------------


def write_fully(fd: int, iov: Sequence[memoryview | bytes], total: int) -> None:
    """Write ``iov`` (``total`` bytes) at the file position: one ``writev`` (``write`` for one
    piece), a short write finished piece by piece. Every byte ocikit makes durable goes here."""
    written = os.writev(fd, iov) if len(iov) > 1 else os.write(fd, iov[0])
    if written < total:  # rare: a short write; finish it (a full disk raises ENOSPC here)
        view = memoryview(b"".join(iov))[written:]
        while view:
            view = view[os.write(fd, view):]


def sync_data(fd: int) -> None:
    """Flush a file's data (and the size needed to read it back) to the device: ``fdatasync``.
    Every file flush ocikit makes goes here (a full disk can surface here first, e.g. on NFS)."""
    os.fdatasync(fd)


def fsync_dir(path: str) -> None:
    """Flush a directory, so the names created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_path(path: str) -> None:
    """:func:`sync_data` of the file at ``path`` (a file another writer filled by name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        sync_data(fd)
    finally:
        os.close(fd)


# ---- publishing: temp file, sync, rename ------------------------------------------------------


def publish(tmp: str, final: str, *, sync: bool = True, sync_dir: bool = True) -> None:
    """Rename the finished file ``tmp`` onto ``final``; with ``sync``, flush its data first and
    (with ``sync_dir``) the directory after. On failure ``tmp`` is left to the caller."""
    if sync:
        sync_path(tmp)
    os.replace(tmp, final)
    if sync and sync_dir:
        fsync_dir(os.path.dirname(final) or ".")


class TempFile:
    """A temp file open for writing beside its final name (see :func:`publishing`)."""

    __slots__ = ("path", "fd", "synced")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.synced = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` at the file position."""
        write_parts(self.fd, (data,))

    def sync(self) -> None:
        """Flush the data now (before an xattr is set, say); not again on publish."""
        sync_data(self.fd)
        self.synced = True


def lock_temp(fd: int) -> bool:
    """Take the writer's lock on an open temp file (``flock``, not waiting): held while a writer
    fills the file and released by the kernel when the writer ends in any way, so a temp file
    nobody holds is one whose writer is gone (:func:`abandoned`)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _still_at(fd: int, path: str) -> bool:
    try:
        return os.fstat(fd).st_ino == os.lstat(path).st_ino
    except FileNotFoundError:
        return False


def claim_temp(directory: str, name: str, mode: int = 0o644) -> tuple[str, int]:
    """Open ``.tmp-NAME`` in ``directory`` for a new ``name``, locked and empty. A file of that
    name left by a writer that died (a killed copy) is taken over, so a re-run leaves no orphan;
    if a live writer holds it, a fresh ``.tmp-NAME-HEX`` is used instead."""
    path = os.path.join(directory, f"{TMP_PREFIX}{name}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    if lock_temp(fd) and _still_at(fd, path):
        os.ftruncate(fd, 0)
        return path, fd
    os.close(fd)
    path = temp_path(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    lock_temp(fd)
    return path, fd


def abandoned(path: str, older_than: float = 0.0, *, remove: bool = False) -> bool:
    """Is the temp file ``path`` one whose writer is gone (no lock held) and unchanged for
    ``older_than`` seconds? With ``remove``, unlink it too (under its lock, so no writer can
    take it meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, OSError):
        return False
    try:
        if not lock_temp(fd) or not _still_at(fd, path):
            return False
        st = os.fstat(fd)  # ctime too: a hardlinked temp file keeps its source's old mtime
        if time.time() - max(st.st_mtime, st.st_ctime) < older_than:
            return False
        if remove:
            os.unlink(path)
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def publishing(final: str, *, sync: bool = True, sync_dir: bool = True, mode: int = 0o644,
               what: str | None = None, reuse: bool = False) -> Iterator[TempFile]:
    """Write a new ``final`` atomically: the block fills the yielded :class:`TempFile`; when it
    ends normally the file is flushed (with ``sync``), renamed onto ``final`` (its directory made
    if missing) while the writer's lock is held, and the directory flushed (with ``sync`` and
    ``sync_dir``). If anything fails, the temp file is removed and ``final`` is untouched; a full
    disk raises :class:`DiskFull` naming ``what``. ``reuse``: the temp file is ``.tmp-NAME``,
    taken over from a writer that died (:func:`claim_temp`), for content named by its digest."""
    directory = os.path.dirname(final) or "."
    base = os.path.basename(final)
    fd = -1
    tmp = temp_path(directory, base)
    try:
        with removing_on_error(tmp, what or final):
            os.makedirs(directory, exist_ok=True)
            if reuse:
                tmp, fd = claim_temp(directory, base, mode)
            else:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
                lock_temp(fd)
            t = TempFile(tmp, fd)
            yield t
            if sync and not t.synced:
                sync_data(fd)
            os.replace(tmp, final)  # before the lock goes with the close: never a half file taken over
        if sync and sync_dir:
            fsync_dir(directory)
    except BaseException:
        if fd >= 0 and reuse:
            with contextlib.suppress(OSError):
                if _still_at(fd, tmp):
                    os.unlink(tmp)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def atomic_write(path: str, data: bytes, *, sync: bool = True, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and a rename."""
    with publishing(path, sync=sync, mode=mode) as t:
        t.write(data)


def append_line(f: "object", line: str, what: str) -> None:
    """Append ``line`` to the open text file ``f`` and flush it to the device (a journal record)."""
    with disk_full_guard(what):
        f.write(line)  # type: ignore[attr-defined]
        f.flush()  # type: ignore[attr-defined]
        sync_data(f.fileno())  # type: ignore[attr-defined]


def _locked(fd: int, operation: int) -> int:
    """``flock`` the open ``fd`` (waiting for it) and return it; closed if that fails."""
    try:
        fcntl.flock(fd, operation)
    except BaseException:
        os.close(fd)
        raise
    return fd


def flock_dir(path: str, *, shared: bool = False) -> int:
    """Open the directory ``path`` and ``flock`` it (shared, or exclusive), waiting for it; closing
    the returned descriptor releases it. Each holder opens its own descriptor, so holders in one
    process never release each other's lock. ``FileNotFoundError`` when there is no such directory."""
    return _locked(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC),
                   fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


@contextlib.contextmanager
def lock(path: str) -> Iterator[None]:
    """An exclusive ``flock`` held for the block: on the directory ``path`` (nothing is added to
    it), or on the lock file ``path`` (created if missing). Serialises any number of processes."""
    if os.path.isdir(path):
        fd = flock_dir(path)
    else:
        fd = _locked(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


# ---- streaming large files --------------------------------------------------------------------


def _libc_sync_file_range() -> "ctypes._CFuncPtr | None":
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return fn


SYNC_FILE_RANGE = _libc_sync_file_range()
SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` out now, without waiting."""
    if SYNC_FILE_RANGE is not None:
        SYNC_FILE_RANGE(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def write_parts(fd: int, parts: Sequence[bytes | bytearray | memoryview]) -> int:
    """Write ``parts`` in order at the file position, in syscalls of at most :data:`WRITE_MAX`
    bytes (``writev`` gathers small parts, large ones are split); returns the bytes written."""
    iov: list[memoryview | bytes] = []
    size = total = 0
    for part in parts:
        view = memoryview(part)
        while view:
            take = min(len(view), WRITE_MAX - size)
            iov.append(view[:take])
            view = view[take:]
            size += take
            if size == WRITE_MAX or len(iov) >= 1024:  # IOV_MAX
                write_fully(fd, iov, size)
                total += size
                iov, size = [], 0
    if iov:
        write_fully(fd, iov, size)
        total += size
    return total


def hash_and_write(fd: int, parts: Sequence[bytes], digester: "Digester | None",
                   writeback_from: int | None = None) -> int:
    """Hash a batch of pieces and write them at the file position (run in a worker thread:
    hashlib and writev release the GIL, so receiving and hashing/writing use both cores); with
    ``writeback_from`` (the file offset of the batch), start its disk write-back at once.
    The pieces are never joined: no byte is copied again on the way. Returns the bytes written."""
    if digester is not None:
        digester.update_all(parts)
    total = write_parts(fd, parts)
    if writeback_from is not None:
        start_writeback(fd, writeback_from, total)
    return total


_sync_pool = None


def sync_in_background(fd: int) -> "concurrent.futures.Future[None]":
    """Start :func:`sync_data` of ``fd`` on a small pool of threads of its own (never queued
    behind hashing).

    A file flushed only at the end pays the device's cache flush and whatever the disk has not
    taken yet right then; flushing a growing file now and then while it is written moves that
    cost into the writing. The caller waits for the returned future before closing ``fd`` and
    raises its error: the kernel reports a write-back error to one flush only.
    """
    global _sync_pool
    if _sync_pool is None:
        from concurrent.futures import ThreadPoolExecutor
        _sync_pool = ThreadPoolExecutor(4, thread_name_prefix="ocikit-sync")
    return _sync_pool.submit(sync_data, fd)


async def _hash_while_writing(loop: "asyncio.AbstractEventLoop", fd: int, parts: Sequence[bytes],
                              digester: "Digester | None", writeback_from: int | None) -> None:
    """Write a batch in one worker thread while another hashes it (both release the GIL: a
    write held up by the disk no longer holds up the hashing, and the bytes reach the file,
    where readers may follow it, without waiting for the hash). Returns once both are done,
    even when one failed (the caller may then close ``fd``), and raises the first error."""
    import asyncio

    jobs = [loop.run_in_executor(None, hash_and_write, fd, parts, None, writeback_from)]
    if digester is not None:
        jobs.append(loop.run_in_executor(None, digester.update_all, parts))
    await asyncio.wait(jobs)
    for job in jobs:
        job.result()


class _Flushes:
    """An ``fdatasync`` of ``fd`` in the background every ``every`` bytes written (none with 0), one
    at a time; a write-back error is raised once, at the next :meth:`wrote` or at :meth:`finish`."""

    def __init__(self, fd: int, every: int, at: int) -> None:
        self.fd = fd
        self.every = every
        self.synced = at
        self.running: "concurrent.futures.Future[None] | None" = None

    def wrote(self, pos: int) -> None:
        """The file now holds ``pos`` bytes: start a flush if one is due and none runs."""
        if self.every and pos - self.synced >= self.every and (self.running is None or self.running.done()):
            if self.running is not None:
                self.running.result()   # a write-back error is reported once: here
            self.running, self.synced = sync_in_background(self.fd), pos

    async def finish(self) -> None:
        """Wait for the running flush (raising its error)."""
        import asyncio

        if self.running is not None:
            await asyncio.wrap_future(self.running)
            self.running = None

    async def settle(self) -> None:
        """After a failure: wait for the running flush, however often cancelled, ignoring its
        error (the caller may then close ``fd``)."""
        import asyncio

        from .core.ownthread import wait_out

        if self.running is not None:
            await wait_out(asyncio.wrap_future(self.running))


async def write_stream(fd: int, chunks: AsyncIterator[bytes], digester: "Digester | None", *,
                       offset: int = 0, sync: bool = True, sync_every: int = 0,
                       pipeline: bool = True) -> int:
    """Hash and write ``chunks`` at ``offset`` of ``fd`` (already positioned there); returns the
    end offset. Each batch is hashed and written in a worker thread, the next arriving meanwhile.

    With ``sync``, each batch's write-back starts at once and, with ``sync_every``, an
    ``fdatasync`` runs in the background every that many bytes (one at a time); the caller
    still flushes at the end (:func:`sync_data`). Without ``pipeline``, each batch is written
    before the next is gathered (one batch in memory per file: a layout pull writes several
    blobs at once, and its peak RSS stays ~10 MB lower). On any failure, work still running on
    ``fd`` is waited for before the error is raised, so the caller may close it at once.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    pending: "asyncio.Future[None] | None" = None
    flushes = _Flushes(fd, sync_every if sync else 0, offset)
    pos = offset
    buf: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            buf.append(chunk)
            size += len(chunk)
            if size < BATCH and len(buf) < MAX_PARTS:
                continue
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(_hash_while_writing(loop, fd, buf, digester, pos if sync else None))
            if not pipeline:
                await pending
                pending = None
            pos += size
            buf, size = [], 0
            flushes.wrote(pos)
        if pending is not None:
            await pending
            pending = None
        if buf:
            if size <= INLINE_MAX:
                hash_and_write(fd, buf, digester)
            else:
                await _hash_while_writing(loop, fd, buf, digester, pos if sync else None)
            pos += size
        await flushes.finish()
        return pos
    except BaseException:
        if pending is not None:   # never let the caller close fd under running work
            with contextlib.suppress(BaseException):
                await asyncio.shield(pending)
        await flushes.settle()
        raise


async def write_from_thread(fd: int, produce: "Callable[[Callable[[memoryview], None]], None]",
                            digester: "Digester | None", *, abort: "Callable[[], None]", offset: int = 0,
                            sync: bool = True, sync_every: int = 0,
                            written: "Callable[[int, memoryview], None] | None" = None) -> int:
    """Run ``produce(sink)`` in a thread of its own: each piece it hands to ``sink`` is hashed and
    written at the file position of ``fd`` (already at ``offset``) right there, then reported to
    ``written`` (the new end offset and the piece, which the thread reuses once that returns;
    called in that thread). Returns the end offset.

    The counterpart of :func:`write_stream` for bytes that a thread receives itself (no event loop
    turn per piece). ``sync`` and ``sync_every`` as there. Cancelling calls ``abort`` and waits
    for the thread, so the caller may close ``fd`` at once, as after any failure.
    """
    from .core.ownthread import run_in_own_thread

    pos = offset
    flushes = _Flushes(fd, sync_every if sync else 0, offset)

    def sink(piece: memoryview) -> None:
        nonlocal pos
        pos += hash_and_write(fd, [piece], digester, pos if sync else None)
        flushes.wrote(pos)
        if written is not None:
            written(pos, piece)

    try:
        await run_in_own_thread(lambda: produce(sink), abort=abort, name="ocikit-fill")
    except BaseException:
        await flushes.settle()  # never let the caller close fd under a running flush
        raise
    await flushes.finish()
    return pos


__all__ = [
    "BATCH", "DISK_FULL_ERRNOS", "INLINE_MAX", "MAX_PARTS", "SYNC_EVERY", "TMP_PREFIX", "abandoned", "claim_temp", "lock_temp", "WRITE_MAX", "TempFile",
    "append_line", "atomic_write", "disk_full_guard", "fsync_dir", "hash_and_write", "is_disk_full", "lock",
    "publish", "publishing", "removing_on_error", "start_writeback", "sync_data", "sync_in_background",
    "sync_path", "temp_path", "write_from_thread", "write_fully", "write_parts", "write_stream",
]
