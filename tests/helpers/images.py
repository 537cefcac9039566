"""Images for tests: applications that share base layers, signatures (referrers) of them, and
what an image in a layout holds (its digest, manifest and config, parsed)."""

from __future__ import annotations

import json

from ocikit.core import mediatypes as mt
from ocikit.content import Store
from ocikit.model import Descriptor, build_index, build_manifest
from ocikit.testing.images import FileEntry, LayerSpec, put_bytes, write_image_async
from ocikit.transports.layout import OCILayout

BASE = LayerSpec(entries=(FileEntry("etc/os-release", data=b"ID=mirrortest\n" * 200),
                          FileEntry("lib/libc.so", data=bytes(range(256)) * 64)))
MIDDLE = LayerSpec(entries=(FileEntry("usr/lib/python3/site.py", data=b"# runtime\n" * 500),))


async def push_signature(store: Store, subject: Descriptor, *, payload: bytes = b"signed by the test",
                         fallback: bool = True) -> Descriptor:
    """An OCI artifact manifest with ``subject``, pushed by digest, plus (``fallback``) the ``sha256-<hex>`` tag index."""
    cfg = await put_bytes(store, mt.EMPTY_JSON, mt.OCI_EMPTY)
    layer = await put_bytes(store, payload, "application/vnd.dev.cosign.simplesigning.v1+json")
    art = build_manifest(cfg, [layer], media_type=mt.OCI_MANIFEST,
                         artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
                         subject=Descriptor(subject.media_type, subject.digest, subject.size))
    await store.put_manifest(art.raw, art.media_type, None)
    art_desc = Descriptor(mt.OCI_MANIFEST, art.digest, art.size,
                          artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json")
    if not fallback:
        return art_desc
    idx = build_index([art_desc], media_type=mt.OCI_INDEX)
    await store.put_manifest(idx.raw, idx.media_type, f"{subject.digest.algorithm}-{subject.digest.encoded}")
    return art_desc


async def write_app(store: Store, tag: str, n: int, *, shared: bool = True, extra_bytes: int = 1024) -> Descriptor:
    """Image number ``n``: the shared base (and runtime) layers, then a layer of its own."""
    layers = ([BASE, MIDDLE] if shared else []) + [LayerSpec(random_bytes=extra_bytes)]
    return await write_image_async(store, tag, layers=layers, seed=1000 + n)


def digest_of(layout: str, tag: str) -> str:
    """The digest ``tag`` names in the OCI layout at ``layout``."""
    return str(OCILayout(layout).resolve_sync(tag).digest)


def manifest(layout: str, tag: str) -> dict:
    """The manifest (or index) ``tag`` names in the layout at ``layout``, parsed."""
    return json.loads(OCILayout(layout).get_manifest_sync(tag).raw)


def image_config(layout: str, tag: str) -> dict:
    """The config blob of the image ``tag`` names in the layout at ``layout``, parsed."""
    lay = OCILayout(layout)
    m = json.loads(lay.get_manifest_sync(tag).raw)
    with open(lay.blob_path(m["config"]["digest"]), "rb") as f:
        return json.load(f)
