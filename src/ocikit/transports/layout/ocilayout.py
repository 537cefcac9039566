"""OCI image layouts on disk (image-spec image-layout.md) as a :class:`~ocikit.content.Store`.

``oci-layout``, ``index.json`` and ``blobs/<alg>/<encoded>``. Tags are
``org.opencontainers.image.ref.name`` annotations on ``index.json`` entries, so one layout
holds many images sharing blobs. This module holds the Store; its parts live beside it:
``indexfile`` (``oci-layout`` and ``index.json``, edited under an exclusive ``flock``),
``blobwrite`` (verified, atomic blob writes), ``link`` (hardlink/reflink from another layout),
``verified`` (verified-at-ingest records), ``layoutgc`` and ``validate``.

Errors, as the tests pin them:

- no directory, no ``oci-layout``, an unknown ``imageLayoutVersion``, an unreadable
  ``index.json``, a tag that names two different manifests: :class:`LayoutInvalid`;
- an unknown tag or digest, a missing manifest blob, a digest that names a blob that is not a
  manifest: :class:`ManifestUnknown`; a missing blob: :class:`BlobUnknown`;
- a manifest whose bytes do not match: :class:`DigestMismatch` (:class:`SizeInvalid` when the
  length is wrong); a blob stream is verified by its consumer, a blob linked in from another
  layout is verified before it appears;
- a full disk: :class:`DiskFull`, with no temp file left behind.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, AsyncIterator, Iterator

from ... import mediatypes as mt
from ...content import DEFAULT_OPTIONS, DEFAULT_TRAITS, LinkResult, Options, RawManifest, Store
from ...digest import CHUNK, Digest, is_digest
from ...durable import atomic_write, disk_full_guard
from ...errors import BlobUnknown, LayoutInvalid, ManifestInvalid, ManifestUnknown
from ...model import Descriptor, canonical_json, parse_manifest
from ...model.jsonutil import decode_object
from ...model.manifest import MAX_MANIFEST_SIZE
from . import blobwrite, layoutgc, link, validate
from .layoutgc import GcResult
from .indexfile import INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, IndexFile, check_layout_file


async def _to_thread(fn: Any, *args: Any) -> Any:
    import asyncio   # here: reading a layout synchronously (ocikit unpack) needs no event loop

    return await asyncio.to_thread(fn, *args)


class OCILayout(IndexFile):
    """An OCI image layout directory. ``create=True`` makes it if missing."""

    traits = DEFAULT_TRAITS
    """Keeps whatever it is given byte for byte: indexes (sparse too), any manifest format."""

    def __init__(self, path: str, *, create: bool = False, sync: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.sync = sync
        if create:
            self._init()
        elif not os.path.isdir(self.path):
            raise LayoutInvalid(f"{self.path}: no such OCI layout directory")
        elif not os.path.exists(os.path.join(self.path, LAYOUT_FILE)):
            raise LayoutInvalid(f"{self.path}: not an OCI layout (no {LAYOUT_FILE} file)")
        self._check_version()

    # ---- structure -----------------------------------------------------------------------

    def _init(self) -> None:
        try:
            with disk_full_guard(self.location):
                os.makedirs(os.path.join(self.path, "blobs", "sha256"), exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise LayoutInvalid(f"{self.path}: exists and is not a directory") from None
        except FileNotFoundError:
            raise LayoutInvalid(f"{self.path}: cannot create the layout (a dangling symlink?)") from None
        with self.lock():
            if not os.path.exists(os.path.join(self.path, LAYOUT_FILE)):
                atomic_write(os.path.join(self.path, LAYOUT_FILE),
                             canonical_json({"imageLayoutVersion": LAYOUT_VERSION}), sync=self.sync)
            if not os.path.exists(os.path.join(self.path, INDEX_FILE)):
                atomic_write(os.path.join(self.path, INDEX_FILE),
                             canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}),
                             sync=self.sync)

    def _check_version(self) -> None:
        with open(os.path.join(self.path, LAYOUT_FILE), "rb") as f:
            check_layout_file(f.read(), self.path, LayoutInvalid)

    # ---- sync primitives -------------------------------------------------------------------

    def resolve_sync(self, reference: str | None) -> Descriptor:
        entries = self.entries()
        if reference is None:
            if len(entries) == 1:
                return entries[0]
            if not entries:
                raise ManifestUnknown(f"{self.location}: the layout holds no image")
            raise ManifestUnknown(f"{self.location}: the layout holds {len(entries)} images; name one "
                                  f"(tags: {', '.join(t for t in self.tags()) or 'none'})")
        if is_digest(reference):
            for e in entries:
                if e.digest == reference:
                    return e
            return self._resolve_blob(Digest(reference))
        matches = [e for e in entries if e.ref_name == reference]
        if not matches:
            raise ManifestUnknown(f"{self.location}: no tag {reference!r}")
        if len({e.digest for e in matches}) > 1:
            raise LayoutInvalid(f"{self.location}: tag {reference!r} names {len(matches)} different manifests in "
                                f"{INDEX_FILE} ({', '.join(e.digest for e in matches)}); untag or re-tag it")
        return matches[-1]

    def _resolve_blob(self, digest: Digest) -> Descriptor:
        """A manifest that is a blob but not an index.json entry (an index's child, a referrer)."""
        try:
            size = os.path.getsize(self.blob_path(digest))
        except FileNotFoundError:
            raise ManifestUnknown(f"{self.location}: no manifest {digest}") from None
        if size > MAX_MANIFEST_SIZE:
            raise ManifestUnknown(f"{self.location}: {digest} is a {size}-byte blob, not a manifest")
        raw = self._read_verified(digest)
        try:
            m = parse_manifest(raw, what=f"manifest {digest}")
        except ManifestInvalid:
            if _looks_like_manifest(raw):
                raise
            raise ManifestUnknown(f"{self.location}: {digest} is a blob, not a manifest") from None
        return Descriptor(m.media_type, digest, len(raw))

    def get_manifest_sync(self, reference: str) -> RawManifest:
        desc = self.resolve_sync(reference)
        raw = self._read_verified(desc.digest, desc.size)
        media_type = parse_manifest(raw, desc.media_type, what=f"manifest {desc.digest}").media_type
        return RawManifest(raw, media_type, desc.digest)

    def has_blob_sync(self, desc: Descriptor) -> bool:
        try:
            st = os.stat(self.blob_path(desc.digest))
        except FileNotFoundError:
            return False
        return st.st_size == desc.size

    def write_blob_file(self, desc: Descriptor, src: Iterator[bytes]) -> None:
        """Write a blob from an iterator of chunks, verified, atomically."""
        blobwrite.write_blob_file(self, desc, src)

    def staged_blob(self) -> contextlib.AbstractContextManager[blobwrite.StagedBlob]:
        """A temp file among the blobs for a writer that hashes what it writes (see :mod:`.blobwrite`)."""
        return blobwrite.staged_blob(self)

    def put_bytes(self, data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
        desc = Descriptor(media_type, Digest.of(data), len(data))
        if not self.has_blob_sync(desc):
            self.write_blob_file(desc, iter([data]))
        return desc

    # ---- Store ---------------------------------------------------------------------------

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        return await _to_thread(self.resolve_sync, reference)

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        return await _to_thread(self.get_manifest_sync, reference)

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        try:
            f = open(self.blob_path(desc.digest), "rb")
        except FileNotFoundError:
            raise BlobUnknown(f"{self.location}: blob {desc.digest} is missing from blobs/") from None
        try:
            while True:
                chunk = await _to_thread(f.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            f.close()

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.has_blob_sync(desc)

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes],
                       opts: Options = DEFAULT_OPTIONS) -> None:
        await blobwrite.put_blob(self, desc, chunks)

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.has_blob_sync(desc)

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        desc = Descriptor(media_type, Digest.of(raw), len(raw))
        if not self.has_blob_sync(desc):
            await _to_thread(self.write_blob_file, desc, iter([raw]))
        if tag or root:
            await _to_thread(self.add_entry, desc, tag)
        return desc.digest

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        return self.tags()

    async def close(self) -> None:
        return None

    async def delete_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> None:
        if is_digest(reference):
            if not self.remove_digest(reference):
                raise ManifestUnknown(f"{self.location}: no index.json entry for {reference}")
        else:
            self.untag(reference)

    async def link_blob_from(self, source: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> LinkResult:
        """Hardlink, else reflink, else copy, a blob from another layout on this machine."""
        if not isinstance(source, OCILayout):
            return LinkResult.NOT_LINKED
        return await _to_thread(link.link_sync, self, source, desc)

    # ---- maintenance -----------------------------------------------------------------------

    def reachable(self) -> set[Digest]:
        """Every blob digest reachable from index.json (see :func:`.layoutgc.reachable`)."""
        return layoutgc.reachable(self)

    def gc(self, *, dry_run: bool = False, grace_seconds: float = 0.0) -> GcResult:
        """Remove blobs nothing reachable points at, and stale temp files (see :func:`.layoutgc.collect`)."""
        return layoutgc.collect(self, dry_run=dry_run, grace_seconds=grace_seconds)

    def validate(self, *, hash_blobs: bool = True) -> list[str]:
        """Problems found in the layout (empty when it is valid; see :mod:`.validate`)."""
        return validate.validate(self, hash_blobs=hash_blobs)


def _looks_like_manifest(raw: bytes) -> bool:
    """Does a blob that failed to parse as a manifest at least claim to be one?"""
    try:
        doc = decode_object(raw, "blob")
    except ManifestInvalid:
        return False
    return "schemaVersion" in doc or mt.is_manifest(doc.get("mediaType")) or doc.get("mediaType") in mt.SCHEMA1_TYPES


def open_layout(path: str, *, create: bool = False) -> OCILayout:
    return OCILayout(path, create=create)


__all__ = ["OCILayout", "open_layout"]
