"""A layer holding the difference between two trees: ``ocikit layer diff LOWER UPPER OUT``.

Applied on top of LOWER (by any OCI unpacker), the layer gives UPPER:

- what is new or changed in UPPER is written as is (content, mode, owner when kept, link
  target, device numbers, xattrs);
- what is gone is a whiteout ``.wh.NAME``, written once at the topmost deleted path;
- a directory with new contents none of whose LOWER children survive is *replaced*: it gets an opaque marker
  ``.wh..wh..opq`` instead of one whiteout per child;
- a directory replacing a non-directory, or the reverse, gets a whiteout before the new entry,
  so the old one is removed whatever the unpacker does with type changes.

In each directory the markers come first (opaque, then whiteouts sorted), then the entries
sorted by name: markers only ever hit the lower layers, as layer.md requires. Regular files of
equal size are compared byte for byte; mtimes count only with ``mtime="keep"`` and owners only
when they are kept. Hardlinks: when an added file shares its inode with other paths of UPPER,
those paths are written too (the first as the file, the others as hardlinks to it), so a new
link to an unchanged file survives.

The comparison itself (:func:`diff_entries`) is pure over ``lstat`` results and a content
comparison callback, so it is tested without a disk.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Callable, Iterator

from ..core.errors import UsageError
from .layertar import LayerResult, LayerWriter, TarOptions, join_name, walk_tree


@dataclass(frozen=True)
class Change:
    """One step of a tree diff: ``opaque`` (of ``path``, a directory), ``whiteout`` or ``add``."""

    kind: str
    path: str
    abs_path: str = ""


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in names:
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            pass
    return out


def same_file_content(a: str, b: str) -> bool:
    """Byte-for-byte comparison of two regular files (of equal size)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(1 << 20)
            y = fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def entry_changed(lower: str, lst: os.stat_result, upper: str, ust: os.stat_result, options: TarOptions,
                  same_content: Callable[[str, str], bool] = same_file_content) -> bool:
    """Whether the entry at ``upper`` differs from the one at ``lower`` (of the same type)."""
    if stat.S_IMODE(lst.st_mode) != stat.S_IMODE(ust.st_mode):
        return True
    if options.owner is None and (lst.st_uid, lst.st_gid) != (ust.st_uid, ust.st_gid):
        return True
    if options.mtime == "keep" and not stat.S_ISDIR(ust.st_mode) and int(lst.st_mtime) != int(ust.st_mtime):
        return True
    if options.xattrs and _xattrs(lower) != _xattrs(upper):
        return True
    m = ust.st_mode
    if stat.S_ISREG(m):
        return lst.st_size != ust.st_size or not same_content(lower, upper)
    if stat.S_ISLNK(m):
        return os.readlink(lower) != os.readlink(upper)
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        return lst.st_rdev != ust.st_rdev
    return False


def _listdir(path: str) -> list[str]:
    with os.scandir(path) as it:
        return sorted((e.name for e in it), key=os.fsencode)


def diff_entries(lower_root: str, upper_root: str, options: TarOptions | None = None, rel: str = "",
                 same_content: Callable[[str, str], bool] = same_file_content) -> Iterator[Change]:
    """The changes that turn the tree at ``lower_root`` into the one at ``upper_root``, in tar order."""
    options = options or TarOptions()
    lower_dir = os.path.join(lower_root, rel) if rel else lower_root
    upper_dir = os.path.join(upper_root, rel) if rel else upper_root
    lower_names = _listdir(lower_dir)
    upper_names = _listdir(upper_dir)
    upper_set = set(upper_names)
    lower_set = set(lower_names)
    # replaced: new contents, none of the old (an emptied directory gets whiteouts instead)
    opaque = bool(rel) and bool(lower_names) and bool(upper_names) and not (lower_set & upper_set)
    if opaque:
        yield Change("opaque", rel)
        lower_set = set()
    lower_stats = {}
    for n in lower_set:
        lower_stats[n] = os.lstat(os.path.join(lower_dir, n))
    upper_stats = {n: os.lstat(os.path.join(upper_dir, n)) for n in upper_names}
    markers = [n for n in lower_set if n not in upper_set]
    for n in lower_set & upper_set:
        if stat.S_ISDIR(lower_stats[n].st_mode) != stat.S_ISDIR(upper_stats[n].st_mode):
            markers.append(n)   # a directory replaced a non-directory, or the reverse
    for n in sorted(markers, key=os.fsencode):
        yield Change("whiteout", join_name(rel, n))
    replaced = set(markers)
    for n in upper_names:
        name = join_name(rel, n)
        up = os.path.join(upper_dir, n)
        ust = upper_stats[n]
        is_dir = stat.S_ISDIR(ust.st_mode)
        lst = lower_stats.get(n) if n not in replaced else None
        if lst is None:
            yield Change("add", name, up)
            if is_dir:
                yield from _all_under(upper_root, name)
            continue
        same_type = stat.S_IFMT(lst.st_mode) == stat.S_IFMT(ust.st_mode)
        lp = os.path.join(lower_dir, n)
        if not same_type or entry_changed(lp, lst, up, ust, options, same_content):
            yield Change("add", name, up)
        if is_dir:
            yield from diff_entries(lower_root, upper_root, options, name, same_content)


def _all_under(root: str, rel: str) -> Iterator[Change]:
    for path, name, _st in walk_tree(root, rel):
        yield Change("add", name, path)


def change_order(ch: Change) -> tuple[tuple[int, bytes], ...]:
    """The position of a change in the layer: depth first, names sorted by bytes, and in each
    directory its markers (opaque, whiteouts) before its entries."""
    parts = [(1, os.fsencode(p)) for p in ch.path.split("/")]
    if ch.kind == "opaque":
        return (*parts, (0, b""))
    if ch.kind == "whiteout":
        parts[-1] = (0, parts[-1][1])
    return tuple(parts)


def with_hardlink_peers(changes: list[Change], upper_root: str) -> list[Change]:
    """``changes`` plus the unchanged paths of UPPER sharing an inode with an added file.

    A new hardlink to an unchanged file only survives the layer if both paths are in it (a
    layer's hardlinks can only name its own files), so the old path is written again, as the
    file, and the new one as a link to it.
    """
    wanted: set[tuple[int, int]] = set()
    added = set()
    for ch in changes:
        if ch.kind == "add":
            added.add(ch.path)
            st = os.lstat(ch.abs_path)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                wanted.add((st.st_dev, st.st_ino))
    if not wanted:
        return changes
    extra = [Change("add", name, path) for path, name, st in walk_tree(upper_root)
             if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) in wanted and name not in added]
    if not extra:
        return changes
    return sorted(changes + extra, key=change_order)


def write_diff_layer(lower: str, upper: str, out_path: str, compression: str = "gzip",
                     options: TarOptions | None = None) -> LayerResult:
    """Write the layer that turns tree ``lower`` into tree ``upper`` to ``out_path``."""
    for what, p in (("LOWER", lower), ("UPPER", upper)):
        if not os.path.isdir(p):
            raise UsageError(f"{what} {p}: not a directory")
    options = options or TarOptions()
    changes = with_hardlink_peers(list(diff_entries(lower, upper, options)), upper)
    with LayerWriter(out_path, compression, options) as w:
        for ch in changes:
            if ch.kind == "add":
                w.tar.add_path(ch.abs_path, ch.path)
            elif ch.kind == "whiteout":
                parent, _, base = ch.path.rpartition("/")
                w.tar.add_whiteout(parent, base)
            else:
                w.tar.add_opaque(ch.path)
        return w.finish()


__all__ = ["Change", "change_order", "diff_entries", "entry_changed", "same_file_content", "with_hardlink_peers",
           "write_diff_layer"]
