"""The copy engine: walk an image graph from a source Store and write it to a target Store.

Plan (which manifests, which blobs) -> transfer blobs concurrently (skip what exists, link
what can be linked, stream and verify the rest) -> write manifests children first -> tag.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Protocol, Sequence

from .. import mediatypes as mt
from ..content import BlobLinker, Options, RawManifest, Store
from ..digest import Digest, verify_bytes
from ..errors import PlatformNotFound, TransportError, Unsupported, UsageError
from ..model import Descriptor, ImageIndex, ImageManifest, Manifest, filter_index, parse_manifest
from ..platforms import Platform, best_match, host_platform, select
from ..progress import BlobAdvanced, BlobDone, BlobStarted, ManifestWritten, ProgressSink, emit
from .stores import holding

if TYPE_CHECKING:
    from ..transports import OpenOptions


@dataclass
class CopyOptions:
    """What to copy and how.

    With an index at the source: by default the host platform's image alone (as skopeo does);
    ``all_platforms`` copies the index and every child byte-exact; ``platforms`` picks a
    subset, writing a new filtered index, or with ``preserve_index_digest`` keeping the
    original index bytes and copying only the chosen children (a sparse index).
    """

    all_platforms: bool = False
    platforms: Sequence[Platform] = ()
    preserve_index_digest: bool = False
    jobs: int = 6
    progress: ProgressSink | None = None
    host: Platform | None = None
    preserve_digests: bool = False
    """Refuse any change of digest (a filtered index, a format conversion)."""
    manifest_format: str | None = None
    """``oci`` or ``v2s2``: convert manifests and media types (``--format``); None keeps them."""
    retry_times: int = 3
    """Whole-blob retries when a transfer fails on the network (stores retry requests themselves)."""
    referrers: bool = False
    """Also copy the OCI 1.1 referrers (signatures, SBOMs, ...) of every manifest copied, recursively."""
    hooks: Sequence["CopyHook"] = ()
    """Called around the transfer (policy checks, carrying signatures); not passed to nested copies."""


@dataclass
class CopyResult:
    source: str
    target: str
    source_digest: Digest
    digest: Digest
    media_type: str
    tag: str | None
    manifests: list[Digest] = field(default_factory=list)
    blobs_copied: int = 0
    bytes_copied: int = 0
    blobs_skipped: int = 0
    bytes_skipped: int = 0
    blobs_linked: int = 0
    bytes_linked: int = 0
    blobs_mounted: int = 0
    bytes_mounted: int = 0
    seconds: float = 0.0
    platforms: list[str] = field(default_factory=list)

    @property
    def digest_changed(self) -> bool:
        return self.digest != self.source_digest

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source, "target": self.target, "sourceDigest": str(self.source_digest),
            "digest": str(self.digest), "mediaType": self.media_type, "tag": self.tag,
            "manifests": [str(d) for d in self.manifests], "platforms": self.platforms,
            "blobs": {"copied": self.blobs_copied, "skipped": self.blobs_skipped,
                      "linked": self.blobs_linked, "mounted": self.blobs_mounted},
            "bytes": {"copied": self.bytes_copied, "skipped": self.bytes_skipped, "linked": self.bytes_linked,
                      "mounted": self.bytes_mounted},
            "seconds": round(self.seconds, 3),
        }


class CopyHook(Protocol):
    """Something a copy calls: ``before_transfer`` once the plan is made (raise to write nothing),
    ``after_copy`` once every manifest is written (see :mod:`ocikit.trust.carry`)."""

    async def before_transfer(self, src: Store, dst: Store, plan: "CopyPlan", opts: Options) -> None: ...

    async def after_copy(self, src: Store, dst: Store, plan: "CopyPlan", options: CopyOptions, result: "CopyResult",
                         opts: Options) -> None: ...


@dataclass
class Node:
    """A manifest in the copy plan: its descriptor, raw bytes and parsed view."""

    desc: Descriptor
    raw: bytes
    manifest: Manifest


@dataclass
class CopyPlan:
    root: Node
    source_root_digest: Digest
    manifests: list[Node]
    """Every manifest to write, children before parents, the root last."""
    blobs: dict[Digest, Descriptor]
    platforms: list[str]
    sparse: bool = False
    """The root is the source index kept byte-exact while only some children are copied."""


async def fetch_manifest(store: Store, desc: Descriptor, opts: Options) -> Node:
    """Fetch a manifest by digest and check its bytes against the descriptor."""
    rm = await store.get_manifest(str(desc.digest), opts)
    verify_bytes(rm.raw, desc.digest, desc.size, what=f"manifest {desc.digest}")
    m = parse_manifest(rm.raw, desc.media_type or rm.media_type, what=f"manifest {desc.digest}")
    return Node(Descriptor(m.media_type, desc.digest, len(rm.raw), platform=desc.platform), rm.raw, m)


async def resolve_root(store: Store, selector: str | None, opts: Options) -> Node:
    desc = await store.resolve(selector, opts)
    return await fetch_manifest(store, desc, opts)


def _platform_names(ps: Sequence[Platform | None]) -> str:
    return ", ".join(str(p) for p in ps if p is not None) or "none"


async def plan_copy(store: Store, root: Node, options: CopyOptions, opts: Options) -> CopyPlan:
    """Decide which manifests and blobs a copy moves."""
    source_digest = root.desc.digest
    platforms: list[str] = []
    chosen_children: list[Descriptor] | None = None
    if isinstance(root.manifest, ImageIndex):
        idx = root.manifest
        if options.all_platforms:
            chosen_children = list(idx.manifests)
        elif options.platforms:
            keep = select(options.platforms, idx.platforms())
            if not keep:
                raise PlatformNotFound(
                    f"no image for {', '.join(str(p) for p in options.platforms)} in index {root.desc.digest} "
                    f"(it has {_platform_names(idx.platforms())})")
            chosen_children = [idx.manifests[i] for i in keep]
            if not options.preserve_index_digest:
                new = filter_index(idx, keep)
                root = Node(new.descriptor(), new.raw, new)
        else:
            want = options.host or host_platform()
            i = best_match(want, idx.platforms())
            if i is None:
                raise PlatformNotFound(
                    f"no image for {want} in index {root.desc.digest} (it has {_platform_names(idx.platforms())}); "
                    "use --all or --platform")
            root = await fetch_manifest(store, idx.manifests[i], opts)
    manifests: list[Node] = []
    blobs: dict[Digest, Descriptor] = {}
    seen: set[Digest] = set()

    async def walk(node: Node, children: list[Descriptor] | None) -> None:
        if node.desc.digest in seen:
            return
        seen.add(node.desc.digest)
        m = node.manifest
        if isinstance(m, ImageIndex):
            kids = children if children is not None else list(m.manifests)
            fetched = await asyncio.gather(*(fetch_manifest(store, c, opts) for c in kids))
            for child in fetched:
                await walk(child, None)
        else:
            assert isinstance(m, ImageManifest)
            if node.desc.platform is not None:
                platforms.append(str(node.desc.platform))
            for b in m.children():
                if b.urls and b.media_type in mt.NONDISTRIBUTABLE_TYPES:
                    continue  # foreign layers stay where their URLs say
                blobs.setdefault(b.digest, b)
        manifests.append(node)

    await walk(root, chosen_children)
    sparse = (isinstance(root.manifest, ImageIndex) and chosen_children is not None
              and len(chosen_children) < len(root.manifest.manifests))
    return CopyPlan(root, source_digest, manifests, blobs, platforms, sparse)


async def check_sparse_target(dst: Store, plan: CopyPlan, opts: Options) -> None:
    """Fail before moving anything when the target will not store an index with absent children.

    A store may answer ``accepts_sparse_index(raw, media_type, copied, opts)`` (``copied``: the
    children this copy writes); a store without it is taken to accept (layouts and archives do).
    """
    probe = getattr(dst, "accepts_sparse_index", None)
    if probe is None:
        return
    copied = [n.desc.digest for n in plan.manifests if n is not plan.root]
    if not await probe(plan.root.raw, plan.root.manifest.media_type, copied, opts):
        raise Unsupported(
            f"{dst.location} refuses a sparse index (it needs every manifest an index lists): "
            f"--preserve-index-digest cannot keep {plan.root.desc.digest} there; "
            "copy without it (a filtered index with a new digest) or with --all")


def check_preserve_digests(plan: CopyPlan, options: CopyOptions) -> None:
    """With ``preserve_digests``, refuse a plan whose root digest differs from the source's."""
    if options.preserve_digests and plan.root.desc.digest != plan.source_root_digest:
        raise Unsupported(
            f"--preserve-digests: this copy would write {plan.root.desc.digest} instead of the source's "
            f"{plan.source_root_digest} (a filtered index); use --all or --preserve-index-digest")


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
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

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


async def transfer_blob(src: Store, dst: Store, desc: Descriptor, result: CopyResult, opts: Options,
                        sink: ProgressSink | None, retries: int = 0) -> None:
    if await dst.has_blob(desc, opts):
        result.blobs_skipped += 1
        result.bytes_skipped += desc.size
        emit(sink, BlobDone(desc.digest, desc.size, "skipped"))
        return
    emit(sink, BlobStarted(desc.digest, desc.size, desc.media_type))
    if isinstance(dst, BlobLinker) and await dst.link_blob_from(src, desc, opts):
        how = getattr(dst, "last_link_kind", None) or "linked"
        if how == "mounted":
            result.blobs_mounted += 1
            result.bytes_mounted += desc.size
        else:
            result.blobs_linked += 1
            result.bytes_linked += desc.size
        emit(sink, BlobDone(desc.digest, desc.size, how))
        return
    # put_blob verifies what it stores (the Store contract), so the source need not hash too
    src_opts = Options(progress=opts.progress, extra={**opts.extra, "verified_downstream": True})
    attempt = 0
    while True:
        try:
            await dst.put_blob(desc, _counted(prefetch(src.blob_chunks(desc, src_opts)), desc, sink), opts)
            break
        except TransportError:
            # the network failed mid-blob (after the stores' own retries): start the blob again
            if attempt >= retries:
                raise
            attempt += 1
            await asyncio.sleep(min(2.0, 0.2 * 2 ** attempt))
    result.blobs_copied += 1
    result.bytes_copied += desc.size
    emit(sink, BlobDone(desc.digest, desc.size, "copied"))


async def execute_plan(src: Store, dst: Store, plan: CopyPlan, tag: str | None, options: CopyOptions,
                       result: CopyResult, opts: Options) -> None:
    sem = asyncio.Semaphore(max(1, options.jobs))
    sink = options.progress
    if plan.sparse:
        await check_sparse_target(dst, plan, opts)

    async def one(desc: Descriptor) -> None:
        async with sem:
            await transfer_blob(src, dst, desc, result, opts, sink, options.retry_times)

    tasks = [asyncio.create_task(one(d)) for d in sorted(plan.blobs.values(), key=lambda d: -d.size)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for node in plan.manifests:
        is_root = node is plan.root
        if not is_root and await dst.has_manifest(node.desc, opts):
            result.manifests.append(node.desc.digest)
            continue
        digest = await dst.put_manifest(node.raw, node.manifest.media_type, tag if is_root else None, opts,
                                        root=is_root)
        if digest != node.desc.digest:
            if not getattr(dst, "rewrites_manifests", False):
                from ..errors import DigestMismatch
                raise DigestMismatch(node.desc.digest, digest, what=f"{dst.location}: stored manifest")
            if is_root:  # the target regenerates manifests (docker-archive): report what it stored
                result.digest = digest
                result.media_type = getattr(dst, "manifest_formats", (result.media_type,))[0]
        result.manifests.append(digest)
        emit(sink, ManifestWritten(digest, node.manifest.media_type, tag if is_root else None))


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
        from .referrers import copy_referrers
        await copy_referrers(src, dst, plan, options, result, opts)
    for hook in options.hooks:
        await hook.after_copy(src, dst, plan, options, result, opts)
    result.seconds = time.monotonic() - t0
    return result


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


__all__ = ["CopyHook", "CopyOptions", "CopyPlan", "CopyResult", "Node", "acopy", "check_preserve_digests", "check_sparse_target",
           "copy", "copy_between", "execute_plan", "fetch_manifest", "plan_copy", "resolve_root", "RawManifest"]
