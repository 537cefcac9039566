"""A streamed blob GET relayed from S3 to the client in the kernel: ``splice(2)`` through pipes.

Python moving a GiB through user space costs two copies, an allocation per 256 KiB read and a
pass through aiohttp's buffers on each side (~0.6 CPU-s/GB, twice what Go's ``io.Copy`` costs).
When the object store speaks plain HTTP and the client connection is plain TCP, none of that is
needed: the object is read with ranged GETs of a presigned URL (SigV4 query signature; the
``Range`` header is not part of it) over raw sockets, and each S3 socket's bytes are spliced
into its own pipe and from there into the client's socket. Several ranges are in flight; the
ranges behind the first fill their pipes (and their sockets' receive buffers) while the first
is written out, so the bucket keeps delivering while the client is being served. Nothing of the
object enters the process's memory (the pipes and socket buffers are kernel memory, bounded).

One thread per relay runs the loop with ``poll(2)``; the event loop only waits for it. The
client socket is ``dup``'d, so a connection closed under the relay never lets its bytes land on
a reused descriptor. Any failure after the response's head is sent can only cut the body short,
as a streamed GET through Python would.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ...core.errors import StorageUnavailable
from ...core.ownthread import run_in_own_thread

PIPE_SIZE = 1 << 20
"""Bytes one range may hold in its pipe ahead of the client (kernel memory)."""
HEAD_LIMIT = 64 << 10
"""An S3 response head larger than this is refused."""


def available() -> bool:
    """``os.splice`` exists (Linux, Python >= 3.10)."""
    return sys.platform.startswith("linux")


def _flags() -> int:
    return os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


@dataclass
class Target:
    """Where the ranged GETs go: a plain-HTTP presigned URL split into what a request needs."""

    host: str
    port: int
    request_target: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target | None:
        """``None`` unless ``url`` is ``http://`` (TLS cannot be spliced)."""
        u = urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            return None
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        return cls(u.hostname, u.port or 80, target, u.netloc)


@dataclass
class _Range:
    """One ranged GET in flight: its socket, its pipe, and what is left to move."""

    sock: socket.socket
    r: int
    w: int
    to_pipe: int
    to_client: int
    in_pipe: int = 0
    pipe_full: bool = field(default=False)

    def close(self) -> None:
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.sock.close()


def _pipe() -> tuple[int, int]:
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # the default size (64 KiB) works, with more wake-ups
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def _open(t: Target, start: int, stop: int, timeout: float) -> _Range:
    """Send ``GET`` of bytes ``start..stop-1``, read the response head, return the body's socket."""
    try:
        sock = socket.create_connection((t.host, t.port), timeout)
    except OSError as e:
        raise StorageUnavailable(f"S3 {t.host}:{t.port}: {e}") from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"GET {t.request_target} HTTP/1.1\r\nHost: {t.host_header}\r\n"
                     f"Range: bytes={start}-{stop - 1}\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while (end := buf.find(b"\r\n\r\n")) < 0:
            data = sock.recv(HEAD_LIMIT)
            if not data or len(buf) > HEAD_LIMIT:
                raise StorageUnavailable(f"S3 {t.host}:{t.port}: no response head for a ranged GET")
            buf += data
        head, body = buf[:end].decode("latin-1").split("\r\n"), buf[end + 4:]
        status = head[0].split(" ", 2)
        length = next((int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:")), -1)
        if len(status) < 2 or status[1] not in ("200", "206") or length != stop - start:
            raise StorageUnavailable(f"S3 {t.host}:{t.port}: ranged GET answered {head[0]!r}, "
                                     f"Content-Length {length} (expected {stop - start})")
        if len(body) > length:
            raise StorageUnavailable(f"S3 {t.host}:{t.port}: more bytes than the range asked for")
        sock.setblocking(False)
        r, w = _pipe()
    except BaseException:
        sock.close()
        raise
    rng = _Range(sock, r, w, length - len(body), length, len(body))
    if body:  # the pipe is empty and larger than one read: this never blocks
        os.set_blocking(w, True)
        os.write(w, body)
        os.set_blocking(w, False)
    return rng


def _fill(rng: _Range) -> bool:
    """Splice socket -> pipe while both allow; ``True`` if anything moved."""
    moved = False
    while rng.to_pipe and not rng.pipe_full:
        try:
            n = os.splice(rng.sock.fileno(), rng.w, min(rng.to_pipe, PIPE_SIZE), flags=_flags())
        except BlockingIOError:
            # the socket has nothing, or the pipe has no free slot: ask the pipe
            p = select.poll()
            p.register(rng.w, select.POLLOUT)
            rng.pipe_full = not p.poll(0)
            return moved
        if n == 0:
            raise StorageUnavailable("S3 closed a ranged GET before its end")
        rng.to_pipe -= n
        rng.in_pipe += n
        moved = True
    return moved


def _drain(rng: _Range, out: int) -> bool:
    """Splice pipe -> client while the client takes it; ``True`` if anything moved."""
    moved = False
    while rng.in_pipe:
        try:
            n = os.splice(rng.r, out, rng.in_pipe, flags=_flags())
        except BlockingIOError:
            return moved
        rng.in_pipe -= n
        rng.to_client -= n
        rng.pipe_full = False
        moved = True
    return moved


def relay(t: Target, spans: list[tuple[int, int]], out: int, wake: int, parallel: int, timeout: float) -> None:
    """Move bytes ``spans`` of the object at ``t`` to the socket ``out``, in order (blocking; a thread).

    ``parallel`` ranged GETs in flight; a byte readable on ``wake`` aborts; no progress for
    ``timeout`` seconds is :class:`StorageUnavailable`.
    """
    todo = list(spans)
    active: list[_Range] = []
    try:
        while todo or active:
            while todo and len(active) < parallel:
                active.append(_open(t, *todo.pop(0), timeout))
            head = active[0]
            for rng in active:
                _fill(rng)
            _drain(head, out)
            if head.to_client == 0:
                active.pop(0).close()
                continue
            if head.in_pipe == 0 and head.to_pipe == 0:
                raise StorageUnavailable("relay lost track of a range")  # never: bytes are in the pipe
            p = select.poll()
            p.register(wake, select.POLLIN)
            if head.in_pipe:
                p.register(out, select.POLLOUT)
            for rng in active:
                if rng.to_pipe:
                    p.register(rng.w if rng.pipe_full else rng.sock.fileno(),
                               select.POLLOUT if rng.pipe_full else select.POLLIN)
            events = p.poll(timeout * 1000)
            if not events:
                raise StorageUnavailable(f"relay from S3: no progress for {timeout:.0f} s")
            for fd, ev in events:
                if fd == wake:
                    raise ConnectionAbortedError("relay cancelled")
                if fd == out and ev & (select.POLLERR | select.POLLHUP):
                    raise ConnectionResetError("client went away")
                for rng in active:
                    if fd == rng.w:
                        rng.pipe_full = False
    finally:
        for rng in active:
            rng.close()


async def relay_async(t: Target, spans: list[tuple[int, int]], sock_fd: int, parallel: int,
                      timeout: float) -> None:
    """:func:`relay` in its own thread, on a ``dup`` of ``sock_fd``; cancelling stops it."""
    out = os.dup(sock_fd)
    wake_r, wake_w = os.pipe()

    def run() -> None:
        try:
            relay(t, spans, out, wake_r, parallel, timeout)
        finally:
            os.close(out)
            os.close(wake_r)

    def stop() -> None:
        os.write(wake_w, b"x")

    try:
        await run_in_own_thread(run, abort=stop, name="s3-relay")
    finally:
        os.close(wake_w)
