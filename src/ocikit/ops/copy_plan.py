"""Planning a copy: which manifests and which blobs move (:func:`plan_copy`), as plain data.

A :class:`CopyPlan` is what the copy engine (:mod:`ocikit.ops.copy`) executes, what
:mod:`ocikit.ops.convert` rewrites and what the mirror merges across images. Reading a
plan's manifests needs only the source Store; nothing is written here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Sequence

from .. import mediatypes as mt
from ..content import Options, Store
from ..digest import Digest, verify_bytes
from ..errors import PlatformNotFound, Unsupported
from ..model import Descriptor, ImageIndex, ImageManifest, Manifest, filter_index, parse_manifest
from ..platforms import Platform, best_match, host_platform, select
from .copy_options import CopyOptions


@dataclass
class Node:
    """A manifest in the copy plan: its descriptor, raw bytes and parsed view."""

    desc: Descriptor
    raw: bytes
    manifest: Manifest


@dataclass(frozen=True)
class Conversion:
    """One manifest a format conversion (:func:`ocikit.ops.convert.convert_plan`) rewrote."""

    old: Descriptor
    new: Descriptor


@dataclass
class CopyPlan:
    """What a copy moves: :func:`plan_copy` makes it, the engine executes it."""

    root: Node
    source_root_digest: Digest
    manifests: list[Node]
    """Every manifest to write, children before parents, the root last."""
    blobs: dict[Digest, Descriptor]
    platforms: list[str]
    sparse: bool = False
    """The root is the source index kept byte-exact while only some children are copied."""
    conversions: list[Conversion] = field(default_factory=list)
    """Manifests ``--format`` rewrote (old and new descriptors), children first; empty without it."""


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


def check_preserve_digests(plan: CopyPlan, options: CopyOptions) -> None:
    """With ``preserve_digests``, refuse a plan whose root digest differs from the source's."""
    if options.preserve_digests and plan.root.desc.digest != plan.source_root_digest:
        raise Unsupported(
            f"--preserve-digests: this copy would write {plan.root.desc.digest} instead of the source's "
            f"{plan.source_root_digest} (a filtered index); use --all or --preserve-index-digest")


__all__ = ["Conversion", "CopyPlan", "Node", "check_preserve_digests", "fetch_manifest", "plan_copy",
           "resolve_root"]
