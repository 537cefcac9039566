"""One walker over the image graph, for every walk ocikit makes (gc, archives, copy planning).

:class:`GraphWalker` is a sans-I/O core (the h11 habit): it says which nodes it wants
(:meth:`~GraphWalker.wanted`), is handed their bytes (:meth:`~GraphWalker.found`) or the
error reading them raised (:meth:`~GraphWalker.failed`), and builds a :class:`Graph`. The
drivers :func:`walk` (a sync ``fetch``) and :func:`awalk` (an async one, a batch of
fetches at a time) are a few lines each, so layout gc, the archive writer, the server's gc
and the copy planner all share one set of rules:

- each digest is visited once, breadth first, with no recursion (any depth is fine);
- a link is visited when ``follow(parent, link)`` says so (by default: its media type is
  a manifest, index or artifact manifest); the rest are leaves, recorded as such;
- a visited node's bytes are verified against the descriptor that led to it, then parsed
  by :func:`~ocikit.model.graph.links`; bytes that do not verify or parse, or a fetch that
  fails with ``OSError``, raise :class:`~ocikit.errors.ManifestUnreadable` naming the node,
  the parent that pointed at it and where the walk ran;
- a fetch that raises :class:`~ocikit.errors.NotFound` makes the node *missing* (recorded
  with its parent, or re-raised with ``missing_ok=False``); any other error of the fetch
  (a network failure, a refusal) propagates unchanged;
- with ``scan_unknown_json``, a JSON document of an unknown type is searched for
  descriptors (best effort: one that cannot be read has no edges).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Iterator, Protocol, Union

from .. import mediatypes as mt
from ..digest import Digest, verify_bytes
from ..errors import ManifestUnreadable, NotFound, OcikitError
from .descriptor import Descriptor
from .graph import MANIFEST, ROOT, SUBJECT, Link, embedded_links, is_node_type, links
from .manifest import MAX_MANIFEST_SIZE


class RawDocument(Protocol):
    """What a fetch may return instead of bare bytes: the bytes and the type the store knows them as."""

    @property
    def raw(self) -> bytes: ...

    @property
    def media_type(self) -> str: ...


Fetched = Union[bytes, RawDocument]
Follow = Callable[[Union[Digest, None], Link], bool]


def follow_nodes(parent: Digest | None, link: Link) -> bool:
    """The default: visit every link whose media type is a manifest, index or artifact manifest."""
    return is_node_type(link.descriptor.media_type)


@dataclass
class Node:
    """A visited document: the descriptor that first led to it and its edges."""

    descriptor: Descriptor
    media_type: str
    links: list[Link]
    parent: Digest | None
    path: str
    follows: list[Digest] = field(default_factory=list)
    """The targets of the links the walk followed, in document order."""
    scanned: bool = False
    """A JSON document of an unknown type, searched for descriptors."""

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


@dataclass(frozen=True)
class Missing:
    """A node a link led to that the fetch did not find."""

    parent: Digest | None
    link: Link
    error: BaseException


@dataclass
class Graph:
    """What a walk found: nodes, the links it did not follow (leaves), and missing nodes."""

    roots: list[Descriptor]
    nodes: dict[Digest, Node] = field(default_factory=dict)
    leaves: list[tuple[Digest | None, Link]] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)

    def digests(self) -> set[Digest]:
        """Every digest the graph names: roots, nodes, leaves and missing nodes."""
        out = {d.digest for d in self.roots}
        out.update(self.nodes)
        out.update(link.digest for _, link in self.leaves)
        out.update(m.link.digest for m in self.missing)
        return out

    def postorder(self) -> list[Node]:
        """Visited nodes, children before parents, roots in their order (each once)."""
        out: list[Node] = []
        seen: set[Digest] = set()
        for root in self.roots:
            if root.digest in seen or root.digest not in self.nodes:
                continue
            seen.add(root.digest)
            stack: list[tuple[Node, Iterator[Digest]]] = [(self.nodes[root.digest], iter(self.nodes[root.digest].follows))]
            while stack:
                node, it = stack[-1]
                for d in it:
                    if d not in seen and d in self.nodes:
                        seen.add(d)
                        stack.append((self.nodes[d], iter(self.nodes[d].follows)))
                        break
                else:
                    stack.pop()
                    out.append(node)
        return out

    def closure(self, start: Iterable[Digest], roles: frozenset[str] = frozenset({MANIFEST}),
                referrers: bool = False) -> set[Digest]:
        """The nodes reachable from ``start`` over links in ``roles``; with ``referrers``, also
        every node whose ``subject`` is reached (to a fixed point)."""
        by_subject: dict[Digest, list[Digest]] = {}
        if referrers:
            for n in self.nodes.values():
                for link in n.links:
                    if link.role == SUBJECT:
                        by_subject.setdefault(link.digest, []).append(n.digest)
        kept: set[Digest] = set()
        stack = [d for d in start if d in self.nodes]
        while stack:
            d = stack.pop()
            if d in kept:
                continue
            kept.add(d)
            stack.extend(link.digest for link in self.nodes[d].links
                         if link.role in roles and link.digest in self.nodes)
            stack.extend(by_subject.get(d, ()))
        return kept


@dataclass(frozen=True)
class Visit:
    """A node the walker wants fetched: the link that led to it, from ``parent``."""

    parent: Digest | None
    link: Link
    scan: bool = False

    @property
    def descriptor(self) -> Descriptor:
        return self.link.descriptor


class GraphWalker:
    """The sans-I/O walker; see the module docstring. ``where`` names the place in errors."""

    def __init__(self, roots: Iterable[Descriptor], *, follow: Follow = follow_nodes,
                 scan_unknown_json: bool = False, missing_ok: bool = True, where: str = "graph") -> None:
        self.follow = follow
        self.scan_unknown_json = scan_unknown_json
        self.missing_ok = missing_ok
        self.where = where
        self.graph = Graph(list(roots))
        self._queue: list[Visit] = []
        self._scheduled: set[Digest] = set()
        for i, r in enumerate(self.graph.roots):
            self._offer(None, None, Link(ROOT, r, f"roots[{i}]"))

    def _offer(self, parent: Digest | None, node: Node | None, link: Link) -> None:
        if self.follow(parent, link):
            scan = False
        elif self.scan_unknown_json and _unknown_json(link.descriptor):
            scan = True
        else:
            self.graph.leaves.append((parent, link))
            return
        if node is not None:
            node.follows.append(link.digest)
        if link.digest not in self._scheduled:
            self._scheduled.add(link.digest)
            self._queue.append(Visit(parent, link, scan))

    def wanted(self) -> list[Visit]:
        """The nodes to fetch next (each digest once over the whole walk); empty when done."""
        out, self._queue = self._queue, []
        return out

    def found(self, visit: Visit, fetched: Fetched) -> None:
        """Hand over a wanted node's bytes (or an object with ``raw`` and ``media_type``)."""
        if isinstance(fetched, (bytes, bytearray, memoryview)):
            raw, media_type = bytes(fetched), visit.descriptor.media_type
        else:
            raw, media_type = fetched.raw, fetched.media_type or visit.descriptor.media_type
        desc = visit.descriptor
        if visit.scan:
            try:
                verify_bytes(raw, desc.digest, desc.size, what=f"document {desc.digest}")
            except OcikitError:
                return  # best effort: a document of an unknown type that does not verify has no edges
            found = embedded_links(raw)
        else:
            try:
                verify_bytes(raw, desc.digest, desc.size, what="manifest")  # the error names the digest
                found = links(raw, media_type, what="manifest")
            except OcikitError as e:
                raise self._unreadable(visit, e) from e
        node = Node(desc, media_type, found, visit.parent, visit.link.path, scanned=visit.scan)
        self.graph.nodes[desc.digest] = node
        for link in found:
            self._offer(desc.digest, node, link)

    def failed(self, visit: Visit, error: BaseException) -> None:
        """Hand over the error a wanted node's fetch raised: missing, unreadable, or re-raised."""
        if isinstance(error, NotFound):
            if not self.missing_ok and not visit.scan:
                error.add_note(_pointed(self.where, visit))
                raise error
            self.graph.missing.append(Missing(visit.parent, visit.link, error))
            return
        if visit.scan and isinstance(error, (OcikitError, OSError)):
            return
        if isinstance(error, OSError):
            raise self._unreadable(visit, error) from error
        raise error

    def _unreadable(self, visit: Visit, cause: BaseException) -> ManifestUnreadable:
        d = visit.descriptor.digest
        return ManifestUnreadable(f"{self.where}: cannot read manifest {d}{_via(visit)}: {cause}",
                                  where=self.where, digest=d, parent=visit.parent, path=visit.link.path,
                                  cause=cause)


def _via(visit: Visit) -> str:
    return f" ({visit.link.path} of {visit.parent})" if visit.parent is not None else ""


def _pointed(where: str, visit: Visit) -> str:
    return f"{where}: manifest {visit.descriptor.digest} is missing" + _via(visit)


def _unknown_json(desc: Descriptor) -> bool:
    t = desc.media_type
    return t.endswith("+json") and t not in mt.CONFIG_TYPES and not is_node_type(t) \
        and 0 < desc.size <= MAX_MANIFEST_SIZE


def walk(roots: Iterable[Descriptor], fetch: Callable[[Descriptor], Fetched], **kw: Any) -> Graph:
    """Walk from ``roots`` with a synchronous ``fetch(descriptor) -> bytes``; see :class:`GraphWalker`."""
    w = GraphWalker(roots, **kw)
    while batch := w.wanted():
        for v in batch:
            try:
                fetched = fetch(v.descriptor)
            except Exception as e:  # noqa: BLE001 - classified by the walker: missing, unreadable, re-raised
                w.failed(v, e)
                continue
            w.found(v, fetched)
    return w.graph


async def awalk(roots: Iterable[Descriptor], fetch: Callable[[Descriptor], Awaitable[Fetched]], *,
                concurrency: int = 16, **kw: Any) -> Graph:
    """:func:`walk` with an async ``fetch``: the nodes of a level are fetched ``concurrency`` at a time."""
    import asyncio

    w = GraphWalker(roots, **kw)
    while batch := w.wanted():
        results: list[Any] = [None] * len(batch)
        todo = iter(range(len(batch)))

        async def worker() -> None:
            for i in todo:  # shared: each worker takes the next visit (a few tasks, not one per node)
                try:
                    results[i] = await fetch(batch[i].descriptor)
                except Exception as e:  # noqa: BLE001 - classified by the walker below, in order
                    results[i] = _Failure(e)

        n = min(max(1, concurrency), len(batch))
        await (worker() if n == 1 else asyncio.gather(*(worker() for _ in range(n))))
        for v, r in zip(batch, results):
            if isinstance(r, _Failure):
                w.failed(v, r.error)
            else:
                w.found(v, r)
    return w.graph


@dataclass(frozen=True)
class _Failure:
    error: Exception


__all__ = ["Fetched", "Follow", "Graph", "GraphWalker", "Missing", "Node", "RawDocument", "Visit", "awalk",
           "follow_nodes", "walk"]
