"""The mirror plan as plain data: image jobs, planned images, the job-wide blob set.

:mod:`ocikit.mirror.plan` makes a :class:`MirrorPlan`; execution, bundles, verification
and reports read it. The types live apart from the planner, so a module that only reads a
plan imports no planner, no place and no transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..core.digest import Digest
from ..model import Descriptor
from ..ops.copy_options import CopyOptions
from ..ops.copy_plan import CopyPlan
from ..core.platforms import Platform

KIND_IMAGE = "image"
KIND_REFERRER = "referrer"


def registry_of(key: str) -> str:
    """The name per-registry limits use for a source or target key."""
    if key.startswith("docker://"):
        return key[len("docker://"):].split("/", 1)[0]
    if "://" not in key and "/" in key and not key.startswith(("oci:", "dir:")):
        return key.split("/", 1)[0]
    return "local"


@dataclass(frozen=True)
class ImageJob:
    """One image to mirror: where it is, which one, and where it goes."""

    source: str
    """The full source reference, ``docker://quay.io/org/name:tag`` (kept in bundle annotations)."""
    source_key: str
    """The source repository: ``docker://quay.io/org/name`` or ``oci:/path``."""
    repository: str
    """The source repository's name (``quay.io/org/name``), for mappings and bundle ref names."""
    selector: str
    path: str
    """Where it lands under the target prefix."""
    tag: str | None
    mode: str = "all"
    """``all`` (every platform, byte-exact), ``sparse`` (original index, chosen children) or ``rewrite``."""
    platforms: tuple[Platform, ...] = ()
    kind: str = KIND_IMAGE
    subject: Digest | None = None
    referrers: bool = True

    def copy_options(self, jobs: int = 6) -> CopyOptions:
        if self.mode == "all":
            return CopyOptions(all_platforms=True, jobs=jobs)
        return CopyOptions(platforms=list(self.platforms), preserve_index_digest=self.mode == "sparse", jobs=jobs)

    @property
    def registry(self) -> str:
        return registry_of(self.source_key)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "repository": self.repository, "path": self.path,
                             "tag": self.tag, "mode": self.mode, "kind": self.kind}
        if self.platforms:
            d["platforms"] = [str(p) for p in self.platforms]
        if self.subject:
            d["subject"] = str(self.subject)
        return d


@dataclass
class PlannedImage:
    job: ImageJob
    plan: CopyPlan | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None

    @property
    def digest(self) -> Digest | None:
        return self.plan.root.desc.digest if self.plan else None

    @property
    def source_digest(self) -> Digest | None:
        return self.plan.source_root_digest if self.plan else None


@dataclass(frozen=True)
class Unchanged:
    """An image a re-run leaves alone: its tag names ``digest`` at the target, made from ``source_digest``."""

    job: ImageJob
    source_digest: Digest
    digest: Digest


@dataclass
class BlobNeed:
    desc: Descriptor
    source_key: str
    """A source repository that holds it (the first image that needs it)."""
    destinations: list[str] = field(default_factory=list)
    """Target keys that need it, in first-seen order."""


@dataclass
class MirrorPlan:
    images: list[PlannedImage]
    blobs: dict[Digest, BlobNeed]
    present: set[tuple[str, Digest]] = field(default_factory=set)
    """(target key, digest) already at the target (checked, journaled, or in an earlier bundle)."""
    key_paths: dict[str, str] = field(default_factory=dict)
    """Target key -> destination path (to open the store a key names)."""
    target_checked: bool = True
    """False when the target was not asked which blobs it holds (a run finds out as it goes)."""
    unchanged: list[Unchanged] = field(default_factory=list)
    """Images found in place at the target (not planned, not copied)."""

    def summary(self) -> dict[str, Any]:
        return summarize(self)


def merge_blobs(planned: Sequence[PlannedImage], key_for: Callable[[str], str]) -> dict[Digest, BlobNeed]:
    """One :class:`BlobNeed` per unique blob digest across every planned image (pure)."""
    out: dict[Digest, BlobNeed] = {}
    for p in planned:
        if p.plan is None:
            continue
        key = key_for(p.job.path)
        for d, desc in p.plan.blobs.items():
            need = out.get(d)
            if need is None:
                need = out[d] = BlobNeed(desc, p.job.source_key)
            if key not in need.destinations:
                need.destinations.append(key)
    return out


def summarize(plan: MirrorPlan) -> dict[str, Any]:
    """Images, platforms, unique blobs, bytes to move, bytes already at the target (pure)."""
    to_move = to_mount = already = 0
    bytes_move = bytes_already = 0
    for d, need in plan.blobs.items():
        missing = [k for k in need.destinations if (k, d) not in plan.present]
        if not missing:
            already += 1
            bytes_already += need.desc.size
            continue
        if len(missing) < len(need.destinations):
            to_mount += len(missing)
            bytes_already += need.desc.size
            continue
        to_move += 1
        bytes_move += need.desc.size
        to_mount += len(missing) - 1
    images = [p for p in plan.images if p.job.kind == KIND_IMAGE]
    platforms = sorted({pl for p in plan.images if p.plan for pl in p.plan.platforms})
    return {
        "images": len(images) + len(plan.unchanged), "unchanged": len(plan.unchanged),
        "referrers": len(plan.images) - len(images),
        "failed": sum(1 for p in plan.images if not p.ok),
        "manifests": len({n.desc.digest for p in plan.images if p.plan for n in p.plan.manifests}),
        "platforms": platforms,
        "uniqueBlobs": len(plan.blobs), "blobReferences": sum(len(p.plan.blobs) for p in plan.images if p.plan),
        "blobsToMove": to_move, "bytesToMove": bytes_move, "blobsToMount": to_mount,
        "blobsAlreadyThere": already, "bytesAlreadyThere": bytes_already,
        "totalBytes": sum(n.desc.size for n in plan.blobs.values()), "targetChecked": plan.target_checked,
    }


__all__ = ["BlobNeed", "ImageJob", "KIND_IMAGE", "KIND_REFERRER", "MirrorPlan", "PlannedImage", "Unchanged",
           "merge_blobs", "registry_of", "summarize"]
