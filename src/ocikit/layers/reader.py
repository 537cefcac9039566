"""Read a layer blob as a stream of tar members, verifying its digest and diff_id on the way.

A :class:`LayerReader` turns the compressed bytes of a layer (gzip, zstd or plain tar; the
compression is detected from the magic bytes, so a mislabelled Docker layer still reads)
into :class:`TarMember` headers and, for each regular file, the file's data:

    with open_layer(store, desc, diff_id=config.diff_ids[i]) as layer:
        for member in layer:
            if member.is_file:
                for chunk in layer.data():      # memoryviews, valid until the next chunk
                    ...

A background thread reads the blob, hashes it (the descriptor's digest), decompresses it
with ISA-L (gzip) or zstandard, hashes the tar stream (the diff_id) and hands fixed-size
chunks to the consumer through a small bounded queue, so memory stays flat whatever the
layer's size and decompression overlaps with whatever the consumer does with the members.
When the archive ends, the rest of the stream is drained and both digests are checked:
:class:`~ocikit.errors.DigestMismatch` if either is wrong, :class:`~ocikit.errors.LayerInvalid`
for a stream that is not a tar archive or is truncated. A consumer acting on members must
treat its work as unverified until iteration has finished without an error.

The tar parser is a small streaming one (ustar, GNU long names, PAX headers with
``SCHILY.xattr.*`` / ``LIBARCHIVE.xattr.*``, base-256 numbers); it is several times faster
than :mod:`tarfile` and never seeks.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import struct
import threading
from zlib import adler32 as _adler32
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, Iterator

from ..content import DEFAULT_OPTIONS, Options, Store
from ..digest import Digest
from ..errors import DigestMismatch, LayerInvalid, OcikitError, SizeInvalid
from ..model import Descriptor

if TYPE_CHECKING:
    import asyncio

READ_CHUNK = 1 << 20
"""Compressed bytes read at a time."""
OUT_CHUNK = 1 << 20
"""Most decompressed bytes produced per step (bounds memory for highly compressible layers)."""
FIRST_OUT_CHUNK = 64 << 10
"""The first step produces less (and each next one twice as much, up to ``OUT_CHUNK``), so that
the consumer can start on the first members sooner."""
QUEUE_DEPTH = 8

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# tar type flags
REGULAR = "0"
HARDLINK = "1"
SYMLINK = "2"
CHARDEV = "3"
BLOCKDEV = "4"
DIRECTORY = "5"
FIFO = "6"
_REGULAR_TYPES = frozenset({"0", "\0", "7"})
_MAX_META = 1 << 20
"""Largest PAX / GNU long-name record accepted (a hostile layer cannot make us buffer more)."""


def detect_compression(head: bytes) -> str | None:
    """``gzip``, ``zstd`` or ``None`` (plain) from the first bytes of a blob."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


@dataclass(slots=True)
class TarMember:
    """One entry of a layer: a header with PAX extensions applied. Names are as in the archive."""

    name: str
    type: str
    """The tar type flag, normalised: ``0`` regular (also ``\\0`` and ``7``), ``1`` hardlink,
    ``2`` symlink, ``3``/``4`` char/block device, ``5`` directory, ``6`` fifo."""
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    offset: int = 0
    """Offset of the header in the uncompressed stream."""

    @property
    def is_file(self) -> bool:
        return self.type == REGULAR

    @property
    def is_dir(self) -> bool:
        return self.type == DIRECTORY

    @property
    def is_symlink(self) -> bool:
        return self.type == SYMLINK

    @property
    def is_hardlink(self) -> bool:
        return self.type == HARDLINK

    @property
    def is_device(self) -> bool:
        return self.type in (CHARDEV, BLOCKDEV)

    @property
    def is_fifo(self) -> bool:
        return self.type == FIFO

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


# ---- the producer: blob bytes -> verified, decompressed chunks ------------------------------------


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class _Stopped(Exception):
    pass


class _ChunkFile:
    """A read-only file object over an iterator of byte chunks (an empty chunk ends it).

    ``readinto`` (what ISA-L's gzip reader calls) copies straight from the current chunk into
    the caller's buffer: one copy of the compressed bytes, none in between."""

    def __init__(self, it: Iterator[bytes]) -> None:
        self.it = it
        self.buf: Any = b""     # the current chunk
        self.pos = 0            # how much of it has been read

    def readable(self) -> bool:
        return True

    def _left(self) -> int:
        """Bytes left in the current chunk, after taking the next one if it is used up (0: the end)."""
        left = len(self.buf) - self.pos
        if not left:
            self.buf = next(self.it, b"")
            self.pos = 0
            left = len(self.buf)
        return left

    def read(self, n: int = -1) -> bytes:
        left = self._left()
        if n < 0 or n > left:
            n = left
        pos = self.pos
        self.pos = pos + n
        return self.buf if n == len(self.buf) else self.buf[pos:pos + n]

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._left())
        pos = self.pos
        b[:n] = memoryview(self.buf)[pos:pos + n]
        self.pos = pos + n
        return n

    def close(self) -> None:
        pass


class _Producer(threading.Thread):
    """Reads, hashes, decompresses and hashes again, in a thread; fills a bounded queue."""

    def __init__(self, source: Callable[[], Iterator[bytes]], *, digest: Digest | None, size: int | None,
                 diff_id: Digest | None, compression: str | None, what: str) -> None:
        super().__init__(name=f"ocikit-layer-{what}", daemon=True)
        self.source = source
        self.expected_digest = digest
        self.expected_size = size
        self.expected_diff_id = diff_id
        self.compression_hint = compression
        self.what = what
        self.q: queue.Queue[Any] = queue.Queue(QUEUE_DEPTH)
        self.stop = threading.Event()
        self.compressed = hashlib.new(digest.algorithm if digest else "sha256")
        self.uncompressed = hashlib.new(diff_id.algorithm if diff_id else "sha256")
        self.compressed_size = 0
        self.uncompressed_size = 0
        self.compression: str | None = None
        self.digest: Digest | None = None
        self.diff_id: Digest | None = None

    # -- plumbing
    def _put(self, item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                self.q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _emit(self, data: bytes) -> None:
        if data:
            self.uncompressed.update(data)
            self.uncompressed_size += len(data)
            self._put(data)

    def _compressed_chunks(self) -> Iterator[bytes]:
        limit = self.expected_size
        for chunk in self.source():
            if self.stop.is_set():
                raise _Stopped
            if not chunk:
                continue
            if type(chunk) is not bytes:
                # a memoryview or bytearray from a caller: copied, so a buffer the caller reuses
                # cannot change under the reader (it is read on in this thread)
                chunk = bytes(chunk)
            self.compressed.update(chunk)
            self.compressed_size += len(chunk)
            if limit is not None and self.compressed_size > limit:
                raise SizeInvalid(f"{self.what}: more than the expected {limit} bytes",
                                  expected=limit, actual=self.compressed_size)
            yield chunk

    def run(self) -> None:
        try:
            self._run()
            self._put(_END)
        except _Stopped:
            return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            try:
                self._put(_Failure(e))
            except _Stopped:
                return

    def _run(self) -> None:
        chunks = self._compressed_chunks()
        first = b""
        for first in chunks:
            break
        # a few bytes are enough for the magic; the first chunk is normally larger
        while len(first) < 4:
            nxt = next(chunks, None)
            if nxt is None:
                break
            first += nxt
        self.compression = detect_compression(first)

        def all_chunks() -> Iterator[bytes]:
            if first:
                yield first
            yield from chunks

        if self.compression == "gzip":
            self._gunzip(all_chunks())
        elif self.compression == "zstd":
            self._unzstd(all_chunks())
        else:
            for c in all_chunks():
                self._emit(c)
        self._finish()

    def _gunzip(self, chunks: Iterator[bytes]) -> None:
        # igzip.GzipFile (ISA-L) reads ~2x faster than zlib here, and far faster than an
        # ISA-L decompressobj driven with max_length; it handles concatenated members too.
        from isal import igzip

        g = igzip.GzipFile(fileobj=_ChunkFile(chunks), mode="rb")
        emit = self._emit
        n = FIRST_OUT_CHUNK
        try:
            while True:
                out = g.read(n)
                if not out:
                    break
                emit(out)
                n = min(2 * n, OUT_CHUNK)
        except EOFError:
            raise LayerInvalid(f"{self.what}: truncated gzip stream "
                               f"({self.compressed_size} bytes read)") from None
        except (OSError, ValueError) as e:     # BadGzipFile, isal errors
            raise LayerInvalid(f"{self.what}: corrupt gzip stream: {e}") from None
        for _ in chunks:   # anything after the last member still counts for the digest
            pass

    def _unzstd(self, chunks: Iterator[bytes]) -> None:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(_ChunkFile(chunks), read_size=READ_CHUNK,
                                                            read_across_frames=True)
        n = FIRST_OUT_CHUNK
        try:
            while True:
                out = reader.read(n)
                if not out:
                    break
                self._emit(out)
                n = min(2 * n, OUT_CHUNK)
        except zstandard.ZstdError as e:
            raise LayerInvalid(f"{self.what}: corrupt zstd stream: {e}") from None
        for _ in chunks:   # anything the decoder did not need still counts for the digest
            pass

    def _finish(self) -> None:
        alg = self.compressed.name
        self.digest = Digest(f"{alg}:{self.compressed.hexdigest()}")
        self.diff_id = Digest(f"{self.uncompressed.name}:{self.uncompressed.hexdigest()}")
        if self.expected_size is not None and self.compressed_size != self.expected_size:
            raise SizeInvalid(f"{self.what}: expected {self.expected_size} bytes, got {self.compressed_size}",
                              expected=self.expected_size, actual=self.compressed_size)
        if self.expected_digest is not None and self.digest != self.expected_digest:
            raise DigestMismatch(self.expected_digest, self.digest, what=self.what)
        if self.expected_diff_id is not None and self.diff_id != self.expected_diff_id:
            raise DigestMismatch(self.expected_diff_id, self.diff_id,
                                 message=f"{self.what}: diff_id mismatch: the config says "
                                         f"{self.expected_diff_id}, the uncompressed layer is {self.diff_id}")


# ---- the consumer: chunks -> tar members ------------------------------------------------------------


def _octal(field_: bytes, what: str, offset: int) -> int:
    if field_ and field_[0] & 0x80:        # GNU base-256
        n = int.from_bytes(field_[1:], "big")
        if field_[0] & 0x40:               # negative
            n -= 1 << (8 * (len(field_) - 1) + 6)
        return n
    s = field_.split(b"\0", 1)[0].strip(b" ")
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise LayerInvalid(f"{what}: bad numeric field {field_!r} in the tar header at offset {offset}") from None


_HEADER = struct.Struct("100s24s12s12s8sc100s6s2x64s8s8s155s12x")
"""name, mode+uid+gid, size, mtime, chksum, typeflag, linkname, magic, (version), uname+gname,
devmajor, devminor, prefix: fields that vary little are kept together, parsed once per value."""
_CACHE_LIMIT = 512
"""Distinct mode/uid/gid and uname/gname fields remembered per layer (a hostile layer with more
only loses the shortcut)."""
_ZERO_BLOCK = bytes(512)
_TYPES = {b"0": REGULAR, b"\0": REGULAR, b"7": REGULAR, b"1": HARDLINK, b"2": SYMLINK, b"3": CHARDEV,
          b"4": BLOCKDEV, b"5": DIRECTORY, b"6": FIFO}


def _num(field_: bytes, what: str, offset: int) -> int:
    """A numeric header field: octal (NUL/space padded) or GNU base-256."""
    try:
        return int(field_.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        return _octal(field_, what, offset)


def _ids(field_: bytes, what: str, offset: int) -> tuple[int, int, int]:
    """(mode & 0o7777, uid, gid) from the header's three adjacent 8-byte fields."""
    return (_num(field_[:8], what, offset) & 0o7777, _num(field_[8:16], what, offset),
            _num(field_[16:], what, offset))


def _names(field_: bytes) -> tuple[str, str]:
    """(uname, gname) from the header's two adjacent 32-byte fields."""
    return _text(_cstr(field_[:32])), _text(_cstr(field_[32:]))


def _check_signed(hdr: bytes, chksum: int, what: str, offset: int) -> None:
    """Accept checksums computed over signed chars (old Sun tar), as tarfile does; else fail."""
    signed = sum(b - 256 if b > 127 else b for b in hdr) - sum(
        b - 256 if b > 127 else b for b in hdr[148:156]) + 256
    if chksum != signed:
        kind = "not a tar archive" if offset == 0 else "corrupt tar header"
        raise LayerInvalid(f"{what}: {kind}: bad header checksum at offset {offset}")


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _cstr(b: bytes) -> bytes:
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _parse_pax(data: bytes, what: str, offset: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:        # NUL padding
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise LayerInvalid(f"{what}: malformed PAX header at offset {offset}")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise LayerInvalid(f"{what}: malformed PAX record length at offset {offset}") from None
        end = pos + length
        if length <= 0 or end > n or data[end - 1:end] != b"\n":
            raise LayerInvalid(f"{what}: malformed PAX record at offset {offset}")
        rec = data[sp + 1:end - 1]
        eq = rec.find(b"=")
        if eq <= 0:
            raise LayerInvalid(f"{what}: malformed PAX record at offset {offset}")
        out[rec[:eq].decode("utf-8", "surrogateescape")] = rec[eq + 1:]
        pos = end
    return out


def _pax_time_ns(v: bytes, what: str) -> int:
    s = v.decode("ascii", "replace").strip()
    try:
        neg = s.startswith("-")
        whole, _, frac = s.lstrip("-").partition(".")
        ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
        return -ns if neg else ns
    except ValueError:
        raise LayerInvalid(f"{what}: bad PAX time {s!r}") from None


class LayerReader:
    """Iterate the members of one layer; see the module docstring. Use as a context manager."""

    def __init__(self, source: Callable[[], Iterator[bytes]], *, digest: str | None = None,
                 size: int | None = None, diff_id: str | None = None, what: str | None = None) -> None:
        d = Digest(digest) if digest else None
        self.what = what or (f"layer {d}" if d else "layer")
        self._producer = _Producer(source, digest=d, size=size, diff_id=Digest(diff_id) if diff_id else None,
                                   compression=None, what=self.what)
        self._buf = b""
        self._pos = 0
        self._offset = 0          # uncompressed offset of _buf[_pos]
        self._eof = False         # the producer has no more data
        self._remaining = 0       # data bytes of the current member not yet consumed
        self._padding = 0
        self._done = False
        self._started = False
        self._global_pax: dict[str, bytes] = {}
        self._ids: dict[bytes, tuple[int, int, int]] = {}
        self._names: dict[bytes, tuple[str, str]] = {}

    # -- results
    @property
    def digest(self) -> Digest | None:
        """The compressed blob's digest, once iteration has finished."""
        return self._producer.digest

    @property
    def diff_id(self) -> Digest | None:
        """The sha256 of the uncompressed tar, once iteration has finished."""
        return self._producer.diff_id

    @property
    def compression(self) -> str | None:
        return self._producer.compression

    @property
    def size(self) -> int:
        """Uncompressed bytes so far."""
        return self._producer.uncompressed_size

    @property
    def compressed_size(self) -> int:
        return self._producer.compressed_size

    # -- lifecycle
    def __enter__(self) -> "LayerReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> "LayerReader":
        """Start reading and decompressing in the background now, before the first member is
        asked for (at most ``QUEUE_DEPTH`` chunks are read ahead). Idempotent."""
        if not self._started:
            self._started = True
            self._producer.start()
        return self

    def close(self) -> None:
        """Stop the background thread (a no-op after a complete read)."""
        p = self._producer
        if p.is_alive():
            p.stop.set()
            while p.is_alive():
                try:
                    p.q.get(timeout=0.05)
                except queue.Empty:
                    pass
            p.join()

    # -- chunk plumbing
    def _next_chunk(self) -> bool:
        if self._eof:
            return False
        if not self._started:
            self.start()
        item = self._producer.q.get()
        if item is _END:
            self._eof = True
            return False
        if isinstance(item, _Failure):
            self._eof = True
            err = item.error
            if isinstance(err, OcikitError):
                raise err
            raise LayerInvalid(f"{self.what}: {err}") from err
        self._offset += len(self._buf) - self._pos
        self._buf = item
        self._pos = 0
        return True

    def _read_exact(self, n: int) -> bytes:
        """Exactly n bytes (fewer only at the end of the stream)."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            out = self._buf[self._pos:self._pos + n]
            self._pos += n
            return out
        parts = [self._buf[self._pos:]]
        got = avail
        self._pos = len(self._buf)
        while got < n and self._next_chunk():
            take = min(n - got, len(self._buf))
            parts.append(self._buf[:take])
            self._pos = take
            got += take
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail >= n:
                self._pos += n
                return
            n -= avail
            self._pos = len(self._buf)
            if not self._next_chunk():
                raise LayerInvalid(f"{self.what}: truncated tar archive (unexpected end of data)")

    def _position(self) -> int:
        return self._offset + self._pos

    # -- member data
    def data(self) -> Iterator[memoryview]:
        """The current member's data, in chunks (memoryviews valid until the next one)."""
        while self._remaining > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                if not self._next_chunk():
                    raise LayerInvalid(f"{self.what}: truncated tar archive (file data cut short)")
                continue
            take = min(avail, self._remaining)
            mv = memoryview(self._buf)[self._pos:self._pos + take]
            self._pos += take
            self._remaining -= take
            yield mv

    def read_data(self, limit: int = 16 << 20) -> bytes:
        """The current member's data as bytes (for small members: refuses more than ``limit``)."""
        if self._remaining > limit:
            raise LayerInvalid(f"{self.what}: member too large to read into memory ({self._remaining} bytes)")
        return b"".join(bytes(c) for c in self.data())

    def write_data(self, fd: int) -> int:
        """Write the current member's data to a file descriptor; returns the byte count."""
        n = self._remaining
        pos = self._pos
        if 0 < n <= len(self._buf) - pos:      # fast path: all of it is in this chunk
            mv = memoryview(self._buf)[pos:pos + n]
            self._pos = pos + n
            self._remaining = 0
            w = os.write(fd, mv)
            while w < len(mv):       # a short write (a full disk reports ENOSPC on the next)
                mv = mv[w:]
                w = os.write(fd, mv)
            return n
        n = 0
        write = os.write
        for mv in self.data():
            while mv:
                w = write(fd, mv)
                n += w
                mv = mv[w:]
        return n

    # -- members
    def __iter__(self) -> Iterator[TarMember]:
        while True:
            m = self.next()
            if m is None:
                return
            yield m

    def next(self) -> TarMember | None:
        """The next member, or None at the end (after verifying the digests)."""
        if self._done:
            return None
        skip = self._remaining + self._padding
        if skip:
            self._remaining = self._padding = 0
            if len(self._buf) - self._pos >= skip:
                self._pos += skip
            else:
                self._skip(skip)
        pax: dict[str, bytes] | None = None
        longname: bytes | None = None
        longlink: bytes | None = None
        what = self.what
        while True:
            pos = self._pos
            offset = self._offset + pos
            # fast path: the whole header is in the current chunk
            if len(self._buf) - pos >= 512:
                hdr = self._buf[pos:pos + 512]
                self._pos = pos + 512
            else:
                hdr = self._read_exact(512)
                if len(hdr) < 512:
                    if not hdr and offset == 0:
                        raise LayerInvalid(f"{what}: empty layer (not a tar archive)")
                    if hdr.strip(b"\0") or offset == 0:
                        raise LayerInvalid(f"{what}: truncated tar archive at offset {offset}")
                    # missing end-of-archive blocks: tolerated (GNU tar warns, Go accepts)
                    self._finish()
                    return None
            (name_f, ids_f, size_f, mtime_f, chk_f, tflag_b, link_f, magic,
             names_f, major_f, minor_f, prefix_f) = _HEADER.unpack(hdr)
            try:
                chksum = int(chk_f.rstrip(b"\0 ") or b"0", 8)
            except ValueError:
                try:
                    chksum = _num(chk_f, what, offset)
                except LayerInvalid:
                    kind = "not a tar archive" if offset == 0 else "corrupt tar header"
                    raise LayerInvalid(f"{what}: {kind}: bad header checksum field at offset {offset}") from None
            # The unsigned sum of the header's bytes, its checksum field counted as spaces, in C:
            # Adler-32's first half is (1 + the sum of the bytes) mod 65521, exactly 1 + the sum
            # for at most 256 bytes (256 * 255 < 65521), so three pieces around the field do.
            if chksum != (_adler32(hdr[:148]) & 0xFFFF) + (_adler32(hdr[156:412]) & 0xFFFF) + \
                    (_adler32(hdr[412:]) & 0xFFFF) + 253:
                if hdr != _ZERO_BLOCK:
                    _check_signed(hdr, chksum, what, offset)
                else:
                    self._finish()
                    return None
            try:
                size = int(size_f.rstrip(b"\0 ") or b"0", 8)
            except ValueError:
                size = _num(size_f, what, offset)
            if size < 0:
                raise LayerInvalid(f"{what}: negative size in the tar header at offset {offset}")
            if tflag_b in b"xgLK" and tflag_b:
                if size > _MAX_META:
                    raise LayerInvalid(f"{what}: {size}-byte extended header at offset {offset} is too large")
                data = self._read_exact(size)
                if len(data) < size:
                    raise LayerInvalid(f"{what}: truncated tar archive at offset {offset}")
                self._skip(-size % 512)
                if tflag_b == b"x":
                    if pax is None:
                        pax = {}
                    pax.update(_parse_pax(data, what, offset))
                elif tflag_b == b"g":
                    self._global_pax.update(_parse_pax(data, what, offset))
                elif tflag_b == b"L":
                    longname = _cstr(data)
                else:
                    longlink = _cstr(data)
                continue
            break

        tflag = _TYPES.get(tflag_b)
        if tflag is None:
            tflag = tflag_b.decode("latin-1")
            if tflag == "S" or (pax and any(k.startswith("GNU.sparse") for k in pax)):
                raise LayerInvalid(f"{what}: sparse members are not supported (offset {offset})")
            if tflag in ("V", "M", "N"):
                raise LayerInvalid(f"{what}: unsupported tar member type {tflag!r} at offset {offset}")
            tflag = REGULAR   # POSIX: unknown types read as regular files
        if longname is not None:
            name_b = longname
        else:
            i = name_f.find(0)
            name_b = name_f if i < 0 else name_f[:i]
            if magic == b"ustar\x00":
                i = prefix_f.find(0)
                if i != 0:
                    name_b = (prefix_f if i < 0 else prefix_f[:i]) + b"/" + name_b
        if longlink is not None:
            link_b = longlink
        else:
            i = link_f.find(0)
            link_b = link_f if i < 0 else link_f[:i]
        ids = self._ids.get(ids_f)
        if ids is None:
            ids = _ids(ids_f, what, offset)
            if len(self._ids) < _CACHE_LIMIT:
                self._ids[ids_f] = ids
        try:
            mtime = int(mtime_f.rstrip(b"\0 ") or b"0", 8)
        except ValueError:     # base-256 or junk: the careful path
            mtime = _num(mtime_f, what, offset)
        if magic[:5] == b"ustar":
            names = self._names.get(names_f)
            if names is None:
                names = _names(names_f)
                if len(self._names) < _CACHE_LIMIT:
                    self._names[names_f] = names
        else:
            names = ("", "")
        m = TarMember(name_b.decode("utf-8", "surrogateescape"), tflag, ids[0], ids[1], ids[2],
                      size, mtime * 1_000_000_000,
                      link_b.decode("utf-8", "surrogateescape") if link_b else "", names[0], names[1],
                      0, 0, {}, offset)
        if (tflag == CHARDEV or tflag == BLOCKDEV) and magic[:5] == b"ustar":
            m.devmajor = _num(major_f, what, offset)
            m.devminor = _num(minor_f, what, offset)
        if self._global_pax:
            pax = {**self._global_pax, **(pax or {})}
        if pax:
            self._apply_pax(m, pax, offset)
        if tflag == REGULAR:
            self._remaining = m.size
            self._padding = -m.size % 512
        else:
            # header-only types (links, directories, devices, fifos): a size field is ignored,
            # as Go's archive/tar and Python's tarfile do
            m.size = 0
        return m

    def _apply_pax(self, m: TarMember, attrs: dict[str, bytes], offset: int) -> None:
        for k, v in attrs.items():
            if k == "path":
                m.name = _text(v)
            elif k == "linkpath":
                m.linkname = _text(v)
            elif k == "size":
                try:
                    m.size = int(v)
                except ValueError:
                    raise LayerInvalid(f"{self.what}: bad PAX size at offset {offset}") from None
                if m.size < 0:
                    raise LayerInvalid(f"{self.what}: negative PAX size at offset {offset}")
            elif k == "uid" or k == "gid":
                try:
                    setattr(m, k, int(v))
                except ValueError:
                    raise LayerInvalid(f"{self.what}: bad PAX {k} at offset {offset}") from None
            elif k == "mtime":
                m.mtime_ns = _pax_time_ns(v, self.what)
            elif k == "uname":
                m.uname = _text(v)
            elif k == "gname":
                m.gname = _text(v)
            elif k.startswith("SCHILY.xattr."):
                m.xattrs[k[13:]] = v
            elif k.startswith("LIBARCHIVE.xattr."):
                name = k[17:]
                try:
                    from urllib.parse import unquote_to_bytes
                    name = unquote_to_bytes(name).decode("utf-8", "surrogateescape")
                    m.xattrs[name] = base64.b64decode(v + b"=" * (-len(v) % 4))
                except ValueError:
                    raise LayerInvalid(f"{self.what}: bad LIBARCHIVE.xattr value at offset {offset}") from None
            elif k.startswith("GNU.sparse"):
                raise LayerInvalid(f"{self.what}: sparse file {m.name!r}: sparse members are not supported")

    def _finish(self) -> None:
        """After the end-of-archive marker: drain and verify."""
        self._done = True
        self._buf = b""
        self._pos = 0
        while self._next_chunk():   # raises the producer's verification error, if any
            self._buf = b""
            self._pos = 0

    def drain(self) -> None:
        """Read the rest of the layer without looking at it, verifying the digests."""
        for _ in self:
            pass


# ---- opening a layer from a Store ------------------------------------------------------------------


def _file_source(path: str) -> Callable[[], Iterator[bytes]]:
    def gen() -> Iterator[bytes]:
        with open(path, "rb", buffering=0) as f:
            n = FIRST_OUT_CHUNK      # a short first read, as for the first output (see there)
            while True:
                b = f.read(n)
                if not b:
                    return
                yield b
                n = READ_CHUNK
    return gen


def _async_source(store: Store, desc: Descriptor, opts: Options,
                  loop: asyncio.AbstractEventLoop | None) -> Callable[[], Iterator[bytes]]:
    def gen() -> Iterator[bytes]:
        import asyncio

        agen: AsyncIterator[bytes] = store.blob_chunks(desc, opts)
        if loop is not None:
            try:
                while True:
                    fut = asyncio.run_coroutine_threadsafe(agen.__anext__(), loop)  # type: ignore[arg-type]
                    try:
                        yield fut.result()
                    except StopAsyncIteration:
                        return
            finally:
                asyncio.run_coroutine_threadsafe(agen.aclose(), loop)  # type: ignore[attr-defined]
        else:
            own = asyncio.new_event_loop()
            try:
                while True:
                    try:
                        yield own.run_until_complete(agen.__anext__())  # type: ignore[arg-type]
                    except StopAsyncIteration:
                        return
            finally:
                own.run_until_complete(agen.aclose())  # type: ignore[attr-defined]
                own.close()
    return gen


def open_layer(store: Store, desc: Descriptor, *, diff_id: str | None = None, opts: Options = DEFAULT_OPTIONS,
               loop: asyncio.AbstractEventLoop | None = None) -> LayerReader:
    """A :class:`LayerReader` over a layer blob of any Store, checking ``desc``'s digest and size
    and, when given, the config's ``diff_id``.

    Local layouts are read straight from their blob files. Other stores are read through their
    async ``blob_chunks``: pass ``loop`` (the running loop that owns the store) when calling from
    a worker thread of an async program; without it the reader drives the store on a private loop.
    """
    path_of = getattr(store, "blob_path", None)
    if callable(path_of):
        path = path_of(desc.digest)
        if isinstance(path, str) and os.path.isfile(path):
            return LayerReader(_file_source(path), digest=desc.digest, size=desc.size, diff_id=diff_id)
    return LayerReader(_async_source(store, desc, opts, loop), digest=desc.digest, size=desc.size,
                       diff_id=diff_id)


def open_layer_file(path: str, *, digest: str | None = None, size: int | None = None,
                    diff_id: str | None = None) -> LayerReader:
    """A :class:`LayerReader` over a layer in a file (a tarball, compressed or not)."""
    return LayerReader(_file_source(path), digest=digest, size=size, diff_id=diff_id,
                       what=f"layer {digest}" if digest else f"layer {path}")


def open_layer_chunks(chunks: Iterable[bytes], *, digest: str | None = None, size: int | None = None,
                      diff_id: str | None = None, what: str | None = None) -> LayerReader:
    """A :class:`LayerReader` over an iterable of blob bytes (consumed in a background thread;
    bytes-like chunks other than ``bytes`` are copied as they are taken)."""
    return LayerReader(lambda: iter(chunks), digest=digest, size=size, diff_id=diff_id, what=what)


__all__ = [
    "BLOCKDEV", "CHARDEV", "DIRECTORY", "FIFO", "HARDLINK", "LayerReader", "REGULAR", "SYMLINK", "TarMember",
    "detect_compression", "open_layer", "open_layer_chunks", "open_layer_file",
]
