"""Upload protocol rules the Distribution spec sets and docker-registry never exercises:
``OCI-Chunk-Min-Length``, a Location that moves (relative and absolute, with its own query),
``Range`` answers, and Link pagination of tags lists. Served by a small spec-following app."""

from __future__ import annotations

import hashlib
import os
import uuid
from asyncio import run

import pytest
from aiohttp import web

from ocikit.core.digest import Digest
from ocikit.core.errors import BlobUploadInvalid
from ocikit.model import Descriptor
from ocikit.transports.registry import RegistryClient, RegistryStore

from helpers.app_servers import serve_app

MIN_CHUNK = 1_500_000


def upload_app(*, absolute: bool, lie_range: bool = False) -> tuple[web.Application, dict]:
    """Blob uploads only: POST -> 202, PATCH (chunks checked for order and min length), PUT ?digest=."""
    state: dict = {"uploads": {}, "blobs": {}, "patches": [], "puts": []}

    def location(request: web.Request, uid: str, n: int) -> str:
        path = f"/v2/r/x/blobs/uploads/{uid}?_state=s{n}&keep=1"
        return f"http://{request.host}{path}" if absolute else path

    async def post(request: web.Request) -> web.Response:
        uid = uuid.uuid4().hex
        state["uploads"][uid] = bytearray()
        return web.Response(status=202, headers={"Location": location(request, uid, 0),
                                                 "OCI-Chunk-Min-Length": str(MIN_CHUNK), "Range": "0-0"})

    async def patch(request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        buf = state["uploads"][uid]
        assert request.query.get("keep") == "1", "the Location's own query must be kept"
        body = await request.read()
        rng = request.headers.get("Content-Range")
        state["patches"].append((len(body), rng, request.query.get("_state")))
        if rng is not None:
            start, end = (int(x) for x in rng.split("-"))
            if start != len(buf) or end - start + 1 != len(body):
                return web.Response(status=416)
        buf += body
        end = len(buf) - 1 + (1000 if lie_range else 0)
        return web.Response(status=202, headers={"Location": location(request, uid, len(state["patches"])),
                                                 "Range": f"0-{end}"})

    async def put(request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        buf = state["uploads"].pop(uid)
        assert request.query.get("keep") == "1"
        buf += await request.read()
        state["puts"].append(request.query.get("_state"))
        digest = "sha256:" + hashlib.sha256(buf).hexdigest()
        if digest != request.query.get("digest"):
            return web.json_response({"errors": [{"code": "DIGEST_INVALID", "message": "digest mismatch"}]},
                                     status=400)
        state["blobs"][digest] = bytes(buf)
        return web.Response(status=201, headers={"Location": f"/v2/r/x/blobs/{digest}", "Docker-Content-Digest": digest})

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application(client_max_size=1 << 28)
    app.router.add_get("/v2/", ping)
    app.router.add_post("/v2/r/x/blobs/uploads/", post)
    app.router.add_patch("/v2/r/x/blobs/uploads/{uid}", patch)
    app.router.add_put("/v2/r/x/blobs/uploads/{uid}", put)
    return app, state


def _push(host: str, data: bytes, mode: str, chunk_size: int) -> None:
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))

    async def chunks():
        for i in range(0, len(data), 300_000):
            yield data[i:i + 300_000]

    async def go():
        store = RegistryStore(RegistryClient(host), "r/x", upload_mode=mode, chunk_size=chunk_size, write=True)
        try:
            await store.put_blob(desc, chunks())
        finally:
            await store.close()
    run(go())


@pytest.mark.parametrize("absolute", [False, True])
def test_chunked_upload_honours_min_length_and_moving_location(absolute):
    data = os.urandom(5_000_000)
    app, state = upload_app(absolute=absolute)
    with serve_app(app) as host:
        _push(host, data, "chunked", 1_000_000)  # asks for 1 MB chunks; the server's minimum wins
    sizes = [n for n, _, _ in state["patches"]]
    assert all(n >= MIN_CHUNK for n in sizes[:-1]) and sum(sizes) == len(data)
    assert [r for _, r, _ in state["patches"]][0] == f"0-{MIN_CHUNK - 1}"
    # every request went to the Location of the answer before it
    assert [s for _, _, s in state["patches"]] == [f"s{i}" for i in range(len(sizes))]
    assert state["puts"] == [f"s{len(sizes)}"]
    assert state["blobs"] == {str(Digest.of(data)): data}


def test_streamed_and_monolithic_uploads_follow_location():
    data = os.urandom(2_500_000)
    app, state = upload_app(absolute=True)
    with serve_app(app) as host:
        _push(host, data, "streamed", 0)
        _push(host, data[::-1], "monolithic", 0)
    assert [r for _, r, _ in state["patches"]] == [None]
    assert set(state["blobs"]) == {str(Digest.of(data)), str(Digest.of(data[::-1]))}


def test_range_answer_that_disagrees_fails():
    app, _ = upload_app(absolute=False, lie_range=True)
    with serve_app(app) as host:
        with pytest.raises(BlobUploadInvalid, match="expected up to"):
            _push(host, os.urandom(3_000_000), "chunked", MIN_CHUNK)


def test_tags_link_pagination():
    tags = [f"t{i:02d}" for i in range(7)]
    pages: list[tuple[str | None, str | None]] = []

    async def tags_list(request: web.Request) -> web.Response:
        n = int(request.query.get("n", "100"))
        last = request.query.get("last")
        pages.append((request.query.get("n"), last))
        rest = [t for t in tags if last is None or t > last]
        page = rest[:n]
        headers = {}
        if len(rest) > n:
            headers["Link"] = f'</v2/r/x/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return web.json_response({"name": "r/x", "tags": page}, headers=headers)

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/v2/", ping)
    app.router.add_get("/v2/r/x/tags/list", tags_list)
    with serve_app(app) as host:
        async def go():
            store = RegistryStore(RegistryClient(host), "r/x")
            try:
                return await store.list_tags(n=3), await store.list_tags(n=3, last="t04")
            finally:
                await store.close()
        everything, after = run(go())
    assert everything == tags and after == ["t05", "t06"]
    assert pages[:3] == [("3", None), ("3", "t02"), ("3", "t05")]
