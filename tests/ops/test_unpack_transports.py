"""Unpack from every transport gives the same tree: a layout, an OCI archive, a docker archive, and a
real registry (Debian's docker-registry), which exercises the async blob_chunks path."""

from __future__ import annotations

import pytest

from ocikit.ops.copy import copy
from ocikit.ops.unpack import unpack

from helpers.layers import D, F, H, S, compare_trees, image_from_tars, tar_bytes

LAYERS = [
    [D("etc/"), F("etc/a", b"a" * 3000), S("etc/l", "a"), H("etc/h", "etc/a"), D("var/"), F("var/x", b"x")],
    [D("etc/"), F("etc/.wh.a", b""), F("var/.wh..wh..opq", b""), F("var/y", b"y" * 70_000)],
]


@pytest.mark.peer
def test_unpack_from_every_transport(tmp_path, registry) -> None:
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [tar_bytes(x) for x in LAYERS], compression="zstd")
    ref = str(tmp_path / "ref")
    unpack(f"oci:{layout}:t", ref)
    sources = {
        "oci-archive": f"oci-archive:{tmp_path}/a.tar",
        "docker-archive": f"docker-archive:{tmp_path}/d.tar:img:t",
        "registry": f"docker://{registry.host}/u/img:t",
    }
    for name, src in sources.items():
        if name == "docker-archive":
            image_from_tars(str(tmp_path / "gz"), "t", [tar_bytes(x) for x in LAYERS])   # docker: gzip only
            copy(f"oci:{tmp_path}/gz:t", src)
        else:
            copy(f"oci:{layout}:t", src)
        out = str(tmp_path / f"out-{name}")
        unpack(src if name != "docker-archive" else f"docker-archive:{tmp_path}/d.tar", out)
        assert compare_trees(ref, out, mtimes=True) == [], name
