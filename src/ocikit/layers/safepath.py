"""Resolve paths inside a root directory so nothing can lead a write out of it.

A layer's paths are cleaned lexically first (:func:`clean`: ``..`` cannot climb above the
root, absolute paths are taken relative to it). Then :class:`SafeRoot` walks the parent
directories one component at a time with ``openat(O_NOFOLLOW | O_DIRECTORY)`` from a file
descriptor of the root: a symlink met on the way is read and its target resolved as if the
root were ``/`` (the ``chroot`` semantics of umoci and filepath-securejoin), so a symlinked
parent can redirect a write only to somewhere else inside the root. Callers then act on the
last component through the parent's descriptor (``dir_fd=``), never through a path string.

Parent descriptors are cached (layers write many files per directory); callers invalidate
the cache whenever they remove a directory or a symlink.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import LayerInvalid

MAX_SYMLINKS = 40
"""Symlinks followed while resolving one path (Linux's own limit), then ELOOP."""
_CACHE_LIMIT = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean(name: str) -> str:
    """A tar member name made relative to the root, lexically: ``"./a//b/../c/"`` -> ``"a/c"``,
    ``"/etc/x"`` -> ``"etc/x"``, ``"../../x"`` -> ``"x"``; the root itself is ``""``."""
    if "/." not in name and not name.startswith((".", "/")) and "//" not in name:
        return name.rstrip("/")
    out: list[str] = []
    for part in name.split("/"):
        if part == "" or part == ".":
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/".join(out)


def split(rel: str) -> tuple[str, str]:
    """``"a/b/c"`` -> ``("a/b", "c")``; ``"c"`` -> ``("", "c")``."""
    parent, _, base = rel.rpartition("/")
    return parent, base


def join(parent: str, base: str) -> str:
    return f"{parent}/{base}" if parent else base


class SafeRoot:
    """A root directory, held open; resolves parents of member paths inside it."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cache: dict[str, tuple[int, str]] = {}
        self._stale: list[int] = []

    @property
    def cache(self) -> dict[str, tuple[int, str]]:
        """The cache of resolved parents (``rel`` -> (descriptor, resolved path)), for callers that
        look up a hit inline before calling :meth:`parent`. The dict object never changes."""
        return self._cache

    # -- lifecycle
    def close(self) -> None:
        self.invalidate()
        self._close_stale()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "SafeRoot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def invalidate(self) -> None:
        """Forget cached directory descriptors (after removing a directory or a symlink).

        Descriptors handed out stay open until the next :meth:`parent` call, so a caller in the
        middle of one member can go on using the one it holds."""
        self._stale.extend(fd for fd, _ in self._cache.values())
        self._cache.clear()

    def _close_stale(self) -> None:
        for fd in self._stale:
            os.close(fd)
        self._stale.clear()

    # -- resolution
    def parent(self, rel: str, *, create: bool = True) -> tuple[int, str] | None:
        """The descriptor of directory ``rel`` (a cleaned path; ``""`` is the root) and its
        resolved path, following symlinks inside the root. Missing directories are made
        (mode 0755) when ``create``, else None is returned. The descriptor belongs to the
        cache: do not close it."""
        if self._stale:
            self._close_stale()
        if rel == "":
            return self.fd, ""
        hit = self._cache.get(rel)
        if hit is not None:
            return hit
        res = self._walk(rel, create)
        if res is None:
            return None
        if len(self._cache) >= _CACHE_LIMIT:
            self.invalidate()
            self._close_stale()
        self._cache[rel] = res
        return res

    def _open_resolved(self, names: list[str]) -> int:
        """A descriptor for an already-resolved path (real directories only)."""
        fd = os.dup(self.fd)
        try:
            for n in names:
                nfd = os.open(n, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _walk(self, rel: str, create: bool) -> tuple[int, str] | None:
        pending = rel.split("/")
        pending.reverse()            # a stack: the next component is at the end
        names: list[str] = []
        fd = os.dup(self.fd)
        links = 0
        try:
            while pending:
                part = pending.pop()
                if part == "" or part == ".":
                    continue
                if part == "..":
                    if names:
                        names.pop()
                        os.close(fd)
                        fd = self._open_resolved(names)
                    continue
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise _layer_error(e, rel) from None
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise LayerInvalid(f"{rel!r}: {'/'.join(names + [part])!r} is not a directory") from None
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise LayerInvalid(f"{rel!r}: too many levels of symbolic links") from None
                    target = os.readlink(part, dir_fd=fd)
                    if target.startswith("/"):
                        names = []
                        os.close(fd)
                        fd = os.dup(self.fd)
                    comps = target.split("/")
                    comps.reverse()
                    pending.extend(comps)
                    continue
                os.close(fd)
                fd = nfd
                names.append(part)
        except LayerInvalid:
            os.close(fd)
            raise
        except OSError as e:
            os.close(fd)
            raise _layer_error(e, rel) from None
        return fd, "/".join(names)

    def open_resolved(self, rel: str) -> int | None:
        """A new descriptor (caller closes) of a resolved directory path, following no symlink;
        None if it is missing or not a directory."""
        try:
            return self._open_resolved(rel.split("/")) if rel else os.dup(self.fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:
                return None
            raise


    def exists(self, rel: str) -> bool:
        """Whether resolved path ``rel`` names anything (not following a final symlink)."""
        parent, _, base = rel.rpartition("/")
        fd = self.open_resolved(parent)
        if fd is None:
            return False
        try:
            if base:
                os.stat(base, dir_fd=fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(fd)

    def children(self, rel: str) -> list[tuple[str, bool]]:
        """(name, is a directory) of everything in resolved directory ``rel`` (none if it is not one)."""
        fd = self.open_resolved(rel)
        if fd is None:
            return []
        try:
            with os.scandir(fd) as it:
                return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        finally:
            os.close(fd)


def _layer_error(e: OSError, rel: str) -> LayerInvalid:
    if e.errno == errno.ENAMETOOLONG:
        return LayerInvalid(f"{rel[:200]!r}...: file name too long")
    return LayerInvalid(f"{rel!r}: {e.strerror or e}")


__all__ = ["MAX_SYMLINKS", "SafeRoot", "clean", "join", "split"]
