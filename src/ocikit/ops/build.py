"""Build images from directories and tarballs, on a base image (any transport) or on scratch.

The pipeline: each input becomes a layer blob (a directory through the reproducible tar
writer, a tarball as it is) written into a *staging* layout — the target itself when the
target is an OCI layout, else a temporary one; a new config and manifest are encoded
deterministically (:func:`~ocikit.model.canonical_json`, ``created`` from ``SOURCE_DATE_EPOCH``);
then the copy engine moves the image from an overlay of (staging, base) to the target, so
every transport works and nothing is tagged before every blob is there.

Same inputs, same digest: tar entries are normalised (see :mod:`ocikit.layers.tarwriter`),
history entries carry no paths or host names, and key order is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator, Mapping, Sequence

from .. import mediatypes as mt
from ..content import DEFAULT_OPTIONS, DEFAULT_TRAITS, BlobLinker, Options, RawManifest, Store, read_blob
from ..digest import CHUNK, Digest, Digester
from ..errors import LayerInvalid, ManifestUnknown, OcikitError, PlatformNotFound, UsageError
from ..layers.reader import open_layer_file
from ..layers.tarwriter import LayerResult, LayerSink, TarOptions, source_date_epoch, write_tree_layer
from ..model import Descriptor, ImageIndex, ImageManifest, build_index, build_manifest, canonical_json, parse_config
from ..platforms import Platform, host_platform, matches
from ..progress import Message, ProgressSink, emit
from ..transports.layout import TMP_PREFIX, OCILayout
from .copy import CopyOptions, Node, copy_between, resolve_root
from .inspect import choose_image
from .stores import finish

ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
SCRATCH = "scratch"


# ---- config changes (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigChanges:
    """Edits to an image config's ``config`` object and the manifest's annotations.

    ``None`` leaves a field alone; an empty list removes ``Entrypoint``/``Cmd``.
    ``env`` entries replace a variable of the same name or are appended.
    """

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    user: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    def describe(self) -> list[str]:
        """Dockerfile-like lines for history entries (deterministic)."""
        out: list[str] = []
        if self.entrypoint is not None:
            out.append(f"ENTRYPOINT {json.dumps(list(self.entrypoint))}")
        if self.cmd is not None:
            out.append(f"CMD {json.dumps(list(self.cmd))}")
        out += [f"ENV {k}={v}" for k, v in self.env]
        if self.workdir is not None:
            out.append(f"WORKDIR {self.workdir}")
        if self.user is not None:
            out.append(f"USER {self.user}")
        out += [f"LABEL {k}={v}" for k, v in self.labels]
        out += [f"EXPOSE {p}" for p in self.exposed_ports]
        return out

    @property
    def touches_config(self) -> bool:
        return bool(self.describe())


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_PORT = re.compile(r"^([0-9]{1,5})(?:/(tcp|udp|sctp))?$")


def parse_env(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (KEY, VALUE). The value may be empty, the name may not."""
    key, eq, value = text.partition("=")
    if not eq or not _ENV_NAME.match(key):
        raise UsageError(f"bad --env {text!r}: expected NAME=VALUE with NAME of letters, digits and _")
    return key, value


def parse_key_value(text: str, what: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise UsageError(f"bad {what} {text!r}: expected KEY=VALUE")
    return key, value


def parse_port(text: str) -> str:
    """``80``, ``80/tcp``, ``53/udp`` -> the ``ExposedPorts`` key (``80/tcp``)."""
    m = _PORT.match(text.strip())
    if not m or not 0 < int(m.group(1)) < 65536:
        raise UsageError(f"bad --expose {text!r}: expected PORT[/tcp|/udp|/sctp] with 1 <= PORT <= 65535")
    return f"{int(m.group(1))}/{m.group(2) or 'tcp'}"


def parse_command(text: str, what: str) -> tuple[str, ...]:
    """A JSON array of strings (``["/bin/app", "-v"]``) or a shell-like word list; ``""`` clears."""
    s = text.strip()
    if not s:
        return ()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except json.JSONDecodeError as e:
            raise UsageError(f"bad {what} {text!r}: not a JSON array: {e.msg}") from None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise UsageError(f"bad {what} {text!r}: expected a JSON array of strings")
        return tuple(v)
    try:
        return tuple(shlex.split(s))
    except ValueError as e:
        raise UsageError(f"bad {what} {text!r}: {e}") from None


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def apply_changes(config: Mapping[str, Any] | None, changes: ConfigChanges) -> dict[str, Any]:
    """A new ``config`` object (the image config's ``config`` field) with ``changes`` applied.

    Existing keys keep their place; new keys are added in a fixed order.
    """
    c: dict[str, Any] = dict(config or {})
    if changes.entrypoint is not None:
        if changes.entrypoint:
            c["Entrypoint"] = list(changes.entrypoint)
        else:
            c.pop("Entrypoint", None)
    if changes.cmd is not None:
        if changes.cmd:
            c["Cmd"] = list(changes.cmd)
        else:
            c.pop("Cmd", None)
    if changes.env:
        env = list(c.get("Env") or [])
        for key, value in changes.env:
            item = f"{key}={value}"
            for i, e in enumerate(env):
                if e.partition("=")[0] == key:
                    env[i] = item
                    break
            else:
                env.append(item)
        c["Env"] = env
    if changes.workdir is not None:
        c["WorkingDir"] = changes.workdir
    if changes.user is not None:
        c["User"] = changes.user
    if changes.labels:
        labels = dict(c.get("Labels") or {})
        labels.update(changes.labels)
        c["Labels"] = labels
    if changes.exposed_ports:
        ports = dict(c.get("ExposedPorts") or {})
        for p in changes.exposed_ports:
            ports.setdefault(p, {})
        c["ExposedPorts"] = ports
    return c


def new_config(base: Mapping[str, Any] | None, platform: Platform, *, diff_ids: Sequence[str],
               history: Sequence[Mapping[str, Any]], changes: ConfigChanges, created: str,
               replace_layers: bool = False) -> dict[str, Any]:
    """The image config of a built image: the base's (or a fresh one), new layers and history added.

    ``replace_layers``: ``diff_ids`` and ``history`` replace the base's instead of extending them.
    """
    if base is None:
        doc: dict[str, Any] = {"created": created, "architecture": platform.architecture, "os": platform.os}
        if platform.variant:
            doc["variant"] = platform.variant
        doc["config"] = {}
        doc["rootfs"] = {"type": "layers", "diff_ids": []}
        doc["history"] = []
    else:
        doc = json.loads(json.dumps(base))
        doc["created"] = created
    doc["config"] = apply_changes(doc.get("config"), changes)
    rootfs = dict(doc.get("rootfs") or {"type": "layers"})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = ([] if replace_layers else list(rootfs.get("diff_ids") or [])) + [str(d) for d in diff_ids]
    doc["rootfs"] = rootfs
    doc["history"] = ([] if replace_layers else list(doc.get("history") or [])) + [dict(h) for h in history]
    return doc


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


# ---- stores used while building --------------------------------------------------------------


class OverlayStore:
    """Reads from ``top`` first, then from ``bottom`` (the base image's store). Read-only."""

    traits = DEFAULT_TRAITS

    def __init__(self, top: OCILayout, bottom: Store | None) -> None:
        self.top = top
        self.bottom = bottom

    @property
    def location(self) -> str:
        return self.top.location

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        return await self.top.resolve(reference, opts)

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        try:
            return await self.top.get_manifest(reference, opts)
        except ManifestUnknown:
            if self.bottom is None:
                raise
            return await self.bottom.get_manifest(reference, opts)

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        src: Store = self.top
        if self.bottom is not None and not self.top.has_blob_sync(desc):
            src = self.bottom
        async for chunk in src.blob_chunks(desc, opts):
            yield chunk

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        if self.top.has_blob_sync(desc):
            return True
        return self.bottom is not None and await self.bottom.has_blob(desc, opts)

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes], opts: Options = DEFAULT_OPTIONS) -> None:
        raise UsageError("read-only store")

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.top.has_blob_sync(desc)

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        raise UsageError("read-only store")

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        return []

    async def close(self) -> None:
        return None


@contextlib.contextmanager
def staging_for(target: Store) -> Iterator[OCILayout]:
    """Where new blobs are written: the target layout itself, else a temporary layout."""
    if isinstance(target, OCILayout):
        yield target
        return
    d = tempfile.mkdtemp(prefix="ocikit-build-")
    try:
        yield OCILayout(os.path.join(d, "staging"), create=True, sync=False)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def blob_tmp(staging: OCILayout) -> str:
    """A fresh temporary path among the staging layout's blobs (same filesystem: renamed in place)."""
    d = os.path.join(staging.path, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"{TMP_PREFIX}build-{os.getpid()}-{os.urandom(6).hex()}")


def adopt_blob(staging: OCILayout, tmp: str, digest: Digest) -> None:
    """Move a finished, already-hashed temp file in the staging layout to its blob path."""
    final = staging.blob_path(digest)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if staging.sync:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, final)


# ---- layers from inputs -----------------------------------------------------------------------


def read_tarball(path: str) -> tuple[str | None, Digest, int, Digest, int]:
    """Read a tarball through the layer reader: (compression, digest, size, diff_id, tar size).

    Raises :class:`~ocikit.errors.LayerInvalid` when it is not a (compressed) tar archive.
    """
    try:
        with open_layer_file(path) as r:
            r.drain()
            assert r.digest is not None and r.diff_id is not None
            return r.compression, r.digest, r.compressed_size, r.diff_id, r.size
    except LayerInvalid as e:
        raise UsageError(f"{path}: not a layer tarball ({e})") from None


def layer_from_input(path: str, staging: OCILayout, compression: str, tar_options: TarOptions) -> LayerResult:
    """Write one input (a directory, or a tarball taken as it is) into ``staging`` as a layer blob."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file or directory")
    tmp = blob_tmp(staging)
    try:
        if os.path.isdir(path):
            res = write_tree_layer(path, tmp, compression, tar_options)
        elif os.path.isfile(path):
            res = _tarball_layer(path, tmp, compression)
        else:
            raise UsageError(f"{path}: not a directory or a tarball")
        adopt_blob(staging, tmp, res.digest)
        return res
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _tarball_layer(path: str, tmp: str, compression: str) -> LayerResult:
    """A tarball as a layer: compressed ones are kept byte for byte, a plain tar is compressed."""
    have, digest, size, diff_id, tar_size = read_tarball(path)
    if have is None:
        with open(path, "rb") as src, open(tmp, "wb") as out:
            sink = LayerSink(out, compression)
            try:
                while chunk := src.read(CHUNK):
                    sink.write(chunk)
                digest, size, diff_id2, tar_size = sink.finish()
            except BaseException:
                sink.abort()
                raise
        if diff_id2 != diff_id:
            raise UsageError(f"{path}: changed while it was read")
        return LayerResult(sink.media_type, digest, size, diff_id, tar_size, 0)
    d = Digester()
    with open(path, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(CHUNK):
            d.update(chunk)
            out.write(chunk)
    if d.digest() != digest:
        raise UsageError(f"{path}: changed while it was read")
    media = mt.OCI_LAYER_GZIP if have == "gzip" else mt.OCI_LAYER_ZSTD
    return LayerResult(media, digest, size, diff_id, tar_size, 0)


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


def history_entries(created: str, created_by: str, n_layers: int, changes: ConfigChanges,
                    sources: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One history entry per new layer, then one (empty_layer) for config changes."""
    out: list[dict[str, Any]] = []
    for i in range(n_layers):
        kind = sources[i] if i < len(sources) else "layer"
        out.append({"created": created, "created_by": created_by, "comment": f"layer {i + 1} of {n_layers}: {kind}"})
    if changes.touches_config:
        out.append({"created": created, "created_by": f"{created_by}: " + "; ".join(changes.describe()),
                    "empty_layer": True})
    return out


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
    from ..transportref import parse_transport_reference
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
    "BaseImage", "BuildRequest", "BuildResult", "BuiltImage", "ConfigChanges", "OverlayStore", "SCRATCH",
    "abuild", "adopt_blob", "apply_changes", "blob_tmp", "build", "layer_from_input", "load_base", "new_config", "parse_command",
    "parse_env", "parse_key_value", "parse_port", "publish", "rfc3339", "staging_for", "write_image",
]
