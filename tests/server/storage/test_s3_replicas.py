"""Stateless replicas: three ``ocikit serve`` processes over one SeaweedFS bucket, any one answering.

Real peers (skopeo, podman, ocikit's own client) through different replicas, an upload begun on one
replica and finished on another, two replicas tagging at once, kill -9 of a replica under 20
concurrent pushes, and gc while two replicas take pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from typing import Iterator

import aiohttp
import pytest

from ocikit.digest import Digest
from ocikit.model import parse_manifest
from ocikit.testing import write_index
from ocikit.transports.layout import OCILayout

from helpers.cli import OCIKIT, run_ocikit
from helpers.peers import require, sh, skopeo, skopeo_raw
from helpers.servers import RunningServer, SeaweedServer, start_ocikit_serve
from helpers.rawhttp import Client, PushedImage, error_code, verify_after_crash, verify_tag

pytestmark = pytest.mark.peer


@contextlib.contextmanager
def replica_set(s3: SeaweedServer, tmp: str, prefix: str, n: int = 3,
                **query: str) -> Iterator[list[RunningServer]]:
    """``n`` replicas of one registry: the same bucket and prefix, nothing else shared."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(start_ocikit_serve(os.path.join(tmp, f"r{i}"), env=s3.env,
                                                      storage=s3.storage_url(prefix, **query)))
               for i in range(n)]


@pytest.fixture(scope="module")
def replicas(seaweed, tmp_path_factory) -> Iterator[list[RunningServer]]:
    """Three replicas that answer blob GETs with a 307 to a presigned URL."""
    tmp = str(tmp_path_factory.mktemp("replicas"))
    for i in range(3):
        os.makedirs(os.path.join(tmp, f"r{i}"))
    with replica_set(seaweed, tmp, "replicas", redirect="presigned", redirect_expiry="300") as rs:
        yield rs


def test_peers_through_three_replicas(replicas, tmp_path):
    r1, r2, r3 = replicas
    src = str(tmp_path / "src")
    write_index(OCILayout(src, create=True), "multi")
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{src}:multi", f"docker://{r1.host}/rep/multi:v1")
    raw = skopeo_raw(f"docker://{r2.host}/rep/multi:v1")
    index = json.loads(raw)
    index_digest = Digest.of(raw)
    assert len(index["manifests"]) == 3
    # each platform by the index digest through replicas 2 and 3 (blobs come by presigned redirect)
    for i, entry in enumerate(index["manifests"]):
        via = (r2, r3)[i % 2]
        out = tmp_path / f"out-{i}"
        arch = entry["platform"]["architecture"]
        skopeo("--override-arch", arch, *(("--override-variant", entry["platform"]["variant"])
                                          if "variant" in entry["platform"] else ()),
               "copy", "--src-tls-verify=false", f"docker://{via.host}/rep/multi@{index_digest}", f"oci:{out}:x")
        with open(out / "index.json") as f:
            assert json.load(f)["manifests"][0]["digest"] == entry["digest"]
        alg, enc = entry["digest"].split(":")
        with open(out / "blobs" / alg / enc, "rb") as f:
            m = parse_manifest(f.read())
        for d in m.children():
            with open(out / "blobs" / d.digest.algorithm / d.digest.encoded, "rb") as f:
                assert Digest.of(f.read()) == d.digest
    # podman pulls through replica 3
    runroot = f"/tmp/ock-rr-{os.getpid()}"
    podman = [require("podman"), "--root", str(tmp_path / "storage"), "--runroot", runroot,
              "--storage-driver", "vfs"]
    try:
        sh(*podman, "pull", "-q", "--tls-verify=false", f"docker://{r3.host}/rep/multi:v1")
        digests = sh(*podman, "image", "inspect", "--format", "{{.Digest}}",
                     f"{r3.host}/rep/multi:v1").stdout.decode().split()
        assert digests == [str(index_digest)]
    finally:
        subprocess.run(["rm", "-rf", runroot])


def test_blob_get_redirects_and_ocikit_follows(replicas, tmp_path, ocikit):
    r1, _, r3 = replicas
    src = str(tmp_path / "src")
    write_index(OCILayout(src, create=True), "multi", platforms=("linux/amd64", "linux/arm64/v8"))
    ocikit("copy", "--all", "--dest-tls-verify=false", f"oci:{src}:multi", f"docker://{r1.host}/rep/ocikit:v1")
    out = tmp_path / "back"
    ocikit("copy", "--all", "--src-tls-verify=false", f"docker://{r3.host}/rep/ocikit:v1", f"oci:{out}:v1")
    with open(os.path.join(src, "index.json")) as a, open(out / "index.json") as b:
        want = [m["digest"] for m in json.load(a)["manifests"]]
        assert [m["digest"] for m in json.load(b)["manifests"]] == want

    async def raw() -> None:
        async with aiohttp.ClientSession() as s:
            c = Client(r1.url, s)
            img = await c.push_image("rep/redirect", "v1", layer_sizes=(70_000,))
            d, data = next((d, v) for d, v in img.blobs.items() if len(v) == 70_000)
            async with s.get(f"{r3.url}/v2/rep/redirect/blobs/{d}", allow_redirects=False) as r:
                assert r.status == 307 and r.headers["Docker-Content-Digest"] == d
                location = r.headers["Location"]
            assert "X-Amz-Signature=" in location and not location.startswith(r3.url)
            async with s.get(location, headers={"Range": "bytes=100-199"}) as r:
                assert r.status == 206 and await r.read() == data[100:200]
            async with s.head(f"{r3.url}/v2/rep/redirect/blobs/{d}") as r:  # HEAD: metadata, no redirect
                assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)

    asyncio.run(raw())


async def test_chunked_upload_across_replicas(replicas):
    r1, r2, r3 = replicas
    data = os.urandom(6_000_000)
    digest = Digest.of(data)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{r1.url}/v2/rep/chunked/blobs/uploads/") as r:
            assert r.status == 202
            loc = r.headers["Location"]
        pieces = [(0, 2_500_000, r1), (2_500_000, 5_000_000, r2), (5_000_000, 6_000_000, r3)]
        for start, end, via in pieces:
            # a chunk that does not start where the session is is refused on any replica
            if start:
                async with s.patch(via.url + loc, data=b"x", headers={"Content-Range": f"{start + 1}-{start + 1}",
                                                                      "Content-Type": "application/octet-stream"}) as r:
                    assert r.status == 416 and r.headers["Range"] == f"0-{start - 1}"
            async with s.patch(via.url + loc, data=data[start:end],
                               headers={"Content-Range": f"{start}-{end - 1}",
                                        "Content-Type": "application/octet-stream"}) as r:
                assert r.status == 202, await r.text()
                assert r.headers["Range"] == f"0-{end - 1}"
        async with s.get(r1.url + loc) as r:
            assert r.status == 204 and r.headers["Range"] == f"0-{len(data) - 1}"
        # nothing is visible before the digest was checked, on any replica
        async with s.head(f"{r3.url}/v2/rep/chunked/blobs/{digest}") as r:
            assert r.status == 404
        wrong = Digest.of(b"not these bytes")
        async with s.put(r2.url + loc, params={"digest": str(wrong)}) as r:
            assert r.status == 400 and error_code(await r.json()) == "DIGEST_INVALID"
        # the same again, finished on replica 2 with the right digest
        async with s.post(f"{r1.url}/v2/rep/chunked/blobs/uploads/") as r:
            loc = r.headers["Location"]
        for start, end, via in pieces[:2]:
            async with s.patch(via.url + loc, data=data[start:end],
                               headers={"Content-Range": f"{start}-{end - 1}",
                                        "Content-Type": "application/octet-stream"}) as r:
                assert r.status == 202
        async with s.put(r2.url + loc, params={"digest": str(digest)}, data=data[5_000_000:],
                         headers={"Content-Type": "application/octet-stream"}) as r:
            assert r.status == 201, await r.text()
        async with s.get(f"{r3.url}/v2/rep/chunked/blobs/{digest}") as r:
            assert r.status == 200 and await r.read() == data


async def test_two_replicas_tagging_at_once(replicas):
    r1, r2, r3 = replicas
    async with aiohttp.ClientSession() as s:
        a, b = Client(r1.url, s), Client(r2.url, s)
        imgs = [await a.push_image("rep/tagging", None), await b.push_image("rep/tagging", None)]
        for _ in range(5):
            await asyncio.gather(a.put_manifest("rep/tagging", "latest", imgs[0].raw, imgs[0].media_type),
                                 b.put_manifest("rep/tagging", "latest", imgs[1].raw, imgs[1].media_type))
            answers = set()
            for via in replicas:
                async with s.get(f"{via.url}/v2/rep/tagging/manifests/latest") as r:
                    answers.add(r.headers["Docker-Content-Digest"])
            assert len(answers) == 1 and answers <= {imgs[0].digest, imgs[1].digest}
        _, body, _ = await Client(r3.url, s).get_json("/v2/rep/tagging/tags/list")
        assert body["tags"] == ["latest"]


def _gc(s3: SeaweedServer, prefix: str, *args: str) -> dict:
    p = run_ocikit("registry", "gc", "--storage", s3.storage_url(prefix), "--format", "json", *args,
                   env=s3.env, timeout=120)
    return json.loads(p.stdout)


async def _multipart_uploads(s3: SeaweedServer, prefix: str) -> list[str]:
    from ocikit.server.storage.s3 import S3Driver
    from ocikit.server.storage.s3settings import S3Settings
    d = S3Driver(S3Settings(bucket=s3.bucket, prefix=prefix, endpoint=s3.endpoint, access_key=s3.access_key,
                            secret_key=s3.secret_key))
    try:
        page = await d._call("list_multipart_uploads", Prefix=d.prefix)
        return [u["Key"] for u in page.get("Uploads") or []]
    finally:
        await d.close()


async def test_kill_9_of_a_replica_during_20_pushes(seaweed, tmp_path):
    done: list[PushedImage] = []
    attempted = {f"t{i}" for i in range(20)}
    six, killed = asyncio.Event(), asyncio.Event()
    with replica_set(seaweed, str(tmp_path), "kill", part_size="5MiB") as (r1, r2, r3):
        async with aiohttp.ClientSession() as s:
            clients = [Client(r.url, s) for r in (r1, r2, r3)]

            async def one(i: int) -> None:
                img = await clients[i % 3].push_image(f"kill/r{i % 4}", f"t{i}",
                                                      layer_sizes=(1_000_000 + i * 1000, 200_000))
                done.append(img)
                if len(done) == 6:
                    six.set()

            async def stalled() -> None:
                """A push to replica 1 that stops after two parts' worth: the kill finds a multipart upload open."""
                async def body():
                    for _ in range(11):
                        yield os.urandom(1024 * 1024)
                    await killed.wait()
                async with s.post(f"{r1.url}/v2/kill/stalled/blobs/uploads/") as r:
                    loc = r.headers["Location"]
                async with s.patch(r1.url + loc, data=body()) as r:
                    await r.read()

            async def killer() -> None:
                await six.wait()
                while not await _multipart_uploads(seaweed, "kill"):
                    await asyncio.sleep(0.05)
                os.kill(r1.proc.pid, signal.SIGKILL)
                killed.set()

            results = await asyncio.gather(killer(), stalled(), *(one(i) for i in range(20)),
                                           return_exceptions=True)
            r1.proc.wait(10)
            assert r1.proc.returncode == -signal.SIGKILL
            assert len(done) >= 6 and any(isinstance(r, BaseException) for r in results[1:])
            for c in clients[1:]:
                # every push that got its 201 pulls digest-exact from the survivors; nothing incomplete is listed
                repos = {f"kill/r{i}" for i in range(4)} | {"kill/stalled"}
                assert await verify_after_crash(c, done, repos, attempted) >= len(done)
    # what the kill left behind (multipart uploads, sessions) goes at gc once its grace is over
    left = await _multipart_uploads(seaweed, "kill")
    assert left
    report = _gc(seaweed, "kill", "--grace", "1h", "--upload-grace", "0")
    assert sorted(u.removeprefix("multipart ") for u in report["uploads"] if u.startswith("multipart ")) == \
        sorted(k.removeprefix("kill/") for k in left)
    assert len([u for u in report["uploads"] if not u.startswith("multipart ")]) >= 1
    assert await _multipart_uploads(seaweed, "kill") == []


async def test_gc_while_two_replicas_take_20_pushes(seaweed, tmp_path):
    grace = 5
    with replica_set(seaweed, str(tmp_path), "gc", n=2) as (r1, r2):
        async with aiohttp.ClientSession() as s:
            c1, c2 = Client(r1.url, s), Client(r2.url, s)
            keep = [await c1.push_image("gc/keep", f"k{i}") for i in range(3)]
            drop = [await c2.push_image("gc/drop", f"d{i}", layer_sizes=(50_000,), seed=f"drop-{i}".encode())
                    for i in range(6)]
            for img in drop:
                async with s.delete(c1.url(f"/v2/gc/drop/manifests/{img.digest}")) as r:
                    assert r.status == 202
            orphan = await c1.post_blob("gc/orphan", os.urandom(30_000))
            unreferenced = {orphan} | {img.digest for img in drop} | {d for img in drop for d in img.blobs}
            # three of the new pushes upload a layer of a dropped image again while gc runs
            reused = {d for img in drop[:3] for d, v in img.blobs.items() if len(v) == 50_000}
            await asyncio.sleep(grace + 1)  # the unreferenced content is now older than the grace

            pushed: list[PushedImage] = []

            async def push(i: int) -> None:
                c = (c1, c2)[i % 2]
                if i < 3:
                    img = await c.push_image("gc/new", f"n{i}", layer_sizes=(50_000,), seed=f"drop-{i}".encode())
                else:
                    img = await c.push_image("gc/new", f"n{i}", layer_sizes=(40_000 + i,))
                pushed.append(img)

            gc = await asyncio.create_subprocess_exec(
                *OCIKIT, "registry", "gc", "--storage", seaweed.storage_url("gc"),
                "--grace", f"{grace}s", "--format", "json", env=seaweed.env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            results = await asyncio.gather(gc.communicate(), *(push(i) for i in range(20)))
            out, err = results[0]
            assert gc.returncode == 0, err.decode()
            report = json.loads(out)
            assert len(pushed) == 20
            # nothing acknowledged is lost, on either replica
            for c in (c1, c2):
                for img in pushed + keep:
                    assert await verify_tag(c, img.name, img.tag) == img.raw
            # gc removed exactly the unreferenced set (a re-uploaded layer may go and come back)
            removed = {Digest(b) for b in report["blobs"]}
            assert removed <= unreferenced
            assert unreferenced - reused <= removed
            assert len(unreferenced - reused) <= len(removed) <= len(unreferenced)
            assert {x.split("@")[0] for x in report["links"]} <= {"gc/drop", "gc/orphan"}
            async with s.head(c2.url(f"/v2/gc/orphan/blobs/{orphan}")) as r:
                assert r.status == 404
