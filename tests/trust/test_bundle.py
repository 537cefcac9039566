"""Sigstore bundles, pure: what ocikit builds, and each way a bundle can be wrong."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from ocikit.errors import SignatureInvalid
from ocikit.trust import keys
from ocikit.trust.bundle import BUNDLE_MEDIA_TYPE, build_bundle, pae, verify_bundle

D = "sha256:" + hashlib.sha256(b"manifest").hexdigest()


@pytest.fixture(scope="module")
def pair():
    from cryptography.hazmat.primitives.asymmetric import ec

    k = ec.generate_private_key(ec.SECP256R1())
    return k, k.public_key()


def test_dsse_round_trip(pair) -> None:
    priv, pub = pair
    raw = build_bundle(priv, "reg.io/app", D)
    doc = json.loads(raw)
    assert doc["mediaType"] == BUNDLE_MEDIA_TYPE
    assert doc["verificationMaterial"] == {"publicKey": {"hint": keys.public_key_hint(pub)}, "tlogEntries": [],
                                           "timestampVerificationData": {"rfc3161Timestamps": []}}
    res = verify_bundle(raw, pub, D)
    assert (res.digest, res.identity, res.content) == (D, "reg.io/app", "dsse")
    assert pae("t", b"ab") == b"DSSEv1 1 t 2 ab"


def test_dsse_failures(pair) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    priv, pub = pair
    raw = build_bundle(priv, "reg.io/app", D)
    with pytest.raises(SignatureInvalid, match=f"signs {D}, not sha256:0"):
        verify_bundle(raw, pub, "sha256:" + "0" * 64)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_bundle(raw, ec.generate_private_key(ec.SECP256R1()).public_key(), D)
    doc = json.loads(raw)
    doc["dsseEnvelope"]["payloadType"] = "text/plain"  # the signature covers the type too
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_bundle(json.dumps(doc).encode(), pub, D)
    with pytest.raises(SignatureInvalid, match="not JSON"):
        verify_bundle(b"<html>", pub, D)
    with pytest.raises(SignatureInvalid, match="not a v0.3 sigstore bundle"):
        verify_bundle(json.dumps({"mediaType": "application/json"}).encode(), pub, D)
    with pytest.raises(SignatureInvalid, match="neither"):
        verify_bundle(json.dumps({"mediaType": BUNDLE_MEDIA_TYPE}).encode(), pub, D)


def test_message_signature(pair) -> None:
    priv, pub = pair
    digest = hashlib.sha256(b"manifest").digest()
    doc = {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": {"publicKey": {"hint": "h"}, "tlogEntries": []},
           "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(digest).decode()},
                                "signature": base64.b64encode(keys.sign_bytes(priv, b"manifest")).decode()}}
    res = verify_bundle(json.dumps(doc).encode(), pub, D)
    assert (res.identity, res.content) == (None, "message")
    with pytest.raises(SignatureInvalid, match="not sha256:" + "0" * 64):
        verify_bundle(json.dumps(doc).encode(), pub, "sha256:" + "0" * 64)
    doc["messageSignature"]["signature"] = base64.b64encode(keys.sign_bytes(priv, b"other")).decode()
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_bundle(json.dumps(doc).encode(), pub, D)
