"""``/v2/<name>/blobs/<digest>``: GET and HEAD (pieces of a file, Range, or a 307 to a presigned URL) and DELETE."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from ..core.digest import Digest
from ..core.errors import BlobUnknown, OcikitError
from .context import registry
from .disconnects import client_gone
from .filesend import file_response, plain_socket, span_response

log = logging.getLogger("ocikit.server")


async def get_blob(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    reg = registry(request)
    digest = Digest(ref)
    size = await reg.storage.require_blob(name, digest)
    headers = {"Docker-Content-Digest": str(digest), "Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes"}
    path = reg.storage.blob_path(digest)
    if path is not None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # deleted since require_blob
            raise BlobUnknown(f"blob unknown to registry: {digest}", detail={"digest": str(digest)}) from None
        try:
            return await file_response(request, fd, size, headers)
        finally:
            os.close(fd)
    if request.method == "HEAD":  # from metadata alone
        return web.Response(headers={**headers, "Content-Length": str(size)})
    url = await reg.storage.blob_redirect(digest)
    if url is not None:
        return web.Response(status=307, headers={"Location": url, "Docker-Content-Digest": str(digest),
                                                 "Content-Length": "0"})
    answer = span_response(request, size, headers)
    if isinstance(answer, web.Response):
        return answer
    resp, offset, length = answer
    await resp.prepare(request)
    try:
        fd = plain_socket(request)
        if fd is None or not await reg.storage.blob_relay(digest, offset, length, fd):
            async for chunk in reg.storage.blob_chunks(digest, offset, length):
                await resp.write(chunk)
    except (OcikitError, OSError) as e:
        if client_gone(request):
            raise  # the client left: the dispatcher notes it quietly
        # the head is out: an error answer would land inside the body; a cut connection is the honest end
        log.warning("GET %s: blob %s cut short after its head was sent: %s", request.path, digest, e)
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError(f"blob {digest}: body cut short: {e}") from None
    await resp.write_eof()
    return resp


async def delete_blob(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    await registry(request).storage.delete_blob(name, Digest(ref))
    return web.Response(status=202, headers={"Content-Length": "0"})
