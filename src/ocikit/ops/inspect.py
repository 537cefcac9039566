"""Inspect an image: skopeo-inspect-like fields, raw manifest and config bytes, the graph as a tree."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..content import Options, Store, read_blob
from ..model import Descriptor, ImageConfig, ImageIndex, ImageManifest, parse_config
from ..core.platforms import Platform, image_for
from .copy import Node, fetch_manifest, resolve_root


@dataclass
class InspectedImage:
    root: Node
    """The manifest the reference names (an index for a multi-arch image)."""
    image: Node
    """The platform image chosen from it (the root itself for a single image)."""
    config_raw: bytes
    config: ImageConfig


async def choose_image(store: Store, root: Node, platform: Platform | None, opts: Options) -> Node:
    node = root
    while isinstance(node.manifest, ImageIndex):
        i = image_for(platform, node.manifest.platforms(), node.desc.digest)
        node = await fetch_manifest(store, node.manifest.manifests[i], opts)
    return node


async def inspect_image(store: Store, selector: str | None, *, platform: Platform | None = None,
                        opts: Options = Options()) -> InspectedImage:
    root = await resolve_root(store, selector, opts)
    image = await choose_image(store, root, platform, opts)
    assert isinstance(image.manifest, ImageManifest)
    raw = await read_blob(store, image.manifest.config, opts)
    return InspectedImage(root, image, raw, parse_config(raw, strict=False))


def inspect_fields(name: str, ins: InspectedImage, tags: list[str]) -> dict[str, Any]:
    """The fields ``skopeo inspect`` prints, plus the image ID."""
    m = ins.image.manifest
    assert isinstance(m, ImageManifest)
    cfg = ins.config
    out: dict[str, Any] = {
        "Name": name,
        "Digest": str(ins.root.desc.digest),
        "RepoTags": tags,
        "Created": cfg.created,
        "DockerVersion": cfg.doc.get("docker_version", ""),
        "Labels": cfg.labels or None,
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Layers": [str(x.digest) for x in m.layers],
        "LayersData": [
            {"MIMEType": x.media_type, "Digest": str(x.digest), "Size": x.size, "Annotations": x.annotations}
            for x in m.layers
        ],
        "Env": cfg.env,
        "ImageID": str(cfg.digest),
    }
    if cfg.variant:
        out["Variant"] = cfg.variant
    if ins.image is not ins.root:
        out["ManifestDigest"] = str(ins.image.desc.digest)
    return out


async def tree(store: Store, selector: str | None, opts: Options = Options(), *,
               referrers: bool = False) -> dict[str, Any]:
    """The graph under a reference as nested dicts: index -> manifests -> config and layers."""
    root = await resolve_root(store, selector, opts)

    async def node_dict(node: Node) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": node.manifest.media_type, "digest": str(node.desc.digest),
                             "size": node.desc.size}
        if node.desc.platform is not None:
            d["platform"] = str(node.desc.platform)
        m = node.manifest
        if m.artifact_type:
            d["artifactType"] = m.artifact_type
        if isinstance(m, ImageIndex):
            kids = await asyncio.gather(*(fetch_manifest(store, c, opts) for c in m.manifests))
            d["manifests"] = [await node_dict(k) for k in kids]
        else:
            d["config"] = _blob(m.config)
            d["layers"] = [_blob(x) for x in m.layers]
        if m.subject is not None:
            d["subject"] = str(m.subject.digest)
        if referrers:
            from .referrers import find_referrers
            refs = (await find_referrers(store, node.desc.digest, None, opts)).referrers
            if refs:
                d["referrers"] = [await node_dict(await fetch_manifest(store, r, opts)) for r in refs]
        return d

    return await node_dict(root)


def _blob(desc: Descriptor) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": desc.media_type, "digest": str(desc.digest), "size": desc.size}
    if desc.artifact_type:
        d["artifactType"] = desc.artifact_type
    return d
