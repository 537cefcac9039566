"""Recompressing layers on a copy (``--dest-compress-format gzip|zstd``, ``--dest-compress-level``).

The image is copied byte-exact into a staging OCI layout; every layer whose compression is not
the one asked for is decompressed and compressed again there (a worker thread, temp files,
hashed as written, never in memory); each image manifest that changed is rewritten with OCI
media types and the new layer digests and sizes — its config, and so the ``diff_ids`` (the
digests of the uncompressed layers), stays the same — and an index after its children. The
staged result is then copied to the destination by the copy engine. Every digest that changed
is reported old -> new. ``--preserve-digests`` refuses recompression: it changes digests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import tempfile
from typing import Any, Iterator

from ..core import mediatypes as mt
from ..content import Store
from ..core.digest import Digest
from ..core.errors import UsageError
from ..model import Descriptor, ImageIndex, ImageManifest, canonical_json, parse_manifest
from .copy_options import CopyOptions, CopyResult

COMPRESS_FORMATS = ("gzip", "zstd")
LAYER_TYPE = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}
RECOMPRESSIBLE = frozenset({mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, mt.DOCKER_LAYER_GZIP,
                            "application/vnd.docker.image.rootfs.diff.tar"})
"""Distributable tar layers (non-distributable ones stay as they are, as their URLs say)."""
DEFAULT_LEVEL = {"gzip": 6, "zstd": 3}
LEVELS = {"gzip": range(0, 10), "zstd": range(-7, 23)}
_READ = 1 << 20


@dataclasses.dataclass(frozen=True)
class Recompression:
    """What ``--dest-compress-format``/``--dest-compress-level`` ask for."""

    format: str
    level: int | None = None

    def __post_init__(self) -> None:
        if self.format not in COMPRESS_FORMATS:
            raise UsageError(f"--dest-compress-format {self.format!r}: expected one of {', '.join(COMPRESS_FORMATS)}")
        if self.level is not None and self.level not in LEVELS[self.format]:
            r = LEVELS[self.format]
            raise UsageError(f"--dest-compress-level {self.level}: {self.format} takes {r.start}..{r.stop - 1}")


def parse_recompression(fmt: str | None, level: int | None) -> Recompression | None:
    """The CLI's two flags as one request (None: keep the layers as they are)."""
    if fmt is None:
        if level is not None:
            raise UsageError("--dest-compress-level needs --dest-compress-format gzip|zstd")
        return None
    return Recompression(fmt.lower(), level)


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_READ):
            yield chunk


def recompress_file(src: str, dst: str, want: Recompression) -> Descriptor:
    """Decompress ``src`` (gzip, zstd or plain tar, sniffed) and compress it into ``dst``; its descriptor."""
    from ..transports.archive.compression import detect_compression, open_decompressed
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as raw, open(dst, "wb") as out:
        kind = detect_compression(raw.read(8))
        raw.seek(0)
        plain: Any = open_decompressed(raw, kind) if kind else raw
        level = DEFAULT_LEVEL[want.format] if want.level is None else want.level
        if want.format == "gzip":
            import zlib
            comp: Any = zlib.compressobj(level, zlib.DEFLATED, 31)  # a gzip stream, mtime 0: deterministic
        else:
            import zstandard
            comp = zstandard.ZstdCompressor(level=level).compressobj()
        while buf := plain.read(_READ):
            data = comp.compress(buf)
            h.update(data)
            out.write(data)
            size += len(data)
        data = comp.flush()
        h.update(data)
        out.write(data)
        size += len(data)
    return Descriptor(LAYER_TYPE[want.format], Digest("sha256:" + h.hexdigest()), size)


def _compression_of(media_type: str) -> str | None:
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith("gzip"):
        return "gzip"
    return None


class _Recompressor:
    """One staged image: layers recompressed once each, manifests rewritten children first."""

    def __init__(self, layout: Any, want: Recompression) -> None:
        self.layout, self.want = layout, want
        self.changed: dict[Digest, Descriptor] = {}

    def layer(self, desc: Descriptor) -> Descriptor:
        if desc.digest in self.changed:
            return self.changed[desc.digest]
        if desc.media_type not in RECOMPRESSIBLE or _compression_of(desc.media_type) == self.want.format:
            return desc
        fd, tmp = tempfile.mkstemp(prefix=".tmp-recompress-", dir=self.layout.path)
        os.close(fd)
        try:
            new = recompress_file(self.layout.blob_path(str(desc.digest)), tmp, self.want)
            self.layout.write_blob_file(new, _chunks(tmp))
        finally:
            os.unlink(tmp)
        self.changed[desc.digest] = new
        return new

    def manifest(self, desc: Descriptor) -> Descriptor:
        rm = self.layout.get_manifest_sync(str(desc.digest))
        m = parse_manifest(rm.raw, rm.media_type, what=str(desc.digest))
        doc = json.loads(rm.raw)
        if isinstance(m, ImageIndex):
            for entry, child in zip(doc.get("manifests", []), m.manifests):
                if mt.is_manifest(child.media_type):
                    new = self.manifest(child)
                    entry.update({"mediaType": new.media_type, "digest": str(new.digest), "size": new.size})
            new_type = mt.OCI_INDEX
        elif isinstance(m, ImageManifest):
            for entry, layer in zip(doc.get("layers", []), m.layers):
                new = self.layer(layer)
                entry.update({"mediaType": new.media_type, "digest": str(new.digest), "size": new.size})
            if doc.get("config", {}).get("mediaType") == mt.DOCKER_CONFIG:
                doc["config"]["mediaType"] = mt.OCI_CONFIG
            new_type = mt.OCI_MANIFEST
        else:
            return desc
        if "mediaType" in doc:
            doc["mediaType"] = new_type
        raw = canonical_json(doc)
        out = Descriptor(new_type, Digest.of(raw), len(raw), platform=desc.platform)
        if out.digest == desc.digest:
            return desc
        self.layout.put_bytes(raw, new_type)
        self.changed[desc.digest] = out
        return out


async def copy_recompressed(src: Store, selector: str | None, dst: Store, tag: str | None, options: CopyOptions,
                            want: Recompression) -> tuple[CopyResult, dict[str, str]]:
    """Copy with every layer recompressed as ``want`` says; the result and the changed digests (old -> new)."""
    from ..transports.layout import OCILayout
    from .copy import copy_between
    if options.preserve_digests:
        raise UsageError("--dest-compress-format changes layer and manifest digests; --preserve-digests refuses it")
    if options.preserve_index_digest:
        raise UsageError("--dest-compress-format rewrites the index: it cannot be kept (--preserve-index-digest)")
    if options.manifest_format == "v2s2" and want.format == "zstd":
        raise UsageError("--format v2s2 cannot carry zstd layers; use --format oci")
    with tempfile.TemporaryDirectory(prefix="ocikit-recompress-") as tmp:
        stage = OCILayout(tmp, create=True, sync=False)
        plain = dataclasses.replace(options, referrers=False, hooks=(), progress=None, manifest_format=None)
        first = await copy_between(src, selector, stage, None, plain)
        root = await stage.resolve(str(first.digest))
        work = _Recompressor(stage, want)
        new_root = await asyncio.to_thread(work.manifest, root)
        again = dataclasses.replace(options, all_platforms=True, platforms=[])
        result = await copy_between(stage, str(new_root.digest), dst, tag, again)
    result.source, result.source_digest = first.source, first.source_digest
    return result, {str(old): str(new.digest) for old, new in work.changed.items()}


async def acopy_recompressed(source: str, target: str, options: CopyOptions, want: Recompression, *,
                             src_options: Any = None, dst_options: Any = None) -> tuple[CopyResult, dict[str, str]]:
    """:func:`copy_recompressed` between two transport references (as :func:`~ocikit.ops.copy.acopy`)."""
    from ..core.transportref import parse_transport_reference
    from ..transports import open_store, target_tag
    from .stores import holding
    sref = parse_transport_reference(source)
    dref = parse_transport_reference(target)
    src = open_store(sref, options=src_options)
    try:
        async with holding(open_store(dref, write=True, options=dst_options)) as dst:
            return await copy_recompressed(src, sref.selector, dst, target_tag(dref), options, want)
    finally:
        await src.close()


__all__ = ["COMPRESS_FORMATS", "Recompression", "acopy_recompressed", "copy_recompressed", "parse_recompression",
           "recompress_file"]
