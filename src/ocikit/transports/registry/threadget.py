"""A blob's body received by a worker thread with the standard library's blocking ``http.client``.

Reading a large body on the event loop costs a turn of the loop per piece, aiohttp's parser
copying each piece out of what the socket gave, and the reader joining what it buffered. When the
bytes go to a worker thread anyway (a pull-through cache hashes and writes them to its spool),
that thread can receive them itself: straight from the socket into one reused buffer, one copy
from the kernel, no turn of the event loop per piece (``bench/proxy``: a cold pull through the
cache ~10 % faster, see docs/cache.md).

:class:`ThreadedGet` is prepared on the event loop (:meth:`RegistryClient.prepare_get`: the URL
and the ``Authorization`` the client's token cache holds) and run in the thread. It follows
redirects (``Authorization`` stays with the registry's origin), resumes a dropped body with
``Range``, and raises :class:`NotStarted` when nothing of the body came — an answer it does not
expect (a challenge, an error, a size other than the one asked for), or a server it cannot reach
— so the caller can do the request the usual way, with its retries, challenges and error reports.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from typing import Callable, Mapping
from urllib.parse import urljoin, urlsplit

from ...core.errors import TransportError
from ...durable import WRITE_MAX

PIECE = WRITE_MAX
"""The most bytes handed on at once: each piece is what one ``recv`` got (on loopback mostly
several hundred KiB, as the consumer hashes and writes the one before), at most the size of the
writes that suit the page cache best (:data:`ocikit.durable.WRITE_MAX`), since the consumer
writes each piece as it is."""
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 8

Sink = Callable[[memoryview], None]


class NotStarted(Exception):
    """Nothing of the body arrived: do the request the usual way (the reason is in the message)."""


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the default port filled in: where credentials may go."""
    u = urlsplit(url)
    return u.scheme, (u.hostname or "").lower(), u.port or (443 if u.scheme == "https" else 80)


class ThreadedGet:
    """``GET url`` of ``size`` bytes, received in the calling (worker) thread; :meth:`abort` from any thread."""

    def __init__(self, url: str, headers: Mapping[str, str], size: int, *, ssl_context: ssl.SSLContext | None,
                 timeout: float, resumes: int, what: str) -> None:
        self.url = url
        self.headers = dict(headers)
        self.size = size
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.resumes = resumes
        self.what = what
        self.requests = 0
        """GETs sent (redirects and resumptions included)."""
        self._conn: http.client.HTTPConnection | None = None
        self._sock: socket.socket | None = None
        """The connection's socket, kept here: ``http.client`` lets go of it (``conn.sock`` is
        ``None``) once an answer says ``Connection: close``, while its body is still read from it."""
        self._resp: http.client.HTTPResponse | None = None
        self._aborted = False
        self._lock = threading.Lock()

    def abort(self) -> None:
        """Stop :meth:`run` soon (it raises ``ConnectionAbortedError``): its socket is shut down."""
        with self._lock:
            self._aborted = True
            sock = self._sock
        if sock is not None:
            try:  # the plain socket's shutdown, under TLS too: the reading thread keeps its SSL object
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self, sink: Sink) -> None:
        """Hand every byte of the body to ``sink``, in order, in pieces of up to :data:`PIECE` bytes."""
        buf = memoryview(bytearray(PIECE))
        offset = 0
        failures = 0
        while True:
            try:
                resp, skip = self._open(offset)
            except NotStarted:
                if offset == 0:
                    raise
                failures += 1
                if failures > self.resumes:
                    raise TransportError(f"{self.what}: connection lost at byte {offset} of {self.size}, "
                                         f"and resuming failed {failures} times") from None
                time.sleep(0.1 * failures)
                continue
            try:
                while offset < self.size:
                    try:
                        # what has arrived, up to a piece (one recv once the head's buffer is
                        # drained): a stalling upstream never holds back bytes that did come. The
                        # body has a Content-Length (checked in _open) and the connection is closed
                        # after it, so reading past the response's own count is safe.
                        limit = min(PIECE, skip) if skip else min(PIECE, self.size - offset)
                        n = resp.fp.readinto1(buf[:limit]) if resp.fp else 0
                    except (OSError, http.client.HTTPException) as e:
                        n, error = 0, e
                    else:
                        error = None
                    if not n:
                        self._check_aborted()
                        failures += 1
                        if failures > self.resumes:
                            cause = f": {error}" if error else ""
                            raise TransportError(f"{self.what}: connection lost at byte {offset} of {self.size} "
                                                 f"after {failures} tries{cause}") from None
                        break  # resume with Range
                    if skip:  # a whole body for a resume: what was handed on already is passed over
                        skip -= n
                        continue
                    sink(buf[:n])
                    offset += n
            finally:
                self._close()
            if offset >= self.size:
                return

    def _check_aborted(self) -> None:
        if self._aborted:
            raise ConnectionAbortedError(f"{self.what}: fetch cancelled")

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            resp, self._resp = self._resp, None
            self._sock = None
        if resp is not None:
            resp.close()
        if conn is not None:
            conn.close()

    def _open(self, offset: int) -> tuple[http.client.HTTPResponse, int]:
        """Send the GET (from ``offset``), following redirects: the response, and how many bytes of
        its body come before byte ``offset`` (a server that ignored ``Range`` sends the whole)."""
        url, headers = self.url, dict(self.headers)
        home = origin(url)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        for _ in range(MAX_REDIRECTS + 1):
            self._check_aborted()
            u = urlsplit(url)
            if u.scheme == "https":
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    u.hostname or "", u.port, timeout=self.timeout, context=self.ssl_context)
            elif u.scheme == "http":
                conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=self.timeout)
            else:
                raise NotStarted(f"{self.what}: redirected to {u.scheme}:")
            with self._lock:
                if self._aborted:
                    raise ConnectionAbortedError(f"{self.what}: fetch cancelled")
                self._conn = conn
            target = (u.path or "/") + (f"?{u.query}" if u.query else "")
            try:
                self.requests += 1
                conn.connect()
                with self._lock:  # abort() can shut it down from now on
                    self._sock = conn.sock
                    aborted = self._aborted
                if aborted:
                    raise ConnectionAbortedError(f"{self.what}: fetch cancelled")
                conn.request("GET", target, headers=headers)
                resp = self._resp = conn.getresponse()
            except ConnectionAbortedError:
                self._close()
                raise
            except (OSError, http.client.HTTPException) as e:
                self._close()
                self._check_aborted()
                raise NotStarted(f"{self.what}: {e}") from None
            if resp.status in REDIRECTS and resp.getheader("Location"):
                url = urljoin(url, resp.getheader("Location", ""))
                self._close()
                if origin(url) != home:
                    headers.pop("Authorization", None)
                continue
            length = resp.getheader("Content-Length", "")
            expected = self.size - offset
            if resp.status == 200 and length == str(self.size):
                return resp, offset
            if resp.status == 206 and offset and length == str(expected) and (
                    resp.getheader("Content-Range") or "").startswith(f"bytes {offset}-"):
                return resp, 0
            self._close()
            raise NotStarted(f"{self.what}: answered HTTP {resp.status} with Content-Length {length or 'none'} "
                             f"(expected {expected} bytes)")
        self._close()
        raise NotStarted(f"{self.what}: too many redirects")


__all__ = ["NotStarted", "PIECE", "Sink", "ThreadedGet", "origin"]
