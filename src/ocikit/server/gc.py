"""``ocikit registry gc``: mark and sweep over the server's storage.

Mark, per repository: every tagged manifest (every manifest unless ``untagged``), the
children of indexes, referrers of kept manifests (to a fixed point), and the config and
layers of each; plus anything written within the grace period (a push in flight writes
blobs before its manifest, children before their index). Sweep: manifests no longer kept
(``untagged`` only — never a child of a kept index), blob links no kept manifest uses,
blobs no repository keeps, upload spools idle longer than the upload grace.

Every manifest of a repository is read once by the graph walker every walk shares
(:mod:`ocikit.model.walk`); one whose bytes do not verify or parse stops the collection with
:class:`~ocikit.core.errors.ManifestUnreadable` naming the repository and the digest, before
anything of that repository and any blob is swept: what hangs under a manifest that cannot
be read is never taken for garbage. A manifest deleted meanwhile (its revision or bytes
gone) is simply not kept.

Safe while the server runs: the server refreshes the modification time of every blob it
commits, links or references, so content a concurrent push relies on is always inside the grace
window; and each deletion reads the age again at that moment (:meth:`StorageDriver.delete_if_older`:
on the filesystem under the directory lock every upload commit, link write and touch takes), so a
blob or link refreshed after the mark phase looked at it is kept. The same holds for an untagged
manifest: a push of it since (by tag or digest), or of an index naming it, refreshes its revision,
and it is kept with everything it reaches; gc never deletes a tag.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field

from ..core.digest import Digest
from ..core.errors import DigestInvalid, ManifestUnknown, UsageError
from ..model import Descriptor
from ..model.graph import CONTENT_ROLES
from ..model.walk import Graph, awalk
from .storage.registry import RegistryStorage, StoredManifest, blob_key, repo_key

DEFAULT_GRACE = 3600.0
DEFAULT_UPLOAD_GRACE = 24 * 3600.0


@dataclass
class GcReport:
    manifests: list[tuple[str, Digest]] = field(default_factory=list)
    links: list[tuple[str, Digest]] = field(default_factory=list)
    blobs: list[Digest] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    blobs_kept: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "bytes_freed": self.bytes_freed, "blobs_kept": self.blobs_kept,
                "manifests": [f"{r}@{d}" for r, d in self.manifests],
                "links": [f"{r}@{d}" for r, d in self.links],
                "blobs": [str(b) for b in self.blobs], "uploads": self.uploads}


async def _old(storage: RegistryStorage, key: str, cutoff: float) -> bool:
    mtime = await storage.driver.mtime(key)
    return mtime is not None and mtime < cutoff


async def _sweep(storage: RegistryStorage, key: str, cutoff: float, dry_run: bool) -> bool:
    """Remove ``key`` if it is older than ``cutoff`` (only say so with ``dry_run``). The age is read
    again at the moment of deletion, under the lock the server's writes take (filesystem): what the
    mark phase saw may be stale by then, and nothing younger than the grace is ever deleted."""
    if dry_run:
        return await _old(storage, key, cutoff)
    return await storage.driver.delete_if_older(key, cutoff)


async def _walk_repository(storage: RegistryStorage, repo: str, manifests: list[Digest]) -> Graph:
    """Read every manifest of ``repo`` once (:func:`ocikit.model.walk.awalk`); an unreadable one stops the gc."""
    roots: list[Descriptor] = []
    for d in manifests:
        media_type = await storage.manifest_media_type(repo, d)
        if media_type is not None:  # else deleted meanwhile
            size = await storage.driver.size(blob_key(d))
            roots.append(Descriptor(media_type, d, size or 0))  # no size: no bytes, the fetch says so

    async def fetch(desc: Descriptor) -> StoredManifest:
        try:
            return await storage.get_manifest(repo, desc.digest)
        except ManifestUnknown:
            if await storage.has_manifest(repo, desc.digest):  # listed in the repository, bytes gone
                raise FileNotFoundError(f"the bytes of {desc.digest} are missing from the blob store") from None
            raise  # not in this repository (a sparse index's child, a subject elsewhere), or deleted meanwhile

    return await awalk(roots, fetch, where=f"repository {repo}")


def _with_content(graph: Graph, manifests: set[Digest]) -> set[Digest]:
    """``manifests`` and the content (configs, layers) each of them links."""
    out = set(manifests)
    for d in manifests:
        out.update(link.digest for link in graph.nodes[d].links if link.role in CONTENT_ROLES)
    return out


async def _mark_repository(storage: RegistryStorage, repo: str, untagged: bool, cutoff: float,
                           report: GcReport, marked: set[Digest], dry_run: bool) -> None:
    all_manifests = await storage.list_manifests(repo)
    graph = await _walk_repository(storage, repo, all_manifests)
    roots: set[Digest] = set()
    if not untagged:
        roots.update(all_manifests)
    else:
        for tag in await storage.list_tags(repo) or []:
            d = await storage.resolve_tag(repo, tag)
            if d is not None:
                roots.add(d)
        for d in all_manifests:
            if not await _old(storage, repo_key(repo, "_manifests", "revisions", d.algorithm, d.encoded), cutoff):
                roots.add(d)
    # index children, and referrers of what is kept (to a fixed point); a kept manifest's blobs
    kept = graph.closure(roots, referrers=True)
    repo_blobs = _with_content(graph, kept)
    for d in all_manifests:
        if d in graph.nodes and d not in kept:  # one whose bytes vanished has nothing left to delete
            if dry_run or await storage.delete_manifest_if_older(repo, d, cutoff):
                report.manifests.append((repo, d))
                continue
            # pushed again since the mark (by tag or digest): kept, with everything it reaches
            repo_blobs |= _with_content(graph, graph.closure({d}) & graph.nodes.keys())
    for d in await storage.list_layer_links(repo):
        if d in repo_blobs:
            continue
        if await _sweep(storage, repo_key(repo, "_layers", d.algorithm, d.encoded), cutoff, dry_run):
            report.links.append((repo, d))
        else:
            repo_blobs.add(d)
    marked.update(repo_blobs)


async def collect_garbage(storage: RegistryStorage, *, dry_run: bool = False, untagged: bool = False,
                          grace: float = DEFAULT_GRACE, upload_grace: float = DEFAULT_UPLOAD_GRACE,
                          now: float | None = None) -> GcReport:
    """Mark and sweep; returns what was (or, with ``dry_run``, would be) removed."""
    now = time.time() if now is None else now
    cutoff = now - grace
    report = GcReport(dry_run=dry_run)
    marked: set[Digest] = set()
    for repo in await storage.catalog():
        await _mark_repository(storage, repo, untagged, cutoff, report, marked, dry_run)
    d = storage.driver
    for alg in await d.list("blobs"):
        for prefix in await d.list(f"blobs/{alg}"):
            for enc in await d.list(f"blobs/{alg}/{prefix}"):
                try:
                    digest = Digest(f"{alg}:{enc}")
                except DigestInvalid:
                    continue
                if digest in marked:
                    report.blobs_kept += 1
                    continue
                key = blob_key(digest)
                size = await d.size(key) or 0
                if not await _sweep(storage, key, cutoff, dry_run):
                    report.blobs_kept += 1
                    continue
                report.blobs.append(digest)
                report.bytes_freed += size
    for upload_id in await d.spool_list():
        mtime = await d.spool_mtime(upload_id)
        if mtime is None or mtime < now - upload_grace:
            report.uploads.append(upload_id)
            if not dry_run:
                await d.spool_delete(upload_id)
    return report


class GcLock:
    """An exclusive lock file so two collections never run at once on one root."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, "gc.lock")
        self.fd: int | None = None

    def __enter__(self) -> "GcLock":
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise UsageError(f"another gc holds {self.path}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
