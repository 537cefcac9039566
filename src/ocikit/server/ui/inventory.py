"""What the UI shows, read through :class:`RegistryStorage` (so it works on any storage driver).

Manifests, configs and blob sizes are content-addressed and never change, so what is derived
from them (a parsed manifest, a config, an image's platforms/size/created) is cached by digest.
Tags, links and referrer entries do change: a page of tags, a manifest and its referrers are
read on every request; the aggregates over a whole repository (its size and last push, which
manifests use each blob) walk every link and tag, so they are reused for ``RECENT_SECONDS``.
A page asks only for what it shows (one page of tags, not every tag's manifest).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Hashable, Iterable, TypeVar

from ... import mediatypes as mt
from ...digest import Digest
from ...errors import ManifestUnknown, OcikitError
from ...model import Descriptor, ImageIndex, ImageManifest, Manifest, parse_config, parse_manifest
from ..storage.registry import RegistryStorage, blob_key

MAX_CONFIG_BYTES = 4 * 1024 * 1024
GATHER = 32
"""Storage reads a page runs at once on a remote driver (a local one answers at once: one by one is
cheaper than a task per read)."""

RECENT_SECONDS = 10.0
"""How long a repository-wide aggregate (size, last push, blob usage) is reused."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class LRU(Generic[K, V]):
    """A dict bounded to ``limit`` entries, dropping the least recently used."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: K, value: V) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.limit:
            self._d.popitem(last=False)


async def gather_limited(coros: Iterable[Awaitable[T]], limit: int = GATHER) -> list[T]:
    """``asyncio.gather`` with at most ``limit`` awaitables running at once, results in order;
    ``limit`` 1 awaits them one after the other."""
    if limit <= 1:
        return [await c for c in coros]
    sem = asyncio.Semaphore(limit)

    async def one(c: Awaitable[T]) -> T:
        async with sem:
            return await c
    return list(await asyncio.gather(*(one(c) for c in coros)))


@dataclass(frozen=True)
class ManifestView:
    """A stored manifest: its exact bytes and, when they parse, the parsed view (else the error)."""

    repo: str
    digest: Digest
    media_type: str
    raw: bytes
    manifest: Manifest | None
    error: str | None


@dataclass(frozen=True)
class ConfigView:
    digest: Digest
    media_type: str
    raw: bytes | None
    doc: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class ImageSummary:
    media_type: str
    platforms: tuple[str, ...]
    size: int
    """Bytes of the whole graph: the manifest, and every config, layer and child it names."""
    created: str | None
    artifact_type: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class TagRow:
    tag: str
    digest: Digest | None
    summary: ImageSummary | None
    pushed: float | None


@dataclass(frozen=True)
class RepoSummary:
    name: str
    tags: int
    size: int
    """Bytes of the distinct blobs and manifests linked into the repository."""
    last_push: float | None


@dataclass(frozen=True)
class Use:
    """Manifest ``manifest`` of ``repo`` names a blob as its ``role`` (config, layer, child)."""

    repo: str
    manifest: Digest
    role: str


@dataclass
class GraphNode:
    """One node of an image graph; ``edge`` says how it hangs off its parent (child or subject)."""

    kind: str
    """index, manifest, config, layer, referrer or missing."""
    media_type: str
    digest: str
    size: int | None
    label: str = ""
    href: str | None = None
    edge: str = "child"
    children: list["GraphNode"] = field(default_factory=list)


def platform_of(doc: dict[str, Any]) -> str:
    parts = [str(doc.get("os") or "?"), str(doc.get("architecture") or "?")]
    if doc.get("variant"):
        parts.append(str(doc["variant"]))
    return "/".join(parts)


def artifact_type_of(m: Manifest) -> str | None:
    if m.artifact_type:
        return m.artifact_type
    if isinstance(m, ImageManifest) and m.config.media_type not in mt.CONFIG_TYPES:
        return m.config.media_type
    return None


class Inventory:
    """Read-side queries over one registry's storage, with the digest-keyed caches."""

    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage
        self._parsed: LRU[tuple[Digest, str], tuple[Manifest | None, str | None]] = LRU(16384)
        self._configs: LRU[Digest, ConfigView] = LRU(4096)
        self._summaries: LRU[Digest, ImageSummary] = LRU(16384)
        self._sizes: LRU[Digest, int] = LRU(262144)
        self._views: LRU[tuple[str, Digest], ManifestView] = LRU(65536)
        self.limit = 1 if storage.driver.local_path("blobs") is not None else GATHER
        self._recent: dict[Hashable, tuple[float, Any]] = {}

    async def _reuse(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """``compute()``, or its result from less than ``RECENT_SECONDS`` ago."""
        now = time.monotonic()
        hit = self._recent.get(key)
        if hit is not None and now - hit[0] < RECENT_SECONDS:
            return hit[1]  # type: ignore[no-any-return]
        value = await compute()
        if len(self._recent) > 4096:
            self._recent = {k: v for k, v in self._recent.items() if now - v[0] < RECENT_SECONDS}
        self._recent[key] = (now, value)
        return value

    async def _all(self, coros: Iterable[Awaitable[T]]) -> list[T]:
        return await gather_limited(coros, self.limit)

    # --- manifests and configs -----------------------------------------------------------

    async def manifest(self, repo: str, ref: str | Digest) -> ManifestView:
        """The manifest ``ref`` (tag or digest) of ``repo``; raises ManifestUnknown."""
        stored = await self.storage.get_manifest(repo, ref)
        key = (stored.digest, stored.media_type)
        hit = self._parsed.get(key)
        if hit is None:
            try:
                hit = (parse_manifest(stored.raw, stored.media_type), None)
            except (OcikitError, ValueError, TypeError, KeyError) as e:
                hit = (None, str(e) or type(e).__name__)
            self._parsed.put(key, hit)
        return ManifestView(repo, stored.digest, stored.media_type, stored.raw, hit[0], hit[1])

    async def try_manifest(self, repo: str, ref: str | Digest) -> ManifestView | None:
        try:
            return await self.manifest(repo, ref)
        except ManifestUnknown:
            return None

    async def config(self, repo: str, desc: Descriptor) -> ConfigView:
        """The config blob a manifest names, parsed when it is an image config."""
        if await self.storage.blob_size(repo, desc.digest) is None:
            return ConfigView(desc.digest, desc.media_type, None, None, "the blob is not in this repository")
        hit = self._configs.get(desc.digest)
        if hit is not None:
            return hit
        if desc.size > MAX_CONFIG_BYTES:
            view = ConfigView(desc.digest, desc.media_type, None, None, f"{desc.size} bytes: too large to show")
        else:
            parts = [c async for c in self.storage.blob_chunks(desc.digest, 0, MAX_CONFIG_BYTES + 1)]
            raw = b"".join(parts)
            doc: dict[str, Any] | None = None
            error: str | None = None
            if Digest.of(raw, desc.digest.algorithm) != desc.digest:
                error = "the stored bytes do not hash to this digest"
            elif desc.media_type in mt.CONFIG_TYPES:
                try:
                    doc = dict(parse_config(raw, strict=False).doc)
                except (OcikitError, ValueError, TypeError) as e:
                    error = str(e)
            view = ConfigView(desc.digest, desc.media_type, raw, doc, error)
        self._configs.put(desc.digest, view)
        return view

    async def summary(self, repo: str, view: ManifestView, depth: int = 0) -> ImageSummary:
        """Platforms, total size and creation time of the graph under a manifest (cached by digest)."""
        hit = self._summaries.get(view.digest)
        if hit is not None:
            return hit
        m = view.manifest
        complete = True
        if m is None:
            out = ImageSummary(view.media_type, (), len(view.raw), None, None, view.error)
        elif isinstance(m, ImageManifest):
            platforms: tuple[str, ...] = ()
            created = None
            if m.config.media_type in mt.CONFIG_TYPES:
                c = await self.config(repo, m.config)
                complete = c.raw is not None or c.doc is not None or "too large" in (c.error or "")
                if c.doc is not None:
                    platforms, created = (platform_of(c.doc),), c.doc.get("created")
            size = len(view.raw) + m.config.size + sum(x.size for x in m.layers)
            out = ImageSummary(view.media_type, platforms, size, str(created) if created else None, artifact_type_of(m))
        else:
            assert isinstance(m, ImageIndex)
            plats: list[str] = []
            created_all: list[str] = []
            size = len(view.raw)
            children = await self._all(self.try_manifest(repo, c.digest) for c in m.manifests)
            for desc, child in zip(m.manifests, children):
                sub = await self.summary(repo, child, depth + 1) if child is not None and depth < 2 else None
                if sub is None:
                    complete = False
                    size += desc.size
                else:
                    size += sub.size
                    if sub.created:
                        created_all.append(sub.created)
                plat = str(desc.platform) if desc.platform else (sub.platforms[0] if sub and sub.platforms else None)
                if plat:
                    plats.append(plat)
            out = ImageSummary(view.media_type, tuple(plats), size, max(created_all) if created_all else None,
                               artifact_type_of(m))
        if complete:
            self._summaries.put(view.digest, out)
        return out

    # --- tags and repositories -------------------------------------------------------------

    async def tag_rows(self, repo: str, tags: list[str]) -> list[TagRow]:
        """Digest, summary and push time of each tag (one page of them)."""
        async def row(tag: str) -> TagRow:
            digest = await self.storage.resolve_tag(repo, tag)
            pushed = await self.storage.tag_modified(repo, tag)
            view = await self.try_manifest(repo, digest) if digest is not None else None
            return TagRow(tag, digest, await self.summary(repo, view) if view is not None else None, pushed)
        return await self._all(row(t) for t in tags)

    async def blob_bytes(self, digest: Digest) -> int:
        hit = self._sizes.get(digest)
        if hit is None:
            hit = await self.storage.driver.size(blob_key(digest)) or 0
            self._sizes.put(digest, hit)
        return hit

    async def linked(self, repo: str) -> set[Digest]:
        """Every blob and manifest linked into ``repo``."""
        return set(await self.storage.list_layer_links(repo)) | set(await self.storage.list_manifests(repo))

    async def repo_size(self, repo: str) -> tuple[set[Digest], int]:
        """The blobs and manifests linked into ``repo``, and their total size (reused briefly)."""
        async def compute() -> tuple[set[Digest], int]:
            linked = await self.linked(repo)
            return linked, sum([await self.blob_bytes(d) for d in linked])
        return await self._reuse(("size", repo), compute)

    async def repo_summary(self, repo: str) -> RepoSummary:
        """Tag count, size and last push of ``repo`` (reused briefly)."""
        async def compute() -> RepoSummary:
            tags = await self.storage.list_tags(repo) or []
            times = [t for t in await self._all(self.storage.tag_modified(repo, x) for x in tags) if t]
            return RepoSummary(repo, len(tags), (await self.repo_size(repo))[1], max(times) if times else None)
        return await self._reuse(("summary", repo), compute)

    async def warm(self) -> None:
        """Fill the digest caches for every repository (run in the background at start)."""
        for repo in await self.storage.catalog():
            await self.repo_size(repo)
            digests = await self.storage.list_manifests(repo)
            for i in range(0, len(digests), 64):
                await asyncio.sleep(0)  # a local driver never suspends: let requests in between
                for d in digests[i:i + 64]:
                    await self._listed(repo, d)

    async def _listed(self, repo: str, digest: Digest) -> ManifestView | None:
        view = self._views.get((repo, digest))
        if view is None:
            view = await self.try_manifest(repo, digest)
            if view is not None:
                self._views.put((repo, digest), view)
        return view

    async def manifests_of(self, repo: str) -> list[ManifestView]:
        """Every manifest of ``repo`` (a revision and its bytes never change while it is listed)."""
        views = await self._all(self._listed(repo, d) for d in await self.storage.list_manifests(repo))
        return [v for v in views if v is not None]

    # --- across repositories -------------------------------------------------------------

    async def usage(self, repos: Iterable[str]) -> dict[Digest, list[Use]]:
        """Which manifests name each blob (configs, layers) or child manifest (reused briefly)."""
        names = tuple(repos)
        return await self._reuse(("usage", names), lambda: self._usage(names))

    async def _usage(self, repos: Iterable[str]) -> dict[Digest, list[Use]]:
        out: dict[Digest, list[Use]] = {}
        for repo in repos:
            for v in await self.manifests_of(repo):
                m = v.manifest
                if isinstance(m, ImageManifest):
                    out.setdefault(m.config.digest, []).append(Use(repo, v.digest, "config"))
                    for x in m.layers:
                        out.setdefault(x.digest, []).append(Use(repo, v.digest, "layer"))
                elif isinstance(m, ImageIndex):
                    for x in m.manifests:
                        out.setdefault(x.digest, []).append(Use(repo, v.digest, "child"))
        return out

    async def referrer_views(self, repos: Iterable[str]) -> list[ManifestView]:
        """Every manifest with a ``subject`` (signatures, SBOMs, attestations) in ``repos``."""
        out = []
        for repo in repos:
            out += [v for v in await self.manifests_of(repo) if v.manifest is not None and v.manifest.subject]
        return out

    async def referrers(self, repo: str, subject: Digest) -> list[dict[str, Any]]:
        return await self.storage.referrers(repo, subject)

    # --- the graph -----------------------------------------------------------------------

    async def graph(self, repo: str, view: ManifestView, href: Any, depth: int = 0) -> GraphNode:
        """Index -> manifests -> config and layers, with referrers hanging off their subjects.

        ``href(kind, digest)`` gives the link of a node (a manifest page, a blob page).
        """
        m = view.manifest
        kind = "index" if isinstance(m, ImageIndex) else "manifest"
        node = GraphNode(kind, view.media_type, str(view.digest), len(view.raw), href=href("manifest", view.digest))
        if m is None:
            node.label = "unparseable"
        elif isinstance(m, ImageIndex):
            children = await self._all(self.try_manifest(repo, c.digest) for c in m.manifests)
            for desc, child in zip(m.manifests, children):
                if child is None:
                    sub = GraphNode("missing", desc.media_type, str(desc.digest), desc.size, "not in this repository")
                elif depth < 2:
                    sub = await self.graph(repo, child, href, depth + 1)
                else:
                    sub = GraphNode("manifest", desc.media_type, str(desc.digest), desc.size,
                                    href=href("manifest", desc.digest))
                sub.label = str(desc.platform) if desc.platform else (desc.artifact_type or sub.label)
                node.children.append(sub)
        else:
            assert isinstance(m, ImageManifest)
            node.children.append(GraphNode("config", m.config.media_type, str(m.config.digest), m.config.size,
                                           "config", href("blob", m.config.digest)))
            for i, x in enumerate(m.layers):
                node.children.append(GraphNode("layer", x.media_type, str(x.digest), x.size, f"layer {i}",
                                               href("blob", x.digest)))
        for r in await self.referrers(repo, view.digest):
            node.children.append(GraphNode("referrer", str(r.get("mediaType", "")), str(r.get("digest", "")),
                                           r.get("size") if isinstance(r.get("size"), int) else None,
                                           str(r.get("artifactType") or "referrer"),
                                           href("manifest", r.get("digest")), edge="subject"))
        return node
