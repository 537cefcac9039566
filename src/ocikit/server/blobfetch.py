"""One upstream fetch of a blob, streamed to every client that asked while it is stored (single-flight).

A :class:`BlobFetch` runs as its own task, not as part of any request: a client that goes away
does not stop the blob from being cached. The bytes are appended to an upload spool of the
registry storage (hashed and written in a worker thread, :func:`ocikit.durable.write_stream`)
and committed only when digest and size check out (:meth:`RegistryStorage.finish_upload`); a
lying upstream leaves nothing behind.

With a filesystem driver every client *follows the spool*: it is sent (:mod:`.filesend`) what
the spool file holds so far, from whichever byte it has reached, then waits for more; no piece
is queued in memory, a slow client only ever waits for its own socket, and a client that comes
while bytes flow joins at byte 0 without waiting for the end. Without a local spool (S3),
clients that ask before the first byte arrived are *subscribers*: each gets every piece as it
comes, through a queue bounded by :data:`LAG_LIMIT` bytes; a subscriber whose client reads more
slowly than the upstream sends stops being fed and, once the blob is stored, carries on from the
stored copy; clients that ask once bytes have passed wait for the end. Either way the last byte
is held back until the fetch is verified (not until it is durably stored: the client's copy is
right either way); when it is not, the client's connection is cut short,
so no client takes a bad blob as complete.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from typing import IO, AsyncIterator, Awaitable, Callable

from aiohttp import web

from ..core.digest import Digest
from ..transports.registry.threadget import NotStarted
from .filesend import file_response, plain_socket, send_span
from .spoolsend import SpoolSenders
from .storage.base import Fill
from .storage.registry import RegistryStorage

log = logging.getLogger("ocikit.server.proxy")

LAG_LIMIT = 16 << 20
"""Bytes a subscriber may have queued before it is left to catch up from the stored blob."""
THREAD_MIN = 1 << 20
"""Blobs at least this large are received by a thread of their own when the storage spools
locally (smaller ones: through the event loop, on the upstream client's pooled connections)."""


class _Subscriber:
    __slots__ = ("pieces", "queued", "lagging", "wake", "ended")

    def __init__(self) -> None:
        self.pieces: collections.deque[bytes] = collections.deque()
        self.queued = 0
        self.lagging = False
        self.wake = asyncio.Event()
        self.ended = False

    def offer(self, chunk: bytes) -> None:
        if self.lagging:  # a follower (or a subscriber left behind): woken, not fed
            self.wake.set()
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
                 source: Callable[[], AsyncIterator[bytes]], *, what: str,
                 prepare: Callable[[], Awaitable[Fill]] | None = None) -> None:
        self.storage = storage
        self.name = name
        self.digest = digest
        self.size = size
        self.what = what
        self.received = 0
        self.checked = False
        """Every byte is in and the digest checked out (the durable commit may still be running)."""
        self._source = source
        self._prepare = prepare
        self._subscribers: list[_Subscriber] = []
        self._loop = asyncio.get_running_loop()
        self._senders = SpoolSenders(size)
        self._clients = 0
        self._loop_followers = 0
        self.spool: str | None = None
        """The spool's data file once the upload started (``None``: a driver without local spools)."""
        self.done: asyncio.Future[None] = self._loop.create_future()
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
        self.spool = s.driver.spool_path(upload_id)
        try:
            if not await self._fill_in_thread(upload_id):
                await s.append_upload(self.name, upload_id, self._tee(), content_length=self.size)
            await s.finish_upload(self.name, upload_id, self.digest, verified=self._checked)
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

    async def _fill_in_thread(self, upload_id: str) -> bool:
        """Receive, hash and write the blob in a thread of its own (:mod:`~ocikit.transports.registry.threadget`);
        ``False`` when that cannot be done (no local spool, a small blob, an upstream answer the
        thread does not expect): the caller fetches it through the event loop instead."""
        if self._prepare is None or self.spool is None or self.size < THREAD_MIN:
            return False
        try:
            fill = await self._prepare()
        except Exception as e:  # noqa: BLE001 - the usual path reports it, with its retries
            log.debug("%s: %s; fetching through the event loop", self.what, e)
            return False
        self._senders.start()
        try:
            await self.storage.fill_upload(self.name, upload_id, fill, self.size, self._written)
        except NotStarted as e:
            log.debug("%s; fetching through the event loop", e)
            return False
        finally:
            self._senders.ended()
        return True

    def _written(self, end: int, piece: memoryview) -> None:
        """In the filling thread: ``piece`` was written, the spool holds ``end`` bytes."""
        first = not self.received
        self.received = end
        if first or self._loop_followers:
            self._loop.call_soon_threadsafe(self._wake)
        self._senders.grown(end, piece)

    def hurry(self) -> None:
        """Someone waits for the whole blob: the fetch no longer goes at its first client's pace."""
        self._senders.others_came()

    def _wake(self) -> None:
        for sub in self._subscribers:
            sub.wake.set()

    def _checked(self) -> None:
        self.checked = True
        self._wake()

    @property
    def joinable(self) -> bool:
        """Whether a new client can be streamed the blob now (else it waits for the stored blob):
        before the first byte, or while a local spool grows."""
        return not self.done.done() and (self.received == 0 or self.spool is not None)

    async def wait(self) -> None:
        """Until the blob is stored (raises what made the fetch fail)."""
        await asyncio.shield(self.done)

    def _verified(self) -> bool | None:
        """True once the bytes checked out (clients need not wait for the durable commit), False
        when the fetch failed before that, None while it runs."""
        if self.checked:
            return True
        if not self.done.done():
            return None
        return not self.done.cancelled() and self.done.exception() is None

    async def stream(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        """Answer ``request`` with the blob as it arrives (call only while :attr:`joinable`)."""
        sub = _Subscriber()
        self._subscribers.append(sub)
        self._clients += 1
        if self._clients > 1:
            self._senders.others_came()
        resp = web.StreamResponse(headers=headers)
        resp.content_length = self.size
        try:
            while not sub.pieces and not sub.ended and not (self.spool is not None and self.received):
                sub.wake.clear()  # an upstream error before the first byte is an error answer, not a cut 200
                await sub.wake.wait()
            if self._verified() is False and not sub.pieces:
                raise self.done.exception()  # type: ignore[misc]
            if self.spool is not None:
                sub.lagging, sub.pieces, sub.queued = True, collections.deque(), 0  # a follower: woken, not fed
                f = self._open_spool()
                if f is not None:
                    with f:
                        await resp.prepare(request)
                        sent = await self._from_threads(request, f.fileno())
                        if sent is None:  # the fill failed: the client's connection was cut
                            return resp
                        return await self._follow(request, resp, sub, f.fileno(), sent)
                # committed already: the stored blob, as any other
                self._subscribers.remove(sub)
                await self.wait()
                path = self.storage.blob_path(self.digest)
                assert path is not None
                fd = os.open(path, os.O_RDONLY)
                try:
                    return await file_response(request, fd, self.size, headers)
                finally:
                    os.close(fd)
            await resp.prepare(request)
            return await self._feed(request, resp, sub)
        finally:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def _open_spool(self) -> IO[bytes] | None:
        assert self.spool is not None
        try:
            return open(self.spool, "rb")
        except FileNotFoundError:  # renamed into place (or dropped) meanwhile
            return None

    async def _from_threads(self, request: web.Request, spool_fd: int) -> int | None:
        """While a thread fills the spool, send a plain-TCP client from threads (:mod:`.spoolsend`):
        the bytes sent (0 when it cannot be), or ``None`` when the fill failed under them (the
        client's connection is then cut)."""
        sock_fd = plain_socket(request)
        if not self._senders.filling or sock_fd is None:
            return 0
        try:
            return await self._senders.send(sock_fd, spool_fd, first=self._clients == 1)
        except ConnectionError:
            if request.transport is not None:
                request.transport.abort()  # the dispatcher then sees a client gone
            raise ConnectionResetError("client went away") from None
        except OSError:  # the spool was cut back under the thread: the fill failed
            await asyncio.wait([self.done])
            if self._verified() is not False:
                raise
            if request.transport is not None:
                request.transport.close()
            return None

    async def _follow(self, request: web.Request, resp: web.StreamResponse, sub: _Subscriber,
                      fd: int, sent: int) -> web.StreamResponse:
        """Send what the spool holds from byte ``sent`` on, piece by piece, as it grows; the last
        byte once verified."""
        self._loop_followers += 1  # the filling thread wakes the event loop for them
        try:
            while True:
                verified = self._verified()
                if verified is False:
                    if request.transport is not None:
                        request.transport.close()
                    return resp
                limit = self.size if verified else min(os.fstat(fd).st_size, self.size - 1)
                if limit > sent:
                    if request.transport is None:
                        raise ConnectionResetError("client went away")
                    await send_span(resp, fd, sent, limit - sent)
                    sent = limit
                    continue
                if verified:
                    break
                sub.wake.clear()
                await sub.wake.wait()
        finally:
            self._loop_followers -= 1
        await resp.write_eof()
        return resp

    async def _feed(self, request: web.Request, resp: web.StreamResponse, sub: _Subscriber) -> web.StreamResponse:
        """Send the pieces as they come (no local spool); a client left behind, the stored copy."""
        sent = 0
        held: bytes | None = None
        while True:
            while sub.pieces:
                chunk = sub.pieces.popleft()
                sub.queued -= len(chunk)
                if held is not None:
                    await resp.write(held)
                    sent += len(held)
                held = chunk
            if sub.ended or self.checked:  # checked: every piece was offered already
                break
            sub.wake.clear()
            await sub.wake.wait()
        self._subscribers.remove(sub)
        try:
            if not self.checked or sub.lagging:
                await self.wait()  # the verdict; and, for a client left behind, the stored copy
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
