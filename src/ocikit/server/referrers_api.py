"""``/v2/<name>/referrers/<digest>``: an image index of the manifests whose subject is the digest."""

from __future__ import annotations

import json

from aiohttp import web

from ..core import mediatypes as mt
from ..core.digest import Digest
from .context import registry


async def list_referrers(request: web.Request, name: str, ref: str) -> web.StreamResponse:
    reg = registry(request)
    subject = Digest(ref)
    artifact_type = request.query.get("artifactType") or None
    manifests = await reg.storage.referrers(name, subject, artifact_type)
    headers = {"Content-Type": mt.OCI_INDEX}
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
    return web.Response(body=json.dumps(body).encode(), headers=headers)
