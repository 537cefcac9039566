"""A mirror job with ``--dest-compress-format``: each image copied through the recompressing copy.

Recompression gives every changed layer a new digest, so the job-wide blob plan (which moves
source blobs as they are) does not apply: each planned image is copied on its own by
:func:`~ocikit.ops.recompress.copy_recompressed` (a layer shared by several images is
recompressed once per image; the target stores it once, since the output is deterministic),
within the job's limits. Referrers are not carried: they refer to digests the recompressed
images no longer have. Changed digests are in the report, old -> new.
"""

from __future__ import annotations

import asyncio
import time

from ..core.errors import OcikitError
from ..ops.recompress import Recompression, copy_recompressed
from .execute import ExecuteOptions, ImageOutcome, MirrorReport
from .journal import Journal
from .places import Limits, SourceSet, Target, registry_of
from .plan_types import KIND_IMAGE, MirrorPlan, PlannedImage


async def execute_recompressed(plan: MirrorPlan, sources: SourceSet, target: Target, journal: Journal,
                               options: ExecuteOptions, want: Recompression) -> MirrorReport:
    """Copy every planned image recompressed; failures are in the report, not raised."""
    t0 = time.monotonic()
    report = MirrorReport(target.location, plan=plan.summary())
    limits = Limits(options.jobs, options.per_registry)

    async def one(p: PlannedImage, out: ImageOutcome) -> None:
        if p.plan is None:
            return
        if p.job.kind != KIND_IMAGE:
            out.status, out.error = "skipped", "a referrer is not carried: recompression changes the digests it refers to"
            return
        try:
            async with limits.hold(registry_of(p.job.source_key), target.registry):
                res, changes = await copy_recompressed(
                    sources.store_for(p.job.source_key), str(p.source_digest), target.image_store(p.job, p.plan),
                    p.job.tag, p.job.copy_options(options.jobs), want)
        except (OcikitError, OSError) as e:
            out.error = str(e) if isinstance(e, OcikitError) else f"{e.strerror or e}"
            return
        out.status, out.error, out.digest, out.source_digest = "ok", None, res.digest, p.source_digest
        out.platforms = list(res.platforms)
        report.recompressed.update(changes)
        report.blobs_moved += res.blobs_copied
        report.bytes_moved += res.bytes_copied
        report.blobs_already += res.blobs_skipped
        report.bytes_already += res.bytes_skipped
        journal.image_done(f"{target.key_for(p.job.path)}:{p.job.tag or ''}@{res.digest}", res.digest)

    for p in plan.images:
        report.images.append(ImageOutcome(p.job.source, target.display(p.job.path, p.job.tag), p.job.kind,
                                          "failed", error=p.error))
    await asyncio.gather(*(one(p, out) for p, out in zip(plan.images, report.images)))
    for u in plan.unchanged:
        report.images.append(ImageOutcome(u.job.source, target.display(u.job.path, u.job.tag), u.job.kind,
                                          "unchanged", u.digest, u.source_digest))
    report.seconds = time.monotonic() - t0
    return report


__all__ = ["execute_recompressed"]
