"""OCI image layouts: structure, verified atomic writes, tags, lookup, gc, validate, concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from typing import AsyncIterator

import pytest

from ocikit.core import mediatypes as mt
from ocikit.content import read_blob
from ocikit.core.digest import Digest
from ocikit.core.errors import (
    BlobUnknown,
    DigestMismatch,
    LayoutInvalid,
    ManifestInvalid,
    ManifestUnknown,
    SizeInvalid,
    StorageFull,
)
from ocikit.model import Descriptor, build_manifest, parse_manifest
from ocikit.testing import FileEntry, LayerSpec, write_image, write_index
from ocikit.transports.layout import INDEX_FILE, TMP_PREFIX, VERIFIED_XATTR, OCILayout
from ocikit.transports.layout.verified import has_verified_record as _has_verified_record
from ocikit.transports.layout.verified import record_verified as _record_verified

from helpers.mounts import mounted_tmpfs

BASE = LayerSpec(entries=[FileEntry("etc/os-release", data=b"ID=debian\n"), FileEntry("bin", kind="dir")])


def blob_files(lay: OCILayout) -> set[str]:
    out = set()
    for alg in os.listdir(os.path.join(lay.path, "blobs")):
        for name in os.listdir(os.path.join(lay.path, "blobs", alg)):
            out.add(f"{alg}:{name}")
    return out


def temp_files(lay: OCILayout) -> list[str]:
    return [n for n in blob_files(lay) if n.split(":", 1)[1].startswith(TMP_PREFIX)]


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# ---- structure ----------------------------------------------------------------------------------


def test_create_structure(tmp_path) -> None:
    lay = OCILayout(str(tmp_path / "new" / "lay"), create=True)
    assert json.loads((tmp_path / "new/lay/oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads((tmp_path / "new/lay/index.json").read_bytes()) == {
        "schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    assert (tmp_path / "new/lay/blobs/sha256").is_dir()
    assert lay.entries() == [] and lay.tags() == []
    assert lay.location == f"oci:{tmp_path}/new/lay"
    # opening again (create or not) keeps what is there
    write_image(lay, "t")
    assert OCILayout(lay.path, create=True).tags() == ["t"]


@pytest.mark.parametrize("setup, error, fragment", [
    (lambda p: None, LayoutInvalid, "no such OCI layout directory"),
    (lambda p: p.mkdir(), LayoutInvalid, "not an OCI layout (no oci-layout file)"),
    (lambda p: (p.mkdir(), (p / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')), LayoutInvalid,
     "unsupported imageLayoutVersion '2.0.0'"),
    (lambda p: (p.mkdir(), (p / "oci-layout").write_text('{"imageLayoutVersion": 1}')), LayoutInvalid,
     "unsupported imageLayoutVersion 1"),
    (lambda p: (p.mkdir(), (p / "oci-layout").write_text("{not json")), LayoutInvalid, "not valid JSON"),
    (lambda p: p.write_text("x"), LayoutInvalid, "no such OCI layout directory"),
])
def test_open_errors(tmp_path, setup, error, fragment) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "lay"
    setup(p)
    with pytest.raises(error) as ei:
        OCILayout(str(p))
    assert fragment in str(ei.value)


def test_create_over_a_file(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(LayoutInvalid, match="exists and is not a directory"):
        OCILayout(str(tmp_path / "f"), create=True)


def test_broken_index_json(layout: OCILayout) -> None:
    with open(os.path.join(layout.path, INDEX_FILE), "w") as f:
        f.write('{"schemaVersion": 2, "manifests": [')
    with pytest.raises(LayoutInvalid, match="index.json: not valid JSON"):
        layout.entries()
    with pytest.raises(LayoutInvalid, match="not valid JSON"):
        write_image(layout, "x")
    assert any("not valid JSON" in p for p in layout.validate())
    os.unlink(os.path.join(layout.path, INDEX_FILE))
    with pytest.raises(LayoutInvalid, match="no index.json"):
        layout.entries()


# ---- verified atomic blob writes ----------------------------------------------------------------


def test_put_blob_verified_and_atomic(layout: OCILayout) -> None:
    data = b"hello blob"
    good = Descriptor("application/octet-stream", Digest.of(data), len(data))
    run(layout.put_blob(good, chunks_of(data[:3], data[3:])))
    assert open(layout.blob_path(good.digest), "rb").read() == data
    assert run(layout.has_blob(good))
    assert run(read_blob(layout, good)) == data

    wrong = Descriptor("application/octet-stream", Digest.of(b"something else"), len(data))
    with pytest.raises(DigestMismatch) as ei:
        run(layout.put_blob(wrong, chunks_of(data)))
    assert str(wrong.digest) in str(ei.value) and str(good.digest) in str(ei.value)
    assert not os.path.exists(layout.blob_path(wrong.digest))
    assert temp_files(layout) == []
    assert not run(layout.has_blob(wrong))


@pytest.mark.parametrize("parts, error", [
    ((b"short",), SizeInvalid),
    ((b"0123456789", b"extra"), SizeInvalid),
])
def test_put_blob_wrong_size_leaves_nothing(layout: OCILayout, parts, error) -> None:  # type: ignore[no-untyped-def]
    d = Descriptor("application/octet-stream", Digest.of(b"0123456789"), 10)
    with pytest.raises(error):
        run(layout.put_blob(d, chunks_of(*parts)))
    assert blob_files(layout) == set()


def test_put_blob_source_fails_midway(layout: OCILayout) -> None:
    d = Descriptor("application/octet-stream", Digest.of(b"0123456789"), 10)

    async def broken() -> AsyncIterator[bytes]:
        yield b"01234"
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        run(layout.put_blob(d, broken()))
    assert blob_files(layout) == set()


def test_write_blob_file_sync_path(layout: OCILayout) -> None:
    d = Descriptor("application/octet-stream", Digest.of(b"abc"), 3)
    with pytest.raises(DigestMismatch):
        layout.write_blob_file(d, iter([b"abd"]))
    assert blob_files(layout) == set()
    layout.write_blob_file(d, iter([b"a", b"bc"]))
    assert layout.has_blob_sync(d)
    assert layout.put_bytes(b"abc") == Descriptor("application/octet-stream", Digest.of(b"abc"), 3)


# ---- several tags in one layout (seed 002: httpd 2.4.47 and 2.4.48 side by side) ---------------


@pytest.fixture
def httpd(tmp_path) -> tuple[OCILayout, Descriptor, Descriptor]:
    lay = OCILayout(str(tmp_path / "httpd"), create=True)
    d48 = write_image(lay, "2.4.48", layers=[BASE, LayerSpec(random_bytes=2048)], seed=48)
    d47 = write_image(lay, "2.4.47", layers=[BASE, LayerSpec(random_bytes=2048)], seed=47)
    return lay, d47, d48


def test_two_tags_share_blobs(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, d48 = httpd
    assert lay.tags() == ["2.4.48", "2.4.47"]
    index = json.loads(open(os.path.join(lay.path, INDEX_FILE), "rb").read())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["2.4.48", "2.4.47"]
    m47 = parse_manifest(lay.get_manifest_sync("2.4.47").raw)
    m48 = parse_manifest(lay.get_manifest_sync("2.4.48").raw)
    assert m47.layers[0] == m48.layers[0]  # the shared base layer
    assert m47.layers[1] != m48.layers[1]
    # 2 manifests + 2 configs + 1 shared + 2 own layers
    assert len(blob_files(lay)) == 7
    assert lay.validate() == []


def test_lookup_by_tag_and_digest(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, d48 = httpd
    assert run(lay.resolve("2.4.47")).digest == d47.digest
    assert run(lay.resolve(str(d48.digest))).digest == d48.digest
    rm = run(lay.get_manifest(str(d47.digest)))
    assert rm.digest == d47.digest and Digest.of(rm.raw) == d47.digest and rm.media_type == mt.OCI_MANIFEST
    assert sorted(run(lay.list_tags())) == ["2.4.47", "2.4.48"]
    with pytest.raises(ManifestUnknown, match="no tag '2.4.49'"):
        run(lay.resolve("2.4.49"))
    with pytest.raises(ManifestUnknown, match="holds 2 images; name one"):
        run(lay.resolve(None))
    with pytest.raises(ManifestUnknown, match="no manifest sha256:"):
        run(lay.resolve("sha256:" + "0" * 64))


def test_resolve_digest_of_non_manifest_blobs(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, _ = httpd
    m = parse_manifest(lay.get_manifest_sync("2.4.47").raw)
    for blob in (m.config, m.layers[0], m.layers[1]):
        with pytest.raises(ManifestUnknown, match="is a blob, not a manifest"):
            run(lay.resolve(str(blob.digest)))


def test_resolve_digest_of_index_child(multi_layout: OCILayout) -> None:
    idx = parse_manifest(multi_layout.get_manifest_sync("multi").raw)
    child = idx.manifests[1]
    got = run(multi_layout.resolve(str(child.digest)))
    assert (got.digest, got.media_type, got.size) == (child.digest, child.media_type, child.size)
    assert run(multi_layout.get_manifest(str(child.digest))).digest == child.digest


def test_untag_keeps_the_other(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, d48 = httpd
    removed = lay.untag("2.4.47")
    assert removed.digest == d47.digest
    assert lay.tags() == ["2.4.48"]
    assert run(lay.resolve(None)).digest == d48.digest
    with pytest.raises(ManifestUnknown, match="no tag '2.4.47'"):
        lay.untag("2.4.47")
    run(lay.delete_manifest(str(d48.digest)))
    assert lay.entries() == []
    with pytest.raises(ManifestUnknown, match="the layout holds no image"):
        run(lay.resolve(None))
    with pytest.raises(ManifestUnknown, match="no index.json entry"):
        run(lay.delete_manifest(str(d48.digest)))


def test_retag_moves_the_tag(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, d48 = httpd
    lay.add_entry(Descriptor(mt.OCI_MANIFEST, d47.digest, d47.size), "2.4.48")
    assert lay.tags() == ["2.4.48", "2.4.47"]  # re-pointed where it stands
    assert run(lay.resolve("2.4.48")).digest == d47.digest
    # untagged root entries are not duplicated
    lay.add_entry(Descriptor(mt.OCI_MANIFEST, d48.digest, d48.size), None)
    lay.add_entry(Descriptor(mt.OCI_MANIFEST, d48.digest, d48.size), None)
    assert len(lay.entries()) == 3


def test_same_tag_twice_in_index_json(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, d48 = httpd
    path = os.path.join(lay.path, INDEX_FILE)
    doc = json.loads(open(path, "rb").read())
    dup = json.loads(json.dumps(doc["manifests"][1]))  # 2.4.47 again
    doc["manifests"].append(dup)
    open(path, "w").write(json.dumps(doc))
    assert run(lay.resolve("2.4.47")).digest == d47.digest  # same digest twice: harmless
    doc["manifests"][-1]["annotations"]["org.opencontainers.image.ref.name"] = "2.4.48"
    open(path, "w").write(json.dumps(doc))
    with pytest.raises(LayoutInvalid, match="tag '2.4.48' names 2 different manifests"):
        run(lay.resolve("2.4.48"))
    assert any("tag '2.4.48' names 2 different manifests" in p for p in lay.validate())
    # tagging again repairs it
    lay.add_entry(Descriptor(mt.OCI_MANIFEST, d48.digest, d48.size), "2.4.48")
    assert run(lay.resolve("2.4.48")).digest == d48.digest
    assert lay.validate() == []


# ---- corrupt and missing blobs --------------------------------------------------------------------


def corrupt(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    os.chmod(path, 0o644)
    open(path, "wb").write(bytes(data))


def test_corrupt_manifest(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, _ = httpd
    corrupt(lay.blob_path(d47.digest))
    with pytest.raises(DigestMismatch) as ei:
        lay.get_manifest_sync("2.4.47")
    assert str(d47.digest) in str(ei.value)
    problems = lay.validate()
    assert len(problems) == 1 and f"blob {d47.digest} has digest sha256:" in problems[0]


def test_missing_manifest(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, _ = httpd
    os.unlink(lay.blob_path(d47.digest))
    with pytest.raises(ManifestUnknown, match="missing from blobs/"):
        lay.get_manifest_sync("2.4.47")
    problems = lay.validate()
    assert problems == [f"index.json manifests[1]: blob {d47.digest} ({mt.OCI_MANIFEST}) is missing"]


def test_missing_and_corrupt_layers(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, d48 = httpd
    m47 = parse_manifest(lay.get_manifest_sync("2.4.47").raw)
    m48 = parse_manifest(lay.get_manifest_sync("2.4.48").raw)
    os.unlink(lay.blob_path(m47.layers[1].digest))                        # missing
    with open(lay.blob_path(m48.layers[1].digest), "ab") as f:            # wrong size
        f.write(b"x")
    corrupt(lay.blob_path(m47.config.digest))                             # corrupt, same size
    problems = lay.validate()
    assert len(problems) == 3, problems
    text = "\n".join(problems)
    assert f"layers[1]: blob {m47.layers[1].digest} ({m47.layers[1].media_type}) is missing" in text
    assert f"layers[1]: blob {m48.layers[1].digest} is {m48.layers[1].size + 1} bytes, descriptor says " \
           f"{m48.layers[1].size}" in text
    assert f"config: blob {m47.config.digest} has digest" in text
    # without hashing no digest is computed; missing and wrong-size blobs are still found
    quick = lay.validate(hash_blobs=False)
    assert not any("has digest" in p for p in quick)
    assert sum("is missing" in p or "descriptor says" in p for p in quick) == 2

    async def read_all(desc: Descriptor) -> bytes:
        return await read_blob(lay, desc)

    with pytest.raises(BlobUnknown, match="missing from blobs/"):
        run(read_all(m47.layers[1]))
    with pytest.raises(SizeInvalid):
        run(read_all(m48.layers[1]))
    with pytest.raises(DigestMismatch):
        run(read_all(m47.config))


def test_validate_reports_bad_config_and_mismatched_type(layout: OCILayout) -> None:
    cfg = layout.put_bytes(b'{"architecture": "amd64"}', mt.OCI_CONFIG)
    m = build_manifest(cfg, [])
    run(layout.put_manifest(m.raw, mt.OCI_MANIFEST, "bad"))
    problems = layout.validate()
    assert len(problems) == 1 and "os: required field missing" in problems[0]
    # an index.json entry whose media type disagrees with the manifest
    layout.add_entry(Descriptor(mt.DOCKER_MANIFEST, m.digest, m.size), "liar")
    assert any(f"descriptor says {mt.DOCKER_MANIFEST}, the manifest is {mt.OCI_MANIFEST}" in p
               for p in layout.validate())


# ---- gc ------------------------------------------------------------------------------------------


def test_gc_removes_unreferenced_keeps_reachable(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, d48 = httpd
    before = blob_files(lay)
    stray = lay.put_bytes(b"nobody points here")
    res = lay.gc(dry_run=True)
    assert res.removed == [str(stray.digest)] and res.bytes_freed == len(b"nobody points here")
    assert str(stray.digest) in blob_files(lay)
    res = lay.gc()
    assert res.removed == [str(stray.digest)] and res.kept == 7
    assert blob_files(lay) == before
    # untag 2.4.47: its manifest, config and own layer go; the shared base stays
    m47 = parse_manifest(lay.get_manifest_sync("2.4.47").raw)
    lay.untag("2.4.47")
    res = lay.gc()
    assert sorted(res.removed) == sorted([str(d47.digest), str(m47.config.digest), str(m47.layers[1].digest)])
    assert os.path.exists(lay.blob_path(m47.layers[0].digest))
    assert lay.validate() == [] and lay.get_manifest_sync("2.4.48").digest == d48.digest


def test_gc_keeps_index_children_and_subjects(multi_layout: OCILayout) -> None:
    lay = multi_layout
    # an untagged image that an artifact (tagged) refers to as its subject
    subject = write_image(lay, None, seed=9, root=False)
    art_cfg = lay.put_bytes(mt.EMPTY_JSON, mt.OCI_EMPTY)
    art_blob = lay.put_bytes(b"sbom data", "application/spdx+json")
    art = build_manifest(art_cfg, [art_blob], artifact_type="application/spdx+json",
                         subject=Descriptor(subject.media_type, subject.digest, subject.size))
    run(lay.put_manifest(art.raw, art.media_type, "sbom"))
    before = blob_files(lay)
    res = lay.gc()
    assert res.removed == []
    assert blob_files(lay) == before
    assert str(subject.digest) in before
    lay.untag("sbom")
    removed = set(lay.gc().removed)
    assert str(art.digest) in removed and str(art_blob.digest) in removed and str(subject.digest) in removed
    assert lay.validate() == []


def test_gc_refuses_when_a_manifest_is_unreadable(httpd) -> None:  # type: ignore[no-untyped-def]
    lay, d47, _ = httpd
    corrupt(lay.blob_path(d47.digest))
    before = blob_files(lay)
    with pytest.raises(LayoutInvalid, match=f"cannot walk manifest {d47.digest}"):
        lay.gc()
    assert blob_files(lay) == before


def test_gc_keeps_blobs_of_unknown_json_documents(layout: OCILayout) -> None:
    inner = layout.put_bytes(b"payload", "application/octet-stream")
    doc = json.dumps({"mediaType": "application/vnd.example.bundle+json",
                      "blobs": [inner.to_dict()]}).encode()
    outer = layout.put_bytes(doc, "application/vnd.example.bundle+json")
    layout.add_entry(outer, "bundle")
    assert layout.gc().removed == []


def test_gc_temp_files(layout: OCILayout) -> None:
    """A temp file nobody holds (its writer died) goes once older than the grace; one a live
    writer holds (its flock) stays whatever its age."""
    import fcntl

    d = os.path.join(layout.path, "blobs", "sha256")
    live, dead = os.path.join(d, TMP_PREFIX + "live"), os.path.join(d, TMP_PREFIX + "dead")
    for p in (live, dead):
        open(p, "wb").write(b"partial")
    old = time.time() - 7200
    os.utime(live, (old, old))
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert layout.gc(grace_seconds=3600).removed == []  # the dead one is younger than the grace
        res = layout.gc()
        assert res.removed == [dead]
        assert os.path.exists(live) and not os.path.exists(dead)
    assert layout.gc().removed == [live]  # its writer let go


def test_gc_grace(layout: OCILayout) -> None:
    stray = layout.put_bytes(b"just written")
    assert layout.gc(grace_seconds=3600).removed == []
    assert layout.gc().removed == [str(stray.digest)]


# ---- paths ---------------------------------------------------------------------------------------


def test_symlinked_layout_path(tmp_path) -> None:
    real = OCILayout(str(tmp_path / "real"), create=True)
    os.symlink(real.path, tmp_path / "link")
    via = OCILayout(str(tmp_path / "link"))
    d = write_image(via, "v1")
    assert real.tags() == ["v1"] and run(real.resolve("v1")).digest == d.digest
    assert via.validate() == [] and via.gc().removed == []
    # creating through a dangling symlink is refused clearly
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    with pytest.raises(LayoutInvalid):
        OCILayout(str(tmp_path / "dangling"), create=True)


# ---- ENOSPC ----------------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):  # type: ignore[no-untyped-def]
    with mounted_tmpfs(str(tmp_path / "small"), "256k"):
        yield tmp_path / "small"


def test_no_space_left(small_fs) -> None:  # type: ignore[no-untyped-def]
    lay = OCILayout(str(small_fs / "lay"), create=True)
    first = write_image(lay, "small")
    data = os.urandom(1 << 20)
    d = Descriptor("application/octet-stream", Digest.of(data), len(data))
    with pytest.raises(StorageFull, match="no space left"):
        run(lay.put_blob(d, chunks_of(*[data[i:i + 65536] for i in range(0, len(data), 65536)])))
    with pytest.raises(StorageFull, match="no space left"):
        lay.write_blob_file(d, iter([data]))
    assert temp_files(lay) == [] and not os.path.exists(lay.blob_path(d.digest))
    # the layout is still whole and usable
    assert lay.validate() == [] and run(lay.resolve("small")).digest == first.digest


# ---- eight writers -----------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import os, sys, time
    from ocikit.testing import write_image, FileEntry, LayerSpec
    from ocikit.transports.layout import OCILayout
    path, go, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lay = OCILayout(path, create=True, sync=False)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(4):
        # a layer every writer writes at the same moment, and one of its own
        shared = LayerSpec(entries=[FileEntry("shared.txt", data=b"same for all")])
        write_image(lay, f"w{n}-t{i}", seed=n * 10 + i, layers=[shared, LayerSpec(random_bytes=256)])
""")


def test_eight_writers_lose_no_entry(tmp_path) -> None:
    path = str(tmp_path / "shared")
    go = str(tmp_path / "go")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, go, str(n)], stderr=subprocess.PIPE)
             for n in range(8)]
    time.sleep(0.2)
    open(go, "w").close()
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    lay = OCILayout(path)
    assert sorted(lay.tags()) == sorted(f"w{n}-t{i}" for n in range(8) for i in range(4))
    assert len(lay.entries()) == 32
    assert lay.validate() == []
    assert temp_files(lay) == []


# ---- the image generator every later test uses ----------------------------------------------------


def test_generator_shapes_and_determinism(tmp_path) -> None:
    import gzip
    import io
    import tarfile

    from ocikit.testing import make_layer

    spec = LayerSpec(entries=[
        FileEntry("etc", kind="dir"), FileEntry("etc/a", data=b"A"), FileEntry("etc/big", size=5000),
        FileEntry("etc/link", kind="symlink", target="a"), FileEntry("etc/hard", kind="hardlink", target="/etc/a"),
        FileEntry("etc/gone", kind="whiteout"), FileEntry("var/cache", kind="opaque"),
    ])
    blob, diff_id, mtype = make_layer(spec, seed=3)
    assert mtype == mt.OCI_LAYER_GZIP and make_layer(spec, seed=3) == (blob, diff_id, mtype)
    tar = gzip.decompress(blob)
    assert Digest.of(tar) == diff_id
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(tar))}
    assert set(members) == {"etc", "etc/a", "etc/big", "etc/link", "etc/hard", "etc/.wh.gone", "var/cache/.wh..wh..opq"}
    assert members["etc/link"].issym() and members["etc/link"].linkname == "a"
    assert members["etc/hard"].islnk() and members["etc/hard"].linkname == "etc/a"
    assert members["etc/big"].size == 5000
    assert make_layer(LayerSpec(random_bytes=10, compression="zstd"))[2] == mt.OCI_LAYER_ZSTD
    assert make_layer(LayerSpec(random_bytes=10, compression="none"))[2] == mt.OCI_LAYER

    a = OCILayout(str(tmp_path / "a"), create=True)
    b = OCILayout(str(tmp_path / "b"), create=True)
    for lay in (a, b):
        write_index(lay, "i", platforms=("linux/amd64", "linux/arm/v7"), docker=True, shared_base=BASE)
    assert a.get_manifest_sync("i").raw == b.get_manifest_sync("i").raw
    idx = parse_manifest(a.get_manifest_sync("i").raw)
    assert idx.media_type == mt.DOCKER_MANIFEST_LIST
    assert [str(p) for p in idx.platforms()] == ["linux/amd64", "linux/arm/v7"]  # type: ignore[union-attr]
    assert a.validate() == []


def test_sha512_blobs(layout: OCILayout) -> None:
    data = b"sha512 content"
    d = Descriptor("application/octet-stream", Digest.of(data, "sha512"), len(data))
    run(layout.put_blob(d, chunks_of(data)))
    assert layout.blob_path(d.digest).endswith(f"blobs/sha512/{d.digest.encoded}")
    assert run(read_blob(layout, d)) == data
    cfg = layout.put_bytes(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
                           mt.OCI_CONFIG)
    m = build_manifest(cfg, [Descriptor(mt.OCI_LAYER, d.digest, d.size)])
    run(layout.put_manifest(m.raw, m.media_type, "s"))
    assert layout.validate() == []
    assert layout.gc().removed == []
    layout.untag("s")
    assert sorted(layout.gc().removed) == sorted([str(d.digest), str(cfg.digest), str(m.digest)])


# ---- the verified-at-ingest record (user.ocikit.verified) -----------------------------------------


def _blob(layout: OCILayout, data: bytes) -> tuple[Descriptor, str]:
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    run(layout.put_blob(desc, chunks_of(data[: len(data) // 2], data[len(data) // 2:])))
    return desc, layout.blob_path(desc.digest)


def _record(path: str) -> bytes | None:
    try:
        return os.getxattr(path, VERIFIED_XATTR)
    except OSError:
        return None


def _xattrs_work(path: str) -> bool:
    try:
        os.setxattr(path, "user.ocikit.probe", b"1")
        os.removexattr(path, "user.ocikit.probe")
        return True
    except OSError:
        return False


def _record_later(path: str, digest: Digest) -> None:
    """Record a blob as its writer would once the coarse clock has ticked past its mtime."""
    time.sleep(0.03)
    fd = os.open(path, os.O_RDONLY)
    try:
        _record_verified(fd, digest)
    finally:
        os.close(fd)


def _recorded_blob(layout: OCILayout, data: bytes) -> tuple[Descriptor, str]:
    """A blob ocikit wrote and recorded."""
    desc, path = _blob(layout, data)
    if _record(path) is None:  # written within one tick of the coarse clock: record it now
        _record_later(path, desc.digest)
    return desc, path


def test_put_blob_records_what_it_verified(layout: OCILayout) -> None:
    if not _xattrs_work(layout.path):
        pytest.skip("no user xattrs on this filesystem")
    desc, path = _recorded_blob(layout, os.urandom(1 << 16))
    st = os.stat(path)
    assert _record(path) == f"{desc.digest} {st.st_size} {st.st_mtime_ns}".encode()
    assert _has_verified_record(path, st, desc.digest)
    assert not _has_verified_record(path, st, Digest.of(b"other"))


def test_no_record_while_the_clock_has_not_moved_past_the_mtime(layout: OCILayout) -> None:
    if not _xattrs_work(layout.path):
        pytest.skip("no user xattrs on this filesystem")
    desc, path = _blob(layout, b"young")
    future = time.time_ns() + 3_600_000_000_000
    os.utime(path, ns=(future, future))   # as if written in this very tick (or later)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.removexattr(fd, VERIFIED_XATTR) if _record(path) else None
        _record_verified(fd, desc.digest)
    finally:
        os.close(fd)
    assert _record(path) is None


def test_link_trusts_a_matching_record_and_hashes_otherwise(tmp_path, monkeypatch) -> None:
    src = OCILayout(str(tmp_path / "src"), create=True)
    if not _xattrs_work(src.path):
        pytest.skip("no user xattrs on this filesystem")
    desc, path = _recorded_blob(src, os.urandom(1 << 16))
    import ocikit.transports.layout.link as layout_mod
    hashed: list[str] = []
    real = layout_mod.digest_file

    def counting(p: str, algorithm: str = "sha256"):  # type: ignore[no-untyped-def]
        hashed.append(p)
        return real(p, algorithm)
    monkeypatch.setattr(layout_mod, "digest_file", counting)

    a = OCILayout(str(tmp_path / "a"), create=True)
    assert run(a.link_blob_from(src, desc))
    assert hashed == [] and os.stat(a.blob_path(desc.digest)).st_ino == os.stat(path).st_ino

    # the bytes change (same size): the mtime moves, the record no longer matches -> hashed, refused
    time.sleep(0.03)
    data = bytearray(open(path, "rb").read())
    data[100] ^= 1
    with open(a.blob_path(desc.digest), "r+b") as f:   # the shared inode, changed through the copy
        f.write(bytes(data))
    b = OCILayout(str(tmp_path / "b"), create=True)
    with pytest.raises(DigestMismatch):
        run(b.link_blob_from(src, desc))
    assert len(hashed) == 1 and not os.path.exists(b.blob_path(desc.digest))


def test_linking_another_tools_blob_hashes_it_and_leaves_it_unmarked(tmp_path, monkeypatch) -> None:
    src = OCILayout(str(tmp_path / "src"), create=True)
    if not _xattrs_work(src.path):
        pytest.skip("no user xattrs on this filesystem")
    data = os.urandom(1 << 16)
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    path = src.blob_path(desc.digest)
    with open(path, "wb") as f:   # as another tool writes it: no record
        f.write(data)
    time.sleep(0.03)
    a = OCILayout(str(tmp_path / "a"), create=True)
    assert run(a.link_blob_from(src, desc))
    assert _record(path) is None          # copying from it changed nothing in the source


def test_validate_ignores_records(layout: OCILayout) -> None:
    if not _xattrs_work(layout.path):
        pytest.skip("no user xattrs on this filesystem")
    mdesc = write_image(layout, "x")
    layer = parse_manifest(open(layout.blob_path(mdesc.digest), "rb").read()).layers[0]  # type: ignore[union-attr]
    path = layout.blob_path(layer.digest)
    _record_later(path, layer.digest)
    st = os.stat(path)
    data = bytearray(open(path, "rb").read())
    data[0] ^= 1
    with open(path, "r+b") as f:
        f.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))   # a forged mtime: the record matches again
    assert _has_verified_record(path, os.stat(path), layer.digest)
    assert any(str(layer.digest) in p and "has digest" in p for p in layout.validate())


def test_put_blob_flushes_in_the_background_and_reports_its_errors(layout: OCILayout, monkeypatch) -> None:
    import concurrent.futures

    from ocikit import durable
    from ocikit.transports.layout import blobwrite
    monkeypatch.setattr(blobwrite, "SYNC_EVERY", 64 << 10)
    monkeypatch.setattr(durable, "BATCH", 64 << 10)
    started: list[int] = []
    real = durable.sync_in_background

    def counting(fd: int) -> "concurrent.futures.Future[None]":
        started.append(fd)
        return real(fd)
    monkeypatch.setattr(durable, "sync_in_background", counting)
    parts = [os.urandom(64 << 10) for _ in range(4)]
    data = b"".join(parts)
    desc = Descriptor("application/octet-stream", Digest.of(data), len(data))
    run(layout.put_blob(desc, chunks_of(*parts)))
    assert open(layout.blob_path(desc.digest), "rb").read() == data
    assert started   # every 64 KiB, while no other flush of the file runs

    def failing(fd: int) -> "concurrent.futures.Future[None]":
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        fut.set_exception(OSError(5, "Input/output error"))
        return fut
    monkeypatch.setattr(durable, "sync_in_background", failing)
    other = [os.urandom(64 << 10) for _ in range(3)]
    odata = b"".join(other)
    odesc = Descriptor("application/octet-stream", Digest.of(odata), len(odata))
    with pytest.raises(OSError, match="Input/output error"):
        run(layout.put_blob(odesc, chunks_of(*other)))
    assert not os.path.exists(layout.blob_path(odesc.digest)) and temp_files(layout) == []
