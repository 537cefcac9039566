"""Registry semantics over a :class:`StorageDriver`: blobs, links, uploads, manifests, tags, referrers.

Key layout (every component validated before it gets here)::

    blobs/<alg>/<hex[:2]>/<hex>                         content, shared by every repository
    uploads/<id>/{data,info.json}                       upload spools (driver-managed)
    repositories/<name>/_layers/<alg>/<hex>             blob linked into the repository (empty)
    repositories/<name>/_manifests/revisions/<alg>/<hex>  manifest in the repository (its media type)
    repositories/<name>/_manifests/tags/<tag>           tag -> "<digest> <media type>" (older: digest)
    repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  referrer descriptor (JSON) per subject
    catalog/<name>                                      (object stores only) repository index for _catalog

Repository path components never start with ``_``, so the ``_`` directories cannot collide
with nested repositories. Order of writes makes crashes harmless: a blob is renamed into
place before it is linked; a manifest's bytes are durable before its revision link, its
referrer entry and finally its tag are written.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from ...core import mediatypes as mt
from ...core.digest import Digest, Digester
from ...core.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    DigestMismatch,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    RangeInvalid,
)
from ...model import ImageIndex, ImageManifest, Manifest, parse_manifest
from ...model.referrer import referrer_descriptor
from .base import Fill, StorageDriver

MANIFEST_CACHE_BYTES = 64 * 1024 * 1024


def blob_key(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def repo_key(name: str, *parts: str) -> str:
    return "/".join(("repositories", name, *parts))


@dataclass(frozen=True)
class StoredManifest:
    raw: bytes
    media_type: str
    digest: Digest


@dataclass(frozen=True)
class PutManifestResult:
    digest: Digest
    subject: Digest | None


@dataclass
class UploadState:
    """What the server knows of an upload session; the bytes live in the driver's spool."""

    upload_id: str
    repository: str
    offset: int


class RegistryStorage:
    """Everything a registry stores, expressed in driver primitives (so an S3 driver can follow)."""

    def __init__(self, driver: StorageDriver, *, accept_sparse_index: bool = False,
                 check_blobs: bool = True) -> None:
        self.driver = driver
        self.accept_sparse_index = accept_sparse_index
        self.check_blobs = check_blobs
        self._cache: OrderedDict[Digest, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._digesters: dict[str, Digester] = {}
        self._upload_locks: dict[str, asyncio.Lock] = {}
        self._indexed: set[str] = set()

    async def _index_repository(self, name: str) -> None:
        """Record ``name`` in the catalog index (once per process; a PUT of an empty object)."""
        if self.driver.catalog_index and name not in self._indexed:
            await self.driver.put(f"catalog/{name}", b"", durable=True)
            self._indexed.add(name)

    # --- blobs -----------------------------------------------------------------------

    async def blob_size(self, name: str, digest: Digest) -> int | None:
        """Size of a blob visible in repository ``name`` (linked as a layer or a manifest)."""
        alg, enc = digest.algorithm, digest.encoded
        d = self.driver
        if await d.size(repo_key(name, "_layers", alg, enc)) is None and \
                await d.size(repo_key(name, "_manifests", "revisions", alg, enc)) is None:
            return None
        return await d.size(blob_key(digest))

    async def require_blob(self, name: str, digest: Digest) -> int:
        size = await self.blob_size(name, digest)
        if size is None:
            raise BlobUnknown(f"blob unknown to registry: {digest}", detail={"digest": str(digest)})
        return size

    def blob_path(self, digest: Digest) -> str | None:
        return self.driver.local_path(blob_key(digest))

    async def blob_redirect(self, digest: Digest) -> str | None:
        """A URL to send a blob GET to (a presigned object URL), or ``None`` to stream it."""
        return await self.driver.redirect_url(blob_key(digest))

    def blob_chunks(self, digest: Digest, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.driver.read_chunks(blob_key(digest), offset, length)

    async def blob_relay(self, digest: Digest, offset: int, length: int, sock_fd: int) -> bool:
        """Bytes of a blob straight into a client socket, if the driver can (see ``StorageDriver.relay``)."""
        return await self.driver.relay(blob_key(digest), offset, length, sock_fd)

    async def link_blob(self, name: str, digest: Digest, *, touch: bool = True) -> None:
        """Link the blob into ``name``; with ``touch``, refresh it first for a concurrent gc's grace (not
        needed when it was just written): :class:`BlobUnknown` when it is gone (a gc took it)."""
        await self._index_repository(name)
        if touch and not await self.driver.touch(blob_key(digest)):
            raise BlobUnknown(f"blob unknown to registry: {digest}", detail={"digest": str(digest)})
        link = repo_key(name, "_layers", digest.algorithm, digest.encoded)
        if not await self.driver.touch(link):  # refreshed for a concurrent gc's grace, or written
            await self.driver.put(link, b"", durable=True)

    async def mount_blob(self, name: str, source: str, digest: Digest) -> int | None:
        """Link a blob of ``source`` into ``name``; its size, or ``None`` when ``source`` lacks it (or a
        concurrent gc just took it: the client uploads it instead)."""
        size = await self.blob_size(source, digest)
        if size is None:
            return None
        try:
            await self.link_blob(name, digest)
        except BlobUnknown:
            return None
        return size

    async def delete_blob(self, name: str, digest: Digest) -> None:
        """Unlink a blob from a repository (the bytes go at the next gc)."""
        if not await self.driver.delete(repo_key(name, "_layers", digest.algorithm, digest.encoded)):
            raise BlobUnknown(f"blob unknown to repository: {digest}", detail={"digest": str(digest)})

    # --- uploads ---------------------------------------------------------------------

    async def start_upload(self, name: str) -> str:
        upload_id = secrets.token_hex(16)
        info = json.dumps({"repository": name, "started": time.time()}).encode()
        await self.driver.spool_create(upload_id, info)
        self._digesters[upload_id] = Digester()
        return upload_id

    async def upload_state(self, name: str, upload_id: str) -> UploadState:
        info = await self.driver.spool_info(upload_id)
        size = await self.driver.spool_size(upload_id)
        if info is None or size is None or json.loads(info).get("repository") != name:
            raise BlobUploadUnknown(f"blob upload unknown: {upload_id}", detail={"upload": upload_id})
        return UploadState(upload_id, name, size)

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._upload_locks.get(upload_id)
        if lock is None:
            lock = self._upload_locks[upload_id] = asyncio.Lock()
        return lock

    async def _digester(self, upload_id: str, size: int) -> Digester:
        """The running sha256 of a spool; rebuilt from its bytes after a restart."""
        d = self._digesters.get(upload_id)
        if d is not None and d.size == size:
            return d
        d = Digester()
        async for chunk in self.driver.spool_chunks(upload_id):
            d.update(chunk)
        self._digesters[upload_id] = d
        return d

    async def append_upload(self, name: str, upload_id: str, chunks: AsyncIterator[bytes],
                            start: int | None = None, end: int | None = None,
                            content_length: int | None = None) -> int:
        """Append a chunk. ``start``/``end`` come from a ``Content-Range`` (inclusive end)."""
        async with self._lock(upload_id):
            state = await self.upload_state(name, upload_id)
            if start is not None and start != state.offset:
                raise RangeInvalid(f"chunk starts at {start}, but {state.offset} bytes were received",
                                   detail={"offset": state.offset})
            if start is not None and end is not None and content_length is not None \
                    and end - start + 1 != content_length:
                raise RangeInvalid(f"Content-Range {start}-{end} does not match Content-Length {content_length}",
                                   detail={"offset": state.offset})
            digester = await self._digester(upload_id, state.offset)
            expected = content_length if content_length is not None else \
                (end - start + 1 if start is not None and end is not None else None)
            if expected is not None:
                chunks = _exactly(chunks, expected)
            try:
                new_size = await self.driver.spool_append(upload_id, state.offset, chunks, digester)
            except BaseException:
                self._digesters.pop(upload_id, None)
                raise
            return new_size

    async def fill_upload(self, name: str, upload_id: str, fill: Fill, length: int,
                          written: Callable[[int, memoryview], None]) -> int:
        """Append exactly ``length`` bytes that ``fill`` receives in a thread of its own, hashed and
        written there (:meth:`StorageDriver.spool_fill`; drivers with local spools only);
        ``written(end, piece)`` is called from that thread as the spool grows. More or fewer bytes:
        :class:`BlobUploadInvalid`, and the spool is cut back as it was."""
        async with self._lock(upload_id):
            state = await self.upload_state(name, upload_id)
            digester = await self._digester(upload_id, state.offset)
            end = state.offset + length
            at = state.offset

            def sink_end(pos: int, piece: memoryview) -> None:
                nonlocal at
                if pos > end:
                    raise _too_long(length)
                at = pos
                written(pos, piece)

            class Exact:
                """``fill``, ending short an error in its own thread (the driver then cuts the spool back)."""

                def run(self, sink: Callable[[memoryview], None]) -> None:
                    fill.run(sink)
                    if at != end:
                        raise _too_short(at - state.offset, length)

                def abort(self) -> None:
                    fill.abort()

            try:
                return await self.driver.spool_fill(upload_id, state.offset, Exact(), digester, sink_end)
            except BaseException:
                self._digesters.pop(upload_id, None)
                raise

    async def finish_upload(self, name: str, upload_id: str, digest: Digest, *,
                            verified: Callable[[], None] | None = None) -> int:
        """Verify the spool against ``digest`` and commit it as a blob linked into ``name``;
        ``verified`` is called once the content checked out, before the (slower, durable) commit."""
        async with self._lock(upload_id):
            state = await self.upload_state(name, upload_id)
            if digest.algorithm == "sha256":
                actual = (await self._digester(upload_id, state.offset)).digest()
            else:
                d = Digester(digest.algorithm)
                async for chunk in self.driver.spool_chunks(upload_id):
                    d.update(chunk)
                actual = d.digest()
            if actual != digest:
                await self.cancel_upload(name, upload_id, locked=True)
                raise DigestMismatch(digest, actual, what="upload")
            if verified is not None:
                verified()
            fresh = await self.driver.spool_commit(upload_id, blob_key(digest))
            self._forget(upload_id)
            await self.link_blob(name, digest, touch=not fresh)
            return state.offset

    async def cancel_upload(self, name: str, upload_id: str, *, locked: bool = False) -> None:
        if not locked:
            await self.upload_state(name, upload_id)
        await self.driver.spool_delete(upload_id)
        self._forget(upload_id)

    def _forget(self, upload_id: str) -> None:
        self._digesters.pop(upload_id, None)
        self._upload_locks.pop(upload_id, None)

    # --- manifests -------------------------------------------------------------------

    async def _read_manifest_bytes(self, digest: Digest) -> bytes | None:
        raw = self._cache.get(digest)
        if raw is not None:
            self._cache.move_to_end(digest)
            return raw
        raw = await self.driver.get(blob_key(digest))
        if raw is None:
            return None
        self._cache[digest] = raw
        self._cache_bytes += len(raw)
        while self._cache_bytes > MANIFEST_CACHE_BYTES and self._cache:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= len(old)
        return raw

    async def _read_tag(self, name: str, tag: str) -> tuple[Digest, str | None] | None:
        """A tag's digest and, when the tag carries it, its manifest's media type."""
        raw = await self.driver.get(repo_key(name, "_manifests", "tags", tag))
        if not raw:
            return None
        digest, _, media_type = raw.decode().strip().partition(" ")
        return Digest(digest), media_type or None

    async def resolve_tag(self, name: str, tag: str) -> Digest | None:
        got = await self._read_tag(name, tag)
        return got[0] if got else None

    async def manifest_media_type(self, name: str, digest: Digest) -> str | None:
        raw = await self.driver.get(repo_key(name, "_manifests", "revisions", digest.algorithm, digest.encoded))
        return raw.decode() if raw is not None else None

    async def get_manifest(self, name: str, reference: str | Digest) -> StoredManifest:
        """A manifest by digest (its revision link, then its bytes) or by tag. A tag written since
        tags carry the media type (``<digest> <media type>``) needs no revision read: a revision is
        written before its tags and deleted after them."""
        media_type: str | None = None
        if isinstance(reference, Digest):
            digest: Digest | None = reference
        else:
            got = await self._read_tag(name, reference)
            digest, media_type = got if got else (None, None)
        if digest is None:
            raise ManifestUnknown(f"manifest unknown: {name}:{reference}", detail={"tag": str(reference)})
        if media_type is None:
            media_type = await self.manifest_media_type(name, digest)
        raw = await self._read_manifest_bytes(digest) if media_type is not None else None
        if raw is None or media_type is None:
            raise ManifestUnknown(f"manifest unknown: {name}@{digest}", detail={"digest": str(digest)})
        return StoredManifest(raw, media_type, digest)

    async def has_manifest(self, name: str, digest: Digest) -> bool:
        return await self.manifest_media_type(name, digest) is not None

    async def check_references(self, name: str, m: Manifest) -> None:
        """Every config, layer and child named by ``m`` must be in repository ``name``."""
        if isinstance(m, ImageIndex):
            if self.accept_sparse_index:
                return
            for i, child in enumerate(m.manifests):
                # refreshed, as blobs are below: gc deletes an untagged manifest only while it is old
                revision = repo_key(name, "_manifests", "revisions", child.digest.algorithm, child.digest.encoded)
                if not (await self.has_manifest(name, child.digest) and await self.driver.touch(revision)):
                    raise ManifestBlobUnknown(f"manifests[{i}]: manifest {child.digest} is not in {name}",
                                              detail={"digest": str(child.digest)})
            return
        assert isinstance(m, ImageManifest)
        for what, desc in [("config", m.config)] + [(f"layers[{i}]", x) for i, x in enumerate(m.layers)]:
            size = await self.blob_size(name, desc.digest)
            if size is None:
                if desc.urls:  # a foreign layer fetched from its urls, never pushed
                    continue
                raise ManifestBlobUnknown(f"{what}: blob {desc.digest} is not in {name}",
                                          detail={"digest": str(desc.digest)})
            if size != desc.size:
                raise ManifestInvalid(f"{what}: blob {desc.digest} is {size} bytes, the descriptor says {desc.size}")
            # refreshed for a concurrent gc's grace: the blob and its link into this repository (an old
            # link no manifest used when gc marked would otherwise go, and the layer answer 404 here)
            link = repo_key(name, "_layers", desc.digest.algorithm, desc.digest.encoded)
            if not (await self.driver.touch(blob_key(desc.digest)) and await self.driver.touch(link)):
                raise ManifestBlobUnknown(f"{what}: blob {desc.digest} is not in {name}",
                                          detail={"digest": str(desc.digest)})

    async def put_manifest(self, name: str, reference: str | Digest, raw: bytes,
                           content_type: str | None, *, check: bool | None = None) -> PutManifestResult:
        """Check and store a manifest; tag it when ``reference`` is a tag.

        ``check``: whether everything it names must be here (default: the ``check_blobs``
        setting; a pull-through cache stores manifests before their blobs).
        """
        if isinstance(reference, Digest):
            actual = Digest.of(raw, reference.algorithm)
            if actual != reference:
                raise DigestMismatch(reference, actual, what="manifest")
            digest = reference
        else:
            digest = Digest.of(raw)
        hint = (content_type or "").split(";")[0].strip() or None
        m = parse_manifest(raw, hint if hint in mt.MANIFEST_TYPES else None)
        if self.check_blobs if check is None else check:
            await self.check_references(name, m)
        d = self.driver
        await self._index_repository(name)
        key = blob_key(digest)
        if not await d.touch(key):  # refreshed for a concurrent gc's grace, or written
            await d.put(key, raw)
        revision = repo_key(name, "_manifests", "revisions", digest.algorithm, digest.encoded)
        if not await d.touch(revision):  # as the manifest's bytes above
            await d.put(revision, m.media_type.encode())
        subject = m.subject.digest if m.subject is not None else None
        if m.subject is not None:
            entry = referrer_descriptor(m, digest).to_dict()
            await d.put(repo_key(name, "_referrers", subject.algorithm, subject.encoded,  # type: ignore[union-attr]
                                 f"{digest.algorithm}-{digest.encoded}"), json.dumps(entry).encode())
        if not isinstance(reference, Digest):
            await d.put(repo_key(name, "_manifests", "tags", reference), f"{digest} {m.media_type}".encode())
        return PutManifestResult(digest, subject)

    async def delete_manifest(self, name: str, digest: Digest) -> None:
        """Delete a manifest from a repository, with every tag naming it and its referrer entry."""
        stored = await self.get_manifest(name, digest)
        d = self.driver
        for tag in await self.list_tags(name) or []:
            if await self.resolve_tag(name, tag) == digest:
                await d.delete(repo_key(name, "_manifests", "tags", tag))
        await self._forget_referrer(name, digest, stored)
        await d.delete(repo_key(name, "_manifests", "revisions", digest.algorithm, digest.encoded))

    async def _forget_referrer(self, name: str, digest: Digest, stored: StoredManifest) -> None:
        """Drop the referrers entry the manifest ``digest`` (``stored``) made under its subject."""
        try:
            m = parse_manifest(stored.raw, stored.media_type)
        except (ManifestInvalid, DigestInvalid):
            return
        if m.subject is not None:
            s = m.subject.digest
            await self.driver.delete(repo_key(name, "_referrers", s.algorithm, s.encoded,
                                              f"{digest.algorithm}-{digest.encoded}"))

    async def delete_manifest_if_older(self, name: str, digest: Digest, cutoff: float) -> bool:
        """gc's delete of a manifest it found untagged: only while the manifest's revision is older than
        ``cutoff``, read again under the driver's lock (a push of the same manifest since, by tag or
        by digest, refreshes it: kept). No tag is deleted: one made since came with such a push."""
        stored = await self.get_manifest(name, digest)
        if not await self.driver.delete_if_older(
                repo_key(name, "_manifests", "revisions", digest.algorithm, digest.encoded), cutoff):
            return False
        await self._forget_referrer(name, digest, stored)
        return True

    async def delete_tag(self, name: str, tag: str) -> None:
        if not await self.driver.delete(repo_key(name, "_manifests", "tags", tag)):
            raise ManifestUnknown(f"manifest unknown: {name}:{tag}", detail={"tag": tag})

    # --- discovery -------------------------------------------------------------------

    async def repository_exists(self, name: str) -> bool:
        return await self.driver.is_dir(repo_key(name, "_manifests")) or \
            await self.driver.is_dir(repo_key(name, "_layers"))

    async def list_tags(self, name: str) -> list[str] | None:
        """Sorted tags, or ``None`` when the repository does not exist."""
        if not await self.repository_exists(name):
            return None
        return await self.driver.list(repo_key(name, "_manifests", "tags"))

    async def list_tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool] | None:
        """A page of tags after ``last`` (one delimiter listing on an object store) and whether more follow."""
        if not await self.repository_exists(name):
            return None
        got = await self.driver.list_after(repo_key(name, "_manifests", "tags"), last or None,
                                           None if n is None else n + 1)
        return (got, False) if n is None else (got[:n], len(got) > n)

    async def catalog_page(self, n: int | None, last: str | None) -> tuple[list[str], bool]:
        """A page of repository names after ``last``: one listing of the index on an object store."""
        if self.driver.catalog_index:
            got = await self.driver.list_keys("catalog", last or None, None if n is None else n + 1)
        else:
            got = [r for r in await self.catalog() if not last or r > last]
        return (got, False) if n is None else (got[:n], len(got) > n)

    async def tag_modified(self, name: str, tag: str) -> float | None:
        """When ``tag`` was last pushed (its link's modification time), ``None`` if absent."""
        return await self.driver.mtime(repo_key(name, "_manifests", "tags", tag))

    async def list_manifests(self, name: str) -> list[Digest]:
        out = []
        for alg in await self.driver.list(repo_key(name, "_manifests", "revisions")):
            for enc in await self.driver.list(repo_key(name, "_manifests", "revisions", alg)):
                out.append(Digest(f"{alg}:{enc}"))
        return out

    async def list_layer_links(self, name: str) -> list[Digest]:
        out = []
        for alg in await self.driver.list(repo_key(name, "_layers")):
            for enc in await self.driver.list(repo_key(name, "_layers", alg)):
                out.append(Digest(f"{alg}:{enc}"))
        return out

    async def referrers(self, name: str, subject: Digest, artifact_type: str | None = None) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose ``subject`` is ``subject`` (filtered by artifact type)."""
        prefix = repo_key(name, "_referrers", subject.algorithm, subject.encoded)
        out = []
        for entry in await self.driver.list(prefix):
            alg, _, enc = entry.partition("-")
            if not await self.has_manifest(name, Digest(f"{alg}:{enc}")):
                continue  # deleted, or a crash between the referrer entry and the revision link
            raw = await self.driver.get(f"{prefix}/{entry}")
            if raw is None:
                continue
            desc = json.loads(raw)
            if artifact_type is not None and desc.get("artifactType") != artifact_type:
                continue
            out.append(desc)
        return out

    async def catalog(self) -> list[str]:
        """Every repository name, sorted."""
        if self.driver.catalog_index:
            return await self.driver.list_keys("catalog", None, None)
        names: list[str] = []

        async def walk(prefix: str, name: str) -> None:
            children = await self.driver.list(prefix)
            if "_manifests" in children or "_layers" in children:
                names.append(name)
            for child in children:
                if not child.startswith("_"):
                    await walk(f"{prefix}/{child}", f"{name}/{child}" if name else child)

        await walk("repositories", "")
        return sorted(names)


async def _exactly(chunks: AsyncIterator[bytes], length: int) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, failing when they hold more or fewer than ``length`` bytes."""
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > length:
            raise _too_long(length)
        yield chunk
    if seen != length:
        raise _too_short(seen, length)


def _too_long(length: int) -> BlobUploadInvalid:
    return BlobUploadInvalid(f"body longer than its Content-Length {length}")


def _too_short(seen: int, length: int) -> BlobUploadInvalid:
    return BlobUploadInvalid(f"body of {seen} bytes, shorter than its Content-Length {length}")
