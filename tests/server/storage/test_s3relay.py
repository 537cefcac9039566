"""The kernel relay of a streamed blob GET (S3 socket -> pipe -> client socket) against a real SeaweedFS:
exact bytes for any offset and length over several ranged GETs, an object vanishing mid-relay, a
client going away, the drivers and endpoints that cannot relay, and ``ocikit serve`` cutting the connection
when the bucket dies mid-body."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import aiohttp
import pytest

from ocikit.core.errors import StorageUnavailable
from ocikit.server.storage import s3 as s3mod
from ocikit.server.storage.s3 import S3Driver
from ocikit.server.storage.s3relay import Target
from ocikit.server.storage.s3settings import S3Settings

from helpers.rawhttp import Client
from helpers.servers import SeaweedServer, seaweedfs, start_ocikit_serve


def driver(s3: SeaweedServer, prefix: str) -> S3Driver:
    return S3Driver(S3Settings(bucket=s3.bucket, prefix=prefix, endpoint=s3.endpoint, access_key=s3.access_key,
                               secret_key=s3.secret_key))


def connected_pair(small_buffers: bool = False) -> tuple[socket.socket, socket.socket]:
    """A loopback TCP connection: (the server's end, non-blocking as asyncio keeps it; the client's end)."""
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        cli = socket.create_connection(lsn.getsockname())
        srv, _ = lsn.accept()
    if small_buffers:
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
    srv.setblocking(False)
    cli.setblocking(False)
    return srv, cli


async def read_exactly(cli: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    while len(out) < n:
        data = await loop.sock_recv(cli, min(1 << 20, n - len(out)))
        if not data:
            break
        out += data
    return bytes(out)


async def test_relay_gives_the_exact_bytes_of_any_range(seaweed, monkeypatch):
    monkeypatch.setattr(s3mod, "RELAY_SEGMENT", 1 << 20)
    monkeypatch.setattr(s3mod, "RELAY_PARALLEL", 3)
    d = driver(seaweed, "relay-ranges")
    try:
        data = os.urandom((5 << 20) + 12345)
        await d.put("blobs/r", data)
        srv, cli = connected_pair()
        with srv, cli:
            # one connection for every range in turn, as keep-alive GETs use it
            for offset, length in ((0, len(data)), (1, len(data) - 1), ((1 << 20) - 1, 2), (3 << 20, 1 << 20),
                                   (123, (4 << 20) + 7), (len(data) - 5, 5)):
                relayed, got = await asyncio.gather(d.relay("blobs/r", offset, length, srv.fileno()),
                                                    read_exactly(cli, length))
                assert relayed and got == data[offset:offset + length], (offset, length)
        assert not await d.relay("blobs/absent", 0, 10, 0)  # nothing written: the caller answers
    finally:
        await d.close()


async def test_object_vanishing_mid_relay_is_an_error_not_a_short_body(seaweed, monkeypatch):
    monkeypatch.setattr(s3mod, "RELAY_SEGMENT", 1 << 20)
    monkeypatch.setattr(s3mod, "RELAY_PARALLEL", 2)
    monkeypatch.setattr(s3mod, "RELAY_TIMEOUT", 3.0)  # SeaweedFS may stall a range whose object went
    d = driver(seaweed, "relay-vanish")
    try:
        data = os.urandom(24 << 20)
        await d.put("blobs/v", data)
        srv, cli = connected_pair(small_buffers=True)
        with srv, cli:
            relay = asyncio.ensure_future(d.relay("blobs/v", 0, len(data), srv.fileno()))
            first = await read_exactly(cli, 1 << 20)  # the relay is under way; later ranges are not asked yet
            await d.delete("blobs/v")
            rest = read_exactly(cli, len(data))
            with pytest.raises(StorageUnavailable):
                await relay
            srv.close()  # what the server does with a connection whose body was cut
            assert len(first + await rest) < len(data)
    finally:
        await d.close()


async def test_client_going_away_ends_the_relay(seaweed, monkeypatch):
    monkeypatch.setattr(s3mod, "RELAY_SEGMENT", 4 << 20)
    d = driver(seaweed, "relay-gone")
    try:
        await d.put("blobs/g", os.urandom(32 << 20))
        srv, cli = connected_pair(small_buffers=True)
        with srv:
            relay = asyncio.ensure_future(d.relay("blobs/g", 0, 32 << 20, srv.fileno()))
            await read_exactly(cli, 1 << 20)
            cli.close()
            with pytest.raises(OSError):
                await relay
    finally:
        await d.close()


async def test_cancelling_the_request_stops_the_relay_thread(seaweed):
    d = driver(seaweed, "relay-cancel")
    try:
        await d.put("blobs/c", os.urandom(16 << 20))
        srv, cli = connected_pair(small_buffers=True)
        with srv, cli:
            relay = asyncio.ensure_future(d.relay("blobs/c", 0, 16 << 20, srv.fileno()))
            await read_exactly(cli, 1 << 20)  # then the client reads nothing more: the relay blocks
            relay.cancel()
            with pytest.raises(asyncio.CancelledError):
                await relay
    finally:
        await d.close()


async def test_only_plain_http_endpoints_relay():
    tls = S3Driver(S3Settings(bucket="b", endpoint="https://s3.example.invalid", access_key="k", secret_key="s"))
    assert not await tls.relay("blobs/x", 0, 10, 0)  # TLS cannot be spliced: streamed through Python
    assert Target.parse("https://h/b/k?X-Amz-Signature=1") is None
    t = Target.parse("http://127.0.0.1:8333/b/k%2Fx?X-Amz-Signature=1")
    assert t is not None and (t.host, t.port, t.request_target, t.host_header) == \
        ("127.0.0.1", 8333, "/b/k%2Fx?X-Amz-Signature=1", "127.0.0.1:8333")


async def test_bucket_dying_mid_body_cuts_the_connection(tmp_path):
    """``ocikit serve`` relaying a blob when SeaweedFS is killed: the client gets a true prefix of the blob on
    a closed connection (never an error answer inside the body), and the replica answers 503 next."""
    with seaweedfs(str(tmp_path)) as s3:
        with start_ocikit_serve(str(tmp_path), storage=s3.storage_url("cut", redirect="off"), env=s3.env,
                                quiet=False) as srv:
            data = os.urandom(96 << 20)
            async with aiohttp.ClientSession() as s:
                digest = await Client(srv.url, s).post_blob("cut/a", data)
            host, port = srv.host.split(":")
            reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 16)
            writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            writer.write(f"GET /v2/cut/a/blobs/{digest} HTTP/1.1\r\nHost: {srv.host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {len(data)}".encode() in head
            body = await reader.readexactly(1 << 20)  # the relay is under way, held back by this slow reader
            os.kill(s3.proc.pid, signal.SIGKILL)
            s3.proc.wait()
            body += await asyncio.wait_for(reader.read(), 120)  # up to EOF: the replica cut the connection
            writer.close()
            assert len(body) < len(data) and body == data[:len(body)]
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{srv.url}/v2/cut/a/blobs/{digest}") as r:
                    assert r.status == 503
        with open(srv.log, encoding="utf-8") as f:
            log = f.read()
        # the storage failure is one warning line naming the blob, not a traceback nor a "client went away"
        cut = [ln for ln in log.splitlines() if "cut short after its head was sent" in ln]
        assert len(cut) == 1 and digest in cut[0], log[-3000:]
        assert "Traceback" not in log
