"""Fuzzing ``manifest``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.errors import OcikitError

pytestmark = pytest.mark.fuzz


manifest_keys = st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests", "subject",
                                 "annotations", "artifactType", "digest", "size", "platform", "urls"])
manifest_like = st.recursive(
    st.none() | st.integers() | st.text(max_size=20) | st.just("sha256:" + "a" * 64)
    | st.just("application/vnd.oci.image.manifest.v1+json") | st.just("application/vnd.oci.image.index.v1+json"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(manifest_keys, inner, max_size=6),
    max_leaves=25)


@given(st.one_of(st.binary(max_size=300), manifest_like.map(lambda d: json.dumps(d).encode())),
       st.sampled_from([None, "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json", "text/plain"]))
def test_model_manifest_parse_manifest(raw, media_type):
    from ocikit.model import parse_manifest
    try:
        parse_manifest(raw, media_type)
    except OcikitError:
        pass
