"""The stores a build works with: a staging layout for new blobs, read over the base image.

New layers, configs and manifests are written to a *staging* layout (the target itself when
the target is an OCI layout, else a temporary one); :class:`OverlayStore` reads the staging
layout first and the base image's store second, so the copy engine moves the whole image.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import AsyncIterator, Iterator

from ..content import DEFAULT_OPTIONS, DEFAULT_TRAITS, Options, RawManifest, Store
from ..digest import Digest
from ..errors import ManifestUnknown, UsageError
from ..model import Descriptor
from ..transports.layout import OCILayout


class OverlayStore:
    """Reads from ``top`` first, then from ``bottom`` (the base image's store). Read-only."""

    traits = DEFAULT_TRAITS

    def __init__(self, top: OCILayout, bottom: Store | None) -> None:
        self.top = top
        self.bottom = bottom

    @property
    def location(self) -> str:
        return self.top.location

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        return await self.top.resolve(reference, opts)

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        try:
            return await self.top.get_manifest(reference, opts)
        except ManifestUnknown:
            if self.bottom is None:
                raise
            return await self.bottom.get_manifest(reference, opts)

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        src: Store = self.top
        if self.bottom is not None and not self.top.has_blob_sync(desc):
            src = self.bottom
        async for chunk in src.blob_chunks(desc, opts):
            yield chunk

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        if self.top.has_blob_sync(desc):
            return True
        return self.bottom is not None and await self.bottom.has_blob(desc, opts)

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes], opts: Options = DEFAULT_OPTIONS) -> None:
        raise UsageError("read-only store")

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.top.has_blob_sync(desc)

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        raise UsageError("read-only store")

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        return []

    async def close(self) -> None:
        return None


@contextlib.contextmanager
def staging_for(target: Store) -> Iterator[OCILayout]:
    """Where new blobs are written: the target layout itself, else a temporary layout."""
    if isinstance(target, OCILayout):
        yield target
        return
    d = tempfile.mkdtemp(prefix="ocikit-build-")
    try:
        yield OCILayout(os.path.join(d, "staging"), create=True, sync=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


__all__ = ["OverlayStore", "staging_for"]
