"""The simple-signing payload both signature families sign (containers-signature(5)).

::

    {"critical": {"identity": {"docker-reference": "host/repo:tag"},
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "type": "atomic container signature"},
     "optional": {...}}

GPG simple signing uses the type ``atomic container signature``; cosign uses ``cosign
container image signature`` (and writes ``"optional": null`` when it has no claims). Parsing
is strict as containers/image is: ``critical`` must hold exactly those three members.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from ..digest import Digest
from ..errors import DigestInvalid, SignatureInvalid

ATOMIC_TYPE = "atomic container signature"
COSIGN_TYPE = "cosign container image signature"
COSIGN_PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"


@dataclass(frozen=True)
class Payload:
    """A parsed payload: what it claims to sign."""

    type: str
    docker_reference: str
    manifest_digest: Digest
    optional: Mapping[str, Any] | None


def build_payload(manifest_digest: str, docker_reference: str, *, kind: str = ATOMIC_TYPE,
                  optional: Mapping[str, Any] | None = None) -> bytes:
    """Encode a payload deterministically (keys in the order cosign and containers/image write)."""
    doc = {"critical": {"identity": {"docker-reference": docker_reference},
                        "image": {"docker-manifest-digest": str(Digest(manifest_digest))},
                        "type": kind},
           "optional": dict(optional) if optional is not None else None}
    return json.dumps(doc, separators=(",", ":")).encode()


def _exact(obj: Any, keys: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise SignatureInvalid(f"signature payload: {where} is not an object")
    if set(obj) != keys:
        raise SignatureInvalid(f"signature payload: {where} has members {sorted(obj)}, expected {sorted(keys)}")
    return obj


def parse_payload(raw: bytes, *, expect_type: str | None = None) -> Payload:
    """Parse and check a payload; :class:`SignatureInvalid` naming what is wrong."""
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise SignatureInvalid(f"signature payload is not JSON: {e}") from None
    if not isinstance(doc, dict) or "critical" not in doc:
        raise SignatureInvalid("signature payload has no 'critical' member")
    critical = _exact(doc["critical"], {"identity", "image", "type"}, "critical")
    kind = critical["type"]
    if expect_type is not None and kind != expect_type:
        raise SignatureInvalid(f"signature payload type is {kind!r}, expected {expect_type!r}")
    if kind not in (ATOMIC_TYPE, COSIGN_TYPE):
        raise SignatureInvalid(f"signature payload type {kind!r} is unknown")
    image = _exact(critical["image"], {"docker-manifest-digest"}, "critical.image")
    identity = _exact(critical["identity"], {"docker-reference"}, "critical.identity")
    ref = identity["docker-reference"]
    if not isinstance(ref, str):
        raise SignatureInvalid("signature payload: critical.identity.docker-reference is not a string")
    try:
        digest = Digest(image["docker-manifest-digest"])
    except (DigestInvalid, TypeError) as e:
        raise SignatureInvalid(f"signature payload: critical.image.docker-manifest-digest: {e}") from None
    optional = doc.get("optional")
    return Payload(kind, ref, digest, optional if isinstance(optional, dict) else None)


__all__ = ["ATOMIC_TYPE", "COSIGN_PAYLOAD_MEDIA_TYPE", "COSIGN_TYPE", "Payload", "build_payload", "parse_payload"]
