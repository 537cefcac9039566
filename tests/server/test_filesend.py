"""Sending a file in pieces (:mod:`ocikit.server.filesend`) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ocikit.server.filesend import PIECE, READAHEAD, file_response, write_socket

pytestmark = pytest.mark.asyncio

SIZE = READAHEAD + 3 * PIECE + 12345   # several read-ahead windows, a last piece that is not whole


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(SIZE)
    path.write_bytes(data)
    return str(path), data


@pytest.fixture
async def server(data_file):
    path, _ = data_file
    state = {"truncate_to": None}

    async def handler(request: web.Request) -> web.StreamResponse:
        fd = os.open(path, os.O_RDONLY)
        try:
            if state["truncate_to"] is not None:  # the file shrinks after its size was looked up
                os.truncate(path, state["truncate_to"])
            return await file_response(request, fd, SIZE, {"Content-Type": "application/octet-stream"})
        finally:
            os.close(fd)

    app = web.Application()
    app.router.add_route("*", "/blob", handler)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    async with aiohttp.ClientSession() as s:
        yield srv, s, state
    await srv.close()


async def test_whole_file_byte_exact(server, data_file):
    srv, s, _ = server
    async with s.get(srv.make_url("/blob")) as r:
        assert r.status == 200
        assert r.headers["Accept-Ranges"] == "bytes"
        assert int(r.headers["Content-Length"]) == SIZE
        assert await r.read() == data_file[1]


@pytest.mark.parametrize("header, start, stop", [
    ("bytes=0-0", 0, 1),
    ("bytes=1000-1999", 1000, 2000),
    (f"bytes={PIECE - 1}-{READAHEAD + 1}", PIECE - 1, READAHEAD + 2),
    (f"bytes={SIZE - 10}-", SIZE - 10, SIZE),
    ("bytes=-7", SIZE - 7, SIZE),
    ("bytes=0-", 0, SIZE),
    (f"bytes=5-{SIZE * 2}", 5, SIZE),
])
async def test_ranges_are_206_with_exact_bytes(server, data_file, header, start, stop):
    srv, s, _ = server
    async with s.get(srv.make_url("/blob"), headers={"Range": header}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
        assert int(r.headers["Content-Length"]) == stop - start
        assert await r.read() == data_file[1][start:stop]


async def test_range_past_the_end_is_416(server):
    srv, s, _ = server
    async with s.get(srv.make_url("/blob"), headers={"Range": f"bytes={SIZE}-"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{SIZE}"


async def test_malformed_range_sends_the_whole(server, data_file):
    srv, s, _ = server
    async with s.get(srv.make_url("/blob"), headers={"Range": "pages=1-2"}) as r:
        assert r.status == 200
        assert await r.read() == data_file[1]


async def test_head_has_length_and_no_body(server):
    srv, s, _ = server
    async with s.head(srv.make_url("/blob")) as r:
        assert r.status == 200
        assert int(r.headers["Content-Length"]) == SIZE
        assert await r.read() == b""


async def test_a_file_that_shrank_cuts_the_connection(server):
    srv, s, state = server
    state["truncate_to"] = PIECE * 2 + 5
    async with s.get(srv.make_url("/blob")) as r:
        assert r.status == 200   # the headers went out before the file was found short
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


# ---- write_socket: a worker thread writing a span of a file to a non-blocking socket ----


def _socketpair() -> tuple[socket.socket, socket.socket]:
    out, peer = socket.socketpair()
    out.setblocking(False)
    return out, peer


def _drain(peer: socket.socket, into: list[bytes]) -> threading.Thread:
    def run() -> None:
        while chunk := peer.recv(1 << 20):
            into.append(chunk)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


async def test_write_socket_sends_the_span_exactly(data_file):
    path, data = data_file
    out, peer = _socketpair()
    got: list[bytes] = []
    reader = _drain(peer, got)
    fd = os.open(path, os.O_RDONLY)
    try:
        await asyncio.to_thread(write_socket, out.fileno(), fd, 1000, SIZE - 2000, threading.Event())
    finally:
        os.close(fd)
        out.close()
    reader.join(30)
    peer.close()
    assert b"".join(got) == data[1000:SIZE - 1000]


async def test_write_socket_stops_when_asked_even_while_the_socket_takes_everything(data_file):
    path, _ = data_file
    out, peer = _socketpair()
    got: list[bytes] = []
    reader = _drain(peer, got)
    stop = threading.Event()
    stop.set()
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ConnectionAbortedError):
            await asyncio.to_thread(write_socket, out.fileno(), fd, 0, SIZE, stop)
    finally:
        os.close(fd)
        out.close()
    reader.join(30)
    peer.close()
    assert sum(map(len, got)) < SIZE


async def test_write_socket_to_a_peer_that_left_is_a_connection_error(data_file):
    path, _ = data_file
    out, peer = _socketpair()
    peer.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ConnectionError):
            await asyncio.to_thread(write_socket, out.fileno(), fd, 0, SIZE, threading.Event())
    finally:
        os.close(fd)
        out.close()
