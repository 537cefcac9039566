"""Signatures through a mirror: lookaside (GPG) signatures carried, every signature checked at the target.

cosign's ``sha256-<hex>.sig/.att/.sbom`` tags and OCI 1.1 referrers travel as referrer jobs of
the plan (an image entry's ``referrers``, on by default). What the plan cannot see are the
*lookaside* signatures (GPG simple signing), kept beside the registry: :func:`carry_lookaside`
reads them for every manifest an image wrote (the index and each platform manifest) from the
source's lookaside store (registries.d's ``lookaside``, or a bundle's ``signatures/``
directory) and writes them to the target's (registries.d's ``lookaside-staging``/``lookaside``,
or the bundle's ``signatures/``), so they travel inside a bundle.

:func:`verify_signatures` (``mirror verify --signatures``) checks, with
:mod:`ocikit.trust.verification` or a containers-policy.json, that every image at the target
is signed; the signatures name the *source* identity, so with keys the identity rule is a
remap from the target repository to the source one.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from typing import TYPE_CHECKING, Sequence

from ..content import Options
from ..core.digest import Digest
from ..core.errors import InvalidReference, OcikitError
from ..core.reference import Reference, parse_reference
from ..core.transportref import TransportReference, parse_transport_reference
from ..trust.collect import lookaside_base
from ..trust.identity import IdentityRule
from ..trust.lookaside import RegistriesD, put_signatures, read_signatures
from .bundle import BundleTarget
from .places import Limits, LayoutTreeTarget, RegistryTarget, Target
from .plan_types import KIND_IMAGE, ImageJob, MirrorPlan, PlannedImage
from .verify import Problem, VerifyReport

if TYPE_CHECKING:
    from ..trust.policy import Policy
    from ..trust.verification import TrustedKeys
    from .execute import MirrorReport

SIGNATURES_DIR = "signatures"
"""Inside a bundle: a ``file://`` lookaside store, ``signatures/<path>@sha256=<hex>/signature-N``."""

_BUNDLE_DOMAIN = "bundle.invalid"
"""A lookaside URL uses a reference's path only; bundle entries are keyed by their mirror path."""


def bundle_lookaside(root: str) -> str:
    """The ``file://`` URL of the lookaside store inside bundle ``root``."""
    return "file://" + urllib.parse.quote(os.path.join(os.path.abspath(root), SIGNATURES_DIR))


def _source_store(job: ImageJob, regd: RegistriesD) -> tuple[str, Reference] | None:
    """Where the source keeps ``job``'s lookaside signatures (None: it has no lookaside)."""
    if job.source_key.startswith("docker://"):
        ref = parse_reference(job.repository)
        return lookaside_base(regd, ref), ref
    if job.source_key.startswith("dir:"):
        return bundle_lookaside(job.source_key[4:]), Reference(_BUNDLE_DOMAIN, job.path)
    return None


def _target_store(target: Target, job: ImageJob, regd: RegistriesD) -> tuple[str, Reference] | None:
    """Where the target keeps ``job``'s lookaside signatures (None: it cannot keep any)."""
    if isinstance(target, RegistryTarget):
        ref = parse_reference(target.key_for(job.path))
        return lookaside_base(regd, ref, write=True), ref
    if isinstance(target, BundleTarget):
        return bundle_lookaside(target.root), Reference(_BUNDLE_DOMAIN, job.path)
    return None


def _carried_digests(p: PlannedImage) -> list[Digest]:
    """The manifests written byte-exact (a rewritten index has a new digest: nothing signed it)."""
    assert p.plan is not None
    return [n.desc.digest for n in p.plan.manifests]


async def _carry_one(job: ImageJob, digests: Sequence[Digest], target: Target, regd: RegistriesD) -> int:
    """The lookaside signatures of ``digests`` from ``job``'s source to the target; how many."""
    src = _source_store(job, regd)
    if src is None:
        return 0
    dst = _target_store(target, job, regd)
    carried = 0
    found = await asyncio.gather(*(read_signatures(src[0], src[1], d) for d in digests))
    for d, sigs in zip(digests, found):
        if not sigs:
            continue
        if dst is None:
            raise OcikitError(f"it has lookaside signatures, which {target.location} cannot keep "
                              "(mirror with --remove-signatures to drop them)")
        await asyncio.to_thread(put_signatures, dst[0], dst[1], d, [data for _, data in sigs])
        carried += len(sigs)
    return carried


async def carry_lookaside(plan: MirrorPlan, report: "MirrorReport", target: Target, regd: RegistriesD) -> int:
    """Copy the lookaside signatures of every image the run wrote; the number of signatures carried.

    An image left alone as unchanged (a re-run) gets its root manifest's signatures again, so a
    signature added at the source since is carried without ``--recheck``. An image whose
    signatures cannot be read, or kept at the target, is marked failed in ``report``.
    """
    carried = 0
    todo = [(p.job, _carried_digests(p), out) for p, out in zip(plan.images, report.images)
            if p.plan is not None and p.job.kind == KIND_IMAGE and out.status in ("ok", "done-earlier")]
    unchanged = [o for o in report.images if o.status == "unchanged"]
    todo += [(u.job, [u.digest], out) for u, out in zip(plan.unchanged, unchanged)
             if u.job.kind == KIND_IMAGE and u.digest == u.source_digest]
    for job, digests, out in todo:
        try:
            carried += await _carry_one(job, digests, target, regd)
        except (OcikitError, OSError) as e:
            out.status = "failed"
            out.error = f"lookaside signatures: {e if isinstance(e, OcikitError) else e.strerror or e}"
    report.signatures_carried = carried
    return carried


def _target_tref(target: Target, p: PlannedImage) -> TransportReference:
    if isinstance(target, RegistryTarget):
        return parse_transport_reference(f"docker://{target.key_for(p.job.path)}@{p.digest}")
    if isinstance(target, LayoutTreeTarget):
        return parse_transport_reference(f"{target.key_for(p.job.path)}@{p.digest}")
    raise OcikitError(f"mirror verify --signatures checks a registry or oci: target, not {target.location}")


def _source_rule(target: Target, p: PlannedImage) -> IdentityRule | None:
    """Signatures name the source: the target repository is checked as the source one (remapIdentity)."""
    if not isinstance(target, RegistryTarget):
        return None  # a layout has no docker reference to compare
    try:
        src = parse_reference(p.job.repository)
    except InvalidReference:
        return None  # an oci: source: there is no identity to hold the signature to
    return IdentityRule("remapIdentity", prefix=target.key_for(p.job.path), signed_prefix=src.name)


async def verify_signatures(plan: MirrorPlan, target: Target, *, trusted: "TrustedKeys | None" = None,
                            policy: "Policy | None" = None, regd: RegistriesD | None = None,
                            recursive: bool = False, jobs: int = 8, per_registry: int = 6,
                            opts: Options = Options()) -> VerifyReport:
    """Every planned image at the target must carry a good signature for its root manifest (and,
    ``recursive``, for each platform manifest): by ``trusted`` keys, or accepted by ``policy``."""
    from ..trust.policy import evaluate
    from ..trust.verification import verify_manifests

    if (trusted is None) == (policy is None):
        raise OcikitError("verify_signatures needs exactly one of trusted keys and a policy")
    regd = regd or RegistriesD.load()
    report = VerifyReport(target.location)
    limits = Limits(jobs, per_registry)

    async def one(p: PlannedImage) -> None:
        assert p.plan is not None and p.digest is not None
        dest = target.display(p.job.path, p.job.tag) if p.job.tag else f"{target.display(p.job.path, None)}@{p.digest}"
        digests: Sequence[Digest] = [p.digest]
        if recursive:
            digests = [p.digest] + [n.desc.digest for n in p.plan.manifests if n.desc.digest != p.digest]
        report.checked_images += 1
        store = target.store_for(p.job.path)
        try:
            tref = _target_tref(target, p)
            for d in digests:
                report.checked_manifests += 1
                what = "index/root manifest" if d == p.digest else "platform manifest"
                async with limits.hold(target.registry):
                    if policy is not None:
                        dec = await evaluate(policy, store, tref, d, regd=regd, opts=opts)
                        if not dec.accepted:
                            report.problems.append(Problem(dest, "signature", str(d),
                                                           f"{what} {d}: rejected by {policy.path}: "
                                                           f"{'; '.join(dec.reasons)}"))
                        continue
                    assert trusted is not None
                    checks = await verify_manifests(store, [d], trusted, tref=tref, regd=regd,
                                                    rule=_source_rule(target, p), opts=opts)
                if not any(c.ok for c in checks):
                    why = "; ".join(sorted({f"{c.found.kind}: {c.reason}" for c in checks})) or "no signature found"
                    report.problems.append(Problem(dest, "signature", str(d),
                                                   f"{what} {d}: signature missing or invalid ({why})"))
        except OcikitError as e:
            report.problems.append(Problem(dest, "signature", str(p.digest), f"signatures: {e}"))

    images = [p for p in plan.images if p.plan is not None and p.job.kind == KIND_IMAGE]
    await asyncio.gather(*(one(p) for p in images))
    report.problems.sort(key=lambda pr: (pr.image, pr.message))
    return report


def drop_signature_jobs(jobs: list[ImageJob]) -> list[ImageJob]:
    """``--remove-signatures``: no referrer jobs (signatures, attestations, SBOMs), none looked for."""
    import dataclasses

    return [dataclasses.replace(j, referrers=False) for j in jobs if j.kind == KIND_IMAGE]


__all__ = ["SIGNATURES_DIR", "bundle_lookaside", "carry_lookaside", "drop_signature_jobs", "verify_signatures"]
