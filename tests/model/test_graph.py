"""model.graph: the edges of every node kind, in order, and only typed errors on any input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit import mediatypes as mt
from ocikit.digest import Digest
from ocikit.errors import ManifestInvalid, OcikitError, Schema1Unsupported, UnsupportedMediaType
from ocikit.model import Descriptor, build_index, build_manifest
from ocikit.model.graph import (
    BLOB,
    CONFIG,
    EMBEDDED,
    LAYER,
    MANIFEST,
    SUBJECT,
    children,
    embedded_links,
    is_node_type,
    links,
)
from ocikit.platforms import Platform


def _d(media_type: str, data: bytes, **kw: Any) -> Descriptor:
    return Descriptor(media_type, Digest.of(data), len(data), **kw)


CFG = _d(mt.OCI_CONFIG, b"{}")
L1 = _d(mt.OCI_LAYER_GZIP, b"layer one")
L2 = _d(mt.OCI_LAYER_GZIP, b"layer two")
SUBJ = _d(mt.OCI_MANIFEST, b"the subject")
AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64", "v8")


def _roles(raw: bytes, media_type: str | None = None) -> list[tuple[str, str, Digest]]:
    return [(x.role, x.path, x.digest) for x in links(raw, media_type)]


def test_image_manifest_config_layers_then_subject() -> None:
    m = build_manifest(CFG, [L1, L2], subject=SUBJ, artifact_type="application/vnd.example.sig")
    assert _roles(m.raw, m.media_type) == [(CONFIG, "config", CFG.digest), (LAYER, "layers[0]", L1.digest),
                                           (LAYER, "layers[1]", L2.digest), (SUBJECT, "subject", SUBJ.digest)]
    assert children(m.raw, m.media_type) == [CFG, L1, L2, SUBJ]
    assert _roles(m.raw) == _roles(m.raw, m.media_type)  # the document's own mediaType decides without a hint


def test_index_and_docker_manifest_list() -> None:
    a = build_manifest(CFG, [L1])
    b = build_manifest(CFG, [L2])
    oci = build_index([a.descriptor(platform=AMD64), b.descriptor(platform=ARM64)], subject=SUBJ)
    assert _roles(oci.raw, mt.OCI_INDEX) == [(MANIFEST, "manifests[0]", a.digest), (MANIFEST, "manifests[1]", b.digest),
                                             (SUBJECT, "subject", SUBJ.digest)]
    da = build_manifest(_d(mt.DOCKER_CONFIG, b"{}"), [_d(mt.DOCKER_LAYER_GZIP, b"x")], media_type=mt.DOCKER_MANIFEST)
    assert [x.role for x in links(da.raw, mt.DOCKER_MANIFEST)] == [CONFIG, LAYER]
    dl = build_index([da.descriptor(platform=AMD64)], media_type=mt.DOCKER_MANIFEST_LIST)
    assert _roles(dl.raw, mt.DOCKER_MANIFEST_LIST) == [(MANIFEST, "manifests[0]", da.digest)]
    with pytest.raises(ManifestInvalid, match="disagrees"):  # the pointer and the document must agree
        links(dl.raw, mt.OCI_INDEX)


def test_oci_artifact_manifest_blobs_and_subject() -> None:
    doc = {"mediaType": mt.OCI_ARTIFACT_MANIFEST, "artifactType": "application/vnd.example.sbom",
           "blobs": [L1.to_dict(), L2.to_dict()], "subject": SUBJ.to_dict()}
    raw = json.dumps(doc).encode()
    expected = [(BLOB, "blobs[0]", L1.digest), (BLOB, "blobs[1]", L2.digest), (SUBJECT, "subject", SUBJ.digest)]
    assert _roles(raw, mt.OCI_ARTIFACT_MANIFEST) == expected
    assert _roles(raw) == expected
    assert is_node_type(mt.OCI_ARTIFACT_MANIFEST) and not is_node_type(mt.OCI_CONFIG)
    with pytest.raises(ManifestInvalid, match=r"blobs\[0\]\.digest"):
        links(json.dumps({**doc, "blobs": [{"mediaType": "a/b", "digest": "nope", "size": 1}]}).encode())


def test_foreign_layers_are_not_required() -> None:
    foreign = _d(mt.OCI_LAYER_ND_GZIP, b"far away", urls=("https://example.com/l",))
    m = build_manifest(CFG, [L1, foreign], subject=SUBJ)
    req = {x.path: (x.foreign, x.required) for x in links(m.raw)}
    assert req == {"config": (False, True), "layers[0]": (False, True), "layers[1]": (True, False),
                   "subject": (False, False)}


def test_unknown_types_and_bad_bytes_raise_typed_errors() -> None:
    m = build_manifest(CFG, [L1])
    with pytest.raises(UnsupportedMediaType, match="'application/vnd.example.thing' is not a manifest"):
        links(m.raw, "application/vnd.example.thing")
    with pytest.raises(UnsupportedMediaType):
        links(m.raw, mt.OCI_LAYER_GZIP)
    with pytest.raises(Schema1Unsupported):
        links(b'{"schemaVersion": 1, "fsLayers": []}')
    with pytest.raises(ManifestInvalid, match="not valid JSON"):
        links(m.raw[:-3], mt.OCI_MANIFEST)
    with pytest.raises(ManifestInvalid, match="neither 'manifests' nor 'layers'"):
        links(b'{"schemaVersion": 2}')


def test_embedded_links_best_effort() -> None:
    doc = {"mediaType": "application/vnd.example.bundle+json", "parts": [{"nested": L1.to_dict()},
           {"mediaType": "a/b", "digest": "sha256:short", "size": 1}, {"mediaType": "a/b", "digest": 5}]}
    assert [(x.role, x.digest) for x in embedded_links(json.dumps(doc).encode())] == [(EMBEDDED, L1.digest)]
    assert embedded_links(b"\xff not json") == [] and embedded_links(b"[1, 2]") == []


_TYPES = st.sampled_from([None, "", mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST,
                          mt.OCI_ARTIFACT_MANIFEST, mt.DOCKER_SCHEMA1, mt.OCI_CONFIG, "application/x+json",
                          "not a type", mt.OCI_INDEX + "; charset=utf-8"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                     max_leaves=20)
_KEYS = st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests", "subject", "blobs",
                         "artifactType", "annotations", "digest", "size", "platform", "urls", "data"])
_DESCRIPTORISH = st.fixed_dictionaries({}, optional={
    "mediaType": st.sampled_from([mt.OCI_LAYER_GZIP, mt.OCI_MANIFEST, "bad", 3]),
    "digest": st.sampled_from([str(L1.digest), "sha256:abc", "x", None]),
    "size": st.one_of(st.integers(-2, 20), st.text(max_size=2)),
    "platform": st.one_of(_JSON, st.fixed_dictionaries({"os": st.text(max_size=3), "architecture": _JSON})),
    "urls": _JSON, "annotations": _JSON, "data": st.sampled_from(["", "e30=", "!!", 7])})
_DOC = st.dictionaries(_KEYS, st.one_of(_JSON, _DESCRIPTORISH, st.lists(_DESCRIPTORISH, max_size=3)), max_size=8)


def _only_typed(raw: bytes, media_type: str | None) -> None:
    try:
        found = links(raw, media_type)
    except OcikitError:
        return
    assert all(isinstance(x.descriptor, Descriptor) for x in found)


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.binary(max_size=300), _TYPES)
def test_links_of_any_bytes_raise_only_typed_errors(raw: bytes, media_type: str | None) -> None:
    _only_typed(raw, media_type)
    embedded_links(raw)


@settings(deadline=None, max_examples=300)
@given(_DOC, _TYPES, st.sampled_from([2, 1, "2", None]))
def test_links_of_manifest_shaped_json_raise_only_typed_errors(doc: dict[str, Any], media_type: str | None,
                                                               version: Any) -> None:
    if version is not None:
        doc.setdefault("schemaVersion", version)
    raw = json.dumps(doc).encode()
    _only_typed(raw, media_type)
    embedded_links(raw)
