"""`ocikit unpack` and `umoci unpack` give identical trees on a corpus of images with whiteouts,
opaque directories, hardlinks, symlinks and file/directory replacements — images built by hand
(tarfile), by ocikit.testing.write_image and by umoci itself (init/new/unpack/repack)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ocikit.ops.unpack import UnpackOptions, unpack
from ocikit.testing import write_image
from ocikit.testing.images import FileEntry, LayerSpec
from ocikit.transports.layout import OCILayout

from helpers.layers import D, E, F, H, S, compare_trees, image_from_tars, tar_bytes

pytestmark = pytest.mark.peer

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="ownership and device nodes need root, as umoci does")


def umoci_unpack(layout: str, tag: str, bundle: str) -> str:
    exe = shutil.which("umoci")
    if exe is None:
        from helpers.peers import require
        require("umoci")
    subprocess.run([exe, "unpack", "--image", f"{layout}:{tag}", bundle], check=True, capture_output=True)
    return os.path.join(bundle, "rootfs")


def both(tmp_path, layout: str, tag: str = "t") -> tuple[str, str]:
    theirs = umoci_unpack(layout, tag, str(tmp_path / "umoci-bundle"))
    ours = str(tmp_path / "ocikit-rootfs")
    unpack(f"oci:{layout}:{tag}", ours, UnpackOptions(rootless=False if os.geteuid() == 0 else None))
    return ours, theirs


def assert_same(ours: str, theirs: str) -> None:
    diffs = compare_trees(ours, theirs, mtimes=True)
    assert diffs == [], "\n".join(diffs[:40])


HAND_MADE = {
    "whiteouts": [
        [D("etc/"), F("etc/a", b"a"), F("etc/b", b"b"), D("etc/sub/"), F("etc/sub/x", b"x"), D("keep/"),
         F("keep/k", b"k")],
        [D("etc/"), F("etc/.wh.a", b""), F("etc/.wh.sub", b""), F("etc/c", b"c")],
        [D("keep/"), F("keep/.wh.k", b""), F("keep/.wh.nothing-there", b"")],
    ],
    "opaque": [
        [D("o/"), F("o/1", b"1"), D("o/d/"), F("o/d/2", b"2"), D("p/"), F("p/x", b"x")],
        [D("o/"), F("o/.wh..wh..opq", b""), F("o/new", b"new"), D("p/"), F("p/y", b"y"), F("p/.wh..wh..opq", b"")],
    ],
    "whiteout-after-same-layer-file": [
        [D("a/"), F("a/old", b"old")],
        [D("a/"), F("a/new", b"new"), F("a/.wh.new", b""), F(".wh.a", b"")],
    ],
    "hardlinks": [
        [D("bin/"), F("bin/busybox", b"\x7fELF" * 100, 0o755), H("bin/sh", "bin/busybox"),
         H("bin/ls", "bin/busybox")],
        [D("bin/"), H("bin/cat", "bin/busybox"), F("bin/ls", b"replaced", 0o755), D("lib/"),
         F("lib/l.so", b"so"), H("lib/l2.so", "/lib/l.so")],
    ],
    "symlinks": [
        [D("usr/"), D("usr/lib/"), S("lib", "usr/lib"), S("abs", "/usr/lib"), S("dangling", "nowhere/x"),
         S("up", "../../.."), F("usr/lib/a.so", b"a")],
        [D("lib/"), F("lib/b.so", b"b"), S("usr/lib/c.so", "a.so")],
    ],
    "write-through-symlinked-parent": [
        [D("usr/"), D("usr/lib/"), S("lib", "usr/lib"), S("abslib", "/usr/lib")],
        [F("lib/x", b"x"), F("abslib/y", b"y"), D("lib/sub/"), F("lib/sub/z", b"z")],
    ],
    "replacements": [
        [D("d2f/"), F("d2f/child", b"c"), F("f2d", b"file"), D("s2d/"), S("d2s", "x"), D("dd/"), F("dd/k", b"k"),
         F("f2s", b"f")],
        [F("d2f", b"now a file"), D("f2d/"), F("f2d/inside", b"i"), S("s2d", "elsewhere"), D("d2s/"),
         F("d2s/y", b"y"), S("f2s", "d2f"), D("dd/", mode=0o700)],
        [D("f2d/"), F("f2d/.wh.inside", b""), S("d2f", "f2d"), D("s2d/")],
    ],
    "modes": [
        [D("m/", mode=0o1777), F("m/suid", b"s", 0o4755), F("m/sgid", b"g", 0o2711), F("m/ro", b"r", 0o400),
         F("m/none", b"n", 0o000), D("m/closed/", mode=0o500), F("m/closed/in", b"i", 0o644)],
    ],
    "ownership": [
        [D("home/", uid=0, gid=0), D("home/u/", uid=1000, gid=1000), F("home/u/f", b"f", uid=1000, gid=100),
         S("home/u/l", "f", uid=1000, gid=1000), F("odd", b"o", uid=65534, gid=12345, mode=0o2755)],
    ],
    "xattrs": [
        [D("x/", xattrs={"user.dir": "d"}), F("x/f", b"f", xattrs={"user.one": "1", "user.two": "zwei"}),
         F("x/plain", b"p")],
        [F("x/f", b"f2", xattrs={"user.three": "3"})],
    ],
    "devices-and-fifos": [
        [D("dev/"), E("dev/null", b"3", mode=0o666, devmajor=1, devminor=3),
         E("dev/sda", b"4", mode=0o660, devmajor=8, devminor=0), E("dev/fifo", b"6", mode=0o644)],
    ],
    "long-names": [
        [D("l/"), F("l/" + "n" * 200, b"long"), D("l/" + "d" * 120 + "/"),
         F("l/" + "d" * 120 + "/" + "f" * 150, b"deep"), S("l/s" + "s" * 120, "/" + "t" * 180)],
    ],
}


@pytest.mark.parametrize("compression", ["gzip"])
@pytest.mark.parametrize("case", sorted(HAND_MADE))
def test_hand_made_images_unpack_like_umoci(tmp_path, case, compression) -> None:
    if case in ("ownership", "devices-and-fifos") and os.geteuid() != 0:
        pytest.skip("needs root")
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [tar_bytes(layer) for layer in HAND_MADE[case]], compression=compression)
    ours, theirs = both(tmp_path, layout)
    assert_same(ours, theirs)


def test_spot_checks_of_the_corpus(tmp_path) -> None:
    """Not just equal to umoci: the semantics themselves (so a shared bug cannot hide)."""
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [tar_bytes(x) for x in HAND_MADE["opaque"] + HAND_MADE["replacements"]])
    root = tmp_path / "r"
    unpack(f"oci:{layout}:t", str(root))
    assert sorted(os.listdir(root / "o")) == ["new"]
    assert sorted(os.listdir(root / "p")) == ["y"]           # opaque after same-layer y: y survives
    assert (root / "f2d").is_dir() and os.listdir(root / "f2d") == []
    assert os.readlink(root / "d2f") == "f2d"
    assert (root / "d2s").is_dir() and (root / "d2s/y").read_bytes() == b"y"
    assert os.readlink(root / "f2s") == "d2f"
    assert oct((root / "dd").stat().st_mode & 0o7777) == oct(0o700)


def test_write_image_corpus_unpacks_like_umoci(tmp_path) -> None:
    """Images from ocikit.testing.write_image with whiteouts, opaque dirs, links, replacements."""
    layout = str(tmp_path / "layout")
    lay = OCILayout(layout, create=True)
    L1 = LayerSpec([FileEntry("app/", "dir"), FileEntry("app/main.py", data=b"print(1)\n", mode=0o755),
                    FileEntry("app/lib/", "dir"), FileEntry("app/lib/a.py", size=3000),
                    FileEntry("app/lib/b.py", size=10), FileEntry("app/link", "symlink", target="main.py"),
                    FileEntry("app/hard", "hardlink", target="app/main.py"),
                    FileEntry("var/", "dir"), FileEntry("var/cache/", "dir"), FileEntry("var/cache/c1", size=100),
                    FileEntry("owned", uid=42, gid=43, data=b"o")])
    L2 = LayerSpec([FileEntry("app/lib/a.py", "whiteout"), FileEntry("var/cache", "opaque"),
                    FileEntry("var/cache/c2", size=5), FileEntry("app/link", "dir"),
                    FileEntry("app/link/inside", data=b"i")], compression="gzip")
    L3 = LayerSpec([FileEntry("app/lib", "whiteout"), FileEntry("app/lib", data=b"now a file")],
                   random_bytes=5000)
    write_image(lay, "t", layers=[L1, L2, L3])
    ours, theirs = both(tmp_path, layout)
    assert_same(ours, theirs)


def _run(*args: str, cwd: str | None = None) -> None:
    subprocess.run(list(args), check=True, capture_output=True, cwd=cwd)


def test_umoci_built_image_unpacks_like_umoci(tmp_path) -> None:
    """An image umoci built itself (init/new/unpack/repack), with the whiteouts umoci writes."""
    exe = shutil.which("umoci")
    if exe is None:
        from helpers.peers import require
        require("umoci")
    layout = str(tmp_path / "layout")
    bundle = str(tmp_path / "work")
    _run(exe, "init", "--layout", layout)
    _run(exe, "new", "--image", f"{layout}:t")
    _run(exe, "unpack", "--image", f"{layout}:t", bundle)
    r = os.path.join(bundle, "rootfs")
    os.makedirs(f"{r}/etc/conf.d")
    os.makedirs(f"{r}/usr/lib")
    for i in range(30):
        with open(f"{r}/etc/conf.d/c{i}.conf", "w") as f:
            f.write(f"conf {i}\n" * i)
    os.symlink("usr/lib", f"{r}/lib")
    os.link(f"{r}/etc/conf.d/c1.conf", f"{r}/etc/hard.conf")
    os.chmod(f"{r}/etc/conf.d/c2.conf", 0o4750)
    if os.geteuid() == 0:
        os.chown(f"{r}/etc/conf.d/c3.conf", 7, 8)
    os.setxattr(f"{r}/etc/conf.d/c4.conf", "user.note", b"hello")
    _run(exe, "repack", "--refresh-bundle", "--image", f"{layout}:t", bundle)
    for i in range(0, 30, 3):
        os.unlink(f"{r}/etc/conf.d/c{i}.conf")
    shutil.rmtree(f"{r}/usr/lib")
    with open(f"{r}/usr/lib", "w") as f:          # a directory replaced by a file
        f.write("file now\n")
    os.unlink(f"{r}/etc/hard.conf")
    os.makedirs(f"{r}/etc/hard.conf")             # a file replaced by a directory
    _run(exe, "repack", "--refresh-bundle", "--image", f"{layout}:t", bundle)
    ours, theirs = both(tmp_path, layout)
    assert_same(ours, theirs)
    assert not os.path.exists(os.path.join(ours, "etc/conf.d/c0.conf"))
    assert os.path.isfile(os.path.join(ours, "usr/lib"))


def test_small_bench_image_if_present(tmp_path) -> None:
    """The `small` image of ../shared/tools/make_images.sh (umoci-built, hand-made opaque dirs), when
    this machine has generated it (OUT=/tmp/ocikit-images); the other tests here build their own."""
    src = os.environ.get("OCIKIT_IMAGES", "/tmp/ocikit-images") + "/small"
    if not os.path.exists(os.path.join(src, "index.json")):
        pytest.skip("the benchmark images are not on this machine (run ../shared/tools/make_images.sh small)")
    ours, theirs = both(tmp_path, src, "latest")
    assert_same(ours, theirs)
