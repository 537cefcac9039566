"""The one protocol every place implements: a :class:`Store` of manifests and blobs.

A registry repository, an OCI layout, an archive: each is a Store. ``ops`` walk the graph
between a source Store and a target Store and never care which kind they hold.
Optional abilities (linking a blob from another store, mounting across repositories,
deleting, listing referrers) are small separate protocols checked at run time.

Every method takes an :class:`Options` so the protocol can grow without breaking anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Mapping, Protocol, runtime_checkable

from .digest import Digest
from .model import Descriptor


@dataclass(frozen=True)
class Options:
    """Per-call options. ``progress`` receives :mod:`ocikit.progress` events."""

    progress: Callable[[Any], None] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


DEFAULT_OPTIONS = Options()


@dataclass(frozen=True)
class RawManifest:
    """Manifest bytes exactly as stored, with the media type they were served as."""

    raw: bytes
    media_type: str
    digest: Digest


@runtime_checkable
class Store(Protocol):
    """A place holding manifests (some tagged) and blobs: a repository, a layout, an archive."""

    @property
    def location(self) -> str:
        """A human-readable name, ``docker://host/repo`` or ``oci:/path``."""
        ...

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        """The descriptor of a tag or digest (``None``: the store's only/default image).

        Raises :class:`~ocikit.errors.ManifestUnknown` when there is no such manifest.
        """
        ...

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        """The exact bytes of a manifest, by tag or digest. Verified when fetched by digest."""
        ...

    def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        """Stream a blob's bytes. The consumer verifies; a store may resume internally."""
        ...

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool: ...

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes],
                       opts: Options = DEFAULT_OPTIONS) -> None:
        """Store a blob, verifying it against ``desc``; nothing becomes visible unless it checks out."""
        ...

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool: ...

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        """Store manifest bytes as they are; tag them if ``tag``; ``root`` marks a top-level image."""
        ...

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]: ...

    async def close(self) -> None:
        """Finish: an archive target writes its file here; a client closes its connections."""
        ...


@runtime_checkable
class BlobLinker(Protocol):
    """A store that can take a blob from another store without streaming it (hardlink, reflink, mount)."""

    async def link_blob_from(self, source: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        """True when the blob is now here; False to fall back to streaming."""
        ...


@runtime_checkable
class Deleter(Protocol):
    async def delete_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> None: ...


@runtime_checkable
class ReferrersLister(Protocol):
    async def referrers(self, digest: Digest, artifact_type: str | None = None,
                        opts: Options = DEFAULT_OPTIONS) -> list[Descriptor]: ...


async def read_blob(store: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS,
                    limit: int = 64 * 1024 * 1024) -> bytes:
    """Read a small blob (a config) whole, verified. Refuses blobs larger than ``limit``."""
    from .digest import Verifier
    from .errors import SizeInvalid

    if desc.size > limit:
        raise SizeInvalid(f"blob {desc.digest} is {desc.size} bytes, too large to read into memory")
    v = Verifier(desc.digest, desc.size)
    parts: list[bytes] = []
    async for chunk in store.blob_chunks(desc, opts):
        v.update(chunk)
        parts.append(chunk)
    v.verify()
    return b"".join(parts)
