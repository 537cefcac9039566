"""Read a layer blob as a stream of tar members, verifying its digest and diff_id on the way.

A :class:`LayerReader` turns the compressed bytes of a layer (gzip, zstd or plain tar; the
compression is detected from the magic bytes, so a mislabelled Docker layer still reads)
into :class:`~ocikit.layers.tarparse.TarMember` headers and, for each regular file, the
file's data:

    with open_layer(store, desc, diff_id=config.diff_ids[i]) as layer:
        for member in layer:
            if member.is_file:
                for chunk in layer.data():      # memoryviews, valid until the next chunk
                    ...

The blob is read, hashed and decompressed in a background thread
(:class:`~ocikit.layers.decompress.Decompressor`), which hands fixed-size chunks of the tar
stream to this reader through a small bounded queue. When the archive ends, the rest of the
stream is drained and both digests are checked: :class:`~ocikit.errors.DigestMismatch` if
either is wrong, :class:`~ocikit.errors.LayerInvalid` for a stream that is not a tar archive
or is truncated, :class:`~ocikit.errors.LayerLimitExceeded` past the bounds of
:class:`~ocikit.layers.limits.LayerLimits`. A consumer acting on members must treat its work
as unverified until iteration has finished without an error.

The tar parser is a small streaming one (ustar, GNU long names, PAX headers with
``SCHILY.xattr.*`` / ``LIBARCHIVE.xattr.*``, base-256 numbers; the fields and records are
read by :mod:`~ocikit.layers.tarparse`); it is several times faster than :mod:`tarfile` and
never seeks.
"""

from __future__ import annotations

import os
import queue
from zlib import adler32 as _adler32
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..content import DEFAULT_OPTIONS, Options, Store
from ..digest import Digest
from ..errors import LayerInvalid, OcikitError
from ..model import Descriptor
from .blobsource import file_source, store_source
from .decompress import END, Decompressor, Failure, detect_compression
from .limits import DEFAULT_LIMITS, LayerLimits
from .tarparse import (BLOCKDEV, CACHE_LIMIT, CHARDEV, DIRECTORY, FIFO, HARDLINK, HEADER, REGULAR, SYMLINK, TYPES,
                       ZERO_BLOCK, GlobalPax, TarMember, apply_pax, check_signed, cstr, device, mtime_field, num,
                       parse_pax)
from .tarparse import ids as parse_ids
from .tarparse import names as parse_names

if TYPE_CHECKING:
    import asyncio


class LayerReader:
    """Iterate the members of one layer; see the module docstring. Use as a context manager."""

    def __init__(self, source: Callable[[], Iterator[bytes]], *, digest: str | None = None,
                 size: int | None = None, diff_id: str | None = None, what: str | None = None,
                 limits: LayerLimits = DEFAULT_LIMITS) -> None:
        d = Digest(digest) if digest else None
        self.what = what or (f"layer {d}" if d else "layer")
        self.limits = limits
        self._producer = Decompressor(source, digest=d, size=size, diff_id=Digest(diff_id) if diff_id else None,
                                      what=self.what, limits=limits)
        self._buf = b""
        self._pos = 0
        self._offset = 0          # uncompressed offset of _buf[_pos]
        self._eof = False         # the producer has no more data
        self._remaining = 0       # data bytes of the current member not yet consumed
        self._padding = 0
        self._done = False
        self._started = False
        self._global_pax = GlobalPax(limits.max_global_pax, limits.max_global_pax_records)
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
        if item is END:
            self._eof = True
            return False
        if isinstance(item, Failure):
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
             names_f, major_f, minor_f, prefix_f) = HEADER.unpack(hdr)
            try:
                chksum = int(chk_f.rstrip(b"\0 ") or b"0", 8)
            except ValueError:
                try:
                    chksum = num(chk_f, what, offset)
                except LayerInvalid:
                    kind = "not a tar archive" if offset == 0 else "corrupt tar header"
                    raise LayerInvalid(f"{what}: {kind}: bad header checksum field at offset {offset}") from None
            # The unsigned sum of the header's bytes, its checksum field counted as spaces, in C:
            # Adler-32's first half is (1 + the sum of the bytes) mod 65521, exactly 1 + the sum
            # for at most 256 bytes (256 * 255 < 65521), so three pieces around the field do.
            if chksum != (_adler32(hdr[:148]) & 0xFFFF) + (_adler32(hdr[156:412]) & 0xFFFF) + \
                    (_adler32(hdr[412:]) & 0xFFFF) + 253:
                if hdr != ZERO_BLOCK:
                    check_signed(hdr, chksum, what, offset)
                else:
                    self._finish()
                    return None
            try:
                size = int(size_f.rstrip(b"\0 ") or b"0", 8)
            except ValueError:
                size = num(size_f, what, offset)
            if size < 0:
                raise LayerInvalid(f"{what}: negative size in the tar header at offset {offset}")
            if tflag_b in b"xgLK" and tflag_b:
                if size > self.limits.max_extended_header:
                    raise LayerInvalid(f"{what}: {size}-byte extended header at offset {offset} is too large")
                data = self._read_exact(size)
                if len(data) < size:
                    raise LayerInvalid(f"{what}: truncated tar archive at offset {offset}")
                self._skip(-size % 512)
                if tflag_b == b"x":
                    if pax is None:
                        pax = {}
                    pax.update(parse_pax(data, what, offset))
                elif tflag_b == b"g":
                    self._global_pax.update(parse_pax(data, what, offset), what, offset)
                elif tflag_b == b"L":
                    longname = cstr(data)
                else:
                    longlink = cstr(data)
                continue
            break

        tflag = TYPES.get(tflag_b)
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
            ids = parse_ids(ids_f, what, offset)
            if len(self._ids) < CACHE_LIMIT:
                self._ids[ids_f] = ids
        try:
            mtime = int(mtime_f.rstrip(b"\0 ") or b"0", 8)
        except ValueError:     # base-256 or junk: the careful path
            mtime = mtime_field(mtime_f, what, offset)
        if magic[:5] == b"ustar":
            names = self._names.get(names_f)
            if names is None:
                names = parse_names(names_f)
                if len(self._names) < CACHE_LIMIT:
                    self._names[names_f] = names
        else:
            names = ("", "")
        m = TarMember(name_b.decode("utf-8", "surrogateescape"), tflag, ids[0], ids[1], ids[2],
                      size, mtime * 1_000_000_000,
                      link_b.decode("utf-8", "surrogateescape") if link_b else "", names[0], names[1],
                      0, 0, {}, offset)
        if (tflag == CHARDEV or tflag == BLOCKDEV) and magic[:5] == b"ustar":
            m.devmajor = device(major_f, "devmajor", what, offset)
            m.devminor = device(minor_f, "devminor", what, offset)
        if self._global_pax.records:
            pax = {**self._global_pax.records, **(pax or {})}
        if pax:
            apply_pax(m, pax, what, offset)
        if tflag == REGULAR:
            self._remaining = m.size
            self._padding = -m.size % 512
        else:
            # header-only types (links, directories, devices, fifos): a size field is ignored,
            # as Go's archive/tar and Python's tarfile do
            m.size = 0
        return m

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


# ---- opening a layer ---------------------------------------------------------------------------


def open_layer(store: Store, desc: Descriptor, *, diff_id: str | None = None, opts: Options = DEFAULT_OPTIONS,
               loop: asyncio.AbstractEventLoop | None = None, limits: LayerLimits = DEFAULT_LIMITS) -> LayerReader:
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
            return LayerReader(file_source(path), digest=desc.digest, size=desc.size, diff_id=diff_id,
                               limits=limits)
    return LayerReader(store_source(store, desc, opts, loop), digest=desc.digest, size=desc.size,
                       diff_id=diff_id, limits=limits)


def open_layer_file(path: str, *, digest: str | None = None, size: int | None = None,
                    diff_id: str | None = None, limits: LayerLimits = DEFAULT_LIMITS) -> LayerReader:
    """A :class:`LayerReader` over a layer in a file (a tarball, compressed or not)."""
    return LayerReader(file_source(path), digest=digest, size=size, diff_id=diff_id,
                       what=f"layer {digest}" if digest else f"layer {path}", limits=limits)


def open_layer_chunks(chunks: Iterable[bytes], *, digest: str | None = None, size: int | None = None,
                      diff_id: str | None = None, what: str | None = None,
                      limits: LayerLimits = DEFAULT_LIMITS) -> LayerReader:
    """A :class:`LayerReader` over an iterable of blob bytes (consumed in a background thread;
    bytes-like chunks other than ``bytes`` are copied as they are taken)."""
    return LayerReader(lambda: iter(chunks), digest=digest, size=size, diff_id=diff_id, what=what, limits=limits)


__all__ = [
    "BLOCKDEV", "CHARDEV", "DIRECTORY", "FIFO", "HARDLINK", "LayerReader", "REGULAR", "SYMLINK", "TarMember",
    "detect_compression", "open_layer", "open_layer_chunks", "open_layer_file",
]
