"""Sending a spool that a thread fills to plain-TCP clients, from threads, as it grows.

While a pull-through fetch is received by a thread of its own (:meth:`BlobFetch._fill_in_thread`),
its clients are sent the bytes without the event loop:

* the **lead** — the client that asked first, while little has arrived — is sent each piece by
  the filling thread itself, right after the piece is hashed and written, from the same buffer:
  no second copy out of the page cache, no second thread to hand over to. That thread then waits
  for the lead's socket to take the piece, so the fetch goes at the lead's pace: the upstream,
  this server and the client each use the cores in turn rather than all at once, as a plain
  forwarder does (``bench/proxy``: its ``lean`` floor). The lead is let go — and sent the rest
  by a thread of its own, from where it was — as soon as another client of the same blob comes,
  when the fetch has to be stopped, or when its socket has taken nothing for
  :data:`LEAD_PATIENCE` seconds: no client ever waits on another;
* every other client is sent what the spool holds by a **sender** thread of its own (blocking
  ``pread`` + ``write``), waiting for more as the spool grows.

Every client is sent all but the last byte here; the event loop sends that once the digest
checked out (:mod:`.blobfetch`), so no client takes a bad blob as complete.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading

from ..core.ownthread import run_in_own_thread, wait_out
from .filesend import PIECE, write_socket, write_view

LEAD_PATIENCE = 2.0
"""Seconds the filling thread waits for the lead's socket to take anything before it lets the
lead go (a client that stopped reading never holds up the fetch for longer)."""
LEAD_START_MAX = 4 << 20
"""A client can lead only while the spool holds at most this many bytes (the filling thread
first sends it what it missed, from the spool)."""
MAX_SENDERS = 64
"""Sender threads per fetch, at most (further clients: sent by the event loop)."""


class _Lead:
    """The lead client: its socket (a ``dup``), the spool to catch up from, and how far it got."""

    def __init__(self, out: int, spool_fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.out = out
        self.spool_fd = spool_fd
        self.sent = 0
        self.go = False
        """Set (by the event loop) when the lead is to be let go."""
        self.error: OSError | None = None
        self.released: asyncio.Future[None] = loop.create_future()
        self.wake_r, self.wake_w = os.pipe()
        self.poll = select.poll()
        self.poll.register(out, select.POLLOUT)
        self.poll.register(self.wake_r, select.POLLIN)

    def send(self, data: memoryview) -> bool:
        """In the filling thread: write all of ``data``; ``False`` when the lead is to be let go
        instead (asked to, or its socket took nothing for :data:`LEAD_PATIENCE` seconds)."""
        n = write_view(self.out, data, self.poll, LEAD_PATIENCE)
        self.sent += n
        return n == len(data)

    def close(self) -> None:
        for fd in (self.out, self.wake_r, self.wake_w):
            os.close(fd)


class SpoolSenders:
    """The plain-TCP clients of one spool of ``size`` bytes that a thread fills."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._loop = asyncio.get_running_loop()
        self._grown = threading.Condition()
        self.filled = 0
        """Bytes in the spool (the filling thread's count)."""
        self.filling = False
        self._lead: _Lead | None = None
        self._led = False
        self._threads = 0

    # ---- the filling side -------------------------------------------------------------------

    def start(self) -> None:
        """The filling thread is about to start."""
        self.filling = True

    def grown(self, end: int, piece: memoryview) -> None:
        """In the filling thread: ``piece`` was written and the spool now holds ``end`` bytes."""
        with self._grown:
            self.filled = end
            self._grown.notify_all()
        lead = self._lead
        if lead is None:
            return
        try:
            if not self._to_lead(lead, end, piece):
                self._let_go(lead)
        except OSError as e:  # the lead's client went away (or its spool could not be read)
            lead.error = e
            self._let_go(lead)

    def _to_lead(self, lead: _Lead, end: int, piece: memoryview) -> bool:
        if lead.go:
            return False
        start, stop = end - len(piece), min(end, self.size - 1)  # the last byte is the event loop's
        while lead.sent < min(start, stop):  # it came after the first pieces: what it missed, from the spool
            data = os.pread(lead.spool_fd, min(PIECE, start - lead.sent), lead.sent)
            if not data:
                raise OSError(f"spool ended at byte {lead.sent}")
            if not lead.send(memoryview(data)):
                return False
        if lead.sent < stop:
            return lead.send(piece[lead.sent - start:stop - start])
        return True

    def _let_go(self, lead: _Lead) -> None:
        """In the filling thread: the lead goes on by a thread of its own (or ends, with its error)."""
        self._lead = None
        self._loop.call_soon_threadsafe(_settle, lead)

    def ended(self) -> None:
        """On the event loop, once the filling thread is done (the spool is complete, or the fill failed)."""
        with self._grown:
            self.filling = False
            self._grown.notify_all()
        lead, self._lead = self._lead, None
        if lead is not None:
            _settle(lead)

    def others_came(self) -> None:
        """Another client of the blob came (or a request waits for it whole): let the lead go, so
        that the fetch no longer goes at its pace."""
        lead = self._lead
        if lead is not None and not lead.go:
            lead.go = True
            os.write(lead.wake_w, b"x")  # wakes the filling thread if it waits for the lead's socket

    # ---- the clients' side ------------------------------------------------------------------

    async def send(self, sock_fd: int, spool_fd: int, *, first: bool) -> int:
        """Send the growing spool (opened as ``spool_fd``) to the client's socket ``sock_fd``, all
        but its last byte or until the fill ends; returns the bytes sent. ``first``: no other
        client came yet (it may lead). Raises ``ConnectionError`` when the client went away, and
        ``OSError`` when the spool was cut back under it (the fill failed)."""
        sent = 0
        if first and not self._led and self.filling and self.filled <= LEAD_START_MAX:
            sent = await self._lead_on(sock_fd, spool_fd)
        if self.filling and sent < self.size - 1 and self._threads < MAX_SENDERS:
            sent = await self._send_from(sock_fd, spool_fd, sent)
        return sent

    async def _lead_on(self, sock_fd: int, spool_fd: int) -> int:
        lead = _Lead(os.dup(sock_fd), spool_fd, self._loop)
        self._led = True
        self._lead = lead
        try:
            await asyncio.shield(lead.released)
        except asyncio.CancelledError:
            self.others_came()
            await wait_out(lead.released)  # the filling thread lets go of it (or ends) before its socket closes
            raise
        finally:
            if lead.released.done():
                lead.close()
        if lead.error is not None:
            raise lead.error
        return lead.sent

    def _wait_grown(self, sent: int, stop: threading.Event) -> int:
        """In a sender thread: the spool's size once it holds more than ``sent`` bytes (or the fill ended)."""
        with self._grown:
            while self.filled <= sent and self.filling and not stop.is_set():
                self._grown.wait(1.0)
            if stop.is_set():
                raise ConnectionAbortedError("send cancelled")
            return self.filled

    async def _send_from(self, sock_fd: int, spool_fd: int, sent: int) -> int:
        out = os.dup(sock_fd)  # a connection closed under the thread never lets bytes land on a reused fd
        stop = threading.Event()

        def run() -> None:
            nonlocal sent
            try:
                while sent < self.size - 1:
                    upto = min(self._wait_grown(sent, stop), self.size - 1)
                    if upto <= sent:
                        return  # the fill ended (stored, or failed): the event loop goes on
                    write_socket(out, spool_fd, sent, upto - sent, stop)
                    sent = upto
            finally:
                os.close(out)

        self._threads += 1
        try:
            await run_in_own_thread(run, abort=stop.set, name="ocikit-send")
        finally:
            self._threads -= 1
        return sent


def _settle(lead: _Lead) -> None:
    if not lead.released.done():
        lead.released.set_result(None)


__all__ = ["LEAD_PATIENCE", "LEAD_START_MAX", "MAX_SENDERS", "SpoolSenders"]
