"""Unpack an image from any transport into a rootfs directory or an OCI runtime bundle.

The target appears only when everything checked out: layers are applied into a staging
directory ``DIR.partial`` (holding ``ocikit-unpack.json``, which says what is being unpacked
and, after a failure, why it stopped) that is renamed to ``DIR`` at the end. A failure —
a layer whose digest or diff_id does not match, a hostile or corrupt layer, a layer past the
:class:`~ocikit.layers.limits.LayerLimits` — leaves no ``DIR``, and removes everything it
wrote (without recursion, never following a symlink), unless ``keep_partial`` asks to keep
``DIR.partial``, marked incomplete, for a look.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..content import Options, Store
from ..digest import Digest
from ..durable import atomic_write
from ..errors import ConfigInvalid, OcikitError, UsageError
from ..layers.limits import DEFAULT_LIMITS, LayerLimits
from ..layers.reader import LayerReader, open_layer
from ..layers.rmtree import remove_tree
from ..layers.tarparse import TarMember
from ..layers.unpacker import Unpacker, UnpackStats
from ..model import Descriptor, ImageConfig, ImageManifest
from ..platforms import Platform
from ..progress import BlobAdvanced, BlobDone, BlobStarted, ProgressSink, emit

if TYPE_CHECKING:
    from ..transports.layout import OCILayout

# asyncio and the async Store machinery are imported only by the functions that need them:
# unpacking a local layout runs without an event loop (see unpack()).

MARKER = "ocikit-unpack.json"
OWNERS = "ocikit-owners.json"
"""Rootless unpacks: the image's owners of files (also in user.rootlesscontainers xattrs)."""
STAGED = "target"
CONFIG_LIMIT = 64 * 1024 * 1024
"""Largest image config read (as :func:`~ocikit.content.read_blob`)."""


@dataclass
class UnpackOptions:
    """``bundle``: DIR/rootfs + DIR/config.json; ``rootless``: record owners instead of chown
    (default: when not root); ``platform``: which image of an index (default: the host's);
    ``limits``: the bounds on each layer (see :mod:`ocikit.layers.limits`); ``keep_partial``:
    after a failure, keep ``DIR.partial`` (marked incomplete) instead of removing it."""

    bundle: bool = False
    rootless: bool | None = None
    platform: Platform | None = None
    progress: ProgressSink | None = None
    warn: Callable[[str], None] | None = None
    limits: LayerLimits = DEFAULT_LIMITS
    keep_partial: bool = False


@dataclass
class UnpackResult:
    source: str
    target: str
    rootfs: str
    manifest_digest: Digest
    config_digest: Digest
    layers: list[Digest]
    stats: UnpackStats
    seconds: float
    rootless: bool
    bundle_config: str | None = None
    owners_file: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "target": self.target, "rootfs": self.rootfs,
            "manifest": str(self.manifest_digest), "config": str(self.config_digest),
            "layers": [str(d) for d in self.layers], "rootless": self.rootless,
            "bundleConfig": self.bundle_config, "ownersFile": self.owners_file,
            "entries": self.stats.entries, "files": self.stats.files, "bytes": self.stats.bytes,
            "whiteouts": self.stats.whiteouts, "skipped": self.stats.skipped,
            "warnings": self.warnings, "seconds": round(self.seconds, 3),
        }


def _prepare(target: str) -> str:
    """Check DIR and make a fresh staging directory; returns the staging path."""
    target = os.path.abspath(target)
    if os.path.lexists(target):
        if not os.path.isdir(target) or os.path.islink(target):
            raise UsageError(f"{target} exists and is not a directory")
        if os.listdir(target):
            raise UsageError(f"{target} exists and is not empty")
    staging = target + ".partial"
    if os.path.lexists(staging):
        if os.path.isdir(staging) and not os.path.islink(staging) and os.path.isfile(os.path.join(staging, MARKER)):
            remove_tree(staging)           # a previous failed unpack of ours, kept
        else:
            raise UsageError(f"{staging} exists and is not an ocikit staging directory; remove it")
    os.makedirs(staging, mode=0o700)
    return staging


def _write_marker(staging: str, doc: dict[str, Any]) -> None:
    atomic_write(os.path.join(staging, MARKER), json.dumps(doc, indent=2).encode(), sync=False)


async def unpack_image(store: Store, selector: str | None, target: str,
                       options: UnpackOptions | None = None, *, source_name: str | None = None,
                       opts: Options | None = None) -> UnpackResult:
    """Unpack the image ``selector`` of ``store`` into ``target`` (see the module docstring)."""
    import asyncio

    from .inspect import inspect_image

    options = options or UnpackOptions()
    opts = opts or Options(progress=options.progress)
    t0 = time.monotonic()
    ins = await inspect_image(store, selector, platform=options.platform, opts=opts)
    manifest = ins.image.manifest
    assert isinstance(manifest, ImageManifest)
    loop = asyncio.get_running_loop()

    def open_reader(desc: Descriptor, diff_id: Digest) -> LayerReader:
        return open_layer(store, desc, diff_id=diff_id, opts=opts, loop=loop, limits=options.limits)

    return await asyncio.to_thread(_unpack_into, ins.image.desc.digest, manifest, ins.config, open_reader, target,
                                   options, source_name or store.location, t0)


def _unpack_into(manifest_digest: Digest, manifest: ImageManifest, config: ImageConfig,
                 open_reader: Callable[[Descriptor, Digest], LayerReader], target: str, options: UnpackOptions,
                 source_name: str, t0: float) -> UnpackResult:
    """The unpack itself, in the calling thread: staging, layers, bundle config, rename."""
    diff_ids = config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise ConfigInvalid(f"config {manifest.config.digest}: {len(diff_ids)} diff_ids for "
                            f"{len(manifest.layers)} layers")
    target = os.path.abspath(target)
    staging = _prepare(target)
    staged = os.path.join(staging, STAGED)
    rootfs_rel = "rootfs" if options.bundle else ""
    os.makedirs(os.path.join(staged, rootfs_rel) if rootfs_rel else staged, mode=0o755)
    rootfs_staged = os.path.join(staged, rootfs_rel) if rootfs_rel else staged
    marker: dict[str, Any] = {
        "status": "incomplete", "source": source_name,
        "manifest": str(manifest_digest), "config": str(manifest.config.digest),
        "layers": [str(x.digest) for x in manifest.layers], "target": target,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_marker(staging, marker)
    unpacker = Unpacker(rootfs_staged, rootless=options.rootless, warn=options.warn)
    try:
        _apply_all(manifest, diff_ids, unpacker, open_reader, options.progress)
        bundle_config = None
        owners_file = None
        if unpacker.rootless and unpacker.owners:
            # the owners the rootfs cannot hold: beside the rootfs in a bundle, else beside DIR
            owners_file = os.path.join(target, OWNERS) if options.bundle else f"{target}.{OWNERS}"
            with open(os.path.join(staged, OWNERS) if options.bundle else f"{staging}.{OWNERS}", "w") as f:
                json.dump(unpacker.owners_record(), f, indent=1)
        if options.bundle:
            from ..layers.runtime_bundle import runtime_config

            doc = runtime_config(config.doc, rootfs_staged, rootless=bool(unpacker.rootless))
            with open(os.path.join(staged, "config.json"), "w") as f:
                json.dump(doc, f, indent="\t")
                f.write("\n")
            bundle_config = os.path.join(target, "config.json")
        os.rename(staged, target)
        if owners_file is not None and not options.bundle:
            os.replace(f"{staging}.{OWNERS}", owners_file)
    except BaseException as e:
        unpacker.close()
        marker["error"] = str(e) if isinstance(e, OcikitError) else f"{type(e).__name__}: {e}"
        note = _after_failure(staging, marker, options.keep_partial)
        if isinstance(e, OcikitError) and note:
            e.message = f"{e.message} ({note})"
        raise
    with contextlib.suppress(OSError):
        remove_tree(staging)
    return UnpackResult(
        source=source_name, target=target,
        rootfs=os.path.join(target, rootfs_rel) if rootfs_rel else target,
        manifest_digest=manifest_digest, config_digest=manifest.config.digest,
        layers=[x.digest for x in manifest.layers], stats=unpacker.stats, seconds=time.monotonic() - t0,
        rootless=bool(unpacker.rootless), bundle_config=bundle_config, owners_file=owners_file,
        warnings=list(unpacker.warnings))


def _after_failure(staging: str, marker: dict[str, Any], keep: bool) -> str:
    """Keep ``staging`` marked incomplete, or remove it and what beside it this unpack wrote;
    what to add to the error message."""
    if keep:
        with contextlib.suppress(OSError):
            _write_marker(staging, marker)
        return f"the incomplete unpack is left in {staging}"
    try:
        remove_tree(f"{staging}.{OWNERS}")
        remove_tree(staging)
    except OSError as e:
        with contextlib.suppress(OSError):
            _write_marker(staging, marker)
        return f"could not remove the incomplete unpack in {staging}: {e.strerror or e}"
    return ""


def _apply_all(manifest: ImageManifest, diff_ids: list[Digest], unpacker: Unpacker,
               open_reader: Callable[[Descriptor, Digest], LayerReader], sink: ProgressSink | None) -> None:
    layers = list(zip(manifest.layers, diff_ids))
    ahead: LayerReader | None = None     # the next layer, already reading while this one is applied
    try:
        for i, (desc, diff_id) in enumerate(layers):
            emit(sink, BlobStarted(desc.digest, desc.size, desc.media_type))
            reader = ahead if ahead is not None else open_reader(desc, diff_id).start()
            ahead = None
            with reader:
                if i + 1 < len(layers):
                    ahead = open_reader(*layers[i + 1]).start()
                if sink is not None:
                    unpacker.progress = _progress(desc.digest, sink)
                unpacker.apply(reader)
            emit(sink, BlobDone(desc.digest, desc.size, "unpacked"))
    finally:
        if ahead is not None:
            ahead.close()
    unpacker.finish()


def _progress(digest: Digest, sink: ProgressSink) -> Callable[[LayerReader, TarMember], None]:
    seen = [0]

    def on_member(reader: LayerReader, m: TarMember) -> None:
        n = reader.compressed_size
        if n - seen[0] >= 1 << 20:
            emit(sink, BlobAdvanced(digest, n - seen[0]))
            seen[0] = n
    return on_member


async def aunpack(source: str, target: str, options: UnpackOptions | None = None, *,
                  open_options: Any = None) -> UnpackResult:
    """Unpack a transport reference (``oci:``, ``docker://``, archives) into ``target``."""
    from ..transportref import parse_transport_reference
    from ..transports import OpenOptions, open_store

    tref = parse_transport_reference(source)
    store = open_store(tref, options=open_options if isinstance(open_options, OpenOptions) else None)
    try:
        return await unpack_image(store, tref.selector, target, options, source_name=source)
    finally:
        await store.close()


def unpack(source: str, target: str, options: UnpackOptions | None = None, **kw: Any) -> UnpackResult:
    """Synchronous :func:`aunpack`. An ``oci:`` layout is unpacked in this thread with no event
    loop (nothing in it waits on the network); other transports run :func:`aunpack`."""
    from ..transportref import parse_transport_reference

    tref = parse_transport_reference(source)
    if tref.transport != "oci":
        import asyncio

        return asyncio.run(aunpack(source, target, options, **kw))
    from ..transports.layout import OCILayout

    options = options or UnpackOptions()
    t0 = time.monotonic()
    layout = OCILayout(tref.path)
    digest, manifest, config = _inspect_layout(layout, tref.selector, options.platform)

    def open_reader(desc: Descriptor, diff_id: Digest) -> LayerReader:
        return open_layer(layout, desc, diff_id=diff_id, limits=options.limits)

    return _unpack_into(digest, manifest, config, open_reader, target, options, source, t0)


def _inspect_layout(layout: "OCILayout", selector: str | None,
                    platform: Platform | None) -> tuple[Digest, ImageManifest, ImageConfig]:
    """What :func:`~.inspect.inspect_image` finds, read from a local layout synchronously: the
    manifest ``selector`` names (through an index, the image for ``platform``) and its config,
    every byte checked against its descriptor."""
    from ..digest import Verifier, verify_bytes
    from ..errors import SizeInvalid
    from ..model import ImageIndex, parse_config, parse_manifest
    from ..platforms import image_for

    desc = layout.resolve_sync(selector)
    while True:
        rm = layout.get_manifest_sync(str(desc.digest))
        verify_bytes(rm.raw, desc.digest, desc.size, what=f"manifest {desc.digest}")
        m = parse_manifest(rm.raw, desc.media_type or rm.media_type, what=f"manifest {desc.digest}")
        if not isinstance(m, ImageIndex):
            break
        desc = m.manifests[image_for(platform, m.platforms(), desc.digest)]
    assert isinstance(m, ImageManifest)
    cfg = m.config
    if cfg.size > CONFIG_LIMIT:
        raise SizeInvalid(f"blob {cfg.digest} is {cfg.size} bytes, too large to read into memory")
    v = Verifier(cfg.digest, cfg.size)
    try:
        with open(layout.blob_path(cfg.digest), "rb") as f:
            data = f.read(CONFIG_LIMIT + 1)
    except FileNotFoundError:
        from ..errors import BlobUnknown
        raise BlobUnknown(f"{layout.location}: blob {cfg.digest} is missing from blobs/") from None
    v.update(data)
    v.verify()
    return desc.digest, m, parse_config(data, strict=False)


__all__ = ["MARKER", "UnpackOptions", "UnpackResult", "aunpack", "unpack", "unpack_image"]
