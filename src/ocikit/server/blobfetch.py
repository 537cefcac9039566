"""One upstream fetch of a blob, streamed to every client that asked while it is stored (single-flight).

A :class:`BlobFetch` runs as its own task, not as part of any request: a client that goes away
does not stop the blob from being cached. The bytes are appended to an upload spool of the
registry storage (hashed as they are written) and committed only when digest and size check out
(:meth:`RegistryStorage.finish_upload`); a lying upstream leaves nothing behind.

Clients that ask before the first byte arrived are *subscribers*: each gets every piece as it
comes, through a queue bounded by :data:`LAG_LIMIT` bytes. A subscriber whose client reads more
slowly than the upstream sends stops being fed (it never stalls the fetch or anyone else) and,
once the blob is stored, carries on from the stored copy at the byte it reached. Every
subscriber holds back its last piece until the fetch is verified; when it is not, the client's
connection is cut short, so no client takes a bad blob as complete. Clients that ask once bytes
have passed wait for the end and are then served the stored blob.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import AsyncIterator, Callable

from aiohttp import web

from ..digest import Digest
from .storage.registry import RegistryStorage

log = logging.getLogger("ocikit.server.proxy")

LAG_LIMIT = 16 << 20
"""Bytes a subscriber may have queued before it is left to catch up from the stored blob."""


class _Subscriber:
    __slots__ = ("pieces", "queued", "lagging", "wake", "ended")

    def __init__(self) -> None:
        self.pieces: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.lagging = False
        self.wake = asyncio.Event()
        self.ended = False

    def offer(self, chunk: bytes) -> None:
        if self.lagging:
            return
        if self.queued + len(chunk) > LAG_LIMIT:
            self.lagging = True
        else:
            self.pieces.append(chunk)
            self.queued += len(chunk)
        self.wake.set()

    def end(self) -> None:
        self.ended = True
        self.wake.set()


class BlobFetch:
    """Fetch ``digest`` (``size`` bytes) from ``source`` into repository ``name`` of ``storage``."""

    def __init__(self, storage: RegistryStorage, name: str, digest: Digest, size: int,
                 source: Callable[[], AsyncIterator[bytes]], *, what: str) -> None:
        self.storage = storage
        self.name = name
        self.digest = digest
        self.size = size
        self.what = what
        self.received = 0
        self._source = source
        self._subscribers: list[_Subscriber] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no warning
        self.task = asyncio.create_task(self._run())

    async def _tee(self) -> AsyncIterator[bytes]:
        async for chunk in self._source():
            self.received += len(chunk)
            for sub in self._subscribers:
                sub.offer(chunk)
            yield chunk

    async def _run(self) -> None:
        s = self.storage
        upload_id = await s.start_upload(self.name)
        try:
            await s.append_upload(self.name, upload_id, self._tee(), content_length=self.size)
            await s.finish_upload(self.name, upload_id, self.digest)
        except BaseException as e:  # noqa: BLE001 - every failure is reported to the waiting clients
            try:
                await s.cancel_upload(self.name, upload_id)
            except Exception:  # noqa: BLE001 - finish_upload may have dropped the spool already
                pass
            if isinstance(e, Exception):
                log.warning("%s: not cached: %s", self.what, e)
                self.done.set_exception(e)
            else:
                self.done.cancel()
                raise
        else:
            self.done.set_result(None)
        finally:
            for sub in self._subscribers:
                sub.end()

    @property
    def streaming(self) -> bool:
        """Whether bytes have passed already (a new client then waits for the stored blob)."""
        return self.received > 0 or self.done.done()

    async def wait(self) -> None:
        """Until the blob is stored (raises what made the fetch fail)."""
        await asyncio.shield(self.done)

    async def stream(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        """Answer ``request`` with the blob as it arrives (call only while not :attr:`streaming`)."""
        sub = _Subscriber()
        self._subscribers.append(sub)
        resp = web.StreamResponse(headers=headers)
        resp.content_length = self.size
        sent = 0
        held: bytes | None = None
        try:
            while not sub.pieces and not sub.ended:  # an upstream error before the first byte is an
                sub.wake.clear()                     # error answer, not a cut 200
                await sub.wake.wait()
            if not sub.pieces and self.done.done() and not self.done.cancelled() \
                    and self.done.exception() is not None:
                raise self.done.exception()  # type: ignore[misc]
            await resp.prepare(request)
            while True:
                while sub.pieces:
                    chunk = sub.pieces.popleft()
                    sub.queued -= len(chunk)
                    if held is not None:
                        await resp.write(held)
                        sent += len(held)
                    held = chunk
                if sub.ended:
                    break
                sub.wake.clear()
                await sub.wake.wait()
        finally:
            self._subscribers.remove(sub)
        try:
            await self.wait()
        except Exception:  # noqa: BLE001 - logged by the fetch; the client sees a cut connection
            if request.transport is not None:
                request.transport.close()
            return resp
        if held is not None:
            await resp.write(held)
            sent += len(held)
        if sent < self.size:  # fell behind: the rest from the stored copy
            async for chunk in self.storage.blob_chunks(self.digest, sent):
                await resp.write(chunk)
        await resp.write_eof()
        return resp
