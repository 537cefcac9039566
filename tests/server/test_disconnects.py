"""Clients that go away mid-answer: debug-level at most in ``ocikit serve``'s log, never a traceback."""

from __future__ import annotations

import asyncio
import os
import ssl

import aiohttp
import pytest

from ocikit.core.digest import Digest

from helpers.servers import RunningServer, start_ocikit_serve


async def _big_blob(srv: RunningServer, s: aiohttp.ClientSession, ctx: ssl.SSLContext, repo: str) -> str:
    """Push a 32 MiB blob into ``repo``; the path of its GET."""
    data = os.urandom(32 << 20)
    digest = Digest.of(data)
    async with s.post(f"{srv.url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data, ssl=ctx) as r:
        assert r.status == 201
    return f"/v2/{repo}/blobs/{digest}"


async def _read_a_little_and_close(s: aiohttp.ClientSession, url: str, ctx: ssl.SSLContext) -> None:
    async with s.get(url, ssl=ctx) as r:
        assert len(await r.content.read(1000)) > 0
        r.close()


async def test_client_dropping_a_blob_download_over_tls_is_no_error(tmp_path, tls_cert):
    """Over TLS, clients that read a few bytes of a big blob and go away (reset, TLS close, an HTTP
    client closing its response) leave no traceback and nothing above debug level in the log; the
    server answers the next client in full."""
    ctx = ssl.create_default_context(cafile=tls_cert[0])
    with start_ocikit_serve(str(tmp_path), tls=tls_cert, quiet=False) as srv:
        async with aiohttp.ClientSession() as s:
            path = await _big_blob(srv, s, ctx, "drop/big")
            for i in range(9):
                if i % 3 == 2:
                    await _read_a_little_and_close(s, srv.url + path, ctx)
                    continue
                reader, writer = await asyncio.open_connection("127.0.0.1", int(srv.host.split(":")[1]), ssl=ctx,
                                                               server_hostname="127.0.0.1")
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {srv.host}\r\n\r\n".encode())
                assert (await reader.read(1000)).startswith(b"HTTP/1.1 200")
                await asyncio.sleep(0.05 * i)
                if i % 3 == 0:
                    writer.transport.abort()
                else:
                    writer.close()
            async with s.get(srv.url + path, ssl=ctx) as r:
                assert r.status == 200 and f"/blobs/{Digest.of(await r.read())}" in path
        await asyncio.sleep(0.5)  # the handlers of the dropped downloads notice
    with open(srv.log, encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    # what is left is the start banner, the access log and the shutdown line
    noise = [ln for ln in lines if " ocikit.access " not in ln and "listening on" not in ln
             and "web UI:" not in ln and "shutting down" not in ln]
    assert noise == []


async def test_the_server_stops_sending_to_a_client_that_dropped_a_tls_download(tmp_path, tls_cert):
    """HTTP clients that close a TLS blob download after a few bytes: the server notices and stops
    (499 in the access log), rather than pushing the rest of the 32 MiB into a connection that is gone."""
    ctx = ssl.create_default_context(cafile=tls_cert[0])
    with start_ocikit_serve(str(tmp_path), tls=tls_cert, quiet=False) as srv:
        async with aiohttp.ClientSession() as s:
            path = await _big_blob(srv, s, ctx, "stop/big")
            for _ in range(4):
                await _read_a_little_and_close(s, srv.url + path, ctx)
        await asyncio.sleep(0.5)
    with open(srv.log, encoding="utf-8") as f:
        gets = [ln for ln in f.read().splitlines() if f'"GET {path} ' in ln]
    assert len(gets) == 4 and all('" 499 ' in ln for ln in gets), gets
