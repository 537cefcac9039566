"""Directory metadata, applied last: the modes, owners, xattrs and times of unpacked directories.

A directory's mode may forbid the writes that fill it, and every write into it moves its
mtime, so an unpack records each directory's metadata (:class:`DirMeta`) as it goes and
applies it once every layer is in, children before parents (:func:`apply_all`). Directories
are opened one component at a time from the root without following symlinks, keeping the
ancestors of the current one open, so each is opened once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(slots=True)
class DirMeta:
    """What to set on a directory at the end; ``mode`` None: only restore its times (a lower
    directory a layer changed without an entry of its own)."""

    mode: int | None
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    xattrs: dict[str, bytes] | None


def apply_all(root_fd: int, dirs: dict[str, DirMeta], apply: Callable[[str, DirMeta, int], None]) -> None:
    """Call ``apply(rel, meta, fd)`` for every directory of ``dirs`` (resolved paths relative to
    the root open as ``root_fd``), deepest first; a directory that is gone is skipped."""
    opened: list[tuple[str, int]] = []       # the open ancestors of the current directory
    try:
        for rel in sorted(dirs, reverse=True):
            fd = _open_dir(root_fd, rel, opened)
            if fd is not None:
                apply(rel, dirs[rel], fd)
    finally:
        for _, fd in opened:
            os.close(fd)


def _open_dir(root_fd: int, rel: str, opened: list[tuple[str, int]]) -> int | None:
    """A descriptor of resolved directory ``rel``, walking from the deepest open ancestor
    one component at a time without following symlinks; kept in ``opened`` (a stack)."""
    while opened and not (rel == opened[-1][0] or rel.startswith(opened[-1][0] + "/")
                          or opened[-1][0] == ""):
        os.close(opened.pop()[1])
    if not opened:
        opened.append(("", os.dup(root_fd)))
    have, fd = opened[-1]
    if have == rel:
        return fd
    rest = rel[len(have) + 1:] if have else rel
    for part in rest.split("/"):
        try:
            fd = os.open(part, _DIR, dir_fd=fd)
        except OSError:
            return None
        have = f"{have}/{part}" if have else part
        opened.append((have, fd))
    return fd


__all__ = ["DirMeta", "apply_all"]
