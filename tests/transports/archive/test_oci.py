"""oci-archive: ocikit writes, skopeo reads; skopeo writes, ocikit reads; several images; atomic writes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile

import pytest

from ocikit import CopyOptions, copy
from ocikit.core.errors import ArchiveInvalid, DigestMismatch, ManifestUnknown
from ocikit.testing import write_image, write_index
from ocikit.testing.images import LayerSpec
from ocikit.transports import open_store
from ocikit.transports.archive.oci import OCIArchiveReader
from ocikit.transports.layout import OCILayout

from helpers.cli import expect_failure, OCIKIT
from helpers.peers import skopeo, skopeo_digest, skopeo_inspect

pytestmark = pytest.mark.peer




@pytest.fixture
def src(tmp_path) -> OCILayout:
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_image(lay, "one", layers=(LayerSpec(random_bytes=3000), LayerSpec(random_bytes=2000, compression="none")))
    write_image(lay, "two", seed=7)
    write_index(lay, "multi", seed=3)
    return lay


def digest_of(lay: OCILayout, tag: str) -> str:
    return str(lay.resolve_sync(tag).digest)


def leftovers(d) -> list[str]:
    return [n for n in os.listdir(d) if "ocikit-" in n]


def test_ocikit_writes_several_images_skopeo_reads_them(tmp_path, src, peer, ocikit):
    peer("skopeo")
    arch = tmp_path / "out.tar"
    copy(f"oci:{src.path}:one", f"oci-archive:{arch}:one")
    copy(f"oci:{src.path}:two", f"oci-archive:{arch}:two")          # added, "one" kept
    copy(f"oci:{src.path}:multi", f"oci-archive:{arch}:multi", CopyOptions(all_platforms=True))
    for tag in ("one", "two", "multi"):
        want = digest_of(src, tag)
        assert skopeo_digest(f"oci-archive:{arch}:{tag}") == want
        out = json.loads(ocikit("inspect", f"oci-archive:{arch}:{tag}").stdout)
        assert out["Digest"] == want
    # skopeo copies every image out of it to a layout, byte-exact
    skopeo("copy", "--preserve-digests", f"oci-archive:{arch}:one", f"oci:{tmp_path}/back:one")
    assert digest_of(OCILayout(str(tmp_path / "back")), "one") == digest_of(src, "one")
    skopeo("copy", "--all", "--preserve-digests", f"oci-archive:{arch}:multi", f"oci:{tmp_path}/back:multi")
    assert digest_of(OCILayout(str(tmp_path / "back")), "multi") == digest_of(src, "multi")
    assert leftovers(tmp_path) == []
    with tarfile.open(arch) as tf:
        names = tf.getnames()
    assert "index.json" in names and "oci-layout" in names
    assert all(n == "blobs" or n.startswith("blobs/") for n in names if n not in ("index.json", "oci-layout"))


def test_skopeo_writes_ocikit_reads(tmp_path, src, peer, ocikit):
    peer("skopeo")
    arch = tmp_path / "sk.tar"
    skopeo("copy", f"oci:{src.path}:one", f"oci-archive:{arch}:one")
    d = skopeo_digest(f"oci-archive:{arch}:one")
    assert json.loads(ocikit("inspect", f"oci-archive:{arch}:one").stdout)["Digest"] == d
    assert json.loads(ocikit("inspect", f"oci-archive:{arch}").stdout)["Digest"] == d  # the only image
    r = copy(f"oci-archive:{arch}:one", f"oci:{tmp_path}/l:x")
    assert r.digest == d and not r.digest_changed
    assert OCILayout(str(tmp_path / "l")).validate() == []
    # and from ocikit's copy of it back into a second archive, skopeo reads the same digest
    copy(f"oci:{tmp_path}/l:x", f"oci-archive:{tmp_path}/again.tar:x")
    assert skopeo_digest(f"oci-archive:{tmp_path}/again.tar:x") == d


def test_tags_move_and_selection_errors(tmp_path, src):
    arch = tmp_path / "a.tar"
    copy(f"oci:{src.path}:one", f"oci-archive:{arch}:t")
    copy(f"oci:{src.path}:two", f"oci-archive:{arch}:other")
    copy(f"oci:{src.path}:two", f"oci-archive:{arch}:t")  # t moves to image two; image one is gone
    with _reader(arch) as r:
        assert sorted(e.ref_name for e in r.entries) == ["other", "t"]
        assert str(r.resolve_sync("t").digest) == digest_of(src, "two")
        with pytest.raises(ManifestUnknown, match="2 images"):
            r.resolve_sync(None)
        with pytest.raises(ManifestUnknown, match="no image named"):
            r.resolve_sync("nope")
        assert r.member(digest_of(src, "one")) is None  # unreachable blobs are not carried over


class _reader:
    def __init__(self, path) -> None:
        self.r = OCIArchiveReader(str(path))

    def __enter__(self) -> OCIArchiveReader:
        return self.r

    def __exit__(self, *a) -> None:
        self.r.tar.close()


def test_failed_copy_leaves_the_archive_as_it_was(tmp_path, src):
    arch = tmp_path / "a.tar"
    copy(f"oci:{src.path}:one", f"oci-archive:{arch}:one")
    before = arch.read_bytes()
    # corrupt a layer of image two in the source: the copy must fail and change nothing
    m = json.loads(open(src.blob_path(digest_of(src, "two")), "rb").read())
    layer = src.blob_path(m["layers"][0]["digest"])
    os.chmod(layer, 0o644)
    data = bytearray(open(layer, "rb").read())
    data[10] ^= 0xFF
    open(layer, "wb").write(bytes(data))
    with pytest.raises(DigestMismatch):
        copy(f"oci:{src.path}:two", f"oci-archive:{arch}:two")
    assert arch.read_bytes() == before
    with pytest.raises(DigestMismatch):
        copy(f"oci:{src.path}:two", f"oci-archive:{tmp_path}/new.tar:two")
    assert not (tmp_path / "new.tar").exists()
    assert leftovers(tmp_path) == []


def test_blobs_are_served_from_the_tar_not_memory(tmp_path, src):
    """Reading indexes headers once; a blob is streamed by offset in bounded chunks."""
    import asyncio

    arch = tmp_path / "a.tar"
    lay = OCILayout(str(tmp_path / "big"), create=True)
    write_image(lay, "b", layers=(LayerSpec(random_bytes=6 << 20, compression="none"),))
    copy(f"oci:{lay.path}:b", f"oci-archive:{arch}:b")
    store = open_store(f"oci-archive:{arch}")

    async def biggest_chunk() -> int:
        from ocikit.content import read_blob
        from ocikit.model import parse_manifest
        rm = await store.get_manifest("b")
        m = parse_manifest(rm.raw)
        await read_blob(store, m.config)
        sizes = [len(c) async for c in store.blob_chunks(m.layers[0])]
        await store.close()
        return max(sizes)

    assert asyncio.run(biggest_chunk()) <= 1 << 20


MALFORMED_OCI = {   # case -> the one-line error it must give
    "no-index": r"bad\.tar: index 'index\.json' is missing from the archive$",
    "no-layout": r"bad\.tar: no oci-layout file; not an OCI layout archive$",
    "bad-index": r"bad\.tar/index\.json: manifests\[0\]\.mediaType: required field missing$",
    "missing-blob": r"bad\.tar: blob sha256:[0-9a-f]{64} is missing from the archive$",
    "wrong-digest": r"^ocikit: error: blob: digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:",
    "traversal": r"bad\.tar: member '\.\./escape' escapes the archive \(path traversal\)$",
}


@pytest.mark.parametrize("case", list(MALFORMED_OCI))
def test_malformed_oci_archives(tmp_path, src, case):
    good = tmp_path / "good.tar"
    copy(f"oci:{src.path}:one", f"oci-archive:{good}:one")
    bad = tmp_path / "bad.tar"
    want = digest_of(src, "one")
    m = json.loads(open(src.blob_path(want), "rb").read())
    victim = f"blobs/sha256/{m['layers'][0]['digest'].split(':')[1]}"
    with tarfile.open(good) as tin, tarfile.open(bad, "w") as tout:
        for ti in tin.getmembers():
            data = tin.extractfile(ti).read() if ti.isreg() else None
            if case == "no-index" and ti.name == "index.json" or case == "no-layout" and ti.name == "oci-layout":
                continue
            if case == "missing-blob" and ti.name == victim:
                continue
            if case == "bad-index" and ti.name == "index.json":
                data = b'{"schemaVersion": 2, "manifests": [{"digest": 3}]}'
            if case == "wrong-digest" and ti.name == victim:
                data = bytes([data[0] ^ 1]) + data[1:]
            if data is not None:
                ti.size = len(data)
                tout.addfile(ti, io.BytesIO(data))
            else:
                tout.addfile(ti)
        if case == "traversal":
            ti = tarfile.TarInfo("../escape")
            ti.size = 1
            tout.addfile(ti, io.BytesIO(b"x"))
    expect_failure("copy", f"oci-archive:{bad}:one", f"oci:{tmp_path}/out:one", match=MALFORMED_OCI[case], code=1)
    if case in ("no-index", "no-layout", "bad-index", "traversal"):
        with pytest.raises(ArchiveInvalid, match=MALFORMED_OCI[case]):
            OCIArchiveReader(str(bad))


def test_concurrent_writers_of_one_archive_lose_nothing(tmp_path, src):
    """Two processes add different images at once: the directory lock + re-read at publish keeps both."""

    arch = tmp_path / "shared.tar"
    procs = [subprocess.Popen([*OCIKIT, "copy", f"oci:{src.path}:{tag}",
                               f"oci-archive:{arch}:{tag}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for tag in ("one", "two", "multi")]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    with _reader(arch) as r:
        assert sorted(e.ref_name for e in r.entries) == ["multi", "one", "two"]
        for tag in ("one", "two"):
            assert str(r.resolve_sync(tag).digest) == digest_of(src, tag)
    assert leftovers(tmp_path) == []


def test_streamed_blobs_and_a_failed_one_leave_a_valid_archive(tmp_path, src, peer):
    """Blobs from a non-layout source stream into reserved members; a blob that fails verification
    becomes an inert member and the retried blob lands correctly."""
    import asyncio

    from ocikit.core.digest import Digest
    from ocikit.model import Descriptor
    from ocikit.transports.archive.oci import OCIArchiveWriter

    peer("skopeo")
    arch = tmp_path / "s.tar"

    async def go() -> None:
        w = OCIArchiveWriter(str(arch))
        good = b"layer bytes " * 1000
        desc = Descriptor("application/vnd.oci.image.layer.v1.tar", Digest.of(good), len(good))

        async def chunks(data: bytes):
            for i in range(0, len(data), 4096):
                yield data[i:i + 4096]

        with pytest.raises(DigestMismatch):
            await w.put_blob(desc, chunks(good[:-1] + b"!"))
        assert not await w.has_blob(desc)
        await w.put_blob(desc, chunks(good))
        assert await w.has_blob(desc)
        assert b"".join([c async for c in w.blob_chunks(desc)]) == good
        await w.close()

    asyncio.run(go())
    with tarfile.open(arch) as tf:
        names = tf.getnames()
    assert any(n.startswith(".ocikit-abandoned-") for n in names)
    # a real image through the streaming path (archive source -> oci-archive), read by skopeo
    copy(f"oci:{src.path}:one", f"oci-archive:{tmp_path}/first.tar:one")
    r = copy(f"oci-archive:{tmp_path}/first.tar:one", f"oci-archive:{arch}:img")
    assert r.blobs_copied == 3 and r.digest == digest_of(src, "one")
    assert skopeo_inspect(f"oci-archive:{arch}:img")["Digest"] == r.digest
    skopeo("copy", "--preserve-digests", f"oci-archive:{arch}:img", f"oci:{tmp_path}/back:img")
    assert leftovers(tmp_path) == []
