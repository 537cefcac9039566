"""Faults: connections cut mid-blob, a registry serving wrong bytes, 429/503 answers, interrupted copies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from asyncio import run

import pytest
from aiohttp import web

from ocikit.core.digest import Digest
from ocikit.core.errors import DigestMismatch, ManifestUnknown, NameUnknown, TransportError
from ocikit.model import Descriptor
from ocikit.ops.copy import copy
from ocikit.testing import LayerSpec, write_image
from ocikit.transports.layout import OCILayout
from ocikit.transports.registry import RegistryClient, RegistryStore, RetryPolicy

from helpers.app_servers import cutting_proxy, lying_proxy, serve_app, slow_proxy
from helpers.cli import expect_failure, OCIKIT
from helpers.servers import free_port

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def pushed(reg, tmp_path_factory):
    """An image with a 4 MB layer pushed to the registry as faults/img:v1; returns (layout, manifest desc, layer)."""
    lay = OCILayout(str(tmp_path_factory.mktemp("faults") / "lay"), create=True)
    d = write_image(lay, "v1", layers=(LayerSpec(random_bytes=4_000_000),), seed=31)
    copy(f"oci:{lay.path}:v1", f"docker://{reg.host}/faults/img:v1")
    from ocikit.model import parse_manifest
    m = parse_manifest(lay.get_manifest_sync("v1").raw)
    return lay, d, m.layers[0]


def test_cut_connection_mid_blob_resumes_with_range(reg, pushed, tmp_path):
    lay, d, layer = pushed
    with cutting_proxy(reg.host, layer.digest, cut_after=1_000_000, times=2) as (proxy, stats):
        res = copy(f"docker://{proxy}/faults/img:v1", f"oci:{tmp_path}/out:v1")
    assert res.digest == d.digest
    assert stats["cuts"] == 2 and stats["ranged"] >= 2
    out = OCILayout(str(tmp_path / "out"))
    assert out.validate() == []


def test_resume_verifies_the_whole_blob_when_used_alone(reg, pushed):
    """blob_chunks verifies by itself (no consumer check) and still resumes."""
    _, _, layer = pushed
    with cutting_proxy(reg.host, layer.digest, cut_after=600_000) as (proxy, stats):
        async def go():
            store = RegistryStore(RegistryClient(proxy), "faults/img")
            try:
                n = 0
                async for c in store.blob_chunks(layer):
                    n += len(c)
                return n, store.resumes
            finally:
                await store.close()
        n, resumes = run(go())
    assert n == layer.size and resumes == 1 and stats["cuts"] == 1


def test_wrong_bytes_fail_naming_the_digest_and_nothing_is_tagged(reg, pushed, tmp_path):
    _, _, layer = pushed
    with lying_proxy(reg.host, layer.digest) as proxy:
        with pytest.raises(DigestMismatch) as e:
            copy(f"docker://{proxy}/faults/img:v1", f"oci:{tmp_path}/lie:v1")
        assert str(layer.digest) in str(e.value)
        lay = OCILayout(str(tmp_path / "lie"))
        assert lay.tags() == [] and not os.path.exists(lay.blob_path(layer.digest))
        assert not [f for f in os.listdir(os.path.dirname(lay.blob_path(layer.digest))) if f.startswith(".tmp")]
        with pytest.raises(DigestMismatch) as e2:   # registry to registry: verified while streaming too
            copy(f"docker://{proxy}/faults/img:v1", f"docker://{reg.host}/faults/lied:v1")
        assert str(layer.digest) in str(e2.value)
        expect_failure("copy", f"docker://{proxy}/faults/img:v1", f"oci:{tmp_path}/lie-cli:v1",
                       match=re.escape(str(layer.digest)))

    async def tags():
        store = RegistryStore(RegistryClient(reg.host), "faults/lied")
        try:
            return await store.list_tags()
        finally:
            await store.close()
    with pytest.raises(NameUnknown):
        run(tags())


def test_partial_upload_never_visible(reg, tmp_path):
    data = os.urandom(3_000_000)
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))

    async def broken():
        yield data[:1_000_000]
        raise TransportError("source went away")

    async def short():
        yield data[:2_000_000]

    async def go():
        store = RegistryStore(RegistryClient(reg.host), "faults/partial", write=True)
        try:
            with pytest.raises(TransportError):
                await store.put_blob(desc, broken())
            from ocikit.core.errors import SizeInvalid
            with pytest.raises(SizeInvalid):
                await store.put_blob(desc, short())
            return await store.has_blob(desc)
        finally:
            await store.close()

    assert run(go()) is False


def test_interrupted_copy_rerun_completes(reg, pushed, tmp_path):
    """Kill a copy mid-blob; the target shows no partial blob and a re-run completes with equal digests."""
    lay, d, layer = pushed
    target = tmp_path / "int"
    with slow_proxy(reg.host, 0.05) as proxy:
        p = subprocess.Popen([*OCIKIT, "copy", f"docker://{proxy}/faults/img:v1",
                              f"oci:{target}:v1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        blob = target / "blobs" / "sha256" / layer.digest.encoded
        deadline = time.monotonic() + 60
        # wait until the layer is being received (its temp file exists: the writer hashes and
        # writes in batches of a few MiB, so it may still be empty), then kill
        while time.monotonic() < deadline:
            d_ = target / "blobs" / "sha256"
            if d_.is_dir() and any(f.startswith(".tmp") for f in os.listdir(d_)):
                break
            time.sleep(0.02)
        assert time.monotonic() < deadline and p.poll() is None, "the copy never started the layer"
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    assert not blob.exists()
    assert OCILayout(str(target)).tags() == []
    res = copy(f"docker://{reg.host}/faults/img:v1", f"oci:{target}:v1")
    assert res.digest == d.digest
    assert OCILayout(str(target)).validate() == []


def test_retries_429_and_503_honouring_retry_after(tmp_path):
    hits = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/v2/":
            return web.json_response({})
        hits["n"] += 1
        if hits["n"] == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        if hits["n"] == 2:
            return web.Response(status=503)
        return web.json_response({"name": "r/x", "tags": ["a"]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    with serve_app(app) as host:
        async def go(times: int):
            store = RegistryStore(RegistryClient(host, retry=RetryPolicy(times=times)), "r/x")
            try:
                t0 = time.monotonic()
                tags = await store.list_tags()
                return tags, time.monotonic() - t0
            finally:
                await store.close()
        tags, took = run(go(3))
        assert tags == ["a"] and hits["n"] == 3 and took >= 1.0
        hits["n"] = 0
        from ocikit.core.errors import TooManyRequests
        with pytest.raises(TooManyRequests):
            run(go(0))


def test_unreachable_registry_fails_in_one_line(tmp_path):
    port = free_port()
    expect_failure("copy", "--retry-times", "0", f"docker://127.0.0.1:{port}/a/b:c", f"oci:{tmp_path}/x:y",
                   match="cannot reach the registry")


def test_missing_manifest_is_manifest_unknown(reg):
    with pytest.raises(ManifestUnknown):
        copy(f"docker://{reg.host}/faults/img:nope", "oci:/nonexistent-never-created:x")
