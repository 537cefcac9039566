"""Tar indexing, member names, hostile archives, streaming decompression (no peers needed)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import random
import tarfile

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.errors import ArchiveInvalid, LayerInvalid
from ocikit.transports.archive.compression import DecompressingWriter
from ocikit.transports.archive.tarindex import TarIndex, normalise_name
from ocikit.transports.archive.tarwriter import TarWriter


def make_tar(path, members) -> None:
    """members: (name, bytes) for files, (name, ('sym'|'lnk', target)) for links."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                ti.type = tarfile.SYMTYPE if data[0] == "sym" else tarfile.LNKTYPE
                ti.linkname = data[1]
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))


@given(st.text(alphabet="ab./", max_size=20))
def test_normalised_names_never_escape(name):
    try:
        out = normalise_name(name, "x")
    except ArchiveInvalid:
        assert name.startswith("/") or ".." in name.split("/")
        return
    assert not out.startswith("/")
    assert ".." not in out.split("/")
    assert "" not in out.split("/") or out == ""


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "blobs/../../evil"])
def test_traversal_member_names_invalidate_the_archive(tmp_path, name):
    p = tmp_path / "a.tar"
    make_tar(p, [("ok", b"1"), (name, b"evil")])
    with pytest.raises(ArchiveInvalid, match="escapes|absolute"):
        TarIndex(str(p))


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd"])
def test_symlinks_out_of_the_archive_are_refused(tmp_path, target):
    p = tmp_path / "a.tar"
    make_tar(p, [("x/link", ("sym", target))])
    with pytest.raises(ArchiveInvalid, match="outside"):
        TarIndex(str(p))


def test_links_resolve_inside_the_archive_and_loops_stop(tmp_path):
    p = tmp_path / "a.tar"
    make_tar(p, [("./dir/real", b"payload"), ("other/link", ("sym", "../dir/real")), ("hard", ("lnk", "dir/real")),
                 ("loop1", ("sym", "loop2")), ("loop2", ("sym", "loop1"))])
    with TarIndex(str(p)) as t:
        for name in ("dir/real", "other/link", "hard", "./dir//real"):
            assert t.read(t.require(name)) == b"payload"
        assert t.find("missing") is None
        with pytest.raises(ArchiveInvalid, match="too many links"):
            t.find("loop1")


@pytest.mark.parametrize("content", [b"", b"not a tar at all" * 40, b"\x1f\x8b\x08\x00garbage"])
def test_garbage_is_a_typed_error(tmp_path, content):
    p = tmp_path / "a.tar"
    p.write_bytes(content)
    with pytest.raises(ArchiveInvalid):
        TarIndex(str(p))


def test_truncated_member_is_detected(tmp_path):
    p = tmp_path / "a.tar"
    make_tar(p, [("big", os.urandom(100_000))])
    data = p.read_bytes()
    p.write_bytes(data[:50_000])
    with pytest.raises(ArchiveInvalid):
        TarIndex(str(p))


def test_directory_and_missing_path(tmp_path):
    with pytest.raises(ArchiveInvalid, match="directory"):
        TarIndex(str(tmp_path))
    with pytest.raises(ArchiveInvalid, match="no such"):
        TarIndex(str(tmp_path / "nope.tar"))


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressed_archives_are_read(tmp_path, kind):
    p = tmp_path / "a.tar"
    blob = os.urandom(300_000)
    make_tar(p, [("a/b", blob)])
    raw = p.read_bytes()
    packed = gzip.compress(raw) if kind == "gzip" else zstandard.ZstdCompressor().compress(raw)
    (tmp_path / "a.tar.x").write_bytes(packed)
    with TarIndex(str(tmp_path / "a.tar.x")) as t:
        assert b"".join(t.chunks(t.require("a/b"), chunk=4096)) == blob


def test_tar_writer_output_reads_back_with_tarfile(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(5000))
    out = tmp_path / "out.tar"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    w = TarWriter(fd)
    w.add_dir("blobs")
    w.add_bytes("index.json", b"{}")
    w.add_path("blobs/x", str(src))
    w.add_symlink("l", "blobs/x")
    with pytest.raises(ValueError):
        w.add_bytes("index.json", b"{}")
    w.finish()
    os.close(fd)
    with tarfile.open(out) as tf:
        assert tf.getnames() == ["blobs", "index.json", "blobs/x", "l"]
        assert tf.extractfile("blobs/x").read() == src.read_bytes()


def _push(comp: bytes, piece: int) -> tuple[str | None, bytes, int]:
    h = hashlib.sha256()
    biggest = [0]

    def sink(b: bytes) -> None:
        h.update(b)
        biggest[0] = max(biggest[0], len(b))

    w = DecompressingWriter(sink)
    for i in range(0, len(comp), piece):
        w.write(comp[i:i + piece])
    w.close()
    return w.kind, h.digest(), biggest[0]


def test_decompressing_writer_all_forms_memory_bounded():
    rng = random.Random(1)
    data = rng.randbytes(200_000) + b"\x00" * (20 << 20)  # compresses ~100x: output must come in pieces
    want = hashlib.sha256(data).digest()
    forms = {
        "gzip": gzip.compress(data, 1),
        "multi": gzip.compress(data[:77], 1) + gzip.compress(data[77:], 1),
        "zstd": zstandard.ZstdCompressor().compress(data),
        None: data,
    }
    for name, comp in forms.items():
        for piece in (3, 65536, 1 << 20):
            if piece == 3 and len(comp) > 1 << 20:
                continue
            kind, got, biggest = _push(comp, piece)
            assert got == want, (name, piece)
            assert kind == ("gzip" if name == "multi" else name)
            assert biggest <= 1 << 20
    small = data[:300_000]
    for name, comp in (("bzip2", bz2.compress(small)), ("xz", lzma.compress(small))):
        kind, got, _ = _push(comp, 65536)
        assert (kind, got) == (name, hashlib.sha256(small).digest())


@pytest.mark.parametrize("bad", ["truncated", "corrupt"])
def test_decompressing_writer_rejects_bad_gzip(bad):
    comp = bytearray(gzip.compress(os.urandom(50_000)))
    if bad == "truncated":
        comp = comp[: len(comp) // 2]
    else:
        comp[len(comp) // 2] ^= 0xFF
        comp[-5] ^= 0xFF
    with pytest.raises(LayerInvalid):
        _push(bytes(comp), 4096)
