"""``/v2/<name>/blobs/uploads/``: monolithic, session, mount, PATCH (streamed/chunked), PUT, status, cancel."""

from __future__ import annotations

from aiohttp import web

from ..digest import Digest
from ..errors import BlobUploadInvalid, DigestInvalid, NameInvalid, RangeInvalid
from ..reference import validate_repository_name
from .context import body_chunks, content_length, has_body, principal, registry
from .routes import parse_content_range


def _session_headers(name: str, upload_id: str, offset: int, min_chunk: int = 0) -> dict[str, str]:
    h = {"Location": f"/v2/{name}/blobs/uploads/{upload_id}", "Range": f"0-{max(offset - 1, 0)}",
         "Docker-Upload-UUID": upload_id, "Content-Length": "0"}
    if min_chunk:
        h["OCI-Chunk-Min-Length"] = str(min_chunk)
    return h


def _created(name: str, digest: Digest) -> web.Response:
    return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                             "Docker-Content-Digest": str(digest), "Content-Length": "0"})


def _digest_param(request: web.Request) -> Digest:
    value = request.query.get("digest")
    if not value:
        raise DigestInvalid("digest query parameter is required to finish an upload")
    return Digest(value)


async def _append(request: web.Request, name: str, upload_id: str) -> int:
    reg = registry(request)
    start = end = None
    cr = request.headers.get("Content-Range")
    if cr is not None:
        parsed = parse_content_range(cr)
        if parsed is None:
            state = await reg.storage.upload_state(name, upload_id)
            raise RangeInvalid(f"malformed Content-Range {cr[:80]!r}: expected <start>-<end>",
                               detail={"offset": state.offset})
        start, end = parsed
    return await reg.storage.append_upload(name, upload_id, body_chunks(request, reg.metrics), start, end,
                                           content_length(request))


async def start_upload(request: web.Request, name: str, _: str) -> web.StreamResponse:
    reg = registry(request)
    st = reg.storage
    mount, source = request.query.get("mount"), request.query.get("from")
    if mount:
        digest = Digest(mount)
        if source:
            try:
                validate_repository_name(source)
            except NameInvalid:
                source = None
        if source and reg.auth.allowed(principal(request), source, "pull"):
            if await st.mount_blob(name, source, digest) is not None:
                return _created(name, digest)
        elif await st.blob_size(name, digest) is not None:
            return _created(name, digest)
    digest_value = request.query.get("digest")
    upload_id = await st.start_upload(name)
    if digest_value:
        try:
            digest = Digest(digest_value)
            await _append(request, name, upload_id)
            await st.finish_upload(name, upload_id, digest)
        except BaseException:
            await st.cancel_upload(name, upload_id, locked=True)
            raise
        reg.metrics.blobs_committed += 1
        return _created(name, digest)
    if has_body(request):
        # a body without ?digest= starts the session with it (what some clients do)
        offset = await _append(request, name, upload_id)
    else:
        offset = 0
    return web.Response(status=202, headers=_session_headers(name, upload_id, offset, reg.config.chunk_min_length))


async def patch_upload(request: web.Request, name: str, upload_id: str) -> web.StreamResponse:
    reg = registry(request)
    offset = await _append(request, name, upload_id)
    return web.Response(status=202, headers=_session_headers(name, upload_id, offset, reg.config.chunk_min_length))


async def put_upload(request: web.Request, name: str, upload_id: str) -> web.StreamResponse:
    reg = registry(request)
    digest = _digest_param(request)
    if has_body(request):  # appending checks the session first
        await _append(request, name, upload_id)
    await reg.storage.finish_upload(name, upload_id, digest)
    reg.metrics.blobs_committed += 1
    return _created(name, digest)


async def upload_status(request: web.Request, name: str, upload_id: str) -> web.StreamResponse:
    reg = registry(request)
    state = await reg.storage.upload_state(name, upload_id)
    return web.Response(status=204, headers=_session_headers(name, upload_id, state.offset,
                                                             reg.config.chunk_min_length))


async def cancel_upload(request: web.Request, name: str, upload_id: str) -> web.StreamResponse:
    await registry(request).storage.cancel_upload(name, upload_id)
    return web.Response(status=204)


async def upload_route(request: web.Request, name: str, upload_id: str) -> web.StreamResponse:
    if not upload_id:
        if request.method == "POST":
            return await start_upload(request, name, "")
        raise BlobUploadInvalid("POST to /blobs/uploads/ starts an upload")
    handler = {"PATCH": patch_upload, "PUT": put_upload, "GET": upload_status, "HEAD": upload_status,
               "DELETE": cancel_upload}.get(request.method)
    if handler is None:
        raise BlobUploadInvalid(f"{request.method} is not an upload operation")
    return await handler(request, name, upload_id)
