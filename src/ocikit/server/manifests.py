"""``/v2/<name>/manifests/<reference>``: GET, HEAD, PUT, DELETE by tag or digest."""

from __future__ import annotations

from aiohttp import web

from ..core.digest import Digest
from ..core.errors import ManifestInvalid, ManifestUnknown, SizeInvalid
from .context import content_length, registry
from .routes import is_tag, parse_reference


class ManifestTooLarge(SizeInvalid):
    status = 413


def _reference(ref: str, *, writing: bool) -> str | Digest:
    r = parse_reference(ref)
    if not isinstance(r, Digest) and not is_tag(r):
        if writing:
            raise ManifestInvalid(f"invalid tag {ref[:140]!r}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")
        raise ManifestUnknown(f"manifest unknown: invalid tag {ref[:140]!r}")
    return r


async def get_manifest(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    reg = registry(request)
    stored = await reg.storage.get_manifest(name, _reference(ref, writing=False))
    return web.Response(body=stored.raw, headers={"Content-Type": stored.media_type,
                                                  "Docker-Content-Digest": str(stored.digest),
                                                  "ETag": f'"{stored.digest}"'})


async def _read_limited(request: web.Request, limit: int) -> bytes:
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise ManifestTooLarge(f"manifest of {declared} bytes is larger than the {limit}-byte limit",
                               expected=limit, actual=declared)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ManifestTooLarge(f"manifest larger than the {limit}-byte limit", expected=limit, actual=size)
        parts.append(chunk)
    if declared is not None and size != declared:
        raise ManifestInvalid(f"manifest body of {size} bytes, Content-Length {declared}")
    return b"".join(parts)


async def put_manifest(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    reg = registry(request)
    reference = _reference(ref, writing=True)
    raw = await _read_limited(request, reg.config.manifest_size)
    result = await reg.storage.put_manifest(name, reference, raw, request.headers.get("Content-Type"))
    reg.metrics.manifests_stored += 1
    headers = {"Location": f"/v2/{name}/manifests/{result.digest}", "Docker-Content-Digest": str(result.digest),
               "Content-Length": "0"}
    if result.subject is not None:
        headers["OCI-Subject"] = str(result.subject)
    return web.Response(status=201, headers=headers)


async def delete_manifest(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    reg = registry(request)
    reference = _reference(ref, writing=False)
    if isinstance(reference, Digest):
        await reg.storage.delete_manifest(name, reference)
    else:
        await reg.storage.delete_tag(name, reference)
    return web.Response(status=202, headers={"Content-Length": "0"})
