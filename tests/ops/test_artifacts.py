"""OCI 1.1 artifacts and referrers over OCI layouts: push/pull, discovery by scan, copy --referrers, tree."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.core.errors import LayerInvalid, ManifestUnknown, UsageError
from ocikit.model import Descriptor, build_manifest, parse_manifest
from ocikit.ops import artifacts as art
from ocikit.ops.copy import CopyOptions, copy_between
from ocikit.ops.inspect import tree
from ocikit.ops.referrers import fallback_tag, find_referrers, record_referrer, referrer_descriptor
from ocikit.testing import write_image
from ocikit.transports.layout import OCILayout
from helpers.cli import expect_failure, invoke

SBOM = "application/spdx+json"
SIG = "application/vnd.example.signature"


def arun(coro):
    return asyncio.run(coro)


@pytest.fixture
def files(tmp_path) -> list[str]:
    a = tmp_path / "sbom.json"
    a.write_text('{"spdxVersion": "SPDX-2.3"}')
    b = tmp_path / "notes.txt"
    b.write_bytes(os.urandom(300_000))
    return [str(a), str(b)]


def test_fallback_tag() -> None:
    d = Digest.of(b"x")
    assert fallback_tag(d) == "sha256-" + d.encoded
    d512 = Digest.of(b"x", "sha512")
    assert fallback_tag(d512) == "sha512-" + d512.encoded[:64]


def test_referrer_descriptor_takes_config_type_without_artifact_type() -> None:
    cfg = Descriptor("application/vnd.example.config", Digest.of(b"c"), 1)
    m = build_manifest(cfg, [], annotations={"k": "v"})
    d = referrer_descriptor(m)
    assert d.artifact_type == "application/vnd.example.config" and d.annotations == {"k": "v"}
    assert d.digest == m.digest and d.size == len(m.raw)


def test_push_pull_and_discover_in_a_layout(multi_layout, files, tmp_path) -> None:
    ref = f"oci:{multi_layout.path}"
    sbom = arun(art.apush(ref, [files[0] + ":" + "application/spdx+json"], SBOM, subject="multi",
                          annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}))
    sig = arun(art.apush(ref, [files[1]], SIG, subject="multi"))
    other = arun(art.apush(ref, [], SIG, subject="single"))
    assert sbom.referrers_via == "layout"
    # the manifest follows the spec: artifactType, empty config, titled layers, subject
    raw = multi_layout.get_manifest_sync(str(sbom.digest)).raw
    doc = json.loads(raw)
    assert doc["artifactType"] == SBOM and doc["config"]["mediaType"] == mt.OCI_EMPTY
    assert doc["config"]["digest"] == mt.EMPTY_DIGEST and doc["config"]["size"] == 2
    assert doc["layers"][0]["mediaType"] == "application/spdx+json"
    assert doc["layers"][0]["annotations"]["org.opencontainers.image.title"] == "sbom.json"
    idx = multi_layout.resolve_sync("multi")
    assert doc["subject"] == {"mediaType": mt.OCI_INDEX, "digest": str(idx.digest), "size": idx.size}
    # no files: the empty descriptor as the one layer
    assert json.loads(multi_layout.get_manifest_sync(str(other.digest)).raw)["layers"][0]["digest"] == mt.EMPTY_DIGEST
    # discovery
    found = arun(find_referrers(multi_layout, idx.digest))
    assert found.source == "layout"
    assert {d.digest for d in found.referrers} == {sbom.digest, sig.digest}
    only = arun(find_referrers(multi_layout, idx.digest, SBOM))
    assert [d.digest for d in only.referrers] == [sbom.digest]
    # the scan notices index.json changing between two lookups in one process
    more = arun(art.push_artifact(multi_layout, None, [art.ArtifactFile(files[0])], "application/x-more",
                                  subject="multi"))
    assert more.digest in {d.digest for d in arun(find_referrers(multi_layout, idx.digest)).referrers}
    arun(multi_layout.delete_manifest(str(more.digest)))
    assert only.referrers[0].annotations == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    # the layout stays valid and gc keeps the artifacts (they are index.json entries)
    assert multi_layout.validate() == []
    multi_layout.gc()
    assert multi_layout.validate() == []
    # pull writes the files back, byte-exact
    pulled = arun(art.apull(f"oci:{multi_layout.path}@{sig.digest}", str(tmp_path / "out")))
    assert [os.path.basename(p) for p, _ in pulled.files] == ["notes.txt"]
    assert open(tmp_path / "out" / "notes.txt", "rb").read() == open(files[1], "rb").read()
    assert pulled.artifact_type == SIG


def test_bad_artifact_input(layout, files, tmp_path) -> None:
    write_image(layout, "img")
    ref = f"oci:{layout.path}"
    with pytest.raises(ManifestUnknown):
        arun(art.apush(ref, files, SIG, subject="missing"))
    with pytest.raises(UsageError, match="same name"):
        arun(art.apush(ref, [files[0], files[0]], SIG, subject="img"))
    with pytest.raises(UsageError, match="artifact-type"):
        arun(art.apush(ref, files, "", subject="img"))
    with pytest.raises(UsageError, match="same repository"):
        arun(art.apush(ref, files, SIG, subject=f"oci:{tmp_path / 'elsewhere'}:img"))
    # a hostile title is refused on pull, nothing written outside the directory
    evil = layout.put_bytes(b"pwned", "text/plain")
    evil = Descriptor(evil.media_type, evil.digest, evil.size, annotations={art.ANNOTATION_TITLE: "../evil"})
    layout.put_bytes(mt.EMPTY_JSON, mt.OCI_EMPTY)
    m = build_manifest(art.EMPTY_DESCRIPTOR, [evil], artifact_type=SIG)
    arun(layout.put_manifest(m.raw, m.media_type, "evil", root=True))
    with pytest.raises(LayerInvalid, match="plain file name"):
        arun(art.apull(f"oci:{layout.path}:evil", str(tmp_path / "pull")))
    assert not os.path.exists(tmp_path / "evil")


def test_copy_referrers_between_layouts_and_tree(multi_layout, files, tmp_path) -> None:
    ref = f"oci:{multi_layout.path}"
    idx = multi_layout.resolve_sync("multi")
    sbom = arun(art.apush(ref, [files[0]], SBOM, subject="multi"))
    # a signature of the SBOM: a referrer of a referrer
    sig = arun(art.apush(ref, [files[1]], SIG, subject=str(sbom.digest)))
    # a referrer of one child image
    child = parse_manifest(multi_layout.get_manifest_sync("multi").raw).manifests[1]  # type: ignore[union-attr]
    att = arun(art.apush(ref, [], "application/vnd.example.attestation", subject=str(child.digest)))

    dst = OCILayout(str(tmp_path / "dst"), create=True)
    res = arun(copy_between(multi_layout, "multi", dst, "multi", CopyOptions(all_platforms=True, referrers=True)))
    for d in (sbom.digest, sig.digest, att.digest):
        assert d in res.manifests
    assert {r.digest for r in arun(find_referrers(dst, idx.digest)).referrers} == {sbom.digest}
    assert {r.digest for r in arun(find_referrers(dst, sbom.digest)).referrers} == {sig.digest}
    assert {r.digest for r in arun(find_referrers(dst, child.digest)).referrers} == {att.digest}
    assert dst.validate() == []
    # without --referrers nothing extra moves
    dst2 = OCILayout(str(tmp_path / "dst2"), create=True)
    res2 = arun(copy_between(multi_layout, "multi", dst2, "multi", CopyOptions(all_platforms=True)))
    assert sbom.digest not in res2.manifests and arun(find_referrers(dst2, idx.digest)).referrers == []
    # a single-platform copy carries the child's referrers, not the index's
    dst3 = OCILayout(str(tmp_path / "dst3"), create=True)
    from ocikit.core.platforms import parse_platform
    arun(copy_between(multi_layout, "multi", dst3, "arm", CopyOptions(host=parse_platform("linux/arm64"),
                                                                      referrers=True)))
    assert [e.digest for e in dst3.entries() if not e.ref_name] == [att.digest]
    # tree --referrers shows them nested
    t = arun(tree(dst, "multi", referrers=True))
    assert [r["digest"] for r in t["referrers"]] == [str(sbom.digest)]
    assert [r["digest"] for r in t["referrers"][0]["referrers"]] == [str(sig.digest)]
    assert t["manifests"][1]["referrers"][0]["artifactType"] == "application/vnd.example.attestation"


def test_tag_schema_index_in_a_layout_is_read_and_maintained(layout) -> None:
    """A layout that holds a `sha256-<hex>` index (copied from a registry without the API) is honoured."""
    img = write_image(layout, "img")
    layout.put_bytes(mt.EMPTY_JSON, mt.OCI_EMPTY)
    m = build_manifest(art.EMPTY_DESCRIPTOR, [art.EMPTY_DESCRIPTOR], artifact_type=SIG)
    # stored as a plain blob (not an index.json entry): only the tag-schema index can find it
    arun(layout.put_manifest(m.raw, m.media_type, None))
    assert arun(find_referrers(layout, img.digest)).referrers == []

    class NoApi:  # the Store protocol over the same layout, but not recognised as a layout
        def __getattr__(self, name):
            return getattr(layout, name)

    assert arun(record_referrer(NoApi(), referrer_descriptor(m), img.digest)) == "tag-schema"
    assert arun(record_referrer(NoApi(), referrer_descriptor(m), img.digest)) == "tag-schema"  # idempotent
    assert fallback_tag(img.digest) in layout.tags()
    got = arun(find_referrers(layout, img.digest))
    assert [r.digest for r in got.referrers] == [m.digest] and got.referrers[0].artifact_type == SIG
    via_tags = arun(find_referrers(NoApi(), img.digest))
    assert via_tags.source == "tag-schema" and [r.digest for r in via_tags.referrers] == [m.digest]


def test_cli_artifacts_and_referrers(multi_layout, files, tmp_path, ocikit) -> None:
    """The first and the last calls run the installed entry point; the rest run in-process (faster)."""
    ref = f"oci:{multi_layout.path}"
    p = ocikit("artifact", "push", ref, files[0], "--artifact-type", SBOM, "--subject", "multi",
               "--annotation", "a=b")
    ocikit = invoke
    digest = p.stdout.decode().split()[-1]
    assert "via layout" in p.stdout.decode()
    p = ocikit("--format", "json", "referrers", f"{ref}:multi")
    doc = json.loads(p.stdout)
    assert doc["source"] == "layout" and doc["referrers"][0]["digest"] == digest
    assert doc["referrers"][0]["annotations"] == {"a": "b"}
    p = ocikit("referrers", f"{ref}:multi", "--artifact-type", "application/other")
    assert p.stdout == b""
    p = ocikit("artifact", "pull", f"{ref}@{digest}", str(tmp_path / "o"))
    assert open(tmp_path / "o" / "sbom.json").read() == open(files[0]).read()
    p = ocikit("tree", "--referrers", f"{ref}:multi")
    assert "referrer" in p.stdout.decode() and SBOM in p.stdout.decode()
    p = ocikit("copy", "--all", "--referrers", f"{ref}:multi", f"oci:{tmp_path / 'c'}:multi")
    p = ocikit("--format", "json", "referrers", f"oci:{tmp_path / 'c'}:multi")
    assert [r["digest"] for r in json.loads(p.stdout)["referrers"]] == [digest]
    expect_failure("artifact", "push", ref, files[0], "--artifact-type", SBOM, "--subject", "nope",
                   match=r"^ocikit: error: .*: no tag 'nope'$", code=1)


@pytest.mark.parametrize("text,tag", [
    ("docker://127.0.0.1:5000/a/b", None),
    ("docker://127.0.0.1:5000/a/b:v1", "v1"),
    ("docker://localhost/b:latest", "latest"),
    ("docker://r.example/b@sha256:" + "a" * 64, None),
    ("oci:/tmp/x", None),
    ("oci:/tmp/x:t", "t"),
])
def test_explicit_tag(text: str, tag: str | None) -> None:
    from ocikit.core.transportref import parse_transport_reference
    assert art.explicit_tag(text, parse_transport_reference(text)) == tag


@pytest.mark.parametrize("text,path,media_type", [
    ("a.json:application/json", "a.json", "application/json"),
    ("plain.txt", "plain.txt", art.DEFAULT_FILE_TYPE),
    # oras: the last ':' splits, so a path with a colon ends with ':' (default type) or escapes it
    ("x:y.txt:text/plain", "x:y.txt", "text/plain"),
    ("x:y.txt:", "x:y.txt", art.DEFAULT_FILE_TYPE),
    (r"x\:y.txt", "x:y.txt", art.DEFAULT_FILE_TYPE),
    (r"x\:y.txt:app/z", "x:y.txt", "app/z"),
    (r"dir\\:app/z", "dir\\", "app/z"),
    (r"back\slash", r"back\slash", art.DEFAULT_FILE_TYPE),
])
def test_parse_file_arg(text: str, path: str, media_type: str) -> None:
    assert art.parse_file_arg(text) == art.ArtifactFile(path, media_type)


@pytest.mark.parametrize("text,match", [
    (":app/z", "empty file path"),
    ("x:text", "'text' is not a media type"),
    ("x:a/b/c", "'a/b/c' is not a media type"),
])
def test_parse_file_arg_refuses(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        art.parse_file_arg(text)


def test_cli_artifact_push_file_mediatype_to_a_registry(registry, files, tmp_path, ocikit) -> None:
    """``FILE:MEDIATYPE`` (oras's form) against docker-registry: each layer carries the media type
    given (the default without one), and pulls back under the file's name."""
    colon = tmp_path / "has:colon.txt"
    colon.write_bytes(b"colon in the name")
    ref = f"docker://{registry.host}/art/files:v1"
    ocikit("artifact", "push", "--tls-verify=false", ref, f"{files[0]}:{SBOM}", files[1], f"{colon}:",
           "--artifact-type", SIG)
    raw = ocikit("inspect", "--tls-verify=false", "--raw", ref).stdout
    layers = json.loads(raw)["layers"]
    assert [(x["annotations"][art.ANNOTATION_TITLE], x["mediaType"]) for x in layers] == [
        ("sbom.json", SBOM), ("notes.txt", art.DEFAULT_FILE_TYPE), ("has:colon.txt", art.DEFAULT_FILE_TYPE)]
    ocikit("artifact", "pull", "--tls-verify=false", ref, str(tmp_path / "back"))
    assert (tmp_path / "back" / "has:colon.txt").read_bytes() == b"colon in the name"
    assert (tmp_path / "back" / "sbom.json").read_text() == open(files[0]).read()
    expect_failure("artifact", "push", "--tls-verify=false", ref, f"{tmp_path / 'missing.txt'}:{SBOM}",
                   "--artifact-type", SIG, match=r"missing\.txt: no such file$")
