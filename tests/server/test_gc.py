"""``ocikit registry gc``: mark and sweep over the server's storage (in-process, small images)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import aiohttp
import pytest

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.model import Descriptor, build_index, build_manifest, parse_index, parse_manifest
from ocikit.server.gc import collect_garbage
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage, blob_key, repo_key
from ocikit.server.storage.s3 import S3Driver
from ocikit.server.storage.s3settings import S3Settings
from ocikit.server.storage.repo_store import RepositoryStore
from ocikit.testing.images import write_image_async, write_index_async

from helpers.cli import OCIKIT
from helpers.rawhttp import error_code
from helpers.servers import start_ocikit_serve


async def _one(data: bytes):
    yield data


async def _blob(st: RegistryStorage, name: str, data: bytes) -> Digest:
    up = await st.start_upload(name)
    await st.append_upload(name, up, _one(data))
    d = Digest.of(data)
    await st.finish_upload(name, up, d)
    return d


def _age_everything(root: str, seconds: float = 7200) -> None:
    old = time.time() - seconds
    for dirpath, _, files in os.walk(root):
        for f in files:
            os.utime(os.path.join(dirpath, f), (old, old))


@pytest.fixture
def storage(tmp_path) -> RegistryStorage:
    return RegistryStorage(FilesystemDriver(str(tmp_path / "root"), fsync=False))


async def test_gc_keeps_everything_reachable_and_removes_orphans(storage, tmp_path):
    store = RepositoryStore(storage, "gc/app")
    idx = await write_index_async(store, "multi")
    single = await write_image_async(store, "single", seed=5)
    orphan = await _blob(storage, "gc/app", b"orphan blob nobody names")
    up = await storage.start_upload("gc/app")  # an abandoned upload
    await storage.append_upload("gc/app", up, _one(b"partial"))
    # a referrer of the tagged image
    await _blob(storage, "gc/app", mt.EMPTY_JSON)
    empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2)
    ref = build_manifest(empty, [empty], subject=Descriptor(single.media_type, single.digest, single.size),
                         artifact_type="application/vnd.example.sig")
    await storage.put_manifest("gc/app", ref.digest, ref.raw, ref.media_type)
    _age_everything(str(tmp_path / "root"))

    dry = await collect_garbage(storage, dry_run=True, grace=60, upload_grace=60)
    assert dry.blobs == [orphan] and dry.uploads == [up]
    assert os.path.exists(storage.driver.local_path(blob_key(orphan)))

    report = await collect_garbage(storage, grace=60, upload_grace=60)
    assert report.blobs == [orphan] and report.uploads == [up] and report.manifests == []
    assert report.bytes_freed == len(b"orphan blob nobody names")
    assert not os.path.exists(storage.driver.local_path(blob_key(orphan)))
    assert await storage.blob_size("gc/app", orphan) is None
    # everything tagged is intact, byte for byte
    index = parse_index((await storage.get_manifest("gc/app", "multi")).raw)
    assert index.digest == idx.digest
    for child in index.manifests:
        raw = (await storage.get_manifest("gc/app", child.digest)).raw
        for desc in parse_manifest(raw).children():
            assert await storage.blob_size("gc/app", desc.digest) == desc.size
    assert [r["digest"] for r in await storage.referrers("gc/app", single.digest)] == [str(ref.digest)]


async def test_gc_grace_protects_recent_content(storage):
    d = await _blob(storage, "gc/recent", b"just pushed, manifest still to come")
    up = await storage.start_upload("gc/recent")
    report = await collect_garbage(storage, grace=3600, upload_grace=3600)
    assert report.blobs == [] and report.uploads == [] and report.links == []
    assert await storage.blob_size("gc/recent", d) is not None
    assert (await storage.upload_state("gc/recent", up)).offset == 0


async def test_an_acknowledged_blob_is_young_whatever_its_spool_or_its_old_copy(storage, tmp_path):
    """A commit leaves the blob with a fresh mtime: from a spool last written long ago, and when the
    same bytes were there already (old, unlinked: what a gc may hold for garbage); gc's deletion,
    which reads the age again, keeps both, and takes them once they are old."""
    root = str(tmp_path / "root")
    again = await _blob(storage, "gc/other", b"pushed before, unlinked since")
    await storage.delete_blob("gc/other", again)
    data = b"last bytes received two hours before the PUT"
    up = await storage.start_upload("gc/young")
    await storage.append_upload("gc/young", up, _one(data))
    _age_everything(root)  # the spool's bytes and the unlinked blob: two hours old
    assert not await storage.driver.delete_if_older(blob_key(again), time.time() - 7200 - 60)
    d = Digest.of(data)
    await storage.finish_upload("gc/young", up, d)
    assert await _blob(storage, "gc/other", b"pushed before, unlinked since") == again
    for digest in (d, again):
        assert not await storage.driver.delete_if_older(blob_key(digest), time.time() - 60)
        assert await storage.driver.delete_if_older(blob_key(digest), time.time() + 60)
    assert not await storage.driver.delete_if_older(blob_key(d), time.time() + 60)  # gone already


async def test_a_manifest_push_refreshes_the_links_it_relies_on(storage, tmp_path):
    """A manifest naming blobs whose repository links are old (linked long ago, used by no manifest
    when a concurrent gc marked) refreshes those links, not only the blobs: gc's sweep, which reads
    the age again, keeps them, and the layer still answers in that repository."""
    config = await _blob(storage, "gc/relink", b'{"architecture":"amd64","os":"linux"}')
    layer = await _blob(storage, "gc/relink", b"a layer pushed two hours ago")
    _age_everything(str(tmp_path / "root"))
    links = [repo_key("gc/relink", "_layers", d.algorithm, d.encoded) for d in (config, layer)]
    cutoff = time.time() - 60   # what a gc with a one-minute grace, marking before the push, sweeps with
    m = build_manifest(Descriptor(mt.OCI_CONFIG, config, 37), [Descriptor(mt.OCI_LAYER, layer, 28)])
    await storage.put_manifest("gc/relink", "v1", m.raw, mt.OCI_MANIFEST)
    for key in links:
        assert not await storage.driver.delete_if_older(key, cutoff)
    assert await storage.blob_size("gc/relink", layer) == 28


async def test_gc_keeps_an_untagged_manifest_pushed_again_since_it_marked(storage, tmp_path):
    """An untagged manifest pushed again by tag after a gc marked it (its revision refreshed): gc's
    delete, which reads the age again, keeps it and the new tag; one left alone goes, tags untouched.
    An index pushed since refreshes its children the same way."""
    store = RepositoryStore(storage, "gc/repush")
    img = await write_image_async(store, "temp", seed=3)
    other = await write_image_async(store, "other", seed=4)
    for tag in ("temp", "other"):
        await storage.delete_tag("gc/repush", tag)
    _age_everything(str(tmp_path / "root"))
    cutoff = time.time() - 60   # a gc with a one-minute grace that marked both as untagged garbage
    raw = (await storage.get_manifest("gc/repush", img.digest)).raw
    await storage.put_manifest("gc/repush", "again", raw, img.media_type)
    assert not await storage.delete_manifest_if_older("gc/repush", img.digest, cutoff)
    assert await storage.resolve_tag("gc/repush", "again") == img.digest
    assert await storage.delete_manifest_if_older("gc/repush", other.digest, cutoff)
    assert not await storage.has_manifest("gc/repush", other.digest)
    # a child named by an index pushed since is refreshed too
    child = await write_image_async(store, "child", seed=5)
    await storage.delete_tag("gc/repush", "child")
    _age_everything(str(tmp_path / "root"))
    cutoff = time.time() - 60
    idx = build_index([Descriptor(child.media_type, child.digest, child.size)])
    await storage.put_manifest("gc/repush", "multi", idx.raw, idx.media_type)
    assert not await storage.delete_manifest_if_older("gc/repush", child.digest, cutoff)
    report = await collect_garbage(storage, untagged=True, grace=60)
    assert (("gc/repush", img.digest) not in report.manifests and ("gc/repush", child.digest) not in report.manifests)


async def test_gc_keeps_an_upload_session_being_created(storage, tmp_path):
    """A spool directory whose data file is not there yet (the instant ``spool_create`` makes them) is
    a session starting, not a leftover: kept while young, removed once older than the upload grace."""
    starting = tmp_path / "root" / "uploads" / "0123456789abcdef0123456789abcdef"
    starting.mkdir()
    report = await collect_garbage(storage, grace=60, upload_grace=60)
    assert report.uploads == [] and starting.is_dir()
    _age_everything(str(tmp_path / "root"))
    old = time.time() - 7200
    os.utime(starting, (old, old))
    report = await collect_garbage(storage, grace=60, upload_grace=60)
    assert report.uploads == [starting.name] and not starting.exists()


async def test_gc_untagged(storage, tmp_path):
    store = RepositoryStore(storage, "gc/untagged")
    idx = await write_index_async(store, "multi")
    gone = await write_image_async(store, "temp", seed=9)
    await storage.delete_tag("gc/untagged", "temp")
    # a referrer of the untagged manifest goes with it; a referrer of a tagged index stays
    await _blob(storage, "gc/untagged", mt.EMPTY_JSON)
    empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2)
    ref_gone = build_manifest(empty, [empty], subject=Descriptor(gone.media_type, gone.digest, gone.size),
                              artifact_type="application/vnd.example.a")
    ref_kept = build_manifest(empty, [empty], subject=Descriptor(idx.media_type, idx.digest, idx.size),
                              artifact_type="application/vnd.example.b")
    for m in (ref_gone, ref_kept):
        await storage.put_manifest("gc/untagged", m.digest, m.raw, m.media_type)
    _age_everything(str(tmp_path / "root"))

    without = await collect_garbage(storage, grace=60, dry_run=True)
    assert without.manifests == []  # without --untagged no manifest is removed
    report = await collect_garbage(storage, untagged=True, grace=60)
    assert sorted(d for _, d in report.manifests) == sorted([gone.digest, ref_gone.digest])
    assert not await storage.has_manifest("gc/untagged", gone.digest)
    # the untagged children of the tagged index are kept, with their blobs
    index = parse_index((await storage.get_manifest("gc/untagged", "multi")).raw)
    for child in index.manifests:
        assert await storage.has_manifest("gc/untagged", child.digest)
    assert await storage.has_manifest("gc/untagged", ref_kept.digest)
    # the layers only the removed image used are gone
    assert report.blobs


async def test_gc_cli_dry_run_lists(tmp_path, ocikit):
    root = str(tmp_path / "root")
    st = RegistryStorage(FilesystemDriver(root, fsync=False))
    d = await _blob(st, "gc/cli", b"leftover")
    _age_everything(root)
    p = ocikit("registry", "gc", "--root", root, "--dry-run", "--grace", "1m")
    assert f"would remove blob {d}" in p.stdout.decode()
    assert os.path.exists(st.driver.local_path(blob_key(d)))
    p = ocikit("--format", "json", "registry", "gc", "--root", root, "--grace", "1m")
    assert json.loads(p.stdout)["blobs"] == [str(d)]
    assert not os.path.exists(st.driver.local_path(blob_key(d)))


async def _gc_loop(where: tuple[str, ...], env: dict[str, str] | None, stop: "asyncio.Event") -> int:
    """``ocikit registry gc --grace 1`` over and over (real processes) until ``stop``; how many ran."""
    runs = 0
    while not stop.is_set():
        p = await asyncio.create_subprocess_exec(*OCIKIT, "registry", "gc", *where, "--grace", "1", env=env,
                                                 stdout=asyncio.subprocess.DEVNULL,
                                                 stderr=asyncio.subprocess.PIPE)
        _, err = await p.communicate()
        assert p.returncode == 0, err.decode()
        runs += 1
    return runs


REFUSED = "refused"
"""What :func:`_push_and_head` says of a PUT answered ``BLOB_UNKNOWN``: the blob this upload found
stored was taken by a gc while the PUT ran (more than the test's 1 s grace passed inside it); the
client is told, nothing was acknowledged, it would upload again."""


async def _push_and_head(http: aiohttp.ClientSession, base: str, repo: str, data: bytes,
                         pause: float) -> str | None:
    """Upload ``data`` (chunked: POST, PATCH, ``pause``, PUT), then HEAD it at once: why it is gone,
    :data:`REFUSED`, or None."""
    digest = str(Digest.of(data))
    async with http.post(f"{base}/v2/{repo}/blobs/uploads/") as r:
        assert r.status == 202, await r.text()
        location = r.headers["Location"]
    url = location if location.startswith("http") else base + location
    async with http.patch(url, data=data, headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 202, await r.text()
        url = r.headers["Location"] if r.headers["Location"].startswith("http") else base + r.headers["Location"]
    await asyncio.sleep(pause)
    sep = "&" if "?" in url else "?"
    async with http.put(f"{url}{sep}digest={digest}") as r:
        if r.status == 404 and error_code(json.loads(await r.read())) == "BLOB_UNKNOWN":
            return REFUSED
        assert r.status == 201, await r.text()
    async with http.head(f"{base}/v2/{repo}/blobs/{digest}") as r:
        return None if r.status == 200 else f"{digest}: HEAD {r.status} right after its 201"


@pytest.mark.slow
@pytest.mark.parametrize("driver", ["fs", "s3"])
async def test_gc_never_deletes_a_blob_whose_upload_was_acknowledged(tmp_path, request, driver):
    """Pushes (fresh blobs whose last bytes came in longer ago than the grace, and blobs pushed
    again once gc may hold them for garbage) while ``registry gc --grace 1`` runs again and again
    on the live server's storage: every acknowledged blob is there right after its 201. Many
    repositories marked after the pushed ones keep each collection's mark-to-sweep window open."""
    root = str(tmp_path / "root")
    serve_kw: dict[str, Any]
    if driver == "s3":
        s3 = request.getfixturevalue("seaweed")
        url = s3.storage_url("gcrace")
        filler = RegistryStorage(S3Driver(S3Settings(bucket=s3.bucket, prefix="gcrace", endpoint=s3.endpoint,
                                                     access_key=s3.access_key, secret_key=s3.secret_key)))
        where, env, serve_kw, fillers = ("--storage", url), s3.env, {"storage": url, "env": s3.env}, 30
    else:
        filler = RegistryStorage(FilesystemDriver(root, fsync=False))
        where, env, serve_kw, fillers = ("--root", root), None, {"root": root, "fsync": True}, 300
    try:
        for i in range(fillers):
            await write_image_async(RepositoryStore(filler, f"zz/fill-{i}"), "v1")
    finally:
        await filler.driver.close()
    with start_ocikit_serve(str(tmp_path), **serve_kw) as srv:
        stop = asyncio.Event()
        gc = asyncio.ensure_future(_gc_loop(where, env, stop))
        lost: list[str] = []
        refused = 0
        try:
            async with aiohttp.ClientSession() as http:
                async def pusher(n: int) -> None:
                    nonlocal refused
                    for i in range(8):
                        fresh = os.urandom(64 << 10) + f"{n}-{i}".encode()
                        again = f"pushed again and again {n} {i % 3}".encode() * 1000
                        for data, pause in ((fresh, 1.3), (again, 0.0)):
                            why = await _push_and_head(http, srv.url, f"race/r{n % 2}", data, pause)
                            if why == REFUSED:
                                refused += 1
                            elif why:
                                lost.append(why)
                await asyncio.gather(*(pusher(n) for n in range(32)))
        finally:
            stop.set()
            runs = await gc
        assert runs >= 5  # gc did run during the pushes
        assert lost == []
        assert refused <= 32 * 8 * 2 // 20  # a refusal is rare: the pushes did race the gc
