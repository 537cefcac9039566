"""The docker save format as pure functions: manifest.json, reference selection, legacy metadata."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.errors import ArchiveInvalid, InvalidReference, ManifestUnknown, UsageError
from ocikit.transports.archive.dockerformat import (
    ManifestItem,
    choose_item,
    generated_manifest,
    go_json,
    legacy_layers,
    manifest_json,
    normalise_tag,
    parse_manifest_json,
    repositories,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_normalise_tag_is_skopeos_repo_tag_form():
    assert normalise_tag("busybox") == "docker.io/library/busybox:latest"
    assert normalise_tag("foo/bar:v1") == "docker.io/foo/bar:v1"
    assert normalise_tag("localhost:5000/x:y") == "localhost:5000/x:y"
    with pytest.raises(UsageError, match="digest"):
        normalise_tag("busybox@" + D1)
    with pytest.raises(InvalidReference):
        normalise_tag("UPPER:x")


def test_choose_item():
    items = [ManifestItem("a.json", ["busybox:latest"], []), ManifestItem("b.json", ["docker.io/foo/bar:v1"], [])]
    assert choose_item(items, "busybox", "x") == 0
    assert choose_item(items, "docker.io/library/busybox:latest", "x") == 0
    assert choose_item(items, "foo/bar:v1", "x") == 1
    assert choose_item(items, "@1", "x") == 1
    assert choose_item(items[:1], None, "x") == 0
    with pytest.raises(ManifestUnknown, match="2 images"):
        choose_item(items, None, "x")
    with pytest.raises(ManifestUnknown, match="@2"):
        choose_item(items, "@2", "x")
    with pytest.raises(ManifestUnknown, match="no image tagged"):
        choose_item(items, "foo/bar:v2", "x")
    with pytest.raises(ManifestUnknown, match="no image"):
        choose_item([], None, "x")


@pytest.mark.parametrize("raw,field", [
    (b"{", "JSON"), (b"{}", "array"), (b"[1]", "object"), (b'[{"Layers": []}]', "Config"),
    (b'[{"Config": "c", "RepoTags": "x", "Layers": []}]', "RepoTags"),
    (b'[{"Config": "c", "Layers": [1]}]', "Layers"), (b'[{"Config": "c"}]', "Layers"),
])
def test_parse_manifest_json_names_the_field(raw, field):
    with pytest.raises(ArchiveInvalid, match=field):
        parse_manifest_json(raw, "a.tar")


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.lists(st.text(max_size=5), max_size=3),
                          st.lists(st.text(min_size=1, max_size=8), max_size=4)), max_size=4))
def test_manifest_json_round_trips(entries):
    items = [ManifestItem(c, t, ls) for c, t, ls in entries]
    assert parse_manifest_json(manifest_json(items), "x") == items


def test_generated_manifest_is_gos_encoding():
    raw = generated_manifest(12, D1, [(D2, 1024)])
    assert raw == (b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
                   b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":12,"digest":"'
                   + D1.encode() + b'"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",'
                   b'"size":1024,"digest":"' + D2.encode() + b'"}]}')
    assert go_json({"a": "<&>"}) == b'{"a":"\\u003c\\u0026\\u003e"}'


def test_legacy_layers_chain_and_repositories():
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"]}}).encode()
    ls = legacy_layers([D1, D2], cfg)
    assert [x.layer_file for x in ls] == ["1" * 64 + ".tar", "2" * 64 + ".tar"]
    top = json.loads(ls[1].json)
    assert top["parent"] == ls[0].id and top["id"] == ls[1].id and top["architecture"] == "amd64"
    assert top["container"] is None and "parent" not in json.loads(ls[0].json)
    assert len({x.id for x in ls}) == 2
    chain = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    assert ls[1].id != chain.split(":")[1]  # an ID of the legacy config, not the chain ID itself
    assert json.loads(repositories([(["docker.io/foo/bar:v1", "docker.io/foo/bar:v2"], ls[1].id)])) == \
        {"docker.io/foo/bar": {"v1": ls[1].id, "v2": ls[1].id}}
