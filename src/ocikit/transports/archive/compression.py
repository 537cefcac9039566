"""Recognising and undoing the compression of archives and layers, streamed, memory flat.

Two directions: :func:`open_decompressed` pulls (a file-like object that yields plain bytes)
and :class:`DecompressingWriter` pushes (feed compressed chunks, the plain bytes go to a sink
in bounded pieces). gzip goes through isal (several times zlib's speed), multi-member gzip
streams (pigz) included; zstd through ``zstandard``; bzip2 and xz through the stdlib.
"""

from __future__ import annotations

import io
from typing import IO, Callable

from ...core.errors import LayerInvalid

OUT_PIECE = 256 << 10

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def detect_compression(head: bytes) -> str | None:
    """``gzip``, ``zstd``, ``bzip2``, ``xz`` from a stream's first bytes; ``None``: not compressed."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def open_decompressed(raw: IO[bytes], kind: str) -> IO[bytes]:
    """A readable file object giving the plain bytes of ``raw`` compressed with ``kind``."""
    if kind == "gzip":
        from isal import igzip
        return igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)  # type: ignore[return-value]
    if kind == "bzip2":
        import bz2
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if kind == "xz":
        import lzma
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    raise LayerInvalid(f"unsupported compression {kind!r}")


class DecompressingWriter:
    """Push compressed bytes in with :meth:`write`; plain bytes reach ``sink`` in pieces of at most 1 MiB.

    The kind is sniffed from the first bytes (``None``: the stream passes through unchanged).
    :meth:`close` checks the stream ended cleanly.
    """

    def __init__(self, sink: Callable[[bytes], object], *, what: str = "layer") -> None:
        self.sink = sink
        self.what = what
        self.kind: str | None = None
        self._head = b""
        self._started = False
        self._gz: object | None = None
        self._zw: object | None = None
        self._other: object | None = None

    def write(self, chunk: bytes) -> None:
        if not self._started:
            self._head += chunk
            if len(self._head) < 8:
                return
            self._start()
            chunk, self._head = self._head, b""
        self._feed(chunk)

    def _start(self) -> None:
        self._started = True
        self.kind = detect_compression(self._head)
        if self.kind == "gzip":
            from isal import isal_zlib
            self._gz = isal_zlib.decompressobj(31)
        elif self.kind == "zstd":
            import zstandard
            self._zw = zstandard.ZstdDecompressor().stream_writer(_SinkFile(self.sink), write_size=1 << 20,
                                                                  closefd=False)
        elif self.kind == "bzip2":
            import bz2
            self._other = bz2.BZ2Decompressor()
        elif self.kind == "xz":
            import lzma
            self._other = lzma.LZMADecompressor()

    def _feed(self, data: bytes) -> None:
        try:
            if self.kind is None:
                if data:
                    self.sink(data)
            elif self.kind == "gzip":
                self._feed_gzip(data)
            elif self.kind == "zstd":
                self._zw.write(data)  # type: ignore[union-attr]
            else:
                self._feed_other(data)
        except LayerInvalid:
            raise
        except Exception as e:  # zlib.error, zstd.ZstdError, OSError, EOFError, ...
            if isinstance(e, OSError) and e.errno is not None:
                raise
            raise LayerInvalid(f"{self.what}: cannot decompress ({self.kind}): {e}") from None

    def _feed_gzip(self, data: bytes) -> None:
        from isal import isal_zlib

        pending = data
        while True:
            d = self._gz
            if d.eof:  # type: ignore[union-attr]
                if not pending.strip(b"\x00"):
                    return  # nothing, or zero padding, after the last member
                d = self._gz = isal_zlib.decompressobj(31)
            out = d.decompress(pending, OUT_PIECE)  # type: ignore[union-attr]
            if out:
                self.sink(out)
            if d.eof:  # type: ignore[union-attr]
                pending = d.unused_data  # type: ignore[union-attr]
                if not pending:
                    return
                continue
            pending = d.unconsumed_tail  # type: ignore[union-attr]
            if not pending and len(out) < OUT_PIECE:
                return

    def _feed_other(self, data: bytes) -> None:
        d = self._other
        while True:
            out = d.decompress(data, OUT_PIECE)  # type: ignore[union-attr]
            if out:
                self.sink(out)
            data = b""
            if d.eof or d.needs_input:  # type: ignore[union-attr]
                return

    def close(self) -> None:
        if not self._started:
            self._start()
            head, self._head = self._head, b""
            self._feed(head)
        try:
            if self.kind == "gzip":
                d = self._gz
                if not d.eof:  # type: ignore[union-attr]
                    rest = d.flush()  # type: ignore[union-attr]
                    if rest:
                        self.sink(rest)
                    raise LayerInvalid(f"{self.what}: gzip stream is truncated")
            elif self.kind == "zstd":
                self._zw.flush()  # type: ignore[union-attr]
            elif self.kind in ("bzip2", "xz") and not self._other.eof:  # type: ignore[union-attr]
                raise LayerInvalid(f"{self.what}: {self.kind} stream is truncated")
        except LayerInvalid:
            raise
        except Exception as e:
            raise LayerInvalid(f"{self.what}: cannot decompress ({self.kind}): {e}") from None


class _SinkFile(io.RawIOBase):
    def __init__(self, sink: Callable[[bytes], object]) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self._sink(bytes(b))
        return len(b)
