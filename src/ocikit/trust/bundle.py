"""Sigstore bundles (v0.3) kept as OCI 1.1 referrers of the image they sign.

ocikit signs with a DSSE envelope holding an in-toto statement whose subject is the image
(``name``: the repository, ``digest``: ``{"sha256": <hex>}``), predicate type
``https://sigstore.dev/cosign/sign/v1`` — what cosign's new bundle format and sigstore-js'
``DSSEBundleBuilder`` produce. Key-based and offline: the verification material is the
public key's hint, with no transparency-log entries and no timestamps.

Verification accepts both bundle contents sigstore-js makes: a DSSE envelope (the signature
is over the DSSE pre-authentication encoding; the statement's subject must name the digest)
and a message signature (the message digest must be the manifest's digest; the signature is
over it, prehashed).

The referrer is laid out as ``@sigstore/oci`` attaches one: an image manifest with artifact
type ``application/vnd.dev.sigstore.bundle.v0.3+json``, the empty config, one layer holding the
bundle JSON, and the image as its ``subject``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from dataclasses import dataclass
from typing import Any

from .. import mediatypes as mt
from ..content import DEFAULT_OPTIONS, Options, Store, read_blob
from ..digest import Digest
from ..errors import ManifestInvalid, SignatureInvalid
from ..model import Descriptor, ImageManifest, build_manifest
from . import keys

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPES = (BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3")
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
MAX_BUNDLE = 4 << 20


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def statement(repository: str, digest: str) -> bytes:
    d = Digest(digest)
    doc = {"_type": STATEMENT_TYPE, "subject": [{"name": repository, "digest": {d.algorithm: d.encoded}}],
           "predicateType": PREDICATE_TYPE, "predicate": {}}
    return json.dumps(doc, separators=(",", ":")).encode()


def build_bundle(private_key: Any, repository: str, digest: str) -> bytes:
    """A v0.3 bundle with a DSSE envelope signing ``digest`` (the image in ``repository``)."""
    body = statement(repository, digest)
    sig = keys.sign_bytes(private_key, pae(INTOTO_PAYLOAD_TYPE, body))
    hint = keys.public_key_hint(private_key.public_key())
    doc = {"mediaType": BUNDLE_MEDIA_TYPE,
           "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": [],
                                    "timestampVerificationData": {"rfc3161Timestamps": []}},
           "dsseEnvelope": {"payload": base64.b64encode(body).decode(), "payloadType": INTOTO_PAYLOAD_TYPE,
                            "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": hint}]}}
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class BundleCheck:
    """What a bundle says once its signature verified."""

    digest: Digest
    identity: str | None
    """The repository the statement's subject names; None for a message signature."""
    content: str
    """``dsse`` or ``message``."""


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise SignatureInvalid(f"sigstore bundle: {where} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise SignatureInvalid(f"sigstore bundle: {where} is not base64") from None


def parse_bundle(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise SignatureInvalid(f"sigstore bundle is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("mediaType") not in BUNDLE_MEDIA_TYPES:
        raise SignatureInvalid(f"not a v0.3 sigstore bundle (mediaType {doc.get('mediaType') if isinstance(doc, dict) else None!r})")
    return doc


def verify_bundle(raw: bytes, public_key: Any, digest: str) -> BundleCheck:
    """Verify a bundle's signature with ``public_key`` and that it signs ``digest``.

    :class:`SignatureInvalid` names the reason (bad signature, another digest, bad JSON).
    """
    doc = parse_bundle(raw)
    want = Digest(digest)
    if "dsseEnvelope" in doc:
        env = doc["dsseEnvelope"]
        body = _b64(env.get("payload"), "dsseEnvelope.payload")
        ptype = env.get("payloadType", "")
        sigs = env.get("signatures") or []
        if not isinstance(sigs, list) or not sigs:
            raise SignatureInvalid("sigstore bundle: dsseEnvelope has no signatures")
        if not any(keys.verify_bytes(public_key, _b64(s.get("sig"), "dsseEnvelope.signatures[].sig"), pae(ptype, body))
                   for s in sigs if isinstance(s, dict)):
            raise SignatureInvalid("sigstore bundle: the DSSE signature does not verify with the key")
        if ptype != INTOTO_PAYLOAD_TYPE:
            raise SignatureInvalid(f"sigstore bundle: DSSE payload type {ptype!r} is not an in-toto statement")
        try:
            st = json.loads(body)
            subjects = st["subject"]
        except (ValueError, KeyError, TypeError):
            raise SignatureInvalid("sigstore bundle: the DSSE payload is not an in-toto statement") from None
        for s in subjects if isinstance(subjects, list) else []:
            if isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get(want.algorithm) == want.encoded:
                name = s.get("name")
                return BundleCheck(want, name if isinstance(name, str) and name else None, "dsse")
        names = [f"{a}:{h}" for s in subjects if isinstance(s, dict) for a, h in (s.get("digest") or {}).items()]
        raise SignatureInvalid(f"sigstore bundle signs {', '.join(names) or 'nothing'}, not {want}")
    if "messageSignature" in doc:
        ms = doc["messageSignature"]
        md = ms.get("messageDigest") or {}
        got = _b64(md.get("digest"), "messageSignature.messageDigest.digest")
        if md.get("algorithm") != "SHA2_256":
            raise SignatureInvalid(f"sigstore bundle: message digest algorithm {md.get('algorithm')!r} is not SHA2_256")
        if got.hex() != want.encoded:
            raise SignatureInvalid(f"sigstore bundle signs sha256:{got.hex()}, not {want}")
        if not keys.verify_bytes(public_key, _b64(ms.get("signature"), "messageSignature.signature"), got,
                                 prehashed=True):
            raise SignatureInvalid("sigstore bundle: the message signature does not verify with the key")
        return BundleCheck(want, None, "message")
    raise SignatureInvalid("sigstore bundle holds neither a DSSE envelope nor a message signature")


def referrer_manifest(bundle: Descriptor, subject: Descriptor) -> ImageManifest:
    """The referrer manifest holding ``bundle`` for ``subject``, laid out as @sigstore/oci does."""
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), len(mt.EMPTY_JSON))
    return build_manifest(empty, [bundle], media_type=mt.OCI_MANIFEST, subject=subject,
                          artifact_type=BUNDLE_MEDIA_TYPE,
                          annotations={"org.opencontainers.image.created": created,
                                       "dev.sigstore.bundle.content": "dsse-envelope",
                                       "dev.sigstore.bundle.predicateType": PREDICATE_TYPE})


async def attach_bundle(store: Store, bundle_raw: bytes, subject: Descriptor,
                        opts: Options = DEFAULT_OPTIONS) -> Digest:
    """Push ``bundle_raw`` as a referrer of ``subject`` and record it (API, tag schema or layout)."""
    from ..ops.referrers import record_referrer, referrer_descriptor
    from .sigstore import put_small_blob

    await put_small_blob(store, mt.OCI_EMPTY, mt.EMPTY_JSON, opts)
    layer = await put_small_blob(store, BUNDLE_MEDIA_TYPE, bundle_raw, opts)
    m = referrer_manifest(layer, subject)
    digest = await store.put_manifest(m.raw, m.media_type, None, opts, root=True)
    await record_referrer(store, referrer_descriptor(m), subject.digest, opts)
    return digest


async def read_bundles(store: Store, digest: str, opts: Options = DEFAULT_OPTIONS) -> list[tuple[Digest, bytes]]:
    """Every sigstore bundle referring to ``digest``: (referrer manifest digest, bundle bytes)."""
    from ..model import parse_manifest
    from ..ops.referrers import find_referrers

    out: list[tuple[Digest, bytes]] = []
    found = await find_referrers(store, digest, None, opts)
    for ref in found.referrers:
        if ref.artifact_type not in BUNDLE_MEDIA_TYPES:
            continue
        rm = await store.get_manifest(str(ref.digest), opts)
        m = parse_manifest(rm.raw, rm.media_type, what=f"referrer {ref.digest}")
        if not isinstance(m, ImageManifest):
            raise ManifestInvalid(f"referrer {ref.digest} of {digest} is not an image manifest")
        for layer in m.layers:
            if layer.media_type in BUNDLE_MEDIA_TYPES and layer.size <= MAX_BUNDLE:
                out.append((ref.digest, await read_blob(store, layer, opts, limit=MAX_BUNDLE)))
    return out


__all__ = ["BUNDLE_MEDIA_TYPE", "BundleCheck", "INTOTO_PAYLOAD_TYPE", "PREDICATE_TYPE", "attach_bundle",
           "build_bundle", "pae", "parse_bundle", "read_bundles", "referrer_manifest", "statement", "verify_bundle"]
