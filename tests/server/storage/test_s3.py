"""The S3 driver against a real SeaweedFS: settings, pointers and touch, start-up errors, an unreachable
bucket (503 + Retry-After, then recovery), the gc lease, multipart leftovers."""

from __future__ import annotations

import asyncio
import json
import os
import time

import aiohttp
import pytest

from ocikit.core.digest import Digest, Digester
from ocikit.core.errors import UsageError
from ocikit.server.serve_config import ServerConfig, parse_config
from ocikit.server.gclease import LEASE_KEY, Lease
from ocikit.server.storage.s3 import S3Driver
from ocikit.server.storage.s3settings import S3Settings, parse_s3_url

from helpers.cli import expect_failure, run_ocikit
from helpers.servers import SeaweedServer, seaweedfs, start_ocikit_serve, stop_pid
from helpers.rawhttp import Client, error_code


def driver(s3: SeaweedServer, prefix: str, **kw) -> S3Driver:
    return S3Driver(S3Settings(bucket=s3.bucket, prefix=prefix, endpoint=s3.endpoint, access_key=s3.access_key,
                               secret_key=s3.secret_key, **kw))


def test_settings_from_url_and_yaml():
    s = parse_s3_url("s3://bkt/some/prefix?endpoint=http://127.0.0.1:8333&region=eu-west-1&path_style=false"
                     "&part_size=8MiB&redirect=presigned&redirect_expiry=60")
    assert (s.bucket, s.key_prefix, s.endpoint, s.region, s.path_style) == \
        ("bkt", "some/prefix/", "http://127.0.0.1:8333", "eu-west-1", False)
    assert (s.part_size, s.redirect, s.redirect_expiry) == (8 << 20, "presigned", 60)
    assert parse_s3_url("s3://bkt").key_prefix == ""
    cfg = parse_config({"storage": {"driver": "s3", "bucket": "b", "prefix": "p", "endpoint": "http://h:1",
                                    "access_key": "k", "secret_key": "s"}})
    assert cfg.s3 is not None and (cfg.s3.bucket, cfg.s3.access_key) == ("b", "k")
    assert ServerConfig().with_storage("s3://b/p?endpoint=http://h:1").s3 == S3Settings("b", "p", "http://h:1")
    assert ServerConfig().with_storage("/srv/reg").root == "/srv/reg"
    for bad in ("s3://b?part_size=1MiB", "s3://b?redirect=yes", "s3://b?secret_key=x", "s3:///p", "gs://b/p"):
        with pytest.raises(UsageError):
            ServerConfig().with_storage(bad)
    with pytest.raises(UsageError):
        parse_config({"storage": {"driver": "s3"}})


async def test_commit_is_a_pointer_and_touch_keeps_it(seaweed):
    d = driver(seaweed, "driver-pointer", part_size=5 << 20)
    try:
        data = os.urandom(11 << 20)  # three parts
        await d.spool_create("u1", b'{"repository": "x"}')

        async def chunks():
            for i in range(0, len(data), 1 << 20):
                yield data[i:i + (1 << 20)]

        dg = Digester()
        assert await d.spool_append("u1", 0, chunks(), dg) == len(data)
        assert dg.digest() == Digest.of(data)
        assert await d.spool_size("u1") == len(data)
        await d.spool_commit("u1", "blobs/x")
        assert await d.spool_info("u1") is None
        assert await d.size("blobs/x") == len(data)
        got = b"".join([c async for c in d.read_chunks("blobs/x", 5, 100)])
        assert got == data[5:105]
        before = await d.mtime("blobs/x")
        await asyncio.sleep(1.1)  # S3 times have whole seconds
        assert await d.touch("blobs/x")
        assert await d.mtime("blobs/x") > before
        assert await d.size("blobs/x") == len(data)  # the pointer survived its touch
        assert await d.get("blobs/x") == data
        # a second session with the same bytes loses the race for the key and drops its data
        await d.spool_create("u2", b"{}")
        await d.spool_append("u2", 0, chunks(), None)
        await d.spool_commit("u2", "blobs/x")
        assert {o["Key"].split("/")[2] for o in await d._objects("data/")} == {"u1"}
        assert await d.delete("blobs/x")
        assert await d._objects("data/") == [] and await d.size("blobs/x") is None
    finally:
        await d.close()


async def test_streamed_read_in_parallel_ranged_segments(seaweed, monkeypatch):
    """A read larger than SEGMENT comes from ranged GETs, PARALLEL in flight, yielded in order: any
    offset and length give the exact bytes; the object vanishing mid-read is an error, not a short read."""
    from ocikit.server.storage import s3 as s3mod

    monkeypatch.setattr(s3mod, "SEGMENT", 1 << 20)
    monkeypatch.setattr(s3mod, "PARALLEL", 3)
    monkeypatch.setattr(s3mod, "SEGMENT_AHEAD", 2)
    d = driver(seaweed, "driver-segments")
    try:
        data = os.urandom((5 << 20) + 12345)
        await d.put("blobs/seg", data)
        for offset, length in ((0, None), (1, None), ((1 << 20) - 1, 2), (3 << 20, 1 << 20),
                               (123, (4 << 20) + 7), (len(data) - 5, 100)):
            got = b"".join([c async for c in d.read_chunks("blobs/seg", offset, length)])
            want = data[offset:] if length is None else data[offset:offset + length]
            assert got == want, (offset, length)
        it = d.read_chunks("blobs/seg")
        first = await it.__anext__()
        await d.delete("blobs/seg")
        with pytest.raises(FileNotFoundError):
            async for c in it:  # the segments not yet asked for are gone
                first += c
        assert len(first) < len(data)
    finally:
        await d.close()


def test_wrong_credentials_and_missing_bucket_fail_at_start(seaweed):
    wrong = {**seaweed.env, "AWS_SECRET_ACCESS_KEY": "wrong"}
    expect_failure("serve", "--listen", "127.0.0.1:1", "--storage", seaweed.storage_url("x"),
                   match="access denied", env=wrong)
    expect_failure("serve", "--listen", "127.0.0.1:1", "--storage",
                   f"s3://no-such-bucket/x?endpoint={seaweed.endpoint}", match="no such bucket", env=seaweed.env)
    expect_failure("registry", "gc", "--storage", seaweed.storage_url("x"), match="access denied", env=wrong)


async def test_unreachable_bucket_is_503_then_recovers(tmp_path):
    with seaweedfs(str(tmp_path)) as first:
        with start_ocikit_serve(str(tmp_path), storage=first.storage_url("outage"), env=first.env) as srv:
            async with aiohttp.ClientSession() as s:
                c = Client(srv.url, s)
                img = await c.push_image("outage/a", "v1")
                stop_pid(first.proc)
                for method, path in [("GET", "/v2/outage/a/manifests/v1"), ("GET", "/v2/outage/a/tags/list"),
                                     ("POST", "/v2/outage/a/blobs/uploads/")]:
                    async with s.request(method, c.url(path)) as r:
                        assert r.status == 503, (method, path, r.status)
                        assert int(r.headers["Retry-After"]) > 0
                        assert error_code(await r.json()) == "UNKNOWN"
                with seaweedfs(str(tmp_path), restart=first):
                    # the replica recovers by itself: within a few retries (what Retry-After asks) requests succeed
                    deadline = time.monotonic() + 30
                    while True:
                        async with s.get(c.url("/v2/outage/a/manifests/v1")) as r:
                            if r.status == 200 or time.monotonic() > deadline:
                                assert r.status == 200 and await r.read() == img.raw
                                break
                            assert r.status == 503
                        await asyncio.sleep(0.2)
                    await c.push_image("outage/a", "v2")


async def test_gc_lease_excludes_a_second_gc(seaweed):
    d = driver(seaweed, "lease")
    try:
        lease = Lease(d, ttl=30)
        await lease.acquire()
        expect_failure("registry", "gc", "--storage", seaweed.storage_url("lease"),
                       match="another gc holds the lease", env=seaweed.env)
        with pytest.raises(UsageError):
            await Lease(d).acquire()
        await lease.release()
        assert await d.get(LEASE_KEY) is None
        # an expired lease (its holder died) is taken over
        await d.put(LEASE_KEY, json.dumps({"owner": "dead", "expires": time.time() - 1}).encode())
        run_ocikit("registry", "gc", "--storage", seaweed.storage_url("lease"), "--format", "json",
                   env=seaweed.env)
        assert await d.get(LEASE_KEY) is None
        # a holder whose lease was taken (it could not renew in time) stops before its next deletion
        stale = Lease(d, ttl=0.6)  # renews every 0.2 s
        await stale.acquire()
        await d.put(LEASE_KEY, b'{"owner": "other", "expires": 0}')
        for _ in range(200):  # its next renewal (every 0.2 s; later on a loaded machine) finds it taken
            if stale.lost:
                break
            await asyncio.sleep(0.05)
        d.guard = stale.check
        with pytest.raises(UsageError, match="lost"):
            await d.delete("anything")
        await stale.release()
    finally:
        await d.close()


async def test_gc_purges_abandoned_multipart_uploads_after_their_grace(seaweed):
    d = driver(seaweed, "mpu")
    try:
        mp = await d._call("create_multipart_upload", Key=d.prefix + "data/dead/00000000000000000000")
        await d._call("upload_part", Key=d.prefix + "data/dead/00000000000000000000", UploadId=mp["UploadId"],
                      PartNumber=1, Body=b"x" * (5 << 20))
        assert await d.purge_incomplete(time.time() - 3600) == []  # inside its grace: kept
        assert await d.purge_incomplete(time.time() + 1) == ["data/dead/00000000000000000000"]
        page = await d._call("list_multipart_uploads", Prefix=d.prefix)
        assert not page.get("Uploads")
    finally:
        await d.close()


async def test_a_touch_during_a_gc_deletion_waits_and_tells_whether_the_key_survived(seaweed, monkeypatch):
    """The writer's half of the handshake with a gc deleting a key (no lock on S3): a touch that
    finds the gc's intent waits for it to go, then reports whether the key is still there."""
    from ocikit.server.storage import s3intents

    d = driver(seaweed, "driver-intent")
    try:
        for kept in (True, False):
            key = f"blobs/k-{kept}"
            await d.put(key, b"x")
            await d.put(s3intents.INTENTS + key, b"")  # a gc is about to decide on it
            touching = asyncio.ensure_future(d.touch(key))
            await asyncio.sleep(0.5)
            assert not touching.done()  # waits for the gc's decision
            if not kept:
                await d.delete(key)
            await d.delete(s3intents.INTENTS + key)
            assert await asyncio.wait_for(touching, 30) is kept
        # an intent a killed gc left behind is not waited for for ever
        monkeypatch.setattr(s3intents, "STALE_INTENT", 0.0)
        await d.put("blobs/k-stale", b"x")
        await d.put(s3intents.INTENTS + "blobs/k-stale", b"")
        assert await asyncio.wait_for(d.touch("blobs/k-stale"), 30) is True
    finally:
        await d.close()


async def test_a_gc_deletion_announces_itself_withdraws_and_spares_the_last_second(seaweed):
    from ocikit.server.storage import s3intents

    d = driver(seaweed, "driver-delete-older")
    try:
        # written after the cutoff, mid-second: its LastModified (whole seconds) reads as before the
        # cutoff, and it is spared all the same
        await asyncio.sleep((1.3 - time.time() % 1) % 1)
        cutoff = time.time()
        await d.put("blobs/a", b"x")
        assert (await d.mtime("blobs/a") or 0) < cutoff  # the whole second hides the order
        assert await d.delete_if_older("blobs/a", cutoff) is False
        assert await d.size("blobs/a") == 1
        assert await d.delete_if_older("blobs/a", time.time() + 5) is True
        assert await d.size("blobs/a") is None
        assert await d.size(s3intents.INTENTS + "blobs/a") is None  # the intent is withdrawn
        assert await d.delete_if_older("blobs/missing", time.time() + 5) is False
        assert await d.size(s3intents.INTENTS + "blobs/missing") is None
    finally:
        await d.close()
