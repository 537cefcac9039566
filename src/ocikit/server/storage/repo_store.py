"""A repository of a :class:`RegistryStorage` as an ocikit :class:`~ocikit.content.Store`.

Lets ops and ``ocikit.testing`` write straight into the server's storage (``--seed-sample``)
with the same checks an HTTP push gets.
"""

from __future__ import annotations

from typing import AsyncIterator

from ...content import DEFAULT_OPTIONS, Options, RawManifest, SparseIndex, StoreTraits
from ...core.digest import Digest
from ...core.errors import ManifestUnknown
from ...model import Descriptor
from .registry import RegistryStorage


class RepositoryStore:
    """One repository of the server's storage, as a Store."""

    def __init__(self, storage: RegistryStorage, name: str) -> None:
        self.storage = storage
        self.name = name
        self.traits = StoreTraits(
            sparse_index=SparseIndex.ACCEPTED if storage.accept_sparse_index else SparseIndex.REFUSED)
        """An index must list only manifests already here, unless the server accepts sparse indexes."""

    @property
    def location(self) -> str:
        return f"registry-storage:{self.name}"

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        m = await self.get_manifest(reference or "latest", opts)
        return Descriptor(m.media_type, m.digest, len(m.raw))

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        ref: str | Digest = Digest(reference) if ":" in reference else reference
        stored = await self.storage.get_manifest(self.name, ref)
        return RawManifest(stored.raw, stored.media_type, stored.digest)

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        await self.storage.require_blob(self.name, desc.digest)
        async for chunk in self.storage.blob_chunks(desc.digest):
            yield chunk

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return await self.storage.blob_size(self.name, desc.digest) is not None

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes], opts: Options = DEFAULT_OPTIONS) -> None:
        upload_id = await self.storage.start_upload(self.name)
        try:
            await self.storage.append_upload(self.name, upload_id, chunks)
            await self.storage.finish_upload(self.name, upload_id, desc.digest)
        except BaseException:
            await self.storage.cancel_upload(self.name, upload_id, locked=True)
            raise

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return await self.storage.has_manifest(self.name, desc.digest)

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        result = await self.storage.put_manifest(self.name, tag or Digest.of(raw), raw, media_type)
        return result.digest

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        tags = await self.storage.list_tags(self.name)
        if tags is None:
            raise ManifestUnknown(f"repository {self.name} does not exist")
        return tags

    async def close(self) -> None:
        return None
