"""Apply layers to a root filesystem directory, safely, as image-spec layer.md says.

:class:`Unpacker` applies the members of each :class:`~ocikit.layers.reader.LayerReader` in
order: regular files, directories, symlinks, hardlinks (inside the image), device nodes and
fifos, modes (setuid included), ownership (``lchown`` as root; rootless: recorded in the
``user.rootlesscontainers`` xattr as umoci and PRoot do), ``SCHILY.xattr.*`` extended
attributes, mtimes (directories last), whiteouts and opaque whiteouts (lower layers only),
a file replacing a directory and the reverse.

Every path is cleaned lexically and its parent resolved with :class:`~.safepath.SafeRoot`;
every filesystem call goes through the parent directory's descriptor with the final
component not followed, so no member, however hostile, writes outside the root.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from typing import Callable

from ..errors import LayerInvalid
from .dirmeta import DirMeta, apply_all
from .reader import LayerReader
from .rmtree import remove_at
from .rootless import ROOTLESS_XATTR, rootless_payload
from .safepath import SafeRoot, clean
from .tarparse import BLOCKDEV, CHARDEV, DIRECTORY, FIFO, HARDLINK, REGULAR, SYMLINK, TarMember
from .whiteout import UpperSet, Whiteout, classify, plan_removal

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


def _current_umask() -> int:
    """The process umask, read without changing it (other threads may be creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@dataclass
class UnpackStats:
    layers: int = 0
    entries: int = 0
    files: int = 0
    bytes: int = 0
    whiteouts: int = 0
    skipped: int = 0


@dataclass
class Unpacker:
    """Applies layers to ``root`` (an existing directory, normally empty).

    ``rootless``: never chown; record non-root owners in ``user.rootlesscontainers``; skip
    device nodes with a warning. Defaults to True unless running as root.
    """

    root: str
    rootless: bool | None = None
    warn: Callable[[str], None] | None = None
    progress: Callable[[LayerReader, TarMember], None] | None = None
    stats: UnpackStats = field(default_factory=UnpackStats)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.is_root = os.geteuid() == 0
        if self.rootless is None:
            self.rootless = not self.is_root
        self._chown = self.is_root and not self.rootless
        self._mknod_ok = self.is_root and not self.rootless
        self._uid, self._gid = os.geteuid(), os.getegid()
        umask = _current_umask()
        self._sr = SafeRoot(self.root)
        self._parents = self._sr.cache
        """The resolver's cache of parent directories, looked up inline for each member (a miss,
        or a cache emptied by an invalidation, goes through SafeRoot.parent)."""
        self._chmod_bits = _SPECIAL_BITS | umask
        # Files are created with our own uid and gid, so chown can be skipped when the owner is
        # ours — unless the root is setgid (then new files and directories take its group).
        # Directories get their modes only in finish(), so none of ours is setgid before then.
        self._always_chown = bool(os.fstat(self._sr.fd).st_mode & stat.S_ISGID)
        # A regular file with no special bits, no xattrs and an owner that needs no action (ours
        # when chowning; root when rootless, which records other owners; any owner when neither)
        # is only created, written and given its times: apply() does that inline, else _file.
        self._plain_files = not (self._chown and self._always_chown)
        self._fast_owner: tuple[int, int] | None = (
            (self._uid, self._gid) if self._chown else (0, 0) if self.rootless else None)
        self._dirs: dict[str, DirMeta] = {}
        self._upper = UpperSet()
        self._xattr_unsupported = False
        self._warned: set[str] = set()
        self.owners: dict[str, tuple[int, int]] = {}
        """Rootless: the image's owner of every path not owned by root (resolved path -> (uid, gid)),
        besides the ``user.rootlesscontainers`` xattrs; see :meth:`owners_record`."""

    # ---- public ---------------------------------------------------------------------------------

    def apply(self, layer: LayerReader) -> None:
        """Apply one layer (to the end: its digests are verified when this returns)."""
        upper = self._upper
        upper.clear()
        upper.add("")
        written = upper.paths
        progress = self.progress
        next_member = layer.next
        write_data = layer.write_data
        member = self._member
        parents = self._parents
        dirs = self._dirs
        owners = self.owners
        # The common member — a regular file with a plain name, in a directory already resolved,
        # with nothing to change after the create (see _member) — is applied right here, with
        # everything it needs in locals: it is most of a layer. Anything else goes to _member.
        plain = self._plain_files
        own = self._fast_owner
        own_uid, own_gid = own if own is not None else (-1, -1)
        any_owner = own is None
        bits = self._chmod_bits
        os_open, utime, close = os.open, os.utime, os.close
        n = files = nbytes = 0
        try:
            while (m := next_member()) is not None:
                n += 1
                try:
                    if m.type == REGULAR and plain and not (m.mode & bits) and not m.xattrs and \
                            (any_owner or (m.uid == own_uid and m.gid == own_gid)):
                        name = m.name
                        # clean() has nothing to do for such a name (see there)
                        if "/." not in name and "//" not in name and not name.startswith((".", "/")) and \
                                not name.endswith("/"):
                            parent, _, base = name.rpartition("/")
                            res = parents.get(parent)
                            if res is not None and not base.startswith(".wh."):
                                dfd, rparent = res
                                path = f"{rparent}/{base}" if rparent else base
                                if rparent not in dirs and rparent:
                                    self._remember_dir_times(dfd, rparent)
                                try:
                                    try:
                                        fd = os_open(base, _CREATE, m.mode, dir_fd=dfd)
                                    except FileExistsError:
                                        self._clear(dfd, base, path)
                                        fd = os_open(base, _CREATE, m.mode, dir_fd=dfd)
                                    try:
                                        if m.size:
                                            nbytes += write_data(fd)
                                        utime(fd, ns=(m.mtime_ns, m.mtime_ns))
                                    finally:
                                        close(fd)
                                except OSError as e:
                                    raise self._os_error(layer, m, e) from None
                                files += 1
                                if path not in written:
                                    upper.add(path)
                                if owners:
                                    owners.pop(path, None)
                                if progress is not None:
                                    progress(layer, m)
                                continue
                    member(layer, m)
                except RecursionError:
                    raise LayerInvalid(f"{layer.what}: {m.name[:100]!r}: directory tree too deep") from None
                if progress is not None:
                    progress(layer, m)
        finally:
            self.stats.entries += n
            self.stats.files += files
            self.stats.bytes += nbytes
        self.stats.layers += 1

    def finish(self) -> None:
        """Apply directory metadata (children before parents) and release descriptors."""
        try:
            apply_all(self._sr.fd, self._dirs, self._apply_dir_meta)
        finally:
            self._sr.close()

    def close(self) -> None:
        self._sr.close()

    # ---- members --------------------------------------------------------------------------------

    def _warn(self, msg: str, key: str | None = None) -> None:
        if key is not None:
            if key in self._warned:
                return
            self._warned.add(key)
        self.warnings.append(msg)
        import logging   # here: an unpack without warnings does not import it

        logging.getLogger(__name__).warning(msg)
        if self.warn is not None:
            self.warn(msg)

    def _member(self, layer: LayerReader, m: TarMember) -> None:
        rel = clean(m.name)
        if not rel:
            if m.type != DIRECTORY:
                raise LayerInvalid(f"{layer.what}: {m.name!r}: refusing to change the type of the root directory")
            self._record_dir("", m)
            return
        parent, _, base = rel.rpartition("/")
        if base.startswith(".wh."):
            wh = classify(rel)
            if wh == "meta":
                return
            if isinstance(wh, Whiteout):
                self.stats.whiteouts += 1
                self._whiteout(wh)
                return
        res = self._parents.get(parent) or self._sr.parent(parent)
        assert res is not None
        dfd, rparent = res
        path = f"{rparent}/{base}" if rparent else base
        if rparent not in self._dirs and rparent:
            self._remember_dir_times(dfd, rparent)
        t = m.type
        try:
            if t == REGULAR:
                self._file(layer, m, dfd, base, path)
            elif t == DIRECTORY:
                self._dir(m, dfd, base, path)
            elif t == SYMLINK:
                self._symlink(m, dfd, base, path)
            elif t == HARDLINK:
                self._hardlink(layer, m, dfd, base, path)
            elif t == FIFO or t == CHARDEV or t == BLOCKDEV:
                if not self._special(m, dfd, base, path):
                    return
            else:  # pragma: no cover - the reader normalises types
                raise LayerInvalid(f"{layer.what}: {m.name!r}: unsupported member type {t!r}")
        except LayerInvalid:
            raise
        except OSError as e:
            raise self._os_error(layer, m, e) from None
        self._upper.add(path)
        if self.rootless and t != HARDLINK:
            if m.uid or m.gid:
                self.owners[path] = (m.uid, m.gid)
            elif self.owners:
                self.owners.pop(path, None)

    @staticmethod
    def _os_error(layer: LayerReader, m: TarMember, e: OSError) -> Exception:
        """The error to raise for a failed filesystem call on member ``m``."""
        if e.errno == errno.ENAMETOOLONG:
            return LayerInvalid(f"{layer.what}: {m.name[:100]!r}...: file name too long")
        if e.errno == errno.ENOSPC:
            from ..errors import StorageFull
            return StorageFull(f"no space left unpacking {m.name!r}")
        return LayerInvalid(f"{layer.what}: {m.name!r}: {e.strerror or e}")

    def _remember_dir_times(self, dfd: int, rparent: str) -> None:
        """A lower directory this layer changes without an entry of its own keeps its times."""
        try:
            st = os.stat(dfd)
        except OSError:
            return
        self._dirs[rparent] = DirMeta(None, 0, 0, st.st_atime_ns, st.st_mtime_ns, None)

    def _clear(self, dfd: int, base: str, path: str, st: os.stat_result | None = None) -> None:
        """Remove whatever is at ``base`` (a file, a symlink, a whole directory)."""
        if st is None:
            try:
                st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                return
        if stat.S_ISDIR(st.st_mode):
            remove_at(dfd, base)
            self._forget_dirs(path)
            self._sr.invalidate()
        else:
            os.unlink(base, dir_fd=dfd)
            if self.owners:
                self.owners.pop(path, None)
            if stat.S_ISLNK(st.st_mode):
                self._sr.invalidate()

    def _forget_dirs(self, path: str) -> None:
        prefix = path + "/"
        for table in (self._dirs, self.owners):
            table.pop(path, None)  # type: ignore[attr-defined]
            for k in [k for k in table if k.startswith(prefix)]:
                del table[k]  # type: ignore[attr-defined]

    def owners_record(self) -> dict[str, object]:
        """The rootless ownership record as JSON-able data (umoci keeps the same facts in xattrs)."""
        return {"format": "ocikit-rootless-owners/1", "xattr": ROOTLESS_XATTR,
                "owners": {("/" + p): {"uid": u, "gid": g} for p, (u, g) in sorted(self.owners.items())}}

    def _file(self, layer: LayerReader, m: TarMember, dfd: int, base: str, path: str) -> None:
        mode = m.mode
        # the common case (no setuid/setgid/sticky bits, nothing the umask strips) needs no chmod
        plain = not (mode & self._chmod_bits)
        try:
            fd = os.open(base, _CREATE, mode if plain else 0o600, dir_fd=dfd)
        except FileExistsError:
            self._clear(dfd, base, path)
            fd = os.open(base, _CREATE, mode if plain else 0o600, dir_fd=dfd)
        try:
            if m.size:
                self.stats.bytes += layer.write_data(fd)
            if self._chown:
                if self._always_chown or m.uid != self._uid or m.gid != self._gid:
                    os.fchown(fd, m.uid, m.gid)
            elif self.rootless and (m.uid or m.gid):
                self._setxattr(fd, ROOTLESS_XATTR, rootless_payload(m.uid, m.gid), m.name)
            if not plain:
                os.fchmod(fd, mode)
            if m.xattrs:
                self._xattrs_fd(fd, m, path)
            os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
        finally:
            os.close(fd)
        self.stats.files += 1

    def _xattrs_fd(self, target: int | str, m: TarMember, path: str) -> None:
        for name, value in m.xattrs.items():
            if name == ROOTLESS_XATTR:
                self._warn(f"{m.name}: ignoring the {ROOTLESS_XATTR} xattr stored in the layer",
                           key="rootless-xattr")
                continue
            self._setxattr(target, name, value, m.name)

    def _setxattr(self, target: int | str, name: str, value: bytes, what: str) -> None:
        if self._xattr_unsupported:
            return
        try:
            if isinstance(target, int):
                os.setxattr(target, name, value)
            else:
                os.setxattr(target, name, value, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                self._warn(f"the target filesystem does not support xattrs; {name} of {what} and "
                           "further xattrs dropped", key="xattr-enotsup")
                self._xattr_unsupported = True
                return
            if e.errno == errno.EPERM and not self._chown:
                self._warn(f"{what}: not permitted to set xattr {name} (not root); skipped",
                           key=f"xattr-eperm-{name}")
                return
            raise

    def _record_dir(self, path: str, m: TarMember) -> None:
        x = {k: v for k, v in m.xattrs.items()} if m.xattrs else None
        atime = m.mtime_ns
        self._dirs[path] = DirMeta(m.mode, m.uid, m.gid, atime, m.mtime_ns, x)

    def _dir(self, m: TarMember, dfd: int, base: str, path: str) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=dfd)
        except FileExistsError:
            st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._clear(dfd, base, path, st)
                os.mkdir(base, 0o700, dir_fd=dfd)
        self._record_dir(path, m)

    def _symlink(self, m: TarMember, dfd: int, base: str, path: str) -> None:
        try:
            os.symlink(m.linkname, base, dir_fd=dfd)
        except FileExistsError:
            self._clear(dfd, base, path)
            os.symlink(m.linkname, base, dir_fd=dfd)
        self._meta_nofd(m, dfd, base, path, symlink=True)

    def _meta_nofd(self, m: TarMember, dfd: int, base: str, path: str, *, symlink: bool = False) -> None:
        if self._chown:
            os.chown(base, m.uid, m.gid, dir_fd=dfd, follow_symlinks=False)
        if not symlink:
            # a fifo or device node: chmod through an O_PATH descriptor of the node itself, so
            # nothing could make this follow a symlink (Linux has no lchmod)
            pfd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            try:
                os.chmod(f"/proc/self/fd/{pfd}", m.mode)
            finally:
                os.close(pfd)
        proc = f"/proc/self/fd/{dfd}/{base}"
        if self.rootless and (m.uid or m.gid) and not symlink:
            self._setxattr(proc, ROOTLESS_XATTR, rootless_payload(m.uid, m.gid), m.name)
        elif self.rootless and (m.uid or m.gid):
            # user.* xattrs are not allowed on symlinks: as umoci, the owner is lost there
            self._warn(f"{m.name}: cannot record the owner of a symlink rootless", key="rootless-symlink")
        if m.xattrs:
            self._xattrs_fd(proc, m, path)
        os.utime(base, ns=(m.mtime_ns, m.mtime_ns), dir_fd=dfd, follow_symlinks=False)

    def _hardlink(self, layer: LayerReader, m: TarMember, dfd: int, base: str, path: str) -> None:
        target = clean(m.linkname)
        if not target:
            raise LayerInvalid(f"{layer.what}: {m.name!r}: hardlink to the root directory")
        tparent, _, tbase = target.rpartition("/")
        res = self._sr.parent(tparent, create=False)
        if res is None:
            raise LayerInvalid(f"{layer.what}: {m.name!r}: hardlink target {m.linkname!r} does not exist")
        tfd, _ = res
        try:
            tst = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerInvalid(f"{layer.what}: {m.name!r}: hardlink target {m.linkname!r} does not exist") from None
        if stat.S_ISDIR(tst.st_mode):
            raise LayerInvalid(f"{layer.what}: {m.name!r}: hardlink to a directory ({m.linkname!r})")
        # the target may live in a directory the clear below invalidates: keep our own descriptor
        tfd = os.dup(tfd)
        try:
            try:
                st = os.stat(base, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if st.st_ino == tst.st_ino and st.st_dev == tst.st_dev:
                    return      # already the same file
                if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    # removing it may invalidate dfd: resolve again afterwards
                    self._clear(dfd, base, path, st)
                    res2 = self._sr.parent(path.rpartition("/")[0], create=False)
                    if res2 is None:
                        raise LayerInvalid(f"{layer.what}: {m.name!r}: parent vanished")
                    dfd = res2[0]
                else:
                    os.unlink(base, dir_fd=dfd)
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _special(self, m: TarMember, dfd: int, base: str, path: str) -> bool:
        if m.type == FIFO:
            kind = stat.S_IFIFO
            dev = 0
        else:
            if not self._mknod_ok:
                self.stats.skipped += 1
                self._warn(f"{m.name}: device node {m.devmajor}:{m.devminor} skipped "
                           f"({'rootless' if self.rootless else 'not root'})")
                return False
            kind = stat.S_IFCHR if m.type == CHARDEV else stat.S_IFBLK
            dev = os.makedev(m.devmajor, m.devminor)
        try:
            os.mknod(base, kind | 0o600, dev, dir_fd=dfd)
        except FileExistsError:
            self._clear(dfd, base, path)
            os.mknod(base, kind | 0o600, dev, dir_fd=dfd)
        self._meta_nofd(m, dfd, base, path)
        return True

    # ---- whiteouts ------------------------------------------------------------------------------

    def _whiteout(self, wh: Whiteout) -> None:
        sr = self._sr
        parent, _, base = wh.path.rpartition("/")
        if wh.opaque:
            res = sr.parent(wh.path, create=False) if wh.path else (sr.fd, "")
            if res is None:
                return
            _, resolved = res
        else:
            pres = sr.parent(parent, create=False)
            if pres is None:
                return
            pfd, rparent = pres
            resolved = f"{rparent}/{base}" if rparent else base
            if resolved not in self._upper:
                # the common case, what plan_removal would decide: remove the target wholesale,
                # through the parent's (cached) descriptor
                try:
                    st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                except FileNotFoundError:
                    return
                if rparent not in self._dirs and rparent:
                    self._remember_dir_times(pfd, rparent)
                self._clear(pfd, base, resolved, st)
                return
        target = Whiteout(resolved, wh.opaque)

        doomed = plan_removal(target, self._upper, sr.children, sr.exists)
        if not doomed:
            return
        if not wh.opaque and resolved == "":
            raise LayerInvalid("a whiteout cannot remove the root")
        for p in doomed:
            pp, _, b = p.rpartition("/")
            fd = sr.open_resolved(pp)
            if fd is None:
                continue
            try:
                if pp not in self._dirs and pp:
                    self._remember_dir_times(fd, pp)
                self._clear(fd, b, p)
            finally:
                os.close(fd)

    # ---- directories, last --------------------------------------------------------------------

    def _apply_dir_meta(self, rel: str, meta: DirMeta, fd: int) -> None:
        if meta.mode is not None:
            if self._chown:
                os.fchown(fd, meta.uid, meta.gid)
            elif self.rootless and (meta.uid or meta.gid):
                self._setxattr(fd, ROOTLESS_XATTR, rootless_payload(meta.uid, meta.gid), rel or "/")
            if meta.xattrs:
                for name, value in meta.xattrs.items():
                    if name != ROOTLESS_XATTR:
                        self._setxattr(fd, name, value, rel or "/")
            os.fchmod(fd, meta.mode)
        os.utime(fd, ns=(meta.atime_ns, meta.mtime_ns))


__all__ = ["UnpackStats", "Unpacker"]
