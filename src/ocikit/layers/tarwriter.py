"""Reproducible layer tarballs, streamed to a file with digest, size and diff_id in one pass.

The same tree gives the same bytes, whoever owns its files and whenever they were touched:

- entries depth-first, the names of each directory sorted by their bytes; whiteouts of a
  directory come before its other children (so they only ever hit lower layers);
- ``uid``/``gid`` 0 and empty user/group names unless the caller keeps owners;
- every mtime set to ``SOURCE_DATE_EPOCH`` (0 when unset; ``clamp`` and ``keep`` on request),
  always an integer, so no PAX ``mtime`` record ever appears;
- USTAR headers; a PAX header only where USTAR cannot say it (long or non-ASCII names, large
  ids or sizes, xattrs as ``SCHILY.xattr.*``);
- hardlinks found by inode: the first path of an inode (in entry order) carries the data,
  later ones are ``LNKTYPE`` entries naming it;
- ``security.selinux`` and ``system.*`` xattrs are left out: they describe the build host.

Compression: ``gzip`` is ISA-L's deflate at level 1 (python-isal), wrapped in a gzip member
with a fixed header (no name, mtime 0, OS 255) — about 5x faster than zlib level 1 here. ISA-L's
deflate stream is not zlib's, so the compressed digest of a layer is fixed for a given ISA-L
version; the ``diff_id`` does not depend on the compressor at all. ``zstd`` is level 3 with
two worker threads (zstd's output is the same for any number of workers >= 1). ``none``
writes the tar as is.

Nothing is held in memory: the tar stream is hashed (diff_id), compressed, hashed again
(digest) and written to the output file in 1 MiB steps.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import tarfile
from dataclasses import dataclass
from typing import IO, Any, Mapping

from .. import mediatypes as mt
from ..digest import Digest, Digester
from ..errors import UsageError
from ..model import Descriptor

COMPRESSIONS = ("gzip", "zstd", "none")
MEDIA_TYPES = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "none": mt.OCI_LAYER}
MTIME_POLICIES = ("epoch", "clamp", "keep")
WHITEOUT_PREFIX = ".wh."
OPAQUE_NAME = ".wh..wh..opq"
GZIP_LEVEL = 1
ZSTD_LEVEL = 3
_STEP = 1 << 20
_SKIPPED_XATTR_PREFIXES = ("security.selinux", "system.")


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` as an integer (0 when unset or empty).

    Raises :class:`UsageError` for a value that is not a non-negative integer.
    """
    env = os.environ if environ is None else environ
    value = (env.get("SOURCE_DATE_EPOCH") or "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r}: expected a non-negative integer of seconds")
    return int(value)


@dataclass(frozen=True)
class TarOptions:
    """How entries are normalised.

    ``epoch``: the timestamp (``None``: :func:`source_date_epoch`). ``mtime``: ``epoch`` sets every
    mtime to it, ``clamp`` lowers later ones to it, ``keep`` keeps them (whole seconds).
    ``owner``: the uid/gid every entry gets; ``None`` keeps the numeric ids of the files.
    ``xattrs``: record extended attributes (PAX ``SCHILY.xattr.*``).
    """

    epoch: int | None = None
    mtime: str = "epoch"
    owner: tuple[int, int] | None = (0, 0)
    xattrs: bool = True

    def resolved_epoch(self) -> int:
        return source_date_epoch() if self.epoch is None else self.epoch

    def check(self) -> None:
        if self.mtime not in MTIME_POLICIES:
            raise UsageError(f"unknown mtime policy {self.mtime!r} (expected one of {', '.join(MTIME_POLICIES)})")


@dataclass(frozen=True)
class LayerResult:
    """A written layer: its blob's media type, digest and size, and the digest of its tar."""

    media_type: str
    digest: Digest
    size: int
    diff_id: Digest
    tar_size: int
    entries: int

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, dict(annotations) if annotations else None)


# ---- compressors ------------------------------------------------------------------------------


class _Compressor:
    def compress(self, data: bytes | bytearray) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        raise NotImplementedError


class _Identity(_Compressor):
    def compress(self, data: bytes | bytearray) -> bytes:
        return bytes(data)

    def finish(self) -> bytes:
        return b""


# gzip member header: magic, CM=deflate, FLG=0 (no name), MTIME=0, XFL=0, OS=255 (unknown)
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


class _Gzip(_Compressor):
    """A single gzip member around an ISA-L raw deflate stream (RFC 1952)."""

    def __init__(self, level: int = GZIP_LEVEL) -> None:
        from isal import isal_zlib

        self._zlib = isal_zlib
        self._c = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
        self._crc = 0
        self._size = 0
        self._started = False

    def compress(self, data: bytes | bytearray) -> bytes:
        self._crc = self._zlib.crc32(data, self._crc)
        self._size += len(data)
        out = self._c.compress(data)
        if not self._started:
            self._started = True
            return GZIP_HEADER + out
        return out

    def finish(self) -> bytes:
        head = b"" if self._started else GZIP_HEADER
        return head + self._c.flush() + struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF)


class _Zstd(_Compressor):
    def __init__(self, level: int = ZSTD_LEVEL) -> None:
        import zstandard

        self._c = zstandard.ZstdCompressor(level=level, threads=2).compressobj()

    def compress(self, data: bytes | bytearray) -> bytes:
        return self._c.compress(bytes(data))

    def finish(self) -> bytes:
        return self._c.flush()


def compressor(compression: str) -> _Compressor:
    """A fresh compressor for ``gzip``, ``zstd`` or ``none``."""
    if compression == "gzip":
        return _Gzip()
    if compression == "zstd":
        return _Zstd()
    if compression == "none":
        return _Identity()
    raise UsageError(f"unknown compression {compression!r} (expected one of {', '.join(COMPRESSIONS)})")


class LayerSink:
    """A write-only file object: tar bytes in; diff_id, compressed digest and the blob file out."""

    def __init__(self, out: IO[bytes], compression: str = "gzip") -> None:
        self._out = out
        self._comp = compressor(compression)
        self.compression = compression
        self.media_type = MEDIA_TYPES[compression]
        self.diff = Digester()
        self.blob = Digester()
        self._buf = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buf += data
        if len(self._buf) >= _STEP:
            self._drain()
        return len(data)

    def _drain(self) -> None:
        if not self._buf:
            return
        buf, self._buf = self._buf, bytearray()
        self.diff.update(buf)
        self._emit(self._comp.compress(buf))

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self._out.write(data)

    def tell(self) -> int:
        return self.diff.size + len(self._buf)

    def flush(self) -> None:
        pass

    def finish(self) -> tuple[Digest, int, Digest, int]:
        """Flush everything: (digest, size, diff_id, tar size)."""
        self._drain()
        self._emit(self._comp.finish())
        self.closed = True
        return self.blob.digest(), self.blob.size, self.diff.digest(), self.diff.size


# ---- tar entries ------------------------------------------------------------------------------


class TarEmitter:
    """Writes normalised tar entries into a sink (any object with ``write``)."""

    def __init__(self, sink: Any, options: TarOptions | None = None) -> None:
        self.options = options or TarOptions()
        self.options.check()
        self.epoch = self.options.resolved_epoch()
        self._tf = tarfile.TarFile(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT,
                                   encoding="utf-8", errors="surrogateescape")
        self._tf.copybufsize = _STEP
        self._inodes: dict[tuple[int, int], str] = {}
        self.entries = 0
        self.skipped: list[str] = []
        """Paths that tar cannot hold (sockets), left out."""

    # -- normalisation

    def _mtime(self, mtime: float) -> int:
        policy = self.options.mtime
        if policy == "epoch":
            return self.epoch
        t = max(0, int(mtime))
        return min(t, self.epoch) if policy == "clamp" else t

    def _info(self, name: str, mode: int, uid: int, gid: int, mtime: float) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(mode)
        owner = self.options.owner
        ti.uid, ti.gid = (uid, gid) if owner is None else owner
        ti.uname = ti.gname = ""
        ti.mtime = self._mtime(mtime)
        return ti

    def _xattrs(self, path: str) -> dict[str, str]:
        if not self.options.xattrs:
            return {}
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return {}
        out: dict[str, str] = {}
        for n in sorted(names):
            if n.startswith(_SKIPPED_XATTR_PREFIXES):
                continue
            with contextlib.suppress(OSError):
                value = os.getxattr(path, n, follow_symlinks=False)
                out[f"SCHILY.xattr.{n}"] = value.decode("utf-8", "surrogateescape")
        return out

    # -- entries

    def add_path(self, path: str, name: str, st: os.stat_result | None = None) -> None:
        """Add the file at ``path`` (never followed if a symlink) as entry ``name``."""
        st = st if st is not None else os.lstat(path)
        m = st.st_mode
        ti = self._info(name, m, st.st_uid, st.st_gid, st.st_mtime)
        ti.pax_headers = self._xattrs(path)
        if stat.S_ISDIR(m):
            ti.type = tarfile.DIRTYPE
            self._add(ti)
        elif stat.S_ISREG(m):
            key = (st.st_dev, st.st_ino)
            first = self._inodes.get(key) if st.st_nlink > 1 else None
            if first is not None:
                ti.type, ti.linkname = tarfile.LNKTYPE, first
                self._add(ti)
                return
            if st.st_nlink > 1:
                self._inodes[key] = name
            ti.type, ti.size = tarfile.REGTYPE, st.st_size
            with open(path, "rb") as f:
                self._add(ti, f)
        elif stat.S_ISLNK(m):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
            self._add(ti)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._add(ti)
        elif stat.S_ISFIFO(m):
            ti.type = tarfile.FIFOTYPE
            self._add(ti)
        else:
            self.skipped.append(name)

    def add_info(self, ti: tarfile.TarInfo, fileobj: IO[bytes] | None = None) -> None:
        """Add an entry from another tar: its metadata normalised like a file's."""
        out = self._info(ti.name, ti.mode, ti.uid, ti.gid, ti.mtime)
        out.type, out.linkname, out.size = ti.type, ti.linkname, ti.size if ti.isreg() else 0
        out.devmajor, out.devminor = ti.devmajor, ti.devminor
        if self.options.xattrs:
            out.pax_headers = {k: v for k, v in sorted(ti.pax_headers.items()) if k.startswith("SCHILY.xattr.")}
        self._add(out, fileobj if ti.isreg() else None)

    def add_whiteout(self, parent: str, name: str) -> None:
        """A whiteout ``parent/.wh.name``: ``name`` is deleted from the layers below."""
        self._marker(join_name(parent, WHITEOUT_PREFIX + name))

    def add_opaque(self, directory: str) -> None:
        """An opaque marker: the lower layers' contents of ``directory`` are hidden."""
        self._marker(join_name(directory, OPAQUE_NAME))

    def _marker(self, name: str) -> None:
        ti = self._info(name, 0o644, 0, 0, 0)
        ti.uid = ti.gid = 0
        ti.type = tarfile.REGTYPE
        self._add(ti)

    def _add(self, ti: tarfile.TarInfo, fileobj: IO[bytes] | None = None) -> None:
        self._tf.addfile(ti, fileobj)
        self.entries += 1

    def close(self) -> None:
        self._tf.close()


def join_name(parent: str, name: str) -> str:
    """``parent/name`` for tar entry names (``name`` alone at the top)."""
    return f"{parent}/{name}" if parent else name


class LayerWriter:
    """Write one layer blob to ``path``: add entries through :attr:`tar`, then :meth:`finish`.

    Used as a context manager, a failure removes the partial file.
    """

    def __init__(self, path: str, compression: str = "gzip", options: TarOptions | None = None) -> None:
        self.path = path
        self._f = open(path, "wb")
        try:
            self.sink = LayerSink(self._f, compression)
            self.tar = TarEmitter(self.sink, options)
        except BaseException:
            self._f.close()
            os.unlink(path)
            raise
        self.result: LayerResult | None = None

    def finish(self, *, sync: bool = False) -> LayerResult:
        self.tar.close()
        digest, size, diff_id, tar_size = self.sink.finish()
        if sync:
            self._f.flush()
            os.fsync(self._f.fileno())
        self._f.close()
        self.result = LayerResult(self.sink.media_type, digest, size, diff_id, tar_size, self.tar.entries)
        return self.result

    def abort(self) -> None:
        self._f.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def __enter__(self) -> "LayerWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif self.result is None:
            self.finish()


def walk_tree(root: str, rel: str = "") -> Any:
    """Yield ``(abs_path, name, stat)`` for everything under ``root``: depth first, names sorted by bytes.

    Symlinks are never followed; ``root`` itself is not yielded.
    """
    base = os.path.join(root, rel) if rel else root
    with os.scandir(base) as it:
        names = sorted((e.name for e in it), key=os.fsencode)
    for n in names:
        p = os.path.join(base, n)
        st = os.lstat(p)
        name = join_name(rel, n)
        yield p, name, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk_tree(root, name)


def write_tree_layer(root: str, out_path: str, compression: str = "gzip",
                     options: TarOptions | None = None, *, sync: bool = False) -> LayerResult:
    """Write the tree at ``root`` (its contents, not ``root`` itself) as a layer blob at ``out_path``."""
    if not os.path.isdir(root):
        raise UsageError(f"{root}: not a directory")
    with LayerWriter(out_path, compression, options) as w:
        for path, name, st in walk_tree(root):
            w.tar.add_path(path, name, st)
        return w.finish(sync=sync)
