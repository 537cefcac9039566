"""The storage driver interface: the few primitives a registry needs from a place to keep bytes.

Keys are ``/``-separated relative paths built only from validated names, digests, tags and
upload ids. A driver is a key/value store with directory-like listing, plus upload *spools*
(append-only files that are hashed as they grow and committed to a key by an atomic move).
The filesystem driver (:mod:`.fs`) is the embedded default; an object-store driver can
implement the same methods (spools as multipart uploads, ``local_path`` returning ``None``).
"""

from __future__ import annotations

import abc
from typing import AsyncIterator, Callable, Protocol

from ...core.digest import Digester


class Fill(Protocol):
    """Bytes a worker thread receives itself (:class:`~ocikit.transports.registry.threadget.ThreadedGet`):
    ``run(sink)`` hands each piece to ``sink`` in order; ``abort()``, from any thread, stops it."""

    def run(self, sink: Callable[[memoryview], None]) -> None: ...

    def abort(self) -> None: ...


class StorageDriver(abc.ABC):
    """Primitive operations over keys. Every write that can be observed is atomic."""

    # --- small objects ---------------------------------------------------------------

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The bytes under ``key``, or ``None`` when there is no such key."""

    @abc.abstractmethod
    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        """Write ``data`` under ``key`` atomically (readers see the old value or the new one)."""

    @abc.abstractmethod
    async def size(self, key: str) -> int | None:
        """Size in bytes of the object under ``key``, ``None`` if absent."""

    @abc.abstractmethod
    async def mtime(self, key: str) -> float | None:
        """Last modification (or touch) time, ``None`` if absent."""

    @abc.abstractmethod
    async def touch(self, key: str) -> bool:
        """Refresh the modification time (protects content from a concurrent gc's grace window)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed."""

    async def delete_if_older(self, key: str, cutoff: float) -> bool:
        """Remove ``key`` only if it was last modified (or touched) before ``cutoff``; ``True`` if removed.

        gc's one deletion of what may be in use: a driver that can exclude writers (the filesystem's
        ``flock``) reads the age again under the lock its writes and touches take, so nothing a
        concurrent write refreshes is taken. This default reads the age, then deletes."""
        mtime = await self.mtime(key)
        return mtime is not None and mtime < cutoff and await self.delete(key)

    @abc.abstractmethod
    async def list(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (objects and "directories"), sorted."""

    @abc.abstractmethod
    async def is_dir(self, prefix: str) -> bool:
        """Whether anything lives under ``prefix``."""

    @abc.abstractmethod
    async def delete_tree(self, prefix: str) -> None:
        """Remove everything under ``prefix``."""

    # --- large objects ---------------------------------------------------------------

    @abc.abstractmethod
    def local_path(self, key: str) -> str | None:
        """A filesystem path for zero-copy serving (``sendfile``), or ``None`` for remote drivers."""

    @abc.abstractmethod
    def read_chunks(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream the object's bytes from ``offset`` (for drivers without ``local_path``)."""

    async def relay(self, key: str, offset: int, length: int, sock_fd: int) -> bool:
        """Write bytes ``offset`` to ``offset + length`` of ``key`` straight into the connected
        socket ``sock_fd`` (the response head already sent); ``False``, having written nothing,
        when this driver cannot (then :meth:`read_chunks` is the way)."""
        return False

    # --- upload spools ---------------------------------------------------------------

    @abc.abstractmethod
    async def spool_create(self, upload_id: str, info: bytes) -> None:
        """Start an empty spool with a small JSON ``info`` document."""

    @abc.abstractmethod
    async def spool_info(self, upload_id: str) -> bytes | None: ...

    def spool_path(self, upload_id: str) -> str | None:
        """The spool's data file, readable while it grows (``None`` for remote drivers)."""
        return None

    @abc.abstractmethod
    async def spool_size(self, upload_id: str) -> int | None:
        """Bytes received so far, ``None`` when there is no such spool."""

    @abc.abstractmethod
    async def spool_append(self, upload_id: str, offset: int, chunks: AsyncIterator[bytes],
                           digester: Digester | None) -> int:
        """Append ``chunks`` at ``offset`` (the current size), feeding ``digester``; returns the new size.

        On any error the spool is cut back to ``offset`` so a retry starts clean.
        """

    async def spool_fill(self, upload_id: str, offset: int, fill: Fill, digester: Digester | None,
                         written: Callable[[int, memoryview], None]) -> int:
        """Append what ``fill`` hands its sink in a thread of its own (a driver with
        :meth:`spool_path` only), feeding ``digester`` and reporting each new end, with the piece
        just written, to ``written`` (from that thread); returns the new size. On any error the spool is cut back to ``offset``."""
        raise NotImplementedError(f"{type(self).__name__} has no local spools")

    @abc.abstractmethod
    def spool_chunks(self, upload_id: str) -> AsyncIterator[bytes]:
        """The spool's bytes (to rebuild a hash after a restart)."""

    @abc.abstractmethod
    async def spool_commit(self, upload_id: str, key: str) -> bool | None:
        """Make the spool's bytes durable and move them under ``key`` atomically; drop the spool.

        If ``key`` already exists (same content, content-addressed) the spool is just dropped.
        ``True`` tells that ``key``'s modification time is fresh (just created, or refreshed with the
        commit: no touch needed); ``None``/``False``: unknown or already there.
        """

    @abc.abstractmethod
    async def spool_delete(self, upload_id: str) -> None: ...

    @abc.abstractmethod
    async def spool_list(self) -> list[str]: ...

    @abc.abstractmethod
    async def spool_mtime(self, upload_id: str) -> float | None: ...

    # --- declared optional abilities (defaults fit a local filesystem) -----------------

    catalog_index: bool = False
    """The registry keeps ``catalog/<name>`` index objects so ``_catalog`` pages are single listings
    (object stores); otherwise ``_catalog`` walks ``repositories/``."""

    async def check(self) -> None:
        """Fail fast at start (wrong credentials, missing bucket) with a one-line error."""

    def describe(self) -> str:
        """Where the bytes live, for logs."""
        return type(self).__name__

    async def redirect_url(self, key: str) -> str | None:
        """A URL a client may fetch the object from directly (presigned), or ``None`` to stream."""
        return None

    async def list_after(self, prefix: str, after: str | None, limit: int | None) -> list[str]:
        """Names directly under ``prefix`` sorted after ``after``, at most ``limit`` (a page)."""
        names = [n for n in await self.list(prefix) if after is None or n > after]
        return names if limit is None else names[:limit]

    async def list_keys(self, prefix: str, after: str | None, limit: int | None) -> list[str]:
        """Every key below ``prefix`` (recursively, relative to it), sorted, after ``after``, at most ``limit``."""
        out: list[str] = []

        async def walk(p: str, rel: str) -> None:
            for n in await self.list(p):
                child = f"{rel}/{n}" if rel else n
                if await self.is_dir(f"{p}/{n}"):
                    await walk(f"{p}/{n}", child)
                else:
                    out.append(child)

        await walk(prefix, "")
        out = sorted(k for k in out if after is None or k > after)
        return out if limit is None else out[:limit]

    async def purge_incomplete(self, before: float) -> list[str]:
        """Abort writes a crashed process left half done (multipart uploads) started before ``before``."""
        return []

    async def close(self) -> None:
        """Release resources."""
