"""``/v2/<name>/tags/list`` with ``n``, ``last`` and a ``Link`` to the next page."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from aiohttp import web

from ..errors import NameUnknown
from .context import query_int, registry


def paginate(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Items after ``last`` (sorted order), at most ``n`` of them; and whether more remain."""
    if last:
        items = [x for x in items if x > last]
    if n is None:
        return items, False
    return items[:n], len(items) > n


async def list_tags(request: web.Request, name: str, _: str) -> web.StreamResponse:
    reg = registry(request)
    n = query_int(request, "n")
    got = await reg.storage.list_tags_page(name, n, request.query.get("last"))
    if got is None:
        raise NameUnknown(f"repository name not known to registry: {name}", detail={"name": name})
    page, more = got
    headers = {}
    if more and page:
        headers["Link"] = f'</v2/{name}/tags/list?{urlencode({"n": n, "last": page[-1]})}>; rel="next"'
    return web.Response(body=json.dumps({"name": name, "tags": page}).encode(),
                        content_type="application/json", headers=headers)
