"""Streaming one object into S3: a single PUT when it fits in a part, else a multipart upload
whose parts go through three reused buffers (memory per upload: three parts, whatever the size)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Awaitable, Callable

from ...digest import Digester

log = logging.getLogger("ocikit.server.s3")

IN_FLIGHT = 2
"""Parts of one upload on their way to S3 at once (memory per upload: IN_FLIGHT + 1 parts)."""

Call = Callable[..., Awaitable[Any]]
"""``call(operation, **params)``: one S3 request on the driver's bucket (errors already mapped)."""


async def write_object(call: Call, full: str, chunks: AsyncIterator[bytes], digester: Digester | None,
                       part_size: int) -> int:
    """Stream ``chunks`` into ``full``: one PUT if they fit in a part, else a multipart upload.

    Chunks are gathered in a list until a part's worth has come (most blobs are smaller: one
    PUT). Then IN_FLIGHT + 1 ``part_size`` buffers are used in turn: one fills while the others
    are being sent, so a replica holds at most three parts per upload and reuses them (no
    allocation per part). Hashing runs in a worker thread. On any error the multipart upload is aborted:
    nothing becomes visible.
    """
    loop = asyncio.get_running_loop()
    pending: list[bytes] = []
    filled = total = number = 0
    upload_id: str | None = None
    parts: list[dict[str, Any]] = []
    sending: list[asyncio.Task[None]] = []
    buffers: list[bytearray] = []
    current: bytearray | None = None

    async def send(n: int, data: bytearray) -> None:
        r = await call("upload_part", Key=full, UploadId=upload_id, PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})

    async def flush(data: bytearray) -> None:
        """Hash a full part and start sending it, once fewer than IN_FLIGHT parts are on their way."""
        nonlocal upload_id, number, total
        if digester is not None:
            await loop.run_in_executor(None, digester.update, data)
        total += len(data)
        if upload_id is None:
            upload_id = (await call("create_multipart_upload", Key=full))["UploadId"]
        if len(sending) >= IN_FLIGHT:
            await sending.pop(0)
        number += 1
        sending.append(asyncio.ensure_future(send(number, data)))

    def next_buffer() -> bytearray:
        """A free buffer: a new one for each of the first IN_FLIGHT + 1 parts, then the one of the
        part IN_FLIGHT + 1 before (``flush`` waited for it to be sent)."""
        if len(buffers) <= IN_FLIGHT:
            buffers.append(bytearray(part_size))
            return buffers[-1]
        return buffers[number % (IN_FLIGHT + 1)]

    async def feed(piece: bytes) -> None:
        nonlocal current, filled
        view = memoryview(piece)
        while view:
            n = min(len(view), part_size - filled)
            current[filled:filled + n] = view[:n]  # type: ignore[index]
            filled += n
            view = view[n:]
            if filled == part_size:
                await flush(current)  # type: ignore[arg-type]
                current, filled = next_buffer(), 0

    try:
        async for chunk in chunks:
            if current is not None:
                await feed(chunk)
                continue
            pending.append(chunk)
            filled += len(chunk)
            if filled >= part_size:  # a large object: from now on, parts
                current, filled = next_buffer(), 0
                while pending:
                    await feed(pending.pop(0))
        if current is None:  # everything fitted in one part: a single PUT
            data = b"".join(pending)
            if digester is not None and data:
                await loop.run_in_executor(None, digester.update, data)
            await call("put_object", Key=full, Body=data)
            return len(data)
        while sending:
            await sending.pop(0)
        if filled:
            last = current[:filled]
            if digester is not None:
                await loop.run_in_executor(None, digester.update, last)
            total += filled
            await send(number + 1, last)
        parts.sort(key=lambda p: p["PartNumber"])
        await call("complete_multipart_upload", Key=full, UploadId=upload_id,
                         MultipartUpload={"Parts": parts})
        return total
    except BaseException:
        for task in sending:
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - the original error is the one to report
                pass
        if upload_id is not None:
            try:
                await call("abort_multipart_upload", Key=full, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - gc aborts what is left
                log.warning("could not abort multipart upload of %s", full)
        raise
