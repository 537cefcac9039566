"""The S3 storage driver: the registry's keys as objects in one bucket, under one key prefix.

Any number of replicas may share the bucket: nothing lives in a replica's memory that another
replica needs. Layout below the prefix, besides the registry's own keys (:mod:`.registry`)::

    uploads/<id>                 an upload session: JSON info (repository, start, committing digest)
    data/<id>/<offset:020d>      the bytes a session received, one object per append (PATCH), each
                                 streamed as a multipart upload of ``part_size`` parts
    data/<id>/joined             the appends of a chunked session joined into one object at commit
    blobs/<alg>/<hh>/<hex>       a blob: an empty *pointer* object whose metadata names its data
                                 object and size (``x-amz-meta-ocikit-data``, ``-size``), or a
                                 manifest's bytes written directly

Committing a blob never copies it: the data object an upload wrote stays where it is and the
content-addressed key becomes a pointer to it, created with ``If-None-Match: *`` so two replicas
committing the same digest leave one pointer (the loser drops its data). Before the pointer the
session records the digest it is committing, so a gc that finds the session abandoned can tell
whether its data became a blob. Nothing under ``blobs/`` appears before its digest was verified.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

from ...core.digest import Digester
from ...core.errors import StorageUnavailable, UsageError
from .base import StorageDriver
from . import s3intents, s3relay
from .s3parts import write_object
from .s3settings import S3Settings

log = logging.getLogger("ocikit.server.s3")
for _name in ("aiobotocore.credentials", "botocore.credentials"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # "Found credentials in ..." at every start

READ_CHUNK = 1 << 20
"""Bytes asked of an S3 response body per read (its aiohttp buffer is raised to match)."""
SEGMENT = 64 << 20
"""A streamed blob GET larger than this is read as ranged GETs of this size, several in flight."""
PARALLEL = 2
"""Ranged GETs in flight for one streamed blob GET (the first is written while the others fill)."""
SEGMENT_AHEAD = 8
"""Chunks a segment holds ahead of the writer (memory per GET: PARALLEL x SEGMENT_AHEAD x READ_CHUNK)."""
RELAY_SEGMENT = 32 << 20
"""Range of one GET when a blob is relayed in the kernel (:mod:`.s3relay`)."""
RELAY_PARALLEL = 3
"""Ranged GETs in flight for one relayed blob GET."""
RELAY_TIMEOUT = 60.0
"""Seconds a relay may make no progress (neither S3 nor the client moving) before it gives up."""
META_DATA = "ocikit-data"
META_SIZE = "ocikit-size"


OPERATIONS: dict[str, Callable[[Any], Callable[..., Awaitable[Any]]]] = {
    "head_bucket": lambda c: c.head_bucket,
    "head_object": lambda c: c.head_object,
    "get_object": lambda c: c.get_object,
    "put_object": lambda c: c.put_object,
    "copy_object": lambda c: c.copy_object,
    "delete_object": lambda c: c.delete_object,
    "delete_objects": lambda c: c.delete_objects,
    "list_objects_v2": lambda c: c.list_objects_v2,
    "create_multipart_upload": lambda c: c.create_multipart_upload,
    "upload_part": lambda c: c.upload_part,
    "complete_multipart_upload": lambda c: c.complete_multipart_upload,
    "abort_multipart_upload": lambda c: c.abort_multipart_upload,
    "list_multipart_uploads": lambda c: c.list_multipart_uploads,
}
"""Every S3 operation the driver uses, by name (what :meth:`S3Driver._call` may be asked for)."""


def _code(e: Exception) -> tuple[str, int]:
    resp = getattr(e, "response", None) or {}
    return str(resp.get("Error", {}).get("Code", "")), int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _missing(e: Exception) -> bool:
    code, status = _code(e)
    return status == 404 or code in ("NoSuchKey", "404", "NotFound")


def _precondition(e: Exception) -> bool:
    code, status = _code(e)
    return status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")


def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    """An S3 response body in pieces of up to READ_CHUNK bytes."""
    # aiohttp pauses the socket at 2 x 64 KiB buffered: reads of READ_CHUNK would come back as
    # ~128 KiB pieces, each one more write to the client and one more pause/resume of S3's socket.
    # aiobotocore's body wraps aiohttp's response; a library without these is simply not tuned.
    try:
        body._raw_stream.content.set_read_chunk_size(READ_CHUNK)
    except AttributeError:
        pass
    return body.iter_chunks(READ_CHUNK)  # type: ignore[no-any-return]


class S3Driver(StorageDriver):
    """Keys as objects in ``settings.bucket`` under ``settings.prefix``; see the module docstring."""

    catalog_index = True

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.prefix = settings.key_prefix
        self._client: Any = None
        self._ctx: Any = None
        self._lock = asyncio.Lock()
        self.guard: Callable[[], None] | None = None
        """Called before every deletion (a gc checks that it still holds its lease)."""

    def describe(self) -> str:
        return self.settings.describe()

    # --- the client ------------------------------------------------------------------

    async def client(self) -> Any:
        """The aiobotocore client, created on first use inside the running loop."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    from aiobotocore.session import AioSession
                    from botocore.config import Config
                except ImportError:
                    raise UsageError("the S3 driver needs aiobotocore: pip install 'ocikit[s3]'") from None

                s = self.settings
                session = AioSession(profile=s.profile) if s.profile else AioSession()
                cfg = Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path" if s.path_style else "virtual",
                        # our own sha256 covers every byte; signing the payload would hash it again
                        "payload_signing_enabled": False},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=3, read_timeout=60, max_pool_connections=64)
                kw: dict[str, Any] = {"region_name": s.region, "config": cfg}
                if s.endpoint:
                    kw["endpoint_url"] = s.endpoint
                if s.access_key and s.secret_key:
                    kw["aws_access_key_id"], kw["aws_secret_access_key"] = s.access_key, s.secret_key
                if s.ca_bundle:
                    kw["verify"] = s.ca_bundle
                elif s.endpoint and s.endpoint.startswith("http://"):
                    # plain HTTP: AWS_CA_BUNDLE (set machine-wide here) has nothing to verify; never
                    # let a stale or unreadable bundle path fail a request that uses no TLS
                    kw["verify"] = False
                self._ctx = session.create_client("s3", **kw)
                self._client = await self._ctx.__aenter__()
        return self._client

    async def close(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx, self._client = self._ctx, None, None
            await ctx.__aexit__(None, None, None)

    def _k(self, key: str) -> str:
        return self.prefix + key

    async def _call(self, op: str, **kw: Any) -> Any:
        """One S3 request; transport failures, 5xx and refusals become :class:`StorageUnavailable`."""
        from botocore.exceptions import BotoCoreError, ClientError

        c = await self.client()
        try:
            return await OPERATIONS[op](c)(Bucket=self.settings.bucket, **kw)
        except ClientError as e:
            code, status = _code(e)
            if status >= 500 or status in (401, 403) or code in ("SlowDown", "NoSuchBucket", "AccessDenied",
                                                               "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StorageUnavailable(f"storage {self.describe()}: {op}: {code or status}") from None
            raise
        except (BotoCoreError, OSError, asyncio.TimeoutError) as e:
            raise StorageUnavailable(f"storage {self.describe()}: {op}: {type(e).__name__}: {e}") from None
        except Exception as e:  # aiohttp's ClientError is not an OSError
            if type(e).__module__.startswith("aiohttp"):
                raise StorageUnavailable(f"storage {self.describe()}: {op}: {type(e).__name__}: {e}") from None
            raise

    async def check(self) -> None:
        """HEAD the bucket: wrong credentials and a missing bucket are one-line errors at start."""
        from botocore.exceptions import ClientError

        c = await self.client()
        try:
            await c.head_bucket(Bucket=self.settings.bucket)
        except ClientError as e:
            code, status = _code(e)
            what = {403: "access denied (check the credentials)", 404: "no such bucket",
                    400: "bad request (check the region and the credentials)"}.get(status, code or str(status))
            raise UsageError(f"storage {self.describe()}: {what}") from None
        except Exception as e:  # noqa: BLE001 - unreachable endpoint, bad URL, no credentials
            raise UsageError(f"storage {self.describe()}: {type(e).__name__}: {e}".splitlines()[0]) from None

    # --- small objects ---------------------------------------------------------------

    async def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError
        try:
            return await self._call("head_object", Key=self._k(key))  # type: ignore[no-any-return]
        except ClientError as e:
            if _missing(e):
                return None
            raise

    async def _read(self, full: str, rng: str | None = None) -> Any:
        from botocore.exceptions import ClientError
        try:
            return await self._call("get_object", Key=full, **({"Range": rng} if rng else {}))
        except ClientError as e:
            if _missing(e) or _code(e)[1] == 416:
                return None
            raise

    async def get(self, key: str) -> bytes | None:
        r = await self._read(self._k(key))
        if r is None:
            return None
        async with r["Body"] as body:
            data: bytes = await body.read()
        meta = r.get("Metadata") or {}
        if META_DATA in meta:
            out = b"".join([c async for c in self.read_chunks(key)])
            return out
        return data

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        await self._call("put_object", Key=self._k(key), Body=data)

    async def size(self, key: str) -> int | None:
        h = await self._head(key)
        if h is None:
            return None
        meta = h.get("Metadata") or {}
        return int(meta[META_SIZE]) if META_SIZE in meta else int(h["ContentLength"])

    async def mtime(self, key: str) -> float | None:
        h = await self._head(key)
        return h["LastModified"].timestamp() if h is not None else None

    async def touch(self, key: str) -> bool:
        """Copy the object onto itself (an empty pointer or a small manifest: cheap) for a new mtime."""
        h = await self._head(key)
        if h is None:
            return False
        from botocore.exceptions import ClientError
        try:
            await self._call("copy_object", Key=self._k(key), MetadataDirective="REPLACE",
                             Metadata={**(h.get("Metadata") or {}), "ocikit-touched": str(int(time.time()))},
                             CopySource={"Bucket": self.settings.bucket, "Key": self._k(key)})
        except ClientError as e:
            if _missing(e):
                return False
            raise
        return await s3intents.outlasted_gc(self, key)

    async def delete_if_older(self, key: str, cutoff: float) -> bool:
        """A gc's deletion, announced to writers first (:mod:`.s3intents`)."""
        return await s3intents.delete_if_older(self, key, cutoff)

    async def delete(self, key: str) -> bool:
        if self.guard is not None:
            self.guard()
        h = await self._head(key)
        if h is None:
            return False
        await self._call("delete_object", Key=self._k(key))
        data = (h.get("Metadata") or {}).get(META_DATA)
        if data:  # a blob pointer owns its upload's data directory
            await self.delete_tree(data.rsplit("/", 1)[0])
        return True

    async def _pages(self, prefix: str, delimiter: str | None, after: str | None = None,
                     limit: int | None = None) -> AsyncIterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Prefix": prefix, "MaxKeys": min(limit, 1000) if limit else 1000}
            if delimiter:
                kw["Delimiter"] = delimiter
            if token:
                kw["ContinuationToken"] = token
            elif after:
                kw["StartAfter"] = after
            page = await self._call("list_objects_v2", **kw)
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    async def _objects(self, prefix: str) -> list[dict[str, Any]]:
        """Every object below ``prefix`` (full keys), with Size and LastModified."""
        out: list[dict[str, Any]] = []
        async for page in self._pages(self._k(prefix), None):
            out.extend(page.get("Contents") or [])
        return out

    async def list(self, prefix: str) -> list[str]:
        return await self.list_after(prefix, None, None)

    async def list_after(self, prefix: str, after: str | None, limit: int | None) -> list[str]:
        """A delimiter listing: one request per 1000 names, starting right after ``after``."""
        base = self._k(prefix.rstrip("/") + "/")
        names: set[str] = set()
        async for page in self._pages(base, "/", base + after if after else None, limit):
            for p in page.get("CommonPrefixes") or []:
                names.add(p["Prefix"][len(base):].rstrip("/"))
            for o in page.get("Contents") or []:
                names.add(o["Key"][len(base):])
            if limit is not None and len(names) >= limit:
                break
        out = sorted(n for n in names if n and (after is None or n > after))
        return out if limit is None else out[:limit]

    async def list_keys(self, prefix: str, after: str | None, limit: int | None) -> list[str]:
        base = self._k(prefix.rstrip("/") + "/")
        out: list[str] = []
        async for page in self._pages(base, None, base + after if after else None, limit):
            out.extend(o["Key"][len(base):] for o in page.get("Contents") or [])
            if limit is not None and len(out) >= limit:
                break
        return out if limit is None else out[:limit]

    async def is_dir(self, prefix: str) -> bool:
        page = await self._call("list_objects_v2", Prefix=self._k(prefix.rstrip("/") + "/"), MaxKeys=1)
        return bool(page.get("KeyCount") or page.get("Contents"))

    async def delete_tree(self, prefix: str) -> None:
        if self.guard is not None:
            self.guard()
        keys = [o["Key"] for o in await self._objects(prefix.rstrip("/") + "/")]
        for i in range(0, len(keys), 1000):
            await self._call("delete_objects", Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                      "Quiet": True})

    # --- large objects ---------------------------------------------------------------

    def local_path(self, key: str) -> str | None:
        return None

    async def _resolve(self, key: str) -> tuple[str, int] | None:
        """The full key holding the bytes of ``key`` (following a blob pointer) and their size."""
        h = await self._head(key)
        if h is None:
            return None
        meta = h.get("Metadata") or {}
        if META_DATA in meta:
            return self._k(meta[META_DATA]), int(meta[META_SIZE])
        return self._k(key), int(h["ContentLength"])

    async def read_chunks(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        where = await self._resolve(key)
        if where is None:
            raise FileNotFoundError(key)
        full, size = where
        end = size if length is None else min(size, offset + length)
        if end <= offset:
            return
        # ranged GETs of SEGMENT bytes, PARALLEL in flight, each filling its own bounded queue while
        # the caller writes the earliest one: one S3 stream is latency-bound, several are not
        spans = [(o, min(end, o + SEGMENT)) for o in range(offset, end, SEGMENT)]
        tasks: list[asyncio.Task[None]] = []
        queues: list[asyncio.Queue[bytes | Exception | None]] = []

        def start(i: int) -> None:
            q: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(SEGMENT_AHEAD)
            queues.append(q)
            tasks.append(asyncio.ensure_future(self._pump(key, full, *spans[i], q)))

        try:
            for i in range(len(spans)):
                while len(tasks) < min(len(spans), i + PARALLEL):
                    start(len(tasks))
                q = queues[i]
                while (item := await q.get()) is not None:
                    if isinstance(item, Exception):
                        raise item
                    yield item
        finally:
            for t in tasks:
                t.cancel()

    async def _pump(self, key: str, full: str, start: int, stop: int,
                    queue: asyncio.Queue[bytes | Exception | None]) -> None:
        """Bytes ``start`` to ``stop`` of the object ``full`` into ``queue``, then ``None`` (or the error)."""
        try:
            r = await self._read(full, f"bytes={start}-{stop - 1}")
            if r is None:
                raise FileNotFoundError(key)
            async with r["Body"] as body:
                async for chunk in _body_chunks(body):
                    await queue.put(chunk)
            await queue.put(None)
        except Exception as e:  # noqa: BLE001 - handed to the reader, which raises it
            await queue.put(e)

    async def relay(self, key: str, offset: int, length: int, sock_fd: int) -> bool:
        """Splice the bytes from S3 into the client socket (:mod:`.s3relay`) when S3 is plain HTTP."""
        if not s3relay.available() or length <= 0 or not (self.settings.endpoint or "").startswith("http://"):
            return False
        where = await self._resolve(key)
        if where is None:
            return False
        c = await self.client()
        url = await c.generate_presigned_url("get_object", Params={"Bucket": self.settings.bucket, "Key": where[0]},
                                             ExpiresIn=3600)
        target = s3relay.Target.parse(url)
        if target is None:
            return False
        end = offset + length
        spans = [(o, min(end, o + RELAY_SEGMENT)) for o in range(offset, end, RELAY_SEGMENT)]
        await s3relay.relay_async(target, spans, sock_fd, RELAY_PARALLEL, RELAY_TIMEOUT)
        return True

    async def redirect_url(self, key: str) -> str | None:
        if self.settings.redirect != "presigned":
            return None
        where = await self._resolve(key)
        if where is None:
            return None
        c = await self.client()
        url: str = await c.generate_presigned_url(
            "get_object", Params={"Bucket": self.settings.bucket, "Key": where[0]},
            ExpiresIn=self.settings.redirect_expiry)
        return url

    # --- conditional writes (leases) -------------------------------------------------

    async def create_if_absent(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> bool:
        """``If-None-Match: *``: ``False`` when ``key`` already exists."""
        from botocore.exceptions import ClientError
        try:
            await self._call("put_object", Key=self._k(key), Body=data, IfNoneMatch="*", Metadata=metadata or {})
        except ClientError as e:
            if _precondition(e):
                return False
            raise
        return True

    async def replace_if(self, key: str, data: bytes, etag: str) -> str | None:
        """``If-Match: etag``: the new ETag, or ``None`` when someone else changed ``key`` first."""
        from botocore.exceptions import ClientError
        try:
            r = await self._call("put_object", Key=self._k(key), Body=data, IfMatch=etag)
        except ClientError as e:
            if _precondition(e) or _missing(e):
                return None
            raise
        return str(r["ETag"])

    async def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        r = await self._read(self._k(key))
        if r is None:
            return None
        async with r["Body"] as body:
            return await body.read(), str(r["ETag"])

    # --- upload spools ---------------------------------------------------------------

    @staticmethod
    def _info_key(upload_id: str) -> str:
        return f"uploads/{upload_id}"

    async def spool_create(self, upload_id: str, info: bytes) -> None:
        await self.put(self._info_key(upload_id), info)

    async def spool_info(self, upload_id: str) -> bytes | None:
        return await self.get(self._info_key(upload_id))

    async def _segments(self, upload_id: str) -> list[tuple[int, str, int]]:
        """``(offset, full key, size)`` of each append, in order (``joined`` excluded)."""
        out = []
        for o in await self._objects(f"data/{upload_id}/"):
            name = o["Key"].rsplit("/", 1)[1]
            if name.isdigit():
                out.append((int(name), o["Key"], int(o["Size"])))
        return sorted(out)

    async def spool_size(self, upload_id: str) -> int | None:
        """Bytes received: one listing (the registry reads the session's info first, so a missing
        session is already known; a session without data has size 0)."""
        size = 0
        for offset, _, n in await self._segments(upload_id):
            if offset != size:  # never written so; a gap means a foreign object: refuse to guess
                raise StorageUnavailable(f"upload {upload_id}: data segments are not contiguous at {size}")
            size += n
        return size

    async def spool_mtime(self, upload_id: str) -> float | None:
        h = await self._head(self._info_key(upload_id))
        if h is None:
            return None
        times = [h["LastModified"].timestamp()]
        times += [o["LastModified"].timestamp() for o in await self._objects(f"data/{upload_id}/")]
        return max(times)

    async def spool_append(self, upload_id: str, offset: int, chunks: AsyncIterator[bytes],
                           digester: Digester | None) -> int:
        key = self._k(f"data/{upload_id}/{offset:020d}")
        n = await self._write_object(key, chunks, digester)
        if n == 0:
            await self._call("delete_object", Key=key)
        return offset + n

    async def _write_object(self, full: str, chunks: AsyncIterator[bytes], digester: Digester | None) -> int:
        """Stream ``chunks`` into the object ``full`` (see :func:`.s3parts.write_object`)."""
        return await write_object(self._call, full, chunks, digester, self.settings.part_size)

    async def spool_chunks(self, upload_id: str) -> AsyncIterator[bytes]:
        for _, full, _ in await self._segments(upload_id):
            r = await self._read(full)
            if r is None:
                raise FileNotFoundError(full)
            async with r["Body"] as body:
                async for chunk in _body_chunks(body):
                    yield chunk

    async def spool_commit(self, upload_id: str, key: str) -> bool:
        """Point ``key`` at the session's data (joined into one object first if it came in appends).

        ``True`` when this created ``key`` (fresh: nothing to touch), ``False`` when it was there.
        """
        if await self.touch(key):  # content-addressed: the same bytes are there; refreshed for gc's grace
            await self.spool_delete(upload_id)
            return False
        segments = await self._segments(upload_id)
        size = sum(s[2] for s in segments)
        if len(segments) == 1:
            data_key = segments[0][1]
        else:
            data_key = self._k(f"data/{upload_id}/joined")
            await self._write_object(data_key, self.spool_chunks(upload_id), None)
        # from here on the session takes no more data (it names no repository) and a gc that finds
        # it abandoned checks whether ``key`` points at its data before removing anything
        await self.put(self._info_key(upload_id), json.dumps({"committing": key}).encode())
        if len(segments) > 1:
            for _, full, _ in segments:
                await self._call("delete_object", Key=full)
        if size == 0:
            won = await self.create_if_absent(key, b"")
            await self.delete_tree(f"data/{upload_id}")
        else:
            won = await self.create_if_absent(key, b"", {META_DATA: data_key[len(self.prefix):],
                                                          META_SIZE: str(size)})
            if not won:
                await self.delete_tree(f"data/{upload_id}")
        await self._call("delete_object", Key=self._k(self._info_key(upload_id)))
        return won

    async def spool_delete(self, upload_id: str) -> None:
        """Drop a session; its data too, unless a crash after its commit left the data in use."""
        raw = await self.spool_info(upload_id)
        committing = json.loads(raw).get("committing") if raw else None
        if committing:
            h = await self._head(committing)
            if h is not None and (h.get("Metadata") or {}).get(META_DATA, "").startswith(f"data/{upload_id}/"):
                await self._call("delete_object", Key=self._k(self._info_key(upload_id)))
                return
        await self.delete_tree(f"data/{upload_id}")
        await self._call("delete_object", Key=self._k(self._info_key(upload_id)))

    async def spool_list(self) -> list[str]:
        return await self.list("uploads")

    async def purge_incomplete(self, before: float) -> list[str]:
        """Abort multipart uploads (under our prefix) a killed replica left, started before ``before``."""
        out = []
        marker: dict[str, str] = {}
        while True:
            page = await self._call("list_multipart_uploads", Prefix=self.prefix, **marker)
            for u in page.get("Uploads") or []:
                if u["Initiated"].timestamp() < before:
                    await self._call("abort_multipart_upload", Key=u["Key"], UploadId=u["UploadId"])
                    out.append(u["Key"][len(self.prefix):])
            if not page.get("IsTruncated"):
                return out
            marker = {"KeyMarker": page.get("NextKeyMarker", ""), "UploadIdMarker": page.get("NextUploadIdMarker", "")}
