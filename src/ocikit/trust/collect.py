"""Finding every signature an image has, wherever it is kept.

Three places, as the issue names them:

- ``gpg``: simple-signing signatures in the lookaside store that registries.d names for a
  ``docker://`` image (``.../repo@sha256=<hex>/signature-N``);
- ``cosign``: cosign's tag schema, the ``sha256-<hex>.sig`` manifest next to the image;
- ``bundle``: sigstore bundles attached as OCI 1.1 referrers (the referrers API, its tag
  fallback, or an OCI layout's ``index.json``).

Nothing is verified here; :mod:`ocikit.trust.verify` checks what is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..content import DEFAULT_OPTIONS, Options, Store
from ..digest import Digest
from ..reference import Reference
from ..transportref import TransportReference
from .lookaside import RegistriesD, read_signatures

KINDS = ("gpg", "cosign", "bundle")


@dataclass(frozen=True)
class FoundSignature:
    """A signature as found, unverified."""

    kind: str
    """``gpg``, ``cosign`` or ``bundle``."""
    location: str
    """Where it was found: a lookaside URL, ``<store>:sha256-<hex>.sig``, a referrer's digest."""
    subject: Digest
    """The manifest digest it was found for."""
    data: bytes
    """gpg: the signed message; cosign: the payload; bundle: the bundle JSON."""
    signature: bytes = b""
    """cosign: the ECDSA signature of the payload."""


def builtin_lookaside() -> str:
    """containers/image's default lookaside store when registries.d names none."""
    if os.geteuid() == 0:
        return "file:///var/lib/containers/sigstore"
    return "file://" + os.path.join(os.path.expanduser("~"), ".local", "share", "containers", "sigstore")


def lookaside_base(regd: RegistriesD, ref: Reference, *, write: bool = False) -> str:
    """The lookaside base URL for ``ref``: registries.d's, else containers/image's built-in default."""
    return regd.base_url(ref, write=write) or builtin_lookaside()


def docker_ref(tref: TransportReference | None) -> Reference | None:
    return tref.image if tref is not None and tref.transport == "docker" else None


async def collect(store: Store, digest: str, *, tref: TransportReference | None = None,
                  regd: RegistriesD | None = None, kinds: tuple[str, ...] = KINDS,
                  opts: Options = DEFAULT_OPTIONS) -> list[FoundSignature]:
    """Every signature of manifest ``digest`` in ``store`` (and the lookaside of ``tref``)."""
    from .bundle import read_bundles
    from .sigstore import read_tag_signatures, tag_for

    d = Digest(digest)
    out: list[FoundSignature] = []
    ref = docker_ref(tref)
    if "gpg" in kinds and ref is not None:
        base = lookaside_base(regd or RegistriesD.load(), ref)
        for url, data in await read_signatures(base, ref, d):
            out.append(FoundSignature("gpg", url, d, data))
    if "cosign" in kinds:
        for ts in await read_tag_signatures(store, d, opts):
            out.append(FoundSignature("cosign", f"{store.location}:{tag_for(d)} layer {ts.layer.digest}", d,
                                      ts.payload, ts.signature))
    if "bundle" in kinds:
        for ref_digest, raw in await read_bundles(store, d, opts):
            out.append(FoundSignature("bundle", f"{store.location} referrer {ref_digest}", d, raw))
    return out


__all__ = ["FoundSignature", "KINDS", "builtin_lookaside", "collect", "docker_ref", "lookaside_base"]
