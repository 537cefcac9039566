"""Authentication against real servers: docker-registry with htpasswd (basic) and with bearer tokens
from a token server of ours; credentials from flags, auth.json, config.json and helpers; redirects."""

from __future__ import annotations

import base64
import json
import os
import stat
from asyncio import run

import bcrypt
import pytest
from aiohttp import web

from ocikit.core.errors import Unauthorized
from ocikit.ops.copy import CopyOptions, acopy
from ocikit.testing import write_image, write_index
from ocikit.transports import OpenOptions
from ocikit.transports.layout import OCILayout
from ocikit.transports.registry import RegistryClient, RegistryStore
from ocikit.transports.registry.auth import Credentials
from ocikit.transports.registry.credentials import find_credentials

from helpers.app_servers import TokenIssuer, serve_app, token_server
from helpers.cli import expect_failure, run_ocikit
from helpers.peers import skopeo, skopeo_digest, skopeo_raw
from helpers.servers import docker_registry

pytestmark = pytest.mark.peer

USER, PASSWORD = "alice", "s3cret-pass"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> OCILayout:
    lay = OCILayout(str(tmp_path_factory.mktemp("auth") / "lay"), create=True)
    write_image(lay, "single", seed=21)
    write_index(lay, "multi", seed=22)
    return lay


@pytest.fixture(scope="module")
def basic_reg(tmp_path_factory):
    d = tmp_path_factory.mktemp("basic")
    htpasswd = d / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    with docker_registry(str(d), htpasswd=str(htpasswd)) as srv:
        yield srv


@pytest.fixture(scope="module")
def token_reg(tmp_path_factory):
    d = tmp_path_factory.mktemp("token")
    issuer = TokenIssuer(str(d))
    with token_server(issuer, {USER: PASSWORD}) as (token_host, log):
        cfg = {"realm": f"http://{token_host}/token", "service": "test-registry", "issuer": issuer.issuer,
               "rootcertbundle": issuer.cert}
        with docker_registry(str(d), token=cfg) as srv:
            yield srv, log


def _copy(src: str, dst: str, *, src_creds=None, dst_creds=None, all_platforms=False, authfile=None):
    return run(acopy(src, dst, CopyOptions(all_platforms=all_platforms),
                     src_options=OpenOptions(creds=src_creds, auth_file=authfile),
                     dst_options=OpenOptions(creds=dst_creds, auth_file=authfile)))


# ---- basic -----------------------------------------------------------------------------------


def test_basic_auth_right_creds_push_and_skopeo_pulls(basic_reg, images, tmp_path):
    res = _copy(f"oci:{images.path}:multi", f"docker://{basic_reg.host}/b/img:v1", dst_creds=(USER, PASSWORD),
                all_platforms=True)
    assert res.digest == images.resolve_sync("multi").digest
    raw = skopeo_raw(f"docker://{basic_reg.host}/b/img:v1", f"--creds={USER}:{PASSWORD}")
    assert raw == images.get_manifest_sync("multi").raw
    back = _copy(f"docker://{basic_reg.host}/b/img:v1", f"oci:{tmp_path}/o:x", src_creds=(USER, PASSWORD),
                 all_platforms=True)
    assert back.digest == res.digest


def test_basic_auth_wrong_or_missing_creds_fail_in_one_line(basic_reg, images):
    with pytest.raises(Unauthorized, match="invalid username or password"):
        _copy(f"oci:{images.path}:single", f"docker://{basic_reg.host}/b/bad:v1", dst_creds=(USER, "wrong"))
    with pytest.raises(Unauthorized, match="authentication required"):
        _copy(f"oci:{images.path}:single", f"docker://{basic_reg.host}/b/bad:v1")
    p = run_ocikit("copy", f"--dest-creds={USER}:nope", f"oci:{images.path}:single",
                   f"docker://{basic_reg.host}/b/bad:v1", check=False, text=True)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocikit: error: ") and "invalid username or password" in lines[0]
    assert "nope" not in p.stderr


def test_inspect_and_tree_take_credentials(basic_reg, images):
    """skopeo's --creds on the read-only commands: right ones work, wrong ones are one clear line."""
    _copy(f"oci:{images.path}:multi", f"docker://{basic_reg.host}/b/seen:v1", dst_creds=(USER, PASSWORD),
          all_platforms=True)
    ref = f"docker://{basic_reg.host}/b/seen:v1"
    p = run_ocikit("--format", "json", "inspect", f"--creds={USER}:{PASSWORD}", ref, check=False, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Digest"] == images.resolve_sync("multi").digest
    p = run_ocikit("--format", "json", "tree", f"--creds={USER}:{PASSWORD}", ref, check=False, text=True)
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["manifests"]) == 3
    p = run_ocikit("inspect", f"--creds={USER}:nope", ref, check=False, text=True)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and "invalid username or password" in lines[0]


def test_login_logout_and_auth_json(basic_reg, images, tmp_path):
    authfile = tmp_path / "auth.json"
    env = {"REGISTRY_AUTH_FILE": str(authfile)}
    bad = run_ocikit("login", "-u", USER, "--password-stdin", basic_reg.host, input="wrong\n", check=False, text=True,
                     env=env)
    assert bad.returncode != 0 and "invalid username or password" in bad.stderr and not authfile.exists()
    ok = run_ocikit("login", "-u", USER, "--password-stdin", basic_reg.host, input=PASSWORD + "\n", check=False,
                    text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(authfile.read_text())
    assert base64.b64decode(doc["auths"][basic_reg.host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
    assert run_ocikit("login", "--get-login", basic_reg.host, env=env, check=False, text=True).stdout.strip() == USER
    # the saved login is used by copy and by skopeo (same file format)
    p = run_ocikit("copy", f"oci:{images.path}:single", f"docker://{basic_reg.host}/b/login:v1", env=env, check=False,
                   text=True)
    assert p.returncode == 0, p.stderr
    skopeo("inspect", "--tls-verify=false", "--authfile", str(authfile), f"docker://{basic_reg.host}/b/login:v1")
    assert run_ocikit("logout", basic_reg.host, env=env, check=False, text=True).returncode == 0
    assert basic_reg.host not in json.loads(authfile.read_text())["auths"]
    p = run_ocikit("list-tags", f"docker://{basic_reg.host}/b/login", env=env, check=False, text=True)
    assert p.returncode != 0 and "authentication required" in p.stderr


def test_docker_config_and_credential_helper(basic_reg, images, tmp_path, monkeypatch):
    # config.json with a plain auths entry
    cfgdir = tmp_path / "docker"
    cfgdir.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (cfgdir / "config.json").write_text(json.dumps({"auths": {f"https://{basic_reg.host}": {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(cfgdir))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    assert find_credentials(basic_reg.host) == Credentials(USER, PASSWORD)
    res = _copy(f"oci:{images.path}:single", f"docker://{basic_reg.host}/b/cfg:v1")
    assert res.digest == images.resolve_sync("single").digest
    # credHelpers: a docker-credential-* program answers instead
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-ocitest"
    helper.write_text("#!/bin/sh\nread host\n"
                      f"[ \"$host\" = \"{basic_reg.host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n"
                      f"echo '{{\"ServerURL\":\"'$host'\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    (cfgdir / "config.json").write_text(json.dumps({"credHelpers": {basic_reg.host: "ocitest"}}))
    assert find_credentials(basic_reg.host) == Credentials(USER, PASSWORD)
    (cfgdir / "config.json").write_text(json.dumps({"credsStore": "ocitest"}))
    assert find_credentials(basic_reg.host) == Credentials(USER, PASSWORD)
    assert find_credentials("other.example:5000") is None
    res = _copy(f"docker://{basic_reg.host}/b/cfg:v1", f"docker://{basic_reg.host}/b/helper:v1")
    assert res.digest == images.resolve_sync("single").digest and res.blobs_mounted == 2
    # auth.json wins over config.json; --creds wins over both
    (tmp_path / "auth.json").write_text(json.dumps({"auths": {basic_reg.host: {"auth": base64.b64encode(
        b"bob:x").decode()}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    assert find_credentials(basic_reg.host) == Credentials("bob", "x")
    assert find_credentials(basic_reg.host, creds="carol:y") == Credentials("carol", "y")


# ---- bearer tokens ---------------------------------------------------------------------------


def test_bearer_right_creds_push_pull_and_tokens_cached(token_reg, images, tmp_path):
    srv, log = token_reg
    n0 = len(log)
    res = _copy(f"oci:{images.path}:multi", f"docker://{srv.host}/t/img:v1", dst_creds=(USER, PASSWORD),
                all_platforms=True)
    assert res.digest == images.resolve_sync("multi").digest
    fetched = log[n0:]
    # one token for the push scope covers every blob and manifest of the copy
    assert 1 <= len(fetched) <= 2, fetched
    assert any("repository:t/img:pull,push" in e.get("scopes", []) for e in fetched)
    # anonymous pull is granted by this token server; skopeo agrees on the digest
    back = _copy(f"docker://{srv.host}/t/img:v1", f"oci:{tmp_path}/o:x", all_platforms=True)
    assert back.digest == res.digest
    assert skopeo_digest(f"docker://{srv.host}/t/img:v1") == res.digest
    # mount across repositories asks for both scopes in one token
    n1 = len(log)
    res2 = _copy(f"docker://{srv.host}/t/img:v1", f"docker://{srv.host}/t/other:v1", src_creds=(USER, PASSWORD),
                 dst_creds=(USER, PASSWORD), all_platforms=True)
    assert res2.blobs_mounted > 0
    assert any("repository:t/img:pull" in e.get("scopes", []) and "repository:t/other:pull,push" in e.get("scopes", [])
               for e in log[n1:])


def test_bearer_wrong_creds_and_anonymous_push_fail_clearly(token_reg, images):
    srv, _ = token_reg
    with pytest.raises(Unauthorized, match="refused the credentials for 'alice'"):
        _copy(f"oci:{images.path}:single", f"docker://{srv.host}/t/bad:v1", dst_creds=(USER, "wrong"))
    with pytest.raises(Unauthorized, match="authentication required"):
        _copy(f"oci:{images.path}:single", f"docker://{srv.host}/t/bad:v1")
    expect_failure("copy", f"--dest-creds={USER}:wrong", f"oci:{images.path}:single", f"docker://{srv.host}/t/bad:v1",
                   match=r"^ocikit: error: .*refused the credentials for 'alice'", code=1)


def test_bearer_token_refreshed_after_401(token_reg, images):
    srv, log = token_reg
    _copy(f"oci:{images.path}:single", f"docker://{srv.host}/t/refresh:v1", dst_creds=(USER, PASSWORD))

    async def go():
        store = RegistryStore(RegistryClient(srv.host, creds=Credentials(USER, PASSWORD)), "t/refresh")
        try:
            await store.list_tags()
            auth = store.client.auth
            assert auth.tokens
            n = len(log)
            for tok in auth.tokens.values():  # the registry will refuse these now
                tok.value = tok.value[:-4] + "AAAA"
            tags = await store.list_tags()
            return tags, len(log) - n
        finally:
            await store.close()

    tags, refetched = run(go())
    assert tags == ["v1"] and refetched == 1


# ---- redirects -----------------------------------------------------------------------------------


def test_no_credentials_follow_a_redirect_to_another_host(images):
    """A registry (basic auth) redirecting blob GETs to storage on another origin: the storage
    server must see no Authorization header, and the blob arrives verified."""
    blob = b"x" * 100_000
    from ocikit.core.digest import Digest
    from ocikit.model import Descriptor
    digest = Digest.of(blob)
    seen: list[dict[str, str]] = []

    async def storage(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=blob)

    with serve_app(_app_get("/blob", storage)) as storage_host:
        good = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        async def registry(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") != good:
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            if request.path == "/v2/":
                return web.json_response({})
            raise web.HTTPTemporaryRedirect(f"http://{storage_host}/blob?sig=1")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", registry)
        with serve_app(app) as reg_host:
            async def go():
                store = RegistryStore(RegistryClient(reg_host, creds=Credentials(USER, PASSWORD)), "r/x")
                try:
                    out = b""
                    async for c in store.blob_chunks(Descriptor("application/octet-stream", digest, len(blob))):
                        out += c
                    return out
                finally:
                    await store.close()
            assert run(go()) == blob
    assert seen and all("Authorization" not in h and "authorization" not in h for h in seen)


def _app_get(path: str, handler) -> web.Application:
    app = web.Application()
    app.router.add_get(path, handler)
    return app


def test_per_side_credentials_between_two_registries(basic_reg, token_reg, images):
    """--src-creds for a bearer-token registry, --dest-creds for a basic-auth one, in one copy."""
    srv, _ = token_reg
    _copy(f"oci:{images.path}:multi", f"docker://{srv.host}/t/cross:v1", dst_creds=(USER, PASSWORD), all_platforms=True)
    p = run_ocikit("copy", "--all", f"--src-creds={USER}:{PASSWORD}", f"--dest-creds={USER}:{PASSWORD}",
                   f"docker://{srv.host}/t/cross:v1", f"docker://{basic_reg.host}/b/cross:v1", check=False, text=True)
    assert p.returncode == 0, p.stderr
    raw = skopeo_raw(f"docker://{basic_reg.host}/b/cross:v1", f"--creds={USER}:{PASSWORD}")
    assert raw == images.get_manifest_sync("multi").raw
    # the source's credentials are not the destination's: a wrong --dest-creds fails on the destination
    p = run_ocikit("copy", "--all", f"--src-creds={USER}:{PASSWORD}", f"--dest-creds={USER}:bad",
                   f"docker://{srv.host}/t/cross:v1", f"docker://{basic_reg.host}/b/cross2:v1", check=False, text=True)
    assert p.returncode != 0 and basic_reg.host in p.stderr and "invalid username or password" in p.stderr
