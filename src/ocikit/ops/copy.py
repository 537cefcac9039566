"""The copy engine: walk an image graph from a source Store and write it to a target Store.

Plan (:mod:`ocikit.ops.copy_plan`: which manifests, which blobs) -> check the target's
declared :class:`~ocikit.content.StoreTraits` (:func:`ocikit.ops.convert.check_target`, then
:func:`check_sparse_target`) -> transfer blobs concurrently (skip what exists, link what can be
linked, stream and verify the rest) -> write manifests children first -> tag. The order in
which the target's traits and abilities are consulted is listed in :mod:`ocikit.content`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncGenerator, AsyncIterator

from ..content import (DEFAULT_OPTIONS, BlobLinker, LinkResult, Options, RawManifest, SparseIndex, SparseIndexProbe,
                       Store)
from ..digest import Digest
from ..errors import DigestMismatch, TransportError, Unsupported, UsageError
from ..model import Descriptor
from ..progress import BlobAdvanced, BlobDone, BlobStarted, ManifestWritten, ProgressSink, emit
from .copy_options import CopyOptions, CopyResult
from .copy_plan import CopyPlan, Node, check_preserve_digests, fetch_manifest, plan_copy, resolve_root
from .stores import holding

if TYPE_CHECKING:
    from ..transports import OpenOptions


async def check_sparse_target(dst: Store, plan: CopyPlan, opts: Options) -> None:
    """Fail before moving anything when the target will not store an index with absent children.

    Consults ``dst.traits.sparse_index``: ``ACCEPTED`` goes on (layouts and archives),
    ``REFUSED`` fails, ``PROBE`` asks :meth:`~ocikit.content.SparseIndexProbe.accepts_sparse_index`
    (``copied``: the children this copy writes).
    """
    policy = dst.traits.sparse_index
    if policy is SparseIndex.ACCEPTED:
        return
    if policy is SparseIndex.PROBE and isinstance(dst, SparseIndexProbe):
        copied = [n.desc.digest for n in plan.manifests if n is not plan.root]
        if await dst.accepts_sparse_index(plan.root.raw, plan.root.manifest.media_type, copied, opts):
            return
    raise Unsupported(
        f"{dst.location} refuses a sparse index (it needs every manifest an index lists): "
        f"--preserve-index-digest cannot keep {plan.root.desc.digest} there; "
        "copy without it (a filtered index with a new digest) or with --all")


async def _counted(chunks: AsyncIterator[bytes], desc: Descriptor, sink: ProgressSink | None) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        emit(sink, BlobAdvanced(desc.digest, len(chunk)))
        yield chunk


_END = object()


async def prefetch(chunks: AsyncIterator[bytes], depth: int = 1) -> AsyncIterator[bytes]:
    """Read ahead ``depth`` chunks in a task, so the source keeps reading while the target writes."""
    q: asyncio.Queue[object] = asyncio.Queue(maxsize=depth)

    async def pump() -> None:
        try:
            async for c in chunks:
                await q.put(c)
            await q.put(_END)
        except asyncio.CancelledError:
            raise  # the consumer is gone: nobody would read the queue again
        except BaseException as e:  # handed to the consumer, raised there
            await q.put(_Failed(e))
        finally:
            if isinstance(chunks, AsyncGenerator):  # every Store's blob_chunks is one
                await chunks.aclose()

    task = asyncio.create_task(pump())
    try:
        while True:
            item = await q.get()
            if item is _END:
                break
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass
class _Failed:
    error: BaseException


def count_link(result: CopyResult, desc: Descriptor, how: LinkResult) -> None:
    """Credit one linked (or mounted) blob to ``result``."""
    if how is LinkResult.MOUNTED:
        result.blobs_mounted += 1
        result.bytes_mounted += desc.size
    else:
        result.blobs_linked += 1
        result.bytes_linked += desc.size


async def stream_blob(src: Store, dst: Store, desc: Descriptor, opts: Options, sink: ProgressSink | None,
                      retries: int = 0) -> None:
    """Stream a blob from ``src`` into ``dst``, starting it again after a network failure."""
    # put_blob verifies what it stores (the Store contract), so the source need not hash too
    src_opts = dataclasses.replace(opts, verified_downstream=True)
    attempt = 0
    while True:
        try:
            await dst.put_blob(desc, _counted(prefetch(src.blob_chunks(desc, src_opts)), desc, sink), opts)
            return
        except TransportError:
            # the network failed mid-blob (after the stores' own retries): start the blob again
            if attempt >= retries:
                raise
            attempt += 1
            await asyncio.sleep(min(2.0, 0.2 * 2 ** attempt))


async def transfer_blob(src: Store, dst: Store, desc: Descriptor, result: CopyResult, opts: Options,
                        sink: ProgressSink | None, retries: int = 0) -> None:
    """One blob: skipped when ``dst`` has it, else linked where ``dst`` can, else streamed.

    What happened is added to ``result``; the link's own :class:`~ocikit.content.LinkResult`
    says whether it was a mount, so concurrent transfers never credit each other's.
    """
    if await dst.has_blob(desc, opts):
        result.blobs_skipped += 1
        result.bytes_skipped += desc.size
        emit(sink, BlobDone(desc.digest, desc.size, "skipped"))
        return
    emit(sink, BlobStarted(desc.digest, desc.size, desc.media_type))
    if isinstance(dst, BlobLinker):
        how = await dst.link_blob_from(src, desc, opts)
        if how is not LinkResult.NOT_LINKED:
            count_link(result, desc, how)
            emit(sink, BlobDone(desc.digest, desc.size, how.counted_as))
            return
    await stream_blob(src, dst, desc, opts, sink, retries)
    result.blobs_copied += 1
    result.bytes_copied += desc.size
    emit(sink, BlobDone(desc.digest, desc.size, "copied"))


async def transfer_blobs(src: Store, dst: Store, plan: CopyPlan, options: CopyOptions, result: CopyResult,
                         opts: Options) -> None:
    """Every blob of the plan, largest first, ``options.jobs`` at a time; the first failure cancels the rest."""
    sem = asyncio.Semaphore(max(1, options.jobs))

    async def one(desc: Descriptor) -> None:
        async with sem:
            await transfer_blob(src, dst, desc, result, opts, options.progress, options.retry_times)

    await gather_or_cancel([asyncio.create_task(one(d)) for d in sorted(plan.blobs.values(), key=lambda d: -d.size)])


async def gather_or_cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task; on the first failure (or a cancel) cancel the others, wait for them, raise."""
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def write_manifests(dst: Store, plan: CopyPlan, tag: str | None, result: CopyResult, opts: Options,
                          sink: ProgressSink | None) -> None:
    """The plan's manifests, children first (a child the target has is not written again), the root
    last with ``tag``. A stored digest that differs is an error unless the target's traits say it
    ``rewrites_manifests``; the root's is then reported, in the target's first manifest format."""
    traits = dst.traits
    for node in plan.manifests:
        is_root = node is plan.root
        if not is_root and await dst.has_manifest(node.desc, opts):
            result.manifests.append(node.desc.digest)
            continue
        digest = await dst.put_manifest(node.raw, node.manifest.media_type, tag if is_root else None, opts,
                                        root=is_root)
        if digest != node.desc.digest:
            if not traits.rewrites_manifests:
                raise DigestMismatch(node.desc.digest, digest, what=f"{dst.location}: stored manifest")
            if is_root:  # the target regenerates manifests (docker-archive): report what it stored
                result.digest = digest
                if traits.manifest_formats:
                    result.media_type = traits.manifest_formats[0]
        result.manifests.append(digest)
        emit(sink, ManifestWritten(digest, node.manifest.media_type, tag if is_root else None))


async def execute_plan(src: Store, dst: Store, plan: CopyPlan, tag: str | None, options: CopyOptions,
                       result: CopyResult, opts: Options) -> None:
    """Check a sparse index against the target, move the blobs, then write the manifests."""
    if plan.sparse:
        await check_sparse_target(dst, plan, opts)
    await transfer_blobs(src, dst, plan, options, result, opts)
    await write_manifests(dst, plan, tag, result, opts, options.progress)


async def copy_between(src: Store, selector: str | None, dst: Store, tag: str | None,
                       options: CopyOptions | None = None) -> CopyResult:
    """Copy the image ``selector`` names in ``src`` to ``dst``, tagging it ``tag``."""
    options = options or CopyOptions()
    if options.preserve_index_digest and not options.platforms:
        raise UsageError("--preserve-index-digest needs --platform (with --all the index is kept anyway)")
    if options.all_platforms and options.platforms:
        raise UsageError("--all and --platform exclude each other")
    opts = Options(progress=options.progress)
    t0 = time.monotonic()
    root = await resolve_root(src, selector, opts)
    plan = await plan_copy(src, root, options, opts)
    from .convert import convert_plan  # --format: rewrite manifests children first; check the target's limits
    plan = convert_plan(plan, options.manifest_format, preserve_digests=options.preserve_digests, target=dst)
    check_preserve_digests(plan, options)
    result = CopyResult(src.location, dst.location, plan.source_root_digest, plan.root.desc.digest,
                        plan.root.manifest.media_type, tag, platforms=plan.platforms)
    for hook in options.hooks:
        await hook.before_transfer(src, dst, plan, opts)
    await execute_plan(src, dst, plan, tag, options, result, opts)
    if options.referrers:
        await copy_referrers(src, dst, plan, options, result, opts)
    for hook in options.hooks:
        await hook.after_copy(src, dst, plan, options, result, opts)
    result.seconds = time.monotonic() - t0
    return result


@dataclass
class ReferrerCopy:
    """What :func:`copy_referrers` carried: (subject, referrer) pairs."""

    carried: list[tuple[Digest, Digest]] = field(default_factory=list)


async def copy_referrers(src: Store, dst: Store, plan: CopyPlan, options: CopyOptions,
                         result: CopyResult, opts: Options = DEFAULT_OPTIONS) -> ReferrerCopy:
    """Copy the referrers of every manifest a copy wrote, recursively, keeping them discoverable.

    Each referrer is copied whole (every platform of an index) with the copy engine, then
    recorded at the target (tag-schema index where the target lacks the referrers API).
    Counts are added to ``result``.
    """
    from .referrers import find_referrers, record_referrer

    carried = ReferrerCopy()
    done: set[Digest] = {n.desc.digest for n in plan.manifests}
    queue: list[Digest] = [n.desc.digest for n in plan.manifests]
    sub_options = dataclasses.replace(options, all_platforms=True, platforms=(), preserve_index_digest=False,
                                      referrers=False, hooks=())
    while queue:
        subject = queue.pop(0)
        found = await find_referrers(src, subject, None, opts)
        for ref in found.referrers:
            if ref.digest in done:
                continue
            done.add(ref.digest)
            sub = await copy_between(src, str(ref.digest), dst, None, sub_options)
            result.add(sub)
            await record_referrer(dst, ref, subject, opts)
            carried.carried.append((subject, ref.digest))
            queue.append(ref.digest)  # referrers of referrers (a signature of an SBOM)
    return carried


async def acopy(source: str, target: str, options: CopyOptions | None = None, *,
                src_options: "OpenOptions | None" = None, dst_options: "OpenOptions | None" = None) -> CopyResult:
    """Copy between two transport references (``oci:...``, ``docker://...``, archives).

    The target is closed after success and aborted after a failure (an archive then keeps
    nothing of this copy).
    """
    from ..transportref import parse_transport_reference
    from ..transports import open_store, target_tag

    sref = parse_transport_reference(source)
    dref = parse_transport_reference(target)
    src = open_store(sref, options=src_options)
    try:
        async with holding(open_store(dref, write=True, options=dst_options)) as dst:
            return await copy_between(src, sref.selector, dst, target_tag(dref), options)
    finally:
        await src.close()


def copy(source: str, target: str, options: CopyOptions | None = None, **kw: object) -> CopyResult:
    """Synchronous :func:`acopy`."""
    return asyncio.run(acopy(source, target, options, **kw))  # type: ignore[arg-type]


__all__ = ["CopyOptions", "CopyPlan", "CopyResult", "Node", "RawManifest", "ReferrerCopy", "acopy",
           "check_preserve_digests", "check_sparse_target", "copy", "copy_between", "copy_referrers", "count_link",
           "execute_plan", "fetch_manifest", "gather_or_cancel", "plan_copy", "resolve_root", "stream_blob", "transfer_blob",
           "transfer_blobs", "write_manifests"]
