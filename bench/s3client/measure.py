"""Measure two S3 clients on a running S3 endpoint: 256 MiB PUT/GET, small-object latency, import, RSS.

usage: python bench/s3client/measure.py aiobotocore|obstore ENDPOINT BUCKET
(credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). One client per process, so the
import time and peak RSS are the client's own.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time

SIZE = 256 * 1024 * 1024
PART = 16 * 1024 * 1024
SMALL = 200


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def chunks():
    block = os.urandom(1024 * 1024)
    for _ in range(SIZE // len(block)):
        yield block


async def timed_get(out: dict[str, float], stream) -> None:
    """Read a GET's body (an async iterator of chunks) to the end: GET MB/s into ``out``."""
    t = time.perf_counter()
    got = 0
    async for chunk in stream:
        got += len(chunk)
    assert got == SIZE
    out["get_MBps"] = SIZE / 1e6 / (time.perf_counter() - t)


async def small_latency(out: dict[str, float], put_get) -> None:
    """p50/p99 of ``put_get(i)`` (a 300-byte PUT and its GET) over SMALL objects."""
    lat = []
    for i in range(SMALL):
        t = time.perf_counter()
        await put_get(i)
        lat.append(time.perf_counter() - t)
    lat.sort()
    out["small_put_get_ms_p50"] = lat[len(lat) // 2] * 1e3
    out["small_put_get_ms_p99"] = lat[int(len(lat) * 0.99)] * 1e3


async def run_aiobotocore(endpoint: str, bucket: str) -> dict[str, float]:
    t = time.perf_counter()
    from aiobotocore.session import get_session
    from botocore.config import Config
    imp = time.perf_counter() - t
    cfg = Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                 request_checksum_calculation="when_required", response_checksum_validation="when_required",
                 max_pool_connections=16)
    out = {"import_s": imp}
    async with get_session().create_client("s3", endpoint_url=endpoint, region_name="us-east-1", config=cfg,
                                           verify=False) as c:
        t = time.perf_counter()
        mp = await c.create_multipart_upload(Bucket=bucket, Key="big")
        parts, buf, n = [], bytearray(), 1
        async for b in chunks():
            buf += b
            if len(buf) >= PART:
                r = await c.upload_part(Bucket=bucket, Key="big", UploadId=mp["UploadId"], PartNumber=n, Body=bytes(buf))
                parts.append({"PartNumber": n, "ETag": r["ETag"]}); n += 1; buf = bytearray()
        await c.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=mp["UploadId"],
                                          MultipartUpload={"Parts": parts})
        out["put_MBps"] = SIZE / 1e6 / (time.perf_counter() - t)
        r = await c.get_object(Bucket=bucket, Key="big")
        await timed_get(out, r["Body"].iter_chunks(1024 * 1024))

        async def put_get(i: int) -> None:
            await c.put_object(Bucket=bucket, Key=f"small/{i}", Body=b"x" * 300)
            await (await c.get_object(Bucket=bucket, Key=f"small/{i}"))["Body"].read()

        await small_latency(out, put_get)
        t = time.perf_counter()
        p = c.get_paginator("list_objects_v2")
        async for page in p.paginate(Bucket=bucket, Prefix="small/"):
            pass
        out["list_200_ms"] = (time.perf_counter() - t) * 1e3
    out["rss_mb"] = rss_mb()
    return out


async def run_obstore(endpoint: str, bucket: str) -> dict[str, float]:
    t = time.perf_counter()
    import obstore
    from obstore.store import S3Store
    imp = time.perf_counter() - t
    out = {"import_s": imp}
    s = S3Store(bucket, endpoint=endpoint, region="us-east-1", virtual_hosted_style_request=False,
                client_options={"allow_http": True})
    t = time.perf_counter()
    await obstore.put_async(s, "big", chunks(), chunk_size=PART, max_concurrency=2)
    out["put_MBps"] = SIZE / 1e6 / (time.perf_counter() - t)
    r = await obstore.get_async(s, "big")
    await timed_get(out, r.stream(min_chunk_size=1024 * 1024))

    async def put_get(i: int) -> None:
        await obstore.put_async(s, f"small/{i}", b"x" * 300)
        await (await obstore.get_async(s, f"small/{i}")).bytes_async()

    await small_latency(out, put_get)
    t = time.perf_counter()
    async for page in obstore.list(s, "small/"):
        pass
    out["list_200_ms"] = (time.perf_counter() - t) * 1e3
    out["rss_mb"] = rss_mb()
    return out


if __name__ == "__main__":
    which, endpoint, bucket = sys.argv[1:4]
    fn = run_aiobotocore if which == "aiobotocore" else run_obstore
    res = asyncio.run(fn(endpoint, bucket))
    print(which, " ".join(f"{k}={v:.3g}" for k, v in res.items()))
