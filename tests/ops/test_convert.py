"""copy --format oci|v2s2: pure conversions and round trips, skopeo reading the converted images."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit import CopyOptions, copy
from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.core.errors import ConversionError, Unsupported
from ocikit.model import Descriptor, build_index, build_manifest, parse_manifest
from ocikit.ops.convert import DOCKER_LAYER, convert_manifest, normalise_format
from ocikit.core.platforms import parse_platform
from ocikit.testing import write_image, write_index
from ocikit.testing.images import LayerSpec
from ocikit.transports.layout import OCILayout

from helpers.peers import skopeo, skopeo_inspect, skopeo_raw

CFG = Descriptor(mt.OCI_CONFIG, Digest.of(b"{}"), 2)


def layer(media_type: str, n: int = 0) -> Descriptor:
    return Descriptor(media_type, Digest.of(bytes([n])), 100 + n)


OCI_LAYERS = [mt.OCI_LAYER_GZIP, mt.OCI_LAYER, mt.OCI_LAYER_ND_GZIP, mt.OCI_LAYER_ND]


@given(st.lists(st.sampled_from(OCI_LAYERS), max_size=6))
@settings(max_examples=60)
def test_oci_v2s2_oci_round_trip_is_byte_exact(kinds):
    m = build_manifest(CFG, [layer(k, i) for i, k in enumerate(kinds)])
    docker = convert_manifest(m.raw, m.media_type, "v2s2")
    d = parse_manifest(docker)
    assert d.media_type == mt.DOCKER_MANIFEST and d.config.media_type == mt.DOCKER_CONFIG
    assert [x.digest for x in d.layers] == [x.digest for x in m.layers]  # blobs untouched
    assert all(mt.is_docker(x.media_type) for x in d.layers)
    back = convert_manifest(docker, mt.DOCKER_MANIFEST, "oci")
    assert back == m.raw
    assert convert_manifest(m.raw, m.media_type, "oci") is m.raw  # already OCI: the same bytes


def test_layer_types_and_refusals():
    m = build_manifest(CFG, [layer(mt.OCI_LAYER), layer(mt.OCI_LAYER_GZIP, 1)])
    d = json.loads(convert_manifest(m.raw, m.media_type, "v2s2"))
    assert [x["mediaType"] for x in d["layers"]] == [DOCKER_LAYER, mt.DOCKER_LAYER_GZIP]
    z = build_manifest(CFG, [layer(mt.OCI_LAYER_ZSTD)])
    with pytest.raises(ConversionError, match="zstd"):
        convert_manifest(z.raw, z.media_type, "v2s2")
    art = build_manifest(Descriptor("application/vnd.example+json", Digest.of(b"x"), 1), [layer(mt.OCI_LAYER)])
    with pytest.raises(ConversionError, match="not an image config"):
        convert_manifest(art.raw, art.media_type, "v2s2")
    sub = build_manifest(CFG, [], subject=m.descriptor())
    with pytest.raises(ConversionError, match="subject"):
        convert_manifest(sub.raw, sub.media_type, "v2s2")
    ann = build_manifest(CFG, [layer(mt.OCI_LAYER_GZIP)], annotations={"a": "b"})
    assert "annotations" not in json.loads(convert_manifest(ann.raw, ann.media_type, "v2s2"))
    with pytest.raises(ConversionError, match="v2s1"):
        normalise_format("v2s1")
    with pytest.raises(ConversionError, match="unknown"):
        normalise_format("zip")


def test_index_to_manifest_list_points_at_converted_children():
    kids = [build_manifest(CFG, [layer(mt.OCI_LAYER_GZIP, i)]) for i in range(2)]
    plats = ["linux/amd64", "linux/arm64/v8"]
    idx = build_index([k.descriptor(platform=parse_platform(p)) for k, p in zip(kids, plats)])
    new = {}
    for k in kids:
        raw = convert_manifest(k.raw, k.media_type, "v2s2")
        new[str(k.digest)] = Descriptor(mt.DOCKER_MANIFEST, Digest.of(raw), len(raw))
    lst = parse_manifest(convert_manifest(idx.raw, idx.media_type, "v2s2", new))
    assert lst.media_type == mt.DOCKER_MANIFEST_LIST
    assert [(c.digest, c.size, c.media_type) for c in lst.manifests] == \
        [(d.digest, d.size, d.media_type) for d in new.values()]
    assert [str(c.platform) for c in lst.manifests] == plats
    with pytest.raises(ConversionError, match="not part of this copy"):
        convert_manifest(idx.raw, idx.media_type, "v2s2", {})
    bare = build_index([kids[0].descriptor()])
    with pytest.raises(ConversionError, match="platform"):
        convert_manifest(bare.raw, bare.media_type, "v2s2", {str(kids[0].digest): new[str(kids[0].digest)]})



@pytest.mark.peer
def test_copy_format_round_trip_with_skopeo(tmp_path, peer, ocikit, registry):
    peer("skopeo")
    src = OCILayout(str(tmp_path / "src"), create=True)
    one = write_image(src, "one", layers=(LayerSpec(random_bytes=900), LayerSpec(random_bytes=400, compression="none")))
    multi = write_index(src, "multi", seed=5)
    # oci -> v2s2 (a layout, and an index with --all)
    r = copy(f"oci:{src.path}:one", f"oci:{tmp_path}/d:one", CopyOptions(manifest_format="v2s2"))
    assert r.source_digest == one.digest and r.digest != one.digest and r.media_type == mt.DOCKER_MANIFEST
    p = ocikit("--format", "json", "copy", "--all", "-f", "v2s2", f"oci:{src.path}:multi", f"oci-archive:{tmp_path}/d.tar:multi")
    out = json.loads(p.stdout)
    assert out["sourceDigest"] == multi.digest and out["digest"] != multi.digest
    assert out["mediaType"] == mt.DOCKER_MANIFEST_LIST
    # a registry serves the converted list: skopeo reads it with the same digest, and pulls the host's image
    ocikit("copy", "--all", "-f", "v2s2", f"oci:{src.path}:multi", f"docker://{registry.host}/conv/multi:v1")
    raw = skopeo_raw(f"docker://{registry.host}/conv/multi:v1")
    assert Digest.of(raw) == out["digest"]
    lst = parse_manifest(raw)
    assert lst.media_type == mt.DOCKER_MANIFEST_LIST and len(lst.manifests) == 3
    assert all(c.media_type == mt.DOCKER_MANIFEST for c in lst.manifests)
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/conv/multi:v1",
           f"docker-archive:{tmp_path}/sk.tar:a:b")
    assert skopeo_inspect(f"docker-archive:{tmp_path}/sk.tar")["Architecture"]
    # ... and back: v2s2 -> oci gives the original digests
    r2 = copy(f"oci:{tmp_path}/d:one", f"oci:{tmp_path}/o:one", CopyOptions(manifest_format="oci"))
    assert r2.digest == one.digest
    p = ocikit("--format", "json", "copy", "--all", "--format", "oci", f"oci-archive:{tmp_path}/d.tar:multi",
               f"oci:{tmp_path}/o:multi")
    assert json.loads(p.stdout)["digest"] == multi.digest
    assert OCILayout(str(tmp_path / "o")).validate() == []
    # --preserve-digests refuses a conversion that changes anything, and allows a no-op one
    p = ocikit("copy", "--preserve-digests", "-f", "v2s2", f"oci:{src.path}:one", f"oci:{tmp_path}/x:one",
               check=False)
    assert p.returncode != 0 and "--preserve-digests" in p.stderr.decode()
    r3 = copy(f"oci:{src.path}:one", f"oci:{tmp_path}/y:one", CopyOptions(manifest_format="oci",
                                                                        preserve_digests=True))
    assert r3.digest == one.digest


@pytest.mark.peer
def test_zstd_image_to_v2s2_fails_cleanly(tmp_path, ocikit):
    src = OCILayout(str(tmp_path / "src"), create=True)
    write_image(src, "z", layers=(LayerSpec(random_bytes=300, compression="zstd"),))
    p = ocikit("copy", "-f", "v2s2", f"oci:{src.path}:z", f"oci:{tmp_path}/d:z", check=False)
    err = p.stderr.decode()
    assert p.returncode == 2 and err.startswith("ocikit: error: ") and "zstd" in err, err
    assert not (tmp_path / "d" / "index.json").exists() or OCILayout(str(tmp_path / "d")).tags() == []
    with pytest.raises(Unsupported):
        copy(f"oci:{src.path}:z", f"docker-archive:{tmp_path}/z.tar:z:1", CopyOptions(preserve_digests=True))
