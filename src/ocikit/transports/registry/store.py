"""A registry repository as a :class:`~ocikit.content.Store` (plus BlobLinker, Deleter, ReferrersLister).

Blobs stream in large chunks; a GET cut mid-way resumes with ``Range``. Uploads are
monolithic (POST then one streamed PUT), streamed (one PATCH), or chunked (PATCHes with
``Content-Range``, at least ``OCI-Chunk-Min-Length`` each); the last bytes of a streamed
upload are held back until the whole blob has been verified, so a bad blob never completes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

from ..._aiohttp import aiohttp
from yarl import URL

from ...core import mediatypes as mt
from ...content import DEFAULT_OPTIONS, LinkResult, Options, RawManifest, SparseIndex, Store, StoreTraits
from ...core.digest import Digest, Verifier, is_digest
from ...core.errors import (
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestMismatch,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    TransportError,
    Unsupported,
)
from ...model import Descriptor, ImageIndex, parse_manifest
from ...core.uint import parse_uint
from .auth import Scope, repository_scope
from .client import NETWORK_ERRORS, RegistryClient, _describe, next_link, read_body, read_json
from .retry import backoff_delay

log = logging.getLogger("ocikit.registry")

MANIFEST_LIMIT = 4 << 20
SMALL_BLOB = 1 << 20
READ_CHUNK = 2 << 20
RECV_SIZE = 1 << 19
DEFAULT_CHUNK_SIZE = 16 << 20
UPLOAD_MODES = ("auto", "monolithic", "streamed", "chunked")


class RegistryStore:
    """One repository of one registry, reached through a :class:`RegistryClient`.

    ``upload_mode``: ``auto`` (small blobs in one PUT of bytes, large ones streamed in one PUT),
    ``monolithic``, ``streamed`` (one PATCH) or ``chunked`` (PATCHes of ``chunk_size``).
    ``Options.verified_downstream``: the consumer of :meth:`blob_chunks` verifies, so it need
    not hash the bytes itself.
    """

    traits = StoreTraits(sparse_index=SparseIndex.PROBE)
    """Whether an index may lack children is the registry's own policy: :meth:`accepts_sparse_index` asks."""

    def __init__(self, client: RegistryClient, repository: str, *, upload_mode: str = "auto",
                 chunk_size: int = DEFAULT_CHUNK_SIZE, own_client: bool = True, write: bool = False) -> None:
        if upload_mode not in UPLOAD_MODES:
            raise ValueError(f"upload_mode must be one of {UPLOAD_MODES}")
        self.client = client
        self.repository = repository
        self.upload_mode = upload_mode
        self.chunk_size = chunk_size
        self.own_client = own_client
        self.write = write
        """Opened to write: every request asks for pull and push, so one token serves them all."""
        self.resumes = 0
        """How many times a blob GET was resumed with Range (for tests and reports)."""
        self.upload_resumes = 0
        """How many times a chunk PATCH that broke off was resumed at the offset the registry reported."""
        self.upload_bytes_resent = 0
        """Bytes sent again by those resumed PATCHes (what a restart from zero would have cost instead: all)."""

    @property
    def location(self) -> str:
        return f"docker://{self.client.host}/{self.repository}"

    @property
    def host(self) -> str:
        return self.client.host

    def _pull(self) -> tuple[Scope, ...]:
        if self.write:
            return self._push()
        return (repository_scope(self.repository, "pull"),)

    def _push(self) -> tuple[Scope, ...]:
        return (repository_scope(self.repository, "pull", "push"),)

    def _path(self, kind: str, ref: str = "") -> str:
        return f"/v2/{self.repository}/{kind}/{ref}"

    # ---- manifests -------------------------------------------------------------------------

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        ref = reference or "latest"
        what = f"{self.location}: manifest {ref}"
        async with self.client.request("HEAD", self._path("manifests", ref), scopes=self._pull(),
                                       headers={"Accept": mt.ACCEPT_MANIFESTS}, what=what,
                                       not_found=ManifestUnknown) as resp:
            digest = resp.headers.get("Docker-Content-Digest")
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
            length = resp.headers.get("Content-Length")
        if is_digest(ref) and digest and digest != ref:
            raise DigestMismatch(ref, digest, what=what)
        size = parse_uint(length)
        if not digest or not is_digest(digest) or size is None or not mt.is_manifest(ctype):
            rm = await self.get_manifest(ref, opts)
            return Descriptor(rm.media_type, rm.digest, len(rm.raw))
        return Descriptor(ctype, Digest(digest), size)

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        what = f"{self.location}: manifest {reference}"
        async with self.client.request("GET", self._path("manifests", reference), scopes=self._pull(),
                                       headers={"Accept": mt.ACCEPT_MANIFESTS}, what=what,
                                       not_found=ManifestUnknown) as resp:
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
            try:
                raw = await read_body(resp, what, MANIFEST_LIMIT, ManifestInvalid)
            except NETWORK_ERRORS as e:
                raise TransportError(f"{what}: {_describe(e)}") from None
        if is_digest(reference):
            v = Verifier(reference, what=what)
            v.update(raw)
            digest = v.verify()
        else:
            digest = Digest.of(raw)
        if ctype in mt.SCHEMA1_TYPES or not mt.is_manifest(ctype):
            ctype = parse_manifest(raw, None, what=what).media_type
        return RawManifest(raw, ctype, digest)

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        async with self.client.request("HEAD", self._path("manifests", desc.digest), scopes=self._pull(),
                                       headers={"Accept": mt.ACCEPT_MANIFESTS}, ok=(200, 404)) as resp:
            return resp.status == 200

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        digest = Digest.of(raw)
        ref = tag or digest
        what = f"{self.location}: PUT manifest {ref}"
        async with self.client.request("PUT", self._path("manifests", ref), scopes=self._push(), data=bytes(raw),
                                       headers={"Content-Type": media_type}, ok=(200, 201, 202), what=what) as resp:
            got = resp.headers.get("Docker-Content-Digest")
        if got and is_digest(got) and Digest(got).algorithm == digest.algorithm and got != digest:
            raise DigestMismatch(digest, got, what=f"{what}: the registry stored")
        return digest

    async def accepts_sparse_index(self, raw: bytes, media_type: str, copied: list[Digest],
                                   opts: Options = DEFAULT_OPTIONS) -> bool:
        """Whether this registry stores the index ``raw`` once ``copied`` children are here.

        Probes by pushing the index untagged (by digest); a registry that checks the children
        refuses it, and then only children this copy does not write can make it fail.
        """
        try:
            await self.put_manifest(raw, media_type, None, opts)
            return True
        except (ManifestBlobUnknown, ManifestInvalid, ManifestUnknown, BlobUnknown):
            pass
        idx = parse_manifest(raw, media_type, what="index")
        assert isinstance(idx, ImageIndex)
        want = set(copied)
        for child in idx.manifests:
            if child.digest not in want and not await self.has_manifest(child, opts):
                return False
        return True

    async def delete_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> None:
        """Delete a manifest by digest; a tag is resolved first (which removes every tag on it)."""
        digest = reference if is_digest(reference) else (await self.resolve(reference, opts)).digest
        async with self.client.request("DELETE", self._path("manifests", digest), scopes=(
                repository_scope(self.repository, "delete"),), ok=(200, 202),
                what=f"{self.location}: delete {reference}", not_found=ManifestUnknown):
            pass

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS, *, n: int | None = None,
                        last: str | None = None) -> list[str]:
        """Every tag, following ``Link`` pagination; ``n``/``last`` ask for pages."""
        tags: list[str] = []
        params: dict[str, str] = {}
        if n:
            params["n"] = str(n)
        if last:
            params["last"] = last
        path: str | URL = self._path("tags", "list")
        what = f"{self.location}: tags"
        while True:
            async with self.client.request("GET", path, scopes=self._pull(), params=params or None, what=what,
                                           not_found=NameUnknown) as resp:
                doc = await read_json(resp, what)
                link = resp.headers.get("Link")
            tags.extend(t for t in (doc.get("tags") or []) if isinstance(t, str))
            nxt = next_link(link)
            if not nxt:
                return tags
            path, params = await self.client.url(nxt), {}

    async def referrers(self, digest: Digest, artifact_type: str | None = None,
                        opts: Options = DEFAULT_OPTIONS) -> list[Descriptor]:
        """The referrers API; on a registry without it, the ``sha256-<hex>`` tag schema."""
        api = await self.referrers_api(digest, artifact_type, opts)
        if api is not None:
            return api
        what = f"{self.location}: referrers of {digest}"
        tag = f"{digest.algorithm}-{digest.encoded[:64]}"
        try:
            rm = await self.get_manifest(tag, opts)
        except ManifestUnknown:
            return []
        idx = parse_manifest(rm.raw, rm.media_type, what=f"{what} (tag {tag})")
        if not isinstance(idx, ImageIndex):
            return []
        return [d for d in idx.manifests if not artifact_type or d.artifact_type == artifact_type]

    async def referrers_api(self, digest: Digest, artifact_type: str | None = None,
                            opts: Options = DEFAULT_OPTIONS) -> list[Descriptor] | None:
        """The referrers API's answer, or ``None`` when this registry lacks the API (a 404)."""
        params = {"artifactType": artifact_type} if artifact_type else None
        what = f"{self.location}: referrers of {digest}"
        async with self.client.request("GET", self._path("referrers", digest), scopes=self._pull(), params=params,
                                       ok=(200, 404), what=what) as resp:
            if resp.status == 200 and "json" in (resp.headers.get("Content-Type") or ""):
                raw = await read_body(resp, what, MANIFEST_LIMIT, ManifestInvalid)
                idx = parse_manifest(raw, mt.OCI_INDEX, what=what)
                assert isinstance(idx, ImageIndex)
                filtered = resp.headers.get("OCI-Filters-Applied", "")
                out = list(idx.manifests)
                if artifact_type and "artifactType" not in filtered:
                    out = [d for d in out if d.artifact_type == artifact_type]
                return out
        return None

    # ---- blobs -------------------------------------------------------------------------------

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        async with self.client.request("HEAD", self._path("blobs", desc.digest), scopes=self._pull(),
                                       ok=(200, 404), what=f"{self.location}: blob {desc.digest}") as resp:
            if resp.status != 200:
                return False
            length = resp.headers.get("Content-Length")
            return length is None or parse_uint(length) == desc.size

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        """Stream a blob; a dropped connection resumes at the byte it stopped with ``Range``."""
        verify = not opts.verified_downstream
        v = Verifier(desc.digest, desc.size, what=f"{self.location}: blob") if verify else None
        offset = 0
        failures = 0
        what = f"{self.location}: blob {desc.digest}"
        policy = self.client.retry
        while True:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            buf: list[bytes] = []
            held = 0
            error: BaseException | None = None
            try:
                async with self.client.request("GET", self._path("blobs", desc.digest), scopes=self._pull(),
                                               headers=headers, ok=(200, 206), what=what,
                                               not_found=BlobUnknown) as resp:
                    skip = offset if resp.status == 200 else 0
                    _read_big(resp)
                    if resp.status == 206 and not (resp.headers.get("Content-Range") or "").startswith(
                            f"bytes {offset}-"):
                        raise RegistryError(f"{what}: asked for bytes {offset}-, got "
                                            f"{resp.headers.get('Content-Range')!r}")
                    while True:
                        try:
                            data = await resp.content.readany()
                        except NETWORK_ERRORS as e:
                            error = e
                            break
                        if not data:
                            break
                        if skip:
                            if len(data) <= skip:
                                skip -= len(data)
                                continue
                            data = data[skip:]
                            skip = 0
                        if v is None:   # the consumer verifies: pass every piece on as it comes
                            offset += len(data)
                            yield data
                            continue
                        # hash ~READ_CHUNK at a time in a worker (one hand-over per batch), then pass
                        # the pieces on as they are: never joined, so no byte is copied again
                        buf.append(data)
                        held += len(data)
                        if held >= READ_CHUNK:
                            await asyncio.to_thread(v.update_all, buf)
                            offset += held
                            for piece in buf:
                                yield piece
                            buf, held = [], 0
            except NETWORK_ERRORS as e:
                error = e
            if buf:  # bytes that did arrive are good bytes: pass them on, resume after them
                if v is not None:
                    await asyncio.to_thread(v.update_all, buf)
                offset += held
                for piece in buf:
                    yield piece
            if error is None and offset < desc.size:
                error = aiohttp.ClientPayloadError(f"stream ended at byte {offset} of {desc.size}")
            if error is None:
                break
            failures += 1
            if failures > max(policy.times, 1) + 2:
                raise TransportError(f"{what}: connection lost at byte {offset} of {desc.size} "
                                     f"after {failures} tries: {_describe(error)}") from None
            self.resumes += 1
            log.debug("%s: %s at byte %d; resuming", what, _describe(error), offset)
            await asyncio.sleep(backoff_delay(policy, min(failures - 1, 4)) / 4)
        if v is not None:
            v.verify()

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes],
                       opts: Options = DEFAULT_OPTIONS) -> None:
        location, min_chunk = await self._start_upload()
        mode = self.upload_mode
        if mode == "auto":
            mode = "bytes" if desc.size <= SMALL_BLOB else "monolithic"
        if mode == "bytes":
            data = await _collect_verified(desc, chunks)
            await self._finish_upload(location, desc, data)
        elif mode == "monolithic":
            await self._finish_upload(location, desc, _held_back(desc, chunks),
                                      {"Content-Length": str(desc.size), "Content-Type": "application/octet-stream"})
        elif mode == "streamed":
            location = await self._patch(location, desc, _held_back(desc, chunks), None)
            await self._finish_upload(location, desc, None)
        else:
            size = max(self.chunk_size, min_chunk)
            start = 0
            async for piece in _rechunk(_held_back(desc, chunks), size):
                location = await self._patch_resuming(location, desc, piece, start)
                start += len(piece)
            await self._finish_upload(location, desc, None)

    async def _start_upload(self, params: dict[str, str] | None = None,
                            scopes: tuple[Scope, ...] | None = None) -> tuple[URL, int]:
        what = f"{self.location}: start upload"
        async with self.client.request("POST", self._path("blobs", "uploads/"), scopes=scopes or self._push(),
                                       params=params, ok=(201, 202), what=what,
                                       headers={"Content-Length": "0"}) as resp:
            return await self._location(resp, what), (parse_uint(resp.headers.get("OCI-Chunk-Min-Length")) or 0)

    async def _location(self, resp: aiohttp.ClientResponse, what: str) -> URL:
        loc = resp.headers.get("Location")
        if not loc:
            if resp.status == 201:
                return URL()
            raise BlobUploadInvalid(f"{what}: the registry answered {resp.status} without a Location")
        return resp.url.join(URL(loc, encoded=True))

    async def _patch(self, location: URL, desc: Descriptor, body: Any, start: int | None) -> URL:
        headers = {"Content-Type": "application/octet-stream"}
        if start is not None:
            headers["Content-Range"] = f"{start}-{start + len(body) - 1}"
            headers["Content-Length"] = str(len(body))
        what = f"{self.location}: upload of {desc.digest}"
        async with self.client.request("PATCH", location, scopes=self._push(), data=body, headers=headers,
                                       ok=(202, 204), what=what, retry=False) as resp:
            rng = resp.headers.get("Range")
            if start is not None and rng:
                end = rng.split("-")[-1]
                reported = parse_uint(end)
                if reported is not None and reported != start + len(body) - 1:
                    raise BlobUploadInvalid(f"{what}: the registry has bytes {rng}, expected up to "
                                            f"{start + len(body) - 1}")
            return await self._location(resp, what) if resp.headers.get("Location") else location

    async def _patch_resuming(self, location: URL, desc: Descriptor, piece: bytes, start: int) -> URL:
        """PATCH one chunk; when the connection breaks off, ask the registry how far the upload got
        (``GET`` on the upload URL, its ``Range``) and send the rest of the chunk from there."""
        attempt = 0
        while True:
            try:
                return await self._patch(location, desc, piece, start)
            except TransportError:
                if attempt >= self.client.retry.times:
                    raise
                await asyncio.sleep(backoff_delay(self.client.retry, attempt))
                attempt += 1
                offset, location = await self._upload_offset(location, desc)
                if not start <= offset <= start + len(piece):
                    raise BlobUploadInvalid(f"{self.location}: upload of {desc.digest}: the registry has {offset} "
                                            f"bytes, this chunk is bytes {start}-{start + len(piece) - 1}") from None
                piece, start = piece[offset - start:], offset
                self.upload_resumes += 1
                self.upload_bytes_resent += len(piece)
                if not piece:
                    return location

    async def _upload_offset(self, location: URL, desc: Descriptor) -> tuple[int, URL]:
        """How many bytes an upload holds (its ``Range: 0-<last>``; none: 0), and its current URL."""
        what = f"{self.location}: status of the upload of {desc.digest}"
        async with self.client.request("GET", location, scopes=self._push(), ok=(204, 200), what=what,
                                       not_found=BlobUploadUnknown) as resp:
            rng = resp.headers.get("Range")
            nxt = await self._location(resp, what) if resp.headers.get("Location") else location
        last = parse_uint(rng.split("-")[-1]) if rng and "-" in rng else None
        # "0-0" is what distribution says for an empty upload too: taken as empty (a chunk cut after
        # exactly one byte is then refused by the registry as a bad range, not stored twice)
        return (0 if not last else last + 1), nxt

    async def _finish_upload(self, location: URL, desc: Descriptor, body: Any,
                             headers: dict[str, str] | None = None) -> None:
        url = location.update_query({"digest": str(desc.digest)})
        what = f"{self.location}: upload of {desc.digest}"
        hdrs = dict(headers or {})
        if body is None:
            hdrs.setdefault("Content-Length", "0")
        elif isinstance(body, (bytes, bytearray)):
            hdrs.setdefault("Content-Type", "application/octet-stream")
        async with self.client.request("PUT", url, scopes=self._push(), data=body, headers=hdrs,
                                       ok=(201, 204), what=what, retry=isinstance(body, (bytes, type(None)))) as resp:
            got = resp.headers.get("Docker-Content-Digest")
        if got and is_digest(got) and got != desc.digest:
            raise DigestMismatch(desc.digest, got, what=f"{what}: the registry stored")

    async def link_blob_from(self, source: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> LinkResult:
        """Mount a blob from another repository of the same registry (``mount=`` and ``from=``)."""
        if not isinstance(source, RegistryStore) or source.host != self.host or \
                source.repository == self.repository:
            return LinkResult.NOT_LINKED
        scopes = (*self._push(), repository_scope(source.repository, "pull"))
        try:
            async with self.client.request("POST", self._path("blobs", "uploads/"), scopes=scopes,
                                           params={"mount": str(desc.digest), "from": source.repository},
                                           ok=(201, 202), headers={"Content-Length": "0"},
                                           what=f"{self.location}: mount {desc.digest}") as resp:
                status = resp.status
                loc = resp.headers.get("Location")
                url = resp.url
        except (Unsupported, RegistryError):
            return LinkResult.NOT_LINKED
        if status == 201:
            return LinkResult.MOUNTED
        if loc:  # the registry opened an upload instead: cancel it, stream the blob
            try:
                async with self.client.request("DELETE", url.join(URL(loc, encoded=True)), scopes=self._push(),
                                               ok=(200, 202, 204, 404)):
                    pass
            except Exception:  # noqa: BLE001 - cancelling is a courtesy
                pass
        return LinkResult.NOT_LINKED

    async def close(self) -> None:
        if self.own_client:
            await self.client.close()

    async def abort(self) -> None:
        await self.close()


def _read_big(resp: aiohttp.ClientResponse) -> None:
    """Let the transport take everything the socket holds in one read (asyncio reads 256 KiB at most),
    so a busy loop catches up in fewer wake-ups."""
    conn = resp.connection
    tr = conn.transport if conn is not None else None
    if tr is not None and hasattr(tr, "max_size"):
        tr.max_size = RECV_SIZE


async def _collect_verified(desc: Descriptor, chunks: AsyncIterator[bytes]) -> bytes:
    v = Verifier(desc.digest, desc.size)
    parts = []
    async for c in chunks:
        v.update(c)
        parts.append(c)
    v.verify()
    return b"".join(parts)


async def _held_back(desc: Descriptor, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield the chunks, hashing them in a worker thread ~READ_CHUNK at a time, keeping the last
    batch back until the digest checks out (so a wrong blob never completes an upload)."""
    v = Verifier(desc.digest, desc.size)
    held: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    async for c in chunks:
        if not c:
            continue
        batch.append(c)
        size += len(c)
        if size >= READ_CHUNK:
            await asyncio.to_thread(v.update_all, batch)
            for piece in held:
                yield piece
            held, batch, size = batch, [], 0
    if batch:
        await asyncio.to_thread(v.update_all, batch)
    v.verify()
    for piece in held:
        yield piece
    for piece in batch:
        yield piece


async def _rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    buf = bytearray()
    async for c in chunks:
        buf += c
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


__all__ = ["RegistryStore", "UPLOAD_MODES"]
