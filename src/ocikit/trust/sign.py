"""Signing an image: cosign's tag schema, a sigstore-bundle referrer, GPG into a lookaside store.

The identity a signature names is ``--sign-identity`` when given, else the image's docker
reference (``host/repo:tag``, or ``host/repo`` for an image named by digest alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..content import DEFAULT_OPTIONS, Options, Store
from ..digest import Digest
from ..errors import UsageError
from ..model import Descriptor, ImageIndex
from ..reference import parse_reference
from ..transportref import TransportReference
from .lookaside import RegistriesD, add_signature
from .payload import ATOMIC_TYPE, COSIGN_TYPE, build_payload


@dataclass
class SignOptions:
    """What to sign with. At least one of ``private_key`` (with ``tag_schema``/``bundle``) and ``gpg_fingerprint``."""

    private_key: Any = None
    tag_schema: bool = True
    bundle: bool = False
    gpg_fingerprint: str | None = None
    gnupghome: str | None = None
    gpg_passphrase_file: str | None = None
    identity: str | None = None
    recursive: bool = False
    regd: RegistriesD | None = None


@dataclass
class Signed:
    """One signature written."""

    kind: str
    digest: Digest
    location: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "digest": str(self.digest), "location": self.location}


@dataclass
class SignResult:
    image: str
    digest: Digest
    signed: list[Signed] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"image": self.image, "digest": str(self.digest), "signatures": [s.to_dict() for s in self.signed]}


def identity_for(tref: TransportReference, explicit: str | None) -> str:
    """The docker reference a signature names."""
    if explicit:
        return str(parse_reference(explicit))
    if tref.transport != "docker" or tref.image is None:
        raise UsageError(f"{tref}: not a docker:// image; give --sign-identity to name the identity to sign")
    ref = tref.image
    return ref.name + (f":{ref.tag}" if ref.tag and not ref.digest else "")


async def sign_manifest(store: Store, desc: Descriptor, tref: TransportReference, options: SignOptions,
                        opts: Options = DEFAULT_OPTIONS) -> list[Signed]:
    """Write the signatures ``options`` asks for of one manifest."""
    from . import keys

    identity = identity_for(tref, options.identity)
    out: list[Signed] = []
    d = desc.digest
    if options.private_key is not None and options.tag_schema:
        from .sigstore import tag_for, write_tag_signature

        payload = build_payload(d, identity, kind=COSIGN_TYPE, optional=None)
        await write_tag_signature(store, d, payload, keys.sign_bytes(options.private_key, payload), opts)
        out.append(Signed("cosign", d, f"{store.location}:{tag_for(d)}"))
    if options.private_key is not None and options.bundle:
        from .bundle import attach_bundle, build_bundle

        repo = parse_reference(identity).name
        ref_digest = await attach_bundle(store, build_bundle(options.private_key, repo, d), desc, opts)
        out.append(Signed("bundle", d, f"{store.location} referrer {ref_digest}"))
    if options.gpg_fingerprint:
        from .collect import lookaside_base
        from .simplesign import sign_payload

        if tref.transport != "docker" or tref.image is None:
            raise UsageError(f"{tref}: GPG signatures live in a lookaside store, which only docker:// images have")
        payload = build_payload(d, identity, kind=ATOMIC_TYPE,
                                optional={"creator": f"ocikit {__version__}", "timestamp": int(time.time())})
        blob = sign_payload(payload, options.gpg_fingerprint, gnupghome=options.gnupghome,
                            passphrase_file=options.gpg_passphrase_file)
        base = lookaside_base(options.regd or RegistriesD.load(), tref.image, write=True)
        out.append(Signed("gpg", d, add_signature(base, tref.image, d, blob)))
    return out


async def sign_in_store(store: Store, tref: TransportReference, root_desc: Descriptor, root_manifest: Any,
                        options: SignOptions, opts: Options = DEFAULT_OPTIONS) -> list[Signed]:
    """Sign a root manifest and, with ``recursive``, each manifest an index lists."""
    out = await sign_manifest(store, root_desc, tref, options, opts)
    if options.recursive and isinstance(root_manifest, ImageIndex):
        for child in root_manifest.manifests:
            out += await sign_manifest(store, Descriptor(child.media_type, child.digest, child.size), tref, options,
                                       opts)
    return out


async def sign_image(reference: str, options: SignOptions, *, open_options: Any = None) -> SignResult:
    """``ocikit sign REFERENCE``."""
    from ..ops.copy import resolve_root
    from ..ops.stores import holding
    from ..transportref import parse_transport_reference
    from ..transports import open_store

    if options.private_key is None and not options.gpg_fingerprint:
        raise UsageError("nothing to sign with: give --key or --sign-by")
    tref = parse_transport_reference(reference, default_transport="docker")
    if tref.transport not in ("docker", "oci"):
        raise UsageError(f"{reference}: sign images in a registry (docker://) or an OCI layout (oci:), not in an archive")
    # a layout must exist already (opened to write, it would be created); a registry needs push access
    async with holding(open_store(tref, write=tref.transport == "docker", options=open_options)) as store:
        root = await resolve_root(store, tref.selector, DEFAULT_OPTIONS)
        signed = await sign_in_store(store, tref, root.desc, root.manifest, options)
    return SignResult(str(tref), root.desc.digest, signed)


__all__ = ["SignOptions", "SignResult", "Signed", "identity_for", "sign_image", "sign_in_store", "sign_manifest"]
