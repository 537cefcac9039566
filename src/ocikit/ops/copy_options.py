"""What a copy is asked to do (:class:`CopyOptions`) and what it did (:class:`CopyResult`).

Plain data shared by the copy engine (:mod:`ocikit.ops.copy`), its planner
(:mod:`ocikit.ops.copy_plan`), referrers and the mirror; importing it loads no engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

from ..digest import Digest
from ..platforms import Platform
from ..progress import ProgressSink

if TYPE_CHECKING:
    from ..content import Options, Store
    from .copy_types import CopyPlan


@dataclass
class CopyOptions:
    """What to copy and how.

    With an index at the source: by default the host platform's image alone (as skopeo does);
    ``all_platforms`` copies the index and every child byte-exact; ``platforms`` picks a
    subset, writing a new filtered index, or with ``preserve_index_digest`` keeping the
    original index bytes and copying only the chosen children (a sparse index).
    """

    all_platforms: bool = False
    platforms: Sequence[Platform] = ()
    preserve_index_digest: bool = False
    jobs: int = 6
    progress: ProgressSink | None = None
    host: Platform | None = None
    preserve_digests: bool = False
    """Refuse any change of digest (a filtered index, a format conversion)."""
    manifest_format: str | None = None
    """``oci`` or ``v2s2``: convert manifests and media types (``--format``); None keeps them."""
    retry_times: int = 3
    """Whole-blob retries when a transfer fails on the network (stores retry requests themselves)."""
    referrers: bool = False
    """Also copy the OCI 1.1 referrers (signatures, SBOMs, ...) of every manifest copied, recursively."""
    hooks: Sequence["CopyHook"] = ()
    """Called around the transfer (policy checks, carrying signatures); not passed to nested copies."""


class CopyHook(Protocol):
    """Something a copy calls: ``before_transfer`` once the plan is made (raise to write nothing),
    ``after_copy`` once every manifest is written (see :mod:`ocikit.trust.carry`)."""

    async def before_transfer(self, src: "Store", dst: "Store", plan: "CopyPlan", opts: "Options") -> None: ...

    async def after_copy(self, src: "Store", dst: "Store", plan: "CopyPlan", options: CopyOptions,
                         result: "CopyResult", opts: "Options") -> None: ...


@dataclass
class CopyResult:
    """What a copy did: the digests it wrote and how each blob got there."""

    source: str
    target: str
    source_digest: Digest
    digest: Digest
    media_type: str
    tag: str | None
    manifests: list[Digest] = field(default_factory=list)
    blobs_copied: int = 0
    bytes_copied: int = 0
    blobs_skipped: int = 0
    bytes_skipped: int = 0
    blobs_linked: int = 0
    bytes_linked: int = 0
    blobs_mounted: int = 0
    bytes_mounted: int = 0
    seconds: float = 0.0
    platforms: list[str] = field(default_factory=list)

    def add(self, other: "CopyResult") -> None:
        """Add another copy's manifests and counts to these (a referrer copied along with an image)."""
        self.manifests.extend(other.manifests)
        self.blobs_copied += other.blobs_copied
        self.bytes_copied += other.bytes_copied
        self.blobs_skipped += other.blobs_skipped
        self.bytes_skipped += other.bytes_skipped
        self.blobs_linked += other.blobs_linked
        self.bytes_linked += other.bytes_linked
        self.blobs_mounted += other.blobs_mounted
        self.bytes_mounted += other.bytes_mounted

    @property
    def digest_changed(self) -> bool:
        return self.digest != self.source_digest

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source, "target": self.target, "sourceDigest": str(self.source_digest),
            "digest": str(self.digest), "mediaType": self.media_type, "tag": self.tag,
            "manifests": [str(d) for d in self.manifests], "platforms": self.platforms,
            "blobs": {"copied": self.blobs_copied, "skipped": self.blobs_skipped,
                      "linked": self.blobs_linked, "mounted": self.blobs_mounted},
            "bytes": {"copied": self.bytes_copied, "skipped": self.bytes_skipped, "linked": self.bytes_linked,
                      "mounted": self.bytes_mounted},
            "seconds": round(self.seconds, 3),
        }


__all__ = ["CopyOptions", "CopyResult"]
