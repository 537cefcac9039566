"""``ocikit layer diff LOWER UPPER OUT``: the layer, applied on LOWER by umoci, gives UPPER."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile

import pytest

from ocikit.core.errors import UsageError
from ocikit.layers.layertar import TarOptions
from ocikit.layers.treediff import change_order, diff_entries, with_hardlink_peers, write_diff_layer

from helpers.cli import expect_failure
from helpers.trees import diff_snapshots, make_tree, ocikit_unpack, snapshot, umoci_unpack, write


def make_upper(lower: str, upper: str) -> None:
    """UPPER = LOWER with one change of every kind."""
    subprocess.run(["cp", "-a", lower, upper], check=True)
    os.unlink(f"{upper}/etc/hostname")                             # deleted file
    shutil.rmtree(f"{upper}/usr/share/doc")                        # deleted directory
    shutil.rmtree(f"{upper}/var/empty-dir")                        # every old child of var gone...
    os.unlink(f"{upper}/var/fifo")
    write(f"{upper}/var/new", "fresh\n")                           # ...and a new one: var is opaque
    with open(f"{upper}/srv/data.bin", "r+b") as f:                # same size, other bytes
        f.seek(5000)
        f.write(b"\x01")
    os.chmod(f"{upper}/etc/passwd", 0o600)                         # mode only
    os.setxattr(f"{upper}/etc/passwd", "user.note", b"changed")    # xattr only
    os.unlink(f"{upper}/srv/empty")                                # file -> directory
    write(f"{upper}/srv/empty/inside", "in\n")
    shutil.rmtree(f"{upper}/tmp")                                  # directory -> file
    write(f"{upper}/tmp", "now a file\n")
    os.unlink(f"{upper}/bin/passwd-link")                          # symlink retargeted
    os.symlink("../etc/group", f"{upper}/bin/passwd-link")
    os.unlink(f"{upper}/bin/dangling")                             # symlink -> file
    write(f"{upper}/bin/dangling", "not a link\n")
    write(f"{upper}/srv/h1", "hard\n")                              # a new hardlink pair
    os.link(f"{upper}/srv/h1", f"{upper}/srv/h2")
    write(f"{upper}/-first", "sorts before .wh.\n")                # a name sorting before '.'
    os.link(f"{upper}/etc/passwd", f"{upper}/etc/passwd-link")     # a new link to a (changed) file
    os.link(f"{upper}/usr/tool-hard", f"{upper}/srv/tool-3")       # a new link to an unchanged file


def test_diff_entries_order_and_kinds(tmp_path):
    lower = make_tree(str(tmp_path / "lower"))
    upper = str(tmp_path / "upper")
    make_upper(lower, upper)
    changes = [(c.kind, c.path) for c in diff_entries(lower, upper)]
    assert ("whiteout", "etc/hostname") in changes
    assert ("whiteout", "usr/share/doc") in changes
    assert ("whiteout", "usr/share/doc/readme.txt") not in changes   # only the topmost deleted path
    assert ("opaque", "var") in changes and ("add", "var/new") in changes
    assert not any(p.startswith("var/empty-dir") or p == "var/fifo" for _, p in changes)
    for p in ("srv/data.bin", "etc/passwd", "bin/passwd-link", "bin/dangling", "srv/h1", "srv/h2", "-first"):
        assert ("add", p) in changes
    # type changes involving a directory: whiteout first, then the new entry
    for p in ("srv/empty", "tmp"):
        assert changes.index(("whiteout", p)) < changes.index(("add", p))
    assert ("add", "srv/empty/inside") in changes
    # in every directory the markers come before the entries (so they only hit lower layers)
    top = [c for c in changes if "/" not in c[1]]
    kinds = [k for k, _ in top]
    assert kinds == sorted(kinds, key=lambda k: k != "whiteout")
    # unchanged things are not there
    for p in ("bin/tool", "usr/tool-hard", "etc", "bin", "srv/data.bin/x"):
        assert ("add", p) not in changes
    assert list(diff_entries(lower, lower)) == []
    # the order the layer is written in is the sort order of change_order
    assert sorted(diff_entries(lower, upper), key=change_order) == list(diff_entries(lower, upper))
    # the unchanged peers of a new hardlink join the layer
    peers = [c.path for c in with_hardlink_peers(list(diff_entries(lower, upper)), upper)]
    assert {"bin/tool", "bin/tool-link", "usr/tool-hard", "srv/tool-3"} <= set(peers)


def test_owner_and_mtime_count_only_when_kept(tmp_path):
    lower = str(tmp_path / "l")
    write(f"{lower}/f", "same\n")
    upper = str(tmp_path / "u")
    subprocess.run(["cp", "-a", lower, upper], check=True)
    os.chown(f"{upper}/f", 1000, 1000)
    os.utime(f"{upper}/f", (5, 5))
    assert list(diff_entries(lower, upper)) == []
    assert [c.path for c in diff_entries(lower, upper, TarOptions(owner=None))] == ["f"]
    assert [c.path for c in diff_entries(lower, upper, TarOptions(mtime="keep"))] == ["f"]


def test_layer_applied_by_umoci_gives_upper(tmp_path, ocikit, peer):
    peer("umoci")
    lower = make_tree(str(tmp_path / "lower"))
    upper = str(tmp_path / "upper")
    make_upper(lower, upper)
    layer = str(tmp_path / "diff.tar.gz")
    p = ocikit("layer", "diff", lower, upper, layer)
    assert b"Wrote" in p.stdout
    with tarfile.open(layer) as tf:
        names = tf.getnames()
    assert "var/.wh..wh..opq" in names and "etc/.wh.hostname" in names and "usr/share/.wh.doc" in names
    lay = str(tmp_path / "lay")
    ocikit("build", "-o", f"oci:{lay}:lower", lower)
    ocikit("build", "-o", f"oci:{lay}:upper", "--from", f"oci:{lay}:lower", layer)
    rootfs = umoci_unpack(lay, "upper", str(tmp_path / "bundle"))
    assert diff_snapshots(snapshot(upper), snapshot(rootfs)) == []
    ours = ocikit_unpack(f"oci:{lay}:upper", str(tmp_path / "ours"))
    assert diff_snapshots(snapshot(upper), snapshot(ours)) == []
    # and the whole tree as one layer gives the same rootfs
    ocikit("build", "-o", f"oci:{lay}:flat", upper)
    flat = umoci_unpack(lay, "flat", str(tmp_path / "bundle-flat"))
    assert diff_snapshots(snapshot(flat), snapshot(rootfs)) == []


def test_layer_diff_is_reproducible_and_checks_input(tmp_path, ocikit):
    lower = make_tree(str(tmp_path / "lower"))
    upper = str(tmp_path / "upper")
    make_upper(lower, upper)
    r1 = write_diff_layer(lower, upper, str(tmp_path / "a"), "zstd")
    r2 = write_diff_layer(lower, upper, str(tmp_path / "b"), "zstd")
    assert r1 == r2
    with pytest.raises(UsageError, match="LOWER"):
        write_diff_layer(str(tmp_path / "nope"), upper, str(tmp_path / "c"))
    expect_failure("layer", "diff", lower, str(tmp_path / "missing"), str(tmp_path / "d"),
                   match=r"^ocikit: error: UPPER .*/missing: not a directory$", code=2)
    assert not os.path.exists(tmp_path / "d")
    p = ocikit("--format", "json", "layer", "diff", lower, lower, str(tmp_path / "e"), "--compression", "none")
    import json
    out = json.loads(p.stdout)
    assert out["entries"] == 0 and out["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
