"""Build images from directories and tarballs, on a base image (any transport) or on scratch.

The pipeline: each input becomes a layer blob (a directory through the reproducible tar
writer, a tarball as it is; :mod:`.buildlayers`) written into a *staging* layout — the target
itself when the target is an OCI layout, else a temporary one (:mod:`.overlay`); a new config
(:mod:`.buildconfig`) and manifest are encoded
deterministically (:func:`~ocikit.model.canonical_json`, ``created`` from ``SOURCE_DATE_EPOCH``);
then the copy engine moves the image from an overlay of (staging, base) to the target, so
every transport works and nothing is tagged before every blob is there.

Same inputs, same digest: tar entries are normalised (see :mod:`ocikit.layers.layertar`),
history entries carry no paths or host names, and key order is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..core import mediatypes as mt
from ..content import DEFAULT_OPTIONS, BlobLinker, Options, Store, read_blob
from ..core.digest import Digest
from ..core.errors import OcikitError, PlatformNotFound, UsageError
from ..layers.layertar import LayerResult, TarOptions, source_date_epoch
from ..model import Descriptor, ImageIndex, ImageManifest, build_index, build_manifest, canonical_json, parse_config
from ..core.platforms import Platform, host_platform, matches
from ..progress import Message, ProgressSink, emit
from ..transports.layout import OCILayout
from .buildconfig import ConfigChanges, history_entries, new_config, rfc3339
from .buildlayers import layer_from_input
from .copy import CopyOptions, Node, copy_between, resolve_root
from .inspect import choose_image
from .overlay import OverlayStore, staging_for
from .stores import finish

ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
SCRATCH = "scratch"


# ---- base images ---------------------------------------------------------------------------------


@dataclass
class BaseImage:
    """A platform image to build on: its store, manifest and config."""

    store: Store
    name: str
    node: Node
    config: dict[str, Any]

    @property
    def manifest(self) -> ImageManifest:
        assert isinstance(self.node.manifest, ImageManifest)
        return self.node.manifest

    @property
    def platform(self) -> Platform:
        c = self.config
        return Platform(str(c.get("os", "")), str(c.get("architecture", "")), c.get("variant") or None)


async def load_base(store: Store, name: str, selector: str | None, platform: Platform | None,
                    opts: Options = DEFAULT_OPTIONS) -> BaseImage:
    """Resolve ``selector`` in ``store`` and pick ``platform`` (default: the host's) from an index."""
    root = await resolve_root(store, selector, opts)
    node = await choose_image(store, root, platform, opts)
    if platform is not None and not isinstance(root.manifest, ImageIndex):
        cfg_platform = await _config_platform(store, node, opts)
        if not matches(platform.normalized(), cfg_platform.normalized()):
            raise PlatformNotFound(f"{name}: is a {cfg_platform} image, not {platform}")
    assert isinstance(node.manifest, ImageManifest)
    if node.manifest.config.media_type not in mt.CONFIG_TYPES:
        raise UsageError(f"{name}: not a container image (config type {node.manifest.config.media_type})")
    raw = await read_blob(store, node.manifest.config, opts)
    cfg = parse_config(raw, what=f"{name}: config")
    if len(cfg.diff_ids) != len(node.manifest.layers):
        raise UsageError(f"{name}: config lists {len(cfg.diff_ids)} diff_ids for {len(node.manifest.layers)} layers")
    return BaseImage(store, name, node, dict(cfg.doc))


async def _config_platform(store: Store, node: Node, opts: Options) -> Platform:
    assert isinstance(node.manifest, ImageManifest)
    raw = await read_blob(store, node.manifest.config, opts)
    return parse_config(raw, strict=False).platform


def oci_layer_descriptor(d: Descriptor) -> Descriptor:
    """A base layer's descriptor for an OCI manifest (Docker layer types mapped to OCI's)."""
    media_type = mt.TO_OCI.get(d.media_type, d.media_type)
    return Descriptor(media_type, d.digest, d.size, d.annotations, None, d.urls)


# ---- assembling and writing images ------------------------------------------------------------


@dataclass
class BuiltImage:
    """One platform image written to the staging layout."""

    platform: Platform
    manifest: ImageManifest
    config_digest: Digest
    layers: list[LayerResult]

    def descriptor(self) -> Descriptor:
        return Descriptor(self.manifest.media_type, self.manifest.digest, self.manifest.size,
                          platform=self.platform)


def write_image(staging: OCILayout, base: BaseImage | None, platform: Platform, layers: Sequence[LayerResult],
                changes: ConfigChanges, *, created: str, history: Sequence[Mapping[str, Any]],
                replace_layers: bool = False) -> BuiltImage:
    """Encode and store the config and manifest of one image (its new layers already staged)."""
    base_cfg = base.config if base is not None else None
    if base is not None:
        platform = base.platform
    cfg = new_config(base_cfg, platform, diff_ids=[lr.diff_id for lr in layers], history=history,
                     changes=changes, created=created, replace_layers=replace_layers)
    cfg_raw = canonical_json(cfg)
    cfg_desc = staging.put_bytes(cfg_raw, mt.OCI_CONFIG)
    base_layers = [] if (base is None or replace_layers) else [oci_layer_descriptor(d) for d in base.manifest.layers]
    annotations: dict[str, str] = {}
    if base is not None and not replace_layers:
        annotations[ANNOTATION_BASE_DIGEST] = str(base.node.desc.digest)
        if base.name.startswith("docker://"):
            annotations[ANNOTATION_BASE_NAME] = base.name[len("docker://"):]
    annotations.update(changes.annotations)
    m = build_manifest(cfg_desc, [*base_layers, *(lr.descriptor() for lr in layers)], annotations=annotations)
    staging.put_bytes(m.raw, m.media_type)
    return BuiltImage(platform, m, cfg_desc.digest, list(layers))


async def publish(staging: OCILayout, base_store: Store | None, root: Descriptor, target: Store,
                  tag: str | None, extra_tags: Sequence[str] = (), *,
                  base_layers: Sequence[Descriptor] = (), progress: ProgressSink | None = None) -> None:
    """Copy the staged image (new blobs in ``staging``, old ones in ``base_store``) to ``target``."""
    if base_store is not None and isinstance(target, BlobLinker):
        for d in base_layers:
            if not await target.has_blob(d):
                with contextlib.suppress(OcikitError, OSError):
                    await target.link_blob_from(base_store, d)
    overlay = OverlayStore(staging, base_store)
    await copy_between(overlay, str(root.digest), target, tag,  # type: ignore[arg-type]
                       CopyOptions(all_platforms=True, progress=progress))
    for t in extra_tags:
        rm = await staging.get_manifest(str(root.digest))
        await target.put_manifest(rm.raw, rm.media_type, t, root=True)


LayerMaker = Callable[["BaseImage | None", OCILayout], list[LayerResult]]
"""Makes the new layers of one platform image into the staging layout (given its base)."""


@dataclass
class BuildRequest:
    """What ``ocikit build`` (and append, mutate, flatten) was asked for."""

    target: str
    layers: Sequence[str] = ()
    base: str | None = None
    platforms: Sequence[Platform] = ()
    all_platforms: bool = False
    """With a base index and no ``platforms``: rebuild every image of the index (else: the host's)."""
    changes: ConfigChanges = field(default_factory=ConfigChanges)
    compression: str = "gzip"
    tar_options: TarOptions = field(default_factory=TarOptions)
    extra_tags: Sequence[str] = ()
    created_by: str = "ocikit build"
    replace_layers: bool = False
    """The new layers replace the base's (flatten)."""
    layer_maker: LayerMaker | None = None
    """Makes the new layers instead of ``layers`` (flatten)."""
    progress: ProgressSink | None = None
    open_options: Any = None
    """:class:`~ocikit.transports.OpenOptions` for registries (credentials, TLS), base and target alike."""


@dataclass
class BuildResult:
    target: str
    digest: Digest
    media_type: str
    images: list[BuiltImage]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "digest": str(self.digest), "mediaType": self.media_type,
            "images": [{"platform": str(i.platform), "digest": str(i.manifest.digest),
                        "config": str(i.config_digest),
                        "layers": [{"digest": str(lr.digest), "diffID": str(lr.diff_id), "size": lr.size,
                                    "mediaType": lr.media_type} for lr in i.layers]} for i in self.images],
        }


async def _load_bases(store: Store, name: str, selector: str | None, req: BuildRequest,
                      opts: Options) -> list[BaseImage]:
    if req.platforms or not req.all_platforms:
        return [await load_base(store, name, selector, p, opts) for p in (req.platforms or [None])]
    root = await resolve_root(store, selector, opts)
    if not isinstance(root.manifest, ImageIndex):
        return [await load_base(store, name, selector, None, opts)]
    return [await load_base(store, name, str(root.desc.digest), p, opts)
            for p in root.manifest.platforms() if p is not None]


def _input_layers(req: BuildRequest, tar_options: TarOptions) -> LayerMaker:
    cache: list[LayerResult] = []

    def make(base: BaseImage | None, staging: OCILayout) -> list[LayerResult]:
        if not cache:   # the same inputs for every platform: write them once
            for p in req.layers:
                emit(req.progress, Message(f"layer from {p}"))
                cache.append(layer_from_input(p, staging, req.compression, tar_options))
        return list(cache)
    return make


async def abuild(req: BuildRequest) -> BuildResult:
    """Build an image (or an index, with several platforms) and write it to ``req.target``."""
    from ..core.transportref import parse_transport_reference
    from ..transports import open_store, target_tag

    for p in req.layers:
        if not os.path.exists(p):
            raise UsageError(f"{p}: no such file or directory")
    epoch = req.tar_options.epoch if req.tar_options.epoch is not None else source_date_epoch()
    tar_options = TarOptions(epoch, req.tar_options.mtime, req.tar_options.owner, req.tar_options.xattrs)
    created = rfc3339(epoch)
    tref = parse_transport_reference(req.target)
    base_store: Store | None = None
    opts = Options(progress=req.progress)
    bases: list[BaseImage | None] = [None for _ in (req.platforms or [None])]
    if req.base and req.base != SCRATCH:
        base_ref = parse_transport_reference(req.base)
        base_store = open_store(base_ref, options=req.open_options)
        try:
            bases = list(await _load_bases(base_store, req.base, base_ref.selector, req, opts))
        except BaseException:
            await base_store.close()
            raise
    platforms = [b.platform if b is not None else None for b in bases]
    if base_store is None:
        platforms = list(req.platforms) or [host_platform()]
    maker = req.layer_maker or _input_layers(req, tar_options)
    target = open_store(tref, write=True, options=req.open_options)
    try:
        with staging_for(target) as staging:
            images = []
            for p, b in zip(platforms, bases):
                layers = await asyncio.to_thread(maker, b, staging)
                sources = ["directory" if os.path.isdir(x) else "tarball" for x in req.layers]
                if req.layer_maker is not None:
                    sources = ["flattened" for _ in layers]
                hist = history_entries(created, req.created_by, len(layers), req.changes, sources)
                images.append(write_image(staging, b, p or host_platform(), layers, req.changes, created=created,
                                          history=hist, replace_layers=req.replace_layers))
            if len(images) == 1 and len(req.platforms) <= 1:
                root = images[0].manifest.descriptor()
                media_type = images[0].manifest.media_type
            else:
                idx = build_index([i.descriptor() for i in images])
                staging.put_bytes(idx.raw, idx.media_type)
                root, media_type = idx.descriptor(), idx.media_type
            base_layers = [] if req.replace_layers else [d for b in bases if b is not None for d in b.manifest.layers]
            await publish(staging, base_store, root, target, target_tag(tref), req.extra_tags,
                          base_layers=base_layers, progress=req.progress)
        await target.close()
        return BuildResult(str(tref), root.digest, media_type, images)
    except BaseException:
        await finish(target, ok=False)
        raise
    finally:
        if base_store is not None:
            await base_store.close()


def build(req: BuildRequest) -> BuildResult:
    """Synchronous :func:`abuild`."""
    return asyncio.run(abuild(req))


__all__ = [
    "BaseImage", "BuildRequest", "BuildResult", "BuiltImage", "SCRATCH",
    "abuild", "build", "load_base", "publish", "write_image",
]
