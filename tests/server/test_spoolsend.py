"""SpoolSenders with real sockets, a real spool file and a real filling thread (no server needed):
the lead is sent by the filling thread, let go when others come, when it stalls, or when it
leaves; every client gets exactly the spool's bytes but the last."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading

import pytest

from ocikit.server import spoolsend
from ocikit.server.spoolsend import SpoolSenders

PIECE = (1 << 20) - 4096


def _content(size: int) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(str(i).encode()).digest() * 1024
        i += 1
    return bytes(out[:size])


class Filler:
    """A thread that writes ``data`` to a spool file piece by piece, telling ``senders`` of each,
    once ``go`` is set; with ``pause_after``, it stops after that many pieces until ``resume``."""

    def __init__(self, path: str, data: bytes, senders: SpoolSenders, pause_after: int | None = None) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self.data = data
        self.senders = senders
        self.pause_after = pause_after
        self.go = threading.Event()
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.go.wait(60)
        buf = memoryview(bytearray(PIECE))
        pos = pieces = 0
        try:
            while pos < len(self.data):
                if pieces == self.pause_after:
                    self.paused.set()
                    self.resume.wait(60)
                n = min(PIECE, len(self.data) - pos)
                buf[:n] = self.data[pos:pos + n]
                os.write(self.fd, buf[:n])
                pos += n
                pieces += 1
                self.senders.grown(pos, buf[:n])
        finally:
            os.close(self.fd)
            self.done.set()


def _client_pair() -> tuple[socket.socket, socket.socket]:
    """(server side, non-blocking as asyncio's; client side) of a TCP connection on 127.0.0.1."""
    with socket.create_server(("127.0.0.1", 0)) as ls:
        client = socket.create_connection(ls.getsockname())
        server, _ = ls.accept()
    server.setblocking(False)
    return server, client


def _read_all(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        got = sock.recv(min(1 << 20, n - len(out)))
        if not got:
            break
        out += got
    return bytes(out)


class Rig:
    """Inside a running loop: a :class:`SpoolSenders` of ``data``, the :class:`Filler` of its spool
    file, and clients of it (:meth:`client`); everything is closed by :meth:`close`."""

    def __init__(self, path: str, data: bytes, pause_after: int | None = None) -> None:
        self.path = path
        self.senders = SpoolSenders(len(data))
        self.senders.start()
        self.filler = Filler(path, data, self.senders, pause_after)
        self._sockets: list[socket.socket] = []
        self._fds: list[int] = []

    def client(self) -> tuple[socket.socket, socket.socket, int]:
        """(server side, client side, the spool opened for reading) of a new client."""
        server, client = _client_pair()
        spool = os.open(self.path, os.O_RDONLY)
        self._sockets += [server, client]
        self._fds.append(spool)
        return server, client, spool

    def fill(self) -> asyncio.Future[None]:
        return asyncio.ensure_future(_run_fill(self.filler, self.senders))

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        for s in self._sockets:
            s.close()


async def _run_fill(filler: Filler, senders: SpoolSenders) -> None:
    filler.thread.start()
    filler.go.set()
    await asyncio.get_running_loop().run_in_executor(None, filler.done.wait, 60)
    senders.ended()


def test_the_lead_is_sent_every_byte_but_the_last_by_the_filling_thread(tmp_path):
    data = _content(9 * PIECE + 1234)

    async def run() -> tuple[int, bytes]:
        rig = Rig(str(tmp_path / "spool"), data)
        server, client, spool = rig.client()
        try:
            reader = asyncio.get_running_loop().run_in_executor(None, _read_all, client, len(data) - 1)
            fill = rig.fill()
            sent = await rig.senders.send(server.fileno(), spool, first=True)
            await fill
            return sent, await reader
        finally:
            rig.close()

    sent, got = asyncio.run(run())
    assert sent == len(data) - 1
    assert got == data[:-1]


def test_a_lead_that_came_late_is_first_sent_what_it_missed(tmp_path):
    data = _content(6 * PIECE)

    async def run() -> tuple[int, bytes]:
        rig = Rig(str(tmp_path / "spool"), data, pause_after=2)
        server, client, spool = rig.client()
        loop = asyncio.get_running_loop()
        try:
            fill = rig.fill()
            assert await loop.run_in_executor(None, rig.filler.paused.wait, 60)
            assert rig.senders.filled == 2 * PIECE  # two pieces are in before the client comes
            reader = loop.run_in_executor(None, _read_all, client, len(data) - 1)
            sending = asyncio.ensure_future(rig.senders.send(server.fileno(), spool, first=True))
            await asyncio.sleep(0.2)  # the lead is registered by then
            rig.filler.resume.set()
            sent = await sending
            await fill
            return sent, await reader
        finally:
            rig.close()

    sent, got = asyncio.run(run())
    assert sent == len(data) - 1
    assert got == data[:-1]


def test_a_stalled_lead_is_let_go_and_the_fill_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(spoolsend, "LEAD_PATIENCE", 0.3)
    data = _content(24 * PIECE)  # far more than the socket buffers hold

    async def run() -> tuple[bool, bytes]:
        rig = Rig(str(tmp_path / "spool"), data)
        server, client, spool = rig.client()
        loop = asyncio.get_running_loop()
        try:
            sending = asyncio.ensure_future(rig.senders.send(server.fileno(), spool, first=True))
            await asyncio.sleep(0.1)
            fill = rig.fill()
            # nobody reads: the filling thread waits for the lead's socket, then lets it go
            filled_without_reader = await loop.run_in_executor(None, rig.filler.done.wait, 60)
            got = await loop.run_in_executor(None, _read_all, client, len(data) - 1)
            await fill
            assert await sending == len(data) - 1
            return filled_without_reader, got
        finally:
            rig.close()

    filled, got = asyncio.run(run())
    assert filled
    assert got == data[:-1]


def test_a_second_client_lets_the_lead_go(tmp_path):
    data = _content(24 * PIECE)

    async def run() -> tuple[bool, bytes, bytes]:
        rig = Rig(str(tmp_path / "spool"), data)
        lead_server, lead_client, spool = rig.client()
        other_server, other_client, spool2 = rig.client()
        loop = asyncio.get_running_loop()
        try:
            leading = asyncio.ensure_future(rig.senders.send(lead_server.fileno(), spool, first=True))
            await asyncio.sleep(0.1)
            fill = rig.fill()
            await asyncio.sleep(0.3)  # the lead reads nothing: the fill waits on it (patience: 2 s)
            rig.senders.others_came()
            other = asyncio.ensure_future(rig.senders.send(other_server.fileno(), spool2, first=False))
            other_got = await loop.run_in_executor(None, _read_all, other_client, len(data) - 1)
            # the second client got everything while the lead still had not read a byte
            filled_before_lead_read = rig.filler.done.is_set()
            lead_got = await loop.run_in_executor(None, _read_all, lead_client, len(data) - 1)
            await fill
            assert await other == len(data) - 1
            assert await leading == len(data) - 1
            return filled_before_lead_read, other_got, lead_got
        finally:
            rig.close()

    filled_first, other_got, lead_got = asyncio.run(run())
    assert filled_first
    assert other_got == data[:-1]
    assert lead_got == data[:-1]


def test_a_lead_that_goes_away_is_a_connection_error_and_the_fill_goes_on(tmp_path):
    data = _content(24 * PIECE)

    async def run() -> bool:
        rig = Rig(str(tmp_path / "spool"), data)
        server, client, spool = rig.client()
        try:
            sending = asyncio.ensure_future(rig.senders.send(server.fileno(), spool, first=True))
            await asyncio.sleep(0.1)
            fill = rig.fill()
            await asyncio.get_running_loop().run_in_executor(None, client.recv, 1 << 20)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.close()  # a reset
            with pytest.raises(ConnectionError):
                await sending
            await fill
            return rig.filler.done.is_set()
        finally:
            rig.close()

    assert asyncio.run(run())


def test_a_lead_cancelled_twice_keeps_its_socket_until_the_filling_thread_let_go(tmp_path):
    """The request is cancelled while the filling thread is busy sending to the lead, and again
    while it waits for the thread to let go: its socket stays open until then (closing it under
    the thread could let bytes land on a reused descriptor)."""
    data = _content(24 * PIECE)

    async def run() -> tuple[bool, bool]:
        rig = Rig(str(tmp_path / "spool"), data, pause_after=1)
        server, client, spool = rig.client()
        loop = asyncio.get_running_loop()
        try:
            fill = rig.fill()
            assert await loop.run_in_executor(None, rig.filler.paused.wait, 60)
            sending = asyncio.ensure_future(rig.senders.send(server.fileno(), spool, first=True))
            await asyncio.sleep(0.1)  # the lead is registered; the filling thread is paused
            sending.cancel()
            await asyncio.sleep(0.1)
            sending.cancel()
            await asyncio.sleep(0.1)
            waited = not sending.done()  # the filling thread has not let go of it yet
            rig.filler.resume.set()
            with pytest.raises(asyncio.CancelledError):
                await sending
            await fill
            return waited, rig.filler.done.is_set()
        finally:
            rig.close()

    assert asyncio.run(run()) == (True, True)
