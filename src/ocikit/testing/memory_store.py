"""A :class:`~ocikit.content.Store` held in memory, for fast tests of the engines built on Stores.

As httpx's ``MockTransport`` stands in for the network, :class:`MemoryStore` stands in for a
place: it keeps what the protocol says a store keeps (verified blobs, exact manifest bytes,
tags, root entries) and records every write in :attr:`MemoryStore.writes`, in order, so a test
can check what the copy engine did and in which order. Its :class:`~ocikit.content.StoreTraits`
are whatever the test passes, so any kind of target can be played.

The optional abilities are subclasses, because an ability is a method a store has or not:
:class:`LinkingMemoryStore` (a :class:`~ocikit.content.BlobLinker` that answers a chosen
:class:`~ocikit.content.LinkResult`), :class:`ProbingMemoryStore` (a
:class:`~ocikit.content.SparseIndexProbe`) and :class:`StagingMemoryStore` (an
:class:`~ocikit.content.Aborter` that publishes on ``close``). Blobs are held whole in memory:
this is for tests of a few small images, never for real content.
"""

from __future__ import annotations

from typing import AsyncIterator, Callable, Mapping

from ..core import mediatypes as mt
from ..content import DEFAULT_OPTIONS, DEFAULT_TRAITS, LinkResult, Options, RawManifest, SparseIndex, Store, StoreTraits
from ..core.digest import CHUNK, Digest, Verifier, is_digest
from ..core.errors import BlobUnknown, ManifestBlobUnknown, ManifestUnknown
from ..model import Descriptor, ImageIndex, parse_manifest

Rewrite = Callable[[bytes, str], tuple[bytes, str]]
"""Turns manifest bytes and media type into what a regenerating store keeps (a docker-archive)."""


class MemoryStore:
    """Manifests and blobs in dictionaries; every write recorded in :attr:`writes`.

    ``traits``: what the store declares (default: keeps anything, as a layout does). With
    ``sparse_index`` ``REFUSED`` (or a probe answering no), an index is refused while a child
    it lists is absent.
    ``rewrite``: regenerate manifests on the way in (declare ``rewrites_manifests`` with it, or
    the copy engine will rightly call the changed digest a mismatch).
    """

    def __init__(self, name: str = "memory", *, traits: StoreTraits = DEFAULT_TRAITS,
                 rewrite: Rewrite | None = None, chunk_size: int = CHUNK) -> None:
        self.name = name
        self._traits = traits
        self.rewrite = rewrite
        self.chunk_size = chunk_size
        self.blobs: dict[Digest, bytes] = {}
        self.manifests: dict[Digest, RawManifest] = {}
        self.tags: dict[str, Digest] = {}
        self.roots: list[Digest] = []
        """Untagged top-level entries (``put_manifest(root=True)``), in the order written."""
        self.writes: list[tuple[str, Digest]] = []
        """``("blob"|"manifest"|"link", digest)`` for every write, in order."""
        self.closed = False

    # ---- Store ----------------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return f"memory:{self.name}"

    @property
    def traits(self) -> StoreTraits:
        return self._traits

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        if reference is None:
            if len(self.tags) + len(self.roots) != 1:
                raise ManifestUnknown(f"{self.location}: name an image (it holds {len(self.tags)} tags)")
            reference = next(iter(self.tags), None) or str(self.roots[0])
        rm = await self.get_manifest(reference, opts)
        return Descriptor(rm.media_type, rm.digest, len(rm.raw))

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        digest = Digest(reference) if is_digest(reference) else self.tags.get(reference)
        rm = self.manifests.get(digest) if digest is not None else None
        if rm is None:
            raise ManifestUnknown(f"{self.location}: no manifest {reference}")
        return rm

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        data = self.blobs.get(desc.digest)
        if data is None:
            raise BlobUnknown(f"{self.location}: no blob {desc.digest}")
        for i in range(0, len(data), self.chunk_size):
            yield data[i:i + self.chunk_size]

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return desc.digest in self.blobs

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes], opts: Options = DEFAULT_OPTIONS) -> None:
        v = Verifier(desc.digest, desc.size, what=f"{self.location}: blob")
        parts = []
        async for chunk in chunks:
            v.update(chunk)
            parts.append(bytes(chunk))
        v.verify()  # nothing is kept unless it checks out
        self.blobs[desc.digest] = b"".join(parts)
        self.writes.append(("blob", desc.digest))

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return desc.digest in self.manifests

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        if self.rewrite is not None:
            raw, media_type = self.rewrite(raw, media_type)
        digest = Digest.of(raw)
        if mt.is_index(media_type) and self.checks_children():
            idx = parse_manifest(raw, media_type, what=f"{self.location}: index")
            assert isinstance(idx, ImageIndex)
            for child in idx.manifests:
                if child.digest not in self.manifests:
                    raise ManifestBlobUnknown(f"{self.location}: index {digest} lists {child.digest}, not here")
        self.manifests[digest] = RawManifest(raw, media_type, digest)
        self.writes.append(("manifest", digest))
        if tag:
            self.tags[tag] = digest
        elif root and digest not in self.roots:
            self.roots.append(digest)
        return digest

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        return sorted(self.tags)

    async def close(self) -> None:
        self.closed = True

    # ---- for tests ------------------------------------------------------------------------------

    def checks_children(self) -> bool:
        """Whether an index is refused while a child it lists is absent (``sparse_index`` ``REFUSED``)."""
        return self._traits.sparse_index is SparseIndex.REFUSED

    def written(self, kind: str) -> list[Digest]:
        """The digests of ``kind`` (``blob``, ``manifest``, ``link``) writes, in order."""
        return [d for k, d in self.writes if k == kind]


class LinkingMemoryStore(MemoryStore):
    """A :class:`MemoryStore` that takes blobs from another memory store without streaming them.

    ``link_as``: what a link reports, one :class:`~ocikit.content.LinkResult` for every blob or
    a mapping by digest (a digest missing from it is not linked). A source that is not a
    :class:`MemoryStore` is never linked.
    """

    def __init__(self, name: str = "memory", *, link_as: LinkResult | Mapping[Digest, LinkResult],
                 traits: StoreTraits = DEFAULT_TRAITS, rewrite: Rewrite | None = None) -> None:
        super().__init__(name, traits=traits, rewrite=rewrite)
        self.link_as = link_as

    def link_result(self, desc: Descriptor) -> LinkResult:
        if isinstance(self.link_as, LinkResult):
            return self.link_as
        return self.link_as.get(desc.digest, LinkResult.NOT_LINKED)

    async def link_blob_from(self, source: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> LinkResult:
        how = self.link_result(desc)
        if not isinstance(source, MemoryStore) or how is LinkResult.NOT_LINKED:
            return LinkResult.NOT_LINKED
        data = source.blobs.get(desc.digest)
        if data is None:
            raise BlobUnknown(f"{source.location}: no blob {desc.digest}")
        Verifier(desc.digest, desc.size, what=f"{source.location}: blob").update(data)
        self.blobs[desc.digest] = data
        self.writes.append(("link", desc.digest))
        return how


class ProbingMemoryStore(MemoryStore):
    """A :class:`MemoryStore` whose ``sparse_index`` trait is ``PROBE``, answering ``answer``."""

    def __init__(self, name: str = "memory", *, answer: bool) -> None:
        super().__init__(name, traits=StoreTraits(sparse_index=SparseIndex.PROBE))
        self.answer = answer
        self.probes: list[list[Digest]] = []
        """The ``copied`` argument of every probe."""

    async def accepts_sparse_index(self, raw: bytes, media_type: str, copied: list[Digest],
                                   opts: Options = DEFAULT_OPTIONS) -> bool:
        self.probes.append(list(copied))
        return self.answer

    def checks_children(self) -> bool:
        return not self.answer


class StagingMemoryStore(MemoryStore):
    """A :class:`MemoryStore` that publishes on ``close`` and drops everything on ``abort``, as an
    archive does: until then :attr:`published` is False and a failed copy leaves nothing."""

    def __init__(self, name: str = "memory", *, traits: StoreTraits = DEFAULT_TRAITS) -> None:
        super().__init__(name, traits=traits)
        self.published = False
        self.aborted = False

    async def close(self) -> None:
        await super().close()
        self.published = not self.aborted

    async def abort(self) -> None:
        self.aborted = True
        self.blobs.clear()
        self.manifests.clear()
        self.tags.clear()
        self.roots.clear()
        self.closed = True


__all__ = ["LinkingMemoryStore", "MemoryStore", "ProbingMemoryStore", "Rewrite", "StagingMemoryStore"]
