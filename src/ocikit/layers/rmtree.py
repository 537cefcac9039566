"""Remove a directory tree without recursion and without following a symlink anywhere.

:func:`shutil.rmtree` recurses once per level, so a tree deeper than Python's recursion limit
(an unpack of a hostile layer leaves one) cannot be removed with it. :func:`remove_at` walks
the tree with an explicit stack and one open directory at a time, each opened relative to its
parent with ``O_NOFOLLOW``: a symlink is removed as a link, never followed, so nothing outside
the tree is touched. Going back up it opens ``..`` and checks that it is the directory it came
down from (device and inode), so a tree moved around while it is removed stops the removal
with an error rather than taking it elsewhere.
"""

from __future__ import annotations

import errno
import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` in directory ``dir_fd``, whatever it is (a file, a symlink, a whole tree);
    nothing if it does not exist."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    top = os.open(name, _DIR, dir_fd=dir_fd)
    try:
        _empty(top)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=dir_fd)


def remove_tree(path: str) -> None:
    """Remove ``path`` (a directory tree, a file or a symlink — not what it points to)."""
    parent, name = os.path.split(os.path.abspath(path))
    pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_at(pfd, name)
    finally:
        os.close(pfd)


def _empty(top: int) -> None:
    """Remove everything inside the directory open as ``top`` (which stays open, and the caller's)."""
    # the path from top down to the current directory: (name, dev, ino, subdirectories still to do)
    path: list[tuple[str, int, int, list[str]]] = []
    fd = top
    pending = _clear_files(fd)
    try:
        while True:
            if pending:
                sub = pending.pop()
                try:
                    nfd = os.open(sub, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    os.unlink(sub, dir_fd=fd)      # no longer a directory: whatever it is now
                    continue
                st = os.fstat(fd)
                path.append((sub, st.st_dev, st.st_ino, pending))
                if fd != top:
                    os.close(fd)
                fd = nfd
                pending = _clear_files(fd)
                continue
            if not path:
                return
            name, dev, ino, pending = path.pop()
            up = os.open("..", _DIR, dir_fd=fd)
            os.close(fd)
            fd = up
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (dev, ino):
                raise OSError(errno.ESTALE, "the tree changed while it was removed")
            os.rmdir(name, dir_fd=fd)
    finally:
        if fd != top:
            os.close(fd)


def _clear_files(fd: int) -> list[str]:
    """Unlink everything in directory ``fd`` that is not a directory; the subdirectories' names."""
    subdirs: list[str] = []
    with os.scandir(fd) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                subdirs.append(e.name)
            else:
                try:
                    os.unlink(e.name, dir_fd=fd)
                except FileNotFoundError:
                    pass
    return subdirs


__all__ = ["remove_at", "remove_tree"]
