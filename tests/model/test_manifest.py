"""The data model: descriptors, manifests, indexes, configs; raw bytes kept; field paths in errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.core.errors import ConfigInvalid, ManifestInvalid, Schema1Unsupported, UnsupportedMediaType
from ocikit.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    build_index,
    build_manifest,
    canonical_json,
    filter_index,
    parse_config,
    parse_index,
    parse_manifest,
)
from ocikit.model.manifest import MAX_MANIFEST_SIZE
from ocikit.core.platforms import Platform

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def desc(mtype: str = mt.OCI_LAYER_GZIP, digest: str = D1, size: int = 10, **kw: Any) -> dict[str, Any]:
    return {"mediaType": mtype, "digest": digest, "size": size, **kw}


def manifest_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": desc(mt.OCI_CONFIG, D2, 5), "layers": [desc(), desc(digest=D3)]}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not DROP}


def index_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        desc(mt.OCI_MANIFEST, D1, 100, platform={"os": "linux", "architecture": "amd64"}),
        desc(mt.OCI_MANIFEST, D2, 200, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ]}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not DROP}


DROP = object()


def enc(doc: Any) -> bytes:
    return json.dumps(doc, indent=3).encode()


def edited(item: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``item`` with ``fields`` set (``DROP`` removes one)."""
    out = {**item, **fields}
    return {k: v for k, v in out.items() if v is not DROP}


def with_layer(i: int, **fields: Any) -> dict[str, Any]:
    doc = manifest_doc()
    doc["layers"][i] = edited(doc["layers"][i], fields)
    return doc


def with_entry(i: int, media_type: str = mt.OCI_INDEX, **fields: Any) -> dict[str, Any]:
    doc = index_doc(mediaType=media_type)
    doc["manifests"][i] = edited(doc["manifests"][i], fields)
    return doc


good_manifest = enc(manifest_doc())

# (raw bytes, media type hint, error type, message fragment naming the field path)
MALFORMED: list[tuple[str, bytes, str | None, type[Exception], str]] = [
    ("empty", b"", None, ManifestInvalid, "empty document"),
    ("truncated JSON", good_manifest[: len(good_manifest) // 2], None, ManifestInvalid, "not valid JSON"),
    ("not UTF-8", b'{"schemaVersion": 2, "x": "\xff"}', None, ManifestInvalid, "not valid JSON"),
    ("nested too deeply", b'{"a":' * 5000 + b"1" + b"}" * 5000, None, ManifestInvalid, "nested too deeply"),
    ("a JSON array", b"[1, 2]", None, ManifestInvalid, "expected a JSON object, got list"),
    ("a JSON string", b'"manifest"', None, ManifestInvalid, "expected a JSON object"),
    ("schema 1 by version", enc({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}), None,
     Schema1Unsupported, "schema 1"),
    ("schema 1 by media type", enc(manifest_doc(mediaType=mt.DOCKER_SCHEMA1_SIGNED)), None,
     Schema1Unsupported, "schema 1"),
    ("schema 1 by hint", enc({"schemaVersion": 2, "fsLayers": []}), mt.DOCKER_SCHEMA1, Schema1Unsupported,
     "schema 1"),
    ("unknown media type", enc(manifest_doc(mediaType="application/vnd.example.thing+json")), None,
     UnsupportedMediaType, "unsupported manifest media type 'application/vnd.example.thing+json'"),
    ("mediaType not a string", enc(manifest_doc(mediaType=7)), None, ManifestInvalid, "mediaType: expected a string"),
    ("mediaType disagrees with hint", enc(manifest_doc()), mt.DOCKER_MANIFEST, ManifestInvalid,
     "disagrees with the content type"),
    ("no mediaType and no shape", enc({"schemaVersion": 2}), None, ManifestInvalid, "neither 'manifests' nor 'layers'"),
    ("schemaVersion missing", enc(manifest_doc(schemaVersion=DROP)), None, ManifestInvalid,
     "schemaVersion: required field missing"),
    ("schemaVersion a string", enc(manifest_doc(schemaVersion="2")), None, ManifestInvalid,
     "schemaVersion: expected an integer, got string"),
    ("schemaVersion 3", enc(manifest_doc(schemaVersion=3)), None, ManifestInvalid, "schemaVersion: must be 2, got 3"),
    ("config missing", enc(manifest_doc(config=DROP)), None, ManifestInvalid, "config: required field missing"),
    ("config a string", enc(manifest_doc(config=D2)), None, ManifestInvalid, "config: expected an object, got string"),
    ("config.digest bad", enc(manifest_doc(config=desc(mt.OCI_CONFIG, "sha256:abc"))), None, ManifestInvalid,
     "config.digest: invalid digest 'sha256:abc'"),
    ("config.digest md5", enc(manifest_doc(config=desc(mt.OCI_CONFIG, "md5:" + "a" * 32))), None, ManifestInvalid,
     "config.digest: unsupported digest algorithm 'md5'"),
    ("config.digest null", enc(manifest_doc(config=desc(mt.OCI_CONFIG, None))), None, ManifestInvalid,
     "config.digest: expected a string, got null"),
    ("config.size negative", enc(manifest_doc(config=desc(mt.OCI_CONFIG, D2, -1))), None, ManifestInvalid,
     "config.size: must be >= 0, got -1"),
    ("config.size a string", enc(manifest_doc(config=desc(mt.OCI_CONFIG, D2, "5"))), None, ManifestInvalid,
     "config.size: expected an integer, got string"),
    ("config.size a float", enc(manifest_doc(config=desc(mt.OCI_CONFIG, D2, 5.5))), None, ManifestInvalid,
     "config.size: expected an integer, got number"),
    ("config.size a boolean", enc(manifest_doc(config=desc(mt.OCI_CONFIG, D2, True))), None, ManifestInvalid,
     "config.size: expected an integer, got boolean"),
    ("layers missing", enc(manifest_doc(layers=DROP)), None, ManifestInvalid, "layers: required field missing"),
    ("layers an object", enc(manifest_doc(layers={})), None, ManifestInvalid, "layers: expected an array, got object"),
    ("layers[1].mediaType missing", enc(with_layer(1, mediaType=DROP)), None, ManifestInvalid,
     "layers[1].mediaType: required field missing"),
    ("layers[0].mediaType bad", enc(with_layer(0, mediaType="not a media type")), None, ManifestInvalid,
     "layers[0].mediaType: invalid media type"),
    ("layers[1].size missing", enc(with_layer(1, size=DROP)), None, ManifestInvalid,
     "layers[1].size: required field missing"),
    ("layers[0].urls not an array", enc(with_layer(0, urls="http://x")), None, ManifestInvalid,
     "layers[0].urls: expected an array"),
    ("layers[0].urls[0] a number", enc(with_layer(0, urls=[1])), None, ManifestInvalid,
     "layers[0].urls[0]: expected a string"),
    ("layers[0].annotations value", enc(with_layer(0, annotations={"k": 1})), None, ManifestInvalid,
     "layers[0].annotations['k']: expected a string, got integer"),
    ("layers[0].data not base64", enc(with_layer(0, data="%%%")), None, ManifestInvalid,
     "layers[0].data: not valid base64"),
    ("layers[0].data wrong size", enc(with_layer(0, data=base64.b64encode(b"abc").decode())), None,
     ManifestInvalid, "layers[0].data: holds 3 bytes but size is 10"),
    ("layers[0].data wrong digest", enc(with_layer(0, data=base64.b64encode(b"0123456789").decode())), None,
     ManifestInvalid, "layers[0].data: does not match the digest"),
    ("annotations an array", enc(manifest_doc(annotations=["a"])), None, ManifestInvalid,
     "annotations: expected an object, got array"),
    ("subject a string", enc(manifest_doc(subject="sha256:x")), None, ManifestInvalid,
     "subject: expected an object, got string"),
    ("subject.digest bad", enc(manifest_doc(subject=desc(mt.OCI_MANIFEST, "sha256:Z"))), None, ManifestInvalid,
     "subject.digest: invalid digest"),
    ("artifactType bad", enc(manifest_doc(artifactType="nope")), None, ManifestInvalid,
     "artifactType: invalid media type 'nope'"),
    ("manifest with manifests", enc(manifest_doc(manifests=[])), None, ManifestInvalid,
     "manifests: an image manifest"),
    ("index with layers", enc(index_doc(layers=[])), None, ManifestInvalid, "must not have 'layers' or 'config'"),
    ("index manifests missing", enc(index_doc(manifests=DROP)), None, ManifestInvalid,
     "manifests: required field missing"),
    ("index manifests an object", enc(index_doc(manifests={})), None, ManifestInvalid,
     "manifests: expected an array, got object"),
    ("index manifests[1] a string", enc(index_doc(manifests=[desc(mt.OCI_MANIFEST), "x"])), None, ManifestInvalid,
     "manifests[1]: expected an object, got string"),
    ("index manifests[0].digest bad", enc(with_entry(0, digest="sha256:" + "A" * 64)), None, ManifestInvalid,
     "manifests[0].digest: invalid digest"),
    ("index manifests[1].platform a string", enc(with_entry(1, platform="linux/amd64")), None, ManifestInvalid,
     "manifests[1].platform: expected an object, got string"),
    ("index manifests[0].platform.architecture missing", enc(with_entry(0, platform={"os": "linux"})), None,
     ManifestInvalid, "manifests[0].platform.architecture: required field missing"),
    ("index manifests[0].platform.os a number", enc(with_entry(0, platform={"os": 1, "architecture": "x"})), None,
     ManifestInvalid, "manifests[0].platform.os: expected a string"),
    ("index manifests[1].platform.os.features", enc(with_entry(1, platform={
        "os": "windows", "architecture": "amd64", "os.features": [1]})), None, ManifestInvalid,
     "manifests[1].platform.os.features[0]: expected a string"),
    ("docker list without platform", enc(with_entry(1, mt.DOCKER_MANIFEST_LIST, platform=DROP)), None,
     ManifestInvalid, "manifests[1].platform: required in a Docker manifest list"),
    ("too large", b'{"schemaVersion":2,"x":"' + b"a" * MAX_MANIFEST_SIZE + b'"}', None, ManifestInvalid,
     "larger than the"),
]


@pytest.mark.parametrize("raw, hint, error, fragment", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_manifests(raw: bytes, hint: str | None, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as ei:
        parse_manifest(raw, hint)
    assert fragment in str(ei.value), str(ei.value)
    assert str(ei.value).startswith("manifest: ")
    assert ei.value.code == "MANIFEST_INVALID"  # type: ignore[attr-defined]


HINTS = (None, mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST)
ANY_HINT = [m for m in MALFORMED if m[2] is None]  # the others are malformed only under their own hint


@pytest.mark.parametrize("raw", [m[1] for m in ANY_HINT], ids=[m[0] for m in ANY_HINT])
def test_no_media_type_claim_makes_a_malformed_manifest_acceptable(raw: bytes) -> None:
    """What a client says the manifest is (a Content-Type, an index entry's mediaType) never
    lets a malformed one through: parsed under each manifest media type, it is still refused."""
    for hint in HINTS:
        with pytest.raises(ManifestInvalid):
            parse_manifest(raw, hint)


def test_not_bytes() -> None:
    with pytest.raises(ManifestInvalid, match="expected bytes"):
        parse_manifest("{}")  # type: ignore[arg-type]


def config_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"], "Labels": {"a": "b"}},
                           "rootfs": {"type": "layers", "diff_ids": [D1, D2]}, "history": [{"created_by": "x"}]}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not DROP}


MALFORMED_CONFIGS: list[tuple[str, bytes, str]] = [
    ("truncated", enc(config_doc())[:30], "not valid JSON"),
    ("architecture missing", enc(config_doc(architecture=DROP)), "architecture: required field missing"),
    ("architecture a number", enc(config_doc(architecture=64)), "architecture: expected a string, got integer"),
    ("os empty", enc(config_doc(os="")), "os: must not be empty"),
    ("rootfs missing", enc(config_doc(rootfs=DROP)), "rootfs: required field missing"),
    ("rootfs.type wrong", enc(config_doc(rootfs={"type": "tarball", "diff_ids": []})), "rootfs.type: must be 'layers'"),
    ("rootfs.diff_ids missing", enc(config_doc(rootfs={"type": "layers"})), "rootfs.diff_ids: required field missing"),
    ("rootfs.diff_ids[1] bad", enc(config_doc(rootfs={"type": "layers", "diff_ids": [D1, "sha256:x"]})),
     "rootfs.diff_ids[1]: invalid digest"),
    ("config a list", enc(config_doc(config=[])), "config: expected an object, got array"),
    ("config.Env a string", enc(config_doc(config={"Env": "A=1"})), "config.Env: expected an array"),
    ("config.Env[1] a number", enc(config_doc(config={"Env": ["A=1", 2]})), "config.Env[1]: expected a string"),
    ("config.Cmd[0] null", enc(config_doc(config={"Cmd": [None]})), "config.Cmd[0]: expected a string, got null"),
    ("config.Labels value", enc(config_doc(config={"Labels": {"x": 1}})), "config.Labels['x']: expected a string"),
    ("history an object", enc(config_doc(history={})), "history: expected an array"),
    ("history[0] a string", enc(config_doc(history=["x"])), "history[0]: expected an object"),
]


@pytest.mark.parametrize("raw, fragment", [m[1:] for m in MALFORMED_CONFIGS], ids=[m[0] for m in MALFORMED_CONFIGS])
def test_malformed_configs(raw: bytes, fragment: str) -> None:
    with pytest.raises(ConfigInvalid) as ei:
        parse_config(raw)
    assert fragment in str(ei.value), str(ei.value)
    assert str(ei.value).startswith("config: ")


def test_config_view_and_image_id() -> None:
    raw = enc(config_doc(created="2024-01-01T00:00:00Z", variant="v8", architecture="arm64"))
    c = parse_config(raw)
    assert c.raw == raw and c.digest == Digest.of(raw) and c.image_id == Digest.of(raw)
    assert (c.architecture, c.os, c.variant, c.created) == ("arm64", "linux", "v8", "2024-01-01T00:00:00Z")
    assert c.platform == Platform("linux", "arm64", "v8")
    assert c.env == ["A=1"] and c.labels == {"a": "b"} and c.diff_ids == [D1, D2]
    assert c.history == [{"created_by": "x"}]
    # strict=False reads configs missing REQUIRED fields (artifacts, odd builders)
    loose = parse_config(b'{"some": "thing"}', strict=False)
    assert loose.architecture == "" and loose.env == [] and loose.diff_ids == []


# ---- raw bytes ---------------------------------------------------------------------------------


def test_raw_bytes_kept_exactly() -> None:
    raw = b'{\n  "schemaVersion" : 2,\n  "zzz": {"unknown": [1,2]},\n' + enc(manifest_doc())[1:]
    m = parse_manifest(raw)
    assert isinstance(m, ImageManifest)
    assert m.raw == raw
    assert m.digest == Digest.of(raw) and m.size == len(raw)
    assert m.media_type == mt.OCI_MANIFEST and m.declared_media_type == mt.OCI_MANIFEST
    assert m.config.digest == D2 and [x.digest for x in m.layers] == [D1, D3]
    assert m.children() == [m.config, *m.layers]
    assert m.descriptor() == Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw))
    assert m.json["zzz"] == {"unknown": [1, 2]}


def test_bytearray_and_memoryview_accepted() -> None:
    raw = enc(index_doc())
    for r in (bytearray(raw), memoryview(raw)):
        m = parse_manifest(r)  # type: ignore[arg-type]
        assert isinstance(m.raw, bytes) and m.raw == raw and m.digest == Digest.of(raw)


def test_media_type_detection() -> None:
    no_mt = manifest_doc(mediaType=DROP)
    m = parse_manifest(enc(no_mt))
    assert m.media_type == mt.OCI_MANIFEST and m.declared_media_type is None
    m = parse_manifest(enc(no_mt), mt.DOCKER_MANIFEST + "; charset=utf-8")
    assert m.media_type == mt.DOCKER_MANIFEST
    i = parse_manifest(enc(index_doc(mediaType=DROP)))
    assert isinstance(i, ImageIndex) and i.media_type == mt.OCI_INDEX
    # a non-manifest hint (a server's octet-stream) does not get in the way
    assert parse_manifest(enc(manifest_doc()), "application/octet-stream").media_type == mt.OCI_MANIFEST
    with pytest.raises(ManifestInvalid, match="expected an index"):
        parse_index(enc(manifest_doc()))


def test_index_view() -> None:
    raw = enc(index_doc(annotations={"a": "b"}))
    i = parse_manifest(raw)
    assert isinstance(i, ImageIndex) and i.is_index and i.raw == raw
    assert [str(p) for p in i.platforms()] == ["linux/amd64", "linux/arm64/v8"]
    assert i.annotations == {"a": "b"}
    assert i.children() == list(i.manifests)


def test_docker_manifest_list() -> None:
    doc = index_doc(mediaType=mt.DOCKER_MANIFEST_LIST)
    i = parse_manifest(enc(doc))
    assert isinstance(i, ImageIndex) and i.media_type == mt.DOCKER_MANIFEST_LIST


def test_artifact_manifest_without_layers() -> None:
    doc = manifest_doc(layers=DROP, artifactType="application/vnd.example.sbom", config=desc(mt.OCI_EMPTY, mt.EMPTY_DIGEST, 2),
                       subject=desc(mt.OCI_MANIFEST, D1, 100))
    m = parse_manifest(enc(doc))
    assert isinstance(m, ImageManifest) and m.layers == () and m.artifact_type == "application/vnd.example.sbom"
    assert m.subject is not None and m.subject.digest == D1


def test_descriptor_roundtrip_keeps_unknown_fields() -> None:
    d = {"mediaType": mt.OCI_LAYER_GZIP, "digest": D1, "size": 3, "urls": ["https://x/y"],
         "annotations": {"a": "b"}, "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.1",
                                                   "os.features": ["win32k"]},
         "artifactType": "application/vnd.x", "data": base64.b64encode(b"abc").decode(), "x-vendor": {"k": 1}}
    d["digest"] = Digest.of(b"abc")
    parsed = Descriptor.from_dict(d)
    assert parsed.extra == {"x-vendor": {"k": 1}}
    assert parsed.to_dict() == d
    assert parsed.platform == Platform("windows", "amd64", None, "10.0.1", ("win32k",))
    assert parsed.with_annotations({"c": "d"}).annotations == {"c": "d"}
    assert parsed.with_annotations(None).to_dict().get("annotations") is None


# ---- creating content ------------------------------------------------------------------------


def test_build_is_deterministic() -> None:
    cfg = Descriptor(mt.OCI_CONFIG, Digest(D2), 5)
    layers = [Descriptor(mt.OCI_LAYER_GZIP, Digest(D1), 10)]
    a = build_manifest(cfg, layers, annotations={"x": "y"})
    b = build_manifest(cfg, layers, annotations={"x": "y"})
    assert a.raw == b.raw and a.digest == b.digest
    assert a.raw == canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": cfg.to_dict(),
                                    "layers": [layers[0].to_dict()], "annotations": {"x": "y"}})
    assert b" " not in a.raw
    idx = build_index([a.descriptor(platform=Platform("linux", "amd64"))])
    assert idx.raw == build_index([a.descriptor(platform=Platform("linux", "amd64"))]).raw
    assert json.loads(idx.raw)["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}


def test_canonical_json_unicode_and_order() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"b":1,"a":"é"}'.encode()


def test_filter_index_keeps_unknown_fields() -> None:
    doc = index_doc(annotations={"keep": "me"})
    doc["x-top"] = {"vendor": True}
    doc["manifests"][0]["x-entry"] = 42
    doc["manifests"].append(desc(mt.OCI_MANIFEST, D3, 300, platform={"os": "linux", "architecture": "s390x"}))
    raw = enc(doc)
    i = parse_index(raw)
    f = filter_index(i, [0, 2])
    out = json.loads(f.raw)
    assert out["x-top"] == {"vendor": True} and out["annotations"] == {"keep": "me"}
    assert [m["digest"] for m in out["manifests"]] == [D1, D3]
    assert out["manifests"][0]["x-entry"] == 42
    assert f.digest != i.digest and f.digest == Digest.of(f.raw)
    assert filter_index(i, [0, 2]).raw == f.raw
    # an index that omits mediaType gets it written, first after schemaVersion
    doc2 = index_doc(mediaType=DROP)
    f2 = filter_index(parse_index(enc(doc2)), [1])
    assert list(json.loads(f2.raw))[:2] == ["schemaVersion", "mediaType"]


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("schemaVersion", "mediaType", "manifests", "subject", "annotations", "artifactType",
                                                                          "layers", "config")),
                       st.one_of(st.integers(), st.text(max_size=8), st.booleans()), max_size=4),
       st.lists(st.integers(0, 1), max_size=2, unique=True))
def test_filter_index_property(extra: dict[str, Any], keep: list[int]) -> None:
    doc = index_doc()
    doc.update(extra)
    i = parse_index(enc(doc))
    f = filter_index(i, keep)
    out = json.loads(f.raw)
    for k, v in extra.items():
        assert out[k] == v
    assert [m.digest for m in f.manifests] == [i.manifests[k].digest for k in keep]


def test_filter_index_out_of_range() -> None:
    from ocikit.core.errors import UsageError
    with pytest.raises(UsageError, match="no entry 5"):
        filter_index(parse_index(enc(index_doc())), [0, 5])


# ---- media types ------------------------------------------------------------------------------


def test_media_type_kinds() -> None:
    assert mt.is_index(mt.OCI_INDEX) and mt.is_index(mt.DOCKER_MANIFEST_LIST) and not mt.is_index(mt.OCI_MANIFEST)
    assert mt.is_image_manifest(mt.DOCKER_MANIFEST) and not mt.is_image_manifest(mt.OCI_INDEX)
    assert all(mt.is_manifest(t) for t in (mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST))
    assert not mt.is_manifest(mt.DOCKER_SCHEMA1) and not mt.is_manifest(None)
    assert mt.is_docker(mt.DOCKER_CONFIG) and not mt.is_docker(mt.OCI_CONFIG) and not mt.is_docker(None)
    assert mt.EMPTY_DIGEST == Digest.of(mt.EMPTY_JSON)
    for t in mt.ACCEPT_MANIFESTS.split(", "):
        assert mt.is_manifest(t)
    assert mt.TO_OCI[mt.TO_DOCKER[mt.OCI_LAYER_GZIP]] == mt.OCI_LAYER_GZIP
    assert mt.NONDISTRIBUTABLE_TYPES <= mt.LAYER_TYPES


@pytest.mark.parametrize("media_type, compression", [
    (mt.OCI_LAYER, None), (mt.OCI_LAYER_GZIP, "gzip"), (mt.OCI_LAYER_ZSTD, "zstd"), (mt.OCI_LAYER_ND, None),
    (mt.OCI_LAYER_ND_GZIP, "gzip"), (mt.OCI_LAYER_ND_ZSTD, "zstd"), (mt.DOCKER_LAYER_GZIP, "gzip"),
    (mt.DOCKER_LAYER_FOREIGN, "gzip"), ("application/octet-stream", None),
])
def test_layer_compression(media_type: str, compression: str | None) -> None:
    assert mt.compression(media_type) == compression
