"""``ocikit registry gc`` walks with the shared graph walker: a manifest it cannot read stops the sweep.

Before the walker, the server's gc swallowed any error reading a manifest and marked nothing
under it, so once the grace period had passed it swept the config and layers of a manifest it
had merely failed to read. These tests corrupt a stored manifest on disk and check that the gc
refuses, naming the repository and the digest, and removes nothing.
"""

from __future__ import annotations

import os
import time
import urllib.request

import pytest

from ocikit.digest import Digest
from ocikit.errors import ManifestUnreadable
from ocikit.model import parse_index, parse_manifest
from ocikit.server.gc import collect_garbage
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage, blob_key
from ocikit.server.storage.store import RepositoryStore
from ocikit.testing.images import write_image_async, write_index_async

from helpers.cli import expect_failure, run_ocikit
from helpers.servers import start_ocikit_serve

REPO = "walk/app"


def _files(root: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _age(root: str, seconds: float = 7200) -> None:
    old = time.time() - seconds
    for p in _files(root):
        os.utime(os.path.join(root, p), (old, old))


def _damage(path: str, how: str) -> None:
    data = bytearray(open(path, "rb").read())
    if how == "flip":
        data[len(data) // 2] ^= 0x20  # same size, other bytes
    elif how == "truncate":
        del data[len(data) // 2:]
    elif how == "garbage":
        data = bytearray(b"\x00not json at all")
    else:
        raise AssertionError(how)
    with open(path, "wb") as f:
        f.write(bytes(data))


async def _populate(root: str) -> tuple[Digest, Digest, list[Digest]]:
    """A tagged image and a tagged index; returns (image digest, index digest, the image's blobs)."""
    st = RegistryStorage(FilesystemDriver(root, fsync=False))
    store = RepositoryStore(st, REPO)
    img = await write_image_async(store, "single", seed=3)
    idx = await write_index_async(store, "multi", seed=4)
    m = parse_manifest((await st.get_manifest(REPO, img.digest)).raw)
    return img.digest, idx.digest, [d.digest for d in m.children()]


@pytest.mark.parametrize("how", ["flip", "truncate", "garbage"])
async def test_gc_refuses_to_sweep_under_an_unreadable_manifest(tmp_path, how):
    root = str(tmp_path / "root")
    image, _, blobs = await _populate(root)
    _age(root)
    path = os.path.join(root, blob_key(image))
    _damage(path, how)
    before = _files(root)
    fresh = RegistryStorage(FilesystemDriver(root, fsync=False))  # no cached bytes: read from disk
    for dry_run in (True, False):
        with pytest.raises(ManifestUnreadable, match=f"repository {REPO}: cannot read manifest {image}") as ei:
            await collect_garbage(fresh, grace=60, upload_grace=60, dry_run=dry_run)
        assert ei.value.digest == image and ei.value.where == f"repository {REPO}"
    assert _files(root) == before  # nothing swept: not the config, not a layer, not a link
    for b in blobs:
        assert os.path.exists(os.path.join(root, blob_key(b)))
        assert await fresh.blob_size(REPO, b) is not None


async def test_gc_refuses_when_a_childs_bytes_are_gone(tmp_path):
    root = str(tmp_path / "root")
    _, index, _ = await _populate(root)
    _age(root)
    st = RegistryStorage(FilesystemDriver(root, fsync=False))
    child = parse_index((await st.get_manifest(REPO, index)).raw).manifests[1].digest
    os.unlink(os.path.join(root, blob_key(child)))  # its revision stays: listed, but unreadable
    before = _files(root)
    fresh = RegistryStorage(FilesystemDriver(root, fsync=False))
    with pytest.raises(ManifestUnreadable, match=f"cannot read manifest {child}.*missing from the blob store"):
        await collect_garbage(fresh, grace=60, upload_grace=60, untagged=True)
    assert _files(root) == before


async def test_gc_sweeps_again_once_the_manifest_is_repaired(tmp_path):
    root = str(tmp_path / "root")
    image, _, blobs = await _populate(root)
    path = os.path.join(root, blob_key(image))
    good = open(path, "rb").read()
    stray = os.path.join(root, blob_key(Digest.of(b"stray")))
    os.makedirs(os.path.dirname(stray), exist_ok=True)
    open(stray, "wb").write(b"stray")
    _age(root)
    _damage(path, "truncate")
    with pytest.raises(ManifestUnreadable):
        await collect_garbage(RegistryStorage(FilesystemDriver(root, fsync=False)), grace=60)
    assert os.path.exists(stray)
    open(path, "wb").write(good)
    _age(root)
    report = await collect_garbage(RegistryStorage(FilesystemDriver(root, fsync=False)), grace=60)
    assert report.blobs == [Digest.of(b"stray")] and report.manifests == [] and report.links == []
    assert all(os.path.exists(os.path.join(root, blob_key(b))) for b in blobs)


async def test_gc_cli_says_which_manifest_in_one_line(tmp_path):
    root = str(tmp_path / "root")
    image, _, _ = await _populate(root)
    _age(root)
    _damage(os.path.join(root, blob_key(image)), "flip")
    before = _files(root)
    expect_failure("registry", "gc", "--root", root, "--grace", "1m", code=1,
                   match=f"repository {REPO}: cannot read manifest {image}: manifest: digest mismatch")
    assert _files(root) - {"gc.lock"} == before


def test_gc_beside_a_running_server_refuses_and_the_image_still_pulls(tmp_path, multi_layout):
    """Pushed by ocikit's client to a live ``ocikit serve``; one child manifest corrupted on disk."""
    root = str(tmp_path / "live")
    with start_ocikit_serve(str(tmp_path), root=root) as srv:
        ref = f"docker://{srv.host}/walk/live:multi"
        run_ocikit("copy", "--all", "--dest-tls-verify=false", f"oci:{multi_layout.path}:multi", ref)
        index = parse_index(multi_layout.get_manifest_sync("multi").raw)
        child = index.manifests[2].digest
        blobs = parse_manifest(multi_layout.get_manifest_sync(str(child)).raw).children()
        _age(root)
        _damage(os.path.join(root, blob_key(child)), "truncate")
        expect_failure("registry", "gc", "--root", root, "--grace", "1m", "--untagged", code=1,
                       match=f"repository walk/live: cannot read manifest {child}")
        for b in blobs:  # the config and layers under the unreadable manifest are all still served
            with urllib.request.urlopen(f"{srv.url}/v2/walk/live/blobs/{b.digest}", timeout=30) as r:
                assert Digest.of(r.read()) == b.digest
