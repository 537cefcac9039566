"""``/v2/<name>/blobs/<digest>``: GET and HEAD (sendfile, Range, or a 307 to a presigned URL) and DELETE."""

from __future__ import annotations

from aiohttp import web

from ..core.digest import Digest
from .context import registry


async def get_blob(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    reg = registry(request)
    digest = Digest(ref)
    size = await reg.storage.require_blob(name, digest)
    headers = {"Docker-Content-Digest": str(digest), "Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes"}
    path = reg.storage.blob_path(digest)
    if path is not None:
        return web.FileResponse(path, headers=headers)
    if request.method == "HEAD":  # from metadata alone
        return web.Response(headers={**headers, "Content-Length": str(size)})
    url = await reg.storage.blob_redirect(digest)
    if url is not None:
        return web.Response(status=307, headers={"Location": url, "Docker-Content-Digest": str(digest),
                                                 "Content-Length": "0"})
    offset, length, status = 0, size, 200
    rng = request.http_range
    if rng.start is not None or rng.stop is not None:
        start, stop, _ = rng.indices(size)
        if start >= stop:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        offset, length, status = start, stop - start, 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    await resp.prepare(request)
    fd = _plain_socket(request)
    if fd is None or not await reg.storage.blob_relay(digest, offset, length, fd):
        async for chunk in reg.storage.blob_chunks(digest, offset, length):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


def _plain_socket(request: web.Request) -> int | None:
    """The client's TCP socket, when nothing (TLS, unsent bytes) stands between it and the body."""
    t = request.transport
    if t is None or t.get_extra_info("sslcontext") is not None or t.get_write_buffer_size():
        return None
    sock = t.get_extra_info("socket")
    return sock.fileno() if sock is not None else None


async def delete_blob(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    await registry(request).storage.delete_blob(name, Digest(ref))
    return web.Response(status=202, headers={"Content-Length": "0"})
