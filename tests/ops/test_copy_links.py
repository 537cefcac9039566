"""The copy engine credits each linked blob with what its own link returned, on real places.

Layout to layout on one filesystem: hardlinks; from tmpfs to the test's disk: copies (no
link or clone crosses filesystems); registry repository to repository: mounts, counted as
mounted and reported so in progress, all the blobs of an image linked concurrently.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from ocikit.content import LinkResult
from ocikit.model import Descriptor, ImageManifest, parse_manifest
from ocikit.ops.copy import CopyOptions, copy
from ocikit.progress import BlobDone
from ocikit.testing import LayerSpec, write_image
from ocikit.testing.images import write_image_async
from ocikit.transports.layout import OCILayout

from helpers.servers import docker_registry

LAYERS = tuple(LayerSpec(random_bytes=2000 + i) for i in range(6))


def _blobs(lay: OCILayout, tag: str) -> list[Descriptor]:
    rm = lay.get_manifest_sync(tag)
    m = parse_manifest(rm.raw, rm.media_type)
    assert isinstance(m, ImageManifest)
    return list(m.children())


async def test_a_layout_link_says_whether_it_hardlinked_or_copied(tmp_path) -> None:
    src = OCILayout(str(tmp_path / "src"), create=True)
    await write_image_async(src, "one", layers=LAYERS[:1])
    blob = _blobs(src, "one")[-1]
    same_fs = OCILayout(str(tmp_path / "same"), create=True)
    assert await same_fs.link_blob_from(src, blob) is LinkResult.HARDLINKED
    assert os.stat(same_fs.blob_path(blob.digest)).st_ino == os.stat(src.blob_path(blob.digest)).st_ino
    if os.stat("/dev/shm").st_dev == os.stat(str(tmp_path)).st_dev:
        pytest.skip("/dev/shm is on the test's filesystem")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        other_fs = OCILayout(os.path.join(shm, "lay"), create=True)
        assert await other_fs.link_blob_from(src, blob) is LinkResult.COPIED
        assert os.path.getsize(other_fs.blob_path(blob.digest)) == blob.size
    assert await same_fs.link_blob_from(object(), blob) is LinkResult.NOT_LINKED  # type: ignore[arg-type]


def test_layout_to_layout_copy_counts_links(tmp_path) -> None:
    src = OCILayout(str(tmp_path / "src"), create=True)
    write_image(src, "one", layers=LAYERS)
    res = copy(f"oci:{src.path}:one", f"oci:{tmp_path}/dst:one", CopyOptions(jobs=6))
    blobs = _blobs(src, "one")
    assert (res.blobs_linked, res.bytes_linked) == (len(blobs), sum(b.size for b in blobs))
    assert res.blobs_copied == res.blobs_mounted == 0


@pytest.mark.peer
def test_registry_to_registry_copy_counts_every_concurrent_mount(tmp_path) -> None:
    src = OCILayout(str(tmp_path / "src"), create=True)
    write_image(src, "one", layers=LAYERS)
    blobs = _blobs(src, "one")
    with docker_registry(str(tmp_path / "reg")) as reg:
        first = copy(f"oci:{src.path}:one", f"docker://{reg.host}/a/one:v1")
        assert first.blobs_copied == len(blobs)
        events: list[BlobDone] = []
        res = copy(f"docker://{reg.host}/a/one:v1", f"docker://{reg.host}/b/one:v1",
                   CopyOptions(jobs=6, progress=lambda e: events.append(e) if isinstance(e, BlobDone) else None))
    assert (res.blobs_mounted, res.bytes_mounted) == (len(blobs), sum(b.size for b in blobs))
    assert res.blobs_linked == res.blobs_copied == 0
    assert sorted((e.digest, e.how) for e in events) == sorted((b.digest, "mounted") for b in blobs)
