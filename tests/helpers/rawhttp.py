"""A raw-HTTP registry client for tests: pushes blobs and images with aiohttp, requests as the spec writes them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import aiohttp

from ocikit import mediatypes as mt
from ocikit.digest import Digest
from ocikit.model import Descriptor, build_index, build_manifest, canonical_json


USERS = {"alice": "wonderland", "bob": "builder"}
"""The users of the ``htpasswd`` fixture (tests/server/conftest.py) and their passwords."""

TOKEN_CONFIG = """
auth:
  mode: token
  htpasswd: {htpasswd}
  token: {{secret: test-secret, service: ocikit-test, expiry: 60}}
  rules:
    - {{repository: "team/*", users: [alice], actions: [pull, push, delete]}}
    - {{repository: "public/*", users: ["*"], actions: [pull, push]}}
    - {{repository: "public/*", users: [anonymous], actions: [pull]}}
"""
"""Token mode with per-repository rules; ``.format(htpasswd=PATH)``."""


@dataclass
class PushedImage:
    name: str
    tag: str | None
    raw: bytes
    digest: Digest
    media_type: str
    blobs: dict[Digest, bytes]


class Client:
    """A tiny registry client over aiohttp, speaking the spec's requests as they are written."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.s = session

    def url(self, path: str) -> str:
        return self.base + path

    async def post_blob(self, name: str, data: bytes) -> Digest:
        d = Digest.of(data)
        async with self.s.post(self.url(f"/v2/{name}/blobs/uploads/"), params={"digest": d}, data=data,
                               headers={"Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, (r.status, await r.text())
            assert r.headers["Docker-Content-Digest"] == d
        return d

    async def session_blob(self, name: str, data: bytes) -> Digest:
        d = Digest.of(data)
        async with self.s.post(self.url(f"/v2/{name}/blobs/uploads/")) as r:
            assert r.status == 202, await r.text()
            loc = r.headers["Location"]
        async with self.s.put(self.url(loc), params={"digest": d}, data=data,
                              headers={"Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, await r.text()
        return d

    async def put_manifest(self, name: str, ref: str, raw: bytes, media_type: str) -> aiohttp.ClientResponse:
        async with self.s.put(self.url(f"/v2/{name}/manifests/{ref}"), data=raw,
                              headers={"Content-Type": media_type}) as r:
            await r.read()
            return r

    async def push_image(self, name: str, tag: str | None, *, layer_sizes: tuple[int, ...] = (2048,),
                         docker: bool = False, subject: Descriptor | None = None,
                         artifact_type: str | None = None, annotations: dict[str, str] | None = None,
                         seed: bytes | None = None) -> PushedImage:
        blobs: dict[Digest, bytes] = {}
        layers = []
        for size in layer_sizes:
            data = os.urandom(size) if seed is None else (seed * (size // max(len(seed), 1) + 1))[:size]
            d = await self.post_blob(name, data)
            blobs[d] = data
            layers.append(Descriptor(mt.DOCKER_LAYER_GZIP if docker else mt.OCI_LAYER_GZIP, d, len(data)))
        cfg = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                              "diff_ids": [str(x.digest) for x in layers]}, "nonce": os.urandom(8).hex()})
        cd = await self.session_blob(name, cfg)
        blobs[cd] = cfg
        m = build_manifest(Descriptor(mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG, cd, len(cfg)), layers,
                           media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST, subject=subject,
                           artifact_type=artifact_type, annotations=annotations)
        r = await self.put_manifest(name, tag or str(m.digest), m.raw, m.media_type)
        assert r.status == 201, r.status
        assert r.headers["Docker-Content-Digest"] == m.digest
        return PushedImage(name, tag, m.raw, m.digest, m.media_type, blobs)

    async def push_index(self, name: str, tag: str, children: list[PushedImage], *, docker: bool = False) -> PushedImage:
        from ocikit.platforms import parse_platform
        plats = ["linux/amd64", "linux/arm64/v8", "linux/ppc64le", "linux/s390x"]
        descs = [Descriptor(c.media_type, c.digest, len(c.raw), platform=parse_platform(plats[i % 4]))
                 for i, c in enumerate(children)]
        idx = build_index(descs, media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX)
        r = await self.put_manifest(name, tag, idx.raw, idx.media_type)
        assert r.status == 201, r.status
        return PushedImage(name, tag, idx.raw, idx.digest, idx.media_type, {})

    async def get_json(self, path: str, **kw: Any) -> tuple[int, Any, Any]:
        async with self.s.get(self.url(path), **kw) as r:
            body = await r.read()
            return r.status, (json.loads(body) if body else None), r.headers


async def verify_tag(c: Client, name: str, tag: str) -> bytes:
    """Fetch a tag and every blob it names, checking each digest; returns the manifest bytes."""
    from ocikit.model import ImageManifest, parse_manifest

    async with c.s.get(c.url(f"/v2/{name}/manifests/{tag}")) as r:
        assert r.status == 200, (name, tag, r.status)
        raw = await r.read()
        digest = r.headers["Docker-Content-Digest"]
    assert Digest.of(raw) == digest
    m = parse_manifest(raw, r.headers["Content-Type"])
    assert isinstance(m, ImageManifest)
    for desc in m.children():
        async with c.s.get(c.url(f"/v2/{name}/blobs/{desc.digest}")) as r:
            assert r.status == 200, (name, tag, desc.digest)
            data = await r.read()
        assert Digest.of(data) == desc.digest and len(data) == desc.size
    return raw


async def verify_after_crash(c: Client, done: list[PushedImage], repositories: set[str], tags: set[str]) -> int:
    """Every push that got its 201 pulls digest-exact, and every listed tag is complete (nothing half
    done is visible); returns how many tags are listed."""
    for img in done:
        assert await verify_tag(c, img.name, img.tag or str(img.digest)) == img.raw
        for d, data in img.blobs.items():
            async with c.s.get(c.url(f"/v2/{img.name}/blobs/{d}")) as r:
                assert await r.read() == data
    _, catalog, _ = await c.get_json("/v2/_catalog")
    assert set(catalog["repositories"]) <= repositories
    visible = 0
    for name in catalog["repositories"]:
        _, body, _ = await c.get_json(f"/v2/{name}/tags/list")
        assert set(body["tags"]) <= tags
        for tag in body["tags"]:
            await verify_tag(c, name, tag)
            visible += 1
    return visible


def error_code(body: Any) -> str:
    """The ``code`` of the first error in a Distribution-spec error body."""
    return body["errors"][0]["code"]
