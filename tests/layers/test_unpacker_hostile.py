"""Hostile layers write nothing outside the root.

Every test unpacks an image made of hand-built tar layers into ``work/root`` and asserts that a
snapshot of everything else under ``tmp_path`` — a sentinel directory full of bait files,
and ``work`` itself apart from the root and its staging directory — is exactly what it was.
Each also checks what happened inside: clamped into the root, or refused with a typed error.
"""

from __future__ import annotations

import gzip
import os
import stat

import pytest

from ocikit.errors import DigestMismatch, LayerInvalid, OcikitError, UsageError
from ocikit.ops.unpack import UnpackOptions, unpack

from helpers.layers import D, E, F, H, S, compress, image_from_tars, snapshot, tar_bytes


class Sandbox:
    def __init__(self, tmp_path) -> None:
        self.base = tmp_path
        self.sentinel = tmp_path / "sentinel"
        self.sentinel.mkdir()
        (self.sentinel / "file").write_bytes(b"precious")
        (self.sentinel / "dir").mkdir()
        (self.sentinel / "dir" / "inner").write_bytes(b"inner")
        os.symlink("file", self.sentinel / "link")
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.root = self.work / "root"
        self.layout = str(tmp_path / "layout")

    def outside(self) -> dict:
        return snapshot(str(self.base), mtimes=True, skip=("work/root", "work/root.partial", "work/root.ocikit-owners.json", "layout"))

    def contents(self) -> dict[str, object]:
        """Everything in the root: path -> file bytes, ``"dir"``, ``"fifo"``, or ``("symlink", target)``."""
        out: dict[str, object] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                rel = os.path.relpath(p, self.root)
                if os.path.islink(p):
                    out[rel] = ("symlink", os.readlink(p))
                elif os.path.isdir(p):
                    out[rel] = "dir"
                elif stat.S_ISFIFO(os.lstat(p).st_mode):
                    out[rel] = "fifo"
                else:
                    with open(p, "rb") as f:
                        out[rel] = f.read()
        return out

    def run(self, layers, *, expect_error: type[Exception] | None = None, rootless: bool | None = None,
            compression: str = "gzip", blobs=None, diff_ids=None):
        tars = [tar_bytes(x) if isinstance(x, list) else x for x in layers]
        image_from_tars(self.layout, "t", tars, compression=compression, blobs=blobs, diff_ids=diff_ids)
        before = self.outside()
        err = None
        try:
            unpack(f"oci:{self.layout}:t", str(self.root), UnpackOptions(rootless=rootless))
        except OcikitError as e:
            err = e
        after = self.outside()
        assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                                 if before.get(k) != after.get(k)}
        assert set(os.listdir(self.work)) <= {"root", "root.partial", "root.ocikit-owners.json"}
        if expect_error is not None:
            assert isinstance(err, expect_error), f"expected {expect_error.__name__}, got {err!r}"
            assert not self.root.exists(), "a failed unpack must not leave the target"
            assert not (self.work / "root.partial").exists(), "a failed unpack removes what it wrote"
            return err
        assert err is None, f"unexpected {err!r}"
        return self.root


@pytest.fixture
def box(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def S_ABS(box: Sandbox) -> str:
    return str(box.sentinel)


# ---- names that climb ------------------------------------------------------------------------------


def test_dotdot_file(box) -> None:
    root = box.run([[F("../escape", b"evil")]])
    assert (root / "escape").read_bytes() == b"evil"


def test_dotdot_many_levels_to_sentinel(box) -> None:
    root = box.run([[F("../../../../sentinel/file", b"evil")]])
    assert (root / "sentinel/file").read_bytes() == b"evil"


def test_absolute_path(box) -> None:
    root = box.run([[F("/etc/abs", b"a")]])
    assert (root / "etc/abs").read_bytes() == b"a"


def test_absolute_path_naming_the_sentinel(box) -> None:
    root = box.run([[F(str(box.sentinel / "file"), b"evil")]])
    assert (root / str(box.sentinel / "file").lstrip("/")).read_bytes() == b"evil"


def test_dotdot_in_the_middle(box) -> None:
    box.run([[F("a/b/../../../../sentinel/x", b"evil")]])
    assert box.contents() == {"sentinel": "dir", "sentinel/x": b"evil"}


def test_dot_prefixed_dotdot(box) -> None:
    root = box.run([[F("./../.././sentinel/file", b"evil")]])
    assert (root / "sentinel/file").read_bytes() == b"evil"


def test_pax_path_overrides_with_dotdot(box) -> None:
    root = box.run([[E("innocent", data=b"evil", pax={"path": "../../sentinel/file"})]])
    assert (root / "sentinel/file").read_bytes() == b"evil"
    assert not (root / "innocent").exists()


def test_gnu_longname_with_dotdot(box) -> None:
    import tarfile
    name = "../" * 40 + "sentinel/" + "x" * 120
    tar = tar_bytes([F(name, b"evil")], fmt=tarfile.GNU_FORMAT)
    root = box.run([tar])
    assert (root / "sentinel" / ("x" * 120)).read_bytes() == b"evil"


# ---- symlinks ---------------------------------------------------------------------------------------


def test_write_through_relative_symlink_parent(box) -> None:
    root = box.run([[S("link", "../../sentinel"), F("link/file", b"evil")]])
    assert (root / "sentinel/file").read_bytes() == b"evil"
    assert os.readlink(root / "link") == "../../sentinel"


def test_write_through_absolute_symlink_parent(box) -> None:
    root = box.run([[S("link", S_ABS(box)), F("link/file", b"evil")]])
    assert (root / S_ABS(box).lstrip("/") / "file").read_bytes() == b"evil"


def test_write_through_symlink_from_a_lower_layer(box) -> None:
    root = box.run([[S("link", S_ABS(box))], [F("link/dir/inner", b"evil")]])
    assert (root / S_ABS(box).lstrip("/") / "dir/inner").read_bytes() == b"evil"


def test_symlink_to_root_then_climb(box) -> None:
    root = box.run([[S("up", "/"), F("up/../../sentinel/file", b"evil")]])
    # the name is cleaned first: up/../../sentinel/file -> sentinel/file
    assert (root / "sentinel/file").read_bytes() == b"evil"


def test_symlink_chain_escaping(box) -> None:
    root = box.run([[S("a", "b"), S("b", "c/../../.."), D("c/"), F("a/sentinel/file", b"evil")]])
    assert (root / "sentinel/file").read_bytes() == b"evil"


def test_symlink_loop_is_refused(box) -> None:
    err = box.run([[S("a", "b"), S("b", "a"), F("a/x", b"evil")]], expect_error=LayerInvalid)
    assert "symbolic links" in str(err)


def test_symlink_later_replaced_by_a_file(box) -> None:
    root = box.run([[S("evil", str(box.sentinel / "file"))], [F("evil", b"replaced")]])
    assert not os.path.islink(root / "evil")
    assert (root / "evil").read_bytes() == b"replaced"


def test_symlink_replaced_by_a_file_in_the_same_layer(box) -> None:
    box.run([[S("evil", "../../sentinel/file"), F("evil", b"replaced", mode=0o777)]])
    assert box.contents() == {"evil": b"replaced"}


def test_symlink_to_a_dir_replaced_by_a_directory(box) -> None:
    root = box.run([[S("d", S_ABS(box))], [D("d/"), F("d/file", b"evil")]])
    assert (root / "d").is_dir() and not os.path.islink(root / "d")
    assert (root / "d/file").read_bytes() == b"evil"


def test_directory_entry_through_symlinked_parent(box) -> None:
    root = box.run([[S("d", "../../sentinel"), D("d/newdir/", mode=0o777)]])
    assert (root / "sentinel/newdir").is_dir()


def test_symlink_entry_through_symlinked_parent(box) -> None:
    root = box.run([[S("d", S_ABS(box)), S("d/link", "/etc/shadow")]])
    assert os.readlink(root / S_ABS(box).lstrip("/") / "link") == "/etc/shadow"


def test_fifo_through_symlinked_parent(box) -> None:
    root = box.run([[S("d", "../../sentinel"), E("d/fifo", b"6", mode=0o644)]])
    assert (root / "sentinel/fifo").is_fifo()


def test_metadata_on_a_symlink_does_not_touch_its_target(box) -> None:
    st = os.stat(box.sentinel / "file")
    root = box.run([[S("l", str(box.sentinel / "file"), uid=123, gid=456, mtime=1)]])
    assert os.lstat(root / "l").st_mtime == 1
    after = os.stat(box.sentinel / "file")
    assert (after.st_mode, after.st_uid, after.st_mtime_ns) == (st.st_mode, st.st_uid, st.st_mtime_ns)


# ---- hardlinks ---------------------------------------------------------------------------------------


def test_hardlink_to_dotdot_outside(box) -> None:
    err = box.run([[H("h", "../../sentinel/file")]], expect_error=LayerInvalid)
    assert "does not exist" in str(err)
    assert os.stat(box.sentinel / "file").st_nlink == 1


def test_hardlink_to_absolute_outside_path(box) -> None:
    box.run([[H("h", str(box.sentinel / "file"))]], expect_error=LayerInvalid)
    assert os.stat(box.sentinel / "file").st_nlink == 1


def test_hardlink_through_a_symlinked_directory(box) -> None:
    box.run([[S("d", S_ABS(box)), H("h", "d/file")]], expect_error=LayerInvalid)
    assert os.stat(box.sentinel / "file").st_nlink == 1


def test_hardlink_to_a_symlink_pointing_outside_links_the_symlink(box) -> None:
    root = box.run([[S("l", str(box.sentinel / "file")), H("h", "l")]])
    assert os.path.islink(root / "h") and os.lstat(root / "h").st_nlink == 2
    assert os.stat(box.sentinel / "file").st_nlink == 1


def test_hardlink_to_a_directory_is_refused(box) -> None:
    err = box.run([[D("d/"), H("h", "d")]], expect_error=LayerInvalid)
    assert "'h'" in str(err)


def test_hardlink_placed_through_symlinked_parent(box) -> None:
    root = box.run([[F("t", b"t"), S("d", "../../sentinel"), H("d/file", "t")]])
    assert os.path.samefile(root / "t", root / "sentinel/file")


# ---- whiteouts --------------------------------------------------------------------------------------


def test_whiteout_with_dotdot(box) -> None:
    box.run([[F("a", b"a")], [F("../../sentinel/.wh.file", b"")]])
    assert box.contents() == {"a": b"a"}   # the whiteout, clamped to sentinel/file, removed nothing


def test_whiteout_through_symlinked_parent(box) -> None:
    box.run([[S("d", S_ABS(box))], [F("d/.wh.file", b""), F("d/.wh.dir", b"")]])
    assert box.contents() == {"d": ("symlink", S_ABS(box))}   # the link stays; nothing appeared beside it


def test_opaque_whiteout_through_symlinked_parent(box) -> None:
    box.run([[S("d", "../../sentinel")], [F("d/.wh..wh..opq", b"")]])
    assert box.contents() == {"d": ("symlink", "../../sentinel")}   # the link stays; no whiteout file is written


def test_whiteout_of_nothing_named_dotdot_is_refused(box) -> None:
    err = box.run([[F("x/.wh...", b"")]], expect_error=LayerInvalid)
    assert "invalid whiteout entry 'x/.wh...'" in str(err)


def test_opaque_whiteout_at_the_root_only_clears_inside(box) -> None:
    root = box.run([[F("a", b"a"), D("d/"), F("d/b", b"b")], [F(".wh..wh..opq", b""), F("new", b"n")]])
    assert sorted(os.listdir(root)) == ["new"]


# ---- special files and bad archives ----------------------------------------------------------------


def test_device_node_without_privileges_is_skipped(box) -> None:
    root = box.run([[D("dev/"), E("dev/sda", b"4", mode=0o666, devmajor=8, devminor=0), F("dev/ok", b"ok")]],
                   rootless=True)
    assert not (root / "dev/sda").exists()
    assert (root / "dev/ok").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_node_through_symlinked_parent_stays_inside(box) -> None:
    root = box.run([[S("d", S_ABS(box)), E("d/null", b"3", mode=0o666, devmajor=1, devminor=3)]],
                   rootless=False)
    assert (root / S_ABS(box).lstrip("/") / "null").is_char_device()


def test_root_entry_changing_type_is_refused(box) -> None:
    err = box.run([[S("./", S_ABS(box))]], expect_error=LayerInvalid)
    assert "'./': refusing to change the type of the root directory" in str(err)


def test_huge_component_name(box) -> None:
    err = box.run([[F("a/" + "x" * 300, b"x")]], expect_error=LayerInvalid)
    assert "too long" in str(err)


def test_huge_path_of_many_components_stays_inside(box) -> None:
    deep = "/".join(["d" * 10] * 450) + "/f"     # longer than PATH_MAX, shallower than the recursion limit
    root = box.run([[F(deep, b"deep")]])
    from ocikit.layers.runtime_bundle import read_rootfs_file
    assert read_rootfs_file(str(root), deep) == "deep"     # walks with dir fds: the path is too long to open


def test_layer_that_is_not_a_tar(box) -> None:
    junk = os.urandom(4096)
    err = box.run([b"placeholder"], blobs=[gzip.compress(junk)], diff_ids=["sha256:" + "0" * 64],
                  expect_error=LayerInvalid)
    assert "not a tar" in str(err)


def test_plain_garbage_layer(box) -> None:
    err = box.run([b"x" * 1024], compression="none", expect_error=LayerInvalid)
    assert "not a tar archive: bad header checksum field at offset 0" in str(err)


def test_truncated_gzip(box) -> None:
    tar = tar_bytes([F("a", os.urandom(200_000))])
    blob = gzip.compress(tar)
    err = box.run([tar], blobs=[blob[: len(blob) // 2]], expect_error=OcikitError)
    assert isinstance(err, (LayerInvalid, DigestMismatch))


def test_truncated_tar(box) -> None:
    tar = tar_bytes([F("a", os.urandom(20_000)), F("b", b"b")])
    err = box.run([tar[:10_000]], compression="none", expect_error=LayerInvalid)
    assert "truncated" in str(err)


def test_corrupt_header_checksum(box) -> None:
    tar = bytearray(tar_bytes([F("a", b"a" * 600), F("b", b"b")]))
    second = 512 + 1024            # the header of b: after a's header and two data blocks
    tar[second + 10] ^= 0xFF
    err = box.run([bytes(tar)], compression="none", expect_error=LayerInvalid)
    assert f"corrupt tar header: bad header checksum at offset {second}" in str(err)


def test_diff_id_mismatch_leaves_target_absent(box) -> None:
    err = box.run([[F("a", b"a")]], diff_ids=["sha256:" + "1" * 64], expect_error=DigestMismatch)
    assert "diff_id" in str(err)


def test_corrupted_blob_is_refused(box) -> None:
    tar = tar_bytes([F("a", b"a" * 1000)])
    good, _ = compress(tar, "gzip")
    blob = bytearray(good)
    image_from_tars(box.layout, "t", [tar])
    # flip a byte of the stored blob (its name still says the good digest)
    from ocikit.digest import Digest
    path = os.path.join(box.layout, "blobs", "sha256", Digest.of(good).encoded)
    assert os.path.exists(path)
    blob[len(blob) // 2] ^= 0x01
    with open(path, "wb") as f:
        f.write(bytes(blob))
    before = box.outside()
    with pytest.raises((LayerInvalid, DigestMismatch), match=Digest.of(good).encoded):   # corrupt, naming the layer
        unpack(f"oci:{box.layout}:t", str(box.root))
    assert box.outside() == before
    assert not box.root.exists()


def test_rootless_xattr_in_layer_is_ignored(box) -> None:
    root = box.run([[F("f", b"f", uid=5, gid=6, xattrs={"user.rootlesscontainers": "\x08\x00\x10\x00"})]],
                   rootless=True)
    from ocikit.layers.rootless import ROOTLESS_XATTR, parse_rootless_payload
    assert parse_rootless_payload(os.getxattr(root / "f", ROOTLESS_XATTR)) == (5, 6)


def test_target_that_is_a_symlink_is_refused(box, tmp_path) -> None:
    os.symlink(box.sentinel, box.work / "root")
    image_from_tars(box.layout, "t", [tar_bytes([F("a", b"a")])])
    before = snapshot(str(box.sentinel), mtimes=True)
    with pytest.raises(UsageError, match="exists and is not a directory"):
        unpack(f"oci:{box.layout}:t", str(box.work / "root"))
    assert snapshot(str(box.sentinel), mtimes=True) == before


def test_a_failed_layer_stops_the_next_layers_reader(box) -> None:
    """The next layer is read ahead while one is applied: a failure stops that reader too."""
    import threading

    big = [F(f"f{i}", os.urandom(300_000)) for i in range(40)]      # more than the read-ahead holds
    box.run([[F("a", b"a"), H("h", "missing")], big], expect_error=LayerInvalid)
    assert not [t for t in threading.enumerate() if t.name.startswith("ocikit-layer-")]
