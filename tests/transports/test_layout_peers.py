"""Round trips with real tools: oci-image-tool, umoci and skopeo read what ocikit writes, and back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys

import pytest

from ocikit import CopyOptions, copy
from ocikit.model import ImageIndex, ImageManifest, parse_manifest
from ocikit.ops.inspect import inspect_image, tree
from ocikit.testing import FileEntry, LayerSpec, write_image, write_index
from ocikit.transports.layout import OCILayout

from helpers.peers import oci_image_tool_validate, sh, skopeo_digest

pytestmark = pytest.mark.peer

BASE = LayerSpec(entries=[FileEntry("etc/os-release", data=b"ID=debian\n"), FileEntry("usr/bin", kind="dir"),
                          FileEntry("usr/bin/sh", kind="symlink", target="/bin/busybox")])


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> OCILayout:
    """One layout holding what ocikit writes: a single image, a multi-arch index, several tags sharing blobs,
    a Docker v2s2 image, and each index child tagged on its own (copied by digest)."""
    lay = OCILayout(str(tmp_path_factory.mktemp("peers") / "written"), create=True)
    write_image(lay, "single", layers=[BASE, LayerSpec(random_bytes=4096)])
    write_index(lay, "multi", shared_base=BASE)
    write_image(lay, "2.4.47", layers=[BASE, LayerSpec(random_bytes=2048)], seed=47)
    write_image(lay, "2.4.48", layers=[BASE, LayerSpec(random_bytes=2048)], seed=48)
    write_image(lay, "zstd", layers=[LayerSpec(random_bytes=1024, compression="zstd")], seed=5)
    idx = parse_manifest(lay.get_manifest_sync("multi").raw)
    assert isinstance(idx, ImageIndex)
    for i, child in enumerate(idx.manifests):
        copy(f"oci:{lay.path}@{child.digest}", f"oci:{lay.path}:multi-{i}")
    return lay


IMAGE_TAGS = ["single", "2.4.47", "2.4.48", "zstd", "multi-0", "multi-1", "multi-2"]


# oci-image-tool 1.0.0-rc1 knows image-spec 1.0's layer types only: tar+zstd (1.1) is "invalid" to it
@pytest.mark.parametrize("tag", [t for t in IMAGE_TAGS if t != "zstd"] + ["multi"])
def test_oci_image_tool_validates(written: OCILayout, tag: str) -> None:
    oci_image_tool_validate(written.path, tag)


def test_oci_image_tool_catches_corruption(tmp_path) -> None:
    """The peer check above is not vacuous: oci-image-tool refuses a layout with a corrupt manifest."""
    lay = OCILayout(str(tmp_path / "bad"), create=True)
    d = write_image(lay, "t")
    raw = bytearray(open(lay.blob_path(d.digest), "rb").read())
    raw[raw.index(b'"size":') + 7] = ord("9")
    open(lay.blob_path(d.digest), "wb").write(bytes(raw))
    p = oci_image_tool_validate(lay.path, "t", check=False)
    assert p.returncode != 0 and "Validation succeeded" not in p.stdout + p.stderr


def test_umoci_lists_and_stats(written: OCILayout, peer) -> None:  # type: ignore[no-untyped-def]
    umoci = peer("umoci")
    tags = sh(umoci, "ls", "--layout", written.path).stdout.decode().split()
    assert sorted(tags) == sorted(written.tags())
    for tag in IMAGE_TAGS:
        out = json.loads(sh(umoci, "stat", "--json", "--image", f"{written.path}:{tag}").stdout)
        m = parse_manifest(written.get_manifest_sync(tag).raw)
        assert isinstance(m, ImageManifest)
        assert len(out["history"]) == len(m.layers)


def test_skopeo_copies_from_ocikit_layouts(written: OCILayout, tmp_path, peer) -> None:  # type: ignore[no-untyped-def]
    skopeo = peer("skopeo")
    for tag in ("single", "2.4.47"):
        sh(skopeo, "copy", "-q", f"oci:{written.path}:{tag}", f"oci:{tmp_path}/single:{tag}")
        out = OCILayout(str(tmp_path / "single"))
        assert out.get_manifest_sync(tag).raw == written.get_manifest_sync(tag).raw
    sh(skopeo, "copy", "-q", "--all", f"oci:{written.path}:multi", f"oci:{tmp_path}/all:m")
    out = OCILayout(str(tmp_path / "all"))
    assert out.get_manifest_sync("m").raw == written.get_manifest_sync("multi").raw
    assert out.validate() == []


def test_inspect_raw_digest_matches_skopeo(written: OCILayout, ocikit, peer) -> None:  # type: ignore[no-untyped-def]
    skopeo = peer("skopeo")
    for tag in ("single", "multi"):
        ref = f"oci:{written.path}:{tag}"
        raw = ocikit("inspect", "--raw", ref).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == skopeo_digest(ref)
        assert raw == sh(skopeo, "inspect", "--raw", ref).stdout
    ref = f"oci:{written.path}:multi"
    # literally as a user would check it
    piped = sh("sh", "-c", f'"{sys.executable}" -m ocikit inspect --raw "{ref}" | sha256sum').stdout.decode()
    assert "sha256:" + piped.split()[0] == skopeo_digest(ref)
    fields = json.loads(ocikit("inspect", ref).stdout)
    config = sh(skopeo, "inspect", "--config", "--raw", ref).stdout
    assert fields["ImageID"] == "sha256:" + hashlib.sha256(config).hexdigest()
    for tag in ("zstd", "2.4.48"):
        ins = asyncio.run(inspect_image(written, tag))
        ref = f"oci:{written.path}:{tag}"
        assert ins.root.desc.digest == skopeo_digest(ref)
        assert ins.config_raw == sh(skopeo, "inspect", "--config", "--raw", ref).stdout
        assert ins.config.image_id == "sha256:" + hashlib.sha256(ins.config_raw).hexdigest()


@pytest.fixture
def umoci_layout(tmp_path, peer) -> str:
    """A layout written by umoci: init, new, config, insert (two layers), several tags."""
    umoci = peer("umoci")
    path = str(tmp_path / "umoci")
    sh(umoci, "init", "--layout", path)
    sh(umoci, "new", "--image", f"{path}:base")
    sh(umoci, "config", "--image", f"{path}:base", "--config.env", "FOO=bar", "--config.label", "a=b",
       "--config.cmd", "/bin/sh")
    f = tmp_path / "hello.txt"
    f.write_text("hello from umoci\n")
    sh(umoci, "insert", "--image", f"{path}:base", "--tag", "v1", str(f), "/etc/hello.txt")
    sh(umoci, "insert", "--image", f"{path}:v1", "--tag", "v2", str(f), "/etc/hello2.txt")
    return path


def test_ocikit_reads_umoci_layouts(umoci_layout: str, tmp_path, ocikit, peer) -> None:  # type: ignore[no-untyped-def]
    peer("skopeo")
    lay = OCILayout(umoci_layout)
    assert sorted(lay.tags()) == ["base", "v1", "v2"]
    assert lay.validate() == []
    raw = ocikit("inspect", "--raw", f"oci:{umoci_layout}:v2").stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == skopeo_digest(f"oci:{umoci_layout}:v2")
    for tag in ("base", "v1"):
        assert lay.get_manifest_sync(tag).digest == skopeo_digest(f"oci:{umoci_layout}:{tag}")
    fields = json.loads(ocikit("inspect", f"oci:{umoci_layout}:v2").stdout)
    assert "FOO=bar" in fields["Env"] and fields["Labels"] == {"a": "b"} and len(fields["Layers"]) == 2
    m = parse_manifest(lay.get_manifest_sync("v2").raw)
    assert isinstance(m, ImageManifest)
    config = open(lay.blob_path(m.config.digest), "rb").read()
    assert fields["ImageID"] == "sha256:" + hashlib.sha256(config).hexdigest()
    # umoci leaves the replaced manifests and configs behind; gc removes them and umoci still reads the rest
    res = lay.gc()
    assert res.removed
    assert lay.validate() == []
    umoci = peer("umoci")
    for tag in ("base", "v1", "v2"):
        sh(umoci, "stat", "--image", f"{umoci_layout}:{tag}")
    # and ocikit copies it byte-exact
    copy(f"oci:{umoci_layout}:v2", f"oci:{tmp_path}/copied:v2")
    assert OCILayout(str(tmp_path / "copied")).get_manifest_sync("v2").raw == lay.get_manifest_sync("v2").raw


def test_ocikit_reads_skopeo_layouts(written: OCILayout, tmp_path, ocikit, peer) -> None:  # type: ignore[no-untyped-def]
    skopeo = peer("skopeo")
    spath = str(tmp_path / "skopeo")
    sh(skopeo, "copy", "-q", "--all", f"oci:{written.path}:multi", f"oci:{spath}:m")
    sh(skopeo, "copy", "-q", f"oci:{written.path}:2.4.47", f"oci:{spath}:2.4.47")
    sh(skopeo, "copy", "-q", f"oci:{written.path}:2.4.48", f"oci:{spath}:2.4.48")
    lay = OCILayout(spath)
    assert sorted(lay.tags()) == ["2.4.47", "2.4.48", "m"]
    assert lay.validate() == []
    raw = ocikit("inspect", "--raw", f"oci:{spath}:m").stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == skopeo_digest(f"oci:{spath}:m")
    for tag in ("2.4.47", "2.4.48"):
        assert lay.get_manifest_sync(tag).digest == skopeo_digest(f"oci:{spath}:{tag}")
    t = asyncio.run(tree(lay, "m"))
    assert len(t["manifests"]) == 3 and all(len(m["layers"]) == 2 for m in t["manifests"])
    res = copy(f"oci:{spath}:m", f"oci:{tmp_path}/back:m", CopyOptions(all_platforms=True))
    assert res.digest == parse_manifest(written.get_manifest_sync("multi").raw).digest
    assert OCILayout(str(tmp_path / "back")).validate() == []
    # gc of a skopeo layout keeps everything (nothing is garbage) and skopeo still reads it
    assert lay.gc().removed == []
    sh(skopeo, "inspect", f"oci:{spath}:2.4.48")


def test_skopeo_reads_after_ocikit_copy_into_its_layout(tmp_path, written: OCILayout, peer) -> None:  # type: ignore[no-untyped-def]
    """ocikit adds a tag to a layout skopeo wrote; skopeo still sees both tags."""
    skopeo = peer("skopeo")
    spath = str(tmp_path / "mixed")
    sh(skopeo, "copy", "-q", f"oci:{written.path}:single", f"oci:{spath}:from-skopeo")
    copy(f"oci:{written.path}:multi", f"oci:{spath}:from-ocikit", CopyOptions(all_platforms=True))
    for tag in ("from-skopeo", "from-ocikit"):
        sh(skopeo, "inspect", f"oci:{spath}:{tag}")
    assert os.path.exists(os.path.join(spath, "oci-layout"))
