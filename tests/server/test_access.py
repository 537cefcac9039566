"""Access control of ``ocikit serve``: htpasswd basic auth, the token realm with rules, read-only."""

from __future__ import annotations

import base64
import subprocess

import aiohttp
import bcrypt
import pytest

from ocikit.testing import write_image
from ocikit.transports.layout import OCILayout

from helpers.peers import require
from helpers.rawhttp import TOKEN_CONFIG, USERS, Client, error_code
from helpers.servers import start_ocikit_serve


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def basic_server(tmp_path_factory, htpasswd):
    with start_ocikit_serve(str(tmp_path_factory.mktemp("basic")), args=("--htpasswd", htpasswd)) as srv:
        yield srv


async def test_htpasswd_basic_auth(basic_server):
    url = basic_server.url
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}/v2/") as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
            assert error_code(await r.json()) == "UNAUTHORIZED"
        async with s.get(f"{url}/v2/", headers=basic("alice", "wrong")) as r:
            assert r.status == 401
        async with s.get(f"{url}/v2/", headers=basic("nobody", "x")) as r:
            assert r.status == 401
        async with s.get(f"{url}/v2/", headers=basic("alice", "wonderland")) as r:
            assert r.status == 200
        async with s.post(f"{url}/v2/x/y/blobs/uploads/") as r:
            assert r.status == 401
    async with aiohttp.ClientSession(headers=basic("bob", "builder")) as s:
        img = await Client(url, s).push_image("basic/img", "v1")
        async with s.get(f"{url}/v2/basic/img/manifests/v1") as r:
            assert await r.read() == img.raw


def test_skopeo_with_basic_auth(basic_server, tmp_path):
    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "lay"), create=True)
    write_image(lay, "v1")
    dst = f"docker://{basic_server.host}/basic/skopeo:v1"
    p = subprocess.run([skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland",
                        f"oci:{tmp_path / 'lay'}:v1", dst], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([skopeo, "inspect", "--tls-verify=false", dst], capture_output=True, text=True)
    assert p.returncode != 0 and "unauthorized: " in p.stderr, p.stderr  # no credentials: the server's 401
    p = subprocess.run([skopeo, "inspect", "--tls-verify=false", "--creds", "bob:builder", dst],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def token_server(tmp_path_factory, htpasswd):
    tmp = tmp_path_factory.mktemp("token")
    with start_ocikit_serve(str(tmp), config=TOKEN_CONFIG.format(htpasswd=htpasswd)) as srv:
        yield srv


async def _token(s: aiohttp.ClientSession, url: str, scope: str, user: str | None = None) -> tuple[str, list]:
    headers = basic(user, USERS[user]) if user else {}
    async with s.get(f"{url}/auth/token", params={"service": "ocikit-test", "scope": scope}, headers=headers) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    import json as _json
    payload = body["token"].split(".")[1]
    claims = _json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return body["token"], claims["access"]


async def test_token_realm_and_rules(token_server):
    url = token_server.url
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}/v2/") as r:
            assert r.status == 401
            challenge = r.headers["WWW-Authenticate"]
            assert challenge.startswith(f'Bearer realm="{url}/auth/token",service="ocikit-test"')
        async with s.get(f"{url}/v2/team/app/tags/list") as r:
            assert r.status == 401
            assert 'scope="repository:team/app:pull"' in r.headers["WWW-Authenticate"]
        tok, access = await _token(s, url, "repository:team/app:pull,push", "alice")
        assert access == [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]
        async with s.get(f"{url}/v2/", headers={"Authorization": f"Bearer {tok}"}) as r:
            assert r.status == 200
        async with s.get(f"{url}/v2/", headers={"Authorization": "Bearer forged.token.here"}) as r:
            assert r.status == 401
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tok}"}) as s:
        img = await Client(url, s).push_image("team/app", "v1")
        async with s.delete(f"{url}/v2/team/app/manifests/{img.digest}") as r:
            assert r.status == 401  # the token was not granted delete
    async with aiohttp.ClientSession() as s:
        # bob gets nothing on team/*
        tok_b, access_b = await _token(s, url, "repository:team/app:pull,push", "bob")
        assert access_b == []
        async with s.get(f"{url}/v2/team/app/tags/list", headers={"Authorization": f"Bearer {tok_b}"}) as r:
            assert r.status == 401
            assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        # bob may push to public/*, anonymous may only pull from it
        tok_b, access_b = await _token(s, url, "repository:public/lib:pull,push,delete", "bob")
        assert access_b[0]["actions"] == ["pull", "push"]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tok_b}"}) as sb:
            pub = await Client(url, sb).push_image("public/lib", "v1")
        tok_a, access_a = await _token(s, url, "repository:public/lib:pull,push")
        assert access_a[0]["actions"] == ["pull"]
        async with s.get(f"{url}/v2/public/lib/manifests/v1", headers={"Authorization": f"Bearer {tok_a}"}) as r:
            assert r.status == 200 and await r.read() == pub.raw
        async with s.post(f"{url}/v2/public/lib/blobs/uploads/", headers={"Authorization": f"Bearer {tok_a}"}) as r:
            assert r.status == 401
        async with s.get(f"{url}/auth/token", params={"scope": "repository:team/app:pull"},
                         headers=basic("alice", "bad")) as r:
            assert r.status == 401


def test_skopeo_token_flow(token_server, tmp_path):
    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "lay"), create=True)
    write_image(lay, "v1", seed=3)
    dst = f"docker://{token_server.host}/team/skopeo:v1"
    p = subprocess.run([skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland",
                        f"oci:{tmp_path / 'lay'}:v1", dst], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "bob:builder",
                        f"oci:{tmp_path / 'lay'}:v1", f"docker://{token_server.host}/team/bob:v1"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "requested access to the resource is denied" in p.stderr, p.stderr  # bob: no push
    p = subprocess.run([skopeo, "inspect", "--tls-verify=false", "--creds", "alice:wonderland", dst],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


async def test_read_only(tmp_path):
    with start_ocikit_serve(str(tmp_path), args=("--read-only", "--seed-sample")) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{srv.url}/v2/sample/multiarch/tags/list") as r:
                assert r.status == 200
                assert "latest" in (await r.json())["tags"]
            async with s.post(f"{srv.url}/v2/sample/multiarch/blobs/uploads/") as r:
                assert r.status == 405 and error_code(await r.json()) == "UNSUPPORTED"
            async with s.delete(f"{srv.url}/v2/sample/multiarch/manifests/latest") as r:
                assert r.status == 405
            async with s.get(f"{srv.url}/v2/sample/multiarch/manifests/latest") as r:
                assert r.status == 200


async def test_htpasswd_rules_deny(tmp_path, htpasswd):
    cfg = (f"auth:\n  mode: htpasswd\n  htpasswd: {htpasswd}\n  rules:\n"
           "    - {repository: 'alice/*', users: [alice], actions: [pull, push, delete]}\n"
           "    - {repository: '*', users: ['*'], actions: [pull]}\n")
    with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
        async with aiohttp.ClientSession(headers=basic("alice", "wonderland")) as s:
            img = await Client(srv.url, s).push_image("alice/app", "v1")
        async with aiohttp.ClientSession(headers=basic("bob", "builder")) as s:
            async with s.get(f"{srv.url}/v2/alice/app/manifests/v1") as r:
                assert r.status == 200 and await r.read() == img.raw
            async with s.post(f"{srv.url}/v2/alice/app/blobs/uploads/") as r:
                assert r.status == 403
                assert error_code(await r.json()) == "DENIED"
            async with s.delete(f"{srv.url}/v2/alice/app/manifests/{img.digest}") as r:
                assert r.status == 403
            # mounting needs pull on the source: bob may pull alice/app but not push there
            async with s.post(f"{srv.url}/v2/bob/x/blobs/uploads/",
                              params={"mount": str(next(iter(img.blobs))), "from": "alice/app"}) as r:
                assert r.status == 403  # no push right on bob/x either
