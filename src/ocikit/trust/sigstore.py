"""cosign's tag schema: signatures of ``sha256:<hex>`` in an image manifest tagged ``sha256-<hex>.sig``.

As cosign's signature specification lays it out: one OCI image manifest per signed object; each
signature is a layer whose blob is the simple-signing payload
(``application/vnd.dev.cosign.simplesigning.v1+json``) and whose descriptor carries the base64
ECDSA signature in the ``dev.cosignproject.cosign/signature`` annotation. The config is the
go-containerregistry config cosign writes (empty, with the layers' digests as ``diff_ids``).
A new signature is appended to the manifest already there (cosign does the same), so several
signers can sign one image. ``.att`` and ``.sbom`` tags follow the same naming.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

from .. import mediatypes as mt
from ..content import DEFAULT_OPTIONS, Options, Store, read_blob
from ..digest import Digest
from ..errors import ManifestInvalid, NotFound
from ..model import Descriptor, ImageManifest, parse_manifest
from .payload import COSIGN_PAYLOAD_MEDIA_TYPE

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
TAG_SUFFIXES = ("sig", "att", "sbom")
MAX_PAYLOAD = 1 << 20
"""Payloads are small JSON documents; a larger layer is not read."""


def tag_for(digest: str, suffix: str = "sig") -> str:
    """``sha256-<hex>.<suffix>``: where cosign keeps what belongs to ``digest``."""
    d = Digest(digest)
    return f"{d.algorithm}-{d.encoded}.{suffix}"


@dataclass(frozen=True)
class TagSignature:
    """One signature layer of a ``.sig`` manifest."""

    payload: bytes
    signature: bytes
    layer: Descriptor
    manifest_digest: Digest
    """The digest of the ``.sig`` manifest holding it."""


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _desc(media_type: str, size: int, digest: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "size": size, "digest": str(digest)}
    if annotations:
        d["annotations"] = annotations
    return d


def signature_config(layer_digests: list[str]) -> bytes:
    """The config blob cosign (go-containerregistry) writes for a signature image."""
    return _json({"architecture": "", "created": "0001-01-01T00:00:00Z",
                  "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                  "rootfs": {"type": "layers", "diff_ids": [str(d) for d in layer_digests]}, "config": {}})


def signature_manifest(layers: list[dict[str, Any]], config: bytes) -> bytes:
    """The ``.sig`` manifest: cosign's field order (mediaType, size, digest, annotations)."""
    return _json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                  "config": _desc(mt.OCI_CONFIG, len(config), Digest.of(config)),
                  "layers": layers})


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put_small_blob(store: Store, media_type: str, data: bytes, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
    """Store a small blob held in memory (a payload, a config, a bundle) unless it is there."""
    desc = Descriptor(media_type, Digest.of(data), len(data))
    if not await store.has_blob(desc, opts):
        await store.put_blob(desc, _one(data), opts)
    return desc


async def sig_manifest(store: Store, digest: str, suffix: str = "sig",
                       opts: Options = DEFAULT_OPTIONS) -> tuple[ImageManifest, bytes] | None:
    """The ``sha256-<hex>.<suffix>`` manifest for ``digest`` and its bytes, if the store has one."""
    try:
        rm = await store.get_manifest(tag_for(digest, suffix), opts)
    except NotFound:
        return None
    m = parse_manifest(rm.raw, rm.media_type, what=f"{store.location}:{tag_for(digest, suffix)}")
    if not isinstance(m, ImageManifest):
        raise ManifestInvalid(f"{store.location}:{tag_for(digest, suffix)} is an index, not a signature manifest")
    return m, rm.raw


async def read_tag_signatures(store: Store, digest: str, opts: Options = DEFAULT_OPTIONS) -> list[TagSignature]:
    """Every signature layer in ``digest``'s ``.sig`` manifest (payloads read and verified)."""
    found = await sig_manifest(store, digest, "sig", opts)
    if found is None:
        return []
    m, raw = found
    out: list[TagSignature] = []
    for layer in m.layers:
        ann = layer.annotations or {}
        if SIGNATURE_ANNOTATION not in ann or layer.size > MAX_PAYLOAD:
            continue
        try:
            sig = base64.b64decode(ann[SIGNATURE_ANNOTATION], validate=True)
        except binascii.Error:
            sig = b""  # kept: it fails verification with a reason, rather than vanishing
        payload = await read_blob(store, layer, opts, limit=MAX_PAYLOAD)
        out.append(TagSignature(payload, sig, layer, Digest.of(raw)))
    return out


async def write_tag_signature(store: Store, digest: str, payload: bytes, signature: bytes,
                              opts: Options = DEFAULT_OPTIONS) -> Digest:
    """Add a signature to ``digest``'s ``.sig`` manifest (created if absent); its new digest."""
    layer_desc = await put_small_blob(store, COSIGN_PAYLOAD_MEDIA_TYPE, payload, opts)
    sig_b64 = base64.b64encode(signature).decode()
    layers: list[dict[str, Any]] = []
    found = await sig_manifest(store, digest, "sig", opts)
    if found is not None:
        for x in found[0].layers:
            if x.digest == layer_desc.digest and (x.annotations or {}).get(SIGNATURE_ANNOTATION) == sig_b64:
                return Digest.of(found[1])  # this very signature is there already
            layers.append(_desc(x.media_type, x.size, x.digest, dict(x.annotations or {}) or None))
    layers.append(_desc(COSIGN_PAYLOAD_MEDIA_TYPE, layer_desc.size, layer_desc.digest, {SIGNATURE_ANNOTATION: sig_b64}))
    config = signature_config([x["digest"] for x in layers])
    await put_small_blob(store, mt.OCI_CONFIG, config, opts)
    raw = signature_manifest(layers, config)
    return await store.put_manifest(raw, mt.OCI_MANIFEST, tag_for(digest, "sig"), opts, root=True)


__all__ = ["CERTIFICATE_ANNOTATION", "SIGNATURE_ANNOTATION", "TAG_SUFFIXES", "TagSignature", "put_small_blob",
           "read_tag_signatures", "sig_manifest", "signature_config", "signature_manifest", "tag_for",
           "write_tag_signature"]
