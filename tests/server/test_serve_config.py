"""Server options: sparse indexes, TLS, chunk minimum, the seeded sample, config errors."""

from __future__ import annotations

import json
import ssl
import subprocess

import aiohttp
import pytest

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.model import Descriptor, build_index

from helpers.cli import expect_failure, OCIKIT
from helpers.peers import require, skopeo_raw
from helpers.rawhttp import Client
from helpers.servers import free_port, start_ocikit_serve


async def test_sparse_index_accepted_when_configured(tmp_path):
    cfg = "manifests:\n  accept_sparse_index: true\nlimits:\n  chunk_min_length: 1048576\n"
    with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
        async with aiohttp.ClientSession() as s:
            c = Client(srv.url, s)
            img = await c.push_image("opt/sparse", "v1")
            ghost = Descriptor(mt.OCI_MANIFEST, Digest.of(b"elsewhere"), 9)
            idx = build_index([Descriptor(img.media_type, img.digest, len(img.raw)), ghost])
            r = await c.put_manifest("opt/sparse", "idx", idx.raw, idx.media_type)
            assert r.status == 201
            async with s.get(f"{srv.url}/v2/opt/sparse/manifests/idx") as r:
                assert await r.read() == idx.raw
            async with s.post(f"{srv.url}/v2/opt/sparse/blobs/uploads/") as r:
                assert r.headers["OCI-Chunk-Min-Length"] == "1048576"


async def test_tls(tmp_path, tls_cert):
    require("skopeo")
    crt, key = tls_cert
    port = free_port()
    root = str(tmp_path / "root")
    proc = subprocess.Popen([*OCIKIT, "serve", "--listen", f"127.0.0.1:{port}", "--root",
                             root, "--quiet", "--no-fsync", "--seed-sample", "--tls-cert", crt, "--tls-key", key],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        ctx = ssl.create_default_context(cafile=crt)
        deadline_ok = False
        for _ in range(300):
            try:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"https://127.0.0.1:{port}/v2/", ssl=ctx) as r:
                        deadline_ok = r.status == 200
                        break
            except aiohttp.ClientConnectionError:
                import asyncio
                await asyncio.sleep(0.1)
        assert deadline_ok
        raw = skopeo_raw(f"docker://127.0.0.1:{port}/sample/multiarch:latest")
        assert json.loads(raw)["mediaType"] == mt.OCI_INDEX
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0].decode()
    assert "seeded" in out and "ocikit copy --all" in out and "skopeo inspect" in out


async def test_seed_sample_is_idempotent(tmp_path):
    root = str(tmp_path / "root")
    digests = []
    for _ in range(2):
        with start_ocikit_serve(str(tmp_path), root=root, args=("--seed-sample",)) as srv:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{srv.url}/v2/sample/multiarch/tags/list") as r:
                    assert (await r.json())["tags"] == ["amd64", "arm64-v8", "latest", "ppc64le"]
                async with s.head(f"{srv.url}/v2/sample/multiarch/manifests/latest") as r:
                    digests.append(r.headers["Docker-Content-Digest"])
                async with s.get(f"{srv.url}/v2/sample/multiarch/manifests/amd64") as r:
                    assert r.status == 200
    assert digests[0] == digests[1]


def test_bad_config_is_one_line_error(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text("auth:\n  mode: ldap\n")
    expect_failure("serve", "--config", str(cfg), "--root", str(tmp_path), match=r"^ocikit: error: config: auth\.mode")
