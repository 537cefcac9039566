"""``mirror --policy``: a containers-policy.json applied to every image before anything moves.

After planning and before the transfer, each planned image's source manifest is checked with
:func:`ocikit.trust.policy.evaluate` (the same check ``copy --policy`` makes); an image the
policy rejects is taken out of the plan — reported failed with the policy's reason, and none of
its manifests, tags or blobs written (a blob another accepted image needs still moves for that
one). Signature and referrer jobs of a rejected image go with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..content import Options
from ..core.transportref import parse_transport_reference
from .places import SourceSet, Target
from .plan_types import KIND_IMAGE, MirrorPlan, PlannedImage, merge_blobs

if TYPE_CHECKING:
    from ..trust.lookaside import RegistriesD
    from ..trust.policy import Policy


async def enforce_policy(plan: MirrorPlan, sources: SourceSet, target: Target, policy: "Policy",
                         regd: "RegistriesD | None", opts: Options) -> MirrorPlan:
    """The plan without the images ``policy`` rejects (those become failed entries)."""
    from ..trust.policy import evaluate

    rejected: dict[int, str] = {}    # id(planned image) -> reason
    manifests: dict[str, str] = {}   # every manifest digest of a rejected image -> its reason
    for p in plan.images:
        if p.plan is None or p.job.kind != KIND_IMAGE:
            continue
        store = sources.store_for(p.job.source_key)
        tref = parse_transport_reference(p.job.source)
        decision = await evaluate(policy, store, tref, str(p.plan.source_root_digest), regd=regd, opts=opts)
        if not decision.accepted:
            reason = f"{p.job.source}: rejected by {policy.path}: {'; '.join(decision.reasons)}"
            rejected[id(p)] = reason
            manifests.update({str(n.desc.digest): reason for n in p.plan.manifests})
    if not rejected:
        return plan
    keep: list[PlannedImage] = []
    for p in plan.images:
        reason = rejected.get(id(p)) or (manifests.get(str(p.job.subject)) if p.job.subject else None)
        keep.append(p if reason is None else PlannedImage(p.job, None, reason))
    planned = [p for p in keep if p.plan is not None]
    blobs = merge_blobs(planned, target.key_for)
    present = {(k, d) for (k, d) in plan.present if d in blobs}
    return MirrorPlan(keep, blobs, present, plan.key_paths, plan.target_checked, plan.unchanged)


__all__ = ["enforce_policy"]
