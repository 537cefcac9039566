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
import queue
import stat
import struct
import tarfile
import threading
from dataclasses import dataclass
from typing import IO, Any, Mapping, Protocol

from .. import mediatypes as mt
from ..digest import Digest, Digester
from ..durable import sync_data
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


class _Compressor(Protocol):
    def compress(self, data: bytes | bytearray) -> bytes: ...

    def finish(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes | bytearray) -> bytes:
        return bytes(data)

    def finish(self) -> bytes:
        return b""


# gzip member header: magic, CM=deflate, FLG=0 (no name), MTIME=0, XFL=0, OS=255 (unknown)
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


class _Gzip:
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


class _Zstd:
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
    """A write-only file object: tar bytes in; diff_id, compressed digest and the blob file out.

    Writes are gathered into 1 MiB steps; each step is hashed (diff_id) here, then a worker
    thread compresses, hashes (digest) and writes it (hashlib, ISA-L and zstd release the GIL),
    so reading the tree overlaps with compressing it. At most ``depth`` steps wait in between: memory stays flat.
    """

    def __init__(self, out: IO[bytes], compression: str = "gzip", *, depth: int = 4) -> None:
        self._out = out
        self._comp = compressor(compression)
        self.compression = compression
        self.media_type = MEDIA_TYPES[compression]
        self.diff = Digester()
        self.blob = Digester()
        self._buf = bytearray()
        self._written = 0
        self.closed = False
        self._q: queue.Queue[bytearray | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._work, name="ocikit-layer-sink", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while True:
            buf = self._q.get()
            if buf is None:
                return
            if self._error is not None:
                continue   # keep draining so the writer never blocks
            try:
                self._emit(self._comp.compress(buf))
            except BaseException as e:  # noqa: BLE001 - handed to the writer
                self._error = e

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buf += data
        if len(self._buf) >= _STEP:
            self._drain()
        return len(data)

    def _drain(self) -> None:
        self._check()
        if not self._buf:
            return
        buf, self._buf = self._buf, bytearray()
        self._written += len(buf)
        self.diff.update(buf)   # here, so the two threads share the work more evenly
        self._q.put(buf)

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self._out.write(data)

    def tell(self) -> int:
        return self._written + len(self._buf)

    def flush(self) -> None:
        pass

    def _stop(self) -> None:
        if self._worker.is_alive():
            self._q.put(None)
            self._worker.join()

    def finish(self) -> tuple[Digest, int, Digest, int]:
        """Flush everything: (digest, size, diff_id, tar size)."""
        self._drain()
        self._stop()
        self._check()
        self._emit(self._comp.finish())
        self.closed = True
        return self.blob.digest(), self.blob.size, self.diff.digest(), self.diff.size

    def abort(self) -> None:
        """Stop the worker without finishing (the output is to be thrown away)."""
        self._error = self._error or OSError("aborted")
        self._stop()


# ---- tar headers ------------------------------------------------------------------------------

BLOCK = 512
RECORD = 20 * BLOCK
REGTYPE, LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
_PAX_NAME = b"././@PaxHeader"
_LIMIT_8 = 8 ** 7      # largest+1 value of an 8-byte octal field (uid, gid, mode, dev)
_LIMIT_12 = 8 ** 11    # ... of a 12-byte one (size, mtime)


def _octal(n: int, digits: int) -> bytes:
    return b"%0*o\0" % (digits - 1, n)


def _field(s: bytes, length: int) -> bytes:
    return s[:length].ljust(length, b"\0")


def _ustar(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
           linkname: bytes, devmajor: int = 0, devminor: int = 0) -> bytes:
    """One USTAR header block, byte for byte what :mod:`tarfile` (3.11) writes in PAX format with
    empty user/group names; device fields are empty except for device nodes."""
    head = (_field(name, 100) + _octal(mode, 8) + _octal(uid, 8) + _octal(gid, 8) + _octal(size, 12)
            + _octal(mtime, 12))
    devices = _octal(devmajor, 8) + _octal(devminor, 8) if typeflag in (CHRTYPE, BLKTYPE) else bytes(16)
    tail = typeflag + _field(linkname, 100) + b"ustar\x0000" + bytes(64) + devices + bytes(155 + 12)
    chksum = 256 + sum(head) + sum(tail)
    return head + b"%06o\0 " % chksum + tail


def _pax_records(records: list[tuple[bytes, bytes]]) -> bytes:
    out = []
    for keyword, value in records:
        n = len(keyword) + len(value) + 3
        p = 0
        while True:
            total = n + len(str(p))
            if total == p:
                break
            p = total
        out.append(b"%d %s=%s\n" % (p, keyword, value))
    return b"".join(out)


def _pad(n: int) -> bytes:
    return bytes(-n % BLOCK)


def encode_header(name: str, typeflag: bytes, *, mode: int, uid: int, gid: int, mtime: int, size: int = 0,
                  linkname: str = "", devmajor: int = 0, devminor: int = 0,
                  xattrs: Mapping[str, bytes] | None = None) -> bytes:
    """The header of one entry: a PAX extended header first only when USTAR cannot hold it.

    PAX records (in :mod:`tarfile`'s order): ``SCHILY.xattr.*``, then ``path``/``linkpath`` for
    names longer than 100 bytes or not ASCII, then ``uid``/``gid``/``size``/``mtime`` that
    overflow their octal fields. Names are str with surrogate escapes for undecodable bytes.
    """
    records: list[tuple[bytes, bytes]] = []
    if xattrs:
        records += [(f"SCHILY.xattr.{k}".encode("utf-8", "surrogateescape"), v) for k, v in xattrs.items()]
    fields = {}
    for key, value, length in (("path", name, 100), ("linkpath", linkname, 100)):
        try:
            raw = value.encode("ascii")
            if len(raw) > length:
                records.append((key.encode(), raw))
        except UnicodeEncodeError:
            raw = value.encode("ascii", "replace")
            records.append((key.encode(), value.encode("utf-8", "surrogateescape")))
        fields[key] = raw
    nums = {"uid": uid, "gid": gid, "size": size, "mtime": mtime}
    for key, limit in (("uid", _LIMIT_8), ("gid", _LIMIT_8), ("size", _LIMIT_12), ("mtime", _LIMIT_12)):
        v = nums[key]
        if not 0 <= v < limit:
            records.append((key.encode(), str(v).encode()))
            nums[key] = 0
    main = _ustar(fields["path"], mode & 0o7777, nums["uid"], nums["gid"], nums["size"], nums["mtime"], typeflag,
                  fields["linkpath"], devmajor, devminor)
    if not records:
        return main
    binary = False
    for _, v in records:
        try:
            v.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
            break
    payload = (b"21 hdrcharset=BINARY\n" if binary else b"") + _pax_records(records)
    return _ustar(_PAX_NAME, 0, 0, 0, len(payload), 0, b"x", b"") + payload + _pad(len(payload)) + main


# ---- tar entries ------------------------------------------------------------------------------


_TYPEFLAGS = {tarfile.REGTYPE: REGTYPE, tarfile.AREGTYPE: REGTYPE, tarfile.LNKTYPE: LNKTYPE,
              tarfile.SYMTYPE: SYMTYPE, tarfile.CHRTYPE: CHRTYPE, tarfile.BLKTYPE: BLKTYPE,
              tarfile.DIRTYPE: DIRTYPE, tarfile.FIFOTYPE: FIFOTYPE}


class TarEmitter:
    """Writes normalised tar entries into a sink (any object with ``write``)."""

    def __init__(self, sink: Any, options: TarOptions | None = None) -> None:
        self.options = options or TarOptions()
        self.options.check()
        self.epoch = self.options.resolved_epoch()
        self._sink = sink
        self._offset = 0
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

    def _owner(self, uid: int, gid: int) -> tuple[int, int]:
        owner = self.options.owner
        return (uid, gid) if owner is None else owner

    def _xattrs(self, path: str) -> dict[str, bytes]:
        if not self.options.xattrs:
            return {}
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return {}
        out: dict[str, bytes] = {}
        for n in sorted(names):
            if n.startswith(_SKIPPED_XATTR_PREFIXES):
                continue
            with contextlib.suppress(OSError):
                out[n] = os.getxattr(path, n, follow_symlinks=False)
        return out

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._sink.write(data)
        self._offset += len(data)

    def _header(self, name: str, typeflag: bytes, mode: int, uid: int, gid: int, mtime: float, *, size: int = 0,
                linkname: str = "", devmajor: int = 0, devminor: int = 0,
                xattrs: Mapping[str, bytes] | None = None) -> None:
        if typeflag == DIRTYPE and not name.endswith("/"):
            name += "/"
        uid, gid = self._owner(uid, gid)
        self._write(encode_header(name, typeflag, mode=stat.S_IMODE(mode), uid=uid, gid=gid,
                                  mtime=self._mtime(mtime), size=size, linkname=linkname, devmajor=devmajor,
                                  devminor=devminor, xattrs=xattrs))
        self.entries += 1

    def _data_from(self, f: IO[bytes], size: int, what: str) -> None:
        left = size
        while left > 0:
            chunk = f.read(min(left, _STEP))
            if not chunk:
                raise OSError(f"{what}: file shrank while it was read")
            self._write(chunk)
            left -= len(chunk)
        self._write(_pad(size))

    # -- entries

    def add_path(self, path: str, name: str, st: os.stat_result | None = None) -> None:
        """Add the file at ``path`` (never followed if a symlink) as entry ``name``."""
        st = st if st is not None else os.lstat(path)
        m = st.st_mode
        meta = (m, st.st_uid, st.st_gid, st.st_mtime)
        xattrs = self._xattrs(path)
        if stat.S_ISREG(m):
            key = (st.st_dev, st.st_ino)
            first = self._inodes.get(key) if st.st_nlink > 1 else None
            if first is not None:
                self._header(name, LNKTYPE, *meta, linkname=first, xattrs=xattrs)
                return
            if st.st_nlink > 1:
                self._inodes[key] = name
            with open(path, "rb", buffering=0) as f:
                self._header(name, REGTYPE, *meta, size=st.st_size, xattrs=xattrs)
                self._data_from(f, st.st_size, path)
        elif stat.S_ISDIR(m):
            self._header(name, DIRTYPE, *meta, xattrs=xattrs)
        elif stat.S_ISLNK(m):
            self._header(name, SYMTYPE, *meta, linkname=os.readlink(path), xattrs=xattrs)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            self._header(name, CHRTYPE if stat.S_ISCHR(m) else BLKTYPE, *meta, devmajor=os.major(st.st_rdev),
                         devminor=os.minor(st.st_rdev), xattrs=xattrs)
        elif stat.S_ISFIFO(m):
            self._header(name, FIFOTYPE, *meta, xattrs=xattrs)
        else:
            self.skipped.append(name)

    def add_info(self, ti: tarfile.TarInfo, fileobj: IO[bytes] | None = None,
                 xattrs: Mapping[str, bytes] | None = None) -> None:
        """Add an entry described by a :class:`tarfile.TarInfo`, normalised like a file's;
        a regular file's data is read from ``fileobj``."""
        typeflag = _TYPEFLAGS.get(ti.type, REGTYPE)
        size = ti.size if typeflag == REGTYPE else 0
        self._header(ti.name, typeflag, ti.mode, ti.uid, ti.gid, ti.mtime, size=size, linkname=ti.linkname,
                     devmajor=ti.devmajor, devminor=ti.devminor,
                     xattrs=dict(xattrs) if (xattrs and self.options.xattrs) else None)
        if size:
            assert fileobj is not None
            self._data_from(fileobj, size, ti.name)

    def add_whiteout(self, parent: str, name: str) -> None:
        """A whiteout ``parent/.wh.name``: ``name`` is deleted from the layers below."""
        self._marker(join_name(parent, WHITEOUT_PREFIX + name))

    def add_opaque(self, directory: str) -> None:
        """An opaque marker: the lower layers' contents of ``directory`` are hidden."""
        self._marker(join_name(directory, OPAQUE_NAME))

    def _marker(self, name: str) -> None:
        self._write(encode_header(name, REGTYPE, mode=0o644, uid=0, gid=0, mtime=self._mtime(0)))
        self.entries += 1

    def close(self) -> None:
        """The end-of-archive blocks, padded to a whole 10 KiB record (as tarfile and GNU tar do)."""
        self._write(bytes(2 * BLOCK))
        self._write(bytes(-self._offset % RECORD))


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
            sync_data(self._f.fileno())
        self._f.close()
        self.result = LayerResult(self.sink.media_type, digest, size, diff_id, tar_size, self.tar.entries)
        return self.result

    def abort(self) -> None:
        self.sink.abort()
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
