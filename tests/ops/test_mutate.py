"""``ocikit append``, ``mutate`` and ``flatten``: results validate and unpack right (umoci)."""

from __future__ import annotations

import json
import os

import pytest

from ocikit.layers.merge import MergedTree
from ocikit.layers.reader import TarMember
from ocikit.testing import write_image
from ocikit.testing.images import FileEntry, LayerSpec
from ocikit.transports.layout import OCILayout

from helpers.cli import invoke
from helpers.images import digest_of, image_config, manifest
from helpers.peers import oci_image_tool_validate
from helpers.trees import diff_snapshots, make_tree, ocikit_unpack, snapshot, umoci_unpack, write

F = FileEntry

# A corpus of layers with whiteouts, opaque directories, hardlinks, symlinks and
# file/directory replacements, in both directions.
HOSTILE_TO_FLATTEN = [
    LayerSpec([F("etc", "dir"), F("etc/a.conf", data=b"a1"), F("etc/b.conf", data=b"b1", mode=0o600, uid=7, gid=8),
               F("usr", "dir"), F("usr/lib", "dir"), F("usr/lib/libx.so.1", data=b"x" * 3000),
               F("usr/lib/libx.so", "symlink", target="libx.so.1"), F("usr/bin", "dir"),
               F("usr/bin/tool", data=b"tool", mode=0o4755), F("usr/bin/tool2", "hardlink", target="usr/bin/tool"),
               F("opt", "dir"), F("opt/old", "dir"), F("opt/old/1", data=b"1"), F("opt/old/2", data=b"2"),
               F("data", data=b"was a file"), F("cache", "dir"), F("cache/x", data=b"x")]),
    LayerSpec([F("etc/a.conf", "whiteout"), F("usr/bin/tool", "whiteout"),  # tool2 keeps the data
               F("opt/old", "opaque"), F("opt/old/3", data=b"3"),
               F("data", "whiteout"), F("data", "dir"), F("data/inside", data=b"now a dir"),
               F("cache", "whiteout"), F("cache", data=b"now a file"),
               F("etc/c.conf", data=b"c2")]),
    LayerSpec([F("usr/lib/libx.so.1", data=b"y" * 10), F("etc/hard", "hardlink", target="etc/c.conf"),
               F("usr/lib/gone", data=b"g"), F("usr/lib/.wh.gone"), F("newdir", "dir", mode=0o700)],
              compression="none"),
]


def test_merged_tree_applies_layers_like_an_unpacker():
    def m(name: str, type_: str = "0", linkname: str = "") -> TarMember:
        return TarMember(name=name, type=type_, mode=0o644, uid=0, gid=0, size=0, mtime_ns=0, linkname=linkname)

    t = MergedTree()
    for x in (m("./a/", "5"), m("a/f"), m("a/g", "1", "a/f"), m("b", "2", "a"), m("d/"[:-1], "5"), m("d/x")):
        t.apply(0, x, x.name)
    t.apply(1, m("b/new"))                     # through the symlink b -> a
    t.apply(1, m("a/.wh.f"))                   # g keeps f's inode
    t.apply(1, m("d/.wh..wh..opq"))
    t.apply(1, m("d/y"))
    t.apply(1, m(".wh.nothing"))
    paths = {p: n for p, n in t.walk()}
    assert sorted(paths) == ["a", "a/g", "a/new", "b", "d", "d/y"]
    assert paths["a/g"].inode.data == "a/f"
    t.apply(2, m("a", "0"))                    # a file replaces the directory
    assert sorted(p for p, _ in t.walk()) == ["a", "b", "d", "d/y"]


def test_flatten_gives_the_same_rootfs(tmp_path, ocikit, peer):
    peer("umoci")
    lay = str(tmp_path / "lay")
    write_image(OCILayout(lay, create=True), "src", layers=HOSTILE_TO_FLATTEN)
    ocikit("flatten", f"oci:{lay}:src", "-o", f"oci:{lay}:flat")
    m = manifest(lay, "flat")
    assert len(m["layers"]) == 1
    cfg = image_config(lay, "flat")
    assert len(cfg["rootfs"]["diff_ids"]) == 1 and len(cfg["history"]) == 1
    oci_image_tool_validate(lay, "flat")
    want = snapshot(umoci_unpack(lay, "src", str(tmp_path / "b-src")), mtimes=True)
    got = snapshot(umoci_unpack(lay, "flat", str(tmp_path / "b-flat")), mtimes=True)
    assert diff_snapshots(want, got) == []
    assert got["usr/bin/tool2"]["sha256"] == want["usr/bin/tool2"]["sha256"] and "usr/bin/tool" not in got
    assert got["etc/b.conf"]["owner"] == (7, 8)
    # flattening again changes nothing; the same input gives the same digest
    ocikit("flatten", f"oci:{lay}:src", "-o", f"oci:{lay}:flat2")
    assert digest_of(lay, "flat2") == digest_of(lay, "flat")
    ours = ocikit_unpack(f"oci:{lay}:flat", str(tmp_path / "ours"))
    assert diff_snapshots(want, snapshot(ours, mtimes=True)) == []


def test_append_and_mutate(tmp_path, ocikit, peer):
    peer("umoci")
    base = make_tree(str(tmp_path / "base"))
    lay = str(tmp_path / "lay")
    ocikit("build", "-o", f"oci:{lay}:base", base, "--cmd", "sh", "--env", "A=1")
    add = str(tmp_path / "add")
    write(f"{add}/app/run", "#!/bin/sh\n", 0o755)
    ocikit("append", f"oci:{lay}:base", add, "-o", f"oci:{lay}:app", "--env", "B=2")
    oci_image_tool_validate(lay, "app")
    assert manifest(lay, "app")["layers"][0] == manifest(lay, "base")["layers"][0]
    cfg = image_config(lay, "app")
    assert cfg["config"]["Env"] == ["A=1", "B=2"] and cfg["config"]["Cmd"] == ["sh"]
    rootfs = umoci_unpack(lay, "app", str(tmp_path / "b"))
    assert open(f"{rootfs}/app/run").read() == "#!/bin/sh\n" and os.path.exists(f"{rootfs}/bin/tool")

    # mutate config fields; the layers stay, the history grows by one empty_layer entry
    ocikit("mutate", f"oci:{lay}:app", "-o", f"oci:{lay}:m", "--entrypoint", "/app/run", "--cmd", "",
           "--user", "nobody", "--label", "v=2", "--annotation", "k=v")
    oci_image_tool_validate(lay, "m")
    cfg2 = image_config(lay, "m")
    assert cfg2["config"]["Entrypoint"] == ["/app/run"] and "Cmd" not in cfg2["config"]
    assert cfg2["config"]["User"] == "nobody" and cfg2["config"]["Labels"] == {"v": "2"}
    assert cfg2["rootfs"] == cfg["rootfs"]
    assert cfg2["history"][:-1] == cfg["history"] and cfg2["history"][-1]["empty_layer"] is True
    assert manifest(lay, "m")["annotations"]["k"] == "v"
    # a retag keeps the digest; mutating in place moves the tag
    ocikit("mutate", f"oci:{lay}:m", "--tag", "again")
    assert digest_of(lay, "again") == digest_of(lay, "m")
    before = digest_of(lay, "m")
    ocikit("mutate", f"oci:{lay}:m", "--workdir", "/app")
    assert digest_of(lay, "m") != before and image_config(lay, "m")["config"]["WorkingDir"] == "/app"


def test_mutate_every_platform_of_an_index(tmp_path, ocikit):
    src = str(tmp_path / "src")
    write(f"{src}/f", "f\n")
    lay = str(tmp_path / "lay")
    ocikit("build", "-o", f"oci:{lay}:multi", src, "--platform", "linux/amd64", "--platform", "linux/arm64")
    ocikit("mutate", f"oci:{lay}:multi", "-o", f"oci:{lay}:out", "--env", "X=1")
    idx = json.loads(OCILayout(lay).get_manifest_sync("out").raw)
    assert [m["platform"]["architecture"] for m in idx["manifests"]] == ["amd64", "arm64"]
    for d in idx["manifests"]:
        m = json.loads(OCILayout(lay).get_manifest_sync(d["digest"]).raw)
        with open(OCILayout(lay).blob_path(m["config"]["digest"])) as f:
            assert "X=1" in json.load(f)["config"]["Env"]
    ocikit("flatten", f"oci:{lay}:multi", "-o", f"oci:{lay}:flat", "--platform", "linux/arm64")
    m = json.loads(OCILayout(lay).get_manifest_sync("flat").raw)
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json" and len(m["layers"]) == 1


@pytest.mark.parametrize("args, message", [
    (["append", "oci:LAY:nope", "SRC"], "no tag 'nope'"),
    (["append", "oci:LAY:base", "MISSING"], "no such file or directory"),
    (["mutate", "oci:LAY:base", "--env", "=x"], "bad --env"),
    (["flatten", "oci:NOLAYOUT:x"], "no such OCI layout"),
])
def test_bad_input(tmp_path, args, message):
    src = str(tmp_path / "src")
    write(f"{src}/a", "a\n")
    lay = str(tmp_path / "lay")
    invoke("build", "-o", f"oci:{lay}:base", src)
    subst = {"SRC": src, "MISSING": str(tmp_path / "missing")}
    args = [subst.get(a, a.replace("NOLAYOUT", str(tmp_path / "nolayout")).replace("LAY", lay)) for a in args]
    before = OCILayout(lay).entries()
    p = invoke(*args, check=False)
    err = p.stderr.decode()
    assert p.returncode in (1, 2) and err.startswith("ocikit: error: ") and err.count("\n") == 1 and message in err, err
    assert OCILayout(lay).entries() == before   # no tag moved, nothing added
