"""``oci-archive:PATH[:REF]``: a tar of an OCI image layout, as a Store.

Reading indexes the tar once and serves blobs by offset (nothing is extracted). Writing
stages new content in an :class:`~ocikit.transports.layout.OCILayout` beside the target and
writes the whole tar at :meth:`OCIArchiveWriter.close`; images already in the archive are
kept (a tag written again moves to the new image, as in a layout).
"""

from __future__ import annotations

import asyncio
import os
from typing import AsyncIterator, Iterable

from ... import mediatypes as mt
from ...content import DEFAULT_OPTIONS, DEFAULT_TRAITS, LinkResult, Options, RawManifest, Store
from ...digest import Digest, Verifier, is_digest
from ...durable import disk_full_guard
from ...errors import ArchiveInvalid, BlobUnknown, ManifestUnknown
from ...model import ANNOTATION_REF_NAME, Descriptor, canonical_json, parse_manifest
from ...model.walk import walk
from ..layout import INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, OCILayout, check_layout_file, parse_index_file
from .readonly import ReadOnly
from .staging import ArchiveOutput, Inflight, archive_changed as _changed, existing_archive
from .tarindex import Member, TarIndex, pwrite_all
from .tarwriter import TarWriter

MAX_MANIFEST = 4 * 1024 * 1024


def blob_member(digest: str) -> str:
    d = Digest(digest)
    return f"blobs/{d.algorithm}/{d.encoded}"


def resolve_entry(entries: list[Descriptor], reference: str | None, where: str) -> Descriptor | None:
    """Pick an ``index.json`` entry the way an OCI layout does; ``None``: a digest not listed."""
    if reference is None:
        if len(entries) == 1:
            return entries[0]
        if not entries:
            raise ManifestUnknown(f"{where}: the archive holds no image")
        tags = ", ".join(d.ref_name for d in entries if d.ref_name) or "none"
        raise ManifestUnknown(f"{where}: the archive holds {len(entries)} images; name one (tags: {tags})")
    if is_digest(reference):
        for e in entries:
            if e.digest == reference:
                return e
        return None
    matches = [e for e in entries if e.ref_name == reference]
    if not matches:
        raise ManifestUnknown(f"{where}: no image named {reference!r}")
    return matches[-1]


class OCIArchiveReader(ReadOnly):
    """An oci-archive opened for reading."""

    traits = DEFAULT_TRAITS

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.tar = TarIndex(self.path, label=f"oci-archive:{self.path}")
        try:
            self._check()
        except BaseException:
            self.tar.close()
            raise

    @property
    def location(self) -> str:
        return f"oci-archive:{self.path}"

    def _check(self) -> None:
        lay = self.tar.find(LAYOUT_FILE)
        if lay is None:
            raise ArchiveInvalid(f"{self.location}: no {LAYOUT_FILE} file; not an OCI layout archive")
        check_layout_file(self.tar.read(lay, 65536), self.location, ArchiveInvalid)
        idx = self.tar.require(INDEX_FILE, "index")
        raw = self.tar.read(idx, MAX_MANIFEST)
        m = parse_index_file(raw, self.location, ArchiveInvalid)
        self.index_raw = raw
        self.entries: list[Descriptor] = list(m.manifests)

    # ---- sync helpers ----------------------------------------------------------------------

    def member(self, digest: str) -> Member | None:
        return self.tar.find(blob_member(digest))

    def read_verified(self, digest: Digest, size: int | None, what: str = "manifest") -> bytes:
        m = self.member(digest)
        if m is None:
            raise (ManifestUnknown if what == "manifest" else BlobUnknown)(
                f"{self.location}: {what} {digest} is missing from the archive")
        data = self.tar.read(m, MAX_MANIFEST)
        v = Verifier(digest, size, what=f"{self.location}: {what}")
        v.update(data)
        v.verify()
        return data

    def resolve_sync(self, reference: str | None) -> Descriptor:
        desc = resolve_entry(self.entries, reference, self.location)
        if desc is not None:
            return desc
        assert reference is not None
        raw = self.read_verified(Digest(reference), None)
        m = parse_manifest(raw, what=f"manifest {reference}")
        return Descriptor(m.media_type, Digest(reference), len(raw))

    def get_manifest_sync(self, reference: str) -> RawManifest:
        desc = self.resolve_sync(reference)
        raw = self.read_verified(desc.digest, desc.size)
        m = parse_manifest(raw, desc.media_type, what=f"manifest {desc.digest}")
        return RawManifest(raw, m.media_type, desc.digest)

    def has(self, desc: Descriptor) -> bool:
        m = self.member(desc.digest)
        return m is not None and m.size == desc.size

    # ---- Store -----------------------------------------------------------------------------

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        return self.resolve_sync(reference)

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        return self.get_manifest_sync(reference)

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        m = self.member(desc.digest)
        if m is None:
            raise BlobUnknown(f"{self.location}: blob {desc.digest} is missing from the archive")
        async for chunk in self.tar.achunks(m):
            yield chunk

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.has(desc)

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.has(desc)

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        return [d.ref_name for d in self.entries if d.ref_name]

    async def close(self) -> None:
        self.tar.close()


class OCIArchiveWriter:
    """An oci-archive opened for writing: blobs stream into the new tar (or are linked into staging
    from a layout), manifests are staged; the tar is completed and renamed into place at close()."""

    traits = DEFAULT_TRAITS
    """An OCI layout inside a tar: keeps whatever it is given byte for byte."""

    def __init__(self, path: str, *, sync: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.out = ArchiveOutput(self.path, sync=sync)
        self.base: OCIArchiveReader | None = OCIArchiveReader(self.path) if existing_archive(self.path) else None
        self._base_stat = os.stat(self.path) if self.base else None
        self.stage = OCILayout(os.path.join(self.out.staging, "layout"), create=True, sync=False)
        self.new_entries: list[Descriptor] = []
        self.direct: dict[Digest, tuple[int, int]] = {}
        """Blobs already written into the new archive: (data offset, size)."""
        self.inflight = Inflight()
        self.dirty = False
        self._closed = False

    @property
    def location(self) -> str:
        return f"oci-archive:{self.path}"

    # ---- reads: staged content first, then the archive as it was ------------------------------

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        entries = self._merged_entries(self.base.entries if self.base else [])
        desc = resolve_entry(entries, reference, self.location)
        if desc is not None:
            return desc
        assert reference is not None
        if os.path.exists(self.stage.blob_path(reference)):
            return self.stage.resolve_sync(reference)
        if self.base is None:
            raise ManifestUnknown(f"{self.location}: no manifest {reference}")
        return self.base.resolve_sync(reference)

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        desc = await self.resolve(reference, opts)
        if os.path.exists(self.stage.blob_path(desc.digest)):
            raw = self.stage._read_verified(desc.digest, desc.size)
        elif self.base is not None:
            raw = self.base.read_verified(desc.digest, desc.size)
        else:
            raise ManifestUnknown(f"{self.location}: no manifest {reference}")
        m = parse_manifest(raw, desc.media_type, what=f"manifest {desc.digest}")
        return RawManifest(raw, m.media_type, desc.digest)

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        if desc.digest in self.direct:
            offset, size = self.direct[desc.digest]
            async for chunk in TarIndex.region_chunks(self.out.tar().fd, offset, size):
                yield chunk
            return
        source: Store = self.stage if self.stage.has_blob_sync(desc) or self.base is None else self.base
        async for chunk in source.blob_chunks(desc, opts):
            yield chunk

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return (desc.digest in self.direct or self.stage.has_blob_sync(desc)
                or (self.base is not None and self.base.has(desc)))

    has_manifest = has_blob

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        entries = self._merged_entries(self.base.entries if self.base else [])
        return [d.ref_name for d in entries if d.ref_name]

    # ---- writes ------------------------------------------------------------------------------

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes],
                       opts: Options = DEFAULT_OPTIONS) -> None:
        """Stream a blob straight into its place in the new archive (sizes are known, so several blobs
        fill their reserved members at once), verified; a failed blob leaves an inert member."""
        self.dirty = True
        tar = self.out.tar()
        name = blob_member(desc.digest)
        if name in tar.names:  # being written by a concurrent put of the same blob
            await self.stage.put_blob(desc, chunks, opts)
            return
        start, offset = tar.reserve(name, desc.size)
        v = Verifier(desc.digest, desc.size, what=f"{self.location}: blob")
        pos = offset

        def write(chunk: bytes, at: int) -> None:
            v.update(chunk)  # raises before a chunk could overrun the member
            pwrite_all(tar.fd, chunk, at)

        try:
            with disk_full_guard(f"blob {desc.digest} to {self.location}"):
                async for chunk in chunks:
                    await self.inflight(asyncio.to_thread(write, chunk, pos))
                    pos += len(chunk)
            v.verify()
        except BaseException:
            tar.abandon(start)
            raise
        self.direct[desc.digest] = (offset, desc.size)

    async def link_blob_from(self, source: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> LinkResult:
        """Hardlink (else reflink/copy) a blob from a layout on this filesystem into the staging area."""
        if not isinstance(source, OCILayout):
            return LinkResult.NOT_LINKED
        self.dirty = True
        return await self.inflight(self.stage.link_blob_from(source, desc, opts))

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        self.dirty = True
        desc = Descriptor(media_type, Digest.of(raw), len(raw))
        if not self.stage.has_blob_sync(desc):
            await self.inflight(asyncio.to_thread(self.stage.write_blob_file, desc, iter([raw])))
        if tag or root:
            entry = desc.with_annotations({ANNOTATION_REF_NAME: tag} if tag else None)
            self.new_entries = [e for e in self.new_entries
                                if not (tag and e.ref_name == tag) and not (not tag and not e.ref_name
                                                                            and e.digest == desc.digest)]
            self.new_entries.append(entry)
        return desc.digest

    def _merged_entries(self, old: Iterable[Descriptor]) -> list[Descriptor]:
        new_tags = {e.ref_name for e in self.new_entries if e.ref_name}
        new_untagged = {e.digest for e in self.new_entries if not e.ref_name}
        kept = [e for e in old
                if not (e.ref_name and e.ref_name in new_tags)
                and not (not e.ref_name and e.digest in new_untagged)]
        return kept + self.new_entries

    # ---- finishing -------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.inflight.drain()
            if self.dirty or self.base is None:
                await asyncio.to_thread(self._publish)
        finally:
            await self._cleanup()

    async def abort(self) -> None:
        """Drop everything written; the archive stays as it was."""
        if self._closed:
            return
        self._closed = True
        await self.inflight.drain()  # no worker thread may still touch the files removed next
        await self._cleanup()

    async def _cleanup(self) -> None:
        if self.base is not None:
            self.base.tar.close()
        self.out.discard()

    def _publish(self) -> None:
        with self.out.locked():
            base = self.base
            if _changed(self.path, self._base_stat):  # another writer published meanwhile: merge with theirs
                if base is not None:
                    base.tar.close()
                base = self.base = OCIArchiveReader(self.path) if existing_archive(self.path) else None
            entries = self._merged_entries(base.entries if base else [])
            blobs = self._reachable(entries, base)
            index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [e.to_dict() for e in entries]}

            def write(w: TarWriter) -> None:
                w.add_bytes(LAYOUT_FILE, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
                w.add_dir("blobs")
                for alg in sorted({d.algorithm for d in blobs}):
                    w.add_dir(f"blobs/{alg}")
                for d in sorted(blobs):
                    name = blob_member(d)
                    if name in w.names:
                        continue  # streamed straight into the archive by put_blob
                    staged = self.stage.blob_path(d)
                    if os.path.exists(staged):
                        w.add_path(name, staged)
                    else:
                        assert base is not None
                        m = base.member(d)
                        assert m is not None
                        w.add_region(name, base.tar.fd, m.offset, m.size)
                w.add_bytes(INDEX_FILE, canonical_json(index))

            self.out.publish(write)

    def _reachable(self, entries: list[Descriptor], base: OCIArchiveReader | None) -> set[Digest]:
        """Blobs the final index.json reaches and that exist (a sparse index's absent children are fine).

        One walk (:func:`ocikit.model.walk.walk`) over staged, streamed and inherited content; a
        config or layer that was never written refuses the archive.
        """
        def present(digest: Digest) -> bool:
            return (digest in self.direct or os.path.exists(self.stage.blob_path(digest))
                    or (base is not None and base.member(digest) is not None))

        def fetch(desc: Descriptor) -> bytes:
            staged = self.stage.blob_path(desc.digest)
            if os.path.exists(staged):
                with open(staged, "rb") as f:
                    return f.read(MAX_MANIFEST + 1)
            if desc.digest in self.direct:
                offset, size = self.direct[desc.digest]
                return os.pread(self.out.tar().fd, min(size, MAX_MANIFEST + 1), offset)
            m = base.member(desc.digest) if base is not None else None
            if m is None:
                raise ManifestUnknown(f"{self.location}: manifest {desc.digest} was never written")
            assert base is not None
            return base.tar.read(m, MAX_MANIFEST + 1)

        graph = walk(entries, fetch, scan_unknown_json=True, where=self.location)
        seen = set(graph.nodes)
        absent = [(m.parent, m.link) for m in graph.missing]
        for parent, link in graph.leaves:
            if present(link.digest):
                seen.add(link.digest)
            else:
                absent.append((parent, link))
        for parent, link in absent:
            if link.required:
                d = link.descriptor
                raise ArchiveInvalid(f"{self.location}: blob {d.digest} ({d.media_type}, {link.path} of {parent}) "
                                     "was never written; refusing to write an incomplete archive")
        return seen


def open_oci_archive_path(path: str, *, write: bool = False) -> OCIArchiveReader | OCIArchiveWriter:
    """Open an oci-archive for reading, or (``write``) for adding images."""
    return OCIArchiveWriter(path) if write else OCIArchiveReader(path)
