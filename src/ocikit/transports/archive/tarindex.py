"""Random access to the members of a tar archive without extracting it.

The archive is scanned once (headers only: names, offsets, sizes, link targets); member
bytes are then read with ``os.pread`` at their offsets, so many streams can read one
archive at once and nothing is held in memory. A compressed archive (``docker save | gzip``)
is first decompressed to a temporary file on disk.

Member names are normalised (``./a//b`` -> ``a/b``); a name or link target that would leave
the archive's root (``../x``, ``/etc/passwd``) makes the whole archive invalid.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterator

from ...core.digest import CHUNK
from ...core.errors import ArchiveInvalid, BlobUnknown
from .compression import detect_compression, open_decompressed

MAX_LINK_HOPS = 16


@dataclass(frozen=True)
class Member:
    """One tar member: its normalised name, where its bytes are, and what it is."""

    name: str
    offset: int
    size: int
    kind: str
    """``file``, ``dir``, ``symlink``, ``hardlink`` or ``other``."""
    target: str | None = None
    """For links: the normalised archive path the link points at."""


def normalise_name(name: str, archive: str) -> str:
    """``./a//b/`` -> ``a/b``; raises :class:`ArchiveInvalid` for names that escape the root."""
    if "\x00" in name:
        raise ArchiveInvalid(f"{archive}: member name {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise ArchiveInvalid(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveInvalid(f"{archive}: member {name!r} escapes the archive (path traversal)")
    return "/".join(parts)


def _link_target(member_name: str, linkname: str, kind: str, archive: str) -> str:
    if kind == "hardlink":
        return normalise_name(linkname, archive)
    if linkname.startswith("/"):
        raise ArchiveInvalid(f"{archive}: symlink {member_name!r} -> {linkname!r} points outside the archive")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member_name), linkname))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        raise ArchiveInvalid(f"{archive}: symlink {member_name!r} -> {linkname!r} points outside the archive")
    return "" if joined == "." else joined


class TarIndex:
    """A tar file indexed once; members served by offset.

    ``path`` may be a plain or compressed (gzip, zstd) tar. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, path: str, *, label: str | None = None) -> None:
        self.path = os.path.abspath(path)
        self.label = label or self.path
        self._tmpdir: str | None = None
        self.members: dict[str, Member] = {}
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise ArchiveInvalid(f"{self.label}: no such archive") from None
        except IsADirectoryError:
            raise ArchiveInvalid(f"{self.label}: is a directory, not an archive") from None
        try:
            self._fd = self._plain_fd(fd)
            self.stat = os.fstat(self._fd)
            self._scan()
        except BaseException:
            self.close()
            raise

    # ---- opening ---------------------------------------------------------------------------

    def _plain_fd(self, fd: int) -> int:
        """The fd of an uncompressed, seekable tar: ``fd`` itself or a decompressed temp copy."""
        import stat as st

        info = os.fstat(fd)
        if st.S_ISDIR(info.st_mode):
            os.close(fd)
            raise ArchiveInvalid(f"{self.label}: is a directory, not an archive")
        head = os.pread(fd, 8, 0)
        kind = detect_compression(head)
        if kind is None and st.S_ISREG(info.st_mode):
            return fd
        self._tmpdir = tempfile.mkdtemp(prefix="ocikit-archive-")
        tmp = os.path.join(self._tmpdir, "archive.tar")
        try:
            with os.fdopen(fd, "rb") as raw, open(tmp, "wb") as out:
                src = open_decompressed(raw, kind) if kind else raw
                try:
                    shutil.copyfileobj(src, out, CHUNK)
                except (OSError, EOFError, ValueError) as e:
                    if isinstance(e, OSError) and e.errno is not None:
                        raise
                    raise ArchiveInvalid(f"{self.label}: cannot decompress ({kind}): {e}") from None
        except BaseException:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            raise
        return os.open(tmp, os.O_RDONLY)

    def _scan(self) -> None:
        size = self.stat.st_size
        if size == 0:
            raise ArchiveInvalid(f"{self.label}: empty file, not a tar archive")
        f = os.fdopen(os.dup(self._fd), "rb")
        try:
            try:
                tf = tarfile.open(fileobj=f, mode="r:")
            except (tarfile.TarError, EOFError) as e:
                raise ArchiveInvalid(f"{self.label}: not a tar archive ({e})") from None
            try:
                while True:
                    try:
                        ti = tf.next()
                    except (tarfile.TarError, EOFError) as e:
                        raise ArchiveInvalid(f"{self.label}: damaged tar archive ({e})") from None
                    if ti is None:
                        break
                    self._add(ti, size)
            finally:
                tf.members = []
                tf.close()
        finally:
            f.close()

    def _add(self, ti: tarfile.TarInfo, archive_size: int) -> None:
        name = normalise_name(ti.name, self.label)
        if not name:
            return  # the root directory itself
        if ti.isreg():
            kind, target = "file", None
            if ti.offset_data + ti.size > archive_size:
                raise ArchiveInvalid(f"{self.label}: member {name!r} is truncated "
                                     f"({ti.size} bytes announced, the archive ends first)")
        elif ti.isdir():
            kind, target = "dir", None
        elif ti.issym():
            kind, target = "symlink", _link_target(name, ti.linkname, "symlink", self.label)
        elif ti.islnk():
            kind, target = "hardlink", _link_target(name, ti.linkname, "hardlink", self.label)
        else:
            kind, target = "other", None
        self.members[name] = Member(name, ti.offset_data, ti.size if kind == "file" else 0, kind, target)

    # ---- lookup ----------------------------------------------------------------------------

    def find(self, name: str) -> Member | None:
        """The regular file ``name`` names, following symlinks and hardlinks inside the archive."""
        try:
            cur = normalise_name(name, self.label)
        except ArchiveInvalid:
            return None
        for _ in range(MAX_LINK_HOPS):
            m = self.members.get(cur)
            if m is None:
                return None
            if m.kind == "file":
                return m
            if m.kind in ("symlink", "hardlink") and m.target:
                cur = m.target
                continue
            return None
        raise ArchiveInvalid(f"{self.label}: too many links resolving {name!r}")

    def require(self, name: str, what: str = "member") -> Member:
        m = self.find(name)
        if m is None:
            raise ArchiveInvalid(f"{self.label}: {what} {name!r} is missing from the archive")
        return m

    # ---- reading ---------------------------------------------------------------------------

    def read(self, member: Member, limit: int = 16 * 1024 * 1024) -> bytes:
        """A small member whole (manifests, configs, index.json); refuses more than ``limit`` bytes."""
        if member.size > limit:
            raise ArchiveInvalid(f"{self.label}: {member.name} is {member.size} bytes, more than {limit}")
        data = os.pread(self._fd, member.size, member.offset)
        if len(data) != member.size:
            raise ArchiveInvalid(f"{self.label}: {member.name} is truncated")
        return data

    def chunks(self, member: Member, start: int = 0, chunk: int = CHUNK) -> Iterator[bytes]:
        """Stream a member's bytes from ``start`` (synchronously)."""
        pos, end = member.offset + start, member.offset + member.size
        while pos < end:
            data = os.pread(self._fd, min(chunk, end - pos), pos)
            if not data:
                raise ArchiveInvalid(f"{self.label}: {member.name} is truncated")
            pos += len(data)
            yield data

    async def achunks(self, member: Member, chunk: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream a member's bytes, each read in a worker thread."""
        async for data in self.region_chunks(self._fd, member.offset, member.size, chunk):
            yield data

    @staticmethod
    async def region_chunks(fd: int, offset: int, size: int, chunk: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream ``size`` bytes at ``offset`` of ``fd``, each read in a worker thread."""
        import asyncio

        pos, end = offset, offset + size
        while pos < end:
            data = await asyncio.to_thread(os.pread, fd, min(chunk, end - pos), pos)
            if not data:
                raise BlobUnknown(f"blob region at {offset} is truncated")
            pos += len(data)
            yield data

    def open(self, member: Member) -> io.BufferedReader:
        """A read-only file object over one member (for decompressing it while streaming)."""
        return io.BufferedReader(_MemberRaw(self._fd, member), CHUNK)

    @property
    def fd(self) -> int:
        return self._fd

    def close(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
            self._fd = None  # type: ignore[assignment]
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> "TarIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _MemberRaw(io.RawIOBase):
    def __init__(self, fd: int, member: Member) -> None:
        self._fd = fd
        self._m = member
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._m.size - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._m.offset + self._pos)
        b[:len(data)] = data
        self._pos += len(data)
        return len(data)


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (os.pwrite may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def copy_range(in_fd: int, offset: int, size: int, out_fd: int) -> None:
    """Copy ``size`` bytes at ``offset`` of ``in_fd`` to the current position of ``out_fd``."""
    remaining = size
    pos = offset
    use_cfr = hasattr(os, "copy_file_range")
    while remaining > 0:
        n = 0
        if use_cfr:
            try:
                n = os.copy_file_range(in_fd, out_fd, min(remaining, 1 << 30), pos)
            except OSError:
                use_cfr = False
                continue
        else:
            data = os.pread(in_fd, min(remaining, CHUNK), pos)
            n = len(data)
            if n:
                view = memoryview(data)
                while view:
                    w = os.write(out_fd, view)
                    view = view[w:]
        if n == 0:
            raise ArchiveInvalid(f"source ended {remaining} bytes early while copying")
        pos += n
        remaining -= n
