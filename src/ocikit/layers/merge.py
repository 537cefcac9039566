"""The filesystem an image's layers add up to, computed from tar headers alone (no unpacking).

:class:`MergedTree` applies layers' members in order as image-spec layer.md says — entries
replace what was there (a directory over a directory keeps its children), ``.wh.NAME``
removes a lower layer's ``NAME``, ``.wh..wh..opq`` hides a directory's lower contents, and
whiteouts never touch what the same layer wrote — and then walks the result in tar order
(depth first, names sorted by bytes).

Regular files carry an opaque ``data`` reference chosen by the caller (a spool offset for
``flatten``, a content hash for ``diff --files``). Hardlinks share the :class:`Inode` of their
target, so a link keeps its data when the target is later deleted or replaced, and a walk
can write the first path of an inode as the file and the others as links to it. Parent
paths that are symlinks are followed inside the tree, as a safe unpacker resolves them.

Pure: no I/O, driven by :class:`~ocikit.layers.tarparse.TarMember` headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import LayerInvalid
from .tarparse import TarMember
from .safepath import clean
from .whiteout import Whiteout, classify

_MAX_LINKS = 40


@dataclass(eq=False)
class Inode:
    """A file's header (metadata) and the caller's reference to its data."""

    member: TarMember
    data: Any = None


@dataclass(eq=False)
class Node:
    inode: Inode | None
    """None for a directory no layer wrote a header for (created implicitly as a parent)."""
    layer: int
    children: dict[str, "Node"] = field(default_factory=dict)

    @property
    def is_dir(self) -> bool:
        return self.inode is None or self.inode.member.is_dir

    @property
    def is_symlink(self) -> bool:
        return self.inode is not None and self.inode.member.is_symlink


class MergedTree:
    """The union of layers; see the module docstring."""

    def __init__(self) -> None:
        self.root = Node(None, -1)

    # -- lookups

    def _resolve_dir(self, parts: list[str], layer: int | None) -> Node | None:
        """The directory node at ``parts`` following symlinks; with ``layer``, create what is missing."""
        node = self.root
        todo = list(reversed(parts))
        trail: list[Node] = []
        hops = 0
        while todo:
            name = todo.pop()
            if name == "..":
                node = trail.pop() if trail else self.root
                continue
            child = node.children.get(name)
            if child is not None and child.is_symlink:
                hops += 1
                if hops > _MAX_LINKS:
                    raise LayerInvalid(f"too many levels of symbolic links at {name!r}")
                assert child.inode is not None
                target = child.inode.member.linkname
                if target.startswith("/"):
                    node, trail = self.root, []
                todo.extend(reversed([p for p in target.split("/") if p and p != "."]))
                continue
            if child is None or not child.is_dir:
                if layer is None:
                    return None
                child = Node(None, layer)
                node.children[name] = child
            trail.append(node)
            node = child
        return node

    def lookup(self, path: str) -> Node | None:
        """The node at ``path`` (parents followed through symlinks, the last component not)."""
        if not path:
            return self.root
        parent, _, base = path.rpartition("/")
        d = self._resolve_dir(parent.split("/") if parent else [], None)
        return None if d is None else d.children.get(base)

    # -- applying layers

    def apply(self, layer: int, member: TarMember, data: Any = None) -> None:
        """Apply one member of layer number ``layer`` (counting from 0, in order)."""
        rel = clean(member.name)
        if not rel:
            return   # the root directory's own entry
        kind = classify(rel)
        if kind == "meta":
            return
        if isinstance(kind, Whiteout):
            self._whiteout(kind, layer)
            return
        parent, _, base = rel.rpartition("/")
        d = self._resolve_dir(parent.split("/") if parent else [], layer)
        assert d is not None
        if member.is_hardlink:
            target = self.lookup(clean(member.linkname))
            if target is None or target.inode is None or not target.inode.member.is_file:
                raise LayerInvalid(f"hardlink {member.name!r} to {member.linkname!r}: no such file in the image")
            d.children[base] = Node(target.inode, layer)
            return
        existing = d.children.get(base)
        inode = Inode(member, data)
        if existing is not None and existing.is_dir and member.is_dir and not existing.is_symlink:
            existing.inode, existing.layer = inode, layer
        else:
            d.children[base] = Node(inode, layer)

    def _whiteout(self, wh: Whiteout, layer: int) -> None:
        if wh.opaque:
            node = self.lookup(wh.path)
            if node is not None and node.is_dir:
                _prune(node, layer)
            return
        parent, _, base = wh.path.rpartition("/")
        d = self._resolve_dir(parent.split("/") if parent else [], None)
        if d is None or base not in d.children:
            return
        node = d.children[base]
        if node.layer < layer:
            del d.children[base]
        elif node.is_dir:
            _prune(node, layer)

    # -- reading the result

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Every path with its node, depth first, names sorted by bytes (the root excluded)."""
        yield from self._walk(self.root, "")

    def _walk(self, node: Node, prefix: str) -> Iterator[tuple[str, Node]]:
        for name in sorted(node.children, key=lambda n: n.encode("utf-8", "surrogateescape")):
            child = node.children[name]
            path = f"{prefix}/{name}" if prefix else name
            yield path, child
            if child.is_dir and not child.is_symlink:
                yield from self._walk(child, path)


def _prune(node: Node, layer: int) -> None:
    """Remove what lower layers put under ``node``; keep (and descend into) what ``layer`` wrote."""
    for name in list(node.children):
        child = node.children[name]
        if child.layer < layer:
            del node.children[name]
        elif child.is_dir and not child.is_symlink:
            _prune(child, layer)


__all__ = ["Inode", "MergedTree", "Node"]
