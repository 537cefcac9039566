"""Crash safety and restarts: kill -9 under 20 concurrent pushes, sessions across restarts, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest

from ocikit.digest import Digest
from ocikit.model import parse_manifest

from helpers.cli import run_json
from helpers.rawhttp import Client, PushedImage, verify_after_crash, verify_tag
from helpers.servers import start_ocikit_serve

pytestmark = pytest.mark.asyncio


def _blob_files(root: str) -> set[str]:
    out = set()
    for dirpath, _, files in os.walk(os.path.join(root, "blobs")):
        for f in files:
            if not f.startswith("."):
                out.add(f"{os.path.basename(os.path.dirname(dirpath))}:{f}")
    return out


async def test_kill_9_during_concurrent_pushes(tmp_path):
    root = str(tmp_path / "root")
    done: list[PushedImage] = []
    attempted = {f"t{i}" for i in range(20)}
    with start_ocikit_serve(str(tmp_path), root=root) as srv:
        async with aiohttp.ClientSession() as s:
            c = Client(srv.url, s)

            async def one(i: int) -> None:
                img = await c.push_image(f"crash/r{i % 4}", f"t{i}", layer_sizes=(2_000_000 + i * 1000, 300_000))
                done.append(img)
                if len(done) == 5:
                    os.kill(srv.proc.pid, signal.SIGKILL)

            results = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
        srv.proc.wait(10)
        assert srv.proc.returncode == -signal.SIGKILL
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(done) >= 5 and failed, "the kill must have interrupted some pushes"

    with start_ocikit_serve(str(tmp_path), root=root) as srv:
        async with aiohttp.ClientSession() as s:
            c = Client(srv.url, s)
            # every push that got its 201 is complete and pullable; every visible tag is complete
            visible = await verify_after_crash(c, done, {f"crash/r{i}" for i in range(4)}, attempted)
            assert visible >= len(done)
            _, catalog, _ = await c.get_json("/v2/_catalog")

            # gc removes the leftovers (spools of interrupted uploads, blobs no tag reaches; a kill
            # between a manifest's revision and its tag leaves an untagged manifest: --untagged)
            _, report = run_json("registry", "gc", "--root", root, "--grace", "0", "--upload-grace", "0",
                                 "--untagged")
            assert report["uploads"] or report["blobs"] or report["links"]
            assert os.listdir(os.path.join(root, "uploads")) == []
            referenced: set[str] = set()
            for name in catalog["repositories"]:
                for tag in (await c.get_json(f"/v2/{name}/tags/list"))[1]["tags"]:
                    raw = await verify_tag(c, name, tag)
                    referenced.add(str(Digest.of(raw)))
                    referenced.update(str(d.digest) for d in parse_manifest(raw).children())  # type: ignore[union-attr]
            assert _blob_files(root) == referenced
            for img in done:
                assert await verify_tag(c, img.name, img.tag) == img.raw


async def test_upload_session_survives_restart(tmp_path):
    root = str(tmp_path / "root")
    data = os.urandom(250_000)
    with start_ocikit_serve(str(tmp_path), root=root) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{srv.url}/v2/restart/me/blobs/uploads/") as r:
                loc = r.headers["Location"]
            async with s.patch(f"{srv.url}{loc}", data=data[:100_000], headers={"Content-Range": "0-99999"}) as r:
                assert r.status == 202
    with start_ocikit_serve(str(tmp_path), root=root, fsync=True) as srv:  # the durable (fsync) paths too
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{srv.url}{loc}") as r:
                assert r.status == 204 and r.headers["Range"] == "0-99999"
            async with s.patch(f"{srv.url}{loc}", data=data[100_000:], headers={"Content-Range": "100000-249999"}) as r:
                assert r.status == 202
            async with s.put(f"{srv.url}{loc}", params={"digest": Digest.of(data)}) as r:
                assert r.status == 201, await r.text()
            async with s.get(f"{srv.url}/v2/restart/me/blobs/{Digest.of(data)}") as r:
                assert await r.read() == data
            img = await Client(srv.url, s).push_image("restart/me", "v1")
            async with s.get(f"{srv.url}/v2/restart/me/manifests/v1") as r:
                assert await r.read() == img.raw


async def test_sigterm_finishes_requests_in_flight(tmp_path):
    parts = [os.urandom(50_000) for _ in range(10)]
    with start_ocikit_serve(str(tmp_path)) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{srv.url}/v2/graceful/x/blobs/uploads/") as r:
                loc = r.headers["Location"]

            async def slow():
                for i, p in enumerate(parts):
                    if i == 3:
                        srv.proc.send_signal(signal.SIGTERM)
                    yield p
                    await asyncio.sleep(0.05)

            async with s.patch(f"{srv.url}{loc}", data=slow()) as r:
                assert r.status == 202
                assert r.headers["Range"] == f"0-{50_000 * 10 - 1}"
        assert srv.proc.wait(15) == 0
