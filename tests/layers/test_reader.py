"""The streaming layer reader: same members and data as tarfile, every compression, digests checked."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import threading
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.content import Options
from ocikit.digest import Digest
from ocikit.errors import DigestMismatch, LayerInvalid, SizeInvalid
from ocikit.layers import open_layer, open_layer_chunks
from ocikit.model import Descriptor
from ocikit.ops.unpack import unpack_image
from ocikit.transports.layout import OCILayout

from helpers.layers import D, E, F, H, S, compress, image_from_tars, snapshot, tar_bytes

ENTRIES = [
    D("dir/", mode=0o755, uid=1, gid=2), F("dir/file", b"hello" * 999, 0o4755, uid=1000, gid=1000),
    S("dir/link", "file"), H("dir/hard", "dir/file"), F("empty", b""),
    F("p" * 180 + "/q" * 30, b"long path"), S("longlink", "t" * 300),
    F("xattr", b"x", xattrs={"user.a": "1", "security.capability": "\x01\x02"}),
    E("dev/null", b"3", mode=0o666, devmajor=1, devminor=3), E("fifo", b"6"),
    F("utf8-\u00e9\u4e2d", b"u"), F("big-uid", b"b", uid=3_000_000, gid=4_000_000),
    F("float-mtime", b"f", pax={"mtime": "1700000000.123456789"}),
]


def _read_all(reader) -> list[tuple]:
    out = []
    with reader:
        for m in reader:
            data = reader.read_data() if m.is_file else b""
            out.append((m.name.rstrip("/"), m.type, m.mode, m.uid, m.gid, m.linkname, data, m.mtime_ns,
                        dict(m.xattrs), m.devmajor, m.devminor))
    return out


def _tarfile_view(tar: bytes) -> list[tuple]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        for ti in tf:
            data = tf.extractfile(ti).read() if ti.isreg() else b""
            t = {tarfile.REGTYPE: "0", tarfile.LNKTYPE: "1", tarfile.SYMTYPE: "2", tarfile.CHRTYPE: "3",
                 tarfile.BLKTYPE: "4", tarfile.DIRTYPE: "5", tarfile.FIFOTYPE: "6"}[ti.type]
            pax_mtime = ti.pax_headers.get("mtime")
            mt_ns = int(ti.mtime) * 10**9
            if pax_mtime:
                whole, _, frac = pax_mtime.partition(".")
                mt_ns = int(whole) * 10**9 + int((frac + "0" * 9)[:9])
            xattrs = {k[13:]: v.encode("utf-8", "surrogateescape") for k, v in ti.pax_headers.items()
                      if k.startswith("SCHILY.xattr.")}
            out.append((ti.name.rstrip("/"), t, ti.mode, ti.uid, ti.gid, ti.linkname, data, mt_ns, xattrs,
                        ti.devmajor if t in "34" else 0, ti.devminor if t in "34" else 0))
    return out


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_members_match_tarfile(compression, fmt) -> None:
    entries = ENTRIES if fmt == tarfile.PAX_FORMAT else [e for e in ENTRIES if not e.xattrs and not e.pax]
    tar = tar_bytes(entries, fmt=fmt)
    blob, _ = compress(tar, compression)
    r = open_layer_chunks([blob[i:i + 777] for i in range(0, len(blob), 777)], digest=Digest.of(blob),
                          size=len(blob), diff_id=Digest.of(tar))
    assert _read_all(r) == _tarfile_view(tar)
    assert r.diff_id == Digest.of(tar) and r.digest == Digest.of(blob)
    assert r.compression == (None if compression == "none" else compression)


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_bytes_like_chunks_and_a_reused_buffer(compression) -> None:
    """Chunks may be memoryviews or one bytearray the caller refills (as a readinto loop does):
    the reader, a thread that runs behind the caller, must see each chunk as it was yielded."""
    tar = tar_bytes([F("a", os.urandom(20000)), F("b", b"b" * 3000)])
    blob, _ = compress(tar, compression)
    view = memoryview(blob)
    r = open_layer_chunks([view[i:i + 777] for i in range(0, len(blob), 777)], diff_id=Digest.of(tar))
    assert _read_all(r) == _tarfile_view(tar)

    def refilled():
        buf = bytearray(777)
        for i in range(0, len(blob), 777):
            n = len(blob[i:i + 777])
            buf[:n] = blob[i:i + 777]
            yield buf if n == 777 else buf[:n]
            buf[:] = b"\xff" * 777   # the caller reuses its buffer at once

    r = open_layer_chunks(refilled(), digest=Digest.of(blob), diff_id=Digest.of(tar))
    assert _read_all(r) == _tarfile_view(tar)
    assert r.digest == Digest.of(blob)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text("abc/._-", min_size=1, max_size=120), st.binary(max_size=3000),
                          st.integers(0, 0o7777)), max_size=12))
def test_random_archives_match_tarfile(files) -> None:
    entries = [F(n, d, m) for n, d, m in files if n.strip("/")]
    tar = tar_bytes(entries)
    blob = gzip.compress(tar, 1)
    r = open_layer_chunks([blob], diff_id=Digest.of(tar))
    assert _read_all(r) == _tarfile_view(tar)


def test_concatenated_gzip_members() -> None:
    tar = tar_bytes([F("a", b"a" * 5000), F("b", b"b")])
    blob = gzip.compress(tar[:3000]) + gzip.compress(tar[3000:])
    assert [m[0] for m in _read_all(open_layer_chunks([blob], diff_id=Digest.of(tar)))] == ["a", "b"]


def test_diff_id_mismatch() -> None:
    tar = tar_bytes([F("a")])
    with pytest.raises(DigestMismatch, match="diff_id"):
        _read_all(open_layer_chunks([gzip.compress(tar)], diff_id="sha256:" + "2" * 64))


def test_digest_and_size_mismatch() -> None:
    blob = gzip.compress(tar_bytes([F("a")]))
    with pytest.raises(DigestMismatch):
        _read_all(open_layer_chunks([blob], digest="sha256:" + "3" * 64, size=len(blob)))
    with pytest.raises(SizeInvalid):
        _read_all(open_layer_chunks([blob], digest=Digest.of(blob), size=len(blob) - 1))


@pytest.mark.parametrize("blob, message", [
    (b"", "empty"), (b"\0" * 100, "truncated"), (os.urandom(2048), "not a tar"),
    (gzip.compress(os.urandom(3000))[:-20], "gzip"), (b"\x28\xb5\x2f\xfd" + os.urandom(100), "zstd"),
])
def test_broken_streams(blob, message) -> None:
    with pytest.raises(LayerInvalid, match=message):
        _read_all(open_layer_chunks([blob]))


def test_closing_early_stops_the_thread() -> None:
    tar = tar_bytes([F(f"f{i}", os.urandom(100_000)) for i in range(60)])
    before = set(threading.enumerate())
    r = open_layer_chunks([tar[i:i + 4096] for i in range(0, len(tar), 4096)])
    with r:
        next(iter(r))
        started = [t for t in threading.enumerate() if t not in before and t.name.startswith("ocikit-layer-")]
        assert len(started) == 1 and started[0].is_alive()   # it reads ahead while we hold the first member
    assert not started[0].is_alive()


def test_skipping_data_and_header_only_sizes() -> None:
    """Unread data is skipped; a size on a header-only member (a symlink) is ignored as Go does."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        ti = tarfile.TarInfo("a")
        ti.size = 700
        tf.addfile(ti, io.BytesIO(b"a" * 700))
        ti = tarfile.TarInfo("s")
        ti.type, ti.linkname = tarfile.SYMTYPE, "a"
        tf.addfile(ti)
    names = []
    with open_layer_chunks([buf.getvalue()]) as r:
        for m in r:
            names.append((m.name, m.size))
    assert names == [("a", 700), ("s", 0)]


def _ustar_header(name: str, prefix: str = "", linkname: str = "") -> bytearray:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        ti = tarfile.TarInfo(f"{prefix}/{name}" if prefix else name)
        if linkname:
            ti.type, ti.linkname = tarfile.SYMTYPE, linkname
        tf.addfile(ti)
    return bytearray(buf.getvalue())


def _set_checksum(hdr: bytearray, value: int) -> None:
    hdr[148:156] = b"%06o\0 " % value


@pytest.mark.parametrize("dense", [False, True])
def test_header_checksums_sparse_and_dense(dense) -> None:
    """Headers with few non-zero bytes and with more than 256 (a sum past 65520) both read;
    a header whose byte sum is off is refused either way."""
    hdr = _ustar_header("n" * 100, "p" * 150, "l" * 100) if dense else _ustar_header("a")
    assert (hdr[:512].count(0) < 256) == dense
    with open_layer_chunks([bytes(hdr)]) as r:
        assert [m.name for m in r] == [("p" * 150 + "/" + "n" * 100) if dense else "a"]
    bad = bytearray(hdr)
    bad[0] ^= 0x01
    with pytest.raises(LayerInvalid, match="checksum"):
        _read_all(open_layer_chunks([bytes(bad)]))


def test_header_whose_sum_is_off_by_a_multiple_of_65521_is_refused() -> None:
    """The checksum is compared exactly, not modulo Adler-32's 65521."""
    hdr = _ustar_header("n" * 100, "p" * 150, "l" * 100)
    stored = int(hdr[148:154], 8)
    need = 65521
    for i in list(range(0, 148)) + list(range(156, 512)):
        if need == 0:
            break
        step = min(255 - hdr[i], need)
        hdr[i] += step
        need -= step
    assert need == 0 and sum(hdr[:512]) - sum(hdr[148:156]) + 256 == stored + 65521
    with pytest.raises(LayerInvalid, match="checksum"):
        _read_all(open_layer_chunks([bytes(hdr)]))


def test_signed_header_checksum_is_accepted() -> None:
    """Old Sun tar summed signed chars: accepted, as tarfile does."""
    hdr = _ustar_header("\u00e9t\u00e9")         # UTF-8: bytes above 127
    signed = sum(b - 256 if b > 127 else b for b in hdr[:512]) - sum(hdr[148:156]) + 256
    _set_checksum(hdr, signed)
    with open_layer_chunks([bytes(hdr)]) as r:
        assert [m.name for m in r] == ["\u00e9t\u00e9"]


class ChunkOnlyStore:
    """A Store without blob files: only the async blob_chunks path (as a registry would)."""

    def __init__(self, lay: OCILayout) -> None:
        self.lay = lay
        self.location = "test:chunks"

    def __getattr__(self, name):
        if name == "blob_path":
            raise AttributeError(name)
        return getattr(self.lay, name)

    async def blob_chunks(self, desc: Descriptor, opts: Options = Options()):
        async for c in self.lay.blob_chunks(desc, opts):
            await asyncio.sleep(0)
            yield c


def test_open_layer_from_an_async_only_store_without_a_loop(tmp_path) -> None:
    tar = tar_bytes([F("a", b"a" * 10_000), F("b", b"b")])
    lay = image_from_tars(str(tmp_path / "l"), "t", [tar])
    m = lay.get_manifest_sync("t")
    from ocikit.model import parse_manifest
    desc = parse_manifest(m.raw).layers[0]
    store = ChunkOnlyStore(lay)
    assert [x[0] for x in _read_all(open_layer(store, desc, diff_id=Digest.of(tar)))] == ["a", "b"]


def test_unpack_from_an_async_only_store(tmp_path) -> None:
    tars = [tar_bytes([D("d/"), F("d/a", b"a" * 10_000)]), tar_bytes([D("d/"), F("d/.wh.a", b""), F("d/b", b"b")])]
    lay = image_from_tars(str(tmp_path / "l"), "t", tars, compression="zstd")
    res = asyncio.run(unpack_image(ChunkOnlyStore(lay), "t", str(tmp_path / "root")))
    assert sorted(os.listdir(tmp_path / "root" / "d")) == ["b"]
    assert res.stats.layers == 2
    assert snapshot(str(tmp_path / "root"))


def test_missing_layer_blob(tmp_path) -> None:
    from ocikit.errors import BlobUnknown
    from ocikit.ops.unpack import unpack
    tar = tar_bytes([F("a", b"a")])
    lay = image_from_tars(str(tmp_path / "l"), "t", [tar])
    blob, _ = compress(tar, "gzip")
    os.unlink(lay.blob_path(Digest.of(blob)))
    with pytest.raises(BlobUnknown):
        unpack(f"oci:{lay.path}:t", str(tmp_path / "root"))
    assert not (tmp_path / "root").exists()


def test_public_names_of_ocikit_layers() -> None:
    import ocikit.layers as layers
    assert sorted(layers.__all__) == sorted([
        "DEFAULT_LIMITS", "LayerLimits", "LayerReader", "ROOTLESS_XATTR", "SafeRoot", "TarMember", "UnpackStats", "Unpacker", "UpperSet",
        "Whiteout", "classify", "clean", "detect_compression", "open_layer", "open_layer_chunks",
        "open_layer_file", "plan_removal", "resolve_user", "runtime_config"])
    for name in layers.__all__:
        assert getattr(layers, name) is not None
