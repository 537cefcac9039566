"""A bundle split into tar volumes of a maximum size (for transfer media), and read back in place.

``pack_volumes(BUNDLE, max_size)`` turns a finished bundle directory into
``ocikit-bundle-0001.tar``, ``-0002.tar``, ... each at most ``max_size`` bytes and each a
plain tar; a file that does not fit in what is left of a volume is cut into parts named
``NAME.part0001``, ``NAME.part0002`` (in order, across volumes). ``ocikit-volumes.json`` lists
the volumes with their sizes and sha256, and a copy of the metadata file stays beside them.

:class:`TarVolumesStore` reads the layout straight from the volumes (no extraction): a
read-only Store over the parts, so ``--from dir:BUNDLE`` works on volumes copied off media.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from typing import AsyncIterator, BinaryIO, Iterator

from .. import mediatypes as mt
from ..content import DEFAULT_OPTIONS, DEFAULT_TRAITS, Options, RawManifest
from ..digest import CHUNK, Digest, Verifier, digest_file, is_digest
from ..errors import ArchiveInvalid, BlobUnknown, ManifestUnknown, UsageError
from ..model import Descriptor, ImageIndex, parse_manifest
from ..durable import atomic_write
from .bundle_format import CHECKSUM_FILE, METADATA_FILE

VOLUME_FMT = "ocikit-bundle-{:04d}.tar"
VOLUME_RE = re.compile(r"^ocikit-bundle-(\d{4,})\.tar$")
VOLUMES_FILE = "ocikit-volumes.json"
BLOCK = 512
RESERVE = 2 * BLOCK + tarfile.RECORDSIZE  # end-of-archive blocks and the final record padding
PART_RE = re.compile(r"^(.*)\.part(\d{4,})$")


def _files(root: str) -> list[str]:
    """The bundle's files, relative, in the order a reader wants them (small documents first)."""
    out = ["oci-layout", "index.json"]
    blobs = os.path.join(root, "blobs")
    for alg in sorted(os.listdir(blobs)):
        for name in sorted(os.listdir(os.path.join(blobs, alg))):
            if not name.startswith("."):
                out.append(f"blobs/{alg}/{name}")
    return out + [CHECKSUM_FILE, METADATA_FILE]


class _Slice:
    """A file object reading ``length`` bytes of ``f`` from ``offset``."""

    def __init__(self, f: BinaryIO, offset: int, length: int) -> None:
        f.seek(offset)
        self.f, self.left = f, length

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data


def _padded(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK * BLOCK


def pack_volumes(root: str, max_size: int) -> list[str]:
    """Split the finished bundle at ``root`` into tar volumes; the loose layout files are removed."""
    root = os.path.abspath(root)
    if not os.path.exists(os.path.join(root, METADATA_FILE)):
        raise UsageError(f"{root}: not a finished bundle (no {METADATA_FILE})")
    if max_size < 1 << 20:
        raise UsageError("a volume must hold at least 1 MiB")
    files = _files(root)
    volumes: list[str] = []
    state: dict[str, object] = {"tf": None, "used": 0}

    def new_volume() -> None:
        close_volume()
        path = os.path.join(root, VOLUME_FMT.format(len(volumes) + 1))
        volumes.append(path)
        state["tf"] = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)
        state["used"] = 0

    def close_volume() -> None:
        tf = state["tf"]
        if tf is not None:
            tf.close()  # type: ignore[attr-defined]
            state["tf"] = None

    def room() -> int:
        return max_size - RESERVE - int(state["used"])  # type: ignore[arg-type]

    def add(name: str, f: BinaryIO, offset: int, length: int) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = length, 0o644, 0
        state["tf"].addfile(ti, _Slice(f, offset, length))  # type: ignore[attr-defined]
        state["used"] = int(state["used"]) + BLOCK + _padded(length)  # type: ignore[arg-type]

    new_volume()
    for rel in files:
        path = os.path.join(root, rel)
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if BLOCK + _padded(size) <= room():
                add(rel, f, 0, size)
                continue
            if BLOCK + _padded(size) <= max_size - RESERVE and size < (1 << 20):
                new_volume()  # a small file is not worth cutting
                add(rel, f, 0, size)
                continue
            offset, part = 0, 1
            while offset < size or (size == 0 and part == 1):
                if room() < BLOCK * 3:
                    new_volume()
                n = min(size - offset, (room() - BLOCK) // BLOCK * BLOCK)
                add(f"{rel}.part{part:04d}", f, offset, n)
                offset += n
                part += 1
                if size == 0:
                    break
    close_volume()
    listing = []
    for v in volumes:
        d, n = digest_file(v)
        if n > max_size:
            raise ArchiveInvalid(f"{v}: {n} bytes, over the {max_size}-byte volume size (a bug)")
        listing.append({"file": os.path.basename(v), "size": n, "sha256": d.encoded})
    atomic_write(os.path.join(root, VOLUMES_FILE),
                 json.dumps({"maxSize": max_size, "volumes": listing}, indent=1).encode() + b"\n")
    # the loose layout goes; the metadata file stays beside the volumes (and is inside them too)
    for rel in files:
        if rel != METADATA_FILE:
            os.unlink(os.path.join(root, rel))
    shutil.rmtree(os.path.join(root, "blobs"), ignore_errors=True)
    return volumes + [os.path.join(root, VOLUMES_FILE)]


def has_volumes(root: str) -> bool:
    return os.path.exists(os.path.join(root, VOLUMES_FILE))


@dataclass(frozen=True)
class _Part:
    volume: str
    offset: int
    size: int


class TarVolumesStore:
    """The bundle layout inside tar volumes, read in place (a read-only Store)."""

    traits = DEFAULT_TRAITS

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        with open(os.path.join(self.root, VOLUMES_FILE), "rb") as f:
            listing = json.loads(f.read())
        self.files: dict[str, list[_Part]] = {}
        parts: dict[str, list[tuple[int, _Part]]] = {}
        for v in listing.get("volumes", []):
            path = os.path.join(self.root, v["file"])
            if not os.path.exists(path):
                raise UsageError(f"{self.root}: volume {v['file']} is missing (copy every volume of the bundle)")
            if os.path.getsize(path) != v["size"]:
                raise ArchiveInvalid(f"{path}: {os.path.getsize(path)} bytes, the volume list says {v['size']}")
            with tarfile.open(path, "r:") as tf:
                for m in tf:
                    if not m.isfile():
                        continue
                    p = _Part(path, m.offset_data, m.size)
                    pm = PART_RE.match(m.name)
                    if pm:
                        parts.setdefault(pm.group(1), []).append((int(pm.group(2)), p))
                    else:
                        self.files[m.name] = [p]
        for name, ps in parts.items():
            ps.sort(key=lambda x: x[0])
            if [n for n, _ in ps] != list(range(1, len(ps) + 1)):
                raise ArchiveInvalid(f"{self.root}: parts of {name} are missing")
            self.files[name] = [p for _, p in ps]
        if "index.json" not in self.files:
            raise ArchiveInvalid(f"{self.root}: the volumes hold no index.json")

    @property
    def location(self) -> str:
        return f"dir:{self.root}"

    def _size(self, name: str) -> int | None:
        ps = self.files.get(name)
        return sum(p.size for p in ps) if ps else (0 if ps == [] else None)

    def _chunks(self, name: str) -> Iterator[bytes]:
        for p in self.files[name]:
            with open(p.volume, "rb") as f:
                f.seek(p.offset)
                left = p.size
                while left:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        raise ArchiveInvalid(f"{p.volume}: truncated inside {name}")
                    left -= len(data)
                    yield data

    def _read(self, name: str) -> bytes:
        return b"".join(self._chunks(name))

    def _blob_name(self, digest: str) -> str:
        d = Digest(digest)
        return f"blobs/{d.algorithm}/{d.encoded}"

    def entries(self) -> list[Descriptor]:
        idx = parse_manifest(self._read("index.json"), mt.OCI_INDEX, what=f"{self.root}: index.json")
        assert isinstance(idx, ImageIndex)
        return list(idx.manifests)

    def _manifest_bytes(self, digest: str, size: int | None) -> bytes:
        name = self._blob_name(digest)
        if name not in self.files:
            raise ManifestUnknown(f"{self.location}: no manifest {digest}")
        data = self._read(name)
        v = Verifier(digest, size, what=f"{self.location}: manifest")
        v.update(data)
        v.verify()
        return data

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        entries = self.entries()
        if reference is not None and is_digest(reference):
            for e in entries:
                if e.digest == reference:
                    return e
            raw = self._manifest_bytes(reference, None)
            m = parse_manifest(raw, what=f"manifest {reference}")
            return Descriptor(m.media_type, Digest(reference), len(raw))
        matches = [e for e in entries if reference is None or e.ref_name == reference]
        if len(matches) != 1 and reference is None:
            raise ManifestUnknown(f"{self.location}: name an image (the bundle holds {len(matches)})")
        if not matches:
            raise ManifestUnknown(f"{self.location}: no tag {reference!r}")
        return matches[-1]

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        desc = await self.resolve(reference, opts)
        raw = await asyncio.to_thread(self._manifest_bytes, desc.digest, desc.size)
        return RawManifest(raw, parse_manifest(raw, desc.media_type, what=f"manifest {desc.digest}").media_type,
                           desc.digest)

    async def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        name = self._blob_name(desc.digest)
        if name not in self.files:
            raise BlobUnknown(f"{self.location}: blob {desc.digest} is not in the volumes")
        it = self._chunks(name)
        while True:
            chunk = await asyncio.to_thread(next, it, None)
            if chunk is None:
                return
            yield chunk

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self._size(self._blob_name(desc.digest)) == desc.size

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return await self.has_blob(desc, opts)

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes], opts: Options = DEFAULT_OPTIONS) -> None:
        raise UsageError(f"{self.location}: tar volumes are read-only")

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        raise UsageError(f"{self.location}: tar volumes are read-only")

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        return [e.ref_name for e in self.entries() if e.ref_name]

    async def close(self) -> None:
        return None


__all__ = ["TarVolumesStore", "VOLUMES_FILE", "has_volumes", "pack_volumes"]
