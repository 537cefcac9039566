"""Whiteouts (image-spec layer.md), as pure planning: no I/O here.

A layer deletes what lower layers left with ``.wh.NAME`` (remove ``NAME``) and opaque
``DIR/.wh..wh..opq`` (remove every child of ``DIR``). Whiteouts apply to lower layers only:
anything the same layer writes survives, whatever the order of the entries. So while a layer
is applied, :class:`UpperSet` remembers the paths it has written (with their ancestors), and
:func:`plan_removal` decides, given a way to list a directory, what to delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ..core.errors import LayerInvalid

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
META_PREFIX = ".wh..wh."
"""AUFS bookkeeping entries (``.wh..wh.plnk``, ``.wh..wh.aufs``): not whiteouts, never extracted."""


@dataclass(frozen=True)
class Whiteout:
    """What a whiteout entry asks for: remove ``path`` (opaque: remove the children of ``path``)."""

    path: str
    opaque: bool = False


def classify(rel: str) -> Whiteout | str | None:
    """Interpret a cleaned member path.

    Returns a :class:`Whiteout`, the string ``"meta"`` for AUFS bookkeeping entries to skip,
    or None for an ordinary entry. Raises LayerInvalid for ``.wh.`` with no name.
    """
    parent, _, base = rel.rpartition("/")
    if not base.startswith(WHITEOUT_PREFIX):
        return None
    if base == OPAQUE:
        return Whiteout(parent, opaque=True)
    if base.startswith(META_PREFIX):
        return "meta"
    name = base[len(WHITEOUT_PREFIX):]
    if name in ("", ".", ".."):
        raise LayerInvalid(f"invalid whiteout entry {rel!r}")
    return Whiteout(f"{parent}/{name}" if parent else name)


class UpperSet:
    """The paths a layer has written so far, with all their ancestors (``""`` is the root)."""

    __slots__ = ("_paths",)

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._paths: set[str] = set()
        for p in paths:
            self.add(p)

    @property
    def paths(self) -> set[str]:
        """The set itself, for callers that test membership inline (change it only with :meth:`add`
        and :meth:`clear`)."""
        return self._paths

    def add(self, path: str) -> None:
        paths = self._paths
        while path not in paths:
            paths.add(path)
            if not path:
                return
            path = path.rpartition("/")[0]

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __len__(self) -> int:
        return len(self._paths)

    def clear(self) -> None:
        self._paths.clear()


Lister = Callable[[str], Iterable[tuple[str, bool]]]
"""``list_children(dir_path)`` -> (name, is_directory) pairs, without following symlinks."""


def plan_removal(wh: Whiteout, upper: UpperSet, list_children: Lister, exists: Callable[[str], bool]) -> list[str]:
    """The paths to delete (each one wholesale, children first never needed) for a whiteout.

    ``exists(path)`` says whether the target is there at all; ``list_children`` is only asked
    about directories that hold something written by this layer (or about an opaque dir).
    """
    target = wh.path
    if not wh.opaque:
        if target == "":
            raise LayerInvalid("a whiteout cannot remove the root")
        if not exists(target):
            return []
        if target not in upper:
            return [target]
    elif not exists(target):
        return []
    out: list[str] = []
    stack = [target]
    while stack:
        d = stack.pop()
        for name, is_dir in list_children(d):
            child = f"{d}/{name}" if d else name
            if child not in upper:
                out.append(child)
            elif is_dir:
                stack.append(child)
    return out


__all__ = ["META_PREFIX", "OPAQUE", "UpperSet", "WHITEOUT_PREFIX", "Whiteout", "classify", "plan_removal"]
