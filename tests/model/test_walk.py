"""model.walk: one walker — each digest once, no recursion, missing and unreadable nodes named with their parent.

The second half checks that layout gc, the oci-archive writer and copy planning all walk with
it, and see the same graph: an index of indexes holding a Docker v2s2 manifest list, and a
referrer whose subject is the top index.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Iterator

import pytest

from ocikit import mediatypes as mt
from ocikit.content import Options
from ocikit.digest import Digest
from ocikit.errors import DigestMismatch, LayoutInvalid, ManifestUnknown, ManifestUnreadable, TransportError
from ocikit.model import Descriptor, build_index, build_manifest, parse_manifest
from ocikit.model import walk as walk_mod
from ocikit.model.graph import LAYER, MANIFEST, ROOT
from ocikit.model.walk import GraphWalker, awalk, walk
from ocikit.ops.copy import CopyOptions, copy, plan_copy, resolve_root
from ocikit.testing import write_image
from ocikit.transports.archive.oci import OCIArchiveReader
from ocikit.transports.layout import OCILayout


class Blobs(dict):  # type: ignore[type-arg]
    """An in-memory content store for the walker: digest -> bytes, counting fetches."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[Digest] = []

    def put(self, data: bytes, media_type: str, **kw: Any) -> Descriptor:
        d = Descriptor(media_type, Digest.of(data), len(data), **kw)
        self[d.digest] = data
        return d

    def fetch(self, desc: Descriptor) -> bytes:
        self.fetches.append(desc.digest)
        if desc.digest not in self:
            raise ManifestUnknown(f"no {desc.digest}")
        return self[desc.digest]

    async def afetch(self, desc: Descriptor) -> bytes:
        await asyncio.sleep(0)
        return self.fetch(desc)


def _image(b: Blobs, seed: str, **kw: Any) -> Descriptor:
    cfg = b.put(f'{{"seed":"{seed}"}}'.encode(), mt.OCI_CONFIG)
    layer = b.put(f"layer {seed}".encode(), mt.OCI_LAYER_GZIP)
    m = build_manifest(cfg, [layer])
    return b.put(m.raw, m.media_type, **kw)


def test_diamond_each_digest_once_and_children_first() -> None:
    b = Blobs()
    shared = _image(b, "shared")
    left = build_index([shared, _image(b, "left")])
    right = build_index([shared])
    top = build_index([b.put(left.raw, left.media_type), b.put(right.raw, right.media_type), shared])
    root = b.put(top.raw, top.media_type)
    g = walk([root], b.fetch)
    assert sorted(b.fetches) == sorted(set(b.fetches))  # no digest fetched twice
    order = [n.digest for n in g.postorder()]
    assert order[-1] == root.digest and len(order) == len(set(order)) == 5
    for n in g.nodes.values():  # every followed child comes before its parent
        assert all(order.index(c) < order.index(n.digest) for c in n.follows)
    assert {link.digest for _, link in g.leaves} == {x.digest for n in g.nodes.values() for x in n.links
                                                     if x.role != MANIFEST}
    assert asyncio.run(awalk([root], b.afetch)).postorder()[-1].digest == root.digest


def test_deep_chain_needs_no_recursion() -> None:
    b = Blobs()
    d = _image(b, "bottom")
    for _ in range(5000):
        idx = build_index([d])
        d = b.put(idx.raw, idx.media_type)
    g = walk([d], b.fetch)
    assert len(g.nodes) == 5001 and g.postorder()[-1].digest == d.digest
    assert len(asyncio.run(awalk([d], b.afetch)).postorder()) == 5001


def test_missing_is_recorded_with_its_parent_or_raised() -> None:
    b = Blobs()
    gone = build_manifest(b.put(b"{}", mt.OCI_CONFIG), [])
    idx = build_index([_image(b, "here"), gone.descriptor()])
    root = b.put(idx.raw, idx.media_type)
    g = walk([root], b.fetch)
    assert [(m.parent, m.link.path, m.link.digest) for m in g.missing] == [(root.digest, "manifests[1]", gone.digest)]
    assert gone.digest in g.digests()
    with pytest.raises(ManifestUnknown) as ei:
        walk([root], b.fetch, missing_ok=False, where="somewhere")
    assert any(f"manifests[1] of {root.digest}" in note for note in ei.value.__notes__)


def test_unreadable_names_node_parent_and_place() -> None:
    b = Blobs()
    child = _image(b, "child")
    idx = build_index([child])
    root = b.put(idx.raw, idx.media_type)
    b[child.digest] = b[child.digest][:-1] + b"!"  # same size, other bytes
    with pytest.raises(ManifestUnreadable, match=f"repo x: cannot read manifest {child.digest} "
                                                 rf"\(manifests\[0\] of {root.digest}\): .*digest mismatch") as ei:
        walk([root], b.fetch, where="repo x")
    assert (ei.value.digest, ei.value.parent, ei.value.path) == (child.digest, root.digest, "manifests[0]")
    bad = b.put(b'{"schemaVersion": 2, "mediaType": "%s", "layers": 5}' % mt.OCI_MANIFEST.encode(), mt.OCI_MANIFEST)
    with pytest.raises(ManifestUnreadable, match=f"cannot read manifest {bad.digest}: manifest: config: required"):
        walk([bad], b.fetch)


def test_fetch_errors_keep_their_type_unless_io() -> None:
    b = Blobs()
    root = _image(b, "x")

    def oserror(desc: Descriptor) -> bytes:
        raise PermissionError(13, "Permission denied")

    def offline(desc: Descriptor) -> bytes:
        raise TransportError("cannot reach the registry")

    with pytest.raises(ManifestUnreadable, match="Permission denied"):
        walk([root], oserror)
    with pytest.raises(TransportError):
        walk([root], offline)


def test_follow_and_scan_unknown_json() -> None:
    b = Blobs()
    img = _image(b, "img")
    inner = b.put(b"payload", "application/octet-stream")
    bundle = b.put(b'{"parts": [%s]}' % str(inner.to_dict()).replace("'", '"').encode(),
                   "application/vnd.example.bundle+json")
    roots = [img, bundle]
    plain = walk(roots, b.fetch)
    assert inner.digest not in plain.digests() and bundle.digest not in plain.nodes
    scanned = walk(roots, b.fetch, scan_unknown_json=True)
    assert inner.digest in scanned.digests() and scanned.nodes[bundle.digest].scanned
    only_roots = walk([img], b.fetch, follow=lambda parent, link: link.role == ROOT)
    assert set(only_roots.nodes) == {img.digest} and len(only_roots.leaves) == 2
    with pytest.raises(ManifestUnreadable, match="is not a manifest"):  # a followed node of an unknown type
        walk([bundle], b.fetch, follow=lambda parent, link: True)


def test_closure_follows_children_and_referrers() -> None:
    b = Blobs()
    img = _image(b, "img")
    idx = build_index([img])
    top = b.put(idx.raw, idx.media_type)
    sig = build_manifest(b.put(b"{}", mt.OCI_EMPTY), [], subject=top, artifact_type="application/vnd.example.sig")
    sig_d = b.put(sig.raw, sig.media_type)
    sig2 = build_manifest(b.put(b"{}", mt.OCI_EMPTY), [], subject=sig_d, artifact_type="application/vnd.example.sig")
    sig2_d = b.put(sig2.raw, sig2.media_type)
    g = walk([top, sig_d, sig2_d], b.fetch)
    assert g.closure([top.digest]) == {top.digest, img.digest}
    assert g.closure([top.digest], referrers=True) == {top.digest, img.digest, sig_d.digest, sig2_d.digest}
    assert g.closure([img.digest], referrers=True) == {img.digest}


def test_walker_core_is_sans_io() -> None:
    b = Blobs()
    img = _image(b, "img")
    w = GraphWalker([img])
    [visit] = w.wanted()
    assert w.wanted() == []  # handed out once
    w.found(visit, b[img.digest])
    assert w.wanted() == [] and [x.role for _, x in w.graph.leaves] == ["config", LAYER]


# ---- the walker's users see the same graph ---------------------------------------------------


@pytest.fixture
def spy(monkeypatch) -> Iterator[list[tuple[str, set[Digest]]]]:
    """Every walk made through ocikit.model.walk: (where, the manifests it visited)."""
    seen: list[tuple[str, set[Digest]]] = []

    class Recording(GraphWalker):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            seen.append((self.where, set()))
            self._mine = seen[-1][1]

        def found(self, visit: Any, fetched: Any) -> None:
            if not visit.scan:  # documents of unknown types searched for descriptors aside
                self._mine.add(visit.descriptor.digest)
            super().found(visit, fetched)

    monkeypatch.setattr(walk_mod, "GraphWalker", Recording)
    yield seen


def _put(lay: OCILayout, raw: bytes, media_type: str, **kw: Any) -> Descriptor:
    d = lay.put_bytes(raw, media_type)
    return Descriptor(d.media_type, d.digest, d.size, **kw)


@pytest.fixture
def graph_layout(tmp_path) -> tuple[OCILayout, Descriptor, set[Digest], set[Digest]]:
    """``top``: an OCI index of [an OCI index of two images, a v2s2 list of two docker images];
    ``sig``: a referrer of ``top``; a stray blob. Returns (layout, top, its manifests, its blobs)."""
    lay = OCILayout(str(tmp_path / "g"), create=True)
    imgs = [write_image(lay, None, seed=s, platform=p, root=False, docker=docker)
            for s, p, docker in [(1, "linux/amd64", False), (2, "linux/arm64/v8", False),
                                 (3, "linux/amd64", True), (4, "linux/arm64/v8", True)]]
    oci = build_index(imgs[:2])
    v2s2 = build_index(imgs[2:], media_type=mt.DOCKER_MANIFEST_LIST)
    top = build_index([_put(lay, oci.raw, oci.media_type), _put(lay, v2s2.raw, v2s2.media_type)])
    asyncio.run(lay.put_manifest(top.raw, top.media_type, "top"))
    sig = build_manifest(lay.put_bytes(mt.EMPTY_JSON, mt.OCI_EMPTY), [lay.put_bytes(b"sig", "application/x.sig")],
                         subject=top.descriptor(), artifact_type="application/x.sig")
    asyncio.run(lay.put_manifest(sig.raw, sig.media_type, "sig"))
    lay.put_bytes(b"stray")
    manifests = {top.digest, oci.digest, v2s2.digest, *(i.digest for i in imgs)}
    blobs: set[Digest] = set()
    for i in imgs:
        blobs.update(c.digest for c in parse_manifest(lay.get_manifest_sync(str(i.digest)).raw).children())
    return lay, top.descriptor(), manifests, blobs


def test_layout_gc_archive_and_copy_planning_share_the_walker(graph_layout, spy, tmp_path) -> None:
    lay, top, manifests, blobs = graph_layout
    sig_digest = lay.resolve_sync("sig").digest
    sig_graph = {sig_digest, *(c.digest for c in parse_manifest(lay.get_manifest_sync("sig").raw).children())}
    # layout gc: everything under top and sig, nothing else
    assert lay.reachable() == manifests | blobs | sig_graph
    where, visited = spy[-1]
    assert where == lay.location and visited == manifests | {sig_digest}
    # copy planning: the same nodes under top, children before parents, the same blob set
    async def plan() -> Any:
        root = await resolve_root(lay, "top", Options())
        return await plan_copy(lay, root, CopyOptions(all_platforms=True), Options())
    p = asyncio.run(plan())
    assert spy[-1] == (lay.location, manifests)
    order = [n.desc.digest for n in p.manifests]
    assert set(order) == manifests and order[-1] == top.digest and set(p.blobs) == blobs
    assert order.index(top.digest) > max(order.index(m) for m in manifests - {top.digest})
    assert sorted(p.platforms) == ["linux/amd64", "linux/amd64", "linux/arm64/v8", "linux/arm64/v8"]
    # the archive writer: top's graph copied, then sig (whose subject the archive walk follows)
    arch = str(tmp_path / "a.tar")
    copy(f"oci:{lay.path}:top", f"oci-archive:{arch}:top", CopyOptions(all_platforms=True))
    copy(f"oci:{lay.path}:sig", f"oci-archive:{arch}:sig")
    archive_walks = [v for w, v in spy if w == f"oci-archive:{arch}"]
    assert archive_walks[-1] == manifests | {sig_digest}
    r = OCIArchiveReader(arch)
    try:
        assert {d for d in manifests | blobs | sig_graph if r.member(d) is not None} == manifests | blobs | sig_graph
        assert r.member(Digest.of(b"stray")) is None
    finally:
        r.tar.close()


def test_an_unreadable_nested_manifest_stops_each_walk(graph_layout, tmp_path) -> None:
    lay, top, manifests, _ = graph_layout
    arch = str(tmp_path / "a.tar")
    copy(f"oci:{lay.path}:top", f"oci-archive:{arch}:top", CopyOptions(all_platforms=True))
    v2s2 = next(d for d in manifests if lay.resolve_sync(str(d)).media_type == mt.DOCKER_MANIFEST_LIST)
    path = lay.blob_path(v2s2)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x20
    open(path, "wb").write(bytes(data))
    before = sorted(os.listdir(os.path.dirname(path)))
    with pytest.raises(LayoutInvalid, match=f"cannot walk manifest {v2s2}") as ei:
        lay.gc()
    assert isinstance(ei.value.__cause__, ManifestUnreadable) and ei.value.__cause__.parent == top.digest
    assert sorted(os.listdir(os.path.dirname(path))) == before
    with pytest.raises(DigestMismatch) as ci:  # copy: the source store's own typed error
        copy(f"oci:{lay.path}:top", f"oci:{tmp_path}/out:top", CopyOptions(all_platforms=True))
    assert str(v2s2) in str(ci.value)
