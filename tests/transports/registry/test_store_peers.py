"""ocikit <-> skopeo through Debian's docker-registry: single images and a 3-platform index, both ways."""

from __future__ import annotations

import json
from asyncio import run

import pytest

from ocikit.core.digest import Digest
from ocikit.core.errors import ManifestUnknown, Unsupported
from ocikit.model import ImageIndex, parse_manifest
from ocikit.ops.copy import CopyOptions, acopy, copy
from ocikit.core.platforms import host_platform, parse_platform
from ocikit.transports import open_store
from ocikit.transports.layout import OCILayout

from helpers.peers import skopeo, skopeo_inspect, skopeo_digest

pytestmark = pytest.mark.peer


def _children(lay: OCILayout, tag: str) -> ImageIndex:
    rm = lay.get_manifest_sync(tag)
    m = parse_manifest(rm.raw, rm.media_type)
    assert isinstance(m, ImageIndex)
    return m


def test_push_single_ocikit_pull_skopeo(reg, src_layout, tmp_path):
    res = copy(f"oci:{src_layout.path}:single", f"docker://{reg.host}/push/single:v1")
    want = src_layout.resolve_sync("single").digest
    assert res.digest == want and not res.digest_changed
    assert skopeo_digest(f"docker://{reg.host}/push/single:v1") == want
    skopeo("copy", "--src-tls-verify=false", f"docker://{reg.host}/push/single:v1", f"oci:{tmp_path}/sk:got")
    got = OCILayout(str(tmp_path / "sk"))
    assert got.resolve_sync("got").digest == want
    assert got.validate() == []


def test_push_index_all_every_platform_pulls_by_index_digest(reg, src_layout, tmp_path):
    res = copy(f"oci:{src_layout.path}:multi", f"docker://{reg.host}/push/multi:all",
               CopyOptions(all_platforms=True))
    idx_digest = src_layout.resolve_sync("multi").digest
    assert res.digest == idx_digest
    assert skopeo_digest(f"docker://{reg.host}/push/multi:all") == idx_digest
    for child in _children(src_layout, "multi").manifests:
        p = child.platform
        assert p is not None
        args = ["--override-os", p.os, "--override-arch", p.architecture]
        if p.variant:
            args += ["--override-variant", p.variant]
        dest = tmp_path / f"pull-{p.architecture}"
        skopeo(*args, "copy", "--src-tls-verify=false", f"docker://{reg.host}/push/multi@{idx_digest}",
               f"oci:{dest}:x")
        assert OCILayout(str(dest)).resolve_sync("x").digest == child.digest
    # skopeo copies the whole index back with --all: the same digest again
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{reg.host}/push/multi@{idx_digest}",
           f"oci:{tmp_path}/all:x")
    assert OCILayout(str(tmp_path / "all")).resolve_sync("x").digest == idx_digest


def test_push_skopeo_pull_ocikit_single_and_index(reg, src_layout, tmp_path):
    skopeo("copy", "--dest-tls-verify=false", f"oci:{src_layout.path}:single", f"docker://{reg.host}/sk/single:v1")
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{src_layout.path}:multi",
           f"docker://{reg.host}/sk/multi:v1")
    r1 = copy(f"docker://{reg.host}/sk/single:v1", f"oci:{tmp_path}/out:single")
    assert r1.digest == src_layout.resolve_sync("single").digest
    r2 = copy(f"docker://{reg.host}/sk/multi:v1", f"oci:{tmp_path}/out:multi", CopyOptions(all_platforms=True))
    want = src_layout.resolve_sync("multi").digest
    assert r2.digest == want == skopeo_digest(f"docker://{reg.host}/sk/multi:v1")
    out = OCILayout(str(tmp_path / "out"))
    assert out.validate() == []
    # registry -> registry, another repository: blobs are mounted, digests kept
    r3 = copy(f"docker://{reg.host}/sk/multi:v1", f"docker://{reg.host}/sk/mirror:v1", CopyOptions(all_platforms=True))
    assert r3.digest == want and r3.blobs_mounted > 0 and r3.bytes_copied == 0


def test_default_copy_takes_the_host_platform(reg, src_layout, tmp_path):
    copy(f"oci:{src_layout.path}:dmulti", f"docker://{reg.host}/host/multi:v1", CopyOptions(all_platforms=True))
    res = copy(f"docker://{reg.host}/host/multi:v1", f"oci:{tmp_path}/h:x")
    host = host_platform()
    children = _children(src_layout, "dmulti").manifests
    want = [c.digest for c in children if c.platform and c.platform.architecture == host.architecture]
    assert res.digest == want[0]
    assert res.source_digest == src_layout.resolve_sync("dmulti").digest
    # skopeo's default (no --all) picks the same image (registry to registry: no format change)
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{reg.host}/host/multi:v1",
           f"docker://{reg.host}/host/skopeo:x")
    assert skopeo_digest(f"docker://{reg.host}/host/skopeo:x") == res.digest


def test_inspect_and_list_tags_agree_with_skopeo(reg, src_layout, ocikit):
    copy(f"oci:{src_layout.path}:multi", f"docker://{reg.host}/insp/img:multi", CopyOptions(all_platforms=True))
    copy(f"oci:{src_layout.path}:single", f"docker://{reg.host}/insp/img:single")
    for tag in ("multi", "single"):
        ref = f"docker://{reg.host}/insp/img:{tag}"
        ours = json.loads(ocikit("inspect", ref).stdout)
        theirs = skopeo_inspect(ref)
        assert ours["Digest"] == theirs["Digest"]
        assert sorted(ours["RepoTags"]) == sorted(theirs["RepoTags"])
        assert ours["Layers"] == theirs["Layers"]
        raw = ocikit("inspect", "--raw", ref).stdout
        assert str(Digest.of(raw)) == theirs["Digest"]
    ours = json.loads(ocikit("list-tags", f"docker://{reg.host}/insp/img").stdout)
    theirs = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{reg.host}/insp/img").stdout)
    assert ours == theirs
    assert sorted(ours["Tags"]) == ["multi", "single"]


def test_delete_then_skopeo_no_longer_finds_it(reg, src_layout, ocikit):
    copy(f"oci:{src_layout.path}:single", f"docker://{reg.host}/del/img:gone")
    ocikit("delete", f"docker://{reg.host}/del/img:gone", "--tls-verify=false")
    p = skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/del/img:gone", check=False)
    assert p.returncode != 0 and "manifest unknown" in p.stderr, p.stderr
    with pytest.raises(ManifestUnknown):
        run(_resolve(f"docker://{reg.host}/del/img:gone"))


async def _resolve(ref: str):
    from ocikit.core.transportref import parse_transport_reference
    tref = parse_transport_reference(ref)
    store = open_store(tref)
    try:
        return await store.resolve(tref.selector)
    finally:
        await store.close()


def test_sparse_index_refused_clearly_by_docker_registry(reg, src_layout, tmp_path, ocikit):
    arm = parse_platform("linux/arm64/v8")
    opts = CopyOptions(platforms=[arm], preserve_index_digest=True)
    with pytest.raises(Unsupported, match="refuses a sparse index"):
        copy(f"oci:{src_layout.path}:multi", f"docker://{reg.host}/sparse/img:x", opts)
    with pytest.raises(ManifestUnknown):
        run(_resolve(f"docker://{reg.host}/sparse/img:x"))
    # a layout keeps the sparse index byte-exact
    res = copy(f"oci:{src_layout.path}:multi", f"oci:{tmp_path}/sp:x", opts)
    assert res.digest == src_layout.resolve_sync("multi").digest
    # the default with --platform writes a filtered index (new digest); --preserve-digests refuses that
    p = ocikit("copy", "--platform", "linux/arm64/v8", "--preserve-digests", f"oci:{src_layout.path}:multi",
               f"docker://{reg.host}/sparse/img:y", check=False)
    assert p.returncode != 0
    assert p.stderr.decode().startswith("ocikit: error: --preserve-digests")
    assert len(p.stderr.decode().strip().splitlines()) == 1
    res = copy(f"oci:{src_layout.path}:multi", f"docker://{reg.host}/sparse/img:z", CopyOptions(platforms=[arm]))
    assert res.digest_changed and skopeo_digest(f"docker://{reg.host}/sparse/img:z") == res.digest


@pytest.mark.parametrize("mode", ["monolithic", "streamed", "chunked"])
def test_upload_modes(reg, tmp_path, mode):
    from ocikit.testing import LayerSpec, write_image
    from ocikit.transports import OpenOptions
    lay = OCILayout(str(tmp_path / "big"), create=True)
    d = write_image(lay, "x", layers=(LayerSpec(random_bytes=3_000_000),), seed=hash(mode) & 0xff)
    opts = OpenOptions(upload_mode=mode, chunk_size=1 << 20)
    res = run(acopy(f"oci:{lay.path}:x", f"docker://{reg.host}/modes/{mode}:x", dst_options=opts))
    assert res.digest == d.digest and res.bytes_copied > 3_000_000
    assert skopeo_digest(f"docker://{reg.host}/modes/{mode}:x") == d.digest
    back = copy(f"docker://{reg.host}/modes/{mode}:x", f"oci:{tmp_path}/back:x")
    assert back.digest == d.digest
    assert OCILayout(str(tmp_path / "back")).validate() == []


def test_catalog_follows_link_pagination(reg, src_layout):
    """docker-registry pages its catalog with n and a Link header (it ignores n for tags lists)."""
    from ocikit.transports.registry import RegistryClient
    for r in ("page/one", "page/two", "page/three"):
        copy(f"oci:{src_layout.path}:single", f"docker://{reg.host}/{r}:x")

    async def go():
        client = RegistryClient(reg.host)
        try:
            return await client.catalog(n=1), await client.catalog()
        finally:
            await client.close()

    paged, whole = run(go())
    assert paged == whole
    assert {"page/one", "page/two", "page/three"} <= set(paged)


def test_referrers_fallback_tag_schema(reg, tmp_path):
    """docker-registry 2.8 has no referrers API: the sha256-<hex> tag index is read instead."""
    from ocikit.core import mediatypes as mt
    from ocikit.model import Descriptor, build_index
    from ocikit.transports.registry import RegistryClient, RegistryStore
    from ocikit.testing import write_image

    lay = OCILayout(str(tmp_path / "r"), create=True)
    subject = write_image(lay, "s", seed=11)
    art = write_image(lay, "a", seed=12)
    art = Descriptor(mt.OCI_MANIFEST, art.digest, art.size, artifact_type="application/vnd.test.sig")
    copy(f"oci:{lay.path}:s", f"docker://{reg.host}/ref/img:s")
    copy(f"oci:{lay.path}:a", f"docker://{reg.host}/ref/img:a")
    idx = build_index([art])

    async def go():
        store = RegistryStore(RegistryClient(reg.host), "ref/img")
        try:
            before = await store.referrers(subject.digest)
            await store.put_manifest(idx.raw, idx.media_type, f"sha256-{subject.digest.encoded}")
            after = await store.referrers(subject.digest)
            other = await store.referrers(subject.digest, "application/other")
            return before, after, other
        finally:
            await store.close()

    before, after, other = run(go())
    assert before == [] and other == []
    assert [d.digest for d in after] == [art.digest] and after[0].artifact_type == "application/vnd.test.sig"


def test_inspect_tls_verify_required_for_non_loopback_names(tmp_path):
    """A non-loopback host is reached over verified HTTPS only: no silent plain-HTTP fallback."""
    from ocikit.transports.registry.client import RegistryClient, is_loopback_host
    assert is_loopback_host("127.0.0.1:5000") and is_loopback_host("localhost") and is_loopback_host("[::1]:80")
    assert not is_loopback_host("example.com:5000") and not is_loopback_host("10.0.0.1")
    assert RegistryClient("registry.example:5000").allow_http is False
    assert RegistryClient("registry.example:5000", tls_verify=False).allow_http is True


def test_cli_copy_summary_and_json(reg, src_layout, ocikit):
    p = ocikit("copy", "--dest-tls-verify=false", f"oci:{src_layout.path}:single", f"docker://{reg.host}/cli/img:v1")
    out = p.stdout.decode()
    assert "digest " + str(src_layout.resolve_sync("single").digest) in out and "copied" in out
    p = ocikit("--format", "json", "copy", "--src-tls-verify=false", f"docker://{reg.host}/cli/img:v1",
               f"docker://{reg.host}/cli/other:v1")
    doc = json.loads(p.stdout)
    assert doc["digest"] == str(src_layout.resolve_sync("single").digest)
    assert doc["blobs"]["mounted"] == 2 and doc["bytes"]["copied"] == 0 and doc["bytes"]["mounted"] > 0
    # a second run finds everything there already
    doc = json.loads(ocikit("--format", "json", "copy", f"oci:{src_layout.path}:single",
                            f"docker://{reg.host}/cli/img:v1").stdout)
    assert doc["blobs"]["skipped"] == 2 and doc["blobs"]["copied"] == 0
