"""Planning a copy: which manifests and which blobs move (:func:`plan_copy`), as plain data.

A :class:`CopyPlan` is what the copy engine (:mod:`ocikit.ops.copy`) executes, what
:mod:`ocikit.ops.convert` rewrites and what the mirror merges across images. Reading a
plan's manifests needs only the source Store; nothing is written here.
"""

from __future__ import annotations

from typing import Sequence

from ..content import Options, RawManifest, Store
from ..digest import Digest, verify_bytes
from ..errors import PlatformNotFound, Unsupported
from ..model import Descriptor, ImageIndex, ImageManifest, filter_index, parse_manifest
from ..model.graph import CONTENT_ROLES, MANIFEST, ROOT, Link
from ..model.walk import awalk
from ..platforms import Platform, best_match, host_platform, select
from .copy_options import CopyOptions
from .copy_types import Conversion, CopyPlan, Node


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
    # one walk (ocikit.model.walk): index children only (the chosen ones under the root), each fetched once
    fetched: dict[Digest, Node] = {root.desc.digest: root}
    chosen = None if chosen_children is None else {c.digest for c in chosen_children}

    async def fetch(desc: Descriptor) -> RawManifest:
        node = fetched.get(desc.digest)
        if node is None:
            node = fetched[desc.digest] = await fetch_manifest(store, desc, opts)
        return RawManifest(node.raw, node.manifest.media_type, node.desc.digest)

    def follow(parent: Digest | None, link: Link) -> bool:
        if link.role == ROOT:
            return True
        return link.role == MANIFEST and (parent != root.desc.digest or chosen is None or link.digest in chosen)

    graph = await awalk([root.desc], fetch, follow=follow, missing_ok=False, where=store.location)
    manifests: list[Node] = []
    blobs: dict[Digest, Descriptor] = {}
    for n in graph.postorder():  # children before parents, the root last
        node = fetched[n.digest]
        manifests.append(node)
        if isinstance(node.manifest, ImageManifest) and node.desc.platform is not None:
            platforms.append(str(node.desc.platform))
        for link in n.links:  # config and layers; foreign layers stay where their URLs say
            if link.role in CONTENT_ROLES and not link.foreign:
                blobs.setdefault(link.digest, link.descriptor)
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
