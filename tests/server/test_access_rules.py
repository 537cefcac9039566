"""Who may do what on ``ocikit serve`` by every route (issue 15, defect 4), and numbers from
outside that used to become tracebacks (defect 5)."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import bcrypt
import pytest

from ocikit.server.access import Authenticator
from ocikit.server.serve_config import AuthConfig

from helpers.servers import start_ocikit_serve
from helpers.rawhttp import TOKEN_CONFIG, USERS, Client, error_code

def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()}


async def _bearer(s: aiohttp.ClientSession, url: str, user: str, *scopes: str) -> dict[str, str]:
    async with s.get(f"{url}/auth/token", params=[("service", "ocikit-test"), *(("scope", x) for x in scopes)],
                     headers=basic(user)) as r:
        assert r.status == 200, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def test_token_mode_catalog_lists_only_what_the_user_may_pull(tmp_path, htpasswd):
    with start_ocikit_serve(str(tmp_path), config=TOKEN_CONFIG.format(htpasswd=htpasswd)) as srv:
        async with aiohttp.ClientSession(headers=await _fresh(srv.url, "alice", "repository:team/app:pull,push",
                                                              "repository:public/lib:pull,push")) as s:
            await Client(srv.url, s).push_image("team/app", "v1")
            await Client(srv.url, s).push_image("public/lib", "v1")
        for user, expected in (("alice", ["public/lib", "team/app"]), ("bob", ["public/lib"])):
            async with aiohttp.ClientSession(headers=await _fresh(srv.url, user, "registry:catalog:*")) as s:
                async with s.get(f"{srv.url}/v2/_catalog") as r:
                    assert r.status == 200, await r.text()
                    assert (await r.json())["repositories"] == expected, user


async def _fresh(url: str, user: str, *scopes: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as s:
        return await _bearer(s, url, user, *scopes)


async def test_deletes_are_off_unless_enabled(tmp_path):
    with start_ocikit_serve(str(tmp_path / "off"), delete=False) as srv:
        async with aiohttp.ClientSession() as s:
            img = await Client(srv.url, s).push_image("del/img", "v1")
            async with s.delete(f"{srv.url}/v2/del/img/manifests/{img.digest}") as r:
                assert r.status == 405 and error_code(await r.json()) == "UNSUPPORTED"
            async with s.delete(f"{srv.url}/v2/del/img/manifests/v1") as r:
                assert r.status == 405
            async with s.delete(f"{srv.url}/v2/del/img/blobs/{next(iter(img.blobs))}") as r:
                assert r.status == 405
            async with s.get(f"{srv.url}/v2/del/img/manifests/v1") as r:
                assert r.status == 200 and await r.read() == img.raw
            # cancelling an upload is not a delete of content: allowed
            async with s.post(f"{srv.url}/v2/del/img/blobs/uploads/") as r:
                location = r.headers["Location"]
            async with s.delete(srv.url + location if location.startswith("/") else location) as r:
                assert r.status == 204
    with start_ocikit_serve(str(tmp_path / "on"), delete=True) as srv:
        async with aiohttp.ClientSession() as s:
            img = await Client(srv.url, s).push_image("del/img", "v1")
            async with s.delete(f"{srv.url}/v2/del/img/manifests/{img.digest}") as r:
                assert r.status == 202


async def test_cancelling_ones_own_upload_needs_push_not_delete(tmp_path, htpasswd):
    cfg = TOKEN_CONFIG.format(htpasswd=htpasswd)
    with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
        async with aiohttp.ClientSession(headers=await _fresh(srv.url, "bob", "repository:public/up:pull,push")) as s:
            async with s.post(f"{srv.url}/v2/public/up/blobs/uploads/") as r:
                assert r.status == 202
                location = r.headers["Location"]
            async with s.delete(srv.url + location if location.startswith("/") else location) as r:
                assert r.status == 204, await r.text()


async def test_metrics_need_a_login_when_auth_is_on(tmp_path, htpasswd):
    with start_ocikit_serve(str(tmp_path), args=("--htpasswd", htpasswd)) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{srv.url}/metrics") as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
            async with s.get(f"{srv.url}/metrics", headers=basic("bob")) as r:
                assert r.status == 200 and "ocikit" in await r.text()


def test_an_unknown_user_costs_the_same_bcrypt_work(tmp_path, monkeypatch, htpasswd):
    auth = Authenticator(AuthConfig(mode="htpasswd", htpasswd=htpasswd))
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    assert asyncio.run(auth.check_password("nobody", "x")) is False
    assert asyncio.run(auth.check_password("alice", "wrong")) is False
    assert len(calls) == 2
    cost = [h[4:6] for h in calls]
    assert cost[0] == cost[1]  # the same work factor as a real user's hash


@pytest.mark.parametrize("query", ["n=%C2%B2", "n=" + "9" * 5000, "n=-1", "n=1e3", "n=%D9%A3"])
async def test_bad_numbers_in_queries_are_400(serve_anon, query):
    async with aiohttp.ClientSession() as s:
        for path in ("/v2/_catalog", "/v2/some/repo/tags/list"):
            async with s.get(f"{serve_anon.url}{path}?{query}") as r:
                assert r.status in (400, 404), (path, query, r.status)
                assert r.status != 500


@pytest.mark.parametrize("content_range", ["0-" + "9" * 5000, "²-3", "0-%s" % ("1" * 25), "5-2"])
async def test_bad_content_ranges_are_416_not_500(serve_anon, content_range):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{serve_anon.url}/v2/nums/repo/blobs/uploads/") as r:
            location = r.headers["Location"]
        url = serve_anon.url + location if location.startswith("/") else location
        async with s.patch(url, data=b"abc", headers={"Content-Range": content_range,
                                                      "Content-Type": "application/octet-stream"}) as r:
            assert r.status in (400, 416), (content_range, r.status, await r.text())
        async with s.get(f"{serve_anon.url}/v2/") as r:
            assert r.status == 200  # still up


@pytest.fixture(scope="module")
def serve_anon(tmp_path_factory):
    with start_ocikit_serve(str(tmp_path_factory.mktemp("nums"))) as srv:
        yield srv
