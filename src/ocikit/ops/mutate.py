"""Change existing images: append layers, edit config fields, retag, flatten to one layer.

Every verb is a build on the image itself as base (every platform of an index unless
``platforms`` picks some), written to ``target`` (default: the image's own reference), so the
results are deterministic like ``ocikit build``'s. A mutate that changes nothing is a plain
copy: retagging keeps the digest.
"""

from __future__ import annotations

import asyncio
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Sequence

from ..content import Store
from ..core.errors import UsageError
from ..layers.merge import MergedTree
from ..layers.reader import LayerReader, TarMember, open_layer
from ..layers.layertar import LayerResult, LayerWriter, TarOptions
from ..model import ImageManifest
from ..core.platforms import Platform
from ..progress import ProgressSink
from ..transports.layout import OCILayout
from .build import BaseImage, BuildRequest, BuildResult, abuild
from .buildconfig import ConfigChanges

DataHandler = Callable[[LayerReader, TarMember], Any]
"""Consumes a regular file's data from the reader; returns the reference stored in the tree."""


def merge_layers(store: Store, manifest: ImageManifest, diff_ids: Sequence[str], on_file: DataHandler,
                 loop: asyncio.AbstractEventLoop | None = None, *, tree: MergedTree | None = None,
                 start: int = 0, stop: int | None = None) -> MergedTree:
    """Read an image's layers ``start:stop`` in order (digests and diff_ids verified) into a
    :class:`MergedTree` (``tree``, or a new one).

    Blocking: call it from a worker thread, passing the loop that owns ``store``.
    """
    tree = tree if tree is not None else MergedTree()
    layers = manifest.layers
    for i in range(start, len(layers) if stop is None else stop):
        with open_layer(store, layers[i], diff_id=diff_ids[i] if i < len(diff_ids) else None, loop=loop) as r:
            for m in r:
                tree.apply(i, m, on_file(r, m) if m.is_file else None)
    return tree


class _Spool:
    """File data of every layer, appended to one temporary file; references are (offset, size)."""

    def __init__(self, directory: str) -> None:
        self.f: IO[bytes] = tempfile.TemporaryFile(dir=directory)
        self.size = 0

    def __call__(self, reader: LayerReader, member: TarMember) -> tuple[int, int]:
        offset = self.size
        n = reader.write_data(self.f.fileno())
        self.size += n
        return offset, n

    def close(self) -> None:
        self.f.close()


def _tarinfo(path: str, m: TarMember) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(path)
    ti.mode, ti.uid, ti.gid = m.mode, m.uid, m.gid
    ti.mtime = m.mtime_ns // 1_000_000_000
    ti.type = {"0": tarfile.REGTYPE, "2": tarfile.SYMTYPE, "3": tarfile.CHRTYPE, "4": tarfile.BLKTYPE,
               "5": tarfile.DIRTYPE, "6": tarfile.FIFOTYPE}[m.type]
    ti.linkname = m.linkname if m.is_symlink else ""
    ti.devmajor, ti.devminor = m.devmajor, m.devminor
    return ti


def write_merged_layer(tree: MergedTree, spool: _Spool, out_path: str, compression: str) -> LayerResult:
    """The merged tree as one layer: owners, modes, mtimes and xattrs as the layers had them."""
    options = TarOptions(mtime="keep", owner=None, xattrs=True)
    first_path: dict[int, str] = {}
    with LayerWriter(out_path, compression, options) as w:
        for path, node in tree.walk():
            if node.inode is None:
                continue   # a parent no layer described: unpackers create it anyway
            m = node.inode.member
            ti = _tarinfo(path, m)
            xattrs = dict(sorted(m.xattrs.items()))
            if m.is_file:
                key = id(node.inode)
                if key in first_path:
                    ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, first_path[key], 0
                    w.tar.add_info(ti, xattrs=xattrs)
                    continue
                first_path[key] = path
                offset, size = node.inode.data
                ti.size = size
                spool.f.seek(offset)
                w.tar.add_info(ti, spool.f, xattrs)
            else:
                w.tar.add_info(ti, xattrs=xattrs)
        return w.finish()


def flatten_maker(compression: str, loop: asyncio.AbstractEventLoop) -> Callable[[BaseImage | None, OCILayout],
                                                                                 list[LayerResult]]:
    """A layer maker for :class:`BuildRequest`: the base's layers merged into one."""

    def make(base: BaseImage | None, staging: OCILayout) -> list[LayerResult]:
        if base is None:
            raise UsageError("flatten needs an image")
        diff_ids = base.config.get("rootfs", {}).get("diff_ids") or []
        spool = _Spool(os.path.join(staging.path, "blobs", "sha256"))
        try:
            with staging.staged_blob() as blob:
                tree = merge_layers(base.store, base.manifest, diff_ids, spool, loop)
                res = write_merged_layer(tree, spool, blob.path, compression)
                blob.commit(res.digest, res.size)
                return [res]
        finally:
            spool.close()
    return make


@dataclass
class MutateRequest:
    """An edit of ``image``: new layers, config changes, extra tags; written to ``target``."""

    image: str
    target: str | None = None
    layers: Sequence[str] = ()
    changes: ConfigChanges = field(default_factory=ConfigChanges)
    platforms: Sequence[Platform] = ()
    extra_tags: Sequence[str] = ()
    compression: str = "gzip"
    tar_options: TarOptions = field(default_factory=TarOptions)
    flatten: bool = False
    verb: str = "mutate"
    progress: ProgressSink | None = None
    open_options: Any = None
    """:class:`~ocikit.transports.OpenOptions` for registries."""


async def amutate(req: MutateRequest) -> BuildResult:
    """Append, mutate or flatten; see the module docstring."""
    target = req.target or req.image
    if not req.flatten and not req.layers and not req.changes.touches_config and not req.changes.annotations:
        return await _retag(req, target)
    maker = flatten_maker(req.compression, asyncio.get_running_loop()) if req.flatten else None
    return await abuild(BuildRequest(
        target=target, layers=req.layers, base=req.image, platforms=req.platforms, all_platforms=True,
        changes=req.changes, compression=req.compression, tar_options=req.tar_options, extra_tags=req.extra_tags,
        created_by=f"ocikit {req.verb}", replace_layers=req.flatten, layer_maker=maker, progress=req.progress,
        open_options=req.open_options))


async def _retag(req: MutateRequest, target: str) -> BuildResult:
    """Nothing to change: copy the image as it is (digest kept) and add the tags."""
    from ..core.transportref import parse_transport_reference
    from ..transports import open_store, target_tag
    from .copy import CopyOptions, copy_between

    sref, dref = parse_transport_reference(req.image), parse_transport_reference(target)
    src = open_store(sref, options=req.open_options)
    try:
        dst = open_store(dref, write=True, options=req.open_options)
        try:
            res = await copy_between(src, sref.selector, dst, target_tag(dref),
                                     CopyOptions(all_platforms=not req.platforms, platforms=req.platforms,
                                                 progress=req.progress))
            rm = await dst.get_manifest(str(res.digest))
            for t in req.extra_tags:
                await dst.put_manifest(rm.raw, rm.media_type, t, root=True)
        finally:
            await dst.close()
    finally:
        await src.close()
    return BuildResult(str(dref), res.digest, res.media_type, [])


def mutate(req: MutateRequest) -> BuildResult:
    """Synchronous :func:`amutate`."""
    return asyncio.run(amutate(req))


__all__ = ["MutateRequest", "amutate", "flatten_maker", "merge_layers", "mutate", "write_merged_layer"]
