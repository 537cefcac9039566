"""The pull-through cache with Debian's docker-registry as the upstream: skopeo, podman, raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import ssl
import tempfile
import time
from typing import Any, Callable, Iterator

import aiohttp
import pytest
from aiohttp import web

from ocikit.core.digest import Digest
from ocikit.testing import write_index
from ocikit.transports.layout import OCILayout

from helpers.app_servers import chunked_proxy, counting_proxy, cutting_proxy, gated_proxy, lying_proxy, \
    manifest_counting_proxy, recording_proxy, serve_app, staged_proxy, TokenIssuer, token_server
from helpers.blobs import blob_file, pull_hash, push_big_blob, wait_stored
from helpers.cli import expect_failure
from helpers.rawhttp import error_code
from helpers.peers import require, sh, skopeo_digest, skopeo_raw
from helpers.servers import RunningServer, docker_registry, free_port, start_ocikit_serve, stop_pid

pytestmark = pytest.mark.peer


def proxy_config(upstream: str, ttl: str = "5m") -> str:
    return (f"proxy:\n  - prefix: hub\n    upstream: docker://{upstream}\n    tls-verify: false\n"
            f"    tag-ttl: {ttl}\n    retries: 0\n")


def _blob_url(srv, digest: str) -> str:
    return f"{srv.url}/v2/hub/big/blob/blobs/{digest}"


@contextlib.contextmanager
def _through(tmp_path, size: int, proxy: Callable[[str, str], Any], tls: tuple[str, str] | None = None,
             settings: str = "") -> Iterator[tuple[str, Any, RunningServer]]:
    """docker-registry holding a random blob of ``size`` bytes in ``big/blob``, ``proxy(host, digest)``
    (a faulty proxy of helpers.app_servers) in front of it, and ``ocikit serve`` caching from that
    proxy (``settings``: more of its config): yields the blob's digest, what the proxy yields beside
    its address, the server."""
    with docker_registry(str(tmp_path)) as up:
        digest = asyncio.run(push_big_blob(up.host, str(tmp_path / "blob"), size))
        with proxy(up.host, digest) as (host, extra), \
                start_ocikit_serve(str(tmp_path), config=settings + proxy_config(host), tls=tls) as srv:
            yield digest, extra, srv


@pytest.fixture
def runroot():
    """podman refuses a runroot longer than 50 characters: a short one in /tmp, removed after."""
    path = tempfile.mkdtemp(prefix="ock-run-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_skopeo_and_podman_pull_through_then_upstream_down(tmp_path, runroot):
    skopeo = require("skopeo")
    podman = [require("podman"), "--root", str(tmp_path / "storage"), "--runroot", runroot,
              "--storage-driver", "vfs"]
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    with docker_registry(str(tmp_path)) as up:
        sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:multi",
           f"docker://{up.host}/library/multi:v1")
        upstream_raw = skopeo_raw(f"docker://{up.host}/library/multi:v1")
        digest = str(Digest.of(upstream_raw))
        with start_ocikit_serve(str(tmp_path), config=proxy_config(up.host, ttl="0s")) as srv:
            by_tag = f"docker://{srv.host}/hub/library/multi:v1"
            by_digest = f"docker://{srv.host}/hub/library/multi@{digest}"

            def pulls(round_: str) -> None:
                out = tmp_path / f"out-{round_}"
                sh(skopeo, "copy", "--all", "--src-tls-verify=false", by_tag, f"oci:{out}:tag")
                sh(skopeo, "copy", "--all", "--src-tls-verify=false", by_digest, f"oci:{out}:digest")
                assert skopeo_raw(by_tag) == upstream_raw
                assert skopeo_digest(by_digest) == digest
                for child in json.loads(upstream_raw)["manifests"]:
                    assert skopeo_digest(f"docker://{srv.host}/hub/library/multi@{child['digest']}") == \
                        child["digest"]
                for ref in (by_tag, by_digest):
                    sh(*podman, "pull", "-q", "--tls-verify=false", ref)
                    got = sh(*podman, "image", "inspect", "--format", "{{.Digest}}",
                             ref.removeprefix("docker://")).stdout.decode().strip()
                    assert got == digest
                    sh(*podman, "rmi", "-a", "-f")

            pulls("cold")
            stop_pid(up.proc)
            pulls("upstream-down")

            async def tag_state() -> tuple[str, str]:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{srv.url}/v2/hub/library/multi/manifests/v1",
                                     headers={"Accept": json.loads(upstream_raw)["mediaType"]}) as r:
                        assert r.status == 200
                        return r.headers["Ocikit-Cache"], r.headers["Docker-Content-Digest"]
            assert asyncio.run(tag_state()) == ("stale", digest)


@pytest.mark.slow
def test_ten_clients_one_upstream_get(tmp_path):
    with docker_registry(str(tmp_path)) as up:
        digest = asyncio.run(push_big_blob(up.host, str(tmp_path / "big"), 200 << 20))
        os.unlink(tmp_path / "big")
        with counting_proxy(up.host) as (counted, counts), \
                start_ocikit_serve(str(tmp_path), config=proxy_config(counted)) as srv:
            url = f"{srv.url}/v2/hub/big/blob/blobs/{digest}"

            async def ten() -> list[str]:
                async with aiohttp.ClientSession() as s:
                    return await asyncio.gather(*(pull_hash(s, url) for _ in range(10)))
            assert asyncio.run(ten()) == [digest] * 10
            assert counts[digest] == 1
            assert os.path.getsize(blob_file(srv.root, digest)) == 200 << 20
            # cached: an eleventh client never reaches the upstream
            assert asyncio.run(ten()) == [digest] * 10
            assert counts[digest] == 1


def test_lying_upstream_is_an_error_and_nothing_is_cached(tmp_path):
    with docker_registry(str(tmp_path)) as up:
        digest = asyncio.run(push_big_blob(up.host, str(tmp_path / "blob"), 3 << 20))
        with lying_proxy(up.host, digest) as liar, \
                start_ocikit_serve(str(tmp_path), config=proxy_config(liar)) as srv:
            url = f"{srv.url}/v2/hub/big/blob/blobs/{digest}"

            async def pull() -> None:
                async with aiohttp.ClientSession() as s:
                    await pull_hash(s, url)
            for _ in range(2):  # the second try goes upstream again: nothing was kept
                with pytest.raises(aiohttp.ClientPayloadError):
                    asyncio.run(pull())
            assert not os.path.exists(blob_file(srv.root, digest))


def test_tags_list_merges_cache_and_upstream(tmp_path):
    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    with docker_registry(str(tmp_path)) as up:
        for tag in ("a", "b"):
            sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:multi",
               f"docker://{up.host}/lib/x:{tag}")
        with start_ocikit_serve(str(tmp_path), config=proxy_config(up.host, ttl="0s")) as srv:
            sh(skopeo, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
               f"docker://{srv.host}/hub/lib/x:a", f"docker://{srv.host}/hub/lib/x:local")

            async def tags() -> tuple[str, list[str]]:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{srv.url}/v2/hub/lib/x/tags/list") as r:
                        return r.headers["Ocikit-Cache"], (await r.json())["tags"]
            assert asyncio.run(tags()) == ("merged", ["a", "b", "local"])

            async def missing() -> list[tuple[int, str]]:
                out = []
                async with aiohttp.ClientSession() as s:
                    for path in ("manifests/nope", f"blobs/sha256:{'0' * 64}", f"manifests/sha256:{'1' * 64}"):
                        for method in ("GET", "HEAD"):
                            async with s.request(method, f"{srv.url}/v2/hub/lib/x/{path}") as r:
                                body = await r.read()
                                out.append((r.status, error_code(json.loads(body)) if body else ""))
                return out
            assert skopeo_digest(f"docker://{srv.host}/hub/lib/x:local") == \
                skopeo_digest(f"docker://{srv.host}/hub/lib/x:a")  # upstream lacks it: served from here
            assert asyncio.run(missing()) == [(404, "MANIFEST_UNKNOWN"), (404, ""), (404, "BLOB_UNKNOWN"), (404, ""),
                                              (404, "MANIFEST_UNKNOWN"), (404, "")]
            stop_pid(up.proc)
            assert asyncio.run(tags()) == ("stale", ["a", "local"])

            async def local_tag_state() -> str:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{srv.url}/v2/hub/lib/x/manifests/local",
                                     headers={"Accept": "application/vnd.oci.image.index.v1+json"}) as r:
                        assert r.status == 200
                        return r.headers["Ocikit-Cache"]
            assert asyncio.run(local_tag_state()) == "stale"

            async def uncached_while_down() -> list[int]:
                async with aiohttp.ClientSession() as s:
                    out = []
                    for path in (f"blobs/sha256:{'2' * 64}", "manifests/never-fetched", "/v2/"):
                        url = f"{srv.url}{path}" if path.startswith("/") else f"{srv.url}/v2/hub/lib/x/{path}"
                        async with s.get(url) as r:
                            out.append(r.status)
                    return out
            assert asyncio.run(uncached_while_down()) == [502, 502, 200]  # a bad gateway; the server stays up


def test_proxy_to_itself_is_refused(tmp_path):
    port = free_port()
    cfg = tmp_path / "loop.yml"
    cfg.write_text(proxy_config(f"localhost:{port}"))
    expect_failure("serve", "--listen", f"127.0.0.1:{port}", "--root", str(tmp_path / "root"), "--config", str(cfg),
                   match=r"proxy prefix 'hub': upstream localhost:\d+ is this server itself")


def test_two_upstreams_one_with_credentials_from_an_auth_file(tmp_path):
    import bcrypt

    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'wonderland', bcrypt.gensalt(4)).decode()}\n")
    with docker_registry(str(tmp_path)) as one, docker_registry(str(tmp_path), htpasswd=str(htpasswd)) as two:
        sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:multi",
           f"docker://{one.host}/lib/x:v1")
        sh(skopeo, "copy", "--all", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland",
           f"oci:{tmp_path / 'src'}:multi", f"docker://{two.host}/team/y:v2")
        auth = tmp_path / "auth.json"
        auth.write_text(json.dumps({"auths": {two.host: {"auth": base64.b64encode(b"alice:wonderland").decode()}}}))
        cfg = (proxy_config(one.host).replace("prefix: hub", "prefix: one")
               + f"  - prefix: two\n    upstream: docker://{two.host}/team\n    tls-verify: false\n"
                 f"    auth-file: {auth}\n")
        with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
            out = tmp_path / "out"
            sh(skopeo, "copy", "--all", "--src-tls-verify=false", f"docker://{srv.host}/one/lib/x:v1", f"oci:{out}:one")
            sh(skopeo, "copy", "--all", "--src-tls-verify=false", f"docker://{srv.host}/two/y:v2", f"oci:{out}:two")
            assert skopeo_raw(f"docker://{srv.host}/one/lib/x:v1") == skopeo_raw(f"docker://{one.host}/lib/x:v1")
            assert skopeo_digest(f"docker://{srv.host}/two/y:v2") == skopeo_digest(f"docker://{one.host}/lib/x:v1")


def test_a_client_that_stops_reading_stalls_no_one(tmp_path):
    with docker_registry(str(tmp_path)) as up:
        digest = asyncio.run(push_big_blob(up.host, str(tmp_path / "blob"), 64 << 20))
        with start_ocikit_serve(str(tmp_path), config=proxy_config(up.host)) as srv:
            url = f"{srv.url}/v2/hub/big/blob/blobs/{digest}"

            async def run() -> tuple[str, str]:
                async with aiohttp.ClientSession() as slow_s, aiohttp.ClientSession() as fast_s:
                    async with slow_s.get(url) as slow:  # subscribes, then reads nothing for a while
                        assert slow.status == 200
                        first = await slow.content.readexactly(1)
                        fast = await pull_hash(fast_s, url)  # finishes while the slow one sits
                        h = hashlib.sha256(first)
                        async for chunk in slow.content.iter_chunked(1 << 20):  # the rest, from the stored copy
                            h.update(chunk)
                        return fast, f"sha256:{h.hexdigest()}"
            assert asyncio.run(run()) == (digest, digest)


def test_a_client_that_comes_mid_blob_is_streamed_before_the_blob_is_stored(tmp_path):
    with _through(tmp_path, 32 << 20, lambda up, d: gated_proxy(up, d, 12 << 20)) as (digest, gate, srv):
        url = _blob_url(srv, digest)

        async def run() -> tuple[str, str]:
            async with aiohttp.ClientSession() as first_s, aiohttp.ClientSession() as late_s:
                async with first_s.get(url) as first:  # starts the fetch; the upstream then stalls
                    assert first.status == 200
                    head = await first.content.readexactly(4 << 20)
                    # bytes have passed and the blob is far from stored: a late client still gets
                    # a stream now (before, it waited for the whole blob; here: for ever)
                    late = await asyncio.wait_for(late_s.get(url), 60)
                    assert late.status == 200
                    late_head = await asyncio.wait_for(late.content.readexactly(4 << 20), 60)
                    assert late_head == head
                    assert not os.path.exists(blob_file(srv.root, digest))
                    gate.set()
                    h1, h2 = hashlib.sha256(head), hashlib.sha256(late_head)
                    async for chunk in first.content.iter_chunked(1 << 20):
                        h1.update(chunk)
                    async for chunk in late.content.iter_chunked(1 << 20):
                        h2.update(chunk)
                    late.release()
                    return f"sha256:{h1.hexdigest()}", f"sha256:{h2.hexdigest()}"
        try:
            assert asyncio.run(run()) == (digest, digest)
        finally:
            gate.set()
        assert os.path.getsize(blob_file(srv.root, digest)) == 32 << 20


def test_concurrent_pulls_of_one_tag_make_one_upstream_manifest_get(tmp_path):
    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    with docker_registry(str(tmp_path)) as up:
        sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:multi",
           f"docker://{up.host}/lib/m:v1")
        with manifest_counting_proxy(up.host) as (counted, counts), \
                start_ocikit_serve(str(tmp_path), config=proxy_config(counted)) as srv:
            async def ten() -> set[str]:
                async with aiohttp.ClientSession() as s:
                    async def one() -> str:
                        async with s.get(f"{srv.url}/v2/hub/lib/m/manifests/v1",
                                         headers={"Accept": "application/vnd.oci.image.index.v1+json"}) as r:
                            assert r.status == 200
                            return r.headers["Docker-Content-Digest"]
                    return set(await asyncio.gather(*(one() for _ in range(10))))
            assert len(asyncio.run(ten())) == 1
            assert counts == {"GET v1": 1}


def test_proxy_fetch_and_pull_events(tmp_path):
    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    got: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    with docker_registry(str(tmp_path)) as up, serve_app(app) as receiver:
        sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:multi",
           f"docker://{up.host}/lib/e:v1")
        cfg = proxy_config(up.host) + f"notifications:\n  - url: http://{receiver}/hook\n    events: [proxy.fetch, pull]\n"
        with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
            raw = skopeo_raw(f"docker://{srv.host}/hub/lib/e:v1")  # fetched upstream, then pulled
            skopeo_raw(f"docker://{srv.host}/hub/lib/e:v1")  # pulled from the cache
            digest = str(Digest.of(raw))
            deadline = time.monotonic() + 30
            while len(got) < 3:
                assert time.monotonic() < deadline, got
                time.sleep(0.05)
    kinds = [(e["type"].removeprefix("dev.ocikit.registry."), e["data"]["digest"]) for e in got]
    assert kinds == [("proxy.fetch", digest), ("pull", digest), ("pull", digest)]
    assert got[0]["data"]["upstream"] == up.host and got[0]["data"]["tag"] == "v1"


# ---- blobs of 1 MiB or more: received by a thread of their own (transports/registry/threadget.py) ----


def test_an_upstream_body_cut_once_is_resumed_and_cached(tmp_path):
    size = 4 << 20
    with _through(tmp_path, size, lambda up, d: cutting_proxy(up, d, cut_after=(1 << 20) + 300_000)) \
            as (digest, stats, srv):
        async def pull() -> str:
            async with aiohttp.ClientSession() as s:
                return await pull_hash(s, _blob_url(srv, digest))
        assert asyncio.run(pull()) == digest
        assert stats["cuts"] == 1 and stats["ranged"] >= 1
        wait_stored(srv.root, digest, size)


def test_an_upstream_that_cuts_too_often_cuts_the_client_and_nothing_is_cached(tmp_path):
    with _through(tmp_path, 4 << 20, lambda up, d: cutting_proxy(up, d, cut_after=500_000, times=10)) \
            as (digest, stats, srv):  # retries: 0
        async def pull() -> None:
            async with aiohttp.ClientSession() as s:
                await pull_hash(s, _blob_url(srv, digest))
        for n in (1, 2):  # the server stays up and answers the second pull the same way
            with pytest.raises(aiohttp.ClientPayloadError):
                asyncio.run(pull())
            assert not os.path.exists(blob_file(srv.root, digest))
            assert stats["ranged"] >= n  # resumed before giving up
        assert srv.proc.poll() is None


def test_a_client_that_leaves_mid_blob_does_not_stop_the_caching(tmp_path):
    size = 8 << 20
    with _through(tmp_path, size, lambda up, d: gated_proxy(up, d, 3 << 20)) as (digest, gate, srv):
        async def leave_early() -> str:
            async with aiohttp.ClientSession() as s:
                r = await s.get(_blob_url(srv, digest))
                assert r.status == 200
                await r.content.readexactly(1 << 20)
                r.close()  # the connection, mid-blob, while the upstream holds the rest
                return r.headers["Ocikit-Cache"]
        try:
            assert asyncio.run(leave_early()) == "fetched"
            assert not os.path.exists(blob_file(srv.root, digest))
        finally:
            gate.set()
        wait_stored(srv.root, digest, size)

        async def again() -> tuple[str | None, str]:
            async with aiohttp.ClientSession() as s:
                async with s.get(_blob_url(srv, digest)) as r:
                    assert r.status == 200
                    got = hashlib.sha256(await r.read()).hexdigest()
                    return r.headers.get("Ocikit-Cache"), f"sha256:{got}"
        assert asyncio.run(again()) == (None, digest)  # the stored blob, not a fetch


def test_an_upstream_answer_without_content_length_is_fetched_on_the_event_loop(tmp_path):
    size = 3 << 20
    with _through(tmp_path, size, lambda up, d: chunked_proxy(up)) as (digest, seen, srv):
        async def pull() -> str:
            async with aiohttp.ClientSession() as s:
                return await pull_hash(s, _blob_url(srv, digest))
        assert asyncio.run(pull()) == digest
        wait_stored(srv.root, digest, size)
        # the worker thread's GET met no Content-Length and gave up before any byte; the event loop's took it
        assert [m for m, p in seen if p.endswith(digest)] == ["HEAD", "GET", "GET"]
        assert asyncio.run(pull()) == digest


def test_tls_clients_follow_a_blob_the_thread_receives(tmp_path, tls_cert):
    size = 8 << 20
    crt, key = tls_cert
    with _through(tmp_path, size, lambda up, d: staged_proxy(up, d, [1 << 20, 3 << 20]), tls=(crt, key)) \
            as (digest, gates, srv):
        ctx = ssl.create_default_context(cafile=crt)

        async def two() -> list[str]:
            arrived = [asyncio.Event(), asyncio.Event()]
            count = [0, 0]

            async def one(s: aiohttp.ClientSession) -> str:
                async with s.get(_blob_url(srv, digest), ssl=ctx) as r:
                    assert r.status == 200
                    h = hashlib.sha256()
                    for stage, want in enumerate((1 << 20, 2 << 20)):
                        # stage 1: bytes that came while both clients followed the spool, so only
                        # if the fill thread wakes them (not at the end, once the digest checked out)
                        h.update(await asyncio.wait_for(r.content.readexactly(want), 60))
                        count[stage] += 1
                        if count[stage] == 2:
                            gates[stage].set()
                            arrived[stage].set()
                        await arrived[stage].wait()
                    async for chunk in r.content.iter_chunked(1 << 20):
                        h.update(chunk)
                return f"sha256:{h.hexdigest()}"
            async with aiohttp.ClientSession() as s1, aiohttp.ClientSession() as s2:
                return list(await asyncio.gather(one(s1), one(s2)))
        try:
            assert asyncio.run(two()) == [digest, digest]
        finally:
            for gate in gates:
                gate.set()
        wait_stored(srv.root, digest, size)


def test_a_head_of_an_uncached_big_blob_answers_once_it_is_stored(tmp_path):
    size = 4 << 20
    with _through(tmp_path, size, lambda up, d: gated_proxy(up, d, 2 << 20)) as (digest, gate, srv):
        async def head() -> tuple[int, str]:
            async with aiohttp.ClientSession() as s:
                task = asyncio.create_task(s.head(_blob_url(srv, digest)))
                done, _ = await asyncio.wait([task], timeout=2)
                assert not done, "HEAD answered while the blob was still arriving"
                assert not os.path.exists(blob_file(srv.root, digest))
                gate.set()
                r = await task
                stored = os.path.getsize(blob_file(srv.root, digest))  # there once the HEAD answers
                r.release()
                assert r.status == 200 and int(r.headers["Content-Length"]) == size
                return stored, r.headers["Docker-Content-Digest"]
        try:
            assert asyncio.run(head()) == (size, digest)
        finally:
            gate.set()


def test_sigterm_while_a_fill_thread_waits_for_a_stalled_upstream(tmp_path):
    """The fill thread is aborted (its socket shut down) and the client's sender stopped: the server exits."""
    with _through(tmp_path, 8 << 20, lambda up, d: gated_proxy(up, d, 2 << 20), settings="shutdown_timeout: 1\n") \
            as (digest, gate, srv):
        async def follow_then_stop() -> int | None:
            async with aiohttp.ClientSession() as s:
                async with s.get(_blob_url(srv, digest)) as r:
                    assert r.status == 200
                    await r.content.readexactly(1 << 20)
                    srv.proc.send_signal(signal.SIGTERM)
                    with pytest.raises(aiohttp.ClientPayloadError):  # cut short: never taken as complete
                        await r.read()
            return await asyncio.to_thread(srv.proc.wait, 30)
        try:
            assert asyncio.run(follow_then_stop()) == 0
        finally:
            gate.set()
        assert not os.path.exists(blob_file(srv.root, digest))


def test_a_token_upstream_the_fill_threads_get_carries_the_bearer_token(tmp_path):
    issuer = TokenIssuer(str(tmp_path))
    with token_server(issuer, {"alice": "wonderland"}) as (token_host, _):
        auth = {"realm": f"http://{token_host}/token", "service": "test-registry", "issuer": issuer.issuer,
                "rootcertbundle": issuer.cert}
        with docker_registry(str(tmp_path), token=auth) as up:
            async def push() -> str:
                async with aiohttp.ClientSession() as s:
                    basic = base64.b64encode(b"alice:wonderland").decode()
                    async with s.get(f"http://{token_host}/token", headers={"Authorization": f"Basic {basic}"},
                                     params={"service": "test-registry",
                                             "scope": "repository:big/blob:pull,push"}) as r:
                        token = (await r.json())["token"]
                return await push_big_blob(up.host, str(tmp_path / "blob"), 2 << 20,
                                           headers={"Authorization": f"Bearer {token}"})
            digest = asyncio.run(push())
            with recording_proxy(up.host) as (recorder, seen), \
                    start_ocikit_serve(str(tmp_path), config=proxy_config(recorder)) as srv:  # pulls anonymously
                async def pull() -> str:
                    async with aiohttp.ClientSession() as s:
                        return await pull_hash(s, _blob_url(srv, digest))
                assert asyncio.run(pull()) == digest
                wait_stored(srv.root, digest, 2 << 20)
    # the proxy's client met the challenge and got a token for its HEAD; the thread's GET sent it
    # (a 401 there would have been a second GET, the event loop's)
    assert [m for m, p in seen if p.endswith(digest)] == ["HEAD", "GET"]
