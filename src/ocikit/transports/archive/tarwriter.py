"""Writing a tar archive member by member, file contents copied in the kernel.

Headers come from :class:`tarfile.TarInfo` (POSIX pax format, so any size and name works);
contents are appended with ``copy_file_range`` from the file (or archive region) that holds
them, never through Python buffers. Used to assemble archives atomically: write to a temp
file, :meth:`TarWriter.finish`, fsync, rename.
"""

from __future__ import annotations

import os
import tarfile

from .tarindex import copy_range

BLOCK = 512


class TarWriter:
    """Appends members to an open file descriptor (positioned at the start of an empty file)."""

    def __init__(self, fd: int, *, mtime: int = 0) -> None:
        self.fd = fd
        self.mtime = mtime
        self.names: set[str] = set()
        self._regions: dict[int, tuple[str, int]] = {}

    def _header_bytes(self, name: str, kind: bytes, size: int = 0, mode: int = 0o644, linkname: str = "") -> bytes:
        if name in self.names:
            raise ValueError(f"duplicate tar member {name!r}")
        self.names.add(name)
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.size = size
        ti.mode = mode
        ti.mtime = self.mtime
        ti.linkname = linkname
        return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def _header(self, name: str, kind: bytes, size: int = 0, mode: int = 0o644, linkname: str = "") -> None:
        self._write(self._header_bytes(name, kind, size, mode, linkname))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def _pad(self, size: int) -> None:
        rem = size % BLOCK
        if rem:
            self._write(b"\x00" * (BLOCK - rem))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", tarfile.DIRTYPE, mode=0o755)

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._header(name, tarfile.REGTYPE, len(data), mode)
        self._write(data)
        self._pad(len(data))

    def add_symlink(self, name: str, target: str) -> None:
        self._header(name, tarfile.SYMTYPE, mode=0o777, linkname=target)

    def add_region(self, name: str, in_fd: int, offset: int, size: int, mode: int = 0o644) -> None:
        """A member whose bytes are ``size`` bytes at ``offset`` of ``in_fd``."""
        self._header(name, tarfile.REGTYPE, size, mode)
        copy_range(in_fd, offset, size, self.fd)
        self._pad(size)

    def add_path(self, name: str, path: str, mode: int = 0o644) -> None:
        """A member with the contents of the file at ``path``."""
        fd = os.open(path, os.O_RDONLY)
        try:
            self.add_region(name, fd, 0, os.fstat(fd).st_size, mode)
        finally:
            os.close(fd)

    def begin_direct(self) -> int:
        """Start a member whose name and size are known only at the end; returns its header offset.

        Its bytes are then written with :meth:`write_direct`; :meth:`end_direct` fills in the
        header, or :meth:`cancel_direct` cuts the member off again. One at a time.
        """
        start = os.lseek(self.fd, 0, os.SEEK_END)
        self._write(b"\x00" * BLOCK)
        return start

    def write_direct(self, data: bytes) -> None:
        self._write(data)

    def end_direct(self, start: int, name: str, size: int, mode: int = 0o644) -> None:
        if name in self.names:
            raise ValueError(f"duplicate tar member {name!r}")
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = size, mode, self.mtime
        header = ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")  # one block, any size
        if len(header) != BLOCK:
            raise ValueError(f"tar member name {name!r} does not fit a single header block")
        self._pad(size)
        os.pwrite(self.fd, header, start)
        self.names.add(name)

    def cancel_direct(self, start: int) -> None:
        os.ftruncate(self.fd, start)
        os.lseek(self.fd, start, os.SEEK_SET)

    def reserve(self, name: str, size: int, mode: int = 0o644) -> tuple[int, int]:
        """A member of known name and size whose bytes are written later with ``os.pwrite`` at the
        returned data offset (several reserved members may be filled at once).

        Returns (header offset, data offset).
        """
        header = self._header_bytes(name, tarfile.REGTYPE, size, mode)
        start = os.lseek(self.fd, 0, os.SEEK_END)
        os.pwrite(self.fd, header, start)
        data = start + len(header)
        end = data + size + (-size % BLOCK)
        os.ftruncate(self.fd, end)
        self._regions[start] = (name, end)
        return start, data

    def abandon(self, start: int) -> None:
        """Turn a reserved member that could not be filled into an inert one, ``.ocikit-abandoned-N``."""
        name, end = self._regions.pop(start)
        self.names.discard(name)
        ti = tarfile.TarInfo(f".ocikit-abandoned-{start}")
        ti.size, ti.mode, ti.mtime = end - start - BLOCK, 0o600, self.mtime
        os.pwrite(self.fd, ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"), start)  # one block

    def finish(self) -> None:
        """The end-of-archive marker (two zero blocks)."""
        self._write(b"\x00" * (2 * BLOCK))
