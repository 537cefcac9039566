"""``/v2/_catalog`` with ``n``, ``last`` and ``Link``; only repositories the caller may pull."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from .context import principal, query_int, registry
from .tags import paginate


async def list_catalog(request: web.Request, _name: str, _ref: str) -> web.StreamResponse:
    reg = registry(request)
    who = principal(request)
    n = query_int(request, "n")
    if reg.auth.mode == "none":  # no filtering: a page is one listing of the index
        page, more = await reg.storage.catalog_page(n, request.query.get("last"))
    else:
        names = [r for r in await reg.storage.catalog() if reg.auth.may_list(who, r)]
        page, more = paginate(names, n, request.query.get("last"))
    headers = {}
    if more and page:
        headers["Link"] = f'</v2/_catalog?{urlencode({"n": n, "last": page[-1]})}>; rel="next"'
    return web.Response(body=json.dumps({"repositories": page}).encode(), content_type="application/json",
                        headers=headers)
