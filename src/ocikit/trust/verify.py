"""Checking signatures: the signature itself, the digest its payload names, the identity.

:func:`check` judges one :class:`~ocikit.trust.collect.FoundSignature` against trusted keys
(cosign public keys, a GPG keyring) and an identity rule; :func:`verify_image` finds and
checks every signature of an image (and, with ``recursive``, of each platform manifest of an
index) and says which passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..content import DEFAULT_OPTIONS, Options, Store
from ..digest import Digest
from ..errors import OcikitError, SignatureInvalid
from ..reference import Reference, parse_reference
from ..transportref import TransportReference
from . import keys as keymod
from .collect import KINDS, FoundSignature, collect, docker_ref
from .identity import DEFAULT_RULE, IdentityRule, matches
from .lookaside import RegistriesD
from .payload import ATOMIC_TYPE, COSIGN_TYPE, parse_payload
from .simplesign import Keyring


@dataclass
class TrustedKeys:
    """What may vouch for an image: cosign/sigstore public keys and a GPG keyring."""

    public_keys: list[tuple[str, Any]] = field(default_factory=list)
    """(name, ECDSA public key)."""
    keyring: Keyring | None = None

    @classmethod
    def from_files(cls, key_files: Sequence[str] = (), gpg_keyrings: Sequence[str] = ()) -> "TrustedKeys":
        pubs = []
        for path in key_files:
            with open(path, "rb") as f:
                pubs.append((path, keymod.load_public_key(f.read(), what=path)))
        return cls(pubs, Keyring(gpg_keyrings) if gpg_keyrings else None)

    def close(self) -> None:
        if self.keyring is not None:
            self.keyring.close()


@dataclass
class Check:
    """The verdict on one signature."""

    found: FoundSignature
    ok: bool
    reason: str
    signer: str | None = None
    identity: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.found.kind, "location": self.found.location, "subject": str(self.found.subject),
                "ok": self.ok, "reason": self.reason, "signer": self.signer, "identity": self.identity}


def _verify_material(found: FoundSignature, trusted: TrustedKeys) -> tuple[str, str | None, Digest | None]:
    """(signer, claimed identity, claimed digest) once the signature itself verifies; raises otherwise."""
    if found.kind == "gpg":
        if trusted.keyring is None:
            raise SignatureInvalid("a GPG signature, and no GPG keys are trusted")
        res = trusted.keyring.verify(found.data)
        p = parse_payload(res.payload, expect_type=ATOMIC_TYPE)
        return res.primary_fingerprint, p.docker_reference, p.manifest_digest
    if found.kind == "cosign":
        if not trusted.public_keys:
            raise SignatureInvalid("a cosign signature, and no sigstore public keys are trusted")
        name = next((n for n, k in trusted.public_keys if keymod.verify_bytes(k, found.signature, found.data)), None)
        if name is None:
            raise SignatureInvalid("the cosign signature does not verify with any trusted key")
        p = parse_payload(found.data, expect_type=COSIGN_TYPE)
        return name, p.docker_reference, p.manifest_digest
    if found.kind == "bundle":
        from .bundle import verify_bundle

        if not trusted.public_keys:
            raise SignatureInvalid("a sigstore bundle, and no sigstore public keys are trusted")
        errors: list[str] = []
        for name, k in trusted.public_keys:
            try:
                res = verify_bundle(found.data, k, found.subject)
                return name, res.identity, res.digest
            except SignatureInvalid as e:
                errors.append(str(e))
        raise SignatureInvalid(errors[0] if len(set(errors)) == 1 else "; ".join(errors))
    raise SignatureInvalid(f"unknown signature kind {found.kind!r}")


def check(found: FoundSignature, trusted: TrustedKeys, *, image: Reference | None,
          rule: IdentityRule | None = DEFAULT_RULE) -> Check:
    """Judge one signature: it verifies, it names ``found.subject``, and (with ``rule``) its identity fits."""
    try:
        signer, identity, digest = _verify_material(found, trusted)
    except OcikitError as e:
        return Check(found, False, str(e))
    if digest != found.subject:
        return Check(found, False, f"the signature is for {digest}, not {found.subject}", signer, identity)
    if rule is not None:
        if identity is None:
            if found.kind != "bundle" or rule.type not in ("matchRepository", "matchRepoDigestOrExact"):
                return Check(found, False, "the signature names no identity", signer, None)
        else:
            bad = _identity_check(rule, image, identity, found.kind)
            if bad is not None:
                return Check(found, False, bad, signer, identity)
    return Check(found, True, "ok", signer, identity)


def _identity_check(rule: IdentityRule, image: Reference | None, identity: str, kind: str) -> str | None:
    if kind == "bundle":
        # a bundle's statement names a repository, never a tag: rules are checked on the repository part
        if rule.type == "exactReference" and rule.docker_reference:
            rule = IdentityRule("exactRepository", docker_repository=parse_reference(rule.docker_reference).name)
        elif rule.type in ("matchRepoDigestOrExact", "matchExact"):
            rule = IdentityRule("matchRepository")
    return matches(rule, image, identity)


@dataclass
class ImageReport:
    """Every signature found for an image (and its platform manifests) and the verdicts."""

    image: str
    digest: Digest
    checks: list[Check]
    digests: list[Digest] = field(default_factory=list)
    """Every manifest checked: the root, then (recursive) each platform manifest."""

    def passed(self, digest: Digest | None = None) -> list[Check]:
        return [c for c in self.checks if c.ok and (digest is None or c.found.subject == digest)]

    @property
    def ok(self) -> bool:
        return all(self.passed(d) for d in self.digests)

    def to_dict(self) -> dict[str, object]:
        return {"image": self.image, "digest": str(self.digest), "ok": self.ok,
                "manifests": {str(d): bool(self.passed(d)) for d in self.digests},
                "signatures": [c.to_dict() for c in self.checks]}


async def verify_manifests(store: Store, digests: Sequence[Digest], trusted: TrustedKeys, *,
                           tref: TransportReference | None, regd: RegistriesD | None,
                           rule: IdentityRule | None = DEFAULT_RULE, kinds: tuple[str, ...] = KINDS,
                           opts: Options = DEFAULT_OPTIONS) -> list[Check]:
    """Find and check the signatures of each manifest in ``digests``."""
    image = docker_ref(tref)
    out: list[Check] = []
    for d in digests:
        for found in await collect(store, d, tref=tref, regd=regd, kinds=kinds, opts=opts):
            out.append(check(found, trusted, image=image, rule=rule))
    return out


async def verify_image(reference: str, trusted: TrustedKeys, *, regd: RegistriesD | None = None,
                       rule: IdentityRule | None = DEFAULT_RULE, recursive: bool = False,
                       open_options: Any = None) -> ImageReport:
    """``ocikit verify``: every signature of REFERENCE (and each platform manifest with ``recursive``)."""
    from ..model import ImageIndex
    from ..ops.copy import resolve_root
    from ..transportref import parse_transport_reference
    from ..transports import open_store

    tref = parse_transport_reference(reference, default_transport="docker")
    if tref.transport != "docker" and rule is DEFAULT_RULE:
        rule = None  # a layout or archive has no docker reference to match: only --identity checks one
    store = open_store(tref, options=open_options)
    try:
        root = await resolve_root(store, tref.selector, DEFAULT_OPTIONS)
        digests = [root.desc.digest]
        if recursive and isinstance(root.manifest, ImageIndex):
            digests += [m.digest for m in root.manifest.manifests]
        checks = await verify_manifests(store, digests, trusted, tref=tref, regd=regd, rule=rule)
    finally:
        await store.close()
    return ImageReport(str(tref), root.desc.digest, checks, digests)


__all__ = ["Check", "ImageReport", "TrustedKeys", "check", "verify_image", "verify_manifests"]
