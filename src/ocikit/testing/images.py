"""Generate OCI images of a given shape into a Store: single images, N-platform indexes,
layers of given sizes, file trees with symlinks, hardlinks, whiteouts and opaque dirs.

Deterministic: the same arguments give the same digests.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import random
import tarfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..core import mediatypes as mt
from ..content import Store
from ..core.digest import Digest
from ..model import Descriptor, build_index, build_manifest, canonical_json
from ..core.platforms import Platform, parse_platform

EPOCH = 1700000000


@dataclass(frozen=True)
class FileEntry:
    """One tar entry. ``kind``: file, dir, symlink, hardlink, whiteout, opaque."""

    path: str
    kind: str = "file"
    data: bytes | None = None
    size: int = 0
    target: str = ""
    mode: int | None = None
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class LayerSpec:
    entries: Sequence[FileEntry] = ()
    compression: str = "gzip"
    random_bytes: int = 0
    """Extra: one file ``/blob.bin`` of this many random bytes (seeded)."""


def _content(entry: FileEntry, rng: random.Random) -> bytes:
    if entry.data is not None:
        return entry.data
    return rng.randbytes(entry.size) if entry.size else b""


def make_layer(spec: LayerSpec, seed: int = 0) -> tuple[bytes, Digest, str]:
    """Build a layer: returns (blob bytes, diff_id, media type)."""
    rng = random.Random(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        entries = list(spec.entries)
        if spec.random_bytes:
            entries.append(FileEntry("blob.bin", size=spec.random_bytes))
        for e in entries:
            path = e.path.lstrip("/")
            if e.kind in ("whiteout", "opaque"):
                parent, _, base = path.rpartition("/")
                name = ".wh..wh..opq" if e.kind == "opaque" else f".wh.{base}"
                if e.kind == "opaque":
                    parent = path
                ti = tarfile.TarInfo(f"{parent}/{name}" if parent else name)
                ti.mode, ti.mtime = 0o644, EPOCH
                tf.addfile(ti, io.BytesIO(b""))
                continue
            ti = tarfile.TarInfo(path)
            ti.mtime, ti.uid, ti.gid = EPOCH, e.uid, e.gid
            if e.kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, e.mode if e.mode is not None else 0o755
                tf.addfile(ti)
            elif e.kind == "symlink":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, e.target, 0o777
                tf.addfile(ti)
            elif e.kind == "hardlink":
                ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, e.target.lstrip("/"), e.mode or 0o644
                tf.addfile(ti)
            else:
                data = _content(e, rng)
                ti.size, ti.mode = len(data), e.mode if e.mode is not None else 0o644
                tf.addfile(ti, io.BytesIO(data))
    tar = buf.getvalue()
    diff_id = Digest.of(tar)
    if spec.compression == "gzip":
        return gzip.compress(tar, compresslevel=1, mtime=0), diff_id, mt.OCI_LAYER_GZIP
    if spec.compression == "zstd":
        import zstandard
        return zstandard.ZstdCompressor(level=3).compress(tar), diff_id, mt.OCI_LAYER_ZSTD
    return tar, diff_id, mt.OCI_LAYER


async def put_bytes(store: Store, data: bytes, media_type: str) -> Descriptor:
    """Store ``data`` as a blob of ``media_type`` in ``store`` (unless it is there already); its descriptor."""
    desc = Descriptor(media_type, Digest.of(data), len(data))
    if not await store.has_blob(desc):
        async def one() -> Any:
            yield data
        await store.put_blob(desc, one())
    return desc


async def write_image_async(store: Store, tag: str | None, *, platform: Platform | str = "linux/amd64",
                            layers: Sequence[LayerSpec] = (LayerSpec(random_bytes=1024),), seed: int = 0,
                            config: Mapping[str, Any] | None = None, docker: bool = False,
                            annotations: Mapping[str, str] | None = None, root: bool = True) -> Descriptor:
    """Write one image (layers, config, manifest) into ``store``; returns the manifest descriptor."""
    plat = parse_platform(platform) if isinstance(platform, str) else platform
    layer_descs, diff_ids = [], []
    for i, spec in enumerate(layers):
        blob, diff_id, mtype = make_layer(spec, seed * 1000 + i)
        if docker:
            mtype = mt.DOCKER_LAYER_GZIP if mtype == mt.OCI_LAYER_GZIP else mtype
        layer_descs.append(await put_bytes(store, blob, mtype))
        diff_ids.append(str(diff_id))
    cfg: dict[str, Any] = {"created": "2023-11-14T22:13:20Z", "architecture": plat.architecture, "os": plat.os}
    if plat.variant:
        cfg["variant"] = plat.variant
    cfg["config"] = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                     "Cmd": ["/bin/sh"], "Labels": {"seed": str(seed)}, **(dict(config or {}))}
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    cfg["history"] = [{"created": "2023-11-14T22:13:20Z", "created_by": f"ocikit.testing layer {i}"}
                      for i in range(len(layers))]
    config_desc = await put_bytes(store, canonical_json(cfg), mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG)
    m = build_manifest(config_desc, layer_descs, media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
                       annotations=annotations)
    await store.put_manifest(m.raw, m.media_type, tag, root=root and tag is not None or (root and tag is None))
    return Descriptor(m.media_type, m.digest, m.size, platform=plat)


async def write_index_async(store: Store, tag: str | None, *,
                            platforms: Sequence[str] = ("linux/amd64", "linux/arm64/v8", "linux/ppc64le"),
                            layers: Sequence[LayerSpec] = (LayerSpec(random_bytes=1024),), seed: int = 0,
                            docker: bool = False, shared_base: LayerSpec | None = None,
                            annotations: Mapping[str, str] | None = None) -> Descriptor:
    """Write an index with one image per platform; returns the index descriptor."""
    children = []
    for i, p in enumerate(platforms):
        ls = ([shared_base] if shared_base else []) + list(layers)
        d = await write_image_async(store, None, platform=p, layers=ls, seed=seed * 100 + i + 1, docker=docker,
                                    root=False)
        children.append(d)
    idx = build_index(children, media_type=mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX,
                      annotations=annotations)
    await store.put_manifest(idx.raw, idx.media_type, tag, root=True)
    return Descriptor(idx.media_type, idx.digest, idx.size)


def write_image(store: Store, tag: str | None, **kw: Any) -> Descriptor:
    return asyncio.run(write_image_async(store, tag, **kw))


def write_index(store: Store, tag: str | None, **kw: Any) -> Descriptor:
    return asyncio.run(write_index_async(store, tag, **kw))
