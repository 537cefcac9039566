"""``/v2/<name>/blobs/<digest>``: GET and HEAD (sendfile, Range) and DELETE."""

from __future__ import annotations

from aiohttp import web

from ..digest import Digest
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
    resp = web.StreamResponse(headers=headers)
    resp.content_length = size
    await resp.prepare(request)
    if request.method != "HEAD":
        async for chunk in reg.storage.blob_chunks(digest):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


async def delete_blob(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    await registry(request).storage.delete_blob(name, Digest(ref))
    return web.Response(status=202, headers={"Content-Length": "0"})
