"""Whole answers and credentials that stay at home (issue 15, defects 1 and 2).

The registries here are small aiohttp servers on 127.0.0.1 that behave as a hostile or merely
large registry would: bodies sent in pieces with a pause between them, pagination and upload
locations pointing at another origin that records what it receives.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import pytest
from aiohttp import web

from ocikit.core.digest import Digest
from ocikit.core.errors import ManifestInvalid, RegistryError
from ocikit.model import Descriptor
from ocikit.transports.registry import RegistryClient, RegistryStore
from ocikit.transports.registry.auth import Credentials

from helpers.app_servers import serve_app

USER, PASSWORD = "alice", "s3cret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


async def _send_in_pieces(request: web.Request, body: bytes, ctype: str, headers: dict[str, str] | None = None,
                          pieces: int = 4) -> web.StreamResponse:
    """Answer ``body`` in ``pieces`` writes with a pause between them (what a slow link does)."""
    resp = web.StreamResponse(headers={"Content-Type": ctype, **(headers or {})})
    resp.content_length = len(body)
    await resp.prepare(request)
    step = -(-len(body) // pieces)
    for i in range(0, len(body), step):
        await resp.write(body[i:i + step])
        await asyncio.sleep(0.05)
    await resp.write_eof()
    return resp


def _big_manifest(size: int) -> bytes:
    config = {"mediaType": "application/vnd.oci.image.config.v1+json",
              "digest": "sha256:" + "0" * 64, "size": 2}
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": config, "layers": [], "annotations": {"filler": "x" * size}}
    return json.dumps(doc).encode()


def _needs_auth(request: web.Request) -> web.Response | None:
    if request.headers.get("Authorization") != BASIC:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="test"'})
    return None


async def _base(request: web.Request) -> web.Response:
    return web.json_response({})


async def _base_with_auth(request: web.Request) -> web.Response:
    return _needs_auth(request) or web.json_response({})


async def _blob_absent(request: web.Request) -> web.Response:
    return _needs_auth(request) or web.Response(status=404)


def _registry(routes: list[tuple[str, str, object]], base=_base) -> web.Application:
    app = web.Application()
    app.router.add_get("/v2/", base)
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app


def _with_store(host: str, repo: str, use, creds: Credentials | None = None):
    """Run ``use(store)`` against a RegistryStore for ``host/repo`` and close it."""
    async def go():
        store = RegistryStore(RegistryClient(host, creds=creds), repo)
        try:
            return await use(store)
        finally:
            await store.close()
    return asyncio.run(go())


def test_a_manifest_of_300_kb_sent_in_pieces_is_read_whole():
    raw = _big_manifest(300_000)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()

    async def manifest(request: web.Request) -> web.StreamResponse:
        return await _send_in_pieces(request, raw, "application/vnd.oci.image.manifest.v1+json",
                                     {"Docker-Content-Digest": digest})

    async def both(store):
        return await store.get_manifest("v1"), await store.get_manifest(digest)

    with serve_app(_registry([("GET", "/v2/big/manifests/{ref}", manifest)])) as host:
        by_tag, by_digest = _with_store(host, "big", both)
    assert by_tag.raw == raw and by_tag.digest == digest
    assert by_digest.raw == raw


def test_a_manifest_over_the_limit_says_too_large_not_digest_mismatch():
    raw = _big_manifest(5 << 20)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()

    async def manifest(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        await resp.prepare(request)  # chunked: no Content-Length to refuse early
        for i in range(0, len(raw), 1 << 20):
            await resp.write(raw[i:i + (1 << 20)])
        await resp.write_eof()
        return resp

    with serve_app(_registry([("GET", "/v2/big/manifests/{ref}", manifest)])) as host:
        with pytest.raises(ManifestInvalid, match="too large"):
            _with_store(host, "big", lambda store: store.get_manifest(digest))


def test_30000_tags_sent_in_pieces_are_read_whole():
    tags = [f"t{i:05d}" for i in range(30_000)]
    body = json.dumps({"name": "many", "tags": tags}).encode()

    async def tag_list(request: web.Request) -> web.StreamResponse:
        return await _send_in_pieces(request, body, "application/json", pieces=8)

    with serve_app(_registry([("GET", "/v2/many/tags/list", tag_list)])) as host:
        assert _with_store(host, "many", lambda store: store.list_tags()) == tags


def test_a_tag_list_past_the_limit_is_refused_as_too_large():
    from ocikit.transports.registry.client import JSON_LIMIT

    async def tag_list(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"name":"x","tags":["')
        chunk = b"a" * (1 << 20)
        for _ in range(JSON_LIMIT // len(chunk) + 2):
            await resp.write(chunk)
        await resp.write(b'"]}')
        await resp.write_eof()
        return resp

    with serve_app(_registry([("GET", "/v2/x/tags/list", tag_list)])) as host:
        with pytest.raises(RegistryError, match="too large"):
            _with_store(host, "x", lambda store: store.list_tags())


class _Recorder:
    """Another origin: records every request's Authorization header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    def app(self) -> web.Application:
        async def any_request(request: web.Request) -> web.Response:
            self.seen.append((request.method, request.path, request.headers.get("Authorization")))
            await request.read()
            if request.path.endswith("/tags/list"):
                return web.json_response({"name": "r", "tags": ["b1"]})
            if request.method == "PUT":
                return web.Response(status=201, headers={"Docker-Content-Digest": request.query.get("digest", "")})
            return web.Response(status=202, headers={"Location": request.path_qs, "Range": "0-0"})
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_request)
        return app


def test_a_next_link_to_another_origin_gets_no_credentials():
    other = _Recorder()
    with serve_app(other.app()) as other_host:
        async def tag_list(request: web.Request) -> web.Response:
            if (denied := _needs_auth(request)) is not None:
                return denied
            link = f'<http://{other_host}/v2/r/tags/list?last=a1>; rel="next"'
            return web.json_response({"name": "r", "tags": ["a1"]}, headers={"Link": link})

        app = _registry([("GET", "/v2/r/tags/list", tag_list)], base=_base_with_auth)
        with serve_app(app) as host:
            tags = _with_store(host, "r", lambda store: store.list_tags(), Credentials(USER, PASSWORD))
    assert tags == ["a1", "b1"]
    assert other.seen and all(auth is None for _, _, auth in other.seen), other.seen


def test_an_upload_location_on_another_origin_gets_no_credentials():
    other = _Recorder()
    data = b"hello, other origin"
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    with serve_app(other.app()) as other_host:
        async def start(request: web.Request) -> web.Response:
            if (denied := _needs_auth(request)) is not None:
                return denied
            return web.Response(status=202, headers={"Location": f"http://{other_host}/upload/1",
                                                     "Range": "0-0"})

        app = _registry([("HEAD", "/v2/r/blobs/{digest}", _blob_absent), ("POST", "/v2/r/blobs/uploads/", start)],
                        base=_base_with_auth)

        async def chunks():
            yield data
        with serve_app(app) as host:
            _with_store(host, "r", lambda store: store.put_blob(desc, chunks()), Credentials(USER, PASSWORD))
    assert any(method in ("PUT", "PATCH") for method, _, _ in other.seen), other.seen
    assert all(auth is None for _, _, auth in other.seen), other.seen


def test_a_1_mib_manifest_round_trips_through_ocikit_serve(tmp_path):
    """Pushed to ``ocikit serve`` and read back whole, by tag and by digest (was: "digest mismatch")."""
    import subprocess
    import sys

    from helpers.servers import start_ocikit_serve

    raw = _big_manifest(1 << 20)
    config = b"{}"
    with start_ocikit_serve(str(tmp_path)) as srv:
        async def push(store):
            async def one(b):
                yield b
            cdesc = Descriptor("application/vnd.oci.image.config.v1+json", Digest.of(config), len(config))
            await store.put_blob(cdesc, one(config))
            doc = json.loads(raw)
            doc["config"] = {"mediaType": cdesc.media_type, "digest": str(cdesc.digest), "size": cdesc.size}
            body = json.dumps(doc).encode()
            return body, await store.put_manifest(body, "application/vnd.oci.image.manifest.v1+json", "v1")
        body, digest = _with_store(srv.host, "big/one", push)
        for ref in (f"docker://{srv.host}/big/one:v1", f"docker://{srv.host}/big/one@{digest}"):
            p = subprocess.run([sys.executable, "-m", "ocikit", "inspect", "--raw", ref],
                               capture_output=True, timeout=120)
            assert p.returncode == 0, p.stderr.decode()
            assert p.stdout == body
