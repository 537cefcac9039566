"""ocikit's registry extensions, under the distribution spec's extension namespace.

- ``GET /v2/_oci/ext/discover``: the extensions this registry offers (the ``_oci`` base
  extension's discovery document);
- ``GET /v2/<name>/_ocikit/tags/digests``: every tag of a repository with the digest it
  points at, in one answer (``{"name": ..., "tags": {"<tag>": "<digest>", ...}}``). A mirror
  re-run compares a whole repository with one request instead of one HEAD per tag.

Clients that do not know an extension never ask for it; nothing else changes.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ..core.errors import NameUnknown
from .context import registry

TAG_DIGESTS = "_ocikit"
"""The extension's name in the discovery document."""
TAG_DIGESTS_URL = "https://github.com/ocikit/ocikit/blob/main/docs/commands.md#tag-digests-extension"


async def discover(request: web.Request, _name: str, _ref: str) -> web.StreamResponse:
    """The ``_oci`` discovery document: one entry per extension, with its endpoint."""
    doc = {"extensions": [{
        "name": TAG_DIGESTS, "url": TAG_DIGESTS_URL,
        "description": "GET /v2/<name>/_ocikit/tags/digests: every tag of a repository with its digest",
        "endpoints": ["_ocikit/tags/digests"]}]}
    return web.Response(body=json.dumps(doc).encode(), content_type="application/json")


async def tag_digests(request: web.Request, name: str, _ref: str) -> web.StreamResponse:
    """Every tag of ``name`` with the digest it points at (a tag deleted meanwhile is left out)."""
    storage = registry(request).storage
    tags = await storage.list_tags(name)
    if tags is None:
        raise NameUnknown(f"repository name not known to registry: {name}", detail={"name": name})
    digests = await asyncio.gather(*(storage.resolve_tag(name, t) for t in tags))
    out = {t: str(d) for t, d in zip(tags, digests) if d is not None}
    return web.Response(body=json.dumps({"name": name, "tags": out}).encode(), content_type="application/json")
