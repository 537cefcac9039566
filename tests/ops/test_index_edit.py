"""The pure index edits behind `manifest add/annotate/remove` and `index append`."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.core.errors import DuplicatePlatform, ManifestInvalid, ManifestUnknown, UsageError
from ocikit.model import Descriptor, parse_index
from ocikit.ops.index_edit import (
    PlatformFields,
    annotate_entry,
    append_entries,
    convert_index,
    new_index,
    remove_entry,
    set_index_annotations,
)
from ocikit.core.platforms import Platform


def desc(n: int, platform: Platform | None = None, media_type: str = mt.OCI_MANIFEST) -> Descriptor:
    return Descriptor(media_type, Digest.of(str(n).encode()), 100 + n, platform=platform)


AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")


def test_new_index_is_empty_and_deterministic() -> None:
    a, b = new_index(), new_index()
    assert a.raw == b.raw and a.manifests == ()
    assert json.loads(new_index(mt.DOCKER_MANIFEST_LIST).raw)["mediaType"] == mt.DOCKER_MANIFEST_LIST
    with pytest.raises(UsageError):
        new_index(mt.OCI_MANIFEST)


def test_append_keeps_order_and_digest_is_of_the_bytes() -> None:
    idx = append_entries(new_index(), [desc(1, AMD64), desc(2, ARM64)])
    assert [m.digest for m in idx.manifests] == [desc(1).digest, desc(2).digest]
    assert idx.digest == Digest.of(idx.raw)
    assert parse_index(idx.raw).manifests == idx.manifests


def test_duplicate_platform_is_refused() -> None:
    idx = append_entries(new_index(), [desc(1, AMD64)])
    with pytest.raises(DuplicatePlatform, match="linux/amd64"):
        append_entries(idx, [desc(2, Platform("linux", "x86_64"))])  # an alias is the same platform
    with pytest.raises(DuplicatePlatform):
        append_entries(new_index(), [desc(1, ARM64), desc(2, Platform("linux", "arm64"))])  # v8 is implied


def test_same_platform_different_os_version_or_variant_is_fine() -> None:
    idx = append_entries(new_index(), [desc(1, Platform("windows", "amd64", None, "10.0.17763.1")),
                                       desc(2, Platform("windows", "amd64", None, "10.0.20348.1")),
                                       desc(3, Platform("linux", "arm", "v6")),
                                       desc(4, Platform("linux", "arm", "v7"))])
    assert len(idx.manifests) == 4


def test_same_digest_replaces_its_entry() -> None:
    idx = append_entries(new_index(), [desc(1, AMD64), desc(2, ARM64)])
    again = append_entries(idx, [desc(1, AMD64).with_annotations({"k": "v"})])
    assert len(again.manifests) == 2 and again.manifests[0].annotations == {"k": "v"}


def test_docker_list_needs_platforms_and_entries_without_platform_fit_oci() -> None:
    with pytest.raises(ManifestInvalid, match="needs a platform"):
        append_entries(new_index(mt.DOCKER_MANIFEST_LIST), [desc(1)])
    idx = append_entries(new_index(), [desc(1), desc(2)])  # artifacts, attestations: no platform
    assert len(idx.manifests) == 2


def test_unknown_fields_survive_edits() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "x-top": 1,
                      "manifests": [{**desc(1, AMD64).to_dict(), "x-entry": [1, 2]}]}).encode()
    idx = parse_index(raw)
    edited = annotate_entry(append_entries(idx, [desc(2, ARM64)]), str(desc(1).digest), {"a": "b"})
    doc = json.loads(edited.raw)
    assert doc["x-top"] == 1 and doc["manifests"][0]["x-entry"] == [1, 2]
    assert doc["manifests"][0]["annotations"] == {"a": "b"}


def test_remove_and_annotate_unknown_digest() -> None:
    idx = append_entries(new_index(), [desc(1, AMD64)])
    with pytest.raises(ManifestUnknown, match="no entry"):
        remove_entry(idx, str(desc(9).digest))
    with pytest.raises(ManifestUnknown, match="no entry"):
        annotate_entry(idx, str(desc(9).digest), {"a": "b"})
    assert remove_entry(idx, str(desc(1).digest)).manifests == ()


def test_annotate_platform_fields() -> None:
    idx = append_entries(new_index(), [desc(1, AMD64), desc(2, ARM64)])
    out = annotate_entry(idx, str(desc(2).digest), None, PlatformFields(variant="v9"))
    assert out.manifests[1].platform == Platform("linux", "arm64", "v9")
    out = annotate_entry(idx, str(desc(2).digest), None, PlatformFields(architecture="s390x"))
    assert out.manifests[1].platform == Platform("linux", "s390x")  # a new arch drops the old variant
    with pytest.raises(DuplicatePlatform):
        annotate_entry(idx, str(desc(2).digest), None, PlatformFields(architecture="amd64"))
    out = annotate_entry(idx, str(desc(1).digest), {"x": "1", "y": "2"})
    out = annotate_entry(out, str(desc(1).digest), {}, remove_keys=["x"])
    assert out.manifests[0].annotations == {"y": "2"}


def test_platform_fields_apply() -> None:
    assert PlatformFields().apply(AMD64) == AMD64
    assert PlatformFields(os_features=("sse4",)).apply(AMD64) == Platform("linux", "amd64", os_features=("sse4",))
    with pytest.raises(UsageError):
        PlatformFields(variant="v7").apply(None)  # no os/arch to build on
    assert PlatformFields(os="linux", architecture="arm", variant="v7").apply(None) == Platform("linux", "arm", "v7")


def test_index_annotations() -> None:
    idx = set_index_annotations(new_index(), {"org.opencontainers.image.version": "1"})
    assert idx.annotations == {"org.opencontainers.image.version": "1"}
    assert set_index_annotations(idx, {}, ["org.opencontainers.image.version"]).annotations is None


def test_convert_index() -> None:
    idx = append_entries(new_index(), [desc(1, AMD64), desc(2, ARM64)])
    docker = convert_index(idx, mt.DOCKER_MANIFEST_LIST)
    assert docker.media_type == mt.DOCKER_MANIFEST_LIST and docker.manifests == idx.manifests
    assert convert_index(docker, mt.OCI_INDEX).raw == idx.raw
    with pytest.raises(ManifestInvalid, match="no platform"):
        convert_index(append_entries(new_index(), [desc(3)]), mt.DOCKER_MANIFEST_LIST)


_platforms = st.sampled_from([AMD64, ARM64, Platform("linux", "ppc64le"), Platform("linux", "s390x"),
                              Platform("linux", "arm", "v7"), Platform("windows", "amd64")])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), _platforms), max_size=8))
def test_append_never_lists_a_platform_twice(items: list[tuple[int, Platform]]) -> None:
    idx = new_index()
    for n, p in items:
        try:
            idx = append_entries(idx, [desc(n, p)])
        except DuplicatePlatform:
            continue
    plats = [(m.platform.normalized()) for m in idx.manifests if m.platform]
    digests = [m.digest for m in idx.manifests]
    assert len(set(plats)) == len(plats)
    assert len(set(digests)) == len(digests)
    for m in idx.manifests:  # removing every entry gives back the empty index
        idx = remove_entry(idx, str(m.digest))
    assert idx.raw == new_index().raw
