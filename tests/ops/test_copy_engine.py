"""The copy engine against in-memory stores: plan, skip, link, manifest order, declared traits.

Each test plays a kind of target through :mod:`ocikit.testing.memory_store`'s traits and
abilities, so the engine's decisions are checked without a disk or a network.
"""

from __future__ import annotations

import asyncio

import pytest

from ocikit.core import mediatypes as mt
from ocikit.content import LinkResult, Options, SparseIndex, StoreTraits
from ocikit.core.digest import Digest
from ocikit.core.errors import ConversionError, DigestMismatch, ManifestBlobUnknown, Unsupported
from ocikit.model import Descriptor, ImageIndex, parse_manifest
from ocikit.ops.copy import CopyOptions, copy_between, transfer_blobs
from ocikit.ops.copy_options import CopyResult
from ocikit.ops.copy_plan import plan_copy, resolve_root
from ocikit.ops.stores import holding
from ocikit.core.platforms import parse_platform
from ocikit.progress import BlobDone
from ocikit.testing import FileEntry, LayerSpec
from ocikit.testing.images import write_image_async, write_index_async
from ocikit.testing.memory_store import LinkingMemoryStore, MemoryStore, ProbingMemoryStore, StagingMemoryStore

AMD64 = parse_platform("linux/amd64")
PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/ppc64le")


async def source_with_index() -> tuple[MemoryStore, Descriptor]:
    """A store holding tag ``multi``: a 3-platform index whose images share one base layer."""
    src = MemoryStore("src")
    base = LayerSpec(entries=(FileEntry("etc/base", data=b"the same bytes in every image"),))
    desc = await write_index_async(src, "multi", platforms=PLATFORMS, shared_base=base)
    return src, desc


def children(src: MemoryStore, index: Descriptor) -> list[Descriptor]:
    idx = parse_manifest(src.manifests[index.digest].raw, index.media_type)
    assert isinstance(idx, ImageIndex)
    return list(idx.manifests)


def blobs_of(src: MemoryStore, manifest: Descriptor) -> set[Digest]:
    m = parse_manifest(src.manifests[manifest.digest].raw, manifest.media_type)
    return {b.digest for b in m.children()}


async def test_plan_takes_the_host_platform_and_dedupes_shared_layers() -> None:
    src, index = await source_with_index()
    opts = Options()
    root = await resolve_root(src, "multi", opts)
    plan = await plan_copy(src, root, CopyOptions(host=AMD64), opts)
    amd64 = next(c for c in children(src, index) if c.platform == AMD64)
    assert [n.desc.digest for n in plan.manifests] == [amd64.digest]
    assert set(plan.blobs) == blobs_of(src, amd64)
    everything = await plan_copy(src, root, CopyOptions(all_platforms=True), opts)
    every_blob = set().union(*(blobs_of(src, c) for c in children(src, index)))
    assert set(everything.blobs) == every_blob
    # the shared base layer is one entry, though three images list it
    assert sum(len(blobs_of(src, c)) for c in children(src, index)) > len(everything.blobs)


async def test_children_are_written_before_their_index_and_the_root_is_tagged_last() -> None:
    src, index = await source_with_index()
    dst = MemoryStore("dst")
    result = await copy_between(src, "multi", dst, "copied", CopyOptions(all_platforms=True))
    written = dst.written("manifest")
    assert written[-1] == index.digest == result.digest
    assert set(written[:-1]) == {c.digest for c in children(src, index)}
    assert dst.tags == {"copied": index.digest}
    # every blob was there before the first manifest
    first_manifest = dst.writes.index(("manifest", written[0]))
    assert {d for k, d in dst.writes[:first_manifest]} == set().union(*(blobs_of(src, c) for c in children(src, index)))
    assert result.blobs_copied == len(dst.written("blob")) and result.blobs_skipped == 0


async def test_blobs_the_target_has_are_skipped_not_sent() -> None:
    src = MemoryStore("src")
    image = await write_image_async(src, "one", layers=(LayerSpec(random_bytes=2048), LayerSpec(random_bytes=10)))
    dst = MemoryStore("dst")
    have = sorted(blobs_of(src, image))[0]
    dst.blobs[have] = src.blobs[have]
    result = await copy_between(src, "one", dst, "one")
    assert have not in dst.written("blob")
    assert result.blobs_skipped == 1 and result.bytes_skipped == len(src.blobs[have])
    assert result.blobs_copied == len(blobs_of(src, image)) - 1


async def test_a_link_is_credited_by_what_it_returned_even_when_links_interleave() -> None:
    """Two links run at once: the one mounted finishes after the hardlink has started and ended.

    With the kind of a link left on the store (``last_link_kind``), the mount would read the
    hardlink's kind; returned, each transfer is credited with its own.
    """
    src = MemoryStore("src")
    image = await write_image_async(src, "one", layers=(LayerSpec(random_bytes=3000), LayerSpec(random_bytes=7)))
    mounted, hardlinked = sorted(blobs_of(src, image) - {parse_manifest(
        src.manifests[image.digest].raw, image.media_type).config.digest})  # type: ignore[attr-defined]
    config = next(iter(blobs_of(src, image) - {mounted, hardlinked}))
    other_done = asyncio.Event()

    class Interleaving(LinkingMemoryStore):
        async def link_blob_from(self, source, desc, opts=Options()):  # type: ignore[no-untyped-def]
            if desc.digest == mounted:
                await other_done.wait()  # still "in" this link while the other one completes
            how = await super().link_blob_from(source, desc, opts)
            if desc.digest == hardlinked:
                other_done.set()
            return how

    dst = Interleaving("dst", link_as={mounted: LinkResult.MOUNTED, hardlinked: LinkResult.HARDLINKED})
    events: list[BlobDone] = []
    result = await copy_between(src, "one", dst, "one", CopyOptions(progress=lambda e: events.append(e)
                                                                    if isinstance(e, BlobDone) else None))
    size = {d: len(src.blobs[d]) for d in (mounted, hardlinked, config)}
    assert (result.blobs_mounted, result.bytes_mounted) == (1, size[mounted])
    assert (result.blobs_linked, result.bytes_linked) == (1, size[hardlinked])
    assert (result.blobs_copied, result.bytes_copied) == (1, size[config])  # not linkable: streamed
    assert {(e.digest, e.how) for e in events} == {(mounted, "mounted"), (hardlinked, "linked"), (config, "copied")}
    assert sorted(dst.written("link")) == sorted([mounted, hardlinked])


async def test_many_concurrent_links_each_credited_once() -> None:
    src = MemoryStore("src")
    image = await write_image_async(src, "one", layers=[LayerSpec(random_bytes=100 + i) for i in range(12)])
    layers = sorted(blobs_of(src, image))
    link_as = {d: (LinkResult.MOUNTED if i % 2 else LinkResult.REFLINKED) for i, d in enumerate(layers)}
    dst = LinkingMemoryStore("dst", link_as=link_as)
    root = await resolve_root(src, "one", Options())
    plan = await plan_copy(src, root, CopyOptions(), Options())
    result = CopyResult(src.location, dst.location, root.desc.digest, root.desc.digest, root.desc.media_type, None)
    await transfer_blobs(src, dst, plan, CopyOptions(jobs=8), result, Options())
    want_mounted = [d for d in layers if link_as[d] is LinkResult.MOUNTED]
    assert result.blobs_mounted == len(want_mounted)
    assert result.bytes_mounted == sum(len(src.blobs[d]) for d in want_mounted)
    assert result.blobs_linked == len(layers) - len(want_mounted) and result.blobs_copied == 0


async def test_a_not_linked_answer_falls_back_to_streaming() -> None:
    src = MemoryStore("src")
    await write_image_async(src, "one")
    dst = LinkingMemoryStore("dst", link_as=LinkResult.NOT_LINKED)
    result = await copy_between(src, "one", dst, "one")
    assert result.blobs_linked == result.blobs_mounted == 0 and result.blobs_copied == len(dst.written("blob")) > 0


@pytest.mark.parametrize("target", ["refused", "probe-no"])
async def test_a_sparse_index_is_refused_before_any_blob_moves(target: str) -> None:
    src, index = await source_with_index()
    dst = (MemoryStore("dst", traits=StoreTraits(sparse_index=SparseIndex.REFUSED)) if target == "refused"
           else ProbingMemoryStore("dst", answer=False))
    with pytest.raises(Unsupported, match="refuses a sparse index"):
        await copy_between(src, "multi", dst, "x", CopyOptions(platforms=[AMD64], preserve_index_digest=True))
    assert dst.writes == []


async def test_a_probed_target_is_told_which_children_the_copy_writes() -> None:
    src, index = await source_with_index()
    dst = ProbingMemoryStore("dst", answer=True)
    result = await copy_between(src, "multi", dst, "x", CopyOptions(platforms=[AMD64], preserve_index_digest=True))
    amd64 = next(c for c in children(src, index) if c.platform == AMD64)
    assert dst.probes == [[amd64.digest]]
    assert result.digest == index.digest  # the original index bytes, kept
    assert dst.written("manifest") == [amd64.digest, index.digest]


async def test_a_store_that_checks_children_refuses_a_sparse_index_it_was_not_asked_about() -> None:
    """The memory store itself enforces what its traits declare (so the other tests mean something)."""
    src, index = await source_with_index()
    dst = MemoryStore("dst", traits=StoreTraits(sparse_index=SparseIndex.REFUSED))
    with pytest.raises(ManifestBlobUnknown):
        await dst.put_manifest(src.manifests[index.digest].raw, index.media_type, "x")


async def test_a_single_image_target_refuses_an_index_before_anything_moves() -> None:
    src, _ = await source_with_index()
    dst = MemoryStore("dst", traits=StoreTraits(accepts_index=False))
    with pytest.raises(Unsupported, match="holds single images"):
        await copy_between(src, "multi", dst, "x", CopyOptions(all_platforms=True))
    assert dst.writes == []


async def test_a_format_the_target_cannot_store_is_refused() -> None:
    src = MemoryStore("src")
    await write_image_async(src, "one")
    dst = MemoryStore("dst", traits=StoreTraits(manifest_formats=(mt.DOCKER_MANIFEST,)))
    with pytest.raises(ConversionError, match="stores only"):
        await copy_between(src, "one", dst, "one", CopyOptions(manifest_format="oci"))
    assert dst.writes == []


def _regenerate(raw: bytes, media_type: str) -> tuple[bytes, str]:
    return raw + b"\n", media_type


async def test_a_changed_digest_is_a_mismatch_unless_the_target_declares_it_rewrites() -> None:
    src = MemoryStore("src")
    image = await write_image_async(src, "one")
    with pytest.raises(DigestMismatch):
        await copy_between(src, "one", MemoryStore("plain", rewrite=_regenerate), "one")
    rewriting = MemoryStore("rewriting", rewrite=_regenerate,
                            traits=StoreTraits(rewrites_manifests=True, manifest_formats=(mt.DOCKER_MANIFEST,)))
    result = await copy_between(src, "one", rewriting, "one")
    assert result.digest == rewriting.tags["one"] != image.digest
    assert result.media_type == mt.DOCKER_MANIFEST  # the target's first format is reported
    with pytest.raises(Unsupported, match="--preserve-digests"):
        await copy_between(src, "one", rewriting, "one", CopyOptions(preserve_digests=True))


async def test_the_source_is_read_unverified_only_because_the_target_verifies() -> None:
    seen: list[bool] = []

    class Watching(MemoryStore):
        def blob_chunks(self, desc, opts=Options()):  # type: ignore[no-untyped-def]
            seen.append(opts.verified_downstream)
            return super().blob_chunks(desc, opts)

    src = Watching("src")
    await write_image_async(src, "one")
    await copy_between(src, "one", MemoryStore("dst"), "one")
    assert seen and all(seen)


async def test_a_failed_copy_aborts_a_staging_target_and_a_good_one_publishes() -> None:
    src = MemoryStore("src")
    await write_image_async(src, "one")
    bad = StagingMemoryStore("bad")
    with pytest.raises(Exception):
        async with holding(bad) as dst:
            await copy_between(src, "one", dst, "one")
            raise RuntimeError("the caller failed after the copy")
    assert bad.aborted and not bad.published and not bad.blobs and not bad.manifests
    good = StagingMemoryStore("good")
    async with holding(good) as dst:
        await copy_between(src, "one", dst, "one")
    assert good.published and good.tags
