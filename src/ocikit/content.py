"""The one protocol every place implements: a :class:`Store` of manifests and blobs.

A registry repository, an OCI layout, an archive: each is a Store. ``ops`` walk the graph
between a source Store and a target Store and never care which kind they hold.

What a store accepts and does is declared, never guessed (containers/image's
``ImageDestination`` is the model): every Store answers :attr:`Store.traits`, a
:class:`StoreTraits`, and an optional ability (linking a blob from another store, aborting,
deleting, listing referrers, probing whether a sparse index is accepted) is a small
:func:`~typing.runtime_checkable` protocol the store implements or not. Callers test a
protocol with ``isinstance``; nothing is looked up by ``getattr``.

The copy engine (:mod:`ocikit.ops.copy`) consults them in this order:

1. before anything moves (:func:`ocikit.ops.convert.check_target`):
   :attr:`StoreTraits.accepts_index`, then :attr:`StoreTraits.manifest_formats` (with
   ``--format``), then :attr:`StoreTraits.rewrites_manifests` (with ``--preserve-digests``);
2. when the plan keeps an index sparse: :attr:`StoreTraits.sparse_index`, and where it says
   :attr:`SparseIndex.PROBE`, :meth:`SparseIndexProbe.accepts_sparse_index`;
3. for each blob: :meth:`Store.has_blob`, then :meth:`BlobLinker.link_blob_from` (its
   :class:`LinkResult` says what it did), else :meth:`Store.put_blob` with the source read
   under ``Options(verified_downstream=True)``;
4. for each manifest, children first: :meth:`Store.has_manifest` (not for the root), then
   :meth:`Store.put_manifest`; a stored digest that differs is an error unless
   :attr:`StoreTraits.rewrites_manifests`, and the root's reported media type is then the
   first of :attr:`StoreTraits.manifest_formats`;
5. at the end (:func:`ocikit.ops.stores.finish`): :meth:`Store.close` after success,
   :meth:`Aborter.abort` (where the store has it) after a failure.

Every method takes an :class:`Options` so the protocol can grow without breaking anyone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Protocol, runtime_checkable

from .core.digest import Digest
from .model import Descriptor


@dataclass(frozen=True)
class Options:
    """Per-call options, passed to every Store method."""

    progress: Callable[[Any], None] | None = None
    """Receives :mod:`ocikit.progress` events."""
    verified_downstream: bool = False
    """For :meth:`Store.blob_chunks`: the consumer verifies digest and size itself (a target's
    :meth:`Store.put_blob` does, by contract), so the source need not hash the bytes too."""


DEFAULT_OPTIONS = Options()


@dataclass(frozen=True)
class RawManifest:
    """Manifest bytes exactly as stored, with the media type they were served as."""

    raw: bytes
    media_type: str
    digest: Digest


class SparseIndex(enum.Enum):
    """Whether a store keeps an index some of whose children it does not hold."""

    ACCEPTED = "accepted"
    """Stored as it is (layouts and archives hold whatever they are given)."""
    REFUSED = "refused"
    """Never: every manifest an index lists must be there first."""
    PROBE = "probe"
    """It depends (a registry's own policy): ask :meth:`SparseIndexProbe.accepts_sparse_index`."""


@dataclass(frozen=True)
class StoreTraits:
    """What a store accepts and does, declared once per Store class (``traits = StoreTraits(...)``).

    The defaults describe a store that keeps what it is given byte for byte: an OCI layout.
    """

    accepts_index: bool = True
    """Stores an image index or manifest list (False: single images only, a docker-archive).
    Checked before anything moves."""
    manifest_formats: tuple[str, ...] | None = None
    """The manifest media types it stores, preferred first; ``None``: any. A ``--format`` the
    store cannot hold is refused before anything moves."""
    rewrites_manifests: bool = False
    """It regenerates manifests, so a stored digest differs from the source's (docker-archive);
    ``--preserve-digests`` is refused. Without it a changed digest is a
    :class:`~ocikit.core.errors.DigestMismatch`."""
    sparse_index: SparseIndex = SparseIndex.ACCEPTED
    """Whether an index whose children are not all copied (``--preserve-index-digest``) can be
    stored; checked before any blob moves."""


DEFAULT_TRAITS = StoreTraits()


class LinkResult(enum.Enum):
    """What :meth:`BlobLinker.link_blob_from` did with a blob: returned, never left on the store,
    because a store serves many transfers at once."""

    NOT_LINKED = "not-linked"
    """Nothing: the caller streams the blob instead."""
    HARDLINKED = "hardlinked"
    """A hardlink to the source's file (the same inode)."""
    REFLINKED = "reflinked"
    """A copy-on-write clone of the source's file."""
    COPIED = "copied"
    """Copied on this machine (another filesystem), verified while copied; no network."""
    MOUNTED = "mounted"
    """A registry's cross-repository mount."""

    def __bool__(self) -> bool:
        """True when the blob is now in the target store."""
        return self is not LinkResult.NOT_LINKED

    @property
    def counted_as(self) -> str:
        """How a copy counts and reports it: ``mounted`` or ``linked`` (any local link or copy)."""
        return "mounted" if self is LinkResult.MOUNTED else "linked"


@runtime_checkable
class Store(Protocol):
    """A place holding manifests (some tagged) and blobs: a repository, a layout, an archive."""

    @property
    def location(self) -> str:
        """A human-readable name, ``docker://host/repo`` or ``oci:/path``."""
        ...

    @property
    def traits(self) -> StoreTraits:
        """What this store accepts and does (see :class:`StoreTraits`); fixed for its lifetime."""
        ...


    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        """The descriptor of a tag or digest (``None``: the store's only/default image).

        Raises :class:`~ocikit.core.errors.ManifestUnknown` when there is no such manifest.
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

    async def link_blob_from(self, source: Store, desc: Descriptor,
                             opts: Options = DEFAULT_OPTIONS) -> LinkResult:
        """Put ``desc`` here from ``source`` if this store can, and say how.

        :attr:`LinkResult.NOT_LINKED` (falsy) when it cannot (another kind of source, another
        registry): the caller streams the blob. Raises when the source's blob is missing or
        does not match ``desc``.
        """
        ...


@runtime_checkable
class Aborter(Protocol):
    """A store that stages writes and can drop them: an archive keeps nothing of a failed copy."""

    async def abort(self) -> None:
        """Discard what was staged and release what :meth:`Store.close` would; nothing
        half-written is left looking complete. Called instead of ``close`` after a failure."""
        ...


@runtime_checkable
class SparseIndexProbe(Protocol):
    """A store whose :attr:`StoreTraits.sparse_index` is :attr:`SparseIndex.PROBE`."""

    async def accepts_sparse_index(self, raw: bytes, media_type: str, copied: list[Digest],
                                   opts: Options = DEFAULT_OPTIONS) -> bool:
        """Whether the index ``raw`` can be stored once the children ``copied`` are here."""
        ...


@runtime_checkable
class Deleter(Protocol):
    """A store that deletes manifests (by digest, or untags a tag)."""

    async def delete_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> None: ...


@runtime_checkable
class ReferrersLister(Protocol):
    """A store that lists the referrers of a manifest by whatever means it has (a registry: the
    API, else the ``<alg>-<hex>`` tag schema)."""

    async def referrers(self, digest: Digest, artifact_type: str | None = None,
                        opts: Options = DEFAULT_OPTIONS) -> list[Descriptor]: ...


@runtime_checkable
class ReferrersAPI(Protocol):
    """A store that can ask a registry's referrers API alone, without falling back."""

    async def referrers_api(self, digest: Digest, artifact_type: str | None = None,
                            opts: Options = DEFAULT_OPTIONS) -> list[Descriptor] | None:
        """The API's answer; ``None`` when this registry has no referrers API (a 404)."""
        ...


async def read_blob(store: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS,
                    limit: int = 64 * 1024 * 1024) -> bytes:
    """Read a small blob (a config) whole, verified. Refuses blobs larger than ``limit``."""
    from .core.digest import Verifier
    from .core.errors import SizeInvalid

    if desc.size > limit:
        raise SizeInvalid(f"blob {desc.digest} is {desc.size} bytes, too large to read into memory")
    v = Verifier(desc.digest, desc.size)
    parts: list[bytes] = []
    async for chunk in store.blob_chunks(desc, opts):
        v.update(chunk)
        parts.append(chunk)
    v.verify()
    return b"".join(parts)
