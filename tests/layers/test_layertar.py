"""The reproducible tar writer: same tree -> same bytes; normalisation; compression; one-pass digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core.errors import UsageError
from ocikit.layers.reader import open_layer_file
from ocikit.layers.layertar import (
    GZIP_HEADER,
    LayerSink,
    LayerWriter,
    TarOptions,
    source_date_epoch,
    write_tree_layer,
)

from helpers.trees import disturb, make_tree


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()


def _tar_bytes(path: str, compression: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if compression == "gzip":
        return gzip.decompress(data)
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    return data


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_digest_size_and_diff_id_in_one_pass(tmp_path, compression):
    tree = make_tree(str(tmp_path / "t"))
    out = str(tmp_path / "layer")
    r = write_tree_layer(tree, out, compression)
    assert r.digest == _sha(out)
    assert r.size == os.path.getsize(out)
    tar = _tar_bytes(out, compression)
    assert r.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert r.tar_size == len(tar)
    assert r.media_type.endswith({"gzip": "+gzip", "zstd": "+zstd", "none": ".tar"}[compression])
    # the project's own reader agrees, digests verified
    with open_layer_file(out, digest=r.digest, size=r.size, diff_id=r.diff_id) as lr:
        names = [m.name for m in lr]
    assert len(names) == r.entries


def test_same_tree_same_bytes_whatever_owners_and_mtimes(tmp_path):
    a = make_tree(str(tmp_path / "a"))
    b = make_tree(str(tmp_path / "b"))
    disturb(b)
    ra = write_tree_layer(a, str(tmp_path / "la"))
    rb = write_tree_layer(b, str(tmp_path / "lb"))
    assert ra == rb
    with open(tmp_path / "la", "rb") as f1, open(tmp_path / "lb", "rb") as f2:
        assert f1.read() == f2.read()
    # keeping owners makes them count
    rk = write_tree_layer(b, str(tmp_path / "lk"), options=TarOptions(owner=None))
    assert rk.diff_id != ra.diff_id


def test_entries_sorted_normalised_and_ustar_unless_needed(tmp_path):
    tree = make_tree(str(tmp_path / "t"))
    out = str(tmp_path / "l.tar")
    write_tree_layer(tree, out, "none", TarOptions(epoch=1_700_000_000))
    with tarfile.open(out) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    # depth first, each directory's names sorted by bytes
    assert names.index("bin") < names.index("bin/dangling") < names.index("bin/passwd-link") < names.index("bin/tool")
    assert names.index("bin/tool") < names.index("bin/tool-link") < names.index("dev-null") < names.index("etc")
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        assert m.mtime == 1_700_000_000 and isinstance(m.mtime, int)
        assert "mtime" not in m.pax_headers and "atime" not in m.pax_headers and "ctime" not in m.pax_headers
    by = {m.name: m for m in members}
    assert by["bin/tool"].mode == 0o4755 and by["tmp"].mode == 0o1777 and by["var/empty-dir"].mode == 0o700
    # hardlinks point at the first path of the inode, in entry order
    assert by["bin/tool-link"].islnk() and by["bin/tool-link"].linkname == "bin/tool"
    assert by["usr/tool-hard"].islnk() and by["usr/tool-hard"].linkname == "bin/tool"
    assert by["bin/passwd-link"].issym() and by["bin/passwd-link"].linkname == "../etc/passwd"
    assert by["var/fifo"].isfifo()
    if os.geteuid() == 0:
        assert by["dev-null"].ischr() and (by["dev-null"].devmajor, by["dev-null"].devminor) == (1, 3)
    assert by["etc/hostname"].pax_headers.get("SCHILY.xattr.user.origin") == "ocikit-test"
    # PAX extended headers only where USTAR cannot say it: long/non-ASCII names and xattrs
    with open(out, "rb") as f:
        raw = f.read()
    pax_blocks = [raw[i:i + 512] for i in range(0, len(raw), 512) if raw[i + 156:i + 157] == b"x"
                  and raw[i + 257:i + 262] == b"ustar"]
    assert len(pax_blocks) == 3   # the long name, the UTF-8 name, the xattr
    assert b"mtime=" not in raw
    # GNU tar reads it with the same listing
    listing = subprocess.run(["tar", "-tf", out], check=True, capture_output=True).stdout.decode().split()
    assert [n.rstrip("/") for n in listing] == names


def test_source_date_epoch(tmp_path, monkeypatch):
    tree = str(tmp_path / "t")
    os.makedirs(tree)
    with open(f"{tree}/f", "w") as f:
        f.write("x")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    assert source_date_epoch() == 1234567890
    write_tree_layer(tree, str(tmp_path / "l"), "none")
    with tarfile.open(tmp_path / "l") as tf:
        assert tf.getmember("f").mtime == 1234567890
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert source_date_epoch() == 0
    for bad in ("yesterday", "-5", "1.5"):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", bad)
        with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
            source_date_epoch()


def test_mtime_policies(tmp_path):
    tree = str(tmp_path / "t")
    os.makedirs(tree)
    for name, t in (("old", 1000), ("new", 2_000_000_000)):
        with open(f"{tree}/{name}", "w") as f:
            f.write(name)
        os.utime(f"{tree}/{name}", (t, t))

    def mtimes(policy: str) -> dict[str, int]:
        out = str(tmp_path / f"l-{policy}")
        write_tree_layer(tree, out, "none", TarOptions(epoch=1_500_000_000, mtime=policy))
        with tarfile.open(out) as tf:
            return {m.name: m.mtime for m in tf.getmembers()}

    assert mtimes("epoch") == {"new": 1_500_000_000, "old": 1_500_000_000}
    assert mtimes("clamp") == {"new": 1_500_000_000, "old": 1000}
    assert mtimes("keep") == {"new": 2_000_000_000, "old": 1000}
    with pytest.raises(UsageError):
        TarOptions(mtime="sometimes").check()


def test_gzip_member_is_fixed_and_standard(tmp_path):
    tree = make_tree(str(tmp_path / "t"))
    out = str(tmp_path / "l.gz")
    write_tree_layer(tree, out, "gzip")
    with open(out, "rb") as f:
        head = f.read(10)
    assert head == GZIP_HEADER   # no name, mtime 0, OS unknown
    subprocess.run(["gzip", "-t", out], check=True)
    gz = subprocess.run(["gzip", "-dc", out], check=True, capture_output=True).stdout
    assert gz == _tar_bytes(out, "gzip")


def test_whiteouts_and_opaque_markers(tmp_path):
    out = str(tmp_path / "l")
    with LayerWriter(out, "none") as w:
        w.tar.add_opaque("a/b")
        w.tar.add_whiteout("a", "gone")
        w.tar.add_whiteout("", "top")
        r = w.finish()
    assert r.entries == 3
    with tarfile.open(out) as tf:
        ms = tf.getmembers()
    assert [m.name for m in ms] == ["a/b/.wh..wh..opq", "a/.wh.gone", ".wh.top"]
    assert all(m.isreg() and m.size == 0 and m.mtime == 0 for m in ms)


def test_failed_write_leaves_nothing(tmp_path):
    out = str(tmp_path / "l")
    with pytest.raises(FileNotFoundError):
        with LayerWriter(out) as w:
            w.tar.add_path(str(tmp_path / "missing"), "missing")
    assert not os.path.exists(out)
    with pytest.raises(UsageError):
        write_tree_layer(str(tmp_path / "nope"), out)
    with pytest.raises(UsageError, match="compression"):
        LayerWriter(out, "bzip2")
    assert not os.path.exists(out)


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.binary(max_size=5000), max_size=12), compression=st.sampled_from(["gzip", "zstd", "none"]))
def test_sink_roundtrip(chunks, compression):
    buf = io.BytesIO()
    sink = LayerSink(buf, compression)
    for c in chunks:
        sink.write(c)
    digest, size, diff_id, tar_size = sink.finish()
    data = b"".join(chunks)
    blob = buf.getvalue()
    assert (size, tar_size) == (len(blob), len(data))
    assert digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    if compression == "gzip":
        assert gzip.decompress(blob) == data
    elif compression == "zstd":
        assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True).read() == data
    else:
        assert blob == data


def test_big_file_streams(tmp_path):
    """A file larger than the sink's step goes through in pieces (and the digests still hold)."""
    tree = tmp_path / "t"
    tree.mkdir()
    with open(tree / "big", "wb") as f:
        f.truncate(5 * (1 << 20) + 123)
    r = write_tree_layer(str(tree), str(tmp_path / "l"), "zstd")
    assert r.tar_size > 5 * (1 << 20)
    with open_layer_file(str(tmp_path / "l"), digest=r.digest, size=r.size, diff_id=r.diff_id) as lr:
        lr.drain()


_names = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1,
                 max_size=140) | st.text(alphabet="abc/._-", min_size=1, max_size=260)


@settings(max_examples=200, deadline=None)
@given(name=_names, linkname=st.one_of(st.just(""), _names),
       typeflag=st.sampled_from([b"0", b"1", b"2", b"3", b"4", b"5", b"6"]),
       mode=st.integers(0, 0o7777), uid=st.integers(0, 2**32), gid=st.integers(0, 2**32),
       size=st.integers(0, 2**40), mtime=st.integers(0, 2**40), dev=st.integers(0, 4095),
       xattrs=st.dictionaries(st.text(alphabet="abcdefghij.", min_size=1, max_size=12).map(lambda k: "user." + k),
                              st.binary(max_size=40), max_size=3))
def test_headers_are_byte_for_byte_tarfiles(name, linkname, typeflag, mode, uid, gid, size, mtime, dev, xattrs):
    """The fast header encoder writes exactly what tarfile's PAX format writes for the same entry."""
    from ocikit.layers.layertar import encode_header
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime, ti.linkname = typeflag, mode, uid, gid, mtime, linkname
    ti.size = size if typeflag == b"0" else 0
    ti.uname = ti.gname = ""
    ti.devmajor = ti.devminor = dev
    ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
    want = ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if typeflag == b"5" and not name.endswith("/"):
        name += "/"   # tarfile adds the slash to directories (TarEmitter does it before encoding)
    got = encode_header(name, typeflag, mode=mode, uid=uid, gid=gid, mtime=mtime, size=ti.size, linkname=linkname,
                        devmajor=dev, devminor=dev, xattrs=xattrs)
    assert got == want
