"""The copy engine over OCI layouts: --all, host platform, --platform subsets, tags, links, re-runs."""

from __future__ import annotations

import json
import os

import pytest

from ocikit import CopyOptions, copy
from ocikit.core.digest import Digest
from ocikit.core.errors import DigestMismatch, PlatformNotFound, UsageError
from ocikit.model import ImageIndex, ImageManifest, parse_manifest
from ocikit.core.platforms import Platform, best_match, host_platform, parse_platform
from ocikit.testing import write_index
from ocikit.transports.layout import OCILayout

PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/ppc64le", "linux/s390x")


def blobs_of(lay: OCILayout, digest: Digest) -> set[Digest]:
    """Every blob under a manifest digest (itself included)."""
    out = {digest}
    m = parse_manifest(open(lay.blob_path(digest), "rb").read())
    for c in m.children():
        out |= blobs_of(lay, c.digest) if isinstance(m, ImageIndex) else {c.digest}
    return out


@pytest.fixture
def src(tmp_path) -> OCILayout:
    lay = OCILayout(str(tmp_path / "A"), create=True)
    # the host's platform is always among them, so the default copy has something to take
    plats = list(PLATFORMS)
    if best_match(host_platform(), [parse_platform(p) for p in plats]) is None:
        plats.append(str(host_platform()))
    write_index(lay, "multi", platforms=plats)
    return lay


def src_index(src: OCILayout) -> ImageIndex:
    m = parse_manifest(src.get_manifest_sync("multi").raw)
    assert isinstance(m, ImageIndex)
    return m


def test_all_keeps_index_bytes(src: OCILayout, tmp_path, ocikit) -> None:  # type: ignore[no-untyped-def]
    p = ocikit("--format", "json", "copy", "--all", f"oci:{src.path}:multi", f"oci:{tmp_path}/B:tag")
    res = json.loads(p.stdout)
    dst = OCILayout(str(tmp_path / "B"))
    raw = dst.get_manifest_sync("tag").raw
    assert raw == src.get_manifest_sync("multi").raw
    assert res["digest"] == res["sourceDigest"] == str(Digest.of(raw))
    assert blobs_of(dst, Digest.of(raw)) == blobs_of(src, Digest.of(raw))
    assert dst.validate() == []
    assert dst.tags() == ["tag"]


def test_default_copy_takes_host_platform(src: OCILayout, tmp_path) -> None:
    idx = src_index(src)
    want = idx.manifests[best_match(host_platform(), idx.platforms())]  # type: ignore[index]
    res = copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:host")
    dst = OCILayout(str(tmp_path / "B"))
    assert res.digest == want.digest and res.source_digest == idx.digest
    m = parse_manifest(dst.get_manifest_sync("host").raw)
    assert isinstance(m, ImageManifest) and m.digest == want.digest
    assert dst.validate() == []
    # nothing of the other platforms came along
    assert {e.digest for e in dst.entries()} == {want.digest}
    assert not os.path.exists(dst.blob_path(idx.digest))


def test_default_copy_with_explicit_host(src: OCILayout, tmp_path) -> None:
    idx = src_index(src)
    res = copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:s390x", CopyOptions(host=Platform("linux", "s390x")))
    assert res.digest == idx.manifests[3].digest and res.platforms == ["linux/s390x"]
    with pytest.raises(PlatformNotFound, match="no image for linux/riscv64"):
        copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/C:x", CopyOptions(host=Platform("linux", "riscv64")))


def test_platform_subset_writes_filtered_index(src: OCILayout, tmp_path) -> None:
    idx = src_index(src)
    opts = CopyOptions(platforms=[parse_platform("linux/arm64"), parse_platform("linux/s390x")])
    res = copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:sub", opts)
    dst = OCILayout(str(tmp_path / "B"))
    new = parse_manifest(dst.get_manifest_sync("sub").raw)
    assert isinstance(new, ImageIndex)
    assert new.digest != idx.digest and res.digest == new.digest and res.source_digest == idx.digest
    assert [m.digest for m in new.manifests] == [idx.manifests[1].digest, idx.manifests[3].digest]
    assert [str(p) for p in new.platforms()] == ["linux/arm64/v8", "linux/s390x"]
    assert dst.validate() == []
    for skipped in (idx.manifests[0], idx.manifests[2]):
        assert not os.path.exists(dst.blob_path(skipped.digest))


def test_platform_subset_preserving_index_digest(src: OCILayout, tmp_path, ocikit) -> None:  # type: ignore[no-untyped-def]
    idx = src_index(src)
    ocikit("copy", "--platform", "linux/ppc64le", "--preserve-index-digest",
           f"oci:{src.path}:multi", f"oci:{tmp_path}/B:sparse")
    dst = OCILayout(str(tmp_path / "B"))
    assert dst.get_manifest_sync("sparse").raw == src.get_manifest_sync("multi").raw
    assert blobs_of(src, idx.manifests[2].digest) <= {Digest(f"sha256:{n}") for n in
                                                      os.listdir(os.path.join(dst.path, "blobs", "sha256"))}
    for skipped in (idx.manifests[0], idx.manifests[1], idx.manifests[3]):
        assert not os.path.exists(dst.blob_path(skipped.digest))
    # the sparse index is honest about what is missing
    problems = dst.validate()
    assert len(problems) == len(idx.manifests) - 1 and all("is missing" in p for p in problems)


def test_second_tag_keeps_the_first(src: OCILayout, tmp_path) -> None:
    copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:one", CopyOptions(all_platforms=True))
    write_index(src, "other", platforms=("linux/amd64",), seed=7)
    copy(f"oci:{src.path}:other", f"oci:{tmp_path}/B:two", CopyOptions(all_platforms=True))
    dst = OCILayout(str(tmp_path / "B"))
    assert sorted(dst.tags()) == ["one", "two"]
    assert dst.get_manifest_sync("one").raw == src.get_manifest_sync("multi").raw
    assert dst.get_manifest_sync("two").raw == src.get_manifest_sync("other").raw
    assert dst.validate() == []


def test_blobs_are_hardlinked(src: OCILayout, tmp_path) -> None:
    res = copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:t", CopyOptions(all_platforms=True))
    dst = OCILayout(str(tmp_path / "B"))
    idx = src_index(src)
    layers_and_configs = set().union(*(blobs_of(src, m.digest) for m in idx.manifests)) - \
        {m.digest for m in idx.manifests}
    assert res.blobs_linked == len(layers_and_configs) and res.blobs_copied == 0
    for d in layers_and_configs:
        a, b = os.stat(src.blob_path(d)), os.stat(dst.blob_path(d))
        assert a.st_ino == b.st_ino and a.st_nlink >= 2


def test_rerun_skips_everything(src: OCILayout, tmp_path) -> None:
    first = copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:t", CopyOptions(all_platforms=True))
    copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:later", CopyOptions(host=Platform("linux", "ppc64le")))
    index_before = open(os.path.join(tmp_path, "B", "index.json"), "rb").read()
    mtime_before = os.stat(os.path.join(tmp_path, "B", "index.json")).st_mtime_ns
    again = copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:t", CopyOptions(all_platforms=True))
    assert again.blobs_skipped == first.blobs_linked + first.blobs_copied
    assert (again.blobs_copied, again.blobs_linked, again.bytes_copied) == (0, 0, 0)
    assert again.digest == first.digest
    assert open(os.path.join(tmp_path, "B", "index.json"), "rb").read() == index_before
    assert os.stat(os.path.join(tmp_path, "B", "index.json")).st_mtime_ns == mtime_before  # not even rewritten


def test_copy_into_symlinked_layout(src: OCILayout, tmp_path) -> None:
    real = OCILayout(str(tmp_path / "real"), create=True)
    os.symlink(real.path, tmp_path / "link")
    copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/link:t", CopyOptions(all_platforms=True))
    assert real.get_manifest_sync("t").raw == src.get_manifest_sync("multi").raw
    assert real.validate() == []


def test_corrupt_source_blob_is_refused(src: OCILayout, tmp_path) -> None:
    idx = src_index(src)
    child = parse_manifest(src.get_manifest_sync(str(idx.manifests[0].digest)).raw)
    path = src.blob_path(child.digest)  # a manifest: read and verified on every copy
    data = bytearray(open(path, "rb").read())
    data[10] ^= 1
    open(path, "wb").write(bytes(data))
    with pytest.raises(DigestMismatch):
        copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:t", CopyOptions(all_platforms=True))
    assert OCILayout(str(tmp_path / "B")).tags() == []  # nothing tagged that looks complete


def test_option_conflicts(src: OCILayout, tmp_path) -> None:
    with pytest.raises(UsageError, match="exclude each other"):
        copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:t",
             CopyOptions(all_platforms=True, platforms=[parse_platform("linux/amd64")]))
    with pytest.raises(UsageError, match="needs --platform"):
        copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:t", CopyOptions(preserve_index_digest=True))


def test_copy_by_digest_and_untagged(src: OCILayout, tmp_path) -> None:
    idx = src_index(src)
    res = copy(f"oci:{src.path}@{idx.manifests[1].digest}", f"oci:{tmp_path}/B")
    dst = OCILayout(str(tmp_path / "B"))
    assert res.digest == idx.manifests[1].digest
    assert [e.digest for e in dst.entries()] == [idx.manifests[1].digest] and dst.tags() == []


def test_corrupt_source_layer_is_not_linked(src: OCILayout, tmp_path) -> None:
    idx = src_index(src)
    child = parse_manifest(src.get_manifest_sync(str(idx.manifests[0].digest)).raw)
    assert isinstance(child, ImageManifest)
    layer = child.layers[0]
    path = src.blob_path(layer.digest)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 1  # same size, other bytes
    open(path, "wb").write(bytes(data))
    with pytest.raises(DigestMismatch) as ei:
        copy(f"oci:{src.path}:multi", f"oci:{tmp_path}/B:t", CopyOptions(all_platforms=True))
    assert str(layer.digest) in str(ei.value)
    dst = OCILayout(str(tmp_path / "B"))
    assert not os.path.exists(dst.blob_path(layer.digest)) and dst.tags() == []
    assert not [n for n in os.listdir(os.path.join(dst.path, "blobs", "sha256")) if n.startswith(".tmp-")]
